"""Conformance specs of the random plugin's ops (tf2jax_conformance is a test dependency,
imported inside `specs()`).

- Stateless ops: compared with TF *exactly* (tolerance 0 for every dtype) over seeds,
  keys and counters drawn from their whole range (edge values included), shapes with
  0-sized dimensions and sizes cutting a Philox block, and both algorithms TF's CPU
  kernels accept (1 Philox, 3 auto-select); eagerly, under jit, with every input baked
  in (static), with x64 and under vmap over seeds/keys/counters.
- tf.random.Generator ops: the generator's state variable is a param; numbers and the
  advanced state are compared exactly (jit too).
- Ops drawn from the `rng` key: TF's shapes and dtypes exactly, and the pooled samples
  pass a Kolmogorov-Smirnov or chi-square test at p > 1e-6 (fixed keys per example).
"""

from __future__ import annotations

import numpy as np

_P = 1e-6  # significance threshold of the statistical checks
_STATELESS_TRANSFORMS = ("jit", "static", "x64", "vmap")
_RNG_TRANSFORMS = ("jit", "x64")


def specs() -> list:
  from hypothesis import strategies as st

  from tf2jax_conformance import strategies as cst
  from tf2jax_conformance.spec import EXACT, Example, OpSpec

  exact = lambda dtype, example: EXACT  # noqa: E731

  # Strategies -------------------------------------------------------------------------

  def shapes():
    # 0-sized dims, and sizes cutting the last Philox call (4 or 2 values per call).
    return st.one_of(cst.shapes(max_dims=3, max_side=6, max_size=40),
                     st.sampled_from([(0,), (1025,), (3, 0, 2)]))

  def sample_shapes():
    """Shapes of ops checked statistically: empty, or at least 1000 values, so that the
    harness needs few calls to pool its samples."""
    return st.one_of(st.sampled_from([(0,), (4, 0)]),
                     st.integers(1000, 2100).map(lambda n: (n,)),
                     st.tuples(st.integers(20, 40), st.integers(50, 60)),
                     st.tuples(st.integers(2, 3), st.integers(10, 12), st.integers(40, 50)))

  def ints(dtype):
    info = np.iinfo(dtype)
    lo, hi = int(info.min), int(info.max)
    edges = [0, 1, -1, lo, hi, lo + 1, hi - 1, 2**31, 2**32 - 1, 2**32]
    edges = [e for e in edges if lo <= e <= hi]
    return st.one_of(st.sampled_from(edges), st.integers(lo, hi))

  def seeds():
    return st.sampled_from(["int32", "int64"]).flatmap(
        lambda d: st.tuples(ints(d), ints(d)).map(lambda s: np.array(s, d)))

  def key_counters():
    u64 = ints("uint64")
    return st.tuples(u64, u64, u64).map(
        lambda t: (np.array([t[0]], np.uint64), np.array([t[1], t[2]], np.uint64)))

  def shape_array(shape, dtype="int32"):
    return np.array(shape, dtype).reshape(len(shape))

  def int_range(dtype):
    """minval < maxval (TF refuses minval >= maxval for non-empty outputs; with traced
    bounds the converted function cannot)."""
    return st.tuples(ints(dtype), ints(dtype)).filter(lambda t: t[0] != t[1]).map(
        lambda t: (np.array(min(t), dtype), np.array(max(t), dtype)))

  # Stateless V1: (shape, seed) ----------------------------------------------------------

  def v1_example(op):
    def example(dtype):
      base = st.tuples(shapes(), seeds(), st.sampled_from(["int32", "int64"]))
      if op == "StatelessRandomUniformInt":
        return st.tuples(base, int_range(dtype)).map(lambda t: Example(
            {"shape": shape_array(t[0][0], t[0][2]), "seed": t[0][1],
             "minval": t[1][0], "maxval": t[1][1]}))
      return base.map(lambda t: Example(
          {"shape": shape_array(t[0], t[2]), "seed": t[1]}, {"dtype": dtype}))
    return example

  seed_notes = ("Seeds are int32 or int64 over their whole range; TF sign-extends them to "
                "64 bits before its seed scramble.")
  out = []
  for op in ["StatelessRandomUniform", "StatelessRandomNormal", "StatelessTruncatedNormal",
             "StatelessRandomUniformInt", "StatelessRandomUniformFullInt"]:
    out.append(OpSpec(
        op, v1_example(op), dtype_attr="dtype", static_inputs=("shape",),
        transforms=_STATELESS_TRANSFORMS, tolerance=exact,
        notes="Bit-exact. " + seed_notes + (
            " Normals use glibc's logf/sincosf (float) through a port checked on every "
            "input Box-Muller can give them, and libm's log/sincos (double) through a "
            "host callback." if "Normal" in op else "")))

  # Stateless V2: (shape, key, counter, alg) --------------------------------------------

  def v2_example(op):
    def example(dtype):
      base = st.tuples(shapes(), key_counters(), st.sampled_from([1, 3]),
                       st.sampled_from(["int32", "int64"]))

      def make(t, bounds=None):
        (shape, (key, counter), alg, shape_dtype) = t
        inputs = {"shape": shape_array(shape, shape_dtype), "key": key,
                  "counter": counter, "alg": np.array(alg, np.int32)}
        if bounds is not None:
          inputs["minval"], inputs["maxval"] = bounds
          return Example(inputs)
        return Example(inputs, {"dtype": dtype})
      if op == "StatelessRandomUniformIntV2":
        return st.tuples(base, int_range(dtype)).map(lambda t: make(t[0], t[1]))
      return base.map(make)
    return example

  for op in ["StatelessRandomUniformV2", "StatelessRandomNormalV2",
             "StatelessTruncatedNormalV2", "StatelessRandomUniformIntV2",
             "StatelessRandomUniformFullIntV2"]:
    out.append(OpSpec(
        op, v2_example(op), dtype_attr="dtype", static_inputs=("shape", "alg"),
        transforms=_STATELESS_TRANSFORMS, tolerance=exact,
        notes="Bit-exact. Keys and counters are uint64 over their whole range, so the "
              "cases run with x64; the algorithm is 1 (Philox) or 3 (auto-select), which "
              "TF's CPU kernels map to Philox (ThreeFry, 2, has no CPU kernel)."))

  # Seeds to keys and counters -----------------------------------------------------------

  def seed_example(dtype):
    return st.tuples(ints(dtype), ints(dtype)).map(
        lambda s: Example({"seed": np.array(s, dtype)}))

  for op in ["StatelessRandomGetKeyCounter", "StatelessRandomGetKeyCounterAlg"]:
    out.append(OpSpec(op, seed_example, dtype_attr="Tseed", transforms=_STATELESS_TRANSFORMS,
                      tolerance=exact, notes="Bit-exact (TF's seed scramble). " + seed_notes))
  out.append(OpSpec(
      "StatelessRandomGetAlg", lambda dtype: st.just(Example({})), dtype_attr=None,
      dtypes=("int32",), transforms=("jit", "static", "x64"), tolerance=exact,
      notes="TF's CPU kernel returns 1 (Philox)."))

  # tf.random.Generator ---------------------------------------------------------------------

  def generator_example(op):
    def example(dtype):
      def make(t):
        shape, state, bounds = t
        return Example({}, {"shape_dtype": "int64", "dtype": dtype},
                       {"shape": shape, "state": state, "bounds": bounds})
      state = st.tuples(ints("int64"), ints("int64"), ints("int64"))
      bounds = int_range(dtype).map(lambda b: (int(b[0]), int(b[1]))) \
          if op == "StatefulUniformInt" else st.none()
      return st.tuples(shapes(), state, bounds).map(make)
    return example

  def generator_build(op):
    def build(example):
      import tensorflow as tf
      from tensorflow.python.ops import resource_variable_ops
      counter0, counter1, key = example.extra["state"]
      g = tf.random.Generator.from_key_counter(key, [counter0, counter1], "philox")
      dtype = tf.as_dtype(example.attrs["dtype"])
      dims = example.extra["shape"]
      shape = tf.constant(dims, tf.int64, shape=[len(dims)])

      def body():
        resource_variable_ops.variable_accessed(g.state)  # as Generator methods do
        kwargs = dict(resource=g.state.handle, algorithm=tf.constant(1, tf.int64),
                      shape=shape)
        if op == "StatefulUniformInt":
          lo, hi = example.extra["bounds"]
          kwargs["minval"], kwargs["maxval"] = tf.constant(lo, dtype), tf.constant(hi, dtype)
        else:
          kwargs["dtype"] = dtype
        return getattr(tf.raw_ops, op)(**kwargs)
      return body
    return build

  for op in ["StatefulUniform", "StatefulUniformFullInt", "StatefulUniformInt",
             "StatefulStandardNormalV2", "StatefulTruncatedNormal"]:
    out.append(OpSpec(
        op, generator_example(op), dtype_attr="dtype", build=generator_build(op),
        variables=True, transforms=("jit",), tolerance=exact,
        notes="Bit-exact numbers and state: a Philox generator with a drawn state "
              "[counter_lo, counter_hi, key] (whole int64 range, so counters carry and "
              "wrap); the state is int64, so the cases run with x64 (shape_dtype int64)."))

  def skip_example(dtype):
    return st.tuples(st.tuples(ints("int64"), ints("int64"), ints("int64")),
                     st.one_of(ints("uint64"), st.integers(0, 2**20)), st.sampled_from([1, 3])
                     ).map(lambda t: Example({}, {"delta_dtype": "uint64"},
                                             {"state": t[0], "delta": t[1], "alg": t[2]}))

  def skip_build(op):
    def build(example):
      import tensorflow as tf
      from tensorflow.python.ops import resource_variable_ops
      counter0, counter1, key = example.extra["state"]
      g = tf.random.Generator.from_key_counter(key, [counter0, counter1], "philox")
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

  for op in ["RngReadAndSkip", "RngSkip"]:
    out.append(OpSpec(
        op, skip_example, dtype_attr=None, dtypes=("int64",), build=skip_build(op),
        variables=True, transforms=("jit",), tolerance=exact,
        notes="Exact: the state advances by 256 * delta computed in 64 bits (wrapping), "
              "added with TF's PhiloxRandom::Skip carries; deltas over the whole uint64 "
              "range."))

  # Ops drawn from the rng key ------------------------------------------------------------

  from scipy import stats

  def ks(cdf, what):
    def check(samples, dtype):
      x = np.asarray(samples, np.float64).ravel()
      p = stats.kstest(x, cdf).pvalue
      return None if p > _P else f"KS test against {what}: p = {p:.3g} <= {_P}"
    return check

  def chi_square(dist, what):
    """Chi-square over the values with at least 5 expected counts (the rest pooled)."""
    def check(samples, dtype):
      x = np.asarray(samples, np.float64).ravel()
      if np.any(x != np.round(x)) or np.any(x < 0):
        return f"samples of {what} must be non-negative integers"
      k = np.arange(int(x.max()) + 1)
      expected = dist.pmf(k) * len(x)
      keep = expected >= 5
      observed = np.bincount(x.astype(np.int64), minlength=len(k))
      obs, exp = observed[keep], expected[keep]
      rest = len(x) - exp.sum()
      if rest > 1e-6 * len(x):  # values with few expected counts (tail included) pooled
        obs, exp = np.append(obs, observed[~keep].sum()), np.append(exp, rest)
      else:
        exp = exp * (obs.sum() / exp.sum())
      p = stats.chisquare(obs, exp).pvalue
      return None if p > _P else f"chi-square against {what}: p = {p:.3g} <= {_P}"
    return check

  def shape_only(dtype):
    return st.tuples(sample_shapes(), st.sampled_from(["int32", "int64"])).map(
        lambda t: Example({"shape": shape_array(t[0], t[1])}, {"dtype": dtype}))

  stat_notes = ("Drawn from the rng key: shapes and dtypes are TF's; values are checked "
                "statistically (p > 1e-6 on at least 2000 pooled samples), not against TF's.")

  # RandomUniform and RandomStandardNormal have their specs in specs.py.
  out += [
      OpSpec("TruncatedNormal", shape_only, dtype_attr="dtype", static_inputs=("shape",),
             transforms=_RNG_TRANSFORMS, rng=True,
             statistical=ks(stats.truncnorm(-2, 2).cdf, "N(0, 1) truncated to [-2, 2]"),
             notes=stat_notes),
  ]

  def uniform_int_example(dtype):
    return sample_shapes().map(lambda s: Example(
        {"shape": shape_array(s), "minval": np.array(-3, dtype),
         "maxval": np.array(7, dtype)}))

  out.append(OpSpec(
      "RandomUniformInt", uniform_int_example, dtype_attr="Tout", static_inputs=("shape",),
      transforms=_RNG_TRANSFORMS, rng=True,
      statistical=lambda x, d: chi_square(stats.randint(0, 10), "uniform on [-3, 7)")(
          np.asarray(x, np.int64) + 3, d),
      notes=stat_notes + " Bounds [-3, 7)."))

  probs = np.array([0.2, 0.3, 0.5])

  def np_dtype(dtype):
    import ml_dtypes
    return np.dtype(ml_dtypes.bfloat16) if dtype == "bfloat16" else np.dtype(dtype)

  def multinomial_example(dtype):
    logits = np.log(probs)
    batch_samples = st.one_of(st.sampled_from([(0, 5), (3, 0)]),
                              st.tuples(st.integers(1, 4), st.integers(1000, 1200)))
    return st.tuples(batch_samples, st.sampled_from(["int32", "int64"])).map(
        lambda t: (t[0][0], t[0][1], t[1])).map(lambda t: Example(
                         {"logits": np.tile(logits, (t[0], 1)).astype(np_dtype(dtype)),
                          "num_samples": np.array(t[1], np.int32)},
                         {"output_dtype": t[2]}))

  def multinomial_build(example):
    import tensorflow as tf
    n = example.inputs["num_samples"]
    out_dtype = tf.as_dtype(example.attrs["output_dtype"])
    return lambda logits: tf.raw_ops.Multinomial(logits=logits, num_samples=n,
                                                 output_dtype=out_dtype)

  out.append(OpSpec(
      "Multinomial", multinomial_example, dtype_attr="T", static_inputs=("num_samples",),
      build=multinomial_build, transforms=_RNG_TRANSFORMS, rng=True,
      statistical=lambda x, d: _categorical(x, probs, _P),
      notes=stat_notes + " Every row has probabilities (0.2, 0.3, 0.5)."))

  def shuffle_example(dtype):
    # 64 rows, each spelling its index in 6 bits (0/1 in every dtype, bool included).
    rows = (np.arange(64)[:, None] >> np.arange(6)[None, :]) & 1
    return st.just(Example({"value": rows.astype(np_dtype(dtype))}))

  out.append(OpSpec(
      "RandomShuffle", shuffle_example, dtype_attr="T", transforms=_RNG_TRANSFORMS, rng=True,
      statistical=_shuffle_check,
      notes=stat_notes + " 64 rows spelling their index in bits: every draw must be a "
                         "permutation of the rows, and a 4x4 table of (index, position) "
                         "quarters over the draws must be uniform (chi-square)."))

  def gamma_example(dtype):
    return sample_shapes().map(lambda s: Example(
        {"shape": shape_array(s), "alpha": np.array([1.5], np.dtype(dtype))}))

  out.append(OpSpec(
      "RandomGamma", gamma_example, dtype_attr="T", static_inputs=("shape",),
      transforms=_RNG_TRANSFORMS, rng=True, statistical=ks(stats.gamma(1.5).cdf,
                                                           "Gamma(1.5)"),
      notes=stat_notes + " alpha = [1.5]."))

  def poisson_example(dtype):
    return st.tuples(sample_shapes(),
                     st.sampled_from(["float32", "float64", "int32", "int64"])
                     ).map(lambda t: Example(
                         {"shape": shape_array(t[0]), "rate": np.array(
                             4.0 if t[1].startswith("float") else 4, t[1])},
                         {"dtype": dtype}))

  out.append(OpSpec(
      "RandomPoissonV2", poisson_example, dtype_attr="dtype", static_inputs=("shape",),
      transforms=_RNG_TRANSFORMS, rng=True,
      statistical=chi_square(stats.poisson(4.0), "Poisson(4)"),
      notes=stat_notes + " rate = 4 (float or int). RandomPoisson (V1) has no spec: TF "
                         "refuses to build it in graphs newer than GraphDef version 24."))

  def ptn_example(dtype):
    return st.one_of(st.sampled_from([(0, 5), (3, 0)]), st.tuples(
        st.integers(1, 3), st.integers(700, 1000))).map(lambda t: Example(
        {"shape": np.array([t[0], t[1]], np.int32), "means": np.array(1.0, dtype),
         "stdevs": np.array(2.0, dtype), "minvals": np.array(-1.0, dtype),
         "maxvals": np.array(4.0, dtype)}))

  out.append(OpSpec(
      "ParameterizedTruncatedNormal", ptn_example, dtype_attr="dtype",
      static_inputs=("shape",), transforms=_RNG_TRANSFORMS, rng=True,
      statistical=ks(stats.truncnorm(-1.0, 1.5, loc=1.0, scale=2.0).cdf,
                     "N(1, 2^2) truncated to [-1, 4]"),
      notes=stat_notes + " Scalar parameters mean 1, stdev 2, bounds [-1, 4]."))
  return out


