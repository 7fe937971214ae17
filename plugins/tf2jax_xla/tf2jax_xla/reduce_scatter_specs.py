"""Conformance specs of XlaReduce, XlaVariadicReduce(V2), XlaReduceWindow, XlaScatter and
XlaSelectAndScatter (lowered in reduce_scatter.py).

TF runs them only through XLA (`tf.function(jit_compile=True)`, XLA_CPU_JIT's dtypes).
Their computations are drawn among the monoids tf2jax recognizes (Add, Mul, Maximum,
Minimum, LogicalOr, LogicalAnd, arguments in either order) and computations it runs as
they are (called "generic" below). What XLA leaves unspecified is not drawn: a plain
reduce folds a non-identity init value of a non-idempotent reducer an unspecified
number of times (TF's XLA sums 1000 ones with init 10 to 1330), so those get the
identity; a scatter whose update computation is not commutative (replace, a - b) gets
updates that never meet in one operand element. TF registers no gradient for any of them.
A test dependency: only the plugin's `tf2jax_conformance_specs` hook imports this module.
"""

from __future__ import annotations

import math

import numpy as np
from hypothesis import strategies as st

from tf2jax_conformance import dtypes as D
from tf2jax_conformance import strategies as cst
from tf2jax_conformance.spec import Example, OpSpec, Tolerance, default_tolerance

_XLA = dict(kernel_device="XLA_CPU_JIT", tf_jit_compile=True,
            transforms=("jit", "static", "x64", "vmap"))
_FNUZ_SKIP = {d: "TF's XLA bridge rejects it (MLIR: 'operand must be tensor of tf.dtype "
                 "values')" for d in D.NO_GRAPH_CONSTANT}
_NO_GRAD = "No grad: TF registers no gradient for it. "
_NARROW = D.FLOAT8 + D.NARROW_INT
_V2_SKIP = dict(_FNUZ_SKIP)
_V2_SKIP.update({d: "TF's XLA_CPU_JIT returns wrong values for it (reducing uint4 zeros "
                    "over no dims gives 13 and 15 in some elements)" for d in ("int4", "uint4")})


def _gen():
  from tensorflow.compiler.tf2xla.ops import gen_xla_ops
  return gen_xla_ops


def _pb():
  from tensorflow.compiler.xla import xla_data_pb2
  return xla_data_pb2


# Computations -----------------------------------------------------------------------


def _kinds(dtype):
  """Reducer kinds for a dtype; "generic" is associative and commutative but not a
  monoid tf2jax recognizes (xor, max by Select, AddN); float8 and int4 get only "keep"
  (the accumulator: the init value, or the element when an output reduces one)."""
  if dtype in _NARROW:  # no TF op on them that tf2jax lowers (not even Cast)
    return ["keep"]
  if dtype == "bool":
    return ["max", "min", "generic"]
  if dtype in D.COMPLEX:
    return ["add", "mul", "generic"]
  return ["add", "mul", "max", "min", "generic"]


def _binary(kind, dtype):
  """The TF function of two scalars for a kind (also "replace" and "sub")."""
  import tensorflow as tf
  if kind == "add":
    return tf.add
  if kind == "mul":
    return tf.multiply
  if kind == "sub":
    return tf.subtract
  if kind == "replace":
    return lambda a, b: b
  if dtype == "bool":
    return {"max": tf.logical_or, "min": tf.logical_and, "generic": tf.math.logical_xor}[kind]
  if kind in ("max", "min"):
    return tf.maximum if kind == "max" else tf.minimum
  if dtype in D.COMPLEX:
    return lambda a, b: tf.math.add_n([a, b])
  if kind == "keep":
    return lambda a, b: tf.identity(a)
  if dtype in D.INT:
    return tf.bitwise.bitwise_xor
  return lambda a, b: tf.where(a >= b, a, b)


def _concrete(fn, dtypes):
  import tensorflow as tf
  signature = [tf.TensorSpec([], tf.as_dtype(d)) for d in dtypes]
  return tf.function(fn, input_signature=signature, autograph=False).get_concrete_function()


