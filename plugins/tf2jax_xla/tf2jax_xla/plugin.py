"""Entry point of tf2jax-xla (group `tf2jax`)."""

from tf2jax_core import hookimpl

from tf2jax_xla import call_module, slicing

TF2JAX_PLUGIN_API = 1


@hookimpl
def tf2jax_register_ops(registry):
  registry.add_module(slicing)
  registry.add_module(call_module)
