"""Conformance specs of tf2jax-xla's XLA ops: XlaDot(V2), XlaEinsum, XlaPad,
XlaReducePrecision, XlaBroadcastHelper, XlaOptimizationBarrier and the sharding
annotations.

TF runs these ops only through XLA: the reference is `tf.function(jit_compile=True)` and
the dtypes are those of TF's XLA_CPU_JIT kernels. Dimension numbers and shardings are
drawn as lists and serialized into xla protos by the builds.
A test dependency: only the plugin's `tf2jax_conformance_specs` hook imports this module.
"""

from __future__ import annotations

import math

import numpy as np
from hypothesis import strategies as st

from tf2jax_conformance import dtypes as D
from tf2jax_conformance import strategies as cst
from tf2jax_conformance.spec import Example, OpSpec, Tolerance, default_tolerance

_NO_GRAD = "No grad: TF registers no gradient for it. "
_FNUZ_SKIP = {d: "TF's XLA bridge rejects it (MLIR: 'operand must be tensor of tf.dtype "
                 "values')" for d in D.NO_GRAPH_CONSTANT}
_XLA = dict(kernel_device="XLA_CPU_JIT", tf_jit_compile=True)


def _pb():
  from tensorflow.compiler.xla import xla_data_pb2
  return xla_data_pb2


def _gen():
  from tensorflow.compiler.tf2xla.ops import gen_xla_ops
  return gen_xla_ops


def _values(dtype, shape):
  """Moderate finite values for floats (sums of products in any order stay within the
  tolerance), every value (edges included) for integers, which wrap alike in any order."""
  if D.is_inexact(dtype):
    return cst.finite_arrays(dtype, shape, bound=4.0)
  return cst.arrays(dtype, shape)


def _sum_tolerance(length_of):
  """A few ulps, plus the rounding of a sum of `length_of(example)` products of values
  in [-4, 4] (TF's XLA and JAX's XLA may add in different orders or precisions)."""
  def tolerance(dtype, example):
    base = default_tolerance(dtype)
    if not D.is_inexact(dtype):
      return base
    part = "float32" if dtype == "complex64" else "float64" if dtype == "complex128" else dtype
    eps = float(D.finfo(part).eps)
    n = max(length_of(example), 1)
    return Tolerance(rtol=max(base.rtol, 4 * eps), atol=base.atol + 2 * 16 * n * eps)
  return tolerance


# XlaDot / XlaDotV2 -------------------------------------------------------------------


def _dot_layout():
  """(lhs shape, rhs shape, lhs contracting, rhs contracting, lhs batch, rhs batch)."""
  sizes = st.integers(0, 3)

  def build(counts):
    nb, nc, nl, nr = counts
    return st.tuples(st.lists(sizes, min_size=nb, max_size=nb),
                     st.lists(sizes, min_size=nc, max_size=nc),
                     st.lists(sizes, min_size=nl, max_size=nl),
                     st.lists(sizes, min_size=nr, max_size=nr),
                     st.permutations(range(nb + nc + nl)),
                     st.permutations(range(nb + nc + nr))).map(_place)
  return st.tuples(st.integers(0, 2), st.integers(0, 2), st.integers(0, 2),
                   st.integers(0, 2)).filter(
      lambda c: c[0] + c[1] + max(c[2], c[3]) <= 4).flatmap(build)


def _place(t):
  batch, contract, lfree, rfree, lperm, rperm = t

  def layout(free, perm):
    logical = list(batch) + list(contract) + list(free)  # logical dim i goes to perm[i]
    shape = [0] * len(logical)
    for i, n in enumerate(logical):
      shape[perm[i]] = n
    nb, nc = len(batch), len(contract)
    return (tuple(shape), [perm[nb + i] for i in range(nc)], [perm[i] for i in range(nb)])
  ls, lc, lb = layout(lfree, lperm)
  rs, rc, rb = layout(rfree, rperm)
  return ls, rs, lc, rc, lb, rb