def _reducer(kinds, dtypes, swaps):
  """A 2n-argument reducer combining accumulator k and element k by kinds[k]; "argmax"
  as kinds[0] makes the first two operands a (value, index) argmax."""
  n = len(kinds)

  def fn(*args):
    acc, elem = args[:n], args[n:]
    if kinds[0] == "argmax":
      import tensorflow as tf
      a, ai, b, bi = acc[0], acc[1], elem[0], elem[1]
      pick = (a > b) | ((a == b) & (ai < bi))
      return [tf.where(pick, a, b), tf.where(pick, ai, bi)]
    return [_binary(k, d)(e, a) if s else _binary(k, d)(a, e)
            for k, d, s, a, e in zip(kinds, dtypes, swaps, acc, elem)]
  return _concrete(fn, list(dtypes) * 2)


def _identity(kind, dtype):
  npd = D.np_dtype(dtype)
  if kind == "max" and dtype == "bool" or kind in ("add", "generic"):
    return np.zeros((), npd)  # generic: xor's and AddN's identity
  if kind == "min" and dtype == "bool" or kind == "mul":
    return np.ones((), npd)
  if dtype in D.FLOAT:
    return np.asarray(-np.inf if kind == "max" else np.inf, npd)
  info = D.iinfo(dtype)
  return np.asarray(info.min if kind == "max" else info.max, npd)


def _values(kind, dtype, shape):
  """Bounded finite floats for sums and products (no overflow, a tolerance that holds),
  else every value but NaN: TF's XLA may compile Maximum and Minimum without NaN
  propagation (a bfloat16 variadic reduce's max of [0, nan] is 0), JAX's propagates."""
  if D.is_inexact(dtype) and kind in ("add", "mul", "sub", "argmax") or (
      dtype in D.COMPLEX and kind == "generic"):
    return cst.finite_arrays(dtype, shape, bound=2.0 if kind == "mul" else 4.0)
  return cst.arrays(dtype, shape, allow_nan=False)


def _init(kind, dtype, free):
  """An init value: any (of the kind's values) when `free` or the kind is idempotent,
  else the identity."""
  if free or kind in ("max", "min", "keep") or (kind == "generic" and dtype in D.FLOAT):
    return _values(kind, dtype, ())
  return st.just(_identity(kind, dtype))


def _tolerance(length_of):
  """A few ulps plus the rounding of `length_of(example)` sums or products, in the
  loosest inexact dtype of the example (TF's XLA and JAX may combine in other orders)."""
  def tolerance(dtype, example):
    part = lambda d: {"complex64": "float32", "complex128": "float64"}.get(d, d)
    names = [d for d in example.extra.get("dtypes", [dtype]) if D.is_inexact(d)]
    if not names:
      return default_tolerance(dtype)
    loosest = max(names, key=lambda d: float(D.finfo(part(d)).eps))
    eps = float(D.finfo(part(loosest)).eps)
    base = default_tolerance(loosest)
    n = max(length_of(example), 1)
    return Tolerance(rtol=max(base.rtol, 4 * n * eps), atol=base.atol + 16 * n * eps)
  return tolerance


# XlaReduce / XlaVariadicReduce / XlaVariadicReduceV2 --------------------------------


def _reduce_layout():
  return cst.shapes(max_dims=3, max_side=4).flatmap(lambda s: st.tuples(
      st.just(s), st.permutations(range(len(s))).flatmap(
          lambda p: st.integers(0, len(p)).map(lambda k: list(p[:k])))))


