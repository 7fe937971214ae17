"""Sparse ops on COO indices with TF's CPU semantics: SparseTensorDenseMatMul,
SparseToDense and SparseTensorDenseAdd.

- Indices that TF's kernel rejects (out of bounds; for SparseToDense with
  validate_indices, unsorted or repeated) raise when their values are known (constants,
  eager calls). Under jax.jit they cannot be checked: out-of-bounds entries are dropped.
- Repeated indices add up (SparseTensorDenseMatMul, SparseTensorDenseAdd); in
  SparseToDense without validation the last one wins, as in TF's sequential loop.
- SparseTensorDenseMatMul sums float16/bfloat16 products in float32, as TF does.
- Gradients flow to the values and the dense input (TF has none for the indices).
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

from tf2jax_core.lowering import COMPLEX, FLOAT, NUMBER, lowering, xnp
from tf2jax_core.ops.array_ops import _known

_INDEX = ("int32", "int64")


def _shape_of(value, what: str, rank: int | None = None) -> list[int]:
  """A static shape vector input as a list of ints."""
  if np.ndim(value) != 1:
    raise ValueError(f"input {what} must be a vector, got shape {list(np.shape(value))}")
  dims = [int(d) for d in value]
  if rank is not None and len(dims) != rank:
    raise ValueError(f"input {what} must have {rank} elements, got {dims}")
  if any(d < 0 for d in dims):
    raise ValueError(f"input {what} has a negative dimension: {dims}")
  return dims


def _check_bounds(known, dims, what: str = "a_indices") -> None:
  """Raises for an index outside `dims` (known indices only)."""
  if known is None or not known.size:
    return
  bad = np.nonzero(np.any((known < 0) | (known >= np.asarray(dims)), axis=1))[0]
  if bad.size:
    i = int(bad[0])
    raise ValueError(f"{what}[{i}] = {known[i].tolist()} is out of bounds for the shape "
                     f"{list(dims)}")


def _flat_index(m, indices, dims):
  """Row-major positions of `indices` ([n, len(dims)]) in an array of shape `dims`; those
  out of bounds become prod(dims) (dropped by scatters with mode="drop")."""
  size = int(np.prod(dims, dtype=np.int64))
  idx = indices.astype(np.int64) if m is np else indices
  strides = np.cumprod([1] + list(dims[:0:-1]))[::-1].astype(idx.dtype)
  flat = (idx * strides).sum(axis=1) if len(dims) else m.zeros(idx.shape[:1], idx.dtype)
  inside = m.all((idx >= 0) & (idx < np.asarray(dims, idx.dtype)), axis=1)
  return m.where(inside, flat, size)


def _matrix(value, what: str, cols: int | None = None):
  if np.ndim(value) != 2 or (cols is not None and np.shape(value)[1] != cols):
    want = f"[n, {cols}]" if cols is not None else "a matrix"
    raise ValueError(f"input {what} must be {want}, got shape {list(np.shape(value))}")


def _vector(value, what: str, n: int):
  if np.shape(value) != (n,):
    raise ValueError(f"input {what} must have shape [{n}] (one value per index), got "
                     f"{list(np.shape(value))}")


@lowering("SparseTensorDenseMatMul",
          attrs={"T": FLOAT + COMPLEX + ("int32",), "Tindices": _INDEX, "adjoint_a": None,
                 "adjoint_b": None},
          static_inputs=(2,))
def _sparse_dense_matmul(node):
  adj_a, adj_b = bool(node.attrs.get("adjoint_a")), bool(node.attrs.get("adjoint_b"))

  def run(indices, values, shape, b):
    _matrix(indices, "a_indices", 2)
    _vector(values, "a_values", np.shape(indices)[0])
    rows, inner = _shape_of(shape, "a_shape", 2)[::-1 if adj_a else 1]
    _matrix(b, "b")
    cols, inner_b = np.shape(b)[::1 if adj_b else -1]
    if inner != inner_b:
      raise ValueError(f"cannot multiply A (shape {[int(d) for d in shape]}, adjoint_a="
                       f"{adj_a}) and B (shape {list(np.shape(b))}, adjoint_b={adj_b}): "
                       "the inner dimensions differ")
    m = xnp(indices, values, b)
    dtype = np.dtype(values.dtype)
    if rows * cols == 0 or np.size(values) == 0 or np.size(b) == 0:
      return m.zeros((rows, cols), dtype)  # TF checks no index then
    order = [1, 0] if adj_a else [0, 1]
    known = _known(indices)
    _check_bounds(None if known is None else known[:, order], [rows, inner])
    idx = indices[:, order]
    if adj_a:
      values = m.conj(values)
    b = m.conj(b).T if adj_b else b
    acc = np.float32 if dtype in (np.float16, jnp.bfloat16) else dtype
    flat = _flat_index(m, idx, [rows, inner])
    r, k = flat // max(inner, 1), flat % max(inner, 1)
    terms = values.astype(acc)[:, None] * b.astype(acc)[k]
    if m is np:
      out = np.zeros((rows + 1, cols), acc)
      np.add.at(out, np.minimum(r, rows), terms)
      return out[:rows].astype(dtype)
    out = jnp.zeros((rows, cols), acc).at[r].add(terms, mode="drop")
    return out.astype(dtype)
  return run


@lowering("SparseToDense",
          attrs={"T": NUMBER + ("bool",), "Tindices": _INDEX, "validate_indices": None},
          static_inputs=(1,))
def _sparse_to_dense(node):
  validate = bool(node.attrs.get("validate_indices", True))

  def run(indices, output_shape, values, default):
    if np.ndim(indices) > 2:
      raise ValueError("input sparse_indices must be a scalar, vector or matrix, got shape "
                       f"{list(np.shape(indices))}")
    n = np.shape(indices)[0] if np.ndim(indices) else 1
    ndims = np.shape(indices)[1] if np.ndim(indices) == 2 else 1
    dims = _shape_of(np.reshape(output_shape, -1) if np.ndim(output_shape) == 0
                     else output_shape, "output_shape")
    if len(dims) != ndims:
      raise ValueError(f"input output_shape has {len(dims)} elements, the indices have "
                       f"{ndims} dimensions")
    if np.ndim(values) not in (0, 1) or (np.ndim(values) == 1 and np.shape(values)[0] != n):
      raise ValueError(f"input sparse_values must be a scalar or have shape [{n}], got "
                       f"{list(np.shape(values))}")
    if np.ndim(default) != 0:
      raise ValueError("input default_value must be a scalar, got shape "
                       f"{list(np.shape(default))}")
    m = xnp(indices, values, default)
    idx = m.reshape(indices, (n, ndims))
    known = _known(idx)
    _check_bounds(known, dims, "sparse_indices")
    size = int(np.prod(dims, dtype=np.int64))
    if validate and known is not None and n > 1:
      flat = np.ravel_multi_index(known.astype(np.int64).T, dims) if ndims else np.zeros(n)
      step = np.diff(flat)
      if np.any(step <= 0):
        i = int(np.nonzero(step <= 0)[0][0]) + 1
        what = "repeated" if step[i - 1] == 0 else "out of order"
        raise ValueError(f"sparse_indices[{i}] = {known[i].tolist()} is {what} (with "
                         "validate_indices, indices must be sorted and unique; set "
                         "validate_indices=False to allow this)")
    out = m.full((size,), default, default.dtype)
    if n == 0 or size == 0:
      return out.reshape(dims)
    flat = _flat_index(m, idx, dims)
    values = m.broadcast_to(values, (n,))
    # The last of repeated indices wins: scatter the largest entry number per position.
    order = np.arange(1, n + 1, dtype=np.int32)
    if m is np:
      last = np.zeros(size + 1, np.int32)
      np.maximum.at(last, flat, order)
      last = last[:size]
    else:
      last = jnp.zeros(size, np.int32).at[flat].max(order, mode="drop")
    out = m.where(last > 0, values[m.maximum(last - 1, 0)], out)
    return out.reshape(dims)
  return run


@lowering("SparseTensorDenseAdd",
          attrs={"T": NUMBER, "Tindices": _INDEX})
def _sparse_dense_add(node):
  def run(indices, values, shape, b):
    _matrix(indices, "a_indices")
    _vector(values, "a_values", np.shape(indices)[0])
    dims = list(np.shape(b))
    if np.shape(indices)[1] != len(dims) or np.shape(shape) != (len(dims),):
      raise ValueError(f"inputs a_indices (shape {list(np.shape(indices))}) and a_shape "
                       f"(shape {list(np.shape(shape))}) must match the rank of b "
                       f"({len(dims)})")
    if not 1 <= len(dims) <= 5:
      raise ValueError(f"only ranks 1 to 5 are supported (as in TF), got {len(dims)}")
    known_shape = _known(shape)
    if known_shape is not None and [int(d) for d in known_shape] != dims:
      raise ValueError(f"a_shape {known_shape.tolist()} differs from the shape of b "
                       f"{dims}")
    _check_bounds(_known(indices), dims)
    m = xnp(indices, values, b)
    size = int(np.prod(dims, dtype=np.int64))
    if np.shape(indices)[0] == 0 or size == 0:
      return b
    flat = _flat_index(m, indices, dims)
    if m is np:
      out = np.concatenate([b.reshape(-1), np.zeros(1, b.dtype)])
      np.add.at(out, flat, values)
      return out[:size].reshape(dims)
    return jnp.reshape(b, -1).at[flat].add(values, mode="drop").reshape(dims)
  return run
