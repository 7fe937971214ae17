"""Entry point of tf2jax-nn (group `tf2jax`)."""

from tf2jax_core import hookimpl

from tf2jax_nn import (activations, color, convolution, crops, ctc, image_transform, isotonic,
                       losses, nms, normalization, pooling, quantization, recurrent, resize,
                       space_depth)

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
  registry.add_module(isotonic)
  registry.add_module(recurrent)


@hookimpl
def tf2jax_conformance_specs():
  # tf2jax-conformance is a test dependency: import the specs only when they are asked for.
  from tf2jax_nn import (activation_norm_grad_specs, color_specs, conv_pool_grad_specs,
                         image_grad_specs, image_specs, loss_space_specs, nn_specs,
                         quant_decode_specs, quant_nms_ctc_specs, recurrent_specs,
                         resize_crop_specs, specs)
  return (specs.specs() + nn_specs.specs() + activation_norm_grad_specs.specs()
          + loss_space_specs.specs() + image_specs.specs() + quant_nms_ctc_specs.specs()
          + color_specs.specs() + resize_crop_specs.specs() + quant_decode_specs.specs()
          + conv_pool_grad_specs.specs() + recurrent_specs.specs()
          + image_grad_specs.specs())