def _reduce_example(case_dtype, n_of, other_dtypes=None, argmax=False):
  """inputs/init values of n operands: the first of the case dtype, the others of it or
  (V2) drawn among `other_dtypes`."""
  def build(t):
    (shape, dims), n, kinds_seed = t
    dts = st.just([case_dtype] * n) if other_dtypes is None else st.lists(
        st.sampled_from([case_dtype] + other_dtypes), min_size=n - 1,
        max_size=n - 1).map(lambda ds: [case_dtype] + ds)

    def with_dtypes(ds):
      if kinds_seed and argmax and case_dtype in D.REAL and n >= 2:
        ds = [ds[0], "int32"]
        kinds = st.just(["argmax", "argmax"])
      else:
        kinds = st.tuples(*[st.sampled_from(_kinds(d)) for d in ds]).map(list)

      def with_kinds(ks):
        if ks[0] == "argmax":
          xs = st.tuples(_values("argmax", ds[0], shape),
                         cst.arrays("int32", shape, min_value=0, max_value=5))
          inits = st.tuples(_values("argmax", ds[0], ()), st.just(np.zeros((), np.int32)))
        else:
          xs = st.tuples(*[_values(k, d, shape) for k, d in zip(ks, ds)])
          inits = st.tuples(*[_init(k, d, False) for k, d in zip(ks, ds)])
        return st.tuples(xs, inits, st.lists(st.booleans(), min_size=len(ks),
                                             max_size=len(ks))).map(
            lambda u: (list(u[0]), list(u[1]), ks, ds, u[2]))
      return kinds.flatmap(with_kinds)
    return dts.flatmap(with_dtypes).map(lambda v: (v, dims))
  return st.tuples(_reduce_layout(), n_of, st.booleans()).flatmap(build)


def _reduce_case(names):
  def finish(v):
    (xs, inits, kinds, dtypes, swaps), dims = v
    extra = {"dims": dims, "kinds": kinds, "dtypes": dtypes, "swaps": swaps,
             "length": math.prod(xs[0].shape[d] for d in dims)}
    if names is None:
      return Example({"input": xs[0], "init_value": inits[0]}, extra=extra)
    return Example({names[0]: xs, names[1]: inits}, extra=extra)
  return finish


def _reduce_body(example):
  e = example.extra
  fn = _reducer(e["kinds"], e["dtypes"], e["swaps"])
  return lambda x, i: _gen().xla_reduce(x, i, e["dims"], fn)


def _variadic_body(example):
  e = example.extra
  fn = _reducer(e["kinds"], e["dtypes"], e["swaps"])
  n = len(e["kinds"])
  return lambda *ts: list(_gen().xla_variadic_reduce(list(ts[:n]), list(ts[n:]),
                                                     e["dims"], fn))


def _variadic_v2_body(example):
  e = example.extra
  fn = _reducer(e["kinds"], e["dtypes"], e["swaps"])
  n = len(e["kinds"])
  return lambda *ts: list(_gen().xla_variadic_reduce_v2(list(ts[:n]), list(ts[n:]),
                                                        e["dims"], fn))


_REDUCE_NOTES = (
    _NO_GRAD + "Shapes of up to 3 dims of up to 4, any dims reduced in any order. "
    "Reducers: Add, Mul, Maximum, Minimum (LogicalOr, LogicalAnd on bool), either "
    "argument order, and 'generic' ones tf2jax runs as the XLA computation itself "
    "(BitwiseXor, LogicalXor, AddN, Select(a >= b, a, b)). Init values: any for the "
    "idempotent ones, else the identity: XLA folds another init value an unspecified "
    "number of times (TF's XLA sums 1000 ones with init 10 to 1330). Floats of sums and "
    "products in [-4, 4] and [-2, 2]; the others every value but NaN (TF's XLA may "
    "compile Maximum without NaN propagation: a bfloat16 variadic reduce's max of "
    "[0, nan] is 0).")


# XlaReduceWindow --------------------------------------------------------------------


def _window_config(cumulative=True, dilations=True):
  """Window layouts (dicts of per-dim lists); with `cumulative`, also jax2tf's."""
  def build(rank):
    ints = lambda lo, hi: st.lists(st.integers(lo, hi), min_size=rank, max_size=rank)
    most = 2 if dilations else 1
    return st.fixed_dictionaries({
        "shape": ints(1, 4), "window": ints(1, 3), "strides": ints(1, 2),
        "base": ints(1, most), "dilation": ints(1, most), "low": ints(0, 2),
        "high": ints(0, 2)}).filter(_window_ok)
  general = st.integers(1, 3).flatmap(build)
  if not cumulative:
    return general
  jax2tf = cst.shapes(min_dims=1, max_dims=3, min_side=2, max_side=4).flatmap(
      lambda s: st.tuples(st.just(s), st.integers(0, len(s) - 1), st.booleans())).map(
      lambda t: _cumulative(*t))
  return st.one_of(general, jax2tf)


