"""Array manipulation: shapes, slicing, gathers and scatters, padding, diagonals.

Values known at conversion time (NumPy arrays) are computed with NumPy so that shape
arithmetic (`Shape -> StridedSlice -> Pack -> Reshape`) stays static under `jax.jit`;
traced values go through `jax.numpy`/`lax`. TensorFlow's dtypes are kept exactly.

Index checks: TF's CPU kernels raise on out-of-range indices. Here the check runs
whenever the indices' values are known, i.e. static, or concrete JAX arrays outside
`jit`. Under `jit` they cannot be checked: gathers then give zeros for out-of-range
indices and scatters drop out-of-range updates (what TF does on GPU).

Ops whose output *size* depends on values (Where, Unique*, ListDiff, DynamicPartition,
DynamicStitch, Range with computed bounds) work whenever those values are known and
raise a `ConversionError` naming the op under `jit`/`vmap`.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from tf2jax_core.errors import ConversionError
from tf2jax_core.lowering import (COMPLEX, FLOAT, INT, NUMBER, REAL, is_static, lowering,
                                  xnp)

LOWERINGS = []

_IDX = ("int32", "int64")
_IDX16 = ("int16", "int32", "int64")


def _data(value):
  """Attr rule for a data type: any dtype a JAX or NumPy array can hold (not strings)."""
  if isinstance(value, np.dtype) and value != np.dtype(object):
    return True
  return f"{value} tensors are not supported (JAX has no such dtype)"


_ANY = _data
_NUM_BOOL = NUMBER + ("bool",)

# Helpers ----------------------------------------------------------------------------


def _ints(value) -> list[int]:
  return [int(v) for v in np.reshape(np.asarray(value), -1)]


def _int(value, what: str) -> int:
  values = _ints(value)
  if len(values) != 1:
    raise ValueError(f"{what} must be a single value, got shape {list(np.shape(value))}")
  return values[0]


def _axis(axis: int, rank: int, what: str = "axis") -> int:
  if not -rank <= axis < rank:
    raise ValueError(f"Expected {what} in the range [{-rank}, {rank}), but got {axis}")
  return axis % rank if rank else 0


def _nbytes(shape, dtype) -> int:
  return math.prod(int(d) for d in shape) * np.dtype(dtype).itemsize


def _shape(x) -> tuple[int, ...]:
  return tuple(int(d) for d in np.shape(x))


def _known(value):
  """`value` as NumPy when its values are known now, else None (a tracer under jit)."""
  if is_static(value):
    return value
  if isinstance(value, jax.core.Tracer):
    return None
  try:
    return np.asarray(value)
  except Exception:  # pragma: no cover - anything that is not an array
    return None


def _concrete(node, value, what: str):
  """The values of an input that determines the output's shape, or a clear error."""
  known = _known(value)
  if known is None:
    raise ConversionError(
        f"{node.op} node {node.path!r}: the shape of its output depends on the values of "
        f"{what}, which are traced here (under jax.jit, vmap or another transformation). "
        f"{node.op} works when the converted function is called without jit (or when "
        "these values are constants of the graph); TensorFlow has no size-bounded form "
        "of this op.")
  return known


def _as(m, value, dtype):
  return np.asarray(value, dtype=dtype) if m is np else jnp.asarray(value, dtype=dtype)


def _full(m, shape, value, dtype):
  if m is np:
    return np.full(shape, np.asarray(value), dtype=dtype)
  return jnp.full(shape, value, dtype=dtype)


def _no_grad(value):
  """TF defines no gradient for this input (its gradient function returns None)."""
  return value if is_static(value) else lax.stop_gradient(value)


def _check_range(known, upper, what: str, lower: int = 0, shown_upper=None) -> None:
  """Raises like TF when a known index is outside [lower, upper) (the message shows
  `shown_upper` instead of `upper` when given, as kernels checking flat indices do)."""
  if known is None or known.size == 0:
    return
  bad = (known < lower) | (known >= upper)
  if np.any(bad):
    pos = tuple(int(i) for i in np.argwhere(bad)[0])
    value = known[pos] if pos else known
    where = ",".join(str(p) for p in pos)
    shown = upper if shown_upper is None else shown_upper
    raise ValueError(f"{what}[{where}] = {int(value)} is not in [{lower}, {shown})")


def _index_for_jnp(idx, bound: int):
  """Indices as int32/int64 with negative values moved out of range (so fill/drop)."""
  idx = jnp.asarray(idx)
  if np.dtype(idx.dtype).itemsize < 4:
    idx = idx.astype(jnp.int32)
  return jnp.where(idx < 0, bound, idx)


def _register(*ops, attrs=None, static_inputs=()):
  """Registers the decorated builder for `ops` (collected in LOWERINGS)."""
  def wrap(build):
    low = lowering(*ops, attrs=attrs, static_inputs=static_inputs)(build)
    LOWERINGS.append(low)
    return low
  return wrap


# Shapes ------------------------------------------------------------------------------


@lowering("Shape", attrs={"T": None, "out_type": _IDX})
def shape(node):
  out_type = node.attrs.get("out_type", np.dtype(np.int32))
  return lambda x: np.asarray(np.shape(x), dtype=out_type)


@lowering("ShapeN", attrs={"T": None, "N": None, "out_type": _IDX})
def shape_n(node):
  out_type = node.attrs.get("out_type", np.dtype(np.int32))
  return lambda *xs: [np.asarray(np.shape(x), dtype=out_type) for x in xs]


@lowering("Size", attrs={"T": None, "out_type": _IDX})
def size(node):
  out_type = node.attrs.get("out_type", np.dtype(np.int32))
  return lambda x: np.asarray(math.prod(_shape(x)), dtype=out_type)


@lowering("Rank", attrs={"T": None})
def rank(node):
  return lambda x: np.asarray(np.ndim(x), dtype=np.int32)


@lowering("Reshape", attrs={"T": None, "Tshape": _IDX}, static_inputs=(1,))
def reshape(node):
  def run(x, new_shape):
    dims = _ints(new_shape)
    if np.ndim(new_shape) > 1:
      raise ValueError(f"shape must be a vector, got shape {list(np.shape(new_shape))}")
    if sum(d == -1 for d in dims) > 1 or any(d < -1 for d in dims):
      raise ValueError(f"Reshape: invalid target shape {dims} (only one -1 allowed)")
    shp = _shape(x)
    size_in = math.prod(shp)
    if -1 in dims:
      # TF's rule (reshape_op.h): zero sizes are left out of both products when the
      # requested shape has one, so [0, -1] of a (0, 3, 2) tensor is (0, 6).
      has_zero = 0 in dims
      product = math.prod(d for d in dims if d > 0)
      n = math.prod(d for d in shp if d > 0 or not has_zero)
      missing = n // product
      if not (has_zero and 0 in shp) and product * missing != n:
        raise ValueError(f"Input to reshape is a tensor with {size_in} values, but the "
                         f"requested shape requires a multiple of {product}")
      dims = [missing if d == -1 else d for d in dims]
    if math.prod(dims) != size_in:
      raise ValueError(f"Input to reshape is a tensor with {size_in} values, but the "
                       f"requested shape has {math.prod(dims)}")
    return xnp(x).reshape(x, tuple(dims))
  return run


@lowering("Squeeze", attrs={"T": None, "squeeze_dims": None})
def squeeze(node):
  dims = list(node.attrs.get("squeeze_dims", []) or [])

  def run(x):
    shp = _shape(x)
    if dims:
      axes = {_axis(d, len(shp), "squeeze dimension") for d in dims}
      for a in sorted(axes):
        if shp[a] != 1:
          raise ValueError(f"Can not squeeze dim[{a}], expected a dimension of 1, got "
                           f"{shp[a]}")
    else:
      axes = {a for a, d in enumerate(shp) if d == 1}
    new = tuple(d for a, d in enumerate(shp) if a not in axes)
    return xnp(x).reshape(x, new)
  return run


@lowering("ExpandDims", attrs={"T": None, "Tdim": _IDX}, static_inputs=(1,))
def expand_dims(node):
  def run(x, dim):
    if np.size(dim) != 1:
      raise ValueError("'dim' must be a tensor with a single value")
    r = np.ndim(x)
    a = int(np.reshape(dim, -1)[0])
    if not -r - 1 <= a <= r:
      raise ValueError(f"Tried to expand dim index {a} for tensor with {r} dimensions.")
    a = a % (r + 1)
    shp = _shape(x)
    return xnp(x).reshape(x, shp[:a] + (1,) + shp[a:])
  return run


def _perm(perm, rank: int) -> list[int]:
  p = _ints(perm)
  if np.ndim(perm) != 1 or len(p) != rank:
    raise ValueError(f"transpose expects a vector of size {rank}. But input(1) is a "
                     f"vector of size {len(p)}")
  q = [v + rank if v < 0 else v for v in p]
  if any(not 0 <= v < rank for v in q) or len(set(q)) != rank:
    raise ValueError(f"{p} is not a permutation of [0, {rank})")
  return q


@lowering("Transpose", "ConjugateTranspose", attrs={"T": _ANY, "Tperm": _IDX},
          static_inputs=(1,))
def transpose(node):
  conj = node.op == "ConjugateTranspose"

  def run(x, perm):
    m = xnp(x)
    y = m.transpose(x, _perm(perm, np.ndim(x)))
    if conj and np.iscomplexobj(y):
      y = m.conj(y)
    return y
  return run


# Concatenation, stacking, splitting ---------------------------------------------------


def _concat(xs, axis: int):
  if not xs:
    raise ValueError("Concat needs at least one input")
  r = np.ndim(xs[0])
  if r == 0:
    raise ValueError("ConcatOp : Can't concatenate scalars (use tf.stack instead)")
  a = _axis(axis, r, "concat axis")
  first = _shape(xs[0])
  for i, x in enumerate(xs[1:], 1):
    s = _shape(x)
    if len(s) != r or any(s[j] != first[j] for j in range(r) if j != a):
      raise ValueError(f"ConcatOp : Dimension mismatch of input {i}: shape {list(s)} vs "
                       f"shape {list(first)} of input 0 along axis {a}")
  out = sum(int(np.size(x)) for x in xs) * np.dtype(xs[0].dtype).itemsize
  m = xnp(*xs, result_bytes=out)
  if len(xs) == 1:
    return xs[0]
  return m.concatenate(xs, axis=a)


