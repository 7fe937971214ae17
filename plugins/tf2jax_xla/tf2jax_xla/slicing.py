"""XlaDynamicSlice / XlaDynamicUpdateSlice: XLA's clamped dynamic slices."""

from __future__ import annotations

import jax
import numpy as np

from tf2jax_core import lowering

_INDEX = ("int32", "int64")


@lowering("XlaDynamicSlice", attrs={"T": None, "Tindices": _INDEX}, static_inputs=(2,))
def dynamic_slice(node):
  def run(x, start, sizes):
    sizes = tuple(int(s) for s in np.reshape(sizes, -1))
    return jax.lax.dynamic_slice(x, list(start), sizes)
  return run


@lowering("XlaDynamicUpdateSlice", attrs={"T": None, "Tindices": _INDEX})
def dynamic_update_slice(node):
  return lambda x, update, start: jax.lax.dynamic_update_slice(x, update, list(start))
