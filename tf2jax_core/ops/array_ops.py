"""Shapes and reshapes: values computed from static shapes stay NumPy under jit."""

from __future__ import annotations

import numpy as np

from tf2jax_core.lowering import lowering, xnp


@lowering("Shape", attrs={"T": None, "out_type": ("int32", "int64")})
def shape(node):
  out_type = node.attrs.get("out_type", np.dtype(np.int32))
  return lambda x: np.asarray(np.shape(x), dtype=out_type)


@lowering("Reshape", attrs={"T": None, "Tshape": ("int32", "int64")}, static_inputs=(1,))
def reshape(node):
  def run(x, new_shape):
    return xnp(x).reshape(x, tuple(int(d) for d in new_shape))
  return run
