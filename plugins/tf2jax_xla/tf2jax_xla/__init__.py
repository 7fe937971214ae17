"""tf2jax-xla: XLA op lowerings for tf2jax."""

__version__ = "0.1.0"
