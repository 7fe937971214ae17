"""XlaDynamicSlice / XlaDynamicUpdateSlice: XLA's clamped dynamic slices."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from tf2jax_core import lowering

_INDEX = ("int32", "int64")


def _clamped(start, dims, sizes) -> list:
  """XLA's start indices: each clamped into [0, dim - size]. (jax.lax.dynamic_slice would
  first wrap negative indices around, Python style, which XLA does not.)"""
  start = jnp.asarray(start)
  return [jnp.clip(start[i], 0, d - s).astype(start.dtype)
          for i, (d, s) in enumerate(zip(dims, sizes))]


@lowering("XlaDynamicSlice", attrs={"T": None, "Tindices": _INDEX}, static_inputs=(2,))
def dynamic_slice(node):
  def run(x, start, sizes):
    sizes = tuple(int(s) for s in np.reshape(sizes, -1))
    return jax.lax.dynamic_slice(x, _clamped(start, np.shape(x), sizes), sizes)
  return run


@lowering("XlaDynamicUpdateSlice", attrs={"T": None, "Tindices": _INDEX})
def dynamic_update_slice(node):
  def run(x, update, start):
    starts = _clamped(start, np.shape(x), np.shape(update))
    return jax.lax.dynamic_update_slice(x, update, starts)
  return run
