"""Specs of the core's array manipulation ops ("array manipulation" in ops/core.txt).

Inputs that tf2jax needs at conversion time (axes, shapes, paddings, begin/end/strides,
diagonal offsets) are static inputs; indices stay function arguments wherever the
lowering accepts traced ones, so jit/vmap/grad see the JAX path.

Out-of-range indices: TF's CPU kernels raise; tf2jax raises when the indices' values are
known (static, or concrete outside jit). Most examples draw valid indices (a traced
out-of-range index cannot raise under jit: gathers give zeros, scatters drop it); some
specs draw out-of-range ones on purpose where TF defines the result (IGNORE policy,
Inplace* row wrapping).
"""

from __future__ import annotations

import math

import numpy as np
from hypothesis import strategies as st

from tf2jax_conformance import dtypes as D
from tf2jax_conformance import strategies as cst
from tf2jax_conformance.spec import EXACT, Example, OpSpec, Tolerance, default_tolerance

_EXACT = lambda dtype, ex: EXACT  # noqa: E731  pure data movement
NO_GRAD = ("jit", "static", "x64", "vmap")
VALUE_SHAPED = ("static",)  # output size depends on values: eager and static only
ALL_STATIC = ("jit", "static", "x64")  # every input is a constant: nothing to vmap/grad
# Dtypes of kernels registered for any T: everything JAX holds, but TF cannot put the
# fnuz float8 types in a TensorProto, so no graph holds a constant of them ("static").
_NO_TENSOR_PROTO = ("float8_e4m3fnuz", "float8_e4m3b11fnuz", "float8_e5m2fnuz")
_NO_PROTO = {d: "TF cannot store it in a TensorProto (\"Element type not supported in "
                "TensorProto\"), so no graph can hold a constant of it"
             for d in _NO_TENSOR_PROTO}
ANY_DTYPES = tuple(d for d in D.BOOL + D.NUMBER + D.FLOAT8 + D.FLOAT4 + D.NARROW_INT
                   if d not in _NO_TENSOR_PROTO)
_ANY_T = dict(dtypes=ANY_DTYPES, skip_dtypes=_NO_PROTO)
_NARROW = D.FLOAT8[:2] + D.FLOAT4 + D.NARROW_INT  # the ones TF can hold in a TensorProto
# Kernels registered for any T that still refuse the narrow dtypes when run.
_ANY_KERNEL_T = dict(dtypes=D.BOOL + D.NUMBER, skip_dtypes={
    **_NO_PROTO, **{d: "TF's CPU kernel is registered for any dtype but refuses it when "
                       "run (\"not supported\" / \"Unsupported data type\")" for d in _NARROW}})


def _tf():
  import tensorflow as tf
  return tf


def _np_idx(values, dtype="int32"):
  return np.asarray(values, dtype=D.np_dtype(dtype))


def _sum_tol(dtype: str, ex: Example) -> Tolerance:
  """Sums of a few duplicates in any order: a few eps of the largest magnitude (10)."""
  base = default_tolerance(dtype)
  if dtype not in D.FLOAT and dtype not in D.COMPLEX:
    return base
  part = {"complex64": "float32", "complex128": "float64"}.get(dtype, dtype)
  scale = 1.0
  for v in list(ex.inputs.values()):
    for a in (v if isinstance(v, (list, tuple)) else [v]):
      a = np.asarray(a)
      if a.dtype.kind in "fcV" or a.dtype.name == "bfloat16":
        mag = np.abs(a.astype(np.complex128 if a.dtype.kind == "c" else np.float64))
        mag = mag[np.isfinite(mag)]
        if mag.size:
          scale = max(scale, float(np.max(mag)))
  return Tolerance(rtol=base.rtol, atol=base.atol + 16 * float(D.finfo(part).eps) * scale)


def _grad_sum_tol(terms):
  """Gradients summing up to `terms(example)` cotangents (|c| <= 10) in any order."""
  def tol(dtype, ex):
    base = default_tolerance(dtype)
    if dtype not in D.FLOAT:
      return base
    n = max(1, int(terms(ex)))
    return Tolerance(base.rtol, base.atol + 2 * n * float(D.finfo(dtype).eps) * 10)
  return tol


def _size(name):
  return lambda ex: np.size(ex.inputs[name])


def _prod(name):
  return lambda ex: math.prod(int(v) for v in np.reshape(ex.inputs[name], -1))


def _broadcast_size(ex):
  """The output size of Select/SelectV2 (Select's vector condition does not broadcast)."""
  data = [np.shape(v) for k, v in ex.inputs.items() if k != "condition"]
  return math.prod(np.broadcast_shapes(*data))


def arrays(dtype, shape, **kw):
  return cst.arrays(dtype, shape, **kw)


def _index_dtype():
  return cst.index_dtypes()


# Shapes -------------------------------------------------------------------------------


def shape_example(dtype):
  return st.tuples(arrays(dtype, cst.shapes()), _index_dtype()).map(
      lambda t: Example({"input": t[0]}, {"out_type": t[1]}))


def shape_n_example(dtype):
  return st.tuples(st.lists(arrays(dtype, cst.shapes()), min_size=1, max_size=3),
                   _index_dtype()).map(lambda t: Example({"input": t[0]}, {"out_type": t[1]}))


def rank_example(dtype):
  return arrays(dtype, cst.shapes()).map(lambda x: Example({"input": x}))


def _factor_shapes(shape):
  """A random target shape of the same size (dims shuffled, merged, 1s added, one -1)."""
  dims = list(shape)

  def build(t):
    perm, merges, ones, unknown, idx = t
    d = [dims[i] for i in perm]
    out = []
    for i, v in enumerate(d):
      if out and i < len(merges) and merges[i]:
        out[-1] *= v
      else:
        out.append(v)
    for pos in ones:
      out.insert(min(pos, len(out)), 1)
    if unknown and out:
      out[idx % len(out)] = -1
    return out
  n = len(dims)
  return st.tuples(st.permutations(range(n)), st.lists(st.booleans(), min_size=n, max_size=n),
                   st.lists(st.integers(0, 4), max_size=2), st.booleans(),
                   st.integers(0, 10)).map(build)


def reshape_example(dtype):
  def for_shape(shape):
    return st.tuples(arrays(dtype, shape), _factor_shapes(shape), _index_dtype()).map(
        lambda t: Example({"tensor": t[0], "shape": _np_idx(t[1], t[2])}))
  return cst.shapes().flatmap(for_shape)


def squeeze_example(dtype):
  def for_shape(shape):
    ones = [i for i, d in enumerate(shape) if d == 1]
    r = len(shape)
    axes = st.lists(st.sampled_from(ones), unique=True).flatmap(
        lambda ax: st.lists(st.booleans(), min_size=len(ax), max_size=len(ax)).map(
            lambda neg: [a - r if n else a for a, n in zip(ax, neg)])) if ones else st.just([])
    return st.tuples(arrays(dtype, shape), axes).map(
        lambda t: Example({"input": t[0]}, {"axis": t[1]}))
  return cst.shapes(max_side=3).flatmap(for_shape)


def expand_dims_example(dtype):
  def for_shape(shape):
    r = len(shape)
    return st.tuples(arrays(dtype, shape), st.integers(-r - 1, r), st.booleans(),
                     _index_dtype()).map(lambda t: Example(
                         {"input": t[0],
                          "axis": _np_idx([t[1]] if t[2] else t[1], t[3])}))
  return cst.shapes().flatmap(for_shape)


