"""Logical ops and equality comparisons."""

from __future__ import annotations

import numpy as np

from tf2jax_core.lowering import NUMBER, lowering, xnp

LOWERINGS = []


def _logical(op: str, name: str) -> None:
  @lowering(op)
  def build(node):
    if name == "logical_not":
      return lambda x: xnp(x).logical_not(x)
    return lambda x, y: getattr(xnp(x, y), name)(x, y)
  LOWERINGS.append(build)


_logical("LogicalAnd", "logical_and")
_logical("LogicalOr", "logical_or")
_logical("LogicalNot", "logical_not")


def _equality(op: str, name: str) -> None:
  @lowering(op, attrs={"T": NUMBER + ("bool",), "incompatible_shape_error": (True, False)})
  def build(node):
    strict = node.attrs.get("incompatible_shape_error", True)

    def run(x, y):
      if not strict:
        try:
          np.broadcast_shapes(np.shape(x), np.shape(y))
        except ValueError:
          # TF's kernel: shapes that do not broadcast give a scalar, False for Equal and
          # True for NotEqual.
          return np.asarray(name == "not_equal")
      return getattr(xnp(x, y), name)(x, y)
    return run
  LOWERINGS.append(build)


_equality("Equal", "equal")
_equality("NotEqual", "not_equal")