@lowering("ConcatV2", attrs={"T": _ANY, "N": None, "Tidx": _IDX}, static_inputs=(-1,))
def concat_v2(node):
  return lambda *args: _concat(list(args[:-1]), _int(args[-1], "axis"))


@lowering("Concat", attrs={"T": _ANY, "N": None}, static_inputs=(0,))
def concat(node):
  return lambda dim, *xs: _concat(list(xs), _int(dim, "concat_dim"))


@lowering("ConcatOffset", attrs={"N": None, "shape_type": _IDX}, static_inputs=())
def concat_offset(node):
  out_type = node.attrs.get("shape_type", np.dtype(np.int32))

  def run(dim, *shapes):
    dim = _int(_concrete(node, dim, "concat_dim"), "concat_dim")
    shapes = [_ints(_concrete(node, s, "the shapes")) for s in shapes]
    r = len(shapes[0])
    a = _axis(dim, r, "concat_dim")
    offsets, off = [], 0
    for i, s in enumerate(shapes):
      if len(s) != r or any(s[j] != shapes[0][j] for j in range(r) if j != a):
        raise ValueError(f"All dimensions except {a} must match. Input {i} has shape {s} "
                         f"and doesn't match input 0 with shape {shapes[0]}.")
      o = [0] * r
      o[a] = off
      off += s[a]
      offsets.append(np.asarray(o, dtype=out_type))
    return offsets
  return run


@lowering("Pack", attrs={"T": _ANY, "N": None, "axis": None})
def pack(node):
  axis = node.attrs.get("axis", 0)

  def run(*xs):
    first = _shape(xs[0])
    r = len(first) + 1
    a = _axis(axis, r, "axis")
    for i, x in enumerate(xs[1:], 1):
      if _shape(x) != first:
        raise ValueError(f"Shapes of all inputs must match: values[0].shape = "
                         f"{list(first)} != values[{i}].shape = {list(_shape(x))}")
    m = xnp(*xs, result_bytes=_nbytes((len(xs),) + first, xs[0].dtype))
    return m.stack(xs, axis=a)
  return run


@lowering("Unpack", attrs={"T": _ANY, "num": None, "axis": None})
def unpack(node):
  axis, num = node.attrs.get("axis", 0), node.attrs["num"]

  def run(x):
    shp = _shape(x)
    if not shp:
      raise ValueError("Unpack needs a tensor of rank >= 1")
    a = _axis(axis, len(shp), "axis")
    if shp[a] != num:
      raise ValueError(f"Input shape axis {a} must equal {num}, got shape {list(shp)}")
    lead = (slice(None),) * a
    m = xnp(x)
    return [m.asarray(x[lead + (i,)]) for i in range(num)]
  return run


def _split_at(x, axis: int, sizes: list[int]) -> list:
  m = xnp(x)
  lead = (slice(None),) * axis
  out, start = [], 0
  for s in sizes:
    piece = x[lead + (slice(start, start + s),)]
    out.append(np.asarray(piece) if m is np else piece)
    start += s
  return out