def transpose_example(min_dims=0):
  # Non-negative perms: TF's gradient (InvertPermutation) refuses negative ones, which the
  # forward op accepts (tests/test_array_ops.py covers those).
  def example(dtype):
    def for_shape(shape):
      return st.tuples(arrays(dtype, shape), st.permutations(range(len(shape))),
                       _index_dtype()).map(lambda t: Example({"x": t[0],
                                                              "perm": _np_idx(t[1], t[2])}))
    return cst.shapes(min_dims=min_dims).flatmap(for_shape)
  return example


# Concatenation, stacking, splitting -------------------------------------------------


def _concat_parts(dtype, min_n=2):
  def for_shape(shape):
    r = len(shape)
    return st.tuples(st.integers(-r, r - 1), st.lists(st.integers(0, 3), min_size=min_n,
                                                      max_size=4)).flatmap(
        lambda t: st.tuples(st.just(t[0]), st.tuples(*[
            arrays(dtype, shape[:t[0] % r] + (n,) + shape[t[0] % r + 1:]) for n in t[1]])))
  return cst.shapes(min_dims=1, max_dims=3, max_side=3).flatmap(for_shape)


def concat_v2_example(dtype):
  return st.tuples(_concat_parts(dtype), _index_dtype()).map(lambda t: Example(
      {"values": list(t[0][1]), "axis": _np_idx(t[0][0], t[1])}))


def concat_example(dtype):
  return _concat_parts(dtype).map(lambda t: Example(
      {"concat_dim": _np_idx(t[0]), "values": list(t[1])}))


def concat_offset_example(dtype):
  def build(t):
    shape, axis, sizes = t
    shapes = [list(shape[:axis % len(shape)]) + [n] + list(shape[axis % len(shape) + 1:])
              for n in sizes]
    return Example({"concat_dim": _np_idx(axis), "shape": [_np_idx(s, dtype) for s in shapes]})
  return cst.shapes(min_dims=1, max_dims=4).flatmap(lambda s: st.tuples(
      st.just(s), st.integers(-len(s), len(s) - 1),
      st.lists(st.integers(0, 5), min_size=2, max_size=4))).map(build)


def pack_example(dtype):
  def for_shape(shape):
    r = len(shape) + 1
    return st.tuples(st.lists(arrays(dtype, shape), min_size=1, max_size=4),
                     st.integers(-r, r - 1)).map(
        lambda t: Example({"values": t[0]}, {"axis": t[1]}))
  return cst.shapes(max_dims=3, max_side=4).flatmap(for_shape)


def unpack_example(dtype):
  def for_shape(shape):
    r = len(shape)

    def for_axis(axis):  # at least one output (grad needs one)
      shp = shape[:axis % r] + (max(shape[axis % r], 1),) + shape[axis % r + 1:]
      return arrays(dtype, shp).map(
          lambda x: Example({"value": x}, {"num": shp[axis % r], "axis": axis}))
    return st.integers(-r, r - 1).flatmap(for_axis)
  return cst.shapes(min_dims=1, max_dims=3, max_side=4).flatmap(for_shape)


def split_example(dtype):
  def for_shape(shape):
    r = len(shape)

    def for_axis(axis):
      d = shape[axis % r]
      divisors = [k for k in range(1, 5) if d % k == 0] if d else [1, 2, 3]
      return st.tuples(arrays(dtype, shape), st.sampled_from(divisors)).map(
          lambda t: Example({"axis": _np_idx(axis), "value": t[0]}, {"num_split": t[1]}))
    return st.integers(-r, r - 1).flatmap(for_axis)
  return cst.shapes(min_dims=1, max_dims=3).flatmap(for_shape)


def split_v_example(dtype):
  def for_shape(shape):
    r = len(shape)

    def for_axis(axis):
      d = shape[axis % r]

      def sizes(cuts):
        cuts = sorted(cuts)
        return [b - a for a, b in zip([0] + cuts, cuts + [d])]
      # t[2] - 1: the split given as -1 (inferred), if any; none in the first draw, as a
      # lone -1 is one TF rejects ("must have the same size as the input").
      return st.tuples(arrays(dtype, shape), st.lists(st.integers(0, d), max_size=3).map(sizes),
                       st.integers(0, 6), _index_dtype()).map(
          lambda t: Example(
              {"value": t[0],
               "size_splits": _np_idx([-1 if i == t[2] - 1 else s
                                       for i, s in enumerate(t[1])], t[3]),
               "axis": _np_idx(axis)}, {"num_split": len(t[1])}))
    return st.integers(-r, r - 1).flatmap(for_axis)
  return cst.shapes(min_dims=1, max_dims=3).flatmap(for_shape)


# Slicing -----------------------------------------------------------------------------


def slice_example(dtype):
  def for_shape(shape):
    def dim(d):
      return st.integers(0, d).flatmap(lambda b: st.tuples(
          st.just(b), st.one_of(st.integers(0, d - b), st.just(-1))))
    return st.tuples(arrays(dtype, shape), st.tuples(*[dim(d) for d in shape]),
                     _index_dtype()).map(lambda t: Example(
                         {"input": t[0], "begin": _np_idx([b for b, _ in t[1]], t[2]),
                          "size": _np_idx([s for _, s in t[1]], t[2])}))
  return cst.shapes().flatmap(for_shape)


_MASKS = ("begin_mask", "end_mask", "ellipsis_mask", "new_axis_mask", "shrink_axis_mask")


def _slice_spec(rank, dtype="int32"):
  """begin/end/strides with every mask; mostly valid, sometimes not (TF must raise).

  int16 indices only for dtypes without grad: TF's StridedSlice gradient builds a Shape
  with out_type=int16, which TF refuses.
  """
  index_types = ["int32", "int64"] + ([] if D.is_float(dtype) else ["int16"])
  def build(t):
    n, vals, masks, index = t
    begin = [v[0] for v in vals[:n]]
    end = [v[1] for v in vals[:n]]
    strides = [v[2] for v in vals[:n]]
    bits = {k: m & ((1 << n) - 1) for k, m in zip(_MASKS, masks)}
    bits["ellipsis_mask"] &= -bits["ellipsis_mask"]  # at most one ellipsis (lowest bit)
    return {"begin": _np_idx(begin, index), "end": _np_idx(end, index),
            "strides": _np_idx(strides, index)}, bits
  v = st.tuples(st.integers(-6, 6), st.integers(-6, 6),
                st.sampled_from([-3, -2, -1, 1, 1, 1, 2, 3]))
  return st.tuples(st.integers(0, rank + 2), st.lists(v, min_size=rank + 2, max_size=rank + 2),
                   st.tuples(*[st.integers(0, 31)] * 5),
                   st.sampled_from(index_types)).map(build)


def strided_slice_example(dtype):
  def for_shape(shape):
    return st.tuples(arrays(dtype, shape), _slice_spec(len(shape), dtype)).map(
        lambda t: Example({"input": t[0], **t[1][0]}, t[1][1]))
  return cst.shapes(max_dims=3).flatmap(for_shape)


def _final_shape(shape, spec, masks):
  """The output shape of TF's StridedSlice (None when TF refuses the spec)."""
  tf = _tf()
  try:
    out = tf.raw_ops.StridedSlice(input=tf.zeros(shape, tf.int8), **spec, **masks)
    return tuple(out.shape)
  except Exception:
    return None


def strided_slice_grad_example(dtype):
  def for_shape(shape):
    def with_spec(sm):
      spec, masks = sm
      spec = {k: v.astype(np.int64 if v.dtype == np.int64 else np.int32)
              for k, v in spec.items()}
      final = _final_shape(shape, spec, masks)
      if final is None:
        return st.nothing()
      return arrays(dtype, final).map(lambda dy: Example(
          {"shape": _np_idx(shape, spec["begin"].dtype.name), **spec, "dy": dy}, masks))
    return _slice_spec(len(shape)).flatmap(with_spec)
  return cst.shapes(max_dims=3).flatmap(for_shape)


