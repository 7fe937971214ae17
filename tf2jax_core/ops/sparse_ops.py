"""Sparse ops on COO indices with TF's CPU semantics: SparseTensorDenseMatMul,
SparseToDense, SparseTensorDenseAdd, SparseReduceSum/Max, SparseDenseCwise{Add,Mul,Div}
and SparseSoftmax.

- Indices that TF's kernel rejects (out of bounds; for SparseToDense with
  validate_indices, unsorted or repeated) raise when their values are known (constants,
  eager calls). Under jax.jit they cannot be checked: out-of-bounds entries are dropped.
- Repeated indices add up (SparseTensorDenseMatMul, SparseTensorDenseAdd,
  SparseReduceSum); in SparseToDense without validation the last one wins, as in TF's
  sequential loop.
- SparseTensorDenseMatMul sums float16/bfloat16 products in float32, as TF does.
- SparseReduceMax reduces the values present only (not the implicit zeros); a group with
  no value gives 0. TF checks only where an index lands in the output (the row-major
  position of its kept dims), not each index against the shape.
- SparseDenseCwise* broadcast the dense side to the sparse shape only; Div refuses a zero
  divisor (one that an index reads), integer division truncates.
- SparseSoftmax: a softmax over the values sharing all but the last index, output in
  the indices' sorted (row-major) order, as TF's kernel reorders them. It checks no
  bounds: indices are grouped by their values.
- Gradients flow to the values and the dense input (TF has none for the indices).
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

from jax import lax

from tf2jax_core.lowering import COMPLEX, FLOAT, NUMBER, REAL, lowering, xnp
from tf2jax_core.ops.array_ops import _known, scatter_start

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
    out = scatter_start(jnp.zeros((rows, cols), acc)).at[r].add(terms, mode="drop")
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
      last = scatter_start(jnp.zeros(size, np.int32)).at[flat].max(order, mode="drop")
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


# SparseReduceSum / SparseReduceMax ----------------------------------------------------


def _reduction_axes(axes, rank: int) -> list[int]:
  if np.ndim(axes) > 1:
    raise ValueError(f"input reduction_axes must be a scalar or a vector, got shape "
                     f"{list(np.shape(axes))}")
  out = set()
  for a in np.reshape(axes, -1).tolist():
    if not -rank <= a < rank:
      raise ValueError(f"invalid reduction dimension {a}, for input with {rank} dimensions")
    out.add(a % rank)
  return sorted(out)


def _sparse_input(indices, values, shape=None, what: str = "input"):
  """(nnz, rank) of a SparseTensor input, after TF's shape checks."""
  _matrix(indices, f"{what}_indices")
  n, r = np.shape(indices)
  _vector(values, f"{what}_values", n)
  if shape is not None and np.shape(shape) != (r,):
    raise ValueError(f"input {what}_shape (shape {list(np.shape(shape))}) must have one "
                     f"element per column of the indices ({r})")
  return n, r


@lowering("SparseReduceSum", attrs={"T": NUMBER, "keep_dims": None}, static_inputs=(2, 3))
def _sparse_reduce_sum(node):
  return _sparse_reduce(node, "add")


@lowering("SparseReduceMax", attrs={"T": REAL, "keep_dims": None}, static_inputs=(2, 3))
def _sparse_reduce_max(node):
  return _sparse_reduce(node, "max")


