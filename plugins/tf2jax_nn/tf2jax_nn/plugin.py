"""Entry point of tf2jax-nn (group `tf2jax`)."""

from tf2jax_core import hookimpl

from tf2jax_nn import (activations, convolution, image_transform, losses, normalization,
                       pooling, resize, space_depth)

TF2JAX_PLUGIN_API = 1


@hookimpl
def tf2jax_register_ops(registry):
  registry.add_module(activations)
  registry.add_module(convolution)
  registry.add_module(pooling)
  registry.add_module(normalization)
  registry.add_module(losses)
  registry.add_module(space_depth)
  registry.add_module(resize)
  registry.add_module(image_transform)


@hookimpl
def tf2jax_conformance_specs():
  # tf2jax-conformance is a test dependency: import the specs only when they are asked for.
  from tf2jax_nn import image_specs, loss_space_specs, nn_specs, specs
  return (specs.specs() + nn_specs.specs() + loss_space_specs.specs()
          + image_specs.specs())
