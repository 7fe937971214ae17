"""Entry point of tf2jax-random (group `tf2jax`)."""

from tf2jax_core import hookimpl

from tf2jax_random import stateful

TF2JAX_PLUGIN_API = 1


@hookimpl
def tf2jax_register_ops(registry):
  registry.add_module(stateful)
