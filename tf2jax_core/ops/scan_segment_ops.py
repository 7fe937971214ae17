"""Scans (Cumsum, Cumprod, CumulativeLogsumexp), EuclideanNorm, AccumulateNV2, segment
reductions (sorted, unsorted, sparse, and XLA's *V2 forms) and counting ops (Bincount,
DenseBincount, Bucketize), with TF's CPU semantics:

- Scans run sequentially in the input's dtype in TF (Eigen's scan): float16 sums round at
  every step, integers wrap. `exclusive` shifts the identity in, `reverse` scans from the
  end. CumulativeLogsumexp follows Eigen's scalar reducer exactly (see `_lse_step`).
- Sorted segment ops (Segment*): the output has `segment_ids[-1] + 1` rows, so the ids
  must be static; empty segments give 0 (1 for SegmentProd), even for SegmentMax/Min.
  Unsorted, negative or misplaced ids raise (TF rejects them).
- Unsorted ops: `num_segments` must be static; empty segments give 0 / 1 / the lowest /
  highest finite value (UnsortedSegmentMax never goes below the lowest finite value, so
  -inf becomes lowest); negative ids are dropped. Ids >= num_segments raise when the ids
  are concrete (TF raises); under jax.jit they cannot be checked and are dropped.
- *V2 ops (SegmentSumV2, ...) only have XLA kernels in TF: they behave like the unsorted
  ops (ids out of range are dropped, NaN propagates) and need num_segments > 0.
- SparseSegment*Grad: the kernels behind SparseSegment*'s gradients (see
  `_sparse_segment_grad`).
- Gradients are TF's: Cumprod divides by the input with div_no_nan, segment max/min split
  the cotangent among ties, segment products use TF's three-case formula, EuclideanNorm
  is x / (norm / dy), CumulativeLogsumexp uses TF's split positive/negative formula.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
from jax import lax
import ml_dtypes
import numpy as np

from tf2jax_core.lowering import FLOAT, NUMBER, REAL, is_static, lowering, xnp
from tf2jax_core.ops.array_ops import _known, scatter_start
from tf2jax_core.ops.reduction_ops import normalize_axes

LOWERINGS = []
_INDEX = ("int32", "int64")


# Helpers ------------------------------------------------------------------------------


def _is_float(dtype) -> bool:
  return bool(jnp.issubdtype(np.dtype(dtype), jnp.floating))


def _is_complex(dtype) -> bool:
  return np.dtype(dtype).kind == "c"


def _is_inexact(dtype) -> bool:
  return _is_float(dtype) or _is_complex(dtype)


def _lowest(dtype):
  dtype = np.dtype(dtype)
  if _is_float(dtype):
    return np.asarray(ml_dtypes.finfo(dtype).min, dtype)
  return np.asarray(np.iinfo(dtype).min, dtype)


def _highest(dtype):
  dtype = np.dtype(dtype)
  if _is_float(dtype):
    return np.asarray(ml_dtypes.finfo(dtype).max, dtype)
  return np.asarray(np.iinfo(dtype).max, dtype)


def _scalar(value, what: str) -> int:
  if np.ndim(value) != 0:
    raise ValueError(f"input {what} must be a scalar, got shape {list(np.shape(value))}")
  return int(value)


def _x64() -> bool:
  return jax.dtypes.canonicalize_dtype(np.int64) == np.dtype(np.int64)


# Scans --------------------------------------------------------------------------------


def _scan_axis(axis, rank: int) -> int:
  if np.ndim(axis) != 0:
    raise ValueError(f"input axis must be a scalar, got shape {list(np.shape(axis))}")
  a = int(axis)
  if not -rank <= a < rank:
    raise ValueError(f"input axis {a} is out of range for an input of rank {rank}")
  return a % rank


def _shift(m, x, axis: int, identity):
  """x shifted by one along `axis`, the identity coming in first (exclusive scans)."""
  n = x.shape[axis]
  if n == 0:
    return x
  pad_shape = list(x.shape)
  pad_shape[axis] = 1
  if m is np:
    pad = np.full(pad_shape, identity, x.dtype)
    return np.concatenate([pad, np.take(x, np.arange(n - 1), axis=axis)], axis=axis)
  pad = jnp.full(pad_shape, identity, x.dtype)
  return jnp.concatenate([pad, lax.slice_in_dim(x, 0, n - 1, axis=axis)], axis=axis)


def _scan(m, x, axis: int, exclusive: bool, reverse: bool, inclusive, identity):
  if reverse:
    x = m.flip(x, axis)
  if exclusive:
    x = _shift(m, x, axis, identity)
  y = inclusive(x, axis)
  return m.flip(y, axis) if reverse else y


def _np_cumsum(x, axis):
  return np.cumsum(x, axis=axis, dtype=x.dtype)


def _np_cumprod(x, axis):
  return np.cumprod(x, axis=axis, dtype=x.dtype)


def _jnp_cumsum(x, axis):
  return lax.cumsum(x, axis) if x.shape[axis] else x


def _jnp_cumprod(x, axis):
  return lax.cumprod(x, axis) if x.shape[axis] else x


@functools.partial(jax.custom_jvp, nondiff_argnums=(1, 2, 3))
def _cumprod_tf_grad(x, axis: int, exclusive: bool, reverse: bool):
  """Cumprod with TF's gradient: div_no_nan(cumsum(prod * dy, reverse=not reverse), x)."""
  return _scan(jnp, x, axis, exclusive, reverse, _jnp_cumprod, 1)


