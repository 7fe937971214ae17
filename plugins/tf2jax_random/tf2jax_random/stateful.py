"""Stateful random ops, drawn from the converted function's `rng` key.

Each node draws from a key derived from the node's name (`ctx.rng()`), so results do
not depend on evaluation order and the same key gives the same numbers.
"""

from __future__ import annotations

import jax
import numpy as np

from tf2jax_core import FLOAT, lowering

_ATTRS = {"dtype": FLOAT, "T": ("int32", "int64"), "seed": None, "seed2": None}


def _shape(node, shape) -> tuple[int, ...]:
  shape = np.asarray(shape)
  if shape.ndim != 1:
    raise ValueError(f"{node.op} node {node.path!r}: shape must be a vector, got {shape}")
  return tuple(int(d) for d in shape)


@lowering("RandomStandardNormal", attrs=_ATTRS, static_inputs=(0,), needs_rng=True)
def random_standard_normal(node):
  dtype = node.attrs["dtype"]
  return lambda ctx, shape: jax.random.normal(ctx.rng(), _shape(node, shape), dtype)


@lowering("RandomUniform", attrs=_ATTRS, static_inputs=(0,), needs_rng=True)
def random_uniform(node):
  dtype = node.attrs["dtype"]
  return lambda ctx, shape: jax.random.uniform(ctx.rng(), _shape(node, shape), dtype)
