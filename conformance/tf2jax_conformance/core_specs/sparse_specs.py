"""Specs of the core's sparse ops: SparseTensorDenseMatMul, SparseToDense and
SparseTensorDenseAdd.

Indices are drawn unsorted and repeated (TF accepts both, except SparseToDense with
validate_indices), and now and then out of bounds (TF raises: the converted function must
raise too on the eager call). Gradients are TF's, for the values and the dense input;
where TF's gradient is not the derivative the spec stops it (see `_to_dense_build`).
"""

from __future__ import annotations

import math

import numpy as np
from hypothesis import strategies as st

from tf2jax_conformance import dtypes as D
from tf2jax_conformance import strategies as cst
from tf2jax_conformance.spec import Example, OpSpec, Tolerance, default_tolerance


def _tf():
  import tensorflow as tf
  return tf


def _values(dtype: str, shape, finite: bool = True):
  if finite and (dtype in D.FLOAT or dtype in D.COMPLEX):
    return cst.finite_arrays(dtype, shape, bound=10.0)
  return cst.arrays(dtype, shape)


@st.composite
def _indices(draw, dims, n: int, index_dtype: str, bad: bool = True):
  """[n, len(dims)] indices inside `dims` (repeats and any order), one out of bounds
  in about one example in ten when `bad`."""
  cols = []
  for d in dims:
    cols.append(draw(st.lists(st.integers(0, max(d - 1, 0)), min_size=n, max_size=n)))
  out = np.array(cols, np.int64).T.reshape(n, len(dims))
  inside = all(d > 0 for d in dims)
  if n and dims and (not inside or (bad and draw(st.integers(0, 9)) == 0)):
    i, j = draw(st.integers(0, n - 1)), draw(st.integers(0, len(dims) - 1))
    out[i, j] = draw(st.sampled_from([dims[j], dims[j] + 2, -1]))
  return out.astype(index_dtype)


# SparseTensorDenseMatMul --------------------------------------------------------------


def _matmul_example(dtype):
  @st.composite
  def draw(draw):
    adj_a, adj_b = draw(st.booleans()), draw(st.booleans())
    m, k, n = (draw(st.integers(0, 4)) for _ in range(3))
    nnz = draw(st.integers(0, 6))
    a_shape = [k, m] if adj_a else [m, k]
    idx = draw(_indices(a_shape, nnz, draw(cst.index_dtypes())))
    b = draw(_values(dtype, (n, k) if adj_b else (k, n)))
    return Example({"a_indices": idx, "a_values": draw(_values(dtype, (nnz,))),
                    "a_shape": np.array(a_shape, np.int64), "b": b},
                   {"adjoint_a": adj_a, "adjoint_b": adj_b})
  return draw()


def _matmul_build(example):
  """TF's gradient gathers rows of b and of the cotangent, and fails when either is
  empty (its forward gives zeros without reading the indices then): the spec stops the
  gradient there."""
  tf = _tf()
  shape, attrs, b = example.inputs["a_shape"], dict(example.attrs), example.inputs["b"]
  rows = shape[1 if attrs["adjoint_a"] else 0]
  cols = b.shape[0 if attrs["adjoint_b"] else 1]
  empty = b.size == 0 or rows * cols == 0

  def body(indices, values, b):
    if empty:
      values, b = tf.stop_gradient(values), tf.stop_gradient(b)
    return tf.raw_ops.SparseTensorDenseMatMul(a_indices=indices, a_values=values,
                                              a_shape=tf.constant(shape), b=b, **attrs)
  return body


def _amax(x) -> float:
  return float(np.max(np.abs(np.asarray(x).astype(np.complex128)), initial=0.0))


def _sum_bound(dtype: str, terms: int, scale: float) -> Tolerance:
  """Rounding of sums of `terms` products of magnitude <= `scale` (float16/bfloat16
  are summed in float32 by TF's kernel and tf2jax, then rounded once)."""
  part = {"complex64": "float32", "complex128": "float64"}.get(dtype, dtype)
  base = default_tolerance(dtype)
  if part not in D.FLOAT:
    return base
  acc = "float32" if part in ("float16", "bfloat16") else part
  return Tolerance(base.rtol, base.atol + 4 * terms * float(D.finfo(acc).eps) * scale)


def _matmul_tolerance(dtype: str, ex: Example) -> Tolerance:
  nnz = len(ex.inputs["a_values"])
  return _sum_bound(dtype, nnz + 1, _amax(ex.inputs["a_values"]) * _amax(ex.inputs["b"]))


