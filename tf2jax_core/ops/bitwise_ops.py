"""Bitwise ops on integers: and, or, xor, invert, shifts, population count."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from tf2jax_core.lowering import INT, is_static, lowering, xnp

LOWERINGS = []


def _binary(op: str, name: str) -> None:
  @lowering(op, attrs={"T": INT})
  def build(node):
    return lambda x, y: getattr(xnp(x, y), name)(x, y)
  LOWERINGS.append(build)


_binary("BitwiseAnd", "bitwise_and")
_binary("BitwiseOr", "bitwise_or")
_binary("BitwiseXor", "bitwise_xor")


@lowering("Invert", attrs={"T": INT})
def invert(node):
  return lambda x: xnp(x).invert(x)


def _shift(op: str, name: str) -> None:
  # TF's CPU kernels clamp the shift amount to [0, bits - 1] (so 1 << 40 is 1 << 31 in
  # int32 and a negative amount shifts by 0); right shifts of signed values are arithmetic.
  @lowering(op, attrs={"T": INT})
  def build(node):
    def run(x, y):
      m = xnp(x, y)
      bits = np.dtype(x.dtype).itemsize * 8
      y = m.clip(y, 0, bits - 1).astype(y.dtype)
      out = getattr(m, name)(x, y)
      return out.astype(x.dtype) if m is np else out
    return run
  LOWERINGS.append(build)


_shift("LeftShift", "left_shift")
_shift("RightShift", "right_shift")


@lowering("PopulationCount", attrs={"T": INT})
def population_count(node):
  def run(x):
    if is_static(x):
      x = np.asarray(x)  # count the two's-complement bits of negative values
      return np.bitwise_count(x.view(np.dtype(f"u{x.dtype.itemsize}"))).astype(np.uint8)
    return jax.lax.population_count(x).astype(jnp.uint8)
  return run
