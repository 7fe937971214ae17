"""Conformance specs of every op tf2jax-random lowers.

- Stateless ops: compared with TF *exactly* (tolerance 0 for every dtype) over seeds,
  keys and counters drawn from their whole range (edge values included), shapes with
  0-sized dimensions and sizes cutting a Philox call, and both algorithms TF's CPU
  kernels accept (1 Philox, 3 auto-select); eagerly, under jit, with every input baked
  in (static), with x64 and under vmap over seeds/keys/counters.
- tf.random.Generator ops: the generator's state variable is a param; numbers and the
  advanced state are compared exactly (jit too).
- Ops drawn from the converted function's `rng` key: TF's shapes and dtypes exactly, and
  the samples (at least 2000, pooled over keys) pass a Kolmogorov-Smirnov or chi-square
  test against the exact distribution at p >= 1e-6 (a correct sampler fails one check
  in a million).

A test dependency: only the plugin's `tf2jax_conformance_specs` hook imports this module.
"""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

from tf2jax_conformance import dtypes as D
from tf2jax_conformance import strategies as cst
from tf2jax_conformance.spec import EXACT, Example, OpSpec, Tolerance

# Reject when the p-value of a statistical check is below this.
P_MIN = 1e-6
STATELESS_TRANSFORMS = ("jit", "static", "x64", "vmap")
RNG_TRANSFORMS = ("jit", "x64")
INDEX_DTYPES = ("int32", "int64")


def _exact(dtype, example):
  return EXACT


# Strategies ---------------------------------------------------------------------------


def _shapes():
  """Shapes of exactly compared outputs: mostly non-empty (scalars, sizes cutting the last
  Philox call: 4 values per call, 2 for 64-bit dtypes), sometimes 0-sized."""
  return st.one_of(cst.shapes(max_dims=3, min_side=1, max_side=6, max_size=40),
                   st.sampled_from([(1025,), (0,), (3, 0, 2)]))


def _sample_shapes(scalar=True):
  """Shapes of statistically checked outputs. At least 2000 values mostly, so that one
  call gives the harness enough samples (a smaller output makes it pool calls under a
  vmap over keys: one more compilation per transform); also 0-sized ones and, unless
  `scalar` is false (samplers that take seconds to compile), a scalar."""
  return st.one_of(st.sampled_from([(2048,), (40, 51), (2, 3, 350)]),
                   st.sampled_from([(0,), (4, 0)] + ([()] if scalar else [])))


def _ints(dtype):
  """Integers over a dtype's whole range, edge values (and 32-bit boundaries) first."""
  info = np.iinfo(dtype)
  lo, hi = int(info.min), int(info.max)
  edges = [0, 1, -1, lo, hi, lo + 1, hi - 1, 2**31, 2**32 - 1, 2**32]
  edges = [e for e in edges if lo <= e <= hi]
  return st.one_of(st.sampled_from(edges), st.integers(lo, hi))


def _seeds():
  return st.sampled_from(INDEX_DTYPES).flatmap(
      lambda d: st.tuples(_ints(d), _ints(d)).map(lambda s: np.array(s, d)))


def _key_counters():
  u64 = _ints("uint64")
  return st.tuples(u64, u64, u64).map(
      lambda t: (np.array([t[0]], np.uint64), np.array([t[1], t[2]], np.uint64)))


def _shape_array(shape, dtype="int32"):
  return np.array(shape, dtype).reshape(len(shape))


def _int_range(dtype):
  """minval < maxval (TF refuses minval >= maxval for non-empty outputs; with bounds
  computed at call time the converted function cannot)."""
  return st.tuples(_ints(dtype), _ints(dtype)).filter(lambda t: t[0] != t[1]).map(
      lambda t: (np.array(min(t), dtype), np.array(max(t), dtype)))


def _generator_state():
  """A Philox generator state [counter_lo, counter_hi, key] over the whole int64 range."""
  return st.tuples(_ints("int64"), _ints("int64"), _ints("int64"))


# Statistical checks -------------------------------------------------------------------


def _ks(cdf, what, lo=-np.inf, hi=np.inf, hi_open=False):
  """Kolmogorov-Smirnov against `cdf`; every sample finite and in [lo, hi] ([lo, hi) when
  `hi_open`)."""
  def check(samples, dtype):
    from scipy import stats
    x = np.asarray(samples, np.float64).ravel()
    outside = ~np.isfinite(x) | (x < lo) | ((x >= hi) if hi_open else (x > hi))
    if np.any(outside):
      return (f"{int(outside.sum())} samples outside the support of {what}, e.g. "
              f"{x[outside][:3].tolist()}")
    result = stats.kstest(x, cdf)
    if result.pvalue < P_MIN:
      return (f"Kolmogorov-Smirnov against {what}: D = {result.statistic:.4g}, "
              f"p = {result.pvalue:.3g} < {P_MIN:g} ({x.size} samples)")
    return None
  return check