def _precision_config():
  return st.one_of(st.just(None), st.lists(st.sampled_from([0, 1, 2]), min_size=2,
                                           max_size=2))


def _dot_example(dtype, preferred=None):
  def for_layout(lay):
    ls, rs, lc, rc, lb, rb = lay
    return st.tuples(_values(dtype, ls), _values(dtype, rs), _precision_config(),
                     preferred(dtype) if preferred else st.just(None)).map(
        lambda t: Example({"lhs": t[0], "rhs": t[1]},
                          extra={"lc": lc, "rc": rc, "lb": lb, "rb": rb, "precision": t[2],
                                 "preferred": t[3]}))
  return _dot_layout().flatmap(for_layout)


def _dot_protos(example):
  pb = _pb()
  e = example.extra
  dims = pb.DotDimensionNumbers(lhs_contracting_dimensions=e["lc"],
                                rhs_contracting_dimensions=e["rc"],
                                lhs_batch_dimensions=e["lb"], rhs_batch_dimensions=e["rb"])
  precision = pb.PrecisionConfig(operand_precision=e["precision"] or [])
  return dims.SerializeToString(), precision.SerializeToString()


def _dot_body(example):
  dims, precision = _dot_protos(example)
  return lambda lhs, rhs: _gen().xla_dot(lhs, rhs, dims, precision)


def _dot_v2_body(example):
  import tensorflow as tf
  dims, precision = _dot_protos(example)
  preferred = tf.as_dtype(example.extra["preferred"])
  return lambda lhs, rhs: _gen().xla_dot_v2(lhs, rhs, dims, precision, preferred)


def _dot_length(example):
  return math.prod(example.inputs["lhs"].shape[d] for d in example.extra["lc"])


def _preferred(dtype):
  """The result dtype of XlaDotV2: the operands' or a wider one of the same kind."""
  # Not 32 -> 64 bits: without JAX's x64 mode the converted function cannot make 64-bit
  # results from 32-bit operands (the x64 transform covers that mode).
  wider = {"int8": ["int16", "int32"], "int16": ["int32"], "uint8": ["uint16", "uint32"],
           "uint16": ["uint32"], "float16": ["float32"], "bfloat16": ["float32"]}
  return st.sampled_from([dtype] + wider.get(dtype, []))


# XlaEinsum ---------------------------------------------------------------------------


def _einsum_example(dtype):
  def build(t):
    ls, rs, lc, rc, lb, rb = t[0]
    letters = iter("abcdefghij")
    lhs_sub = [None] * len(ls)
    rhs_sub = [None] * len(rs)
    out = []
    for i, j in zip(lb, rb):
      lhs_sub[i] = rhs_sub[j] = c = next(letters)
      out.append(c)
    for i, j in zip(lc, rc):
      lhs_sub[i] = rhs_sub[j] = next(letters)
    for k in range(len(ls)):
      if lhs_sub[k] is None:
        lhs_sub[k] = c = next(letters)
        out.append(c)
    for k in range(len(rs)):
      if rhs_sub[k] is None:
        rhs_sub[k] = c = next(letters)
        out.append(c)
    perm = t[1]
    out = [out[p] for p in perm if p < len(out)]
    return "".join(lhs_sub) + "," + "".join(rhs_sub) + "->" + "".join(out), ls, rs
  return st.tuples(_dot_layout(), st.permutations(range(8))).map(build).flatmap(
      lambda e: st.tuples(_values(dtype, e[1]), _values(dtype, e[2])).map(
          lambda ab: Example({"a": ab[0], "b": ab[1]}, extra={"equation": e[0]})))


def _einsum_body(example):
  from tensorflow.compiler.tf2xla.python import xla  # noqa: F401  (registers the grad)
  eq = example.extra["equation"]
  return lambda a, b: _gen().xla_einsum(a, b, eq)


def _einsum_length(example):
  eq = example.extra["equation"]
  ins, out = eq.split("->")
  a, b = ins.split(",")
  shape_a = example.inputs["a"].shape
  return math.prod(shape_a[a.index(c)] for c in a if c in b and c not in out)


