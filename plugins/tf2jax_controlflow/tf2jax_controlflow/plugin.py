"""Entry point of tf2jax-controlflow (group `tf2jax`)."""

from tf2jax_core import hookimpl

from tf2jax_controlflow import functional, tensor_lists

TF2JAX_PLUGIN_API = 1


@hookimpl
def tf2jax_register_ops(registry):
  registry.add_module(functional)
  registry.add_module(tensor_lists)