@_cumprod_tf_grad.defjvp
def _cumprod_tf_grad_jvp(axis, exclusive, reverse, primals, tangents):
  (x,), (t,) = primals, tangents
  y = _cumprod_tf_grad(x, axis, exclusive, reverse)
  zero = x == 0
  # Written so that its transpose is TF's: div_no_nan(., x) of the reversed cumsum of
  # y * dy (0 wherever x is 0, whatever the sum).
  scaled = jnp.where(zero, jnp.zeros_like(t), t / jnp.where(zero, jnp.ones_like(x), x))
  return y, y * _scan(jnp, scaled, axis, exclusive, reverse, _jnp_cumsum, 0)


def _cumulative(op: str, name: str) -> None:
  @lowering(op, attrs={"T": NUMBER, "Tidx": _INDEX, "exclusive": None, "reverse": None},
            static_inputs=(1,))
  def build(node):
    exclusive = bool(node.attrs.get("exclusive", False))
    reverse = bool(node.attrs.get("reverse", False))

    def run(x, axis):
      axis = _scan_axis(axis, np.ndim(x))
      if is_static(x):
        fn = _np_cumsum if name == "sum" else _np_cumprod
        return _scan(np, x, axis, exclusive, reverse, fn, 0 if name == "sum" else 1)
      x = jnp.asarray(x)
      if name == "sum":
        return _scan(jnp, x, axis, exclusive, reverse, _jnp_cumsum, 0)
      if _is_float(x.dtype):
        return _cumprod_tf_grad(x, axis, exclusive, reverse)
      return _scan(jnp, x, axis, exclusive, reverse, _jnp_cumprod, 1)
    return run
  LOWERINGS.append(build)


_cumulative("Cumsum", "sum")
_cumulative("Cumprod", "prod")


def _lse_step(m, acc, t):
  """Eigen's LogSumExp(acc, t) as TF's CPU scan applies it: min/max as std::min/max
  (a NaN `t` leaves both at `acc`, a NaN `acc` stays NaN), then
  max + log1p(exp(min - max)), or max itself when max < lowest (-inf)."""
  mi = m.where(t < acc, t, acc)
  ma = m.where(acc < t, t, acc)
  lse = m.log1p(m.exp(mi - ma)) + ma
  return m.where(ma < _lowest(acc.dtype), ma, lse).astype(acc.dtype)


def _np_clse(x, axis: int, exclusive: bool, reverse: bool):
  x = np.moveaxis(x, axis, 0)
  if reverse:
    x = x[::-1]
  acc = np.full(x.shape[1:], -np.inf, x.dtype)
  out = np.empty_like(x)
  for i in range(x.shape[0]):
    new = _lse_step(np, acc, x[i])
    out[i] = acc if exclusive else new
    acc = new
  if reverse:
    out = out[::-1]
  return np.moveaxis(out, 0, axis)


def _jnp_clse(x, axis: int, exclusive: bool, reverse: bool):
  if x.shape[axis] == 0:
    return x
  xs = jnp.moveaxis(x, axis, 0)

  def step(acc, t):
    new = _lse_step(jnp, acc, t)
    return new, (acc if exclusive else new)
  init = jnp.full(xs.shape[1:], -jnp.inf, x.dtype)
  _, ys = lax.scan(step, init, xs, reverse=reverse)
  return jnp.moveaxis(ys, 0, axis)


@functools.partial(jax.custom_vjp, nondiff_argnums=(1, 2, 3))
def _clse(x, axis: int, exclusive: bool, reverse: bool):
  return _jnp_clse(x, axis, exclusive, reverse)


