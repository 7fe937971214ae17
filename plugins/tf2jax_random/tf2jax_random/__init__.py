"""tf2jax-random: random op lowerings for tf2jax."""

__version__ = "0.1.0"