def _last_group_at(kept_idx, flat, size):
  """Whether each entry's group (its kept indices) is the last, in sorted order, of the
  groups at its output position `flat`. TF reduces each group and assigns the result to
  the group's position, so groups whose out-of-bounds indices land on one position (e.g.
  [1, -1] and [0, 0] of a [2, 1] output) overwrite each other: the last one wins."""
  m = xnp(kept_idx, flat)
  kept_idx, flat = m.asarray(kept_idx), m.asarray(flat)
  cols = [kept_idx[:, j] for j in range(np.shape(kept_idx)[1])]
  order = m.lexsort(cols[::-1])  # the first kept dim sorts first, as TF's reorder
  ordered = kept_idx[order]
  new = m.concatenate([m.ones(1, bool), m.any(ordered[1:] != ordered[:-1], axis=1)])
  rank = (m.cumsum(new) - 1).astype(np.int32)
  if m is np:
    group = np.zeros(len(new), np.int32)
    group[order] = rank
    last = np.full(size + 1, -1, np.int32)
    np.maximum.at(last, flat, group)
  else:
    group = scatter_start(jnp.zeros(len(new), jnp.int32)).at[order].set(rank)
    last = scatter_start(jnp.full(size + 1, -1, jnp.int32)).at[flat].max(group)
  return group == last[flat]


def _sparse_reduce(node, kind: str):
  """The values summed (or maxed) over `reduction_axes` into a dense tensor; TF reduces
  nothing for an empty reduction_axes (the Python wrappers pass every axis instead)."""
  keep = bool(node.attrs.get("keep_dims", False))

  def run(indices, values, shape, axes):
    _sparse_input(indices, values, what="input")
    dims = _shape_of(shape, "input_shape", np.shape(indices)[1])
    red = _reduction_axes(axes, len(dims))
    kept = [i for i in range(len(dims)) if i not in red]
    kdims = [dims[i] for i in kept]
    out_shape = [1 if i in red else d for i, d in enumerate(dims)] if keep else kdims
    m = xnp(indices, values)
    dtype = np.dtype(values.dtype)
    size = int(np.prod(kdims, dtype=np.int64))
    # TF checks the row-major position in the output, not each index: [0, 1] of a [2, 1]
    # shape lands at position 1 ([1, 0]).
    strides = np.cumprod([1] + kdims[:0:-1])[::-1].astype(np.int64)
    kept_idx = indices[:, np.asarray(kept, np.intp)]
    known = _known(kept_idx)
    if known is not None:
      pos = (known.astype(np.int64) * strides).sum(axis=1)
      bad = np.nonzero((pos < 0) | (pos >= size))[0]
      if bad.size:
        raise ValueError(f"input_indices[{int(bad[0])}] is written at position "
                         f"{int(pos[bad[0]])} of the output, outside of [0, {size})")
    flat = (kept_idx * strides.astype(kept_idx.dtype)).sum(axis=1)
    flat = m.where((flat >= 0) & (flat < size), flat, size)  # traced: dropped
    if kind == "add":
      init = np.zeros((), dtype)
    elif jnp.issubdtype(dtype, jnp.floating):
      init = np.asarray(-np.inf, dtype)
    else:
      init = np.asarray(jnp.iinfo(dtype).min, dtype)
    if kept and np.shape(indices)[0] > 1:
      values = m.where(_last_group_at(kept_idx, flat, size), values, init)
    if m is np:
      out = np.full(size + 1, init, dtype)
      (np.add if kind == "add" else np.maximum).at(out, flat, values)
      out = out[:size]
      count = np.bincount(flat, minlength=size + 1)[:size]
    else:
      out = getattr(scatter_start(jnp.full(size, init, dtype)).at[flat], kind)(values,
                                                                              mode="drop")
      count = scatter_start(jnp.zeros(size, np.int32)).at[flat].add(1, mode="drop")
    if kind == "max":  # groups without values give 0
      out = m.where(count > 0, out, m.zeros_like(out))
    return out.reshape(out_shape)
  return run


# SparseDenseCwise{Add,Mul,Div} -------------------------------------------------------------


def _trunc_div(a, b):
  """C++'s integer division (toward zero) in NumPy; INT_MIN / -1 wraps as in TF."""
  with np.errstate(all="ignore"):
    q, r = np.divmod(a, b)
    return (q + ((r != 0) & ((a < 0) != (b < 0)))).astype(a.dtype)


@lowering("SparseDenseCwiseAdd", "SparseDenseCwiseMul", "SparseDenseCwiseDiv",
          attrs={"T": REAL})
