"""tf2jax-controlflow: control-flow op lowerings for tf2jax."""

__version__ = "0.1.0"