def _categorical(samples, probs, p_min):
  from scipy import stats
  x = np.asarray(samples).astype(np.int64).ravel()
  if x.size and (x.min() < 0 or x.max() >= len(probs)):
    return f"class indices outside [0, {len(probs)})"
  counts = np.bincount(x, minlength=len(probs))
  p = stats.chisquare(counts, probs * len(x)).pvalue
  return None if p > p_min else f"chi-square against {probs.tolist()}: p = {p:.3g}"


def _shuffle_check(samples, dtype):
  """Samples are shuffled [64, 6] tensors whose rows spell their index in bits."""
  from scipy import stats
  x = np.asarray(samples)
  if x.size % (64 * 6):
    return f"{x.size} values are not whole [64, 6] draws"
  bits = (x.reshape(-1, 64, 6) != 0).astype(np.int64)
  ids = (bits << np.arange(6)).sum(axis=2)  # [draws, position] -> row index
  if not np.all(np.sort(ids, axis=1) == np.arange(64)):
    return "draws are not permutations of the input's rows"
  position = np.broadcast_to(np.arange(64), ids.shape)
  table = np.zeros((4, 4))
  np.add.at(table, (ids // 16, position // 16), 1)
  p = stats.chisquare(table.ravel()).pvalue
  return None if p > _P else f"(index, position) quarters: chi-square p = {p:.3g}"