# XlaPad ------------------------------------------------------------------------------


def _pad_example(dtype):
  def for_input(t):
    x, value, index_dtype = t
    rank = x.ndim
    pads = st.lists(st.tuples(st.integers(-3, 3), st.integers(-3, 3), st.integers(0, 2)),
                    min_size=rank, max_size=rank).filter(
        lambda ps: all(lo + hi + n + max(n - 1, 0) * it >= 0
                       for n, (lo, hi, it) in zip(x.shape, ps)))
    npd = D.np_dtype(index_dtype)
    return pads.map(lambda ps: Example({
        "input": x, "padding_value": value,
        "padding_low": np.asarray([p[0] for p in ps], npd).reshape(rank),
        "padding_high": np.asarray([p[1] for p in ps], npd).reshape(rank),
        "padding_interior": np.asarray([p[2] for p in ps], npd).reshape(rank)}))
  return st.tuples(cst.arrays(dtype, cst.shapes(max_dims=3, max_side=4)),
                   cst.arrays(dtype, ()), cst.index_dtypes()).flatmap(for_input)


def _pad_body(example):
  import tensorflow as tf
  low, high, interior = (tf.constant(example.inputs[k]) for k in
                         ("padding_low", "padding_high", "padding_interior"))
  return lambda x, v: _gen().xla_pad(x, v, low, high, interior)


# XlaReducePrecision ------------------------------------------------------------------


def _reduce_precision_example(dtype):
  return st.tuples(cst.arrays(dtype, cst.shapes(max_dims=2, max_side=6)),
                   st.integers(1, 11), st.integers(0, 30)).map(
      lambda t: Example({"operand": t[0]}, {"exponent_bits": t[1], "mantissa_bits": t[2]}))


def _reduce_precision_body(example):
  e, m = example.attrs["exponent_bits"], example.attrs["mantissa_bits"]
  return lambda x: _gen().xla_reduce_precision(x, exponent_bits=e, mantissa_bits=m)


# XlaBroadcastHelper -------------------------------------------------------------------


def _broadcast_helper_example(dtype):
  def for_large(t):
    large_shape, index_dtype, lhs_is_small, empty = t
    rank = len(large_shape)
    if empty:  # broadcast_dims empty: equal ranks or a scalar
      small = st.sampled_from([(), large_shape])
      dims = st.just([])
    else:
      dims = st.lists(st.integers(0, max(rank - 1, 0)), max_size=rank, unique=True).map(
          sorted) if rank else st.just([])
      small = None

    def finish(dims_small):
      d, s = dims_small
      if s is None:
        s = st.tuples(*[st.integers(0, 3) for _ in d])
      else:
        s = st.just(s)
      return st.tuples(s.flatmap(lambda shp: cst.arrays(dtype, shp)),
                       cst.arrays(dtype, large_shape)).map(
          lambda xs: Example(
              {"lhs": xs[0] if lhs_is_small else xs[1],
               "rhs": xs[1] if lhs_is_small else xs[0],
               "broadcast_dims": np.asarray(d, D.np_dtype(index_dtype)).reshape(len(d))}))
    return st.tuples(dims, st.just(small)).flatmap(finish)
  return st.tuples(cst.shapes(max_dims=4, max_side=3), cst.index_dtypes(), st.booleans(),
                   st.booleans()).flatmap(for_large)


def _broadcast_helper_body(example):
  import tensorflow as tf
  dims = tf.constant(example.inputs["broadcast_dims"])
  return lambda lhs, rhs: list(_gen().xla_broadcast_helper(lhs, rhs, dims))


# XlaOptimizationBarrier ---------------------------------------------------------------


def _barrier_example(dtype):
  return st.lists(cst.arrays(dtype, cst.shapes(max_dims=3)), min_size=1, max_size=3).map(
      lambda xs: Example({"input": xs}))


def _barrier_body(example):
  return lambda *xs: list(_gen().xla_optimization_barrier(list(xs)))