def tensor_strided_slice_update_example(dtype):
  def for_shape(shape):
    def with_spec(sm):
      spec, masks = sm
      spec = {k: v.astype(np.int64 if v.dtype == np.int64 else np.int32)
              for k, v in spec.items()}
      final = _final_shape(shape, spec, masks)
      if final is None:
        return st.nothing()
      # The value may also broadcast to the slice (leading dims dropped, 1s).
      value_shape = st.integers(0, len(final)).flatmap(lambda k: st.lists(
          st.booleans(), min_size=len(final) - k, max_size=len(final) - k).map(
              lambda ones: tuple(1 if o else d for o, d in zip(ones, final[k:]))))
      return st.tuples(arrays(dtype, shape), arrays(dtype, value_shape)).map(
          lambda t: Example({"input": t[0], **spec, "value": t[1]}, masks))
    return _slice_spec(len(shape)).flatmap(with_spec)
  return cst.shapes(max_dims=3).flatmap(for_shape)


# Gathers and scatters ------------------------------------------------------------------


def gather_v2_example(dtype):
  def for_shape(shape):
    r = len(shape)

    def for_axis(t):
      axis, b, extra, spell_neg, index = t
      a = axis % r
      b = min(b, a)
      if shape[a] == 0 and math.prod(shape[:b]) and 0 not in extra:
        extra = [0] + list(extra)  # no valid index into an empty axis
      if b and D.is_float(dtype) and index == "int16":
        # TF's gradient asserts: its batch offsets come from tf.range, which has no int16.
        index = "int32"
      ishape = shape[:b] + tuple(extra)
      return st.tuples(arrays(dtype, shape),
                       cst.valid_indices(shape[a], ishape, index)).map(lambda pi: Example(
                           {"params": pi[0], "indices": pi[1],
                            "axis": _np_idx(axis, "int64" if spell_neg else "int32")},
                           {"batch_dims": b - len(ishape) if spell_neg and b else b}))
    return st.tuples(st.integers(-r, r - 1), st.integers(0, r),
                     st.lists(st.integers(min_side, 3), max_size=2), st.booleans(),
                     st.sampled_from(["int16", "int32", "int64"])).flatmap(for_axis)
  # Float dtypes (grad) have no 0-sized dims: TF's gradient (UnsortedSegmentSum) refuses
  # some of those shapes with batch_dims.
  min_side = 1 if D.is_float(dtype) else 0
  return cst.shapes(min_dims=1, max_dims=3, max_side=4, min_side=min_side).flatmap(for_shape)


def _dense_grad_gather(op):
  """tf.raw_ops.<op> behind a Reshape of params: TF's gradient of a gather is an
  IndexedSlices, which the harness does not densify; Reshape's gradient does."""
  def build(example):
    tf = _tf()
    gather = getattr(tf.raw_ops, op)
    static = {k: tf.constant(v) for k, v in example.inputs.items() if k == "axis"}
    attrs = {k: v for k, v in example.attrs.items()}

    def body(params, indices):
      params = tf.reshape(params, tf.shape(params))
      return gather(params=params, indices=indices, **static, **attrs)
    return body
  return build


def gather_example(dtype):
  def for_shape(shape):
    return st.tuples(arrays(dtype, shape),
                     cst.valid_indices(shape[0], cst.shapes(max_dims=2, max_side=3),
                                       "int32"), st.booleans(), _index_dtype()).map(
        lambda t: Example({"params": t[0], "indices": t[1].astype(D.np_dtype(t[3]))},
                          {"validate_indices": t[2]}))
  return cst.shapes(min_dims=1, max_dims=3, max_side=4).flatmap(for_shape)


def _nd_indices(shape, depth, outer, index, bad=False, unique=False):
  """[*outer, depth] indices into `shape` (valid unless `bad`)."""
  n = math.prod(outer)
  if depth and any(d == 0 for d in shape[:depth]) and n and not bad:
    return st.nothing()

  def coord(d):
    return st.integers(-2, d + 1) if bad else st.integers(0, max(d - 1, 0))
  rows = st.lists(st.tuples(*[coord(d) for d in shape[:depth]]), min_size=n, max_size=n,
                  unique=unique)
  return rows.map(lambda rs: np.asarray(rs, dtype=D.np_dtype(index)).reshape(
      tuple(outer) + (depth,)))


def gather_nd_example(dtype):
  def for_shape(shape):
    r = len(shape)
    # int16 indices only without grad: TF's GatherNd gradient refuses them.
    index_types = ["int32", "int64"] + ([] if D.is_float(dtype) else ["int16"])
    # Float dtypes (grad): depth >= 1, indices of rank >= 2 and no 0-sized params; TF's
    # gradient (ScatterNd) refuses the others.
    min_depth = 1 if D.is_float(dtype) else 0
    return st.tuples(st.integers(min_depth, r),
                     cst.shapes(min_dims=min_depth, max_dims=2, max_side=3),
                     st.sampled_from(index_types),
                     st.sampled_from(["", "IGNORE"])).flatmap(lambda t: st.tuples(
                         arrays(dtype, shape),
                         _nd_indices(shape, t[0], t[1], t[2],
                                     bad=t[3] == "IGNORE" and not D.is_float(dtype))).map(
                             lambda pi: Example({"params": pi[0], "indices": pi[1]},
                                                {"bad_indices_policy": t[3]} if t[3] else {})))
  return cst.shapes(min_dims=1, max_dims=3, max_side=4,
                    min_side=1 if D.is_float(dtype) else 0).flatmap(for_shape)


def _scatter_parts(dtype, unique=False):
  def for_shape(shape):
    r = len(shape)

    def outer(depth):
      if unique:  # no more rows than distinct positions
        return st.integers(1, min(4, math.prod(shape[:depth]))).map(lambda k: (k,))
      return cst.shapes(min_dims=1, max_dims=2, max_side=4)
    return st.integers(1, r).flatmap(lambda d: st.tuples(st.just(d), outer(d),
                                                         _index_dtype())).flatmap(
        lambda t: st.tuples(_nd_indices(shape, t[0], t[1], t[2], unique=unique),
                            arrays(dtype, tuple(t[1]) + shape[t[0]:])))
  return cst.shapes(min_dims=1, max_dims=3, min_side=1, max_side=4).flatmap(
      lambda s: st.tuples(st.just(s), for_shape(s)))


def scatter_nd_example(dtype):
  return _scatter_parts(dtype).map(lambda t: Example(
      {"indices": t[1][0], "updates": t[1][1],
       "shape": _np_idx(t[0], D.name_of(t[1][0].dtype))}))


def tensor_scatter_example(unique=False, name="tensor", elements=None):
  def example(dtype):
    kw = elements or {}
    return _scatter_parts(dtype, unique).flatmap(lambda t: arrays(dtype, t[0], **kw).map(
        lambda x: Example({name: x, "indices": t[1][0], "updates": t[1][1]})))
  return example


# Padding, tiling, broadcasting ------------------------------------------------------


def _paddings(shape, limit=None, max_pad=3):
  def one(d):
    hi = max_pad if limit is None else min(max_pad, limit(d))
    return st.tuples(st.integers(0, max(hi, 0)), st.integers(0, max(hi, 0)))
  return st.tuples(*[one(d) for d in shape]).map(list)