def _clse_fwd(x, axis, exclusive, reverse):
  y = _jnp_clse(x, axis, exclusive, reverse)
  return y, (x, y)


def _clse_bwd(axis, exclusive, reverse, res, g):
  # TF's _CumulativeLogsumexpGrad: the cotangent split into its positive and negative
  # parts, each carried through a reversed cumulative logsumexp in log space.
  x, y = res
  lowest = _lowest(g.dtype)
  log_pos = jnp.where(g > 0, jnp.log(jnp.where(g > 0, g, 1)), lowest)
  log_neg = jnp.where(g < 0, jnp.log(jnp.where(g < 0, -g, 1)), lowest)
  pos = jnp.exp(_jnp_clse(log_pos - y, axis, exclusive, not reverse) + x)
  neg = jnp.exp(_jnp_clse(log_neg - y, axis, exclusive, not reverse) + x)
  return (pos - neg,)


_clse.defvjp(_clse_fwd, _clse_bwd)


@lowering("CumulativeLogsumexp", attrs={"T": FLOAT, "Tidx": _INDEX, "exclusive": None,
                                        "reverse": None}, static_inputs=(1,))
def _cumulative_logsumexp(node):
  exclusive = bool(node.attrs.get("exclusive", False))
  reverse = bool(node.attrs.get("reverse", False))

  def run(x, axis):
    axis = _scan_axis(axis, np.ndim(x))
    if is_static(x):
      return _np_clse(x, axis, exclusive, reverse)
    return _clse(jnp.asarray(x), axis, exclusive, reverse)
  return run


LOWERINGS.append(_cumulative_logsumexp)


# EuclideanNorm, AccumulateNV2 -----------------------------------------------------------


@functools.partial(jax.custom_vjp, nondiff_argnums=(1, 2))
def _norm(x, axes, keep):
  return _norm_impl(x, axes, keep)


def _norm_impl(x, axes, keep):
  # The barrier keeps XLA from rewriting sqrt(x * x) into |x|: TF squares (a square
  # below the smallest value becomes 0, and so does the norm).
  y = jnp.sqrt(lax.optimization_barrier(lax.reduce_sum(x * x, axes) if axes else x * x))
  return lax.expand_dims(y, axes) if keep else y


def _norm_fwd(x, axes, keep):
  y = _norm_impl(x, axes, keep)
  return y, (x, y)


def _norm_bwd(axes, keep, res, g):
  x, y = res
  if not keep:
    y, g = lax.expand_dims(y, axes), lax.expand_dims(g, axes)
  # TF's _EuclideanNormGrad, division order included; the barrier keeps XLA from
  # rewriting it into (x * g) / y (which flushes x * g and gives NaN for y = 0).
  return (x / lax.optimization_barrier(y / g),)


_norm.defvjp(_norm_fwd, _norm_bwd)