# Sharding annotations ----------------------------------------------------------------

_SHARDINGS = ("replicated", "maximal", "manual", "tiled1")


def _sharding_proto(kind, rank):
  pb = _pb()
  if kind == "replicated":
    p = pb.OpSharding(type=pb.OpSharding.REPLICATED)
  elif kind == "maximal":
    p = pb.OpSharding(type=pb.OpSharding.MAXIMAL, tile_assignment_devices=[0])
  elif kind == "manual":
    p = pb.OpSharding(type=pb.OpSharding.MANUAL)
  else:  # a 1-way tiling: one tile per dim
    p = pb.OpSharding(type=pb.OpSharding.OTHER, tile_assignment_dimensions=[1] * max(rank, 1),
                      tile_assignment_devices=[0])
  return p.SerializeToString()


def _sharding_example(dtype):
  return st.tuples(cst.arrays(dtype, cst.shapes(min_dims=1, max_dims=3)),
                   st.sampled_from(_SHARDINGS)).map(
      lambda t: Example({"input": t[0]}, extra={"sharding": t[1]}))


def _sharding_body(example):
  from tensorflow.compiler.tf2xla.python import xla  # noqa: F401  (registers the grad)
  sh = _sharding_proto(example.extra["sharding"], example.inputs["input"].ndim)
  return lambda x: _gen().xla_sharding(x, sharding=sh)


def _full_to_shard_body(example):
  from tensorflow.compiler.tf2xla.python import xla  # noqa: F401
  sh = _sharding_proto(example.extra["sharding"], example.inputs["input"].ndim)
  return lambda x: _gen().xla_spmd_full_to_shard_shape(x, manual_sharding=sh)


def _shard_to_full_body(example):
  from tensorflow.compiler.tf2xla.python import xla  # noqa: F401
  sh = _sharding_proto(example.extra["sharding"], example.inputs["input"].ndim)
  full = list(example.inputs["input"].shape)
  return lambda x: _gen().xla_spmd_shard_to_full_shape(x, manual_sharding=sh,
                                                         full_shape=full)


_SHARDING_NOTES = (
    "One device, as TF's XLA_CPU_JIT: shardings drawn among replicated, maximal, manual "
    "and 1-way tiled, whose shard is the whole value (the identity). Shardings that split "
    "the value need XLA's SPMD partitioner over several devices: TF's XLA_CPU_JIT fails "
    "to compile them and tf2jax refuses them at conversion. grad not checked: TF "
    "registers one, but its gradient is again an Xla sharding op, which has no kernel "
    "outside XLA, and the harness computes TF's gradient eagerly (outside "
    "jit_compile).")


# XlaSort / XlaKeyValueSort ------------------------------------------------------------


def _sort_shapes(min_dims=0):
  return cst.shapes(min_dims=min_dims, max_dims=3, max_side=8)


def _sort_example(dtype):
  # No scalars: TF refuses them (as tf2jax does), and an example TF refuses compares little.
  return cst.arrays(dtype, _sort_shapes(1)).map(lambda x: Example({"input": x}))


def _sort_body(example):
  return lambda x: _gen().xla_sort(x)


_VALUE_DTYPES = ("float32", "int32", "bool", "complex64", "bfloat16", "int8")


def _key_value_example(dtype):
  def for_keys(t):
    keys, vdtype = t
    return cst.arrays(vdtype, keys.shape).map(
        lambda v: Example({"keys": keys, "values": v}))
  return st.tuples(cst.arrays(dtype, _sort_shapes()),
                   st.sampled_from((dtype,) + _VALUE_DTYPES)).flatmap(for_keys)


def _key_value_body(example):
  return lambda k, v: list(_gen().xla_key_value_sort(k, v))


_KEY_DTYPES = ("float32", "int32", "uint8", "bfloat16")