def _cumulative(shape, axis, reverse):
  r = len(shape)
  n = shape[axis]
  low = [0] * r
  high = [0] * r
  (high if reverse else low)[axis] = n - 1
  window = [1] * r
  window[axis] = n
  return {"shape": list(shape), "window": window, "strides": [1] * r, "base": [1] * r,
          "dilation": [1] * r, "low": low, "high": high, "cumulative": True}


def _window_ok(c):
  for n, w, b, d, lo, hi in zip(c["shape"], c["window"], c["base"], c["dilation"],
                                c["low"], c["high"]):
    if (n - 1) * b + 1 + lo + hi < (w - 1) * d + 1:
      return False
  return True


def _reduce_window_example(dtype):
  def build(t):
    c, kind, index_dtype, const_init = t
    c = dict(c)
    cumulative = c.pop("cumulative", False)
    npd = D.np_dtype(index_dtype)
    r = len(c["shape"])
    statics = {"window_dimensions": np.asarray(c["window"], npd).reshape(r),
               "window_strides": np.asarray(c["strides"], npd).reshape(r),
               "base_dilations": np.asarray(c["base"], npd).reshape(r),
               "window_dilations": np.asarray(c["dilation"], npd).reshape(r),
               "padding": np.asarray(list(zip(c["low"], c["high"])), npd).reshape(r, 2)}
    # jax2tf's cumulative reductions: a constant identity init.
    const_init = cumulative and const_init and kind != "generic"
    init = st.just(_identity(kind, dtype)) if const_init else _init(kind, dtype, True)
    return st.tuples(_values(kind, dtype, tuple(c["shape"])), init, st.booleans()).map(
        lambda u: Example({"input": u[0], "init_value": u[1], **statics},
                          extra={"kinds": [kind], "dtypes": [dtype], "swap": u[2],
                                 "const_init": const_init,
                                 "length": math.prod(c["window"])}))
  return st.tuples(_window_config(), st.sampled_from(_kinds(dtype)),
                   cst.index_dtypes(), st.booleans()).flatmap(build)


_WINDOW_STATIC = ("window_dimensions", "window_strides", "base_dilations",
                  "window_dilations", "padding")


def _reduce_window_body(example):
  import tensorflow as tf
  e = example.extra
  fn = _reducer(e["kinds"], e["dtypes"], [e["swap"]])
  statics = [tf.constant(example.inputs[k]) for k in _WINDOW_STATIC]
  const = tf.constant(example.inputs["init_value"]) if e["const_init"] else None
  return lambda x, i: _gen().xla_reduce_window(x, i if const is None else const, *statics,
                                               fn)


# XlaScatter -------------------------------------------------------------------------