def _chi_square(pmf, what):
  """Chi-square of non-negative integer samples against `pmf`, over the values expected
  at least 5 times (the others pooled into one cell)."""
  def check(samples, dtype):
    from scipy import stats
    x = np.asarray(samples, np.float64).ravel()
    if np.any(~np.isfinite(x)) or np.any(x != np.round(x)) or np.any(x < 0):
      return f"samples of {what} must be non-negative integers"
    values = np.unique(x)
    impossible = values[pmf(values) == 0]
    if impossible.size:
      return f"samples outside the support of {what}, e.g. {impossible[:3].tolist()}"
    k = np.arange(int(x.max()) + 1)
    expected = pmf(k) * x.size
    keep = expected >= 5
    observed = np.bincount(x.astype(np.int64), minlength=len(k))
    obs, exp = observed[keep], expected[keep]
    rest = x.size - exp.sum()
    if rest > 1e-6 * x.size:  # the values expected rarely (tails included), pooled
      obs, exp = np.append(obs, observed[~keep].sum()), np.append(exp, rest)
    else:
      exp = exp * (obs.sum() / exp.sum())
    p = stats.chisquare(obs, exp).pvalue
    return None if p >= P_MIN else f"chi-square against {what}: p = {p:.3g} < {P_MIN:g}"
  return check


# Stateless ops ------------------------------------------------------------------------


_SEED_NOTES = ("Seeds are int32 or int64 over their whole range; TF sign-extends them to "
               "64 bits before its seed scramble.")
_NORMAL_NOTES = (" Normals use glibc's logf/sincosf (float) through a port checked on every "
                 "input Box-Muller can give them, and libm's log/sincos (double) through a "
                 "host callback.")


def _v1_example(op):
  def example(dtype):
    base = st.tuples(_shapes(), _seeds(), st.sampled_from(INDEX_DTYPES))
    if op == "StatelessRandomUniformInt":
      return st.tuples(base, _int_range(dtype)).map(lambda t: Example(
          {"shape": _shape_array(t[0][0], t[0][2]), "seed": t[0][1],
           "minval": t[1][0], "maxval": t[1][1]}))
    return base.map(lambda t: Example(
        {"shape": _shape_array(t[0], t[2]), "seed": t[1]}, {"dtype": dtype}))
  return example


def _v2_example(op):
  def example(dtype):
    base = st.tuples(_shapes(), _key_counters(), st.sampled_from([1, 3]),
                     st.sampled_from(INDEX_DTYPES))

    def make(t, bounds=None):
      shape, (key, counter), alg, shape_dtype = t
      inputs = {"shape": _shape_array(shape, shape_dtype), "key": key,
                "counter": counter, "alg": np.array(alg, np.int32)}
      if bounds is not None:
        inputs["minval"], inputs["maxval"] = bounds
        return Example(inputs)
      return Example(inputs, {"dtype": dtype})
    if op == "StatelessRandomUniformIntV2":
      return st.tuples(base, _int_range(dtype)).map(lambda t: make(t[0], t[1]))
    return base.map(make)
  return example


def _seed_example(dtype):
  return st.tuples(_ints(dtype), _ints(dtype)).map(
      lambda s: Example({"seed": np.array(s, dtype)}))


def _stateless_specs() -> list[OpSpec]:
  out = []
  for op in ["StatelessRandomUniform", "StatelessRandomNormal", "StatelessTruncatedNormal",
             "StatelessRandomUniformInt", "StatelessRandomUniformFullInt"]:
    out.append(OpSpec(
        op, _v1_example(op), dtype_attr="dtype", static_inputs=("shape",),
        transforms=STATELESS_TRANSFORMS, tolerance=_exact,
        notes="Bit-exact. " + _SEED_NOTES + (_NORMAL_NOTES if "Normal" in op else "")))
  for op in ["StatelessRandomUniformV2", "StatelessRandomNormalV2",
             "StatelessTruncatedNormalV2", "StatelessRandomUniformIntV2",
             "StatelessRandomUniformFullIntV2"]:
    out.append(OpSpec(
        op, _v2_example(op), dtype_attr="dtype", static_inputs=("shape", "alg"),
        transforms=STATELESS_TRANSFORMS, tolerance=_exact,
        notes="Bit-exact. Keys and counters are uint64 over their whole range, so the "
              "cases run with x64; the algorithm is 1 (Philox) or 3 (auto-select), which "
              "TF's CPU kernels map to Philox (ThreeFry, 2, has no CPU kernel)."
              + (_NORMAL_NOTES if "Normal" in op else "")))
  for op in ["StatelessRandomGetKeyCounter", "StatelessRandomGetKeyCounterAlg"]:
    out.append(OpSpec(op, _seed_example, dtype_attr="Tseed",
                      transforms=STATELESS_TRANSFORMS, tolerance=_exact,
                      notes="Bit-exact (TF's seed scramble). " + _SEED_NOTES))
  out.append(OpSpec(
      "StatelessRandomGetAlg", lambda dtype: st.just(Example({})), dtype_attr=None,
      dtypes=("int32",), transforms=("jit", "static", "x64"), tolerance=_exact,
      notes="TF's CPU kernel returns 1 (Philox). No inputs, so no vmap."))
  return out