def _variadic_sort_example(dtype):
  keyable = dtype in D.REAL

  def for_shape(shape):
    others = st.lists(st.sampled_from(_KEY_DTYPES), min_size=0 if keyable else 1,
                      max_size=2)

    def for_dtypes(ds):
      dts = [dtype] + ds
      key_choices = [i for i, d in enumerate(dts) if d in D.REAL]
      return st.tuples(
          st.tuples(*[cst.arrays(d, shape, allow_nan=False) for d in dts]),
          st.sampled_from(key_choices), st.sampled_from(["Less", "Greater"]),
          st.booleans(), st.booleans(), st.integers(0, len(shape) - 1)).map(
          lambda t: Example({"inputs": list(t[0]),
                             "dimension": np.asarray(t[5], np.int32)},
                            extra={"key": t[1], "op": t[2], "swap": t[3], "stable": t[4]}))
    return others.flatmap(for_dtypes)
  return _sort_shapes(1).flatmap(for_shape)


def _variadic_sort_body(example):
  import tensorflow as tf
  xs = example.inputs["inputs"]
  e = example.extra
  signature = []
  for x in xs:
    signature += [tf.TensorSpec([], tf.as_dtype(x.dtype))] * 2
  compare = tf.math.less if e["op"] == "Less" else tf.math.greater

  def comparator(*args):
    lhs, rhs = args[2 * e["key"]], args[2 * e["key"] + 1]
    return compare(rhs, lhs) if e["swap"] else compare(lhs, rhs)
  cf = tf.function(comparator, input_signature=signature,
                   autograph=False).get_concrete_function()
  dimension = tf.constant(example.inputs["dimension"])
  return lambda *ts: list(_gen().xla_variadic_sort(list(ts), dimension, cf, e["stable"]))


_SORT_SKIP = dict(_FNUZ_SKIP)
_SORT_SKIP.update({d: "TF's XLA_CPU_JIT refuses to sort it (UnimplementedError: XLA "
                      "compares no complex numbers)" for d in D.COMPLEX})
_SORT_SKIP.update({d: "TF's XLA_CPU_JIT returns wrong values for it (sorting int4 "
                      "[3, 1, 2] gives [0, 3, 0])" for d in ("int4", "uint4")})
_VSORT_SKIP = dict(_FNUZ_SKIP)
_VSORT_SKIP.update({d: "TF's XLA_CPU_JIT returns wrong values for it (sorting int4 "
                       "[3, 1, 2] gives [0, 3, 0])" for d in ("int4", "uint4")})
_SORT_NOTES = (
    "Ascending along the last dim, which has at most 8 elements, edge values included "
    "(XLA's total order: -0.0 before 0.0, NaN after +inf). Ties: the op promises no "
    "order; XLA's CPU sort keeps the input order of ties on such short rows, as tf2jax's "
    "stable sort does.")


# XlaConv / XlaConvV2 -----------------------------------------------------------------


def _conv_config(v2):
  def build(t):
    n, b, groups, cg, og, bg = t
    if groups > 1 and bg > 1:
      bg = 1
    ints = lambda lo, hi: st.lists(st.integers(lo, hi), min_size=n, max_size=n)
    return st.fixed_dictionaries({
        "n": st.just(n), "batch": st.just(b * bg), "groups": st.just(groups),
        "batch_groups": st.just(bg), "cin": st.just(groups * cg),
        "cout": st.just(groups * og * bg), "cg": st.just(cg if groups > 1 else groups * cg),
        "spatial": ints(1, 5), "kernel": ints(1, 3), "strides": ints(1, 2),
        "low": ints(-1, 2), "high": ints(-1, 2), "lhs_dilation": ints(1, 2),
        "rhs_dilation": ints(1, 2), "lhs_perm": st.permutations(range(n + 2)),
        "rhs_perm": st.permutations(range(n + 2)), "out_perm": st.permutations(range(n + 2)),
        "precision": _precision_config()})
  return st.tuples(st.integers(1, 2), st.integers(0, 2), st.integers(1, 2),
                   st.integers(1, 2), st.integers(1, 2),
                   st.integers(1, 2) if v2 else st.just(1)).flatmap(build).filter(_conv_ok)