def pad_example(dtype):
  def for_shape(shape):
    return st.tuples(arrays(dtype, shape), _paddings(shape), _index_dtype()).map(
        lambda t: Example({"input": t[0], "paddings": _np_idx(t[1], t[2]).reshape(-1, 2)}))
  return cst.shapes(max_dims=3, max_side=3).flatmap(for_shape)


def pad_v2_example(dtype):
  return pad_example(dtype).flatmap(lambda ex: arrays(dtype, ()).map(lambda v: Example(
      {**ex.inputs, "constant_values": v})))


def mirror_pad_example(dtype):
  def for_shape(shape):
    return st.sampled_from(["REFLECT", "SYMMETRIC"]).flatmap(lambda mode: st.tuples(
        arrays(dtype, shape),
        _paddings(shape, (lambda d: d - 1) if mode == "REFLECT" else (lambda d: d)),
        _index_dtype()).map(lambda t: Example(
            {"input": t[0], "paddings": _np_idx(t[1], t[2]).reshape(-1, 2)}, {"mode": mode})))
  return cst.shapes(max_dims=3, max_side=4, min_side=1 if D.is_float(dtype) else 0).flatmap(
      for_shape)


def mirror_pad_grad_example(dtype):
  def for_shape(shape):
    return st.sampled_from(["REFLECT", "SYMMETRIC"]).flatmap(lambda mode: _paddings(
        shape, (lambda d: d - 1) if mode == "REFLECT" else (lambda d: d)).flatmap(
            lambda pads: st.tuples(
                arrays(dtype, tuple(d + a + b for d, (a, b) in zip(shape, pads))),
                _index_dtype()).map(lambda t: Example(
                    {"input": t[0], "paddings": _np_idx(pads, t[1]).reshape(-1, 2)},
                    {"mode": mode}))))
  return cst.shapes(max_dims=3, max_side=4).flatmap(for_shape)


def tile_example(dtype):
  def for_shape(shape):
    return st.tuples(arrays(dtype, shape),
                     st.lists(st.integers(0, 3), min_size=len(shape), max_size=len(shape)),
                     _index_dtype()).map(lambda t: Example(
                         {"input": t[0], "multiples": _np_idx(t[1], t[2])}))
  return cst.shapes(max_dims=3, max_side=3).flatmap(for_shape)


def broadcast_to_example(dtype):
  return cst.broadcastable_shapes(2, max_side=3).flatmap(lambda s: st.tuples(
      arrays(dtype, s[0]), _index_dtype()).map(lambda t: Example(
          {"input": t[0], "shape": _np_idx(np.broadcast_shapes(*s), t[1])})))


def _shape_pair(dtype):
  """Two shape vectors: broadcastable mostly, incompatible sometimes (TF raises)."""
  return st.one_of(
      cst.broadcastable_shapes(2, max_side=4).map(lambda s: (list(s[0]), list(s[1]))),
      st.tuples(st.lists(st.integers(0, 4), max_size=4), st.lists(st.integers(0, 4),
                                                                  max_size=4))).map(
      lambda p: (_np_idx(p[0], dtype), _np_idx(p[1], dtype)))


def broadcast_args_example(dtype):
  return _shape_pair(dtype).map(lambda p: Example({"s0": p[0], "s1": p[1]}))


def fill_example(dtype):
  return st.tuples(cst.shapes(max_side=4), arrays(dtype, ()), _index_dtype()).map(
      lambda t: Example({"dims": _np_idx(t[0], t[2]), "value": t[1]}))


def empty_example(dtype):
  return cst.shapes(max_side=4).map(lambda s: Example({"shape": _np_idx(s)},
                                                      {"dtype": dtype, "init": True}))


def x_example(name="x"):
  def example(dtype):
    return arrays(dtype, cst.shapes()).map(lambda x: Example({name: x}))
  return example


def range_example(dtype):
  npd = D.np_dtype(dtype)
  if dtype in D.INT:
    val = st.integers(-20, 20)
    delta = st.integers(-6, 6)
  else:
    val = st.floats(-10, 10, width=16 if dtype in ("float16", "bfloat16") else 32)
    delta = st.one_of(st.floats(-3, 3, width=32), st.sampled_from([0.1, -0.25, 1.0]))

  def build(t):
    start, limit, d = t
    return Example({"start": np.asarray(start).astype(npd), "limit": np.asarray(limit).astype(npd),
                    "delta": np.asarray(d).astype(npd)})
  return st.tuples(val, val, delta).filter(
      lambda t: t[2] == 0 or abs((t[1] - t[0]) / t[2]) < 200).map(build)


def lin_space_example(dtype):
  return st.tuples(cst.finite_arrays(dtype, ()), cst.finite_arrays(dtype, ()),
                   st.integers(0, 12), _index_dtype()).map(lambda t: Example(
                       {"start": t[0], "stop": t[1], "num": _np_idx(t[2], t[3])}))


def _lin_space_tol(dtype, ex):
  base = default_tolerance(dtype)
  mag = max(abs(float(ex.inputs["start"])), abs(float(ex.inputs["stop"])), 1.0)
  return Tolerance(base.rtol, base.atol + 4 * float(D.finfo(dtype).eps) * mag)


def one_hot_example(dtype):
  def build(t):
    index, shape, depth, axis_pick, values = t
    npd = D.np_dtype(index)
    info = np.iinfo(npd)
    rng = np.random.default_rng(abs(hash((shape, depth))) % 2**32)
    lo = max(int(info.min), -2)
    idx = rng.integers(lo, depth + 2, size=shape).astype(npd)
    axis = -1 if axis_pick < 0 else min(axis_pick, len(shape))
    return Example({"indices": idx, "depth": _np_idx(depth), "on_value": values[0],
                    "off_value": values[1]}, {"axis": axis})
  return st.tuples(st.sampled_from(["uint8", "int8", "int32", "int64"]),
                   cst.shapes(max_dims=3, max_side=4), st.integers(0, 5),
                   st.integers(-1, 3), st.tuples(arrays(dtype, ()), arrays(dtype, ()))).map(build)


# Reversal, rolling, permutations ---------------------------------------------------


def reverse_v2_example(dtype):
  def for_shape(shape):
    return st.tuples(arrays(dtype, shape), cst.axes(len(shape)), _index_dtype()).map(
        lambda t: Example({"tensor": t[0], "axis": _np_idx(t[1], t[2])}))
  return cst.shapes().flatmap(for_shape)


def reverse_example(dtype):
  def for_shape(shape):
    return st.tuples(arrays(dtype, shape), st.lists(st.booleans(), min_size=len(shape),
                                                    max_size=len(shape))).map(
        lambda t: Example({"tensor": t[0], "dims": np.asarray(t[1], dtype=bool)}))
  return cst.shapes(max_dims=4).flatmap(for_shape)


def reverse_sequence_example(dtype):
  def for_shape(shape):
    r = len(shape)
    return st.tuples(st.permutations(range(r)), _index_dtype()).flatmap(lambda t: st.tuples(
        arrays(dtype, shape),
        arrays(t[1], (shape[t[0][1]],), min_value=0, max_value=shape[t[0][0]],
               edges=False)).map(lambda xs: Example(
                   {"input": xs[0], "seq_lengths": xs[1]},
                   {"seq_dim": t[0][0], "batch_dim": t[0][1]})))
  return cst.shapes(min_dims=2, max_dims=3, max_side=4).flatmap(for_shape)


