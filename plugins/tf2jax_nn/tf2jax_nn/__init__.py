"""tf2jax-nn: neural-network op lowerings for tf2jax."""

__version__ = "0.1.0"