def _int_sqrt(m, s, dtype):
  """TF's integer EuclideanNorm: static_cast<T>(std::sqrt(double(sum of squares)))."""
  if m is np or _x64():
    return m.trunc(m.sqrt(s.astype(np.float64))).astype(dtype)
  # Without 64-bit floats: float32's square root, corrected to floor(sqrt(s)) (what the
  # double computation gives for every 32-bit sum).
  s32 = s.astype(np.uint32) if np.dtype(dtype).kind == "u" else s.astype(np.int32)
  su = s32.astype(np.uint32)
  r = jnp.floor(jnp.sqrt(s32.astype(np.float32))).astype(np.uint32)
  # r * r > su and (r + 1)**2 <= su, by division (the squares overflow uint32 at 65536).
  r = jnp.where((r > 0) & (r > su // jnp.maximum(r, 1)), r - 1, r)
  r = jnp.where(r + 1 <= su // (r + 1), r + 1, r)
  return r.astype(dtype)


@lowering("EuclideanNorm", attrs={"T": NUMBER, "Tidx": _INDEX, "keep_dims": None},
          static_inputs=(1,))
def _euclidean_norm(node):
  keep = bool(node.attrs.get("keep_dims", False))

  def run(x, axes):
    axes = normalize_axes(axes, np.ndim(x))
    m = xnp(x)
    dtype = x.dtype
    if _is_complex(dtype):
      sq = x.real * x.real + x.imag * x.imag
      s = m.sum(sq, axis=axes, keepdims=keep, dtype=sq.dtype)
      # TF takes Eigen's complex sqrt of s + 0j, sqrt((s + s) / 2): inf once s + s
      # overflows.
      big = np.finfo(sq.dtype).max / 2
      return m.where(s > big, np.inf, m.sqrt(s)).astype(dtype)
    if not _is_float(dtype):
      s = m.sum(x * x, axis=axes, keepdims=keep, dtype=dtype)  # wraps like TF's
      return _int_sqrt(m, s, dtype)
    if m is np:
      with np.errstate(all="ignore"):
        return np.sqrt(np.sum(x * x, axis=axes, keepdims=keep, dtype=dtype)).astype(dtype)
    return _norm(x, axes, keep)
  return run


LOWERINGS.append(_euclidean_norm)


@lowering("AccumulateNV2", attrs={"T": NUMBER, "N": None, "shape": None})
def _accumulate_n(node):
  def run(*inputs):
    shapes = {tuple(np.shape(v)) for v in inputs}
    if len(shapes) != 1:
      raise ValueError(f"inputs must all have the same shape, got {sorted(shapes)}")
    m = xnp(*inputs)
    # TF's rewrite adds the inputs one by one into a zero-filled accumulator.
    acc = m.zeros(np.shape(inputs[0]), inputs[0].dtype)
    for v in inputs:
      acc = acc + v
    return acc
  return run


LOWERINGS.append(_accumulate_n)


# Segment reductions ------------------------------------------------------------------------

_UFUNCS = {"add": np.add, "mul": np.multiply, "max": np.maximum, "min": np.minimum}


def _scatter(m, kind: str, data, ids, num: int, init):
  """Reduces rows of `data` ([n, ...]) into `num` rows by `ids` ([n]), starting from
  `init`; ids outside [0, num) are dropped."""
  shape = (num,) + tuple(np.shape(data)[1:])
  if m is np:
    out = np.full(shape, init, data.dtype)
    keep = (ids >= 0) & (ids < num)
    with np.errstate(all="ignore"):
      _UFUNCS[kind].at(out, ids[keep], data[keep])
    return out
  out = scatter_start(jnp.full(shape, init, data.dtype))
  ids = jnp.where(ids < 0, num, ids)  # negative ids are dropped too, never wrapped
  return getattr(out.at[ids], kind)(data, mode="drop")


def _gather(values, ids, num: int):
  """values[ids] with 0 for ids outside [0, num) (the transpose of `_scatter` add)."""
  ids = jnp.where(ids < 0, num, ids)
  return values.at[ids].get(mode="fill", fill_value=0)


def _bcast(mask, like):
  return lax.expand_dims(mask, tuple(range(mask.ndim, like.ndim)))


@functools.partial(jax.custom_jvp, nondiff_argnums=(2, 3, 4))
def _segment_extreme(data, ids, num: int, kind: str, init):
  return _scatter(jnp, kind, data, ids, num, init)


@_segment_extreme.defjvp
def _segment_extreme_jvp(num, kind, init, primals, tangents):
  # TF's _(Unsorted)SegmentMinOrMaxGrad: the cotangent of a segment split evenly among
  # the elements equal to its result.
  data, ids = primals
  t = tangents[0]
  out = _segment_extreme(data, ids, num, kind, init)
  valid = _bcast((ids >= 0) & (ids < num), data)
  selected = (data == _gather(out, ids, num)) & valid
  count = _scatter(jnp, "add", selected.astype(data.dtype), ids, num, 0)
  return out, _scatter(jnp, "add", jnp.where(selected, t, jnp.zeros_like(t)), ids, num,
                       0) / count


@functools.partial(jax.custom_jvp, nondiff_argnums=(2,))
def _segment_prod(data, ids, num: int):
  return _scatter(jnp, "mul", data, ids, num, 1)


@_segment_prod.defjvp
def _segment_prod_jvp(num, primals, tangents):
  # TF's _(Unsorted)SegmentProdGrad: product / element, the product of the other
  # elements for a single zero, 0 for segments with several zeros. Like TF, a dropped
  # (negative) id reads segment 0's factor, so its 0 cotangent times inf gives NaN.
  data, ids = primals
  t = tangents[0]
  out = _segment_prod(data, ids, num)
  zero = data == 0
  zeros = _scatter(jnp, "add", zero.astype(np.int32), ids, num, 0)
  non_zero = jnp.where(zero, jnp.ones_like(data), data)
  non_zero_prod = _scatter(jnp, "mul", non_zero, ids, num, 1)
  clipped = jnp.maximum(ids, 0)
  partial = jnp.where(zero, _gather(non_zero_prod, clipped, num),
                      _gather(out, clipped, num) / non_zero)
  summed = _scatter(jnp, "add", t * partial, ids, num, 0)
  return out, jnp.where(zeros > 1, jnp.zeros_like(summed), summed)


def _counts(m, ids, num: int):
  return _scatter(m, "add", m.ones(np.shape(ids), np.int32), ids, num, 0)


def _divide(m, total, count, dtype):
  """A segment sum divided by its element count (TF's mean: 0 for empty segments;
  integers truncate toward zero, complex parts are divided one by one)."""
  count = _bcast(m.maximum(count, 1), total) if m is jnp else \
      np.maximum(count, 1).reshape(count.shape + (1,) * (total.ndim - count.ndim))
  if _is_complex(dtype):
    part = total.real.dtype
    c = count.astype(part)
    if m is np:
      return (total.real / c + 1j * (total.imag / c)).astype(dtype)
    return lax.complex(total.real / c, total.imag / c)
  if _is_float(dtype):  # the barrier: else XLA multiplies by a broadcast 1 / count
    count = count.astype(dtype)
    if m is jnp:
      count = lax.optimization_barrier(jnp.broadcast_to(count, total.shape))
    return (total / count).astype(dtype)
  c = count.astype(dtype)
  if m is np:  # C++'s division: toward zero
    q, r = np.divmod(total, c)
    return (q + ((r != 0) & (total < 0))).astype(dtype)
  return lax.div(total, c)


def _segment_reduce(m, name: str, data, ids, num: int, empty_zero: bool):
  """The reduction `name` of `data` rows by `ids` into `num` rows. `empty_zero`: empty
  segments of max/min give 0 (sorted ops) instead of the lowest/highest value."""
  dtype = np.dtype(data.dtype)
  if name == "sum":
    return _scatter(m, "add", data, ids, num, 0)
  if name == "mean":
    total = _scatter(m, "add", data, ids, num, 0)
    return _divide(m, total, _counts(m, ids, num), dtype)
  if name == "prod":
    if m is jnp and _is_inexact(dtype):
      return _segment_prod(data, ids, num)
    return _scatter(m, "mul", data, ids, num, 1)
  kind = name
  if empty_zero:
    init = (-np.inf if name == "max" else np.inf) if _is_float(dtype) else \
        (_lowest(dtype) if name == "max" else _highest(dtype))
  else:
    init = _lowest(dtype) if name == "max" else _highest(dtype)
  init = np.asarray(init, dtype)
  if m is jnp and _is_float(dtype):
    out = _segment_extreme(data, ids, num, kind, init.item())
  else:
    out = _scatter(m, kind, data, ids, num, init)
  if empty_zero:
    empty = _counts(m, ids, num) == 0
    mask = _bcast(empty, out) if m is jnp else empty.reshape(empty.shape + (1,) * (out.ndim - 1))
    out = m.where(mask, m.zeros_like(out), out)
  return out


def _check_sorted_ids(ids, rows: int, what: str = "segment_ids", bound: int | None = None):
  if np.ndim(ids) != 1:
    raise ValueError(f"input {what} must be a vector, got shape {list(np.shape(ids))}")
  if ids.shape[0] != rows:
    raise ValueError(f"input {what} has {ids.shape[0]} elements, it must have {rows} (the "
                     "size of dimension 0 of the data, or of indices)")
  if ids.size:
    if int(ids.min()) < 0:
      raise ValueError(f"input {what} holds a negative id {int(ids.min())}")
    if np.any(np.diff(ids.astype(np.int64)) < 0):
      raise ValueError(f"input {what} is not sorted (segment ids are not increasing): "
                       f"{ids.tolist()}")
    if bound is not None and int(ids.max()) >= bound:
      raise ValueError(f"input {what} holds id {int(ids.max())}, not below num_segments "
                       f"({bound})")


def _sorted_segment(op: str, name: str, types) -> None:
  @lowering(op, attrs={"T": types, "Tindices": _INDEX}, static_inputs=(1,))
  def build(node):
    def run(data, ids):
      if np.ndim(data) < 1:
        raise ValueError("input data must be at least rank 1, got a scalar")
      _check_sorted_ids(ids, np.shape(data)[0])
      num = int(ids[-1]) + 1 if ids.size else 0
      m = xnp(data)
      return _segment_reduce(m, name, data, ids.astype(np.int64) if m is np else ids,
                             num, empty_zero=True)
    return run
  LOWERINGS.append(build)


for _op, _name, _types in [("SegmentSum", "sum", NUMBER), ("SegmentMean", "mean", NUMBER),
                           ("SegmentProd", "prod", NUMBER), ("SegmentMax", "max", REAL),
                           ("SegmentMin", "min", REAL)]:
  _sorted_segment(_op, _name, _types)


def _flat_rows(data, ids):
  """data reshaped to [ids.size, ...]: ids index its leading dimensions."""
  k = np.ndim(ids)
  shape = tuple(np.shape(data))
  if shape[:k] != tuple(np.shape(ids)):
    raise ValueError(f"input segment_ids of shape {list(np.shape(ids))} must be a prefix of "
                     f"the data's shape {list(shape)}")
  rows = int(np.prod(shape[:k], dtype=np.int64))
  return data.reshape((rows,) + shape[k:]), ids.reshape(rows)


def _unsorted_segment(op: str, name: str, types, ids_types, xla: bool = False) -> None:
  @lowering(op, attrs={"T": types, "Tindices": ids_types, "Tnumsegments": _INDEX},
            static_inputs=(2,))
  def build(node):
    def run(data, ids, num):
      num = _scalar(num, "num_segments")
      if num < 0:
        raise ValueError(f"input num_segments ({num}) must not be negative")
      if xla and num == 0:
        raise ValueError(f"input num_segments is 0: TF's (XLA) kernel of {op} rejects it")
      rows, flat = _flat_rows(data, ids)
      known = _known(flat) if np.size(data) else None  # TF checks nothing without data
      if known is not None and not xla and known.size and int(known.max()) >= num:
        raise ValueError(f"input segment_ids holds id {int(known.max())}, out of range "
                         f"[0, {num})")
      m = xnp(data, ids)
      if m is np:
        flat = flat.astype(np.int64)
      return _segment_reduce(m, name, rows, flat, num, empty_zero=False)
    return run
  LOWERINGS.append(build)


_unsorted_segment("UnsortedSegmentSum", "sum", NUMBER, ("int16",) + _INDEX)
_unsorted_segment("UnsortedSegmentProd", "prod", NUMBER, _INDEX)
_unsorted_segment("UnsortedSegmentMax", "max", REAL, _INDEX)
_unsorted_segment("UnsortedSegmentMin", "min", REAL, _INDEX)
_unsorted_segment("SegmentSumV2", "sum", NUMBER, _INDEX, xla=True)
_unsorted_segment("SegmentProdV2", "prod", NUMBER, _INDEX, xla=True)
_unsorted_segment("SegmentMaxV2", "max", REAL, _INDEX, xla=True)
_unsorted_segment("SegmentMinV2", "min", REAL, _INDEX, xla=True)


# Sparse segment reductions -------------------------------------------------------------------


def _sparse_segment(op: str, name: str, types, with_num: bool) -> None:
  attrs = {"T": types, "Tidx": _INDEX, "Tsegmentids": _INDEX, "sparse_gradient": None}
  if with_num:
    attrs["Tnumsegments"] = _INDEX

  @lowering(op, attrs=attrs, static_inputs=(2, 3) if with_num else (2,))
  def build(node):
    def run(data, indices, ids, num=None):
      if np.ndim(data) < 1:
        raise ValueError("input data must be at least rank 1, got a scalar")
      if np.ndim(indices) != 1:
        raise ValueError(f"input indices must be a vector, got shape "
                         f"{list(np.shape(indices))}")
      bound = None
      if with_num:
        bound = _scalar(num, "num_segments")
        if bound < 0:
          raise ValueError(f"input num_segments ({bound}) must not be negative")
      _check_sorted_ids(ids, np.shape(indices)[0], bound=bound)
      count = bound if with_num else (int(ids[-1]) + 1 if ids.size else 0)
      rows = np.shape(data)[0]
      known = _known(indices)
      if known is not None and known.size and (known.min() < 0 or known.max() >= rows):
        bad = known[(known < 0) | (known >= rows)][0]
        raise ValueError(f"input indices holds {int(bad)}, out of range [0, {rows})")
      m = xnp(data, indices)
      dtype = np.dtype(data.dtype)
      half = dtype in (np.float16, ml_dtypes.bfloat16)
      x = data.astype(np.float32) if half else data  # TF accumulates halves in float32
      if m is np:
        picked = x[indices.astype(np.int64)] if x.shape[0] else \
            np.zeros((len(indices),) + x.shape[1:], x.dtype)
        ids_ = ids.astype(np.int64)
      else:
        picked = jnp.take(x, indices, axis=0, mode="clip") if rows else \
            jnp.zeros((len(indices),) + x.shape[1:], x.dtype)
        ids_ = ids
      total = _scatter(m, "add", picked, ids_, count, 0)
      if name != "sum":
        n = np.bincount(ids.astype(np.int64), minlength=count)[:count] if ids.size else \
            np.zeros(count, np.int64)
        n = np.maximum(n, 1).astype(total.dtype)
        if name == "sqrtn":
          n = np.sqrt(n)
        total = total / n.reshape((count,) + (1,) * (total.ndim - 1))
      return total.astype(dtype)
    return run
  LOWERINGS.append(build)


for _op, _name, _types in [("SparseSegmentSum", "sum", REAL),
                           ("SparseSegmentMean", "mean", FLOAT),
                           ("SparseSegmentSqrtN", "sqrtn", FLOAT)]:
  _sparse_segment(_op, _name, _types, False)
  _sparse_segment(_op + "WithNumSegments", _name, _types, True)


def _sparse_segment_grad(op: str, name: str) -> None:
  """SparseSegment{Sum,Mean,SqrtN}Grad(grad, indices, segment_ids, output_dim0): the
  gradient of SparseSegment* with respect to its data, of `output_dim0` rows:
  output[indices[i]] += grad[segment_ids[i]] * scale[segment_ids[i]], with scale 1 (Sum),
  1 / n or 1 / sqrt(n) for a segment of n ids (Mean, SqrtN). TF checks indices in
  [0, output_dim0) and ids in [0, grad.shape[0]) (ids need not be sorted), but nothing
  when output_dim0 is 0, and sums float16/bfloat16 in float32, rounding once. With no
  indices TF's kernel leaves its output uninitialized; here it is zeros."""
  @lowering(op, attrs={"T": FLOAT, "Tidx": _INDEX, "Tsegmentids": _INDEX},
            static_inputs=(3,))
  def build(node):
    def run(grad, indices, ids, dim0):
      dim0 = _scalar(dim0, "output_dim0")
      if dim0 < 0:
        raise ValueError(f"input output_dim0 ({dim0}) must not be negative")
      if np.ndim(grad) < 1:
        raise ValueError("input grad must be at least rank 1, got a scalar")
      for value, what in [(indices, "indices"), (ids, "segment_ids")]:
        if np.ndim(value) != 1:
          raise ValueError(f"input {what} must be a vector, got shape "
                           f"{list(np.shape(value))}")
      if np.shape(indices) != np.shape(ids):
        raise ValueError(f"inputs segment_ids and indices must have the same size, got "
                         f"{np.shape(ids)[0]} and {np.shape(indices)[0]}")
      segments = np.shape(grad)[0]
      m = xnp(grad, indices, ids)
      if dim0 == 0:  # TF checks no index nor id then
        return m.zeros((0,) + tuple(np.shape(grad)[1:]), grad.dtype)
      for value, what, bound in [(ids, "segment_ids", segments), (indices, "indices", dim0)]:
        known = _known(value)
        if known is not None and known.size and (known.min() < 0 or known.max() >= bound):
          bad = known[(known < 0) | (known >= bound)][0]
          raise ValueError(f"input {what} holds {int(bad)}, out of range [0, {bound})")
      dtype = np.dtype(grad.dtype)
      acc = np.float32 if dtype in (np.float16, ml_dtypes.bfloat16) else dtype
      g = grad.astype(acc)
      if m is np:
        ids, indices = ids.astype(np.int64), indices.astype(np.int64)
      if name != "sum":
        n = m.maximum(_counts(m, ids, segments), 1).astype(acc)
        scale = 1 / (n if name == "mean" else m.sqrt(n))
        g = g * scale.reshape((segments,) + (1,) * (g.ndim - 1))
      if m is np:
        rows = g[ids] if segments else np.zeros((len(ids),) + g.shape[1:], acc)
      else:
        rows = _gather(g, ids, segments)
      return _scatter(m, "add", rows, indices, dim0, 0).astype(dtype)
    return run
  LOWERINGS.append(build)


for _op, _name in [("SparseSegmentSumGrad", "sum"), ("SparseSegmentMeanGrad", "mean"),
                   ("SparseSegmentSqrtNGrad", "sqrtn")]:
  _sparse_segment_grad(_op, _name)


# Counting ops ---------------------------------------------------------------------------


def _bincount(m, arr, size: int, weights, dtype, binary: bool, what: str = "arr"):
  """Counts (or sums of weights) of the values of `arr` ([rows, n] or [n]) in [0, size);
  larger values are ignored, negative ones raise when known."""
  known = _known(arr)
  if known is not None and known.size and int(known.min()) < 0:
    raise ValueError(f"input {what} must be non-negative, it holds {int(known.min())}")
  dtype = np.dtype(dtype)
  use_weights = np.size(weights) > 0 and not binary
  if use_weights and tuple(np.shape(weights)) != tuple(np.shape(arr)):
    raise ValueError(f"input weights of shape {list(np.shape(weights))} must have the shape "
                     f"of {what} {list(np.shape(arr))} or be empty")
  vals = weights if use_weights else m.ones(np.shape(arr), dtype)
  if np.ndim(arr) == 2:
    rows, n = np.shape(arr)
    if m is np:
      flat = np.where((arr >= 0) & (arr < size),
                      arr.astype(np.int64) + np.arange(rows)[:, None] * size, -1).reshape(-1)
    else:
      flat = jnp.where((arr >= 0) & (arr < size),
                       arr + jnp.arange(rows, dtype=arr.dtype)[:, None] * size, -1).reshape(-1)
    out = _scatter(m, "add", vals.reshape(-1), flat, rows * size, 0).reshape(rows, size)
  else:
    flat = arr.reshape(-1)
    if m is np:
      flat = flat.astype(np.int64)
    out = _scatter(m, "add", vals.reshape(-1), flat, size, 0)
  if binary:
    out = (out > 0).astype(dtype)
  return out


@lowering("Bincount", attrs={"T": ("int32", "int64", "float32", "float64")},
          static_inputs=(1,))
def _bincount_op(node):
  dtype = node.attrs["T"]

  def run(arr, size, weights):
    size = _scalar(size, "size")
    if size < 0:
      raise ValueError(f"input size ({size}) must be non-negative")
    if np.size(weights) and np.shape(weights) != np.shape(arr):
      raise ValueError(f"input weights of shape {list(np.shape(weights))} must have the "
                       f"shape of arr {list(np.shape(arr))} or be empty")
    m = xnp(arr, weights)
    flat_w = weights.reshape(-1) if np.size(weights) else weights
    return _bincount(m, arr.reshape(-1), size, flat_w, dtype, False)
  return run


LOWERINGS.append(_bincount_op)


@lowering("DenseBincount", attrs={"T": ("int32", "int64", "float32", "float64"),
                                  "Tidx": _INDEX, "binary_output": None},
          static_inputs=(1,))
def _dense_bincount(node):
  dtype = node.attrs["T"]
  binary = bool(node.attrs.get("binary_output", False))

  def run(x, size, weights):
    size = _scalar(size, "size")
    if size < 0:
      raise ValueError(f"input size ({size}) must be non-negative")
    if np.ndim(x) > 2:
      raise ValueError(f"input must be at most rank 2, got shape {list(np.shape(x))}")
    if np.size(weights) and np.shape(weights) != np.shape(x):
      raise ValueError(f"input weights of shape {list(np.shape(weights))} must have the "
                       f"shape of input {list(np.shape(x))} or be empty")
    m = xnp(x, weights)
    x = x.reshape(-1) if np.ndim(x) == 0 else x
    w = weights.reshape(np.shape(x)) if np.size(weights) else weights
    return _bincount(m, x, size, w, dtype, binary, what="input")
  return run


LOWERINGS.append(_dense_bincount)


def _check_boundaries(value):
  b = np.asarray(value, np.float32)
  if b.size > 1 and np.any(b[1:] < b[:-1]):
    return f"boundaries must be sorted, got {list(value)}"
  return True


@lowering("Bucketize", attrs={"T": ("int32", "int64", "float32", "float64"),
                              "boundaries": _check_boundaries})
def _bucketize(node):
  from tf2jax_core.ops.math_ops import _flush  # (math_ops imports this module)
  # TF's CPU threads read subnormals as zero (DAZ): a subnormal float boundary is 0 even
  # against float64 inputs, and so is a subnormal input (XLA's traced compare does the same).
  boundaries = _flush(np.asarray(node.attrs.get("boundaries", []), np.float32))

  def run(x):
    m = xnp(x)
    # std::upper_bound: the number of boundaries b with !(x < b); integers compare as
    # float (C++'s conversions), float64 inputs against the float boundaries widened.
    cmp_dtype = np.float64 if np.dtype(x.dtype) == np.float64 else np.float32
    xs = x.astype(cmp_dtype)
    if m is np and np.dtype(x.dtype).kind == "f":
      xs = _flush(xs)
    b = boundaries.astype(cmp_dtype)
    if b.size == 0:
      return m.zeros(np.shape(x), np.int32)
    below = ~(xs[..., None] < b)
    return m.sum(below.astype(np.int32), axis=-1, dtype=np.int32)
  return run


LOWERINGS.append(_bucketize)