# tf.random.Generator ------------------------------------------------------------------


def _generator_example(op):
  def example(dtype):
    def make(t):
      shape, state, bounds, alg = t
      # shape_dtype int64 (the build's shape is int64) makes the harness run with x64,
      # which the int64 state needs under jit.
      return Example({}, {"shape_dtype": "int64", "dtype": dtype},
                     {"shape": shape, "state": state, "bounds": bounds, "alg": alg})
    bounds = (_int_range(dtype).map(lambda b: (int(b[0]), int(b[1])))
              if op == "StatefulUniformInt" else st.none())
    return st.tuples(_shapes(), _generator_state(), bounds, st.sampled_from([1, 3])).map(make)
  return example


def _generator(example):
  import tensorflow as tf
  counter0, counter1, key = example.extra["state"]
  return tf.random.Generator.from_key_counter(key, [counter0, counter1], "philox")


def _generator_build(op):
  def build(example):
    import tensorflow as tf
    from tensorflow.python.ops import resource_variable_ops
    g = _generator(example)
    dtype = tf.as_dtype(D.np_dtype(example.attrs["dtype"]))
    dims = example.extra["shape"]

    def body():
      resource_variable_ops.variable_accessed(g.state)  # as Generator methods do
      kwargs = dict(resource=g.state.handle,
                    algorithm=tf.constant(example.extra["alg"], tf.int64),
                    shape=tf.constant(dims, tf.int64, shape=[len(dims)]))
      if op == "StatefulUniformInt":
        lo, hi = example.extra["bounds"]
        kwargs["minval"], kwargs["maxval"] = tf.constant(lo, dtype), tf.constant(hi, dtype)
      else:
        kwargs["dtype"] = dtype
      return getattr(tf.raw_ops, op)(**kwargs)
    return body
  return build


def _skip_example(dtype):
  return st.tuples(_generator_state(), st.one_of(_ints("uint64"), st.integers(0, 2**20)),
                   st.sampled_from([1, 3])).map(
      # The output (the int64 state) makes the harness run with x64.
      lambda t: Example({}, {}, {"state": t[0], "delta": t[1], "alg": t[2]}))


def _skip_build(op):
  def build(example):
    import tensorflow as tf
    from tensorflow.python.ops import resource_variable_ops
    g = _generator(example)
    delta, alg = example.extra["delta"], example.extra["alg"]

    def body():
      resource_variable_ops.variable_accessed(g.state)
      if op == "RngReadAndSkip":
        return tf.raw_ops.RngReadAndSkip(resource=g.state.handle, alg=alg,
                                         delta=tf.constant(delta, tf.uint64))
      tf.raw_ops.RngSkip(resource=g.state.handle, algorithm=tf.constant(alg, tf.int64),
                         delta=tf.constant(np.array(delta, np.uint64).view(np.int64)))
      return g.state.read_value()
    return body
  return build


def _generator_specs() -> list[OpSpec]:
  out = []
  for op in ["StatefulUniform", "StatefulUniformFullInt", "StatefulUniformInt",
             "StatefulStandardNormalV2", "StatefulTruncatedNormal"]:
    out.append(OpSpec(
        op, _generator_example(op), dtype_attr="dtype", build=_generator_build(op),
        variables=True, transforms=("jit",), tolerance=_exact,
        notes="Bit-exact numbers and state: a Philox generator with a drawn state "
              "[counter_lo, counter_hi, key] (whole int64 range, so counters carry and "
              "wrap), algorithm 1 (Philox) or 3 (auto-select); the state is int64, so the "
              "cases run with x64."))
  for op in ["RngReadAndSkip", "RngSkip"]:
    out.append(OpSpec(
        op, _skip_example, dtype_attr=None, dtypes=("int64",), build=_skip_build(op),
        variables=True, transforms=("jit",), tolerance=_exact,
        notes="Exact: the state advances by 256 * delta computed in 64 bits (wrapping), "
              "added with TF's PhiloxRandom::Skip carries; deltas over the whole uint64 "
              "range."))
  return out


# Ops drawn from the rng key -----------------------------------------------------------


_RNG_NOTES = ("Values come from JAX's key, not TF's: shapes and dtypes are compared with "
              "TF, the samples (>= 2000, pooled over keys) pass a Kolmogorov-Smirnov or "
              f"chi-square test against the exact distribution at p >= {P_MIN:g}.")


def _rng_spec(op, example, statistical, notes="", **kwargs) -> OpSpec:
  return OpSpec(op, example, transforms=RNG_TRANSFORMS, rng=True, statistical=statistical,
                notes=_RNG_NOTES + (" " + notes if notes else ""), **kwargs)