def _scatter_example(dtype):
  def for_operand(t):
    shape, index_dtype, kind = t
    r = len(shape)
    unique = kind in ("replace", "sub")

    def build(u):
      perm, k, inserted_flags, frac, batch_shape, ivd_pos, out_perm = u
      scattered = list(perm[:k])
      inserted = sorted(d for d, f in zip(scattered, inserted_flags) if f)
      sizes = [1 if d in inserted or (unique and d in scattered)
               else int(round(f * shape[d])) for d, f in zip(range(r), frac)]
      window_shape = [sizes[d] for d in range(r) if d not in inserted]
      nb = math.prod(batch_shape)
      room = math.prod(shape[d] + 2 for d in scattered)
      if unique and nb > room:
        batch_shape, nb = [room], room
      ivd = min(ivd_pos, len(batch_shape))
      # update window dims: the positions of the window among the updates' dims
      up_rank = len(batch_shape) + len(window_shape)
      window_pos = sorted([d for d in out_perm if d < up_rank][:len(window_shape)])
      ushape = [0] * up_rank
      bi = iter(batch_shape)
      wi = iter(window_shape)
      for p in range(up_rank):
        ushape[p] = next(wi) if p in window_pos else next(bi)
      if unique:  # distinct index vectors: no two updates meet
        idx = st.lists(st.tuples(*[st.integers(-1, shape[d]) for d in scattered]),
                       min_size=nb, max_size=nb, unique=True)
      else:
        idx = st.lists(st.tuples(*[st.integers(-2, shape[d] + 1) for d in scattered]),
                       min_size=nb, max_size=nb)

      def indices(vs):
        a = np.asarray(vs, D.np_dtype(index_dtype)).reshape(tuple(batch_shape) + (k,))
        return np.moveaxis(a, -1, ivd)
      return st.tuples(_values(kind, dtype, shape), idx.map(indices),
                       _values(kind, dtype, tuple(ushape)), st.booleans()).map(
          lambda v: Example(
              {"operand": v[0], "scatter_indices": v[1], "updates": v[2]},
              extra={"kinds": [kind], "dtypes": [dtype], "swap": v[3] and not unique,
                     "window_dims": window_pos, "inserted": inserted,
                     "scattered": scattered, "ivd": ivd, "count": nb}))
    return st.tuples(
        st.permutations(range(r)), st.integers(1, r),
        st.lists(st.booleans(), min_size=r, max_size=r),
        st.lists(st.floats(0, 1), min_size=r, max_size=r),
        cst.shapes(max_dims=2, max_side=3), st.integers(0, 2),
        st.permutations(range(5))).flatmap(build)
  kinds = _kinds(dtype) + ["replace"] + (["sub"] if dtype != "bool" else [])
  return st.tuples(cst.shapes(min_dims=1, max_dims=3, min_side=1, max_side=4),
                   cst.index_dtypes(), st.sampled_from(kinds)).flatmap(for_operand)


def _scatter_body(example):
  e = example.extra
  dims = _pb().ScatterDimensionNumbers(
      update_window_dims=e["window_dims"], inserted_window_dims=e["inserted"],
      scatter_dims_to_operand_dims=e["scattered"], index_vector_dim=e["ivd"])
  fn = _reducer(e["kinds"], e["dtypes"], [e["swap"]])
  raw = dims.SerializeToString()
  return lambda o, i, u: _gen().xla_scatter(o, i, u, fn, raw, False)


# XlaSelectAndScatter ----------------------------------------------------------------


def _select_fn(op, dtype):
  import tensorflow as tf
  key = tf.math.real if dtype in D.COMPLEX else (lambda v: v)
  compare = {"ge": tf.greater_equal, "gt": tf.greater, "le": tf.less_equal,
             "lt": tf.less}[op]
  return _concrete(lambda a, b: compare(key(a), key(b)), [dtype, dtype])


def _sas_example(dtype):
  def build(t):
    c, select, kind, index_dtype = t
    npd = D.np_dtype(index_dtype)
    r = len(c["shape"])
    pads = list(zip(c["low"], c["high"]))
    out = [(n + lo + hi - w) // s + 1
           for n, w, s, (lo, hi) in zip(c["shape"], c["window"], c["strides"], pads)]
    statics = {"window_dimensions": np.asarray(c["window"], npd).reshape(r),
               "window_strides": np.asarray(c["strides"], npd).reshape(r),
               "padding": np.asarray(pads, npd).reshape(r, 2)}
    operand = cst.arrays(dtype, tuple(c["shape"]), allow_nan=False)
    return st.tuples(operand, _values(kind, dtype, tuple(out)), _init(kind, dtype, True),
                     st.booleans()).map(
        lambda u: Example({"operand": u[0], **statics, "source": u[1], "init_value": u[2]},
                          extra={"kinds": [kind], "dtypes": [dtype], "swap": u[3],
                                 "select": select, "length": math.prod(out)}))
  kinds = [k for k in _kinds(dtype) if k != "mul"]
  config = _window_config(cumulative=False, dilations=False).filter(lambda c: all(
      lo < w and hi < w for w, lo, hi in zip(c["window"], c["low"], c["high"])))
  return st.tuples(config, st.sampled_from(["ge", "gt", "le", "lt"]),
      st.sampled_from(kinds), cst.index_dtypes()).flatmap(build)


_SAS_STATIC = ("window_dimensions", "window_strides", "padding")


