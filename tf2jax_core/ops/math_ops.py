"""Elementwise math, comparisons, casts, reductions and matrix products."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from tf2jax_core.lowering import COMPLEX, FLOAT, INT, NUMBER, REAL, is_static, lowering, xnp

LOWERINGS = []


def _unary(op: str, types, np_fn, jnp_fn) -> None:
  @lowering(op, attrs={"T": types})
  def build(node):
    return lambda x: np_fn(x) if is_static(x) else jnp_fn(x)
  LOWERINGS.append(build)


def _binary(op: str, types, name: str) -> None:
  @lowering(op, attrs={"T": types})
  def build(node):
    return lambda x, y: getattr(xnp(x, y), name)(x, y)
  LOWERINGS.append(build)


def _np_sigmoid(x):
  return (1 / (1 + np.exp(-x))).astype(x.dtype)


def _np_rsqrt(x):
  return (1 / np.sqrt(x)).astype(x.dtype)


for _op, _np_fn, _jnp_fn in [
    ("Sin", np.sin, jnp.sin), ("Cos", np.cos, jnp.cos), ("Tanh", np.tanh, jnp.tanh),
    ("Exp", np.exp, jnp.exp), ("Log", np.log, jnp.log), ("Sqrt", np.sqrt, jnp.sqrt),
    ("Rsqrt", _np_rsqrt, jax.lax.rsqrt), ("Sigmoid", _np_sigmoid, jax.nn.sigmoid)]:
  _unary(_op, FLOAT + COMPLEX, _np_fn, _jnp_fn)
_unary("Neg", NUMBER, np.negative, jnp.negative)
_unary("Square", NUMBER, np.square, jnp.square)
_unary("Abs", REAL, np.abs, jnp.abs)

for _op, _name, _types in [
    ("AddV2", "add", NUMBER), ("Sub", "subtract", NUMBER), ("Mul", "multiply", NUMBER),
    ("RealDiv", "true_divide", FLOAT + COMPLEX), ("Maximum", "maximum", REAL),
    ("Minimum", "minimum", REAL), ("Greater", "greater", REAL), ("Less", "less", REAL),
    ("GreaterEqual", "greater_equal", REAL), ("LessEqual", "less_equal", REAL)]:
  _binary(_op, _types, _name)


@lowering("Cast", attrs={"SrcT": NUMBER + ("bool",), "DstT": NUMBER + ("bool",),
                         "Truncate": None})
def cast(node):
  dst = node.attrs["DstT"]

  def run(x):
    if is_static(x):
      return np.asarray(x).astype(dst)
    return jax.lax.convert_element_type(x, dst) if x.dtype != dst else x
  return run


@lowering("MatMul", attrs={"T": FLOAT + COMPLEX + ("int32", "int64"), "transpose_a": None,
                           "transpose_b": None, "grad_a": None, "grad_b": None})
def matmul(node):
  ta, tb = node.attrs.get("transpose_a", False), node.attrs.get("transpose_b", False)

  def run(a, b):
    if np.ndim(a) != 2 or np.ndim(b) != 2:
      raise ValueError(f"MatMul takes matrices, got shapes {np.shape(a)} and {np.shape(b)}")
    a, b = (a.T if ta else a), (b.T if tb else b)
    if a.shape[1] != b.shape[0]:
      raise ValueError(f"MatMul dimensions do not match: {a.shape} @ {b.shape}")
    return xnp(a, b).matmul(a, b)
  return run


def _reduction(op: str, name: str, types) -> None:
  @lowering(op, attrs={"T": types, "Tidx": ("int32", "int64"), "keep_dims": None},
            static_inputs=(1,))
  def build(node):
    return _reduce(node, name)
  LOWERINGS.append(build)


def _reduce(node, name: str):
  keep = node.attrs.get("keep_dims", False)

  def run(x, axes):
    axes = [int(a) for a in np.reshape(axes, -1)]
    rank = np.ndim(x)
    if any(not -rank <= a < rank for a in axes):
      raise ValueError(f"reduction axes {axes} out of range for rank {rank}")
    axes = tuple(a % rank for a in axes)
    if len(set(axes)) != len(axes):
      raise ValueError(f"reduction axes contain a duplicate dimension: {axes}")
    m = xnp(x)
    return getattr(m, name)(x, axis=axes, keepdims=keep, dtype=x.dtype)
  return run


_reduction("Sum", "sum", NUMBER)
_reduction("Mean", "mean", FLOAT + COMPLEX)  # integer Mean truncates: not lowered yet