def _shape_example(dtype):
  """RandomUniform, RandomStandardNormal, TruncatedNormal: a shape and TF's op seeds."""
  return st.tuples(_sample_shapes(), st.sampled_from(INDEX_DTYPES),
                   st.integers(0, 2**31 - 1), st.integers(0, 2**31 - 1)).map(
      lambda t: Example({"shape": _shape_array(t[0], t[1])},
                        {"dtype": dtype, "seed": t[2], "seed2": t[3]}))


def _uniform_int_example(dtype):
  return st.tuples(_sample_shapes(), st.sampled_from(INDEX_DTYPES)).map(
      lambda t: Example({"shape": _shape_array(t[0], t[1]), "minval": np.array(-3, dtype),
                         "maxval": np.array(7, dtype)}))


_PROBS = np.array([0.2, 0.3, 0.5])


def _multinomial_example(dtype):
  logits = np.log(_PROBS)
  batch_samples = st.one_of(st.sampled_from([(1, 2048), (3, 700)]),
                            st.sampled_from([(0, 5), (3, 0)]))
  return st.tuples(batch_samples, st.sampled_from(INDEX_DTYPES)).map(
      lambda t: Example({"logits": np.tile(logits, (t[0][0], 1)).astype(D.np_dtype(dtype)),
                         "num_samples": np.array(t[0][1], np.int32)},
                        {"output_dtype": t[1]}))


def _categorical(samples, dtype):
  from scipy import stats
  x = np.asarray(samples).astype(np.int64).ravel()
  if x.size and (x.min() < 0 or x.max() >= len(_PROBS)):
    return f"class indices outside [0, {len(_PROBS)})"
  counts = np.bincount(x, minlength=len(_PROBS))
  p = stats.chisquare(counts, _PROBS * x.size).pvalue
  return None if p >= P_MIN else f"chi-square against {_PROBS.tolist()}: p = {p:.3g}"


# RandomShuffle: 256 rows, each spelling its index in 8 bits (0/1 in every dtype): 2048
# values, so one call gives the harness enough samples.
_SHUFFLE_BITS = 8
_SHUFFLE_ROWS = (np.arange(2**_SHUFFLE_BITS)[:, None] >> np.arange(_SHUFFLE_BITS)) & 1


def _shuffle_example(dtype):
  return st.just(Example({"value": _SHUFFLE_ROWS.astype(D.np_dtype(dtype))}))