@lowering("Split", attrs={"T": _ANY, "num_split": None}, static_inputs=(0,))
def split(node):
  num = node.attrs["num_split"]

  def run(dim, x):
    shp = _shape(x)
    a = _axis(_int(dim, "split_dim"), len(shp), "split_dim")
    if num <= 0 or shp[a] % num:
      raise ValueError(f"Number of ways to split should evenly divide the split dimension, "
                       f"but got split_dim {a} (size = {shp[a]}) and num_split {num}")
    return _split_at(x, a, [shp[a] // num] * num)
  return run


@lowering("SplitV", attrs={"T": _ANY, "num_split": None, "Tlen": ("int8", "int32", "int64")},
          static_inputs=(1, 2))
def split_v(node):
  num = node.attrs["num_split"]

  def run(x, size_splits, dim):
    shp = _shape(x)
    a = _axis(_int(dim, "split_dim"), len(shp), "split_dim")
    sizes = _ints(size_splits)
    if len(sizes) != num:
      raise ValueError(f"size_splits has {len(sizes)} entries, num_split is {num}")
    if num == 1 and sizes[0] != shp[a]:
      raise ValueError(f"If there is only one output, it must have the same size as the "
                       f"input. Input size: {shp[a]} output size: {sizes[0]}")
    unknown = [i for i, s in enumerate(sizes) if s == -1]
    if len(unknown) > 1 or any(s < -1 for s in sizes):
      raise ValueError(f"size_splits {sizes}: at most one -1, other sizes >= 0")
    if unknown:
      rest = shp[a] - sum(s for s in sizes if s != -1)
      if rest < 0:
        raise ValueError(f"size_splits {sizes} exceed dimension {a} of size {shp[a]}")
      sizes[unknown[0]] = rest
    if sum(sizes) != shp[a]:
      raise ValueError(f"Determined shape must either match input shape along split_dim "
                       f"exactly if fully specified, or be less than the size of the input "
                       f"along split_dim if not fully specified.  Got: {sum(sizes)}")
    return _split_at(x, a, sizes)
  return run


# Slicing ------------------------------------------------------------------------------


@lowering("Slice", attrs={"T": _ANY, "Index": _IDX}, static_inputs=(1, 2))
def slice_(node):
  def run(x, begin, size):
    shp = _shape(x)
    b, s = _ints(begin), _ints(size)
    if len(b) != len(shp) or len(s) != len(shp):
      raise ValueError(f"Expected begin and size arguments to be 1-D tensors of size "
                       f"{len(shp)}, but got shapes {list(np.shape(begin))} and "
                       f"{list(np.shape(size))} instead.")
    index = []
    for i, (d, bi, si) in enumerate(zip(shp, b, s)):
      if si == -1:
        si = d - bi
      if not 0 <= bi <= d or not 0 <= si <= d - bi:
        raise ValueError(f"Expected begin[{i}] in [0, {d}] and size[{i}] in "
                         f"[0, {d - bi}], but got {bi} and {si}")
      index.append(slice(bi, bi + si))
    out = x[tuple(index)]
    return np.asarray(out) if is_static(x) else out
  return run


_NEW, _SHRINK = -1, -2


class _StridedSpec:
  """TF's strided-slice canonicalization (strided_slice_op.cc), for one input shape.

  dims: per input dim (begin, size, stride, shrink) with begin canonical.
  final_shape: the output shape (new axes inserted, shrunk dims removed).
  """

  def __init__(self, shape, begin, end, strides, begin_mask, end_mask, ellipsis_mask,
               new_axis_mask, shrink_axis_mask):
    begin, end, strides = _ints(begin), _ints(end), _ints(strides)
    n = len(begin)
    if len(end) != n or len(strides) != n:
      raise ValueError(f"Expected begin, end, and strides to be 1D equal size tensors, "
                       f"but got shapes {[n]}, {[len(end)]}, and {[len(strides)]} instead.")
    if ellipsis_mask & (ellipsis_mask - 1):
      raise ValueError("Multiple ellipses in slice spec not allowed")
    sparse_dims = n
    after_ellipsis, seen = 0, False
    for i in range(n):
      if seen and (new_axis_mask >> i) & 1:
        after_ellipsis += 1
      if (ellipsis_mask >> i) & 1:
        seen = True
    if not seen:
      ellipsis_mask |= 1 << n
      sparse_dims += 1
    rank = len(shape)
    dense, gather = [], []  # dense: (begin, end, stride, begin masked, end masked, shrink)
    for i in range(sparse_dims):
      bit = 1 << i
      if ellipsis_mask & bit:
        nxt = min(rank - (sparse_dims - i) + 1 + after_ellipsis, rank)
        while len(dense) < nxt:
          gather.append(len(dense))
          dense.append((0, 0, 1, True, True, False))
      elif new_axis_mask & bit:
        gather.append(_NEW)
      else:
        if len(dense) == rank:
          raise ValueError(f"Index out of range using input dim {len(dense)}; input has "
                           f"only {rank} dims")
        shrink = bool(shrink_axis_mask & bit)
        gather.append(_SHRINK if shrink else len(dense))
        dense.append((begin[i], end[i], strides[i], bool(begin_mask & bit),
                      bool(end_mask & bit), shrink))
    self.dims = []
    sizes = []
    for i, (b, e, s, bm, em, shrink) in enumerate(dense):
      d = int(shape[i])
      if s == 0:
        raise ValueError(f"strides[{i}] must be non-zero")
      if shrink and s < 0:
        raise ValueError("only stride 1 allowed on non-range indexing.")
      if shrink:
        x = b + d if b < 0 else b
        if not 0 <= x < d:
          raise ValueError(f"slice index {b} of dimension {i} out of bounds.")
        self.dims.append((x, 1, 1, True))
        sizes.append(1)
        continue
      lo, hi = (0, d) if s > 0 else (-1, d - 1)

      def canon(v, masked, c, lo=lo, hi=hi, s=s, d=d):
        if masked:
          return (lo, hi)[c] if s > 0 else (lo, hi)[1 - c]
        v = v + d if v < 0 else v
        return min(max(v, lo), hi)
      cb, ce = canon(b, bm, 0), canon(e, em, 1)
      length = ce - cb
      if length == 0 or (length < 0) != (s < 0):
        size = 0
      else:
        size = -(-abs(length) // abs(s))
      self.dims.append((cb, size, s, False))
      sizes.append(size)
    self.final_shape = tuple(1 if g == _NEW else sizes[g] for g in gather if g != _SHRINK)
    self.processing_shape = tuple(sizes)
    self.shape = tuple(int(d) for d in shape)

  def _positive(self):
    """Per dim (start, limit, step) covering the slice's elements in increasing order;
    `rev`: the dims whose stride is negative (the slice is that range reversed)."""
    starts, limits, steps, rev = [], [], [], []
    for i, (b, size, s, _) in enumerate(self.dims):
      if size == 0:
        starts.append(0), limits.append(0), steps.append(1)
        continue
      if s < 0:
        rev.append(i)
        b, s = b + (size - 1) * s, -s  # the lowest index of the slice
      starts.append(b)
      limits.append(b + (size - 1) * s + 1)
      steps.append(s)
    return starts, limits, steps, tuple(rev)

  def apply(self, x):
    starts, limits, steps, rev = self._positive()
    if is_static(x):
      y = x[tuple(slice(a, b, c) for a, b, c in zip(starts, limits, steps))]
      y = np.flip(y, rev) if rev else y
      return np.asarray(y).reshape(self.final_shape)
    y = x
    if any(a != 0 or b != d or c != 1 for a, b, c, d in zip(starts, limits, steps, self.shape)):
      y = lax.slice(y, starts, limits, steps)
    y = lax.rev(y, rev) if rev else y
    return jnp.reshape(y, self.final_shape)

  def update(self, x, value):
    """`x` with the slice replaced by `value` (broadcast to the slice's shape)."""
    starts, limits, steps, rev = self._positive()
    m = xnp(x, value)
    value = m.broadcast_to(value, self.final_shape)
    value = m.reshape(value, self.processing_shape)
    value = m.flip(value, rev) if rev else value  # into increasing index order
    index = tuple(slice(a, b, c) for a, b, c in zip(starts, limits, steps))
    if m is np:
      y = np.array(x, copy=True)
      y[index] = value
      return y
    return jnp.asarray(x).at[index].set(value)


_MASKS = ("begin_mask", "end_mask", "ellipsis_mask", "new_axis_mask", "shrink_axis_mask")
_SLICE_ATTRS = {"T": _ANY, "Index": _IDX16, **{k: None for k in _MASKS}}


def _masks(node) -> dict:
  return {k: int(node.attrs.get(k, 0)) for k in _MASKS}


@lowering("StridedSlice", attrs=_SLICE_ATTRS, static_inputs=(1, 2, 3))
def strided_slice(node):
  masks = _masks(node)

  def run(x, begin, end, strides):
    return _StridedSpec(_shape(x), begin, end, strides, **masks).apply(x)
  return run


@lowering("StridedSliceGrad", attrs={**_SLICE_ATTRS, "Index": _IDX},
          static_inputs=(0, 1, 2, 3))
def strided_slice_grad(node):
  masks = _masks(node)

  def run(shape, begin, end, strides, dy):
    shp = tuple(_ints(shape))
    spec = _StridedSpec(shp, begin, end, strides, **masks)
    if _shape(dy) != spec.final_shape:
      raise ValueError(f"shape of dy was {list(_shape(dy))} instead of "
                       f"{list(spec.final_shape)}")
    m = xnp(dy, result_bytes=_nbytes(shp, dy.dtype))
    return spec.update(_full(m, shp, 0, dy.dtype), dy)
  return run


@lowering("TensorStridedSliceUpdate", attrs={**_SLICE_ATTRS, "Index": _IDX},
          static_inputs=(1, 2, 3))
def tensor_strided_slice_update(node):
  masks = _masks(node)

  def run(x, begin, end, strides, value):
    spec = _StridedSpec(_shape(x), begin, end, strides, **masks)
    try:
      ok = np.broadcast_shapes(_shape(value), spec.final_shape) == spec.final_shape
    except ValueError:
      ok = False
    if not ok:
      raise ValueError(f"Cannot broadcast value of shape {list(_shape(value))} to the "
                       f"slice of shape {list(spec.final_shape)}")
    return spec.update(x, value)
  return run


# Gathers ------------------------------------------------------------------------------


def _gather(params, indices, axis: int, batch_dims: int, check: bool = True):
  pshape, ishape = _shape(params), _shape(indices)
  rank, irank = len(pshape), len(ishape)
  if rank == 0:
    raise ValueError("params must be at least 1 dimensional")
  axis = _axis(axis, rank)
  if batch_dims < 0:
    batch_dims += irank
  if not 0 <= batch_dims <= irank:
    raise ValueError(f"Expected batch_dims in the range [{-irank}, {irank}], but got "
                     f"{batch_dims}")
  if batch_dims > axis:
    raise ValueError(f"batch_dims ({batch_dims}) must be less than or equal to axis "
                     f"({axis}).")
  b = batch_dims
  if pshape[:b] != ishape[:b]:
    raise ValueError(f"params.shape[:{b}] {list(pshape[:b])} should be equal to "
                     f"indices.shape[:{b}] {list(ishape[:b])}")
  n = pshape[axis]
  if check:
    _check_range(_known(indices), n, "indices")
  out_shape = pshape[:axis] + ishape[b:] + pshape[axis + 1:]
  m = xnp(params, indices, result_bytes=_nbytes(out_shape, params.dtype))
  p = params if axis == b else m.moveaxis(params, axis, b)
  grids = []
  for j in range(b):
    g = [1] * irank
    g[j] = pshape[j]
    grids.append(np.arange(pshape[j]).reshape(g))
  if m is np:
    g = p[tuple(grids) + (np.asarray(indices).astype(np.int64),)]
  else:
    idx = _index_for_jnp(indices, n)
    g = jnp.asarray(p).at[tuple(grids) + (idx,)].get(mode="fill", fill_value=0)
  npre = axis - b
  if npre and irank > b:
    perm = (list(range(b)) + list(range(irank, irank + npre)) + list(range(b, irank))
            + list(range(irank + npre, np.ndim(g))))
    g = m.transpose(g, perm)
  return m.asarray(g).reshape(out_shape) if m is np else g.reshape(out_shape)


@lowering("GatherV2", attrs={"Tparams": _ANY, "Tindices": _IDX16, "Taxis": _IDX,
                             "batch_dims": None}, static_inputs=(2,))
def gather_v2(node):
  batch_dims = node.attrs.get("batch_dims", 0)
  return lambda params, indices, axis: _gather(params, indices, _int(axis, "axis"),
                                               batch_dims)


@lowering("Gather", attrs={"Tparams": _ANY, "Tindices": _IDX, "validate_indices": None})
def gather(node):
  return lambda params, indices: _gather(params, indices, 0, 0)


_BAD_POLICY = ("", "DEFAULT", "ERROR", "IGNORE")


def _nd_index(indices, shape, what, check: bool):
  """The tuple of per-dimension index arrays of an [..., depth] indices tensor."""
  ishape = _shape(indices)
  if not ishape:
    raise ValueError(f"indices must be at least a vector, got shape {list(ishape)}")
  depth = ishape[-1]
  if depth > len(shape):
    raise ValueError(f"index innermost dimension length must be <= {what} rank; saw: "
                     f"{depth} vs. {len(shape)}")
  known = _known(indices) if check else None
  if known is not None and known.size:
    bad = np.any((known < 0) | (known >= np.asarray(shape[:depth], dtype=np.int64)), axis=-1)
    if np.any(bad):
      pos = tuple(int(i) for i in np.argwhere(bad)[0])
      raise ValueError(f"indices{list(pos)} = {known[pos].tolist()} does not index into "
                       f"{what} shape {list(shape)}")
  return depth


@lowering("GatherNd", attrs={"Tparams": _ANY, "Tindices": _IDX16,
                             "bad_indices_policy": _BAD_POLICY})
def gather_nd(node):
  ignore = node.attrs.get("bad_indices_policy", "") == "IGNORE"

  def run(params, indices):
    pshape = _shape(params)
    depth = _nd_index(indices, pshape, "param", check=not ignore)
    if math.prod(pshape) == 0 and math.prod(_shape(indices)[:-1]) > 0:
      raise ValueError(f"Requested more than 0 entries, but params is empty.  Params shape: "
                       f"{list(pshape)}")
    out_shape = _shape(indices)[:-1] + pshape[depth:]
    m = xnp(params, indices, result_bytes=_nbytes(out_shape, params.dtype))
    if depth == 0:
      return m.broadcast_to(params, out_shape)
    if m is np:
      idx = np.asarray(indices).astype(np.int64)
      if not ignore:
        return np.asarray(params[tuple(idx[..., j] for j in range(depth))])
      ok = np.all((idx >= 0) & (idx < np.asarray(pshape[:depth])), axis=-1)
      if not params.size:
        return np.zeros(out_shape, params.dtype)
      idx = np.where(ok[..., None], idx, 0)
      out = params[tuple(idx[..., j] for j in range(depth))]
      ok = ok.reshape(ok.shape + (1,) * (len(pshape) - depth))
      return np.where(ok, out, np.zeros((), params.dtype))
    idx = tuple(_index_for_jnp(indices[..., j], pshape[j]) for j in range(depth))
    return jnp.asarray(params).at[idx].get(mode="fill", fill_value=0)
  return run


def _scatter(node, kind: str, base, indices, updates, ignore: bool):
  """`base` with `updates` combined in at `indices` (ScatterNd and TensorScatter*)."""
  shape = _shape(base)
  ishape, ushape = _shape(indices), _shape(updates)
  depth = _nd_index(indices, shape, "output" if node.op == "ScatterNd" else "tensor",
                    check=not ignore)
  want = ishape[:-1] + shape[depth:]
  if ushape != want:
    raise ValueError(f"Dimensions [0,{len(ishape) - 1}) of indices[shape={list(ishape)}] "
                     f"= {list(ishape[:-1])} must match dimensions [0,{len(ishape) - 1}) of "
                     f"updates[shape={list(ushape)}] and the updates must have shape "
                     f"{list(want)}")
  if depth == 0 or not ushape:
    raise ValueError(f"Only indices.shape[-1] values between 1 and {len(shape)} are "
                     f"supported and updates must have rank at least one; got indices "
                     f"shape {list(ishape)}, updates shape {list(ushape)}")
  inplace = node.op.startswith("Inplace")
  if math.prod(shape) == 0 and math.prod(ishape[:-1]) > 0 and not inplace:
    raise ValueError("Indices and updates specified for empty output shape")
  m = xnp(base, indices, updates)
  dtype = np.dtype(base.dtype)
  inexact = dtype.kind in "fc" or dtype.name == "bfloat16"
  if m is np:
    if kind in ("max", "min") and inexact:
      updates = _skip_nan_updates(np, kind, updates)
    idx = np.asarray(indices).astype(np.int64)
    if ignore:
      ok = np.all((idx >= 0) & (idx < np.asarray(shape[:depth])), axis=-1)
      idx, updates = idx[ok], np.asarray(updates)[ok]
    index = tuple(idx[..., j] for j in range(depth))
    out = np.array(base, copy=True)
    with np.errstate(all="ignore"):
      _np_scatter(kind, out, index, updates)
    return out
  index = tuple(_index_for_jnp(indices[..., j], shape[j]) for j in range(depth))
  base = scatter_start(base)
  if kind in ("max", "min"):
    return _scatter_extremal(kind)(base, jnp.asarray(updates), *index)
  ref = base.at[index]
  if kind == "add":  # bool: TF's sum is a logical or
    return (ref.max(updates, mode="drop") if dtype == np.bool_
            else ref.add(updates, mode="drop"))
  if kind == "sub":
    return ref.add(-jnp.asarray(updates), mode="drop")
  return ref.set(updates, mode="drop")


def _np_scatter(kind: str, out, index, updates) -> None:
  if kind == "add":
    np.add.at(out, index, updates)
  elif kind == "sub":
    np.subtract.at(out, index, updates)
  elif kind == "max":
    np.maximum.at(out, index, updates)
  elif kind == "min":
    np.minimum.at(out, index, updates)
  else:
    out[index] = updates


def scatter_start(base):
  """`base` as the start value of a jnp scatter. XLA:CPU (jaxlib 0.10.2) may merge a
  constant start value with equal constant indices (CSE) into one buffer, which the
  in-place scatter then overwrites: int32 sums by ids fixed to 0 went wrong under
  jit(vmap). The barrier keeps the start value a buffer of its own."""
  return lax.optimization_barrier(jnp.asarray(base))


def _skip_nan_updates(m, kind: str, updates):
  """TF keeps the current value where an update is NaN: NaN becomes max's/min's identity."""
  fill = np.asarray(-np.inf if kind == "max" else np.inf, updates.dtype)
  return m.where(m.isnan(updates), fill, updates)


def _times_indicator(a, hit):
  """a * hit.astype(a.dtype) as TF computes it (NaN or inf times 0 is NaN). XLA rewrites
  that product into select(hit, a, 0), which drops the NaN; a * 0 it keeps."""
  return jnp.where(hit, a, a * np.asarray(0, a.dtype))


def _scatter_extremal(kind: str):
  """Scatter max/min whose gradient is TF's (_TensorScatterMinOrMaxGrad): ties share the
  gradient equally, and NaN values give what TF's formula gives."""
  def value(x, u, *index):
    inexact = jnp.issubdtype(x.dtype, jnp.inexact)
    ref = x.at[index]
    if inexact:  # inside the custom_vjp: the gradient formula sees the NaN updates
      u = _skip_nan_updates(jnp, kind, u)
    out = ref.max(u, mode="drop") if kind == "max" else ref.min(u, mode="drop")
    # A NaN value stays (XLA's max/min may or may not propagate it, depending on fusion).
    return jnp.where(jnp.isnan(x), x, out) if inexact else out

  @jax.custom_vjp
  def f(x, u, *index):
    return value(x, u, *index)

  def fwd(x, u, *index):
    out = value(x, u, *index)
    return out, (x, u, out, index)

  def bwd(res, g):
    x, u, out, index = res
    x_hit = x == out
    y_hit = u == out.at[index].get(mode="fill", fill_value=0)
    ind = x_hit.astype(g.dtype) + jnp.zeros_like(g).at[index].add(
        y_hit.astype(g.dtype), mode="drop")
    x_grad = _times_indicator(g, x_hit) / ind
    y_grad = _times_indicator((g / ind).at[index].get(mode="fill", fill_value=0), y_hit)
    return (x_grad, y_grad) + (None,) * len(index)

  f.defvjp(fwd, bwd)
  return f


_SCATTER_ATTRS = {"T": _NUM_BOOL, "Tindices": _IDX, "bad_indices_policy": _BAD_POLICY}


def _ignore(node) -> bool:
  return node.attrs.get("bad_indices_policy", "") == "IGNORE"


@lowering("ScatterNd", attrs=_SCATTER_ATTRS, static_inputs=(2,))
def scatter_nd(node):
  ignore = _ignore(node)

  def run(indices, updates, shape):
    shp = tuple(_ints(shape))
    if not shp or any(d < 0 for d in shp):
      raise ValueError(f"ScatterNd: shape must be a vector of non-negative sizes, got "
                       f"{list(shp)}")
    m = xnp(updates, indices, result_bytes=_nbytes(shp, updates.dtype))
    return _scatter(node, "add", _full(m, shp, 0, updates.dtype), indices, updates, ignore)
  return run


@lowering("ScatterNdNonAliasingAdd", attrs=_SCATTER_ATTRS)
def scatter_nd_non_aliasing_add(node):
  ignore = _ignore(node)
  return lambda x, indices, updates: _scatter(node, "add", x, indices, updates, ignore)


for _op, _kind in [("TensorScatterAdd", "add"), ("TensorScatterSub", "sub"),
                   ("TensorScatterMax", "max"), ("TensorScatterMin", "min"),
                   ("TensorScatterUpdate", "update")]:
  @_register(_op, attrs=_SCATTER_ATTRS)
  def _tensor_scatter(node, _kind=_kind):
    ignore = _ignore(node)
    return lambda x, indices, updates: _scatter(node, _kind, x, indices, updates, ignore)


# Padding, tiling, broadcasting ------------------------------------------------------------


def _paddings(paddings, rank: int) -> list[tuple[int, int]]:
  p = np.asarray(paddings)
  if p.ndim != 2 or p.shape[1] != 2:
    raise ValueError(f"paddings must be a matrix with 2 columns: {list(p.shape)}")
  if p.shape[0] != rank:
    raise ValueError(f"The first dimension of paddings must be the rank of inputs "
                     f"{list(p.shape)}, rank {rank}")
  pads = [(int(a), int(b)) for a, b in p]
  for a, b in pads:
    if a < 0 or b < 0:
      raise ValueError(f"Paddings must be non-negative: {a} {b}")
  return pads


def _pad(x, pads, value):
  if not any(a or b for a, b in pads):
    return x
  out_shape = tuple(d + a + b for d, (a, b) in zip(_shape(x), pads))
  m = xnp(x, value, result_bytes=_nbytes(out_shape, x.dtype))
  if m is np:
    return np.pad(x, pads, mode="constant", constant_values=np.asarray(value, x.dtype))
  return lax.pad(jnp.asarray(x), jnp.asarray(value, dtype=x.dtype),
                 [(a, b, 0) for a, b in pads])


@lowering("Pad", attrs={"T": _ANY, "Tpaddings": _IDX}, static_inputs=(1,))
def pad(node):
  return lambda x, paddings: _pad(x, _paddings(paddings, np.ndim(x)),
                                  np.zeros((), x.dtype))


@lowering("PadV2", attrs={"T": _ANY, "Tpaddings": _IDX}, static_inputs=(1,))
def pad_v2(node):
  def run(x, paddings, value):
    if np.ndim(value) != 0:
      raise ValueError(f"constant_values must be a scalar. Got: {list(_shape(value))}")
    # TF's gradient of PadV2 has no term for constant_values.
    return _pad(x, _paddings(paddings, np.ndim(x)), _no_grad(value))
  return run


def _mirror_checks(node, x_shape, pads, mode):
  for i, (d, (a, b)) in enumerate(zip(x_shape, pads)):
    limit = d if mode == "SYMMETRIC" else d - 1
    if a > limit or b > limit:
      raise ValueError(f"paddings must be no greater than the dimension size: {a}, {b} "
                       f"greater than {limit} (dimension {i} of size {d}, mode {mode})")


@lowering("MirrorPad", attrs={"T": _ANY, "Tpaddings": _IDX,
                              "mode": ("REFLECT", "SYMMETRIC")}, static_inputs=(1,))
def mirror_pad(node):
  mode = node.attrs["mode"]

  def run(x, paddings):
    pads = _paddings(paddings, np.ndim(x))
    _mirror_checks(node, _shape(x), pads, mode)
    out_shape = tuple(d + a + b for d, (a, b) in zip(_shape(x), pads))
    m = xnp(x, result_bytes=_nbytes(out_shape, x.dtype))
    if not any(a or b for a, b in pads):
      return x
    return m.pad(x, pads, mode=mode.lower())
  return run


def _add_at(m, y, axis: int, start: int, stop: int, v):
  index = (slice(None),) * axis + (slice(start, stop),)
  if m is np:
    y = np.array(y, copy=True)
    y[index] = y[index] + v
    return y
  return y.at[index].add(v)


@lowering("MirrorPadGrad", attrs={"T": NUMBER, "Tpaddings": _IDX,
                                  "mode": ("REFLECT", "SYMMETRIC")}, static_inputs=(1,))
def mirror_pad_grad(node):
  mode = node.attrs["mode"]
  sym = mode == "SYMMETRIC"

  def run(g, paddings):
    pads = _paddings(paddings, np.ndim(g))
    shp = _shape(g)
    x_shape = tuple(d - a - b for d, (a, b) in zip(shp, pads))
    for d, (a, b) in zip(shp, pads):
      if not a + b < d:
        raise ValueError(f"Total paddings must be less than the input dimension size: "
                         f"{a + b} was not less than {d}")
    _mirror_checks(node, x_shape, pads, mode)
    m = xnp(g)
    y = g
    for axis, ((a, b), n) in enumerate(zip(pads, x_shape)):
      if not a and not b:
        continue
      lead = (slice(None),) * axis
      core = y[lead + (slice(a, a + n),)]
      left = m.flip(y[lead + (slice(0, a),)], axis)
      right = m.flip(y[lead + (slice(a + n, a + n + b),)], axis)
      if a:
        core = _add_at(m, core, axis, 0 if sym else 1, a if sym else a + 1, left)
      if b:
        core = _add_at(m, core, axis, n - b if sym else n - 1 - b, n if sym else n - 1,
                       right)
      y = core
    return y
  return run


@lowering("Tile", attrs={"T": _ANY, "Tmultiples": _IDX}, static_inputs=(1,))
def tile(node):
  def run(x, multiples):
    reps = _ints(multiples)
    shp = _shape(x)
    if np.ndim(multiples) != 1 or len(reps) != len(shp):
      raise ValueError(f"Expected multiples argument to be a vector of length {len(shp)} "
                       f"but got length {len(reps)}")
    for i, r in enumerate(reps):
      if r < 0:
        raise ValueError(f"Expected multiples[{i}] >= 0, but got {r}")
    out_shape = tuple(d * r for d, r in zip(shp, reps))
    m = xnp(x, result_bytes=_nbytes(out_shape, x.dtype))
    if not shp:
      return x
    return m.tile(x, reps)
  return run


# The dtypes TF's TileGrad kernel handles (it reports others as unsupported).
_TILE_GRAD_T = ("float16", "bfloat16", "float32", "float64", "complex64", "complex128",
                "int16", "int32", "int64")


@lowering("TileGrad", attrs={"T": _TILE_GRAD_T}, static_inputs=(1,))
def tile_grad(node):
  """The gradient of Tile in GraphDef versions < 3: input (of shape d * multiples) summed
  tile by tile into one tile (of shape d)."""
  def run(x, multiples):
    reps = _ints(multiples)
    shp = _shape(x)
    if np.ndim(multiples) != 1 or len(reps) != len(shp):
      raise ValueError(f"Expected multiples argument to be a vector of length {len(shp)} "
                       f"but got length {len(reps)} (input shape {list(shp)})")
    for i, (d, r) in enumerate(zip(shp, reps)):
      if r <= 0 or d % r:
        raise ValueError(f"Expected multiples[{i}] > 0 dividing input dimension {i}, got "
                         f"{r} for input shape {list(shp)}")
    split = tuple(v for d, r in zip(shp, reps) for v in (r, d // r))
    axes = tuple(range(0, 2 * len(shp), 2))
    m = xnp(x)
    work = np.float32 if np.dtype(x.dtype).name in ("float16", "bfloat16") else x.dtype
    y = m.reshape(x, split).astype(work)
    return m.sum(y, axis=axes, dtype=work).astype(x.dtype)  # integers wrap around
  return run


def _broadcast_shape(s0: list[int], s1: list[int]) -> list[int]:
  n = max(len(s0), len(s1))
  a = [1] * (n - len(s0)) + list(s0)
  b = [1] * (n - len(s1)) + list(s1)
  out = []
  for x, y in zip(a, b):
    if x == y or y == 1:
      out.append(x)
    elif x == 1:
      out.append(y)
    else:
      raise ValueError(f"Incompatible shapes: {list(s0)} vs. {list(s1)}")
  return out


@lowering("BroadcastTo", attrs={"T": _ANY, "Tidx": _IDX}, static_inputs=(1,))
def broadcast_to(node):
  def run(x, shape):
    out = tuple(_ints(shape))
    shp = _shape(x)
    if len(shp) > len(out):
      raise ValueError(f"Rank of input ({len(shp)}) must be no greater than rank of "
                       f"output shape ({len(out)}).")
    if any(d < 0 for d in out) or _broadcast_shape(list(shp), list(out)) != list(out):
      raise ValueError(f"Unable to broadcast tensor of shape {list(shp)} to tensor of "
                       f"shape {list(out)}")
    m = xnp(x, result_bytes=_nbytes(out, x.dtype))
    return m.broadcast_to(x, out)
  return run


@lowering("BroadcastArgs", attrs={"T": _IDX})
def broadcast_args(node):
  def run(s0, s1):
    if np.ndim(s0) != 1 or np.ndim(s1) != 1:
      raise ValueError("BroadcastArgs takes shape vectors")
    k0, k1 = _known(s0), _known(s1)
    if is_static(s0, s1) or (k0 is not None and k1 is not None):
      out = _broadcast_shape(_ints(k0), _ints(k1))
      result = np.asarray(out, dtype=s0.dtype)
      return result if is_static(s0, s1) else jnp.asarray(result)
    n = max(len(s0), len(s1))
    a = jnp.concatenate([jnp.ones(n - len(s0), s0.dtype), jnp.asarray(s0)])
    b = jnp.concatenate([jnp.ones(n - len(s1), s1.dtype), jnp.asarray(s1)])
    return jnp.where(a == 1, b, a)
  return run


@lowering("BroadcastGradientArgs", attrs={"T": _IDX}, static_inputs=(0, 1))
def broadcast_gradient_args(node):
  def run(s0, s1):
    a, b = _ints(s0), _ints(s1)
    dtype = np.asarray(s0).dtype
    if a == b:
      return np.zeros((0,), dtype), np.zeros((0,), dtype)
    out = _broadcast_shape(a, b)
    n = len(out)
    pa, pb = [1] * (n - len(a)) + a, [1] * (n - len(b)) + b
    r0 = [i for i in range(n) if pa[i] == 1 and (out[i] != 1 or pb[i] == 1)]
    r1 = [i for i in range(n) if pb[i] == 1 and (out[i] != 1 or pa[i] == 1)]
    return np.asarray(r0, dtype), np.asarray(r1, dtype)
  return run


# Creation -------------------------------------------------------------------------------


@lowering("Fill", attrs={"T": _ANY, "index_type": _IDX}, static_inputs=(0,))
def fill(node):
  def run(dims, value):
    if np.ndim(dims) > 1:
      raise ValueError(f"dims must be a vector, got shape {list(np.shape(dims))}")
    if np.ndim(value) != 0:
      raise ValueError(f"value must be a scalar, got shape {list(_shape(value))}")
    shp = tuple(_ints(dims))
    for d in shp:
      if d < 0:
        raise ValueError(f"Dimension {d} must be >= 0")
    m = xnp(value, result_bytes=_nbytes(shp, value.dtype))
    return _full(m, shp, value, value.dtype)
  return run


@lowering("Empty", attrs={"dtype": _ANY, "init": None}, static_inputs=(0,))
def empty(node):
  dtype = node.attrs["dtype"]

  def run(shape):
    shp = tuple(_ints(shape))
    if any(d < 0 for d in shp):
      raise ValueError(f"Empty: negative dimension in {shp}")
    m = xnp(shape, result_bytes=_nbytes(shp, dtype))
    return _full(m, shp, 0, dtype)  # TF leaves it uninitialized unless init: zeros
  return run


@lowering("ZerosLike", "OnesLike", attrs={"T": _NUM_BOOL})
def zeros_like(node):
  value = 0 if node.op == "ZerosLike" else 1
  return lambda x: _full(xnp(x), _shape(x), value, x.dtype)


@lowering("DeepCopy", attrs={"T": _ANY})
def deep_copy(node):
  return lambda x: x


def _range_np(start, limit, delta, dtype):
  if delta == 0:
    raise ValueError(f"Requires delta != 0: {delta}")
  if delta > 0 and start > limit:
    raise ValueError(f"Requires start <= limit when delta > 0: {start}/{limit}")
  if delta < 0 and start < limit:
    raise ValueError(f"Requires start >= limit when delta < 0: {start}/{limit}")
  if dtype.kind in "iu":
    s, l, d = int(start), int(limit), int(delta)
    return -(-abs(l - s) // abs(d))
  with np.errstate(all="ignore"):
    n = np.ceil(np.abs((limit - start) / delta))
  if not np.isfinite(n):
    raise ValueError("Requires ((limit - start) / delta) <= 2^63 - 1")
  return int(n)


@lowering("Range", attrs={"Tidx": REAL})
def range_(node):
  dtype = node.attrs.get("Tidx", np.dtype(np.int32))

  def run(start, limit, delta):
    vals = []
    for name, v in (("start", start), ("limit", limit), ("delta", delta)):
      k = _concrete(node, v, name)
      if np.ndim(k) != 0:
        raise ValueError(f"{name} must be a scalar, not shape {list(np.shape(k))}")
      vals.append(np.asarray(k, dtype=dtype))
    s, l, d = vals
    n = _range_np(s, l, d, np.dtype(dtype))
    if dtype.kind in "iu":
      if _nbytes((n,), dtype) > _limit():
        return jnp.arange(int(s), int(s) + n * int(d), int(d), dtype=dtype)
      return np.arange(int(s), int(s) + n * int(d), int(d)).astype(dtype)
    if _nbytes((n,), dtype) > _limit():
      return s + jnp.arange(n).astype(dtype) * d
    with np.errstate(all="ignore"):
      return (s + np.arange(n).astype(dtype) * d).astype(dtype)
  return run


def _limit() -> int:
  from tf2jax_core.lowering import static_limit
  return static_limit()


@lowering("LinSpace", attrs={"T": FLOAT, "Tidx": _IDX}, static_inputs=(2,))
def lin_space(node):
  def run(start, stop, num):
    for name, v in (("start", start), ("stop", stop), ("num", num)):
      if np.ndim(v) != 0:
        raise ValueError(f"{name} must be a scalar, not shape {list(np.shape(v))}")
    n = int(num)
    if n <= 0:
      raise ValueError(f"Requires num > 0: {n}")
    dtype = start.dtype
    m = xnp(start, stop, result_bytes=_nbytes((n,), dtype))
    if n == 1:
      out = m.reshape(_as(m, start, dtype), (1,))
      return out if m is np else lax.stop_gradient(out)
    step = (stop - start) / _as(m, n - 1, dtype)
    body = start + step * _as(m, m.arange(n - 1), dtype)
    out = m.concatenate([body, m.reshape(_as(m, stop, dtype), (1,))]).astype(dtype)
    return out if m is np else lax.stop_gradient(out)  # TF: not differentiable
  return run


@lowering("OneHot", attrs={"T": _ANY, "TI": ("uint8", "int8", "int32", "int64"),
                           "axis": None}, static_inputs=(1,))
def one_hot(node):
  axis = node.attrs.get("axis", -1)

  def run(indices, depth, on, off):
    d = _int(depth, "depth")
    if d < 0:
      raise ValueError(f"depth must be non-negative, got: {d}")
    if np.ndim(on) != 0 or np.ndim(off) != 0:
      raise ValueError("on_value and off_value must be scalars")
    ishape = _shape(indices)
    r = len(ishape)
    if not -1 <= axis <= r:
      raise ValueError(f"Expected axis to be -1 or between [0, {r}].  But received: {axis}")
    a = r if axis == -1 else axis
    out_shape = ishape[:a] + (d,) + ishape[a:]
    m = xnp(indices, on, off, result_bytes=_nbytes(out_shape, on.dtype))
    idx = m.expand_dims(_as(m, indices, np.int64 if m is np else None), a)
    classes = np.arange(d).reshape((d,) + (1,) * (r - a))
    out = m.where(idx == classes, on, off).astype(on.dtype)
    return out if m is np else lax.stop_gradient(out)  # TF: not differentiable
  return run


# Reversal, rolling, permutations ----------------------------------------------------------


def _flip(x, axes):
  return xnp(x).flip(x, tuple(axes)) if axes else x


@lowering("ReverseV2", attrs={"T": _ANY, "Tidx": _IDX}, static_inputs=(1,))
def reverse_v2(node):
  def run(x, axis):
    r = np.ndim(x)
    axes = [_axis(a, r, "axis") for a in _ints(axis)]
    for a in axes:
      if axes.count(a) > 1:
        raise ValueError(f"axis {a} specified more than once.")
    return _flip(x, axes)
  return run


@lowering("Reverse", attrs={"T": _ANY}, static_inputs=(1,))
def reverse(node):
  def run(x, dims):
    flags = [bool(v) for v in np.reshape(dims, -1)]
    if np.ndim(x) and _shape(x)[0] == 0:
      raise ValueError("Invalid input first dimension. Found 0.")
    if len(flags) != np.ndim(x):
      raise ValueError(f"'dims' must have the same number of values as 'input' has "
                       f"dimensions. 'input' has {np.ndim(x)}'dims' has {len(flags)} values")
    return _flip(x, [i for i, f in enumerate(flags) if f])
  return run


@lowering("ReverseSequence", attrs={"T": _ANY, "Tlen": _IDX, "seq_dim": None,
                                    "batch_dim": None})
def reverse_sequence(node):
  seq_dim, batch_dim = node.attrs["seq_dim"], node.attrs.get("batch_dim", 0)

  def run(x, lengths):
    shp = _shape(x)
    r = len(shp)
    if not (0 <= seq_dim < r and 0 <= batch_dim < r) or seq_dim == batch_dim:
      raise ValueError(f"Invalid seq_dim {seq_dim} / batch_dim {batch_dim} for rank {r}")
    if _shape(lengths) != (shp[batch_dim],):
      raise ValueError(f"Length of seq_lengths != input.dims({batch_dim}), "
                       f"({list(_shape(lengths))} vs. {shp[batch_dim]})")
    known = _known(lengths)
    if known is not None:
      for i, v in enumerate(np.reshape(known, -1)):
        if v < 0:
          raise ValueError(f"seq_lens({i}) < 0")
        if v > shp[seq_dim]:
          raise ValueError(f"seq_lens({i}) > input.dims({seq_dim})")
    m = xnp(x, lengths)
    lens_shape = [1] * r
    lens_shape[batch_dim] = shp[batch_dim]
    pos_shape = [1] * r
    pos_shape[seq_dim] = shp[seq_dim]
    lens = m.reshape(_as(m, lengths, np.int64 if m is np else None), lens_shape)
    pos = np.arange(shp[seq_dim]).reshape(pos_shape)
    src = m.where(pos < lens, lens - 1 - pos, pos)
    src = m.broadcast_to(src, shp)
    return m.take_along_axis(x, src, axis=seq_dim)
  return run


@lowering("Roll", attrs={"T": _ANY, "Tshift": _IDX, "Taxis": _IDX}, static_inputs=(2,))
def roll(node):
  def run(x, shift, axis):
    axes = _ints(axis)
    if np.shape(shift) != np.shape(axis) or np.ndim(axis) > 1:
      raise ValueError(f"shift and axis must have the same size and be scalars or "
                       f"vectors: {list(np.shape(shift))} vs {list(np.shape(axis))}")
    r = np.ndim(x)
    axes = [_axis(a, r, "axis") for a in axes]
    if not axes:
      return x
    known = _known(shift)
    if known is not None:
      totals: dict[int, int] = {}
      for a, s in zip(axes, _ints(known)):
        totals[a] = totals.get(a, 0) + s
      m = xnp(x)
      return m.roll(x, tuple(totals.values()), tuple(totals))
    shifts = jnp.reshape(jnp.asarray(shift), (-1,))
    y = x
    for i, a in enumerate(axes):
      y = jnp.roll(y, shifts[i], a)
    return y
  return run


@lowering("InvertPermutation", attrs={"T": _IDX})
def invert_permutation(node):
  def run(x):
    if np.ndim(x) != 1:
      raise ValueError(f"invert_permutation expects a 1D vector, got shape "
                       f"{list(_shape(x))}")
    n = _shape(x)[0]
    known = _known(x)
    if known is not None:
      out = np.full(n, -1, dtype=np.int64)
      for i, v in enumerate(known.tolist()):
        if not 0 <= v < n:
          raise ValueError(f"{v} is not between 0 and {n}")
        if out[v] >= 0:
          raise ValueError(f"{v} is duplicated in the input.")
        out[v] = i
      out = out.astype(x.dtype)
      return out if is_static(x) else jnp.asarray(out)
    return jnp.zeros_like(x).at[x].set(jnp.arange(n, dtype=x.dtype))
  return run


# Bitcast ------------------------------------------------------------------------------


def _to_bytes(x):
  """uint8 array of shape x.shape + (itemsize,) holding x's bytes."""
  dt = np.dtype(x.dtype)
  if dt.kind == "c":
    part = np.float32 if dt == np.complex64 else np.float64
    parts = jnp.stack([jnp.real(x).astype(part), jnp.imag(x).astype(part)], axis=-1)
    b = _to_bytes(parts)
    return b.reshape(b.shape[:-2] + (dt.itemsize,))
  if dt.itemsize == 1:
    return lax.bitcast_convert_type(x, jnp.uint8)[..., None]
  return lax.bitcast_convert_type(x, jnp.uint8)


def _from_bytes(b, dtype):
  """The inverse of `_to_bytes`: b has shape (..., dtype.itemsize)."""
  dt = np.dtype(dtype)
  if dt.kind == "c":
    part = np.dtype(np.float32 if dt == np.complex64 else np.float64)
    f = _from_bytes(b.reshape(b.shape[:-1] + (2, part.itemsize)), part)
    return lax.complex(f[..., 0], f[..., 1])
  if dt.itemsize == 1:
    return lax.bitcast_convert_type(b[..., 0], dt)
  return lax.bitcast_convert_type(b, dt)


_BITCAST = INT + FLOAT + COMPLEX


@lowering("Bitcast", attrs={"T": _BITCAST, "type": _BITCAST})
def bitcast(node):
  out = np.dtype(node.attrs["type"])

  def run(x):
    s_in, s_out = np.dtype(x.dtype).itemsize, out.itemsize
    shp = _shape(x)
    if s_in > s_out:
      new = shp + (s_in // s_out,)
    elif s_in < s_out:
      if not shp or shp[-1] != s_out // s_in:
        raise ValueError(f"Cannot bitcast from {np.dtype(x.dtype).name} to {out.name}: "
                         f"the last dimension of shape {list(shp)} must be "
                         f"{s_out // s_in}")
      new = shp[:-1]
    else:
      new = shp
    if is_static(x):
      return np.ascontiguousarray(x).reshape(-1).view(out).reshape(new)
    b = _to_bytes(jnp.asarray(x))
    return _from_bytes(b.reshape(new + (s_out,)), out)
  return run


# In-place ops, ParallelConcat ------------------------------------------------------------


@lowering("InplaceAdd", "InplaceSub", attrs={"T": NUMBER})
def inplace_add(node):
  return _inplace(node)


@lowering("InplaceUpdate", attrs={"T": _ANY})
def inplace_update(node):
  return _inplace(node)


def _inplace(node):
  kind = {"InplaceAdd": "add", "InplaceSub": "sub", "InplaceUpdate": "update"}[node.op]

  def run(x, i, v):
    if np.ndim(i) != 1:
      raise ValueError(f"i must be a vector. {list(np.shape(i))}")
    shp = _shape(x)
    if not shp:
      raise ValueError("x must be at least a vector")
    if _shape(v) != (_shape(i)[0],) + shp[1:]:
      raise ValueError(f"v shape {list(_shape(v))} must be [{_shape(i)[0]}] + "
                       f"{list(shp[1:])}")
    if kind == "sub" and np.dtype(x.dtype) == np.bool_:
      raise ValueError("InplaceSub does not support bool")
    if not np.size(i):
      return x
    if shp[0] == 0:
      raise ValueError("x has no rows to update")
    # TF's kernel guards the row index with (i % rows + rows) % rows.
    idx = (np.mod(i, shp[0]) if is_static(i) else jnp.mod(jnp.asarray(i), shp[0]))
    return _scatter(node, kind, x, idx[..., None], v, ignore=True)
  return run


@lowering("ParallelConcat", attrs={"T": _ANY, "N": None, "shape": None})
def parallel_concat(node):
  out_shape = node.attrs.get("shape")

  def run(*xs):
    for x in xs:
      if not _shape(x) or _shape(x)[0] != 1:
        raise ValueError(f"ParallelConcat inputs must have a leading dimension of 1, got "
                         f"{list(_shape(x))}")
    y = _concat(list(xs), 0)
    if out_shape is not None and any(d is not None and d != e
                                     for d, e in zip(out_shape, _shape(y))):
      raise ValueError(f"ParallelConcat output {list(_shape(y))} does not match its shape "
                       f"attr {list(out_shape)}")
    return y
  return run


# Sorted search -----------------------------------------------------------------------------


@lowering("LowerBound", "UpperBound", attrs={"T": REAL, "out_type": _IDX})
def bound(node):
  side = "left" if node.op == "LowerBound" else "right"
  out_type = node.attrs.get("out_type", np.dtype(np.int32))

  def run(sorted_inputs, values):
    if np.ndim(sorted_inputs) != 2 or np.ndim(values) != 2:
      raise ValueError("sorted_inputs and values must be rank 2")
    if _shape(sorted_inputs)[0] != _shape(values)[0]:
      raise ValueError("Leading dim_size of both tensors must match.")
    if is_static(sorted_inputs, values):
      s, v = np.asarray(sorted_inputs), np.asarray(values)
      if s.dtype.name in ("bfloat16", "float16"):
        s, v = s.astype(np.float32), v.astype(np.float32)
      if s.dtype.kind == "f":  # TF and XLA compare with subnormals treated as zero
        tiny = np.finfo(s.dtype).tiny
        s = np.where(np.abs(s) < tiny, np.zeros((), s.dtype), s)
        v = np.where(np.abs(v) < tiny, np.zeros((), v.dtype), v)
      out = np.stack([np.searchsorted(a, b, side=side) for a, b in zip(s, v)]) \
          if s.shape[0] else np.zeros(v.shape, np.int64)
      return out.reshape(v.shape).astype(out_type)
    f = jax.vmap(lambda a, b: jnp.searchsorted(a, b, side=side))
    return f(jnp.asarray(sorted_inputs), jnp.asarray(values)).astype(out_type)
  return run


# Value-dependent shapes ---------------------------------------------------------------------


@lowering("Where", attrs={"T": _NUM_BOOL})
def where(node):
  def run(x):
    k = _concrete(node, x, "its input")
    if np.ndim(k) == 0:
      raise ValueError("WhereOp : Unhandled input dimensions: 0")
    nz = np.nonzero(np.asarray(k) != np.zeros((), k.dtype))
    return np.stack(nz, axis=1).astype(np.int64).reshape(-1, np.ndim(k))
  return run


def _hash_keys(x, offset: int = 0):
  """Values as TF's hash-based ops (Unique, ListDiff) compare them: NaNs are all
  distinct; float32/float64 -0.0 equals 0.0, but float16/bfloat16 are hashed by their
  bits, so there -0.0 and 0.0 differ (not in UniqueV2's slices of 2+ elements)."""
  if x.dtype.name in ("bfloat16", "float16"):
    keys = x.view(np.uint16).astype(np.int64)
    nan = np.isnan(x.astype(np.float32))
    return np.where(nan, -1 - offset - np.arange(x.size).reshape(x.shape), keys)
  return x


def _unique_1d(x):
  """(first-occurrence order indices, inverse, counts) with TF's Unique semantics."""
  keys = _hash_keys(x)
  if keys.size == 0:
    return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.int64)
  _, first, inverse, counts = np.unique(keys, return_index=True, return_inverse=True,
                                        return_counts=True, equal_nan=False)
  order = np.argsort(first, kind="stable")
  rank = np.empty_like(order)
  rank[order] = np.arange(order.size)
  return first[order], rank[np.reshape(inverse, -1)], counts[order]


def _unique_rows(rows):
  groups: dict = {}
  first, inverse, counts = [], [], []
  for i, row in enumerate(rows.tolist()):
    key = tuple(row)
    g = groups.get(key)
    if g is None:
      g = groups[key] = len(first)
      first.append(i)
      counts.append(0)
    inverse.append(g)
    counts[g] += 1
  return np.asarray(first, np.int64), np.asarray(inverse, np.int64), \
      np.asarray(counts, np.int64)


@lowering("Unique", "UniqueV2", "UniqueWithCounts", "UniqueWithCountsV2",
          attrs={"T": _NUM_BOOL, "out_idx": _IDX, "Taxis": _IDX})
def unique(node):
  out_idx = node.attrs.get("out_idx", np.dtype(np.int32))
  with_axis = node.op.endswith("V2")
  counts_out = "Counts" in node.op

  def run(x, *axis):
    k = np.asarray(_concrete(node, x, "its input"))
    if with_axis:
      ax = _ints(_concrete(node, axis[0], "axis"))
      if len(ax) > 1:
        raise ValueError("axis does not support input tensors larger than 1 elements")
    else:
      ax = []
    if not ax:
      if k.ndim != 1:
        raise ValueError("unique expects a 1D vector.")
      first, inverse, counts = _unique_1d(k)
      y = k[first]
    else:
      a = _axis(ax[0], k.ndim, "axis")
      moved = np.moveaxis(k, a, 0)
      rows = moved.reshape(moved.shape[0], math.prod(moved.shape[1:]))
      if rows.shape[1] == 1:  # one-element slices: hashed as Unique's 1-D input
        rows = _hash_keys(rows)
      elif rows.dtype.name in ("bfloat16", "float16"):
        # Longer ones: TF hashes bits but compares values, so rows differing only in a
        # zero's sign are one row or two by hash collision; tf2jax compares values.
        rows = rows.astype(np.float32)
      first, inverse, counts = _unique_rows(rows)
      y = np.moveaxis(moved[first], 0, a)
    outs = [y, inverse.astype(out_idx)]
    if counts_out:
      outs.append(counts.astype(out_idx))
    return outs
  return run


@lowering("ListDiff", attrs={"T": REAL, "out_idx": _IDX})
def list_diff(node):
  out_idx = node.attrs.get("out_idx", np.dtype(np.int32))

  def run(x, y):
    kx = np.asarray(_concrete(node, x, "x"))
    ky = np.asarray(_concrete(node, y, "y"))
    if kx.ndim != 1 or ky.ndim != 1:
      raise ValueError("x and y should be 1D vectors")
    keep = ~np.isin(_hash_keys(kx), _hash_keys(ky, offset=kx.size))
    pos = np.nonzero(keep)[0]
    return kx[pos], pos.astype(out_idx)
  return run


@lowering("DynamicStitch", "ParallelDynamicStitch", attrs={"T": _ANY, "N": None})
def dynamic_stitch(node):
  def run(*args):
    n = len(args) // 2
    indices = [np.asarray(_concrete(node, i, f"indices[{j}]")) for j, i in
               enumerate(args[:n])]
    data = list(args[n:])
    tail = None
    for j, (idx, d) in enumerate(zip(indices, data)):
      ds = _shape(d)
      if ds[:idx.ndim] != idx.shape:
        raise ValueError(f"data[{j}].shape = {list(ds)} does not start with "
                         f"indices[{j}].shape = {list(idx.shape)}")
      t = ds[idx.ndim:]
      if tail is None:
        tail = t
      elif t != tail:
        raise ValueError(f"Need data[{j}].shape[{idx.ndim}:] = {list(t)} to match "
                         f"data[0]'s {list(tail)}")
    flat_idx = np.concatenate([i.reshape(-1) for i in indices]).astype(np.int64)
    if flat_idx.size and flat_idx.min() < 0:
      raise ValueError(f"indices[{int(np.argmin(flat_idx))}] is out of range")
    size = int(flat_idx.max()) + 1 if flat_idx.size else 0
    total = flat_idx.size
    src = np.full(size, total, np.int64)  # `total` points at an extra zero row
    src[flat_idx] = np.arange(total)  # later entries win, as in TF
    out_shape = (size,) + tuple(tail or ())
    m = xnp(*data, result_bytes=_nbytes(out_shape, data[0].dtype))
    rows = [m.reshape(d, (math.prod(i.shape),) + tuple(tail)) for i, d in zip(indices, data)]
    rows.append(_full(m, (1,) + tuple(tail), 0, data[0].dtype))
    stacked = m.concatenate(rows, axis=0)
    return m.take(stacked, src, axis=0) if m is np else stacked[src]
  return run


@lowering("DynamicPartition", attrs={"T": _ANY, "num_partitions": None})
def dynamic_partition(node):
  num = node.attrs["num_partitions"]

  def run(data, partitions):
    p = np.asarray(_concrete(node, partitions, "partitions"))
    ds = _shape(data)
    if ds[:p.ndim] != p.shape:
      raise ValueError(f"data.shape must start with partitions.shape, got data.shape = "
                       f"{list(ds)}, partitions.shape = {list(p.shape)}")
    _check_range(p, num, "partitions")
    tail = ds[p.ndim:]
    m = xnp(data)
    flat = m.reshape(data, (p.size,) + tail)
    pf = p.reshape(-1)
    return [flat[np.nonzero(pf == i)[0]] for i in range(num)]
  return run


@lowering("UnravelIndex", attrs={"Tidx": _IDX}, static_inputs=(1,))
def unravel_index(node):
  def run(indices, dims):
    d = _ints(dims)
    if np.ndim(indices) > 1:
      raise ValueError(f'The indices can only be scalar or vector, got '
                       f'"{list(_shape(indices))}"')
    if any(v == 0 for v in d):
      raise ValueError("Input dims cannot contain a dim of zero, but dims contains zero")
    total = math.prod(d)
    known = _known(indices)
    if known is not None and np.any(np.asarray(known) >= total):
      raise ValueError("index is out of bound as with dims")
    m = xnp(indices)
    # C++ truncating division, as TF's kernel (negative indices are not checked there).
    rem = indices
    out = []
    for v in reversed(d):
      q = rem // v if m is np else jnp.floor_divide(rem, v)
      r = rem - q * v
      neg = (r != 0) & (rem < 0)
      q, r = m.where(neg, q + 1, q), m.where(neg, r - v, r)
      out.append(r)
      rem = q
    return m.stack(out[::-1], axis=0).astype(indices.dtype)
  return run


# Diagonals and bands ------------------------------------------------------------------------


def _matrix_shape(x, what="input"):
  shp = _shape(x)
  if len(shp) < 2:
    raise ValueError(f"{what} must be at least 2-dim, received shape: {list(shp)}")
  return shp[:-2], shp[-2], shp[-1]


@lowering("MatrixBandPart", attrs={"T": _ANY, "Tindex": _IDX})
def matrix_band_part(node):
  def run(x, num_lower, num_upper):
    _, rows, cols = _matrix_shape(x)
    for name, v, limit in (("num_lower", num_lower, rows), ("num_upper", num_upper, cols)):
      if np.ndim(v) != 0:
        raise ValueError(f"{name} must be scalar, got shape {list(np.shape(v))}")
      k = _known(v)
      if k is not None and int(k) > limit:
        raise ValueError(f"{name} must be negative or less or equal to number of "
                         f"{'rows' if name == 'num_lower' else 'columns'} ({limit}) got: "
                         f"{int(k)}")
    m = xnp(x, num_lower, num_upper)
    i = np.arange(rows)[:, None]
    j = np.arange(cols)[None, :]
    lo = _as(m, num_lower, np.int64 if m is np else None)
    up = _as(m, num_upper, np.int64 if m is np else None)
    mask = ((lo < 0) | (i - j <= lo)) & ((up < 0) | (j - i <= up))
    return m.where(mask, x, m.zeros((), x.dtype))
  return run


def _k_range(k, rows: int, cols: int, check_bounds: bool = True) -> tuple[int, int]:
  ks = _ints(k)
  if np.ndim(k) > 1 or not 1 <= len(ks) <= 2:
    raise ValueError(f"diag_index must be a scalar or vector with 1 or 2 elements, got "
                     f"shape {list(np.shape(k))}")
  k0, k1 = ks[0], ks[-1]
  if check_bounds:
    for name, v in (("lower_diag_index", k0), ("upper_diag_index", k1)):
      if not ((-rows < v < cols) or v == 0):
        raise ValueError(f"{name} is out of bound: {v}. It must be between {-rows} and "
                         f"{cols}")
  if k0 > k1:
    raise ValueError(f"lower_diag_index must not be larger than upper_diag_index: "
                     f"{k0} > {k1}")
  return k0, k1


def _offsets(d, max_len, rows, cols, align):
  left_super = align in ("LEFT_LEFT", "LEFT_RIGHT")
  left_sub = align in ("LEFT_LEFT", "RIGHT_LEFT")
  diag_len = np.minimum(cols - np.maximum(d, 0), rows + np.minimum(d, 0))
  left = ((d >= 0) & left_super) | ((d <= 0) & left_sub)
  return np.where(left, 0, max_len - diag_len), diag_len


def _diag_to_matrix_map(rows, cols, k0, k1, max_len, align):
  """For each matrix position: (flat index into [num_diags, max_len], valid)."""
  r = np.arange(rows)[:, None]
  c = np.arange(cols)[None, :]
  d = c - r
  offset, _ = _offsets(d, max_len, rows, cols, align)
  n = r - np.maximum(-d, 0) + offset
  valid = (d >= k0) & (d <= k1) & (n >= 0) & (n < max_len)
  lin = np.where(valid, (k1 - d) * max_len + n, 0)
  return lin, valid


def _take_last(m, x, lin, out_tail):
  """x[..., lin] for a flattened last axis, reshaped to batch + out_tail."""
  batch = _shape(x)[:-1]
  if _shape(x)[-1] == 0:
    return None
  g = m.take(x, lin.reshape(-1), axis=-1)
  return m.reshape(g, batch + tuple(out_tail))


def _diag_part(x, k0, k1, pad, align):
  batch, rows, cols = _matrix_shape(x)
  num = k1 - k0 + 1
  max_len = min(rows + min(k1, 0), cols - max(k0, 0))
  max_len = max(max_len, 0)
  mi = np.arange(num)[:, None]
  ni = np.arange(max_len)[None, :]
  d = k1 - mi
  offset, diag_len = _offsets(d, max_len, rows, cols, align)
  rr = ni - offset + np.maximum(-d, 0)
  cc = ni - offset + np.maximum(d, 0)
  valid = (ni >= offset) & (ni < offset + diag_len)
  lin = np.where(valid, rr * cols + cc, 0)
  m = xnp(x, pad)
  flat = m.reshape(x, batch + (rows * cols,))
  g = _take_last(m, flat, lin, (num, max_len)) if lin.size else None
  if g is None:
    out = _full(m, batch + (num, max_len), pad, x.dtype)
  else:
    out = m.where(valid, g, _as(m, pad, x.dtype))
  return out[..., 0, :] if num == 1 else out


def _diag_input(diagonal, k0, k1):
  shp = _shape(diagonal)
  num = k1 - k0 + 1
  if num == 1:
    if not shp:
      raise ValueError("diagonal must be at least 1-dim")
    return xnp(diagonal).reshape(diagonal, shp[:-1] + (1, shp[-1]))
  if len(shp) < 2 or shp[-2] != num:
    raise ValueError(f"The number of diagonals provided in the input does not match the "
                     f"lower_diag_index and upper_diag_index range: shape {list(shp)}, "
                     f"k = ({k0}, {k1})")
  return diagonal


def _matrix_diag(diagonal, k0, k1, rows, cols, pad, align):
  d3 = _diag_input(diagonal, k0, k1)
  shp = _shape(d3)
  batch, num, max_len = shp[:-2], shp[-2], shp[-1]
  min_rows = max_len - min(k1, 0)
  min_cols = max_len + max(k0, 0)
  if rows == -1 and cols == -1:
    rows = cols = max(min_rows, min_cols)
  elif rows == -1:
    rows = min_rows
  elif cols == -1:
    cols = min_cols
  if rows < min_rows:
    raise ValueError(f"The number of rows is too small: {rows} < {min_rows}")
  if cols < min_cols:
    raise ValueError(f"The number of columns is too small: {cols} < {min_cols}")
  if rows != min_rows and cols != min_cols:
    raise ValueError("The number of rows or columns is not consistent with the specified "
                     "d_lower, d_upper, and diagonal.")
  lin, valid = _diag_to_matrix_map(rows, cols, k0, k1, max_len, align)
  m = xnp(diagonal, pad, result_bytes=_nbytes(batch + (rows, cols), diagonal.dtype))
  flat = m.reshape(d3, batch + (num * max_len,))
  g = _take_last(m, flat, lin, (rows, cols)) if lin.size else None
  if g is None:
    return _full(m, batch + (rows, cols), pad, diagonal.dtype)
  return m.where(valid, g, _as(m, pad, diagonal.dtype))


def _set_diag(x, diagonal, k0, k1, align):
  batch, rows, cols = _matrix_shape(x)
  max_len = max(min(rows + min(k1, 0), cols - max(k0, 0)), 0)
  num = k1 - k0 + 1
  d3 = _diag_input(diagonal, k0, k1)
  want = batch + (num, max_len)
  if _shape(d3) != want:
    raise ValueError(f"Either first dimensions of diagonal don't match input.shape[:-2], "
                     f"or diagonal.shape[:-1] is not equal to the diagonals' count: "
                     f"diagonal shape {list(_shape(diagonal))}, expected "
                     f"{list(want if num > 1 else batch + (max_len,))}")
  lin, valid = _diag_to_matrix_map(rows, cols, k0, k1, max_len, align)
  m = xnp(x, diagonal)
  flat = m.reshape(d3, batch + (num * max_len,))
  g = _take_last(m, flat, lin, (rows, cols)) if lin.size else None
  return x if g is None else m.where(valid, g, x)


_ALIGN = ("LEFT_LEFT", "LEFT_RIGHT", "RIGHT_LEFT", "RIGHT_RIGHT")


def _align(node) -> str:
  return node.attrs.get("align", "RIGHT_LEFT") if node.op.endswith("V3") else "LEFT_LEFT"


@lowering("MatrixDiag", attrs={"T": _ANY})
def matrix_diag(node):
  def run(diagonal):
    if np.ndim(diagonal) < 1:
      raise ValueError("diagonal must be at least 1-dim")
    return _matrix_diag(diagonal, 0, 0, -1, -1, np.zeros((), diagonal.dtype), "LEFT_LEFT")
  return run


@lowering("MatrixDiagV2", "MatrixDiagV3", attrs={"T": _ANY, "align": _ALIGN},
          static_inputs=(1, 2, 3))
def matrix_diag_v3(node):
  align = _align(node)

  def run(diagonal, k, num_rows, num_cols, pad):
    k0, k1 = _k_range(k, 0, 0, check_bounds=False)
    if np.ndim(pad) != 0:
      raise ValueError("padding_value must be a scalar")
    # TF's gradient has no term for padding_value.
    return _matrix_diag(diagonal, k0, k1, _int(num_rows, "num_rows"),
                        _int(num_cols, "num_cols"), _no_grad(pad), align)
  return run


@lowering("MatrixDiagPart", attrs={"T": _ANY})
def matrix_diag_part(node):
  return lambda x: _diag_part(x, 0, 0, np.zeros((), x.dtype), "LEFT_LEFT")


@lowering("MatrixDiagPartV2", "MatrixDiagPartV3", attrs={"T": _ANY, "align": _ALIGN},
          static_inputs=(1,))
def matrix_diag_part_v3(node):
  align = _align(node)

  def run(x, k, pad):
    _, rows, cols = _matrix_shape(x)
    k0, k1 = _k_range(k, rows, cols)
    if np.ndim(pad) != 0:
      raise ValueError("padding_value must be a scalar")
    return _diag_part(x, k0, k1, _no_grad(pad), align)  # TF: no gradient for padding
  return run


@lowering("MatrixSetDiag", attrs={"T": _ANY})
def matrix_set_diag(node):
  return lambda x, diagonal: _set_diag(x, diagonal, 0, 0, "LEFT_LEFT")


@lowering("MatrixSetDiagV2", "MatrixSetDiagV3", attrs={"T": _ANY, "align": _ALIGN},
          static_inputs=(2,))
def matrix_set_diag_v3(node):
  align = _align(node)

  def run(x, diagonal, k):
    _, rows, cols = _matrix_shape(x)
    k0, k1 = _k_range(k, rows, cols)
    return _set_diag(x, diagonal, k0, k1, align)
  return run


@lowering("Diag", attrs={"T": _ANY})
def diag(node):
  def run(d):
    shp = _shape(d)
    if not shp:
      raise ValueError(f"Input must be at least rank 1, got 0")
    n = math.prod(shp)
    m = xnp(d, result_bytes=_nbytes((n, n), d.dtype))
    flat = m.reshape(d, (n,))
    out = m.where(np.eye(n, dtype=bool), flat[None, :], m.zeros((), d.dtype))
    return m.reshape(out, shp + shp)
  return run


@lowering("DiagPart", attrs={"T": _ANY})
def diag_part(node):
  def run(x):
    shp = _shape(x)
    r = len(shp)
    if r == 0 or r % 2 or shp[:r // 2] != shp[r // 2:]:
      raise ValueError(f"The input tensor must have even rank and matching halves; got "
                       f"shape {list(shp)}")
    half = shp[:r // 2]
    n = math.prod(half)
    m = xnp(x)
    flat = m.reshape(x, (n * n,))
    return m.reshape(flat[np.arange(n) * (n + 1)] if n else flat[:0], half)
  return run


# Selection -----------------------------------------------------------------------------


@lowering("Select", attrs={"T": _ANY})
def select(node):
  def run(cond, t, e):
    ts, cs = _shape(t), _shape(cond)
    if _shape(e) != ts:
      raise ValueError(f"'then' and 'else' must have the same size.  but received: "
                       f"{list(ts)} vs. {list(_shape(e))}")
    if cs and cs != ts:
      if len(cs) == 1 and ts and cs[0] == ts[0]:
        cond = xnp(cond).reshape(cond, cs + (1,) * (len(ts) - 1))
      else:
        raise ValueError(f"'condition' must be a scalar, a vector of size {ts[:1]} or "
                         f"have the shape {list(ts)}; got {list(cs)}")
    return xnp(cond, t, e).where(cond, t, e)
  return run


@lowering("SelectV2", attrs={"T": _ANY})
def select_v2(node):
  def run(cond, t, e):
    out = np.broadcast_shapes(_shape(cond), _shape(t), _shape(e))
    m = xnp(cond, t, e, result_bytes=_nbytes(out, t.dtype))
    return m.where(cond, t, e)
  return run