def _sas_body(example):
  import tensorflow as tf
  e = example.extra
  select = _select_fn(e["select"], e["dtypes"][0])
  scatter = _reducer(e["kinds"], e["dtypes"], [e["swap"]])
  statics = [tf.constant(example.inputs[k]) for k in _SAS_STATIC]
  return lambda o, s, i: _gen().xla_select_and_scatter(o, *statics, s, i, select, scatter)


def specs() -> list[OpSpec]:
  reduce_tol = _tolerance(lambda e: e.extra["length"])
  argmax_others = ["float32", "int32", "bool"]
  return [
      OpSpec("XlaReduce", lambda d: _reduce_example(d, st.just(1)).map(_reduce_case(None)),
             build=_reduce_body, tolerance=reduce_tol, notes=_REDUCE_NOTES, **_XLA),
      OpSpec("XlaVariadicReduce",
             lambda d: _reduce_example(d, st.integers(1, 3), argmax=d == "int32").map(
                 _reduce_case(("input", "init_value"))),
             build=_variadic_body, tolerance=reduce_tol,
             notes=_REDUCE_NOTES + " One to three inputs, each reduced by its own reducer "
             "(a mix of monoids and generic ones runs the whole reducer as it is).",
             **_XLA),
      OpSpec("XlaVariadicReduceV2",
             lambda d: _reduce_example(d, st.integers(1, 3), argmax_others, argmax=True).map(
                 _reduce_case(("inputs", "init_values"))),
             build=_variadic_v2_body, tolerance=reduce_tol, skip_dtypes=_V2_SKIP,
             notes=_REDUCE_NOTES + " The case dtype is the first input; up to two more "
             "of it or " + ", ".join(argmax_others) + ", each reduced by its own "
             "reducer, or a (value, int32 index) argmax with ties to the lower index "
             "(generic). TF's XLA refuses inputs mixing floating types of different "
             "precisions (float16 and float32): those draws check that tf2jax refuses "
             "them too. float8 inputs: only the reducer keeping the accumulator "
             "(tf2jax's core lowers no TF op on them, not even Cast, that a reducer could "
             "use).", **_XLA),
      OpSpec("XlaReduceWindow", _reduce_window_example, build=_reduce_window_body,
             static_inputs=_WINDOW_STATIC,
             tolerance=_tolerance(lambda e: e.extra["length"]),
             notes=_NO_GRAD + "1 to 3 dims; windows of 1 to 3, strides, base and window "
             "dilations 1 or 2, padding 0 to 2; or jax2tf's cumulative windows (a whole "
             "axis padded before it, or after it for reverse), sometimes with a constant "
             "identity init, which tf2jax lowers to cumsum/cumprod/cummax/cummin "
             "(infer_cumulative_reduction_from_jax2tf, on by default). Reducers as "
             "XlaReduce's, any init value: XLA's windows skip padding and dilation holes "
             "and fold the init value once.", **_XLA),
      OpSpec("XlaScatter", _scatter_example, build=_scatter_body,
             tolerance=_tolerance(lambda e: e.extra["count"]),
             notes=_NO_GRAD + "Operands of 1 to 3 dims; any scattered dims (some "
             "inserted), update window dims anywhere, index_vector_dim anywhere, indices "
             "from -2 to past the end (XLA skips windows out of bounds). Update "
             "computations: the reducers of XlaReduce (duplicate indices drawn) and the "
             "non-commutative replace and a - b, whose order XLA leaves unspecified: for "
             "those, distinct indices and windows of 1 along the scattered dims, so no "
             "two updates meet.", **_XLA),
      OpSpec("XlaSelectAndScatter", _sas_example, build=_sas_body,
             static_inputs=_SAS_STATIC, tolerance=_tolerance(lambda e: e.extra["length"]),
             notes=_NO_GRAD + "1 to 3 dims; windows of 1 to 3, strides 1 or 2, padding "
             "below the window. Select: >=, >, <=, < (of the real part for complex); no "
             "NaN operands. Scatter: the reducers of XlaReduce but Mul, any init value.",
             **_XLA),
  ]