def _shuffle_check(samples, dtype):
  """Samples are shuffled copies of `_SHUFFLE_ROWS`: each must be a permutation of its
  rows, and the (row index, position) quarters must be independent (chi-square of their
  4x4 table: 16 expected counts per cell per draw)."""
  from scipy import stats
  rows, bits = _SHUFFLE_ROWS.shape
  x = np.asarray(samples)
  if x.size % _SHUFFLE_ROWS.size:
    return f"{x.size} values are not whole {list(_SHUFFLE_ROWS.shape)} draws"
  spelled = (x.reshape(-1, rows, bits) != 0).astype(np.int64)
  ids = (spelled << np.arange(bits)).sum(axis=2)  # [draw, position] -> row index
  if not np.all(np.sort(ids, axis=1) == np.arange(rows)):
    return "draws are not permutations of the input's rows"
  position = np.broadcast_to(np.arange(rows), ids.shape)
  table = np.zeros((4, 4))
  np.add.at(table, (ids * 4 // rows, position * 4 // rows), 1)
  p = stats.chisquare(table.ravel()).pvalue
  return None if p >= P_MIN else f"(index, position) quarters: chi-square p = {p:.3g}"


def _gamma_example(dtype):
  return st.tuples(_sample_shapes(scalar=False), st.sampled_from(INDEX_DTYPES)).map(
      lambda t: Example({"shape": _shape_array(t[0], t[1]),
                         "alpha": np.array([1.5], D.np_dtype(dtype))}))


def _poisson_example(rate_dtypes=None):
  """A shape and rate 4, of a dtype from `rate_dtypes` (None: the output's dtype)."""
  def example(dtype):
    rates = st.sampled_from(rate_dtypes) if rate_dtypes else st.just(dtype)
    return st.tuples(_sample_shapes(scalar=False), st.sampled_from(INDEX_DTYPES), rates).map(
        lambda t: Example({"shape": _shape_array(t[0], t[1]),
                           "rate": np.array(4, D.np_dtype(t[2]))}, {"dtype": dtype}))
  return example


def _legacy_poisson_build(example):
  """RandomPoisson was removed in GraphDef version 25: TF builds and runs it only in graphs
  of an older producer. Traced (for tf2jax), the body imports such a GraphDef into the
  tf.function; called eagerly (the reference), it runs that GraphDef in a TF1 session, so
  the reference is TF's own RandomPoisson CPU kernel. The shape and rate are constants of
  that GraphDef (an imported placeholder would stay in the tf.function, unfed)."""
  import tensorflow as tf
  from tensorflow.core.framework import graph_pb2
  gd = graph_pb2.GraphDef()
  gd.versions.producer = 24
  for name in ("shape", "rate"):
    value = np.asarray(example.inputs[name])
    node = gd.node.add(name=name, op="Const")
    node.attr["dtype"].type = tf.as_dtype(value.dtype).as_datatype_enum
    node.attr["value"].tensor.CopyFrom(tf.make_tensor_proto(value))
  node = gd.node.add(name="poisson", op="RandomPoisson", input=["shape", "rate"])
  node.attr["S"].type = tf.as_dtype(example.inputs["shape"].dtype).as_datatype_enum
  node.attr["dtype"].type = tf.as_dtype(D.np_dtype(example.attrs["dtype"])).as_datatype_enum

  def body():
    if tf.executing_eagerly():
      graph = tf.Graph()
      with graph.as_default():
        tf.graph_util.import_graph_def(gd, name="")
      with tf.compat.v1.Session(graph=graph) as session:
        out = session.run("poisson:0")
      return tf.constant(out)
    return tf.graph_util.import_graph_def(gd, return_elements=["poisson:0"],
                                          name="legacy")[0]
  return body


def _ptn_example(dtype):
  return st.one_of(st.sampled_from([(1, 2048), (3, 700)]),
                   st.sampled_from([(0, 5), (3, 0)])).map(
      lambda t: Example({"shape": np.array(t, np.int32), "means": np.array(1.0, dtype),
                         "stdevs": np.array(2.0, dtype), "minvals": np.array(-1.0, dtype),
                         "maxvals": np.array(4.0, dtype)}))


def _rng_specs() -> list[OpSpec]:
  from scipy import stats
  shape = dict(dtype_attr="dtype", static_inputs=("shape",))
  return [
      _rng_spec("RandomUniform", _shape_example,
                _ks("uniform", "U[0, 1)", 0.0, 1.0, hi_open=True), **shape),
      _rng_spec("RandomStandardNormal", _shape_example, _ks("norm", "N(0, 1)"), **shape),
      _rng_spec("TruncatedNormal", _shape_example,
                _ks(stats.truncnorm(-2, 2).cdf, "N(0, 1) truncated to [-2, 2]", -2.0, 2.0),
                **shape),
      _rng_spec("RandomUniformInt", _uniform_int_example,
                lambda x, d: _chi_square(stats.randint(0, 10).pmf, "[0, 10) (samples + 3)")(
                    np.asarray(x, np.int64) + 3, d),
                "Bounds [-3, 7).", dtype_attr="Tout", static_inputs=("shape",)),
      _rng_spec("Multinomial", _multinomial_example, _categorical,
                "Every row has probabilities (0.2, 0.3, 0.5); output_dtype int32 or int64.",
                static_inputs=("num_samples",)),
      _rng_spec("RandomShuffle", _shuffle_example, _shuffle_check,
                "256 rows spelling their index in 8 bits: every draw must be a "
                "permutation of the rows, and a 4x4 table of (index, position) quarters "
                "over the draws must be uniform (chi-square)."),
      _rng_spec("RandomGamma", _gamma_example,
                _ks(stats.gamma(1.5).cdf, "Gamma(1.5)", 0.0), "alpha = [1.5].",
                static_inputs=("shape",)),
      _rng_spec("RandomPoissonV2", _poisson_example(
                    ("float16", "float32", "float64", "int32", "int64")),
                _chi_square(stats.poisson(4.0).pmf, "Poisson(4)"),
                "rate = 4, of dtype (R) float16, float32, float64, int32 or int64.",
                **shape),
      _rng_spec("RandomPoisson", _poisson_example(),
                _chi_square(stats.poisson(4.0).pmf, "Poisson(4)"),
                "rate = 4. TF builds and runs RandomPoisson only in graphs older than "
                "GraphDef version 25: the spec imports such a GraphDef into the "
                "tf.function, and TF's reference runs it in a TF1 session.",
                build=_legacy_poisson_build, dtype_attr="dtype",
                static_inputs=("shape", "rate")),
      _rng_spec("ParameterizedTruncatedNormal", _ptn_example,
                _ks(stats.truncnorm(-1.0, 1.5, loc=1.0, scale=2.0).cdf,
                    "N(1, 2^2) truncated to [-1, 4]", -1.0, 4.0),
                "Scalar parameters mean 1, stdev 2, bounds [-1, 4].", **shape),
  ]


# Host samplers: gamma, Poisson, binomial, multinomial, shuffle -------------------------


_HOST_NOTES = (" Computed like TF's kernel in double with libm (log, log1p, exp, pow, lgamma, "
               "sincos) on the host: a pure_callback under jit and vmap.")


def _sample_dims():
  return cst.shapes(max_dims=2, min_side=0, max_side=4, max_size=12)


def _param_arrays(values, dtype, max_size=6):
  """Parameter arrays (0-2 dims) whose elements come from `values` (edge cases)."""
  npd = D.np_dtype(dtype)
  return cst.shapes(max_dims=2, min_side=1, max_side=3, max_size=max_size).flatmap(
      lambda shape: st.lists(values, min_size=int(np.prod(shape)),
                             max_size=int(np.prod(shape))).map(
          lambda xs: np.array(xs, np.float64).astype(npd).reshape(shape)))


_ALPHAS = st.one_of(
    st.sampled_from([1.0, 0.5, 0.05, 0.3, 0.9, 1.5, 2.5, 7.0, 30.0, 1e-3, 0.0, -0.3, -1.0,
                     np.nan]),
    st.floats(0.01, 50.0))


def _stateless_gamma_example(op):
  def example(dtype):
    def make(t):
      dims, alpha, seed_or_kc, alg, shape_dtype = t
      inputs = {"shape": _shape_array(tuple(dims) + alpha.shape, shape_dtype)}
      if op == "StatelessRandomGammaV2":
        inputs["seed"] = seed_or_kc
      else:
        inputs["key"], inputs["counter"] = seed_or_kc
        inputs["alg"] = np.array(alg, np.int32)
      inputs["alpha"] = alpha
      return Example(inputs)
    keys = _seeds() if op == "StatelessRandomGammaV2" else _key_counters()
    return st.tuples(_sample_dims(), _param_arrays(_ALPHAS, dtype), keys,
                     st.sampled_from([1, 3]), st.sampled_from(INDEX_DTYPES)).map(make)
  return example


_RATES = st.one_of(st.sampled_from([0.0, 0.5, 3.0, 9.99, 10.0, 12.0, 25.0, 150.0, 1e4, -1.0,
                                    np.inf]),
                   st.floats(0.0, 200.0))
_INT_RATES = st.sampled_from([0, 1, 3, 9, 10, 12, 25, 150, 10000, -1])


def _poisson_v1_example(dtype):
  def make(t):
    dims, rate, seed, shape_dtype = t
    return Example({"shape": _shape_array(tuple(dims) + rate.shape, shape_dtype),
                    "seed": seed, "lam": rate}, {"dtype": dtype})
  rate = st.sampled_from(["float16", "float32", "float64", "int32", "int64"]).flatmap(
      lambda r: _param_arrays(_INT_RATES if r.startswith("int") else _RATES, r))
  return st.tuples(_sample_dims(), rate, _seeds(), st.sampled_from(INDEX_DTYPES)).map(make)


_COUNTS = st.one_of(st.sampled_from([0.0, 1.0, 5.0, 20.0, 50.0, 100.0, 1000.0, -3.0, 37.0]),
                    st.floats(0.0, 2000.0).map(round))
_PROBS_EDGE = st.one_of(st.sampled_from([0.0, 1.0, 0.5, 0.3, 0.7, 0.01, 0.99, 0.05, 0.95,
                                         -0.1, 1.2]),
                        st.floats(0.0, 1.0))


def _binomial_example(op):
  def example(dtype):
    def make(t):
      dims, counts, probs, t_dtype, seed, shape_dtype, extra = t
      batch = np.broadcast_shapes(counts.shape, probs.shape)
      inputs = {"shape": _shape_array(tuple(dims) + batch, shape_dtype)}
      if op == "StatelessRandomBinomial":
        inputs["seed"] = seed
      inputs["counts"], inputs["probs"] = counts, probs
      attrs = {"dtype": dtype}
      if op == "StatefulRandomBinomial":
        # The generator's int64 state needs x64 under jit: a 64-bit dtype among the
        # attrs makes the harness run with it (the build passes only `dtype` to TF).
        attrs["state_dtype"] = "int64"
      return Example(inputs, attrs, extra)
    # Broadcastable counts and probs: one of them may drop or squeeze dimensions.
    shapes = cst.shapes(max_dims=2, min_side=1, max_side=3, max_size=6).flatmap(
        lambda s: st.tuples(st.just(s), st.sampled_from(
            [s, s[1:], tuple(1 if i == 0 else d for i, d in enumerate(s))])))
    # No NaN probabilities: TF leaves integer outputs uninitialized for them.
    def arrays(t):
      (cs, ps), t_dtype = t
      npd = D.np_dtype(t_dtype)
      return st.tuples(
          st.lists(_COUNTS, min_size=int(np.prod(cs)), max_size=int(np.prod(cs))).map(
              lambda xs: np.array(xs, np.float64).astype(npd).reshape(cs)),
          st.lists(_PROBS_EDGE, min_size=int(np.prod(ps)), max_size=int(np.prod(ps))).map(
              lambda xs: np.array(xs, np.float64).astype(npd).reshape(ps)),
          st.just(t_dtype))
    params = st.tuples(shapes, st.sampled_from(["float16", "float32", "float64"])).flatmap(
        arrays)
    stateful = op == "StatefulRandomBinomial"
    state = _generator_state() if stateful else st.none()
    # TF's StatefulRandomBinomial aborts the process for an int64 shape (S = int64).
    shape_dtypes = st.just("int32") if stateful else st.sampled_from(INDEX_DTYPES)
    return st.tuples(_sample_dims(), params, _seeds(), shape_dtypes, state).map(lambda t: make((t[0], t[1][0], t[1][1], t[1][2], t[2], t[3],
                                                {"state": t[4]})))
  return example


def _stateful_binomial_build(example):
  import tensorflow as tf
  from tensorflow.python.ops import resource_variable_ops
  counter0, counter1, key = example.extra["state"]
  g = tf.random.Generator.from_key_counter(key, [counter0, counter1], "philox")
  dtype = tf.as_dtype(D.np_dtype(example.attrs["dtype"]))

  def body(counts, probs):
    resource_variable_ops.variable_accessed(g.state)
    out = tf.raw_ops.StatefulRandomBinomial(
        resource=g.state.handle, algorithm=tf.constant(1, tf.int64),
        shape=tf.constant(example.inputs["shape"]), counts=counts, probs=probs, dtype=dtype)
    return out
  return body


_LOGITS = st.one_of(st.sampled_from([0.0, -np.inf, np.nan, np.inf, 30.0, -30.0]),
                    st.floats(-5.0, 5.0))


def _multinomial_v1_example(dtype):
  def make(t):
    logits, n, seed, out_dtype = t
    return Example({"logits": logits, "num_samples": np.array(n, np.int32), "seed": seed},
                   {"output_dtype": out_dtype})
  logits = st.tuples(st.integers(0, 4), st.integers(1, 6)).flatmap(
      lambda bc: st.lists(st.one_of(st.floats(-5.0, 5.0), _LOGITS), min_size=bc[0] * bc[1],
                          max_size=bc[0] * bc[1]).map(
          lambda xs: np.array(xs, np.float64).astype(D.np_dtype(dtype)).reshape(bc)))
  return st.tuples(logits, st.integers(0, 20), _seeds(),
                   st.sampled_from(INDEX_DTYPES)).map(make)


def _shuffle_v2_example(dtype):
  def make(t):
    value, (key, counter), alg = t
    return Example({"value": value, "key": key, "counter": counter,
                    "alg": np.array(alg, np.int32)})
  values = st.one_of(cst.shapes(max_dims=3, max_side=6, max_size=48),
                     st.sampled_from([(40,), (0, 3), (1, 5)])).flatmap(
      lambda shape: cst.arrays(dtype, shape))
  return st.tuples(values, _key_counters(), st.sampled_from([1, 3])).map(make)


# (mean, stddev, minval, maxval) covering TF's three samplers: normal rejection (a bound
# 1.3 stddevs out on the mean's side), uniform rejection (narrow intervals) and
# exponential rejection (one bound far out), one-sided and mirrored intervals.
_PTN_PARAMS = [(0.0, 1.0, -10.0, 10.0), (0.0, 1.0, 0.5, 0.9), (0.0, 1.0, 2.0, 3.0),
               (1.0, 2.0, -1.0, 4.0), (0.0, 1.0, 3.0, np.inf), (0.0, 1.0, -np.inf, -3.0),
               (5.0, 0.5, -1.0, 4.0), (-2.0, 3.0, -2.5, -1.5), (0.0, 1.0, -0.2, 0.3),
               (0.0, 1.0, -np.inf, 0.1), (1.0, 0.1, 1.0, 1.05)]


def _ptn_v1_example(dtype):
  """Each batch member gets one of `_PTN_PARAMS`; when they all get the same one, the
  stddevs and bounds are scalars broadcast against the means."""
  npd = D.np_dtype(dtype)

  def make(t):
    dims, batch, rows, seed, shape_dtype = t
    table = np.array([_PTN_PARAMS[i] for i in rows], np.float64).reshape(batch + (4,))
    shared = len(set(rows)) == 1
    inputs = {"shape": _shape_array(tuple(dims) + batch, shape_dtype), "seed": seed}
    for j, name in enumerate(["means", "stddevs", "minvals", "maxvals"]):
      column = table[..., j]
      if shared and j > 0:
        column = column.reshape(-1)[0]
      inputs[name] = np.asarray(column).astype(npd)
    return Example(inputs)
  batch = st.sampled_from([(), (1,), (3,), (2, 2)])
  return st.tuples(_sample_dims(), batch).flatmap(lambda db: st.tuples(
      st.just(db[0]), st.just(db[1]),
      st.lists(st.integers(0, len(_PTN_PARAMS) - 1), min_size=int(np.prod(db[1])),
               max_size=int(np.prod(db[1]))),
      _seeds(), st.sampled_from(INDEX_DTYPES))).map(make)


# d sample / d alpha, on the dtypes TF's RandomGammaGrad takes. TF (Eigen) and JAX
# approximate the implicit derivative with different series: over 200,000 (alpha,
# sample) pairs, alpha log-uniform in [1e-3, 1e3], they differ by up to 9.3e-5 (float32)
# and 3.6e-13 (float64) relative. The gradient sums cotangent * derivative over the
# sample dims, where terms of both signs cancel, hence the same bound in absolute terms.
_GAMMA_GRAD = dict(grad_inputs=("alpha",), grad_dtypes=("float32", "float64"),
                   grad_tolerance={"float32": Tolerance(2e-4, 2e-4),
                                   "float64": Tolerance(1e-12, 1e-12)})


def _host_specs() -> list[OpSpec]:
  return [
      OpSpec("StatelessRandomGammaV2", _stateless_gamma_example("StatelessRandomGammaV2"),
             dtype_attr="dtype", static_inputs=("shape",),
             transforms=STATELESS_TRANSFORMS + ("grad",), tolerance=_exact, **_GAMMA_GRAD,
             notes="Bit-exact. " + _SEED_NOTES + " Alphas below, at and above 1, tiny, 0, "
                   "negative and NaN; shape = sample dims + alpha's shape. Gradient "
                   "w.r.t. alpha (implicit reparameterization, RandomGammaGrad) on float32 "
                   "and float64, the dtypes TF differentiates." + _HOST_NOTES),
      OpSpec("StatelessRandomGammaV3", _stateless_gamma_example("StatelessRandomGammaV3"),
             dtype_attr="dtype", static_inputs=("shape", "alg"),
             transforms=STATELESS_TRANSFORMS + ("grad",), tolerance=_exact, **_GAMMA_GRAD,
             notes="Bit-exact over uint64 keys and counters (whole range), algorithm 1 or "
                   "3. Gradient w.r.t. alpha on float32 and float64." + _HOST_NOTES),
      OpSpec("StatelessRandomPoisson", _poisson_v1_example, dtype_attr="dtype",
             static_inputs=("shape",), transforms=STATELESS_TRANSFORMS, tolerance=_exact,
             notes="Bit-exact. Rates of every Rtype: 0, negative, below and above 10 "
                   "(Knuth / Hormann), 1e4 and +inf; NaN rates are left out (TF's kernel "
                   "never returns for them; tf2jax raises)." + _HOST_NOTES),
      OpSpec("StatelessRandomBinomial", _binomial_example("StatelessRandomBinomial"),
             dtype_attr="dtype", static_inputs=("shape",), transforms=STATELESS_TRANSFORMS,
             tolerance=_exact,
             notes="Bit-exact. Counts (0, negative, up to 2000) and probabilities (0, 1, "
                   "0.5, out of [0, 1]) of every T, broadcast together, both samplers "
                   "(inversion and BTRS) on both sides of 0.5. NaN probabilities are left "
                   "out: TF leaves integer outputs uninitialized for them." + _HOST_NOTES),
      OpSpec("StatefulRandomBinomial", _binomial_example("StatefulRandomBinomial"),
             dtype_attr="dtype", build=_stateful_binomial_build, variables=True,
             static_inputs=("shape",),
             transforms=("jit",), tolerance=_exact,
             notes="Bit-exact numbers and state: the stateless sampler from the old state, "
                   "then the counter skips 256 * (num_batches * 200 * (samples_per_batch + "
                   "3) / 4), as TF's kernel reserves."),
      OpSpec("StatelessMultinomial", _multinomial_v1_example, static_inputs=("num_samples",),
             transforms=STATELESS_TRANSFORMS, tolerance=_exact,
             notes="Bit-exact for batches TF samples on one thread (these). Logits with "
                   "-inf, +inf and NaN (left out of the distribution, as TF does; a row "
                   "with none finite gives num_classes). TF shards large batches by its "
                   "thread count, so its own results then differ between machines; "
                   "tf2jax gives its one-thread result." + _HOST_NOTES),
      OpSpec("StatelessParameterizedTruncatedNormal", _ptn_v1_example, dtype_attr="dtype",
             static_inputs=("shape",), transforms=STATELESS_TRANSFORMS, tolerance=_exact,
             notes="Bit-exact, in T arithmetic with glibc's logf/expf (float, half) or "
                   "log/exp (double): parameter sets for each of TF's three samplers "
                   "(normal, uniform and exponential rejection), scalar or per batch "
                   "member. Outputs stay below the size at which TF shards the work by "
                   "its thread count (its results then depend on the machine; tf2jax "
                   "gives the one-thread result)." + _HOST_NOTES),
      OpSpec("StatelessShuffle", _shuffle_v2_example, skip_dtypes={},
             static_inputs=("alg",), transforms=STATELESS_TRANSFORMS, tolerance=_exact,
             notes="Bit-exact: TF's forward Fisher-Yates, word % (n - i) from the "
                   "sequential Philox stream of the key and counter, drawn on the host; "
                   "rows are gathered in JAX."),
  ]


def specs() -> list[OpSpec]:
  return _stateless_specs() + _generator_specs() + _rng_specs() + _host_specs()
