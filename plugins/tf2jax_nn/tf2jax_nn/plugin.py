"""Entry point of tf2jax-nn (group `tf2jax`)."""

from tf2jax_core import hookimpl

from tf2jax_nn import (activations, color, convolution, crops, ctc, image_transform, losses,
                       nms, normalization, pooling, quantization, resize, space_depth)

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
  registry.add_module(color)
  registry.add_module(crops)
  registry.add_module(quantization)
  registry.add_module(nms)
  registry.add_module(ctc)


@hookimpl
def tf2jax_conformance_specs():
  # tf2jax-conformance is a test dependency: import the specs only when they are asked for.
  from tf2jax_nn import (color_specs, image_specs, loss_space_specs, nn_specs,
                         quant_nms_ctc_specs, resize_crop_specs, specs)
  return (specs.specs() + nn_specs.specs() + loss_space_specs.specs()
          + image_specs.specs() + quant_nms_ctc_specs.specs() + color_specs.specs()
          + resize_crop_specs.specs())