def _conv_ok(c):
  for i in range(c["n"]):
    size = (c["spatial"][i] - 1) * c["lhs_dilation"][i] + 1 + c["low"][i] + c["high"][i]
    if size < (c["kernel"][i] - 1) * c["rhs_dilation"][i] + 1:
      return False
  return True


def _permuted(logical, perm):
  shape = [0] * len(logical)
  for i, d in enumerate(logical):
    shape[perm[i]] = d
  return tuple(shape)


def _conv_example(dtype, preferred=None):
  def for_config(c):
    lhs_shape = _permuted([c["batch"], c["cin"]] + c["spatial"], c["lhs_perm"])
    cg = c["cin"] // c["groups"]
    rhs_shape = _permuted([c["cout"], cg] + c["kernel"], c["rhs_perm"])
    index = st.sampled_from(["int32", "int64"])
    return st.tuples(_values(dtype, lhs_shape), _values(dtype, rhs_shape), index,
                     preferred(dtype) if preferred else st.just(None)).map(
        lambda t: Example({"lhs": t[0], "rhs": t[1], **_conv_statics(c, t[2])},
                          extra=dict(c, preferred=t[3])))
  return _conv_config(preferred is not None).flatmap(for_config)


def _conv_statics(c, index_dtype):
  npd = D.np_dtype(index_dtype)
  n = c["n"]
  return {"window_strides": np.asarray(c["strides"], npd).reshape(n),
          "padding": np.asarray(list(zip(c["low"], c["high"])), npd).reshape(n, 2),
          "lhs_dilation": np.asarray(c["lhs_dilation"], npd).reshape(n),
          "rhs_dilation": np.asarray(c["rhs_dilation"], npd).reshape(n),
          "feature_group_count": np.asarray(c["groups"], npd)}


_CONV_SKIP = {d: "TF's XLA_CPU_JIT crashes the process (segmentation fault) running any "
                 "complex convolution, even a 1x1x4 by 1x1x2 one" for d in D.COMPLEX}
_CONV_STATIC = ("window_strides", "padding", "lhs_dilation", "rhs_dilation",
                "feature_group_count")


def _conv_protos(example):
  pb = _pb()
  e = example.extra
  lp, rp, op = e["lhs_perm"], e["rhs_perm"], e["out_perm"]
  dims = pb.ConvolutionDimensionNumbers(
      input_batch_dimension=lp[0], input_feature_dimension=lp[1],
      input_spatial_dimensions=lp[2:], kernel_output_feature_dimension=rp[0],
      kernel_input_feature_dimension=rp[1], kernel_spatial_dimensions=rp[2:],
      output_batch_dimension=op[0], output_feature_dimension=op[1],
      output_spatial_dimensions=op[2:])
  precision = pb.PrecisionConfig(operand_precision=e["precision"] or [])
  return dims.SerializeToString(), precision.SerializeToString()


def _conv_body(example):
  import tensorflow as tf
  dims, precision = _conv_protos(example)
  statics = [tf.constant(example.inputs[k]) for k in _CONV_STATIC]
  return lambda lhs, rhs: _gen().xla_conv(lhs, rhs, *statics, dims, precision)


def _conv_v2_body(example):
  import tensorflow as tf
  dims, precision = _conv_protos(example)
  statics = [tf.constant(example.inputs[k]) for k in _CONV_STATIC]
  preferred = tf.as_dtype(example.extra["preferred"])
  bg = example.extra["batch_groups"]
  return lambda lhs, rhs: _gen().xla_conv_v2(lhs, rhs, *statics, dims, precision,
                                             preferred, batch_group_count=bg)