def _matmul_grad_tolerance(dtype: str, ex: Example) -> Tolerance:
  """TF's gradients sum in the input dtype (tf2jax in float32 for float16/bfloat16):
  sums of up to max(nnz, columns) products of a value and a cotangent (<= 10)."""
  part = dtype if dtype in D.FLOAT else "float32"
  terms = len(ex.inputs["a_values"]) + max(ex.inputs["b"].shape, default=0) + 1
  scale = 10 * max(_amax(ex.inputs["a_values"]), _amax(ex.inputs["b"]), 1.0)
  base = default_tolerance(part)
  return Tolerance(2 * base.rtol,
                   2 * base.atol + 4 * terms * float(D.finfo(part).eps) * scale)


# SparseToDense ------------------------------------------------------------------------


def _to_dense_example(dtype):
  @st.composite
  def draw(draw):
    dims = list(draw(cst.shapes(min_dims=1, max_dims=3, max_side=4, max_size=24)))
    n = draw(st.integers(0, 6))
    index_dtype = draw(cst.index_dtypes())
    validate = draw(st.booleans())
    idx = draw(_indices(dims, n, index_dtype))
    if validate and draw(st.integers(0, 3)):  # mostly valid: sorted and unique
      flat = sorted({tuple(r) for r in idx.tolist()})
      idx = np.array(flat, np.int64).reshape(len(flat), len(dims)).astype(index_dtype)
    n = len(idx)
    form = draw(st.sampled_from(["matrix", "vector", "scalar"])) if len(dims) == 1 \
        else "matrix"
    if form == "vector":
      idx = idx.reshape(n)
    elif form == "scalar" and n:
      idx = idx.reshape(-1)[0]
    count = idx.shape[0] if idx.ndim else 1
    scalar_values = draw(st.booleans())
    values = draw(cst.arrays(dtype, () if scalar_values else (count,)))
    return Example({"sparse_indices": idx,
                    "output_shape": np.array(dims, index_dtype),
                    "sparse_values": values, "default_value": draw(cst.arrays(dtype, ()))},
                   {"validate_indices": validate})
  return draw()


def _to_dense_build(example):
  """TF's gradient gathers the cotangent at every index (gather_nd): it is the
  derivative only for a matrix of distinct indices and a vector of values; the
  spec stops the gradient otherwise."""
  tf = _tf()
  idx = example.inputs["sparse_indices"]
  shape = example.inputs["output_shape"]
  values = example.inputs["sparse_values"]
  exact = (idx.ndim == 2 and values.ndim == 1
           and len({tuple(r) for r in idx.tolist()}) == len(idx))
  validate = example.attrs["validate_indices"]

  def body(indices, values, default):
    if not exact:
      values, default = tf.stop_gradient(values), tf.stop_gradient(default)
    return tf.raw_ops.SparseToDense(sparse_indices=indices, output_shape=tf.constant(shape),
                                    sparse_values=values, default_value=default,
                                    validate_indices=validate)
  return body


# SparseTensorDenseAdd -----------------------------------------------------------------


def _add_example(dtype):
  @st.composite
  def draw(draw):
    dims = list(draw(cst.shapes(min_dims=1, max_dims=5, max_side=3, max_size=24)))
    nnz = draw(st.integers(0, 6))
    index_dtype = draw(cst.index_dtypes())
    return Example({"a_indices": draw(_indices(dims, nnz, index_dtype)),
                    "a_values": draw(_values(dtype, (nnz,), finite=False)),
                    "a_shape": np.array(dims, index_dtype),
                    "b": draw(_values(dtype, tuple(dims), finite=False))})
  return draw()


def _add_tolerance(dtype: str, ex: Example) -> Tolerance:
  """Repeated indices add up one after the other in both: a few ulps of the sum."""
  base = default_tolerance(dtype)
  return Tolerance(base.rtol * (1 + len(ex.inputs["a_values"])), base.atol)


def specs() -> list[OpSpec]:
  return [
      OpSpec("SparseTensorDenseMatMul", _matmul_example, static_inputs=("a_shape",),
             build=_matmul_build,
             tolerance=_matmul_tolerance, grad_tolerance=_matmul_grad_tolerance,
             notes="Indices unsorted and repeated, sometimes out of bounds (TF raises, so "
                   "does the eager call); finite values in [-10, 10] (the order of the "
                   "sums differs). Dims from 0 to 4, both adjoints. No gradient where b or the output is "
                   "empty (TF's gradient raises there)."),
      OpSpec("SparseToDense", _to_dense_example, static_inputs=("output_shape",),
             build=_to_dense_build,
             notes="Scalar, vector and matrix indices, scalar or vector values; with "
                   "validate_indices sometimes unsorted or repeated (TF raises, so does "
                   "the eager call), without it repeated indices (the last wins). "
                   "Gradients only for a matrix of distinct indices and vector values "
                   "(TF's gather_nd gradient is not the derivative otherwise)."),
      OpSpec("SparseTensorDenseAdd", _add_example, tolerance=_add_tolerance,
             notes="Ranks 1 to 5, indices unsorted and repeated (they add up), sometimes "
                   "out of bounds (TF raises, so does the eager call)."),
  ]