def _sparse_dense_cwise(node):
  """sp_values combined with the dense tensor, broadcast to sp_shape (never the other
  way), at sp_indices: a new values vector."""
  op = node.op[len("SparseDenseCwise"):]

  def run(indices, values, shape, dense):
    n, r = _sparse_input(indices, values, shape, "sp")
    dshape = list(np.shape(dense))
    k = len(dshape)
    dims = _known(shape)
    if k > r or (dims is not None and any(
        d != 1 and d != int(s) for d, s in zip(dshape, dims[r - k:]))):
      raise ValueError(f"{node.op} broadcasts the dense side to the sparse shape only; got "
                       f"sp_shape {dims.tolist() if dims is not None else f'of rank {r}'} "
                       f"and dense shape {dshape}")
    if dims is not None:
      _check_bounds(_known(indices), [int(d) for d in dims], "sp_indices")
    m = xnp(indices, values, dense)
    if n == 0:
      return values
    cols = indices[:, r - k:]
    cols = m.where(np.asarray(dshape) == 1, m.zeros_like(cols), cols) if k else cols
    flat = _flat_index(m, cols, dshape)
    size = int(np.prod(dshape, dtype=np.int64))
    if m is np:
      d = np.concatenate([dense.reshape(-1), np.zeros(1, dense.dtype)])[flat]
    else:
      d = jnp.reshape(dense, -1).at[flat].get(mode="fill", fill_value=0)
    if op == "Add":
      return values + d
    if op == "Mul":
      return values * d
    known = _known(d) if size else None
    if known is not None and np.any(known == 0):
      i = int(np.nonzero(known == 0)[0][0])
      raise ValueError(f"SparseDenseCwiseDiv cannot divide by zero: the dense value at "
                       f"sp_indices[{i}] is 0")
    if jnp.issubdtype(values.dtype, jnp.integer):
      return _trunc_div(values, d) if m is np else lax.div(values, d)
    # A 1-element dense becomes a broadcast, which XLA would turn into a multiplication by
    # its reciprocal (0 for 2 / 2**127 in float32): the barrier hides it.
    return values / (d if m is np else lax.optimization_barrier(d))
  return run


# SparseSoftmax ------------------------------------------------------------------------------


@lowering("SparseSoftmax", attrs={"T": FLOAT})
def _sparse_softmax(node):
  def run(indices, values, shape):
    n, r = _sparse_input(indices, values, what="sp")
    if np.ndim(shape) != 1 or np.shape(shape)[0] < 2:
      raise ValueError(f"input sp_shape must have at least 2 elements (rank >= 2), got "
                       f"shape {list(np.shape(shape))}")
    if np.shape(shape)[0] != r:
      raise ValueError(f"input sp_shape has {np.shape(shape)[0]} elements, the indices "
                       f"have {r} columns")
    if n == 0:
      return values
    m = xnp(indices, values)
    # TF reorders the entries (row-major, stably) and softmaxes each run of equal
    # leading indices; its output follows that order.
    order = m.lexsort(tuple(indices[:, c] for c in reversed(range(r))))
    head, v = indices[order][:, :r - 1], values[order]
    new = m.concatenate([m.ones(1, bool), m.any(head[1:] != head[:-1], axis=1)])
    group = m.cumsum(new) - 1
    low = np.asarray(-np.inf, values.dtype)
    if m is np:
      top = np.full(n, low, values.dtype)
      np.maximum.at(top, group, v)
      e = np.exp(v - top[group])
      total = np.zeros(n, values.dtype)
      np.add.at(total, group, e)
    else:
      top = lax.stop_gradient(jnp.full(n, low, values.dtype).at[group].max(v))
      e = jnp.exp(v - top[group])
      total = jnp.zeros(n, values.dtype).at[group].add(e)
    return (e * (1 / total)[group]).astype(values.dtype)
  return run