def _conv_length(example):
  e = example.extra
  return (e["cin"] // e["groups"]) * math.prod(e["kernel"])


# XlaGather ---------------------------------------------------------------------------


def _gather_example(dtype):
  def for_operand(t):
    shape, index_dtype = t
    r = len(shape)

    def build(u):
      start_map, collapse_flags, sizes_frac, batch_shape, ivd_pos, out_perm = u
      collapsed = sorted(d for d, f in zip(start_map, collapse_flags) if f and shape[d] >= 1)
      sizes = [1 if d in collapsed else int(round(f * shape[d]))
               for d, f in zip(range(r), sizes_frac)]
      ivd = min(ivd_pos, len(batch_shape))
      ishape = list(batch_shape)
      ishape.insert(ivd, len(start_map))
      out_rank = len(batch_shape) + r - len(collapsed)
      # offset dims: the first r - len(collapsed) of a permutation of the output dims
      offset = sorted([d for d in out_perm if d < out_rank][:r - len(collapsed)])
      return st.tuples(cst.arrays(dtype, shape), cst.arrays(
          index_dtype, tuple(ishape), min_value=-3, max_value=6, edges=False)).map(
          lambda xs: Example(
              {"operand": xs[0], "start_indices": xs[1],
               "slice_sizes": np.asarray(sizes, D.np_dtype(index_dtype)).reshape(r)},
              extra={"offset": offset, "collapsed": collapsed, "start_map": list(start_map),
                     "ivd": ivd}))
    return st.tuples(
        st.permutations(range(r)).flatmap(lambda p: st.integers(1, r).map(
            lambda k: tuple(p[:k]))),
        st.lists(st.booleans(), min_size=r, max_size=r),
        st.lists(st.floats(0, 1), min_size=r, max_size=r),
        cst.shapes(max_dims=2, max_side=3), st.integers(0, 2),
        st.permutations(range(5))).flatmap(build)
  return st.tuples(cst.shapes(min_dims=1, max_dims=3, max_side=4),
                   cst.index_dtypes()).flatmap(for_operand)


def _gather_body(example):
  import tensorflow as tf
  pb = _pb()
  e = example.extra
  dims = pb.GatherDimensionNumbers(offset_dims=e["offset"], collapsed_slice_dims=e["collapsed"],
                                   start_index_map=e["start_map"], index_vector_dim=e["ivd"])
  sizes = tf.constant(example.inputs["slice_sizes"])
  raw = dims.SerializeToString()
  return lambda x, i: _gen().xla_gather(x, i, sizes, raw, False)


_CONV_NOTES = ("1 or 2 spatial dims; lhs, rhs and output dims in any order; strides, "
               "lhs/rhs dilation in [1, 2], padding in [-1, 2], feature_group_count 1 or "
               "2; floats in [-4, 4].")


def specs() -> list[OpSpec]:
  no_grad = ("jit", "static", "x64", "vmap")
  return [
      OpSpec("XlaSort", _sort_example, build=_sort_body, skip_dtypes=_SORT_SKIP,
             transforms=no_grad, notes=_NO_GRAD + _SORT_NOTES, **_XLA),
      OpSpec("XlaKeyValueSort", _key_value_example, build=_key_value_body, dtype_attr="K",
             transforms=no_grad, notes=_NO_GRAD + _SORT_NOTES + " Values of the keys' "
             "dtype or of " + ", ".join(_VALUE_DTYPES) + ".", **_XLA),
      OpSpec("XlaConv", _conv_example, build=_conv_body, static_inputs=_CONV_STATIC,
             skip_dtypes=_CONV_SKIP,
             transforms=no_grad, tolerance=_sum_tolerance(_conv_length),
             notes=_NO_GRAD + _CONV_NOTES, **_XLA),
      OpSpec("XlaConvV2", lambda d: _conv_example(d, _preferred), build=_conv_v2_body,
             dtype_attr="LhsT", static_inputs=_CONV_STATIC, transforms=no_grad,
             skip_dtypes=_CONV_SKIP,
             tolerance=_sum_tolerance(_conv_length),
             notes=_NO_GRAD + _CONV_NOTES + " batch_group_count 1 or 2; "
             "preferred_element_type the operands' dtype or a wider one.", **_XLA),
      OpSpec("XlaGather", _gather_example, build=_gather_body, static_inputs=("slice_sizes",),
             transforms=no_grad,
             notes=_NO_GRAD + "Any start_index_map, collapsed dims among them, slice sizes "
             "up to the operand's, offset dims anywhere, index_vector_dim anywhere; start "
             "indices in [-3, 6] (XLA clamps them).", **_XLA),
      OpSpec("XlaVariadicSort", _variadic_sort_example, build=_variadic_sort_body,
             static_inputs=("dimension",), skip_dtypes=_VSORT_SKIP, transforms=no_grad,
             notes=_NO_GRAD + "Comparators: Less or Greater of one operand's lhs and rhs "
             "(either order: ascending or descending by it), the only ones tf2jax "
             "recognizes (others raise at conversion). The case dtype is the first input; "
             "0 to 2 more of " + ", ".join(_KEY_DTYPES) + " (complex, bool and float8 "
             "inputs are sorted by one of them). Any dimension, rows of at most 8, no "
             "NaN (TF's Less is a partial order), is_stable drawn: XLA's CPU sort keeps "
             "ties in order on such short rows.", **_XLA),
      OpSpec("XlaDot", _dot_example, build=_dot_body, transforms=no_grad,
             tolerance=_sum_tolerance(_dot_length),
             notes=_NO_GRAD + "Batch, contracting and free dims in any order, with or "
             "without a precision config; floats in [-4, 4].", **_XLA),
      OpSpec("XlaDotV2", lambda d: _dot_example(d, _preferred), build=_dot_v2_body,
             dtype_attr="LhsT", transforms=no_grad, tolerance=_sum_tolerance(_dot_length),
             notes=_NO_GRAD + "As XlaDot; preferred_element_type the operands' dtype or a "
             "wider one of the same kind.", **_XLA),
      OpSpec("XlaEinsum", _einsum_example, build=_einsum_body,
             tolerance=_sum_tolerance(_einsum_length),
             grad_tolerance=_sum_tolerance(lambda e: 4 * max(
                 e.inputs["a"].size, e.inputs["b"].size, 1)),
             notes="Two-operand equations with batch, contracted and free letters in any "
             "order; floats in [-4, 4].", **_XLA),
      OpSpec("XlaPad", _pad_example, build=_pad_body, skip_dtypes=_FNUZ_SKIP,
             static_inputs=("padding_low", "padding_high", "padding_interior"),
             dtype_attr="T", transforms=no_grad,
             notes=_NO_GRAD + "Low and high padding in [-3, 3] (negative crops), interior "
             "in [0, 2].", **_XLA),
      OpSpec("XlaReducePrecision", _reduce_precision_example, build=_reduce_precision_body,
             transforms=no_grad,
             notes=_NO_GRAD + "exponent_bits in [1, 11], mantissa_bits in [0, 30].", **_XLA),
      OpSpec("XlaBroadcastHelper", _broadcast_helper_example, build=_broadcast_helper_body,
             static_inputs=("broadcast_dims",), transforms=no_grad,
             notes=_NO_GRAD + "Increasing broadcast_dims for the lower-rank operand; empty "
             "dims with equal ranks or a scalar.", **_XLA),
      OpSpec("XlaOptimizationBarrier", _barrier_example, build=_barrier_body,
             skip_dtypes=_FNUZ_SKIP, dtypes=None, transforms=no_grad,
             notes=_NO_GRAD + "One to three values of the case's dtype.", **_XLA),
      OpSpec("XlaSharding", _sharding_example, build=_sharding_body, skip_dtypes=_FNUZ_SKIP,
             transforms=no_grad, notes=_SHARDING_NOTES, **_XLA),
      OpSpec("XlaSpmdFullToShardShape", _sharding_example, build=_full_to_shard_body,
             skip_dtypes=_FNUZ_SKIP, transforms=no_grad, notes=_SHARDING_NOTES, **_XLA),
      OpSpec("XlaSpmdShardToFullShape", _sharding_example, build=_shard_to_full_body,
             skip_dtypes=_FNUZ_SKIP, transforms=no_grad, notes=_SHARDING_NOTES, **_XLA),
  ]
