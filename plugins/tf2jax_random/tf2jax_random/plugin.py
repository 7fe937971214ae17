"""Entry point of tf2jax-random (group `tf2jax`)."""

from tf2jax_core import hookimpl

from tf2jax_random import generator, stateful, stateless

TF2JAX_PLUGIN_API = 1


@hookimpl
def tf2jax_register_ops(registry):
  registry.add_module(stateless)
  registry.add_module(stateful)
  registry.add_module(generator)


@hookimpl
def tf2jax_conformance_specs():
  # tf2jax-conformance is a test dependency: import the specs only when they are asked for.
  from tf2jax_random import specs
  return specs.specs()