def roll_example(dtype):
  def for_shape(shape):
    r = len(shape)
    return st.tuples(st.lists(st.integers(-r, r - 1), max_size=3), st.booleans(),
                     _index_dtype(), _index_dtype()).flatmap(lambda t: st.tuples(
                         arrays(dtype, shape),
                         arrays(t[2], (len(t[0]),) if (t[1] or len(t[0]) != 1) else (),
                                min_value=-7, max_value=7, edges=False)).map(
                             lambda xs: Example(
                                 {"input": xs[0], "shift": xs[1],
                                  "axis": _np_idx(t[0] if (t[1] or len(t[0]) != 1)
                                                  else t[0][0], t[3])})))
  return cst.shapes(min_dims=1, max_dims=3).flatmap(for_shape)


def invert_permutation_example(dtype):
  return st.integers(0, 8).flatmap(lambda n: st.permutations(range(n))).map(
      lambda p: Example({"x": _np_idx(p, dtype)}))


_BITCAST_TYPES = D.INT + D.FLOAT + D.COMPLEX


def bitcast_example(dtype):
  size_in = D.np_dtype(dtype).itemsize

  def for_out(out):
    size_out = D.np_dtype(out).itemsize
    shape = cst.shapes(max_dims=3, max_side=3)
    if size_in < size_out:
      shape = shape.map(lambda s: tuple(s) + (size_out // size_in,))
    return arrays(dtype, shape).map(lambda x: Example({"input": x}, {"type": out}))
  return st.sampled_from(_BITCAST_TYPES).flatmap(for_out)


# In-place ops ------------------------------------------------------------------------


def inplace_example(unique=False):
  def example(dtype):
    def for_shape(shape):
      n = shape[0]
      rows = st.lists(st.integers(-n, 2 * n - 1), max_size=4, unique_by=(
          (lambda v: v % n) if unique else None)) if n else st.just([])
      return rows.flatmap(lambda i: st.tuples(
          arrays(dtype, shape), arrays(dtype, (len(i),) + shape[1:])).map(
              lambda xv: Example({"x": xv[0], "i": _np_idx(i), "v": xv[1]})))
    return cst.shapes(min_dims=1, max_dims=3, max_side=4).flatmap(for_shape)
  return example


def parallel_concat_example(dtype):
  def for_shape(shape):
    return st.lists(arrays(dtype, (1,) + shape), min_size=1, max_size=4).map(
        lambda xs: Example({"values": xs}, {"shape": [len(xs)] + list(shape)}))
  return cst.shapes(max_dims=2, max_side=4).flatmap(for_shape)


def bound_example(dtype):
  def for_shape(t):
    b, n, m = t
    kw = dict(allow_nan=False)
    return st.tuples(arrays(dtype, (b, n), **kw), arrays(dtype, (b, m), **kw),
                     _index_dtype()).map(lambda xs: Example(
                         {"sorted_inputs": np.sort(xs[0], axis=-1), "values": xs[1]},
                         {"out_type": xs[2]}))
  return st.tuples(st.integers(0, 3), st.integers(0, 6), st.integers(0, 5)).flatmap(for_shape)


# Value-dependent shapes -------------------------------------------------------------


def where_example(dtype):
  return arrays(dtype, cst.shapes(min_dims=1)).map(lambda x: Example({"condition": x}))


def _few_values(dtype, shape):
  """Arrays with repeated values (a small pool, edge values included)."""
  pool = st.lists(cst.elements(dtype), min_size=1, max_size=4)
  return st.tuples(pool, shape).flatmap(lambda t: st.lists(
      st.sampled_from(t[0]), min_size=math.prod(t[1]), max_size=math.prod(t[1])).map(
          lambda xs: np.asarray(xs, dtype=D.np_dtype(dtype)).reshape(t[1])))


def unique_example(dtype):
  return st.tuples(_few_values(dtype, cst.shapes(min_dims=1, max_dims=1, max_side=8)),
                   _index_dtype()).map(lambda t: Example({"x": t[0]}, {"out_idx": t[1]}))


_SIGNED_ZERO_NOTE = (
    "float16/bfloat16 slices of 2+ elements have no -0.0: TF hashes their bits but "
    "compares their values, so whether slices differing only in a zero's sign are one "
    "depends on hash collisions in its table (the zero's position and the table's size); "
    "tf2jax compares them by value, as float32/float64 and one-element slices (bit-hashed, "
    "so there -0.0 and 0.0 differ) are compared.")


def unique_v2_example(dtype):
  def build(t):
    x, axis_pick, index, out_idx = t
    if axis_pick is None:
      x = x.reshape(-1)
      axis = np.zeros((0,), D.np_dtype(index))
    else:
      a = axis_pick % (2 * x.ndim) - x.ndim
      axis = _np_idx([a], index)
      if dtype in ("float16", "bfloat16") and x.size > x.shape[a]:
        x = np.where(x == 0, np.zeros_like(x), x)  # no -0.0: see _SIGNED_ZERO_NOTE
    return Example({"x": x, "axis": axis}, {"out_idx": out_idx})
  return st.tuples(_few_values(dtype, cst.shapes(min_dims=1, max_dims=3, max_side=3)),
                   st.one_of(st.none(), st.integers(0, 10)), _index_dtype(),
                   _index_dtype()).map(build)


def list_diff_example(dtype):
  return st.tuples(_few_values(dtype, st.tuples(st.integers(0, 8))),
                   _few_values(dtype, st.tuples(st.integers(0, 5))), _index_dtype()).map(
      lambda t: Example({"x": t[0], "y": t[1]}, {"out_idx": t[2]}))


def dynamic_stitch_example(unique=False):
  def example(dtype):
    def build(t):
      tail, parts, seed = t
      rng = np.random.default_rng(seed)
      total = sum(math.prod(p) for p in parts)
      if unique:
        pool = rng.permutation(total)
      elif D.is_float(dtype):  # gaps but no duplicates (see the spec's notes)
        pool = rng.choice(total + 2, size=total, replace=False)
      else:
        pool = rng.integers(0, total + 2, size=total)
      indices, pos = [], 0
      for p in parts:
        k = math.prod(p)
        indices.append(pool[pos:pos + k].astype(np.int32).reshape(p))
        pos += k
      return indices
    return st.tuples(cst.shapes(max_dims=2, max_side=3),
                     st.lists(cst.shapes(max_dims=2, max_side=3), min_size=1, max_size=3),
                     st.integers(0, 2**31)).flatmap(lambda t: st.tuples(*[
                         arrays(dtype, tuple(p) + tuple(t[0])) for p in t[1]]).map(
                             lambda data: Example({"indices": build(t), "data": list(data)})))
  return example


def dynamic_partition_example(dtype):
  def build(t):
    shape, k, n, seed = t
    rng = np.random.default_rng(seed)
    return rng.integers(0, n, size=shape[:k]).astype(np.int32), n
  return st.tuples(cst.shapes(max_dims=3, max_side=4), st.integers(0, 3), st.integers(1, 4),
                   st.integers(0, 2**31)).flatmap(lambda t: arrays(dtype, t[0]).map(
                       lambda x: (x, build((t[0], min(t[1], len(t[0])), t[2], t[3]))))).map(
      lambda t: Example({"data": t[0], "partitions": t[1][0]}, {"num_partitions": t[1][1]}))


def unravel_index_example(dtype):
  def build(t):
    dims, vals, vector = t
    total = math.prod(dims)
    idx = [v % (3 * total) - 2 * total for v in vals]  # negatives: TF does not check them
    return Example({"indices": _np_idx(idx if vector else idx[0], dtype),
                    "dims": _np_idx(dims, dtype)})
  return st.tuples(st.lists(st.integers(1, 4), min_size=1, max_size=3),
                   st.lists(st.integers(0, 10**6), min_size=1, max_size=5),
                   st.booleans()).map(build)


# Diagonals ---------------------------------------------------------------------------


def diag_example(dtype):
  return arrays(dtype, cst.shapes(min_dims=1, max_dims=2, max_side=3)).map(
      lambda x: Example({"diagonal": x}))


def diag_part_example(dtype):
  return cst.shapes(min_dims=1, max_dims=2, max_side=3).flatmap(
      lambda s: arrays(dtype, tuple(s) + tuple(s))).map(lambda x: Example({"input": x}))


def _matrix_shapes():
  return cst.shapes(min_dims=2, max_dims=4, max_side=4)


def band_part_example(dtype):
  def for_shape(shape):
    m, n = shape[-2:]
    return st.tuples(arrays(dtype, shape), st.integers(-1, m), st.integers(-1, n),
                     _index_dtype()).map(lambda t: Example(
                         {"input": t[0], "num_lower": _np_idx(t[1], t[3]),
                          "num_upper": _np_idx(t[2], t[3])}))
  return _matrix_shapes().flatmap(for_shape)


def _k_range(rows, cols):
  """(k0, k1) valid for a rows x cols matrix (TF: -rows < k < cols, or k == 0)."""
  lo, hi = -rows + 1 if rows else 0, cols - 1 if cols else 0
  return st.tuples(st.integers(min(lo, 0), max(hi, 0)), st.integers(min(lo, 0), max(hi, 0))
                   ).map(lambda k: (min(k), max(k)))


def _k_input(k0, k1, scalar):
  return _np_idx(k0 if (scalar and k0 == k1) else [k0, k1])


def _max_len(rows, cols, k0, k1):
  return max(min(rows + min(k1, 0), cols - max(k0, 0)), 0)


_ALIGN = ["RIGHT_LEFT", "LEFT_RIGHT", "LEFT_LEFT", "RIGHT_RIGHT"]


def diag_part_v_example(v3: bool):
  def example(dtype):
    def for_shape(shape):
      rows, cols = shape[-2:]
      return st.tuples(arrays(dtype, shape), _k_range(rows, cols), st.booleans(),
                       arrays(dtype, ()), st.sampled_from(_ALIGN)).map(lambda t: Example(
                           {"input": t[0], "k": _k_input(*t[1], t[2]), "padding_value": t[3]},
                           {"align": t[4]} if v3 else {}))
    return _matrix_shapes().flatmap(for_shape)
  return example


def matrix_diag_v_example(v3: bool):
  def example(dtype):
    def build(t):
      batch, k0, span, max_len, scalar, which, align = t
      k1 = k0 + span
      num = k1 - k0 + 1
      shape = tuple(batch) + ((max_len,) if num == 1 else (num, max_len))
      min_rows = max_len - min(k1, 0)
      min_cols = max_len + max(k0, 0)
      rows, cols = [(-1, -1), (min_rows, -1), (-1, min_cols), (min_rows + 1, min_cols),
                    (min_rows, min_cols + 2)][which]
      return shape, _k_input(k0, k1, scalar), rows, cols, align, (k0, k1, min_rows, min_cols)

    def in_bounds(p):
      """TF's gradient (MatrixDiagPartV3) refuses diagonals outside the matrix."""
      k0, k1, min_rows, min_cols = p[5]
      rows, cols = p[2], p[3]
      if rows == -1 and cols == -1:
        rows = cols = max(min_rows, min_cols)
      rows, cols = (min_rows if rows == -1 else rows), (min_cols if cols == -1 else cols)
      return all(-rows < k < cols or k == 0 for k in (k0, k1))
    params = st.tuples(cst.shapes(max_dims=2, max_side=2), st.integers(-3, 3),
                       st.integers(0, 2), st.integers(0, 3), st.booleans(),
                       st.integers(0, 4), st.sampled_from(_ALIGN)).map(build)
    if D.is_float(dtype):
      params = params.filter(in_bounds)
    return params.flatmap(lambda p: st.tuples(arrays(dtype, p[0]), arrays(dtype, ())).map(
        lambda t: Example({"diagonal": t[0], "k": p[1], "num_rows": _np_idx(p[2]),
                           "num_cols": _np_idx(p[3]), "padding_value": t[1]},
                          {"align": p[4]} if v3 else {})))
  return example


def set_diag_v_example(v3: bool):
  def example(dtype):
    def for_shape(shape):
      rows, cols = shape[-2:]

      def with_k(t):
        (k0, k1), scalar, align = t
        num = k1 - k0 + 1
        n = _max_len(rows, cols, k0, k1)
        dshape = shape[:-2] + ((n,) if num == 1 else (num, n))
        return st.tuples(arrays(dtype, shape), arrays(dtype, dshape)).map(lambda xd: Example(
            {"input": xd[0], "diagonal": xd[1], "k": _k_input(k0, k1, scalar)},
            {"align": align} if v3 else {}))
      return st.tuples(_k_range(rows, cols), st.booleans(), st.sampled_from(_ALIGN)).flatmap(
          with_k)
    return _matrix_shapes().flatmap(for_shape)
  return example


def matrix_diag_example(dtype):
  return arrays(dtype, cst.shapes(min_dims=1, max_dims=3, max_side=4)).map(
      lambda x: Example({"diagonal": x}))


def matrix_diag_part_example(dtype):
  return arrays(dtype, _matrix_shapes()).map(lambda x: Example({"input": x}))


def matrix_set_diag_example(dtype):
  def for_shape(shape):
    return st.tuples(arrays(dtype, shape), arrays(dtype, shape[:-2] + (min(shape[-2:]),))).map(
        lambda t: Example({"input": t[0], "diagonal": t[1]}))
  return _matrix_shapes().flatmap(for_shape)


# Selection ---------------------------------------------------------------------------


def select_example(dtype):
  def for_shape(shape):
    cond_shapes = [shape, ()] + ([shape[:1]] if shape else [])
    return st.tuples(st.sampled_from(cond_shapes), arrays(dtype, shape),
                     arrays(dtype, shape)).flatmap(lambda t: arrays("bool", t[0]).map(
                         lambda c: Example({"condition": c, "x": t[1], "y": t[2]})))
  return cst.shapes(max_dims=3).flatmap(for_shape)


def select_v2_example(dtype):
  return cst.broadcastable_shapes(3).flatmap(lambda s: st.tuples(
      arrays("bool", s[0]), arrays(dtype, s[1]), arrays(dtype, s[2]))).map(
      lambda t: Example({"condition": t[0], "t": t[1], "e": t[2]}))


# The specs ---------------------------------------------------------------------------

_TF_NO_GRAPH = ("TF cannot build this graph: Range's shape function rejects constant "
                "float16 inputs (\"Unsupported dtype19\") although the kernel exists")
_NO_TF_GRADIENT = "TF registers no gradient for it, so grad is not compared"
_VALUE_SHAPED_NOTE = ("the output's size depends on input values: checked eagerly and with "
                      "every input constant; under jit the lowering raises a ConversionError "
                      "naming the op")
_NOT_DIFFERENTIABLE = ("TF marks it not differentiable (zero gradients): the lowering stops "
                       "gradients too, and grad checks that they are zero")
_MOVE = dict(tolerance=_EXACT)
_V2_GRAD = ("grad is not compared: the V2 op aligns diagonals LEFT_LEFT, but TF's gradient "
            "calls the V3 op with its default RIGHT_LEFT alignment, so TF's gradient is wrong "
            "whenever diagonals of different lengths are involved; tf2jax differentiates the "
            "forward op (the V3 specs compare grads).")
_GATHER_NOTE = ("params pass through a Reshape first so that TF's gradient is dense (the "
                "harness compares tape.gradient with to_numpy, which cannot read an "
                "IndexedSlices).")
_TF_UNSUPPORTED = ("TF's CPU kernel is registered for it but refuses it when run "
                   "(\"Unsupported data type\")")
_BOUND_NOTE = ("No NaN: TF's std::lower_bound/upper_bound and a sort comparator order them "
               "differently. sorted_inputs is static so that vmap (which rolls every "
               "argument) keeps it sorted.")
_NOT_LOWERED = "not lowered: the attr rule refuses it, so conversion raises UnsupportedOpsError"


def _movement(op, example, **kw):
  """A spec for an op that only moves data (exact comparison)."""
  return OpSpec(op, example, **{**_MOVE, **kw})


def specs() -> list[OpSpec]:
  scatter_notes = ("Indices are valid (TF's CPU kernel raises on others); duplicates are "
                   "drawn and combine in any order (tolerance of a few eps). Out-of-range "
                   "indices under jit are dropped (TF's GPU behaviour).")
  return [
      # Shapes
      OpSpec("Shape", shape_example, **_ANY_T, transforms=NO_GRAD, **_MOVE),
      OpSpec("ShapeN", shape_n_example, **_ANY_T, transforms=NO_GRAD, **_MOVE),
      OpSpec("Size", shape_example, **_ANY_T, transforms=NO_GRAD, **_MOVE),
      OpSpec("Rank", rank_example, **_ANY_T, transforms=NO_GRAD, **_MOVE),
      _movement("Reshape", reshape_example, **_ANY_T, static_inputs=("shape",)),
      _movement("Squeeze", squeeze_example, **_ANY_T),
      _movement("ExpandDims", expand_dims_example, **_ANY_T, static_inputs=("axis",)),
      _movement("Transpose", transpose_example(), static_inputs=("perm",)),
      _movement("ConjugateTranspose", transpose_example(min_dims=1), static_inputs=("perm",),
                notes="Rank >= 1: TF's MKL kernel aborts the process on a rank-0 input."),
      _movement("ConcatV2", concat_v2_example, static_inputs=("axis",)),
      _movement("Concat", concat_example, static_inputs=("concat_dim",)),
      OpSpec("ConcatOffset", concat_offset_example, dtype_attr="shape_type",
             static_inputs=("concat_dim", "shape"), transforms=ALL_STATIC,
             notes="Shapes are static: the offsets are shape arithmetic."),
      _movement("Pack", pack_example),
      _movement("Unpack", unpack_example),
      _movement("Split", split_example, static_inputs=("axis",)),
      _movement("SplitV", split_v_example, static_inputs=("size_splits", "axis"),
                notes="size_splits is int32 or int64: TF's CPU kernel aborts the process on "
                      "int8 (\"Check failed: dtype() == expected_dtype\") although Tlen "
                      "allows it; the lowering accepts int8."),
      # Slicing
      _movement("Slice", slice_example, static_inputs=("begin", "size")),
      _movement("StridedSlice", strided_slice_example,
                static_inputs=("begin", "end", "strides"),
                notes="Random begin/end/strides with every mask combination; TF's refusals "
                      "(out-of-range shrink index, several ellipses, zero strides, negative "
                      "shrink strides) must be refusals here too."),
      _movement("StridedSliceGrad", strided_slice_grad_example,
                static_inputs=("shape", "begin", "end", "strides")),
      _movement("TensorStridedSliceUpdate", tensor_strided_slice_update_example,
                static_inputs=("begin", "end", "strides"),
                grad_tolerance=_grad_sum_tol(_size("input")),
                skip_dtypes={d: _TF_UNSUPPORTED for d in ("float8_e5m2", "float8_e4m3fn")}),
      # Gathers and scatters
      _movement("GatherV2", gather_v2_example, dtype_attr="Tparams", static_inputs=("axis",),
                grad_tolerance=_grad_sum_tol(_size("indices")), grad_inputs=("params",),
                build=_dense_grad_gather("GatherV2"), contains=("GatherV2",),
                notes=_GATHER_NOTE),
      _movement("Gather", gather_example, dtype_attr="Tparams",
                grad_tolerance=_grad_sum_tol(_size("indices")),
                grad_inputs=("params",), build=_dense_grad_gather("Gather"),
                contains=("Gather",), notes=_GATHER_NOTE),
      _movement("GatherNd", gather_nd_example, dtype_attr="Tparams",
                grad_tolerance=_grad_sum_tol(_size("indices")),
                build=_dense_grad_gather("GatherNd"), contains=("GatherNd",),
                grad_inputs=("params",),
                notes="bad_indices_policy IGNORE draws out-of-range indices (zeros). "
                      + _GATHER_NOTE),
      OpSpec("ScatterNd", scatter_nd_example, static_inputs=("shape",), tolerance=_sum_tol,
             grad_tolerance=_sum_tol, grad_inputs=("updates",), notes=scatter_notes),
      OpSpec("ScatterNdNonAliasingAdd", tensor_scatter_example(name="input"),
             tolerance=_sum_tol, grad_tolerance=_sum_tol, notes=scatter_notes),
      OpSpec("TensorScatterAdd", tensor_scatter_example(), tolerance=_sum_tol,
             grad_tolerance=_sum_tol, notes=scatter_notes),
      OpSpec("TensorScatterSub", tensor_scatter_example(), tolerance=_sum_tol,
             grad_tolerance=_sum_tol, notes=scatter_notes),
      OpSpec("TensorScatterMax", tensor_scatter_example(), tolerance=_sum_tol,
             grad_tolerance=_sum_tol, notes=scatter_notes + " NaN: TF keeps the current "
             "value when an update is NaN and keeps a NaN value; so does the lowering."),
      OpSpec("TensorScatterMin", tensor_scatter_example(), tolerance=_sum_tol,
             grad_tolerance=_sum_tol, notes=scatter_notes + " NaN as for TensorScatterMax."),
      _movement("TensorScatterUpdate", tensor_scatter_example(unique=True),
                notes="Indices are distinct: with duplicates TF leaves the winner unspecified."),
      # Padding, tiling, broadcasting
      _movement("Pad", pad_example, static_inputs=("paddings",)),
      _movement("PadV2", pad_v2_example, static_inputs=("paddings",)),
      _movement("MirrorPad", mirror_pad_example, static_inputs=("paddings",),
                grad_tolerance=_grad_sum_tol(lambda ex: 3 ** np.ndim(ex.inputs["input"])),
                notes="Float dtypes (the ones grad runs on) have no 0-sized dims: TF's "
                      "gradient (MirrorPadGrad) refuses them."),
      OpSpec("MirrorPadGrad", mirror_pad_grad_example, static_inputs=("paddings",),
             tolerance=_sum_tol, grad_tolerance=_sum_tol),
      _movement("Tile", tile_example, dtypes=tuple(d for d in D.BOOL + D.NUMBER
                                                  if d != "uint16"),
                skip_dtypes={**_ANY_KERNEL_T["skip_dtypes"],
                             "uint16": "TF's Tile kernel has no uint16 case (\"TileOp : The "
                                       "input data type is not supported\")"},
                static_inputs=("multiples",),
                grad_tolerance=_grad_sum_tol(_prod("multiples"))),
      _movement("BroadcastTo", broadcast_to_example, static_inputs=("shape",),
                grad_tolerance=_grad_sum_tol(_prod("shape"))),
      OpSpec("BroadcastArgs", broadcast_args_example, transforms=("jit", "static", "x64"),
             notes="Shape vectors are function arguments (the traced path computes them "
                   "with jnp); vmap is left out: rolled rows stop being shapes."),
      OpSpec("BroadcastGradientArgs", broadcast_args_example, static_inputs=("s0", "s1"),
             transforms=ALL_STATIC, notes="Both shapes must be static: the outputs' sizes "
                                          "depend on them."),
      # Creation
      _movement("Fill", fill_example, static_inputs=("dims",),
                grad_tolerance=_grad_sum_tol(_prod("dims"))),
      OpSpec("Empty", empty_example, dtype_attr="dtype", static_inputs=("shape",),
             transforms=ALL_STATIC, notes="init=True: TF leaves memory uninitialized "
                                          "otherwise; tf2jax always gives zeros."),
      _movement("ZerosLike", x_example()),
      _movement("OnesLike", x_example()),
      OpSpec("Range", range_example, dtype_attr="Tidx",
             static_inputs=("start", "limit", "delta"), transforms=ALL_STATIC,
             skip_dtypes={"float16": _TF_NO_GRAPH},
             notes="Computes start + i * delta in the dtype like TF. " + _VALUE_SHAPED_NOTE
                   + " (the bounds are constants here)."),
      OpSpec("LinSpace", lin_space_example, static_inputs=("num",), tolerance=_lin_space_tol,
             notes=_NOT_DIFFERENTIABLE),
      OpSpec("OneHot", one_hot_example, static_inputs=("depth",), tolerance=_EXACT,
             notes="Indices outside [0, depth) (negative, or past the end) give off_value. "
                   + _NOT_DIFFERENTIABLE),
      # Reversal, rolling, permutations
      _movement("ReverseV2", reverse_v2_example, static_inputs=("axis",)),
      _movement("Reverse", reverse_example, static_inputs=("dims",),
                notes="TF refuses an input whose first dimension is 0; so does the lowering."),
      _movement("ReverseSequence", reverse_sequence_example),
      _movement("Roll", roll_example, static_inputs=("axis",)),
      OpSpec("InvertPermutation", invert_permutation_example, transforms=NO_GRAD),
      OpSpec("Bitcast", bitcast_example, transforms=("jit", "static", "x64", "vmap"),
             tolerance=_EXACT, notes=_NO_TF_GRADIENT),
      # In-place ops
      _movement("DeepCopy", x_example(), **_ANY_KERNEL_T, transforms=NO_GRAD,
                notes=_NO_TF_GRADIENT),
      OpSpec("InplaceAdd", inplace_example(), dtypes=D.NUMBER, transforms=NO_GRAD,
             tolerance=_sum_tol, refused_dtypes=_refused_inplace(), skip_dtypes=_NO_PROTO,
             notes="Row indices wrap like TF's kernel ((i % rows + rows) % rows). "
                   + _NO_TF_GRADIENT),
      OpSpec("InplaceSub", inplace_example(), dtypes=D.NUMBER, transforms=NO_GRAD,
             tolerance=_sum_tol, refused_dtypes=_refused_inplace(), skip_dtypes=_NO_PROTO,
             notes="Row indices wrap like TF's kernel. " + _NO_TF_GRADIENT),
      _movement("InplaceUpdate", inplace_example(unique=True), **_ANY_KERNEL_T,
                transforms=NO_GRAD,
                notes="Rows are distinct after wrapping. " + _NO_TF_GRADIENT),
      _movement("ParallelConcat", parallel_concat_example, transforms=NO_GRAD,
                notes=_NO_TF_GRADIENT),
      # Sorted search
      OpSpec("LowerBound", bound_example, static_inputs=("sorted_inputs",),
             transforms=NO_GRAD, notes=_BOUND_NOTE),
      OpSpec("UpperBound", bound_example, static_inputs=("sorted_inputs",),
             transforms=NO_GRAD, notes=_BOUND_NOTE),
      # Value-dependent shapes
      OpSpec("Where", where_example, transforms=VALUE_SHAPED, notes=_VALUE_SHAPED_NOTE,
             skip_dtypes={"float16": "TF registers a CPU kernel but it raises "
                                     "Unimplemented ('No WhereOp available for float16/half "
                                     "type on CPU'): no TF reference"}),
      OpSpec("Unique", unique_example, transforms=VALUE_SHAPED, notes=_VALUE_SHAPED_NOTE),
      OpSpec("UniqueV2", unique_v2_example, static_inputs=("axis",), transforms=VALUE_SHAPED,
             notes=_VALUE_SHAPED_NOTE + ". " + _SIGNED_ZERO_NOTE),
      OpSpec("UniqueWithCounts", unique_example, transforms=VALUE_SHAPED,
             notes=_VALUE_SHAPED_NOTE),
      OpSpec("UniqueWithCountsV2", unique_v2_example, static_inputs=("axis",),
             transforms=VALUE_SHAPED, notes=_VALUE_SHAPED_NOTE + ". " + _SIGNED_ZERO_NOTE),
      OpSpec("ListDiff", list_diff_example, transforms=VALUE_SHAPED, notes=_VALUE_SHAPED_NOTE),
      _movement("DynamicStitch", dynamic_stitch_example(), static_inputs=("indices",),
                notes="Static indices (their maximum is the output size); duplicates: the "
                      "last one wins, gaps are zeros, as on TF's CPU. Duplicates are drawn "
                      "for non-float dtypes only: TF's gradient gives every entry of data "
                      "the gradient at its index, overwritten or not, where tf2jax gives "
                      "overwritten entries zero (the derivative of the forward op)."),
      _movement("ParallelDynamicStitch", dynamic_stitch_example(unique=True),
                static_inputs=("indices",), notes="Distinct indices without gaps."),
      _movement("DynamicPartition", dynamic_partition_example, static_inputs=("partitions",),
                notes="Static partitions (they decide the output sizes)."),
      OpSpec("UnravelIndex", unravel_index_example, dtype_attr="Tidx",
             static_inputs=("dims",), transforms=NO_GRAD,
             notes="Negative indices are not checked by TF: C++ truncating division is "
                   "reproduced."),
      # Diagonals and bands
      _movement("Diag", diag_example),
      _movement("DiagPart", diag_part_example),
      _movement("MatrixBandPart", band_part_example),
      _movement("MatrixDiag", matrix_diag_example),
      _movement("MatrixDiagV2", matrix_diag_v_example(False),
                static_inputs=("k", "num_rows", "num_cols"), transforms=NO_GRAD,
                notes=_V2_GRAD),
      _movement("MatrixDiagV3", matrix_diag_v_example(True),
                static_inputs=("k", "num_rows", "num_cols")),
      _movement("MatrixDiagPart", matrix_diag_part_example),
      _movement("MatrixDiagPartV2", diag_part_v_example(False), static_inputs=("k",),
                transforms=NO_GRAD, notes=_V2_GRAD),
      _movement("MatrixDiagPartV3", diag_part_v_example(True), static_inputs=("k",)),
      _movement("MatrixSetDiag", matrix_set_diag_example),
      _movement("MatrixSetDiagV2", set_diag_v_example(False), static_inputs=("k",),
                transforms=NO_GRAD, notes=_V2_GRAD),
      _movement("MatrixSetDiagV3", set_diag_v_example(True), static_inputs=("k",)),
      # Selection
      _movement("Select", select_example, grad_tolerance=_grad_sum_tol(_broadcast_size)),
      _movement("SelectV2", select_v2_example, grad_tolerance=_grad_sum_tol(_broadcast_size)),
  ]


def _refused_inplace():
  return {d: _NOT_LOWERED for d in D.BOOL + D.FLOAT8 + D.FLOAT4 + D.NARROW_INT
          if d not in _NO_TENSOR_PROTO}
