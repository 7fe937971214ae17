"""tf2jax-random against TensorFlow.

Stateless ops and tf.random.Generator ops are compared bit for bit (on the raw bits of
the outputs) over many seeds, shapes and dtypes, eagerly, under `jit` and under `vmap`
over seeds, with and without `jax_enable_x64`. Ops drawn from the `rng` key are checked
for TF's shapes and dtypes and, statistically, for their distribution.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402
from hypothesis import given, settings, strategies as st  # noqa: E402
from scipy import stats  # noqa: E402

import tf2jax  # noqa: E402
from tf2jax_random import glibc, philox  # noqa: E402

# Output shapes per test. Philox gives 4 values per call (2 for 64-bit dtypes) and the
# last call is cut: V1 tests leave remainders 3 and 2 (mod 4) and 1 and 0 (mod 2), API
# tests 1 and 2 / 1 and 0, V2 tests 0 and 1 / 0 and 1, and hypothesis draws more.
V1_SHAPES = [(0,), (3, 5), (1026,)]
API_SHAPES = [(1,), (2, 3)]
V2_SHAPES = [(0,), (4,), (1025,)]
I32 = np.iinfo(np.int32)
I64 = np.iinfo(np.int64)
_rs = np.random.default_rng(1234)
SEEDS32 = np.concatenate([
    np.array([[0, 0], [1, 2], [-1, -1], [I32.max, I32.min], [I32.min, I32.max], [-5, 7],
              [7, -5], [I32.max, I32.max]], np.int32),
    _rs.integers(I32.min, I32.max, size=(12, 2), endpoint=True, dtype=np.int32)])
SEEDS64 = np.concatenate([
    np.array([[0, 0], [1, 2], [-1, -1], [I64.max, I64.min], [-1, 2**40], [2**32, -2**32],
              [2**31, 2**31 - 1]], np.int64),
    _rs.integers(I64.min, I64.max, size=(9, 2), endpoint=True, dtype=np.int64)])

FLOATS = [tf.float16, tf.bfloat16, tf.float32, tf.float64]
FULL_INTS = [tf.int32, tf.int64, tf.uint32, tf.uint64]
RANGE_INTS = [tf.int32, tf.int64]


def bits(x) -> np.ndarray:
  """The raw bits of an array (NaN payloads and signed zeros included)."""
  a = np.asarray(x)
  return a.view(f"u{a.dtype.itemsize}")


def assert_bits_equal(got, want, what=""):
  got, want = np.asarray(got), np.asarray(want)
  assert got.dtype == want.dtype, f"{what}: dtype {got.dtype} != TF's {want.dtype}"
  assert got.shape == want.shape, f"{what}: shape {got.shape} != TF's {want.shape}"
  np.testing.assert_array_equal(bits(got), bits(want), err_msg=what)


def x64_for(*dtypes) -> bool:
  return any(tf.as_dtype(d).size == 8 for d in dtypes)


# Philox, the seed scramble and glibc ------------------------------------------------------


@pytest.mark.parametrize("x64", [False, True])
def test_philox_known_answers(x64):
  with jax.enable_x64(x64):
    for xp in (np, jnp):
      zero = [np.uint32(0)] * 4
      out = philox.philox(xp, zero, zero[:2])
      assert [int(w) for w in out] == [0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8]
      ones = [np.uint32(0xFFFFFFFF)] * 4
      out = philox.philox(xp, ones, ones[:2])
      assert [int(w) for w in out] == [0x408F276D, 0x41C83B0E, 0xA20BC7C6, 0x6D5451FD]
      pi = [0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344]
      out = philox.philox(xp, [np.uint32(w) for w in pi], [np.uint32(0xA4093822),
                                                           np.uint32(0x299F31D0)])
      assert [int(w) for w in out] == [0xD16CFE09, 0x94FDCCEB, 0x5001E420, 0x24126EA1]


def test_add128_carries():
  m = np.uint32(0xFFFFFFFF)
  c = [m, m, m, np.uint32(5)]
  assert [int(w) for w in philox.add128(np, c, np.uint32(1))] == [0, 0, 0, 6]
  c = [m, m, m, m]
  assert [int(w) for w in philox.add128(jnp, c, np.uint32(1))] == [0, 0, 0, 0]  # mod 2**128
  c = [np.uint32(1), m, np.uint32(0), np.uint32(0)]
  out = philox.add128(jnp, c, np.uint32(m), np.uint32(1), np.uint32(3))
  assert [int(w) for w in out] == [0, 1, 4, 0]


def test_scramble_test_vector():
  (k0, k1), (c0, c1, c2, c3) = philox.scramble(np.array([1, 2], np.int32))
  assert [int(k0), int(k1)] == [0x6D2F7FBA, 0x908502C9]
  assert [int(c0), int(c1), int(c2), int(c3)] == [0, 0, 0x619CB60B, 0xF7734320]


def _libm_f32():
  lib = ctypes.CDLL(ctypes.util.find_library("m") or "libm.so.6")
  lib.logf.restype = ctypes.c_float
  lib.logf.argtypes = [ctypes.c_float]
  lib.sincosf.restype = None
  lib.sincosf.argtypes = [ctypes.c_float, ctypes.POINTER(ctypes.c_float),
                          ctypes.POINTER(ctypes.c_float)]
  return lib


@pytest.mark.parametrize("xp", ["numpy", "jax-x64-jit"])
def test_glibc_port_matches_libm(xp):
  """The logf/sincosf port against this process's libm on 20000 of the 2**23 inputs
  Box-Muller can pass each (tools/verify_glibc_port.py checks all of them)."""
  lib = _libm_f32()
  m = np.random.default_rng(7).integers(0, 2**23, 20000).astype(np.uint32)
  m[:4] = [0, 1, 2**23 - 1, 2**22]
  u = np.maximum(m.astype(np.float32) * np.float32(2**-23), np.float32(1e-7))
  theta = (2 * np.pi * (m.astype(np.float32) * np.float32(2**-23)).astype(np.float64)
           ).astype(np.float32)
  want_log = np.array([lib.logf(float(v)) for v in u], np.float32)
  s, c = ctypes.c_float(), ctypes.c_float()
  want_sin, want_cos = [], []
  for v in theta:
    lib.sincosf(float(v), ctypes.byref(s), ctypes.byref(c))
    want_sin.append(s.value)
    want_cos.append(c.value)
  if xp == "numpy":
    got_log = glibc.logf(np, u)
    got_sin, got_cos = glibc.sincosf(np, theta)
  else:
    with jax.enable_x64(True):
      got_log = jax.jit(lambda x: glibc.logf(jnp, x))(u)
      got_sin, got_cos = jax.jit(lambda x: glibc.sincosf(jnp, x))(theta)
  assert_bits_equal(got_log, want_log, "logf")
  assert_bits_equal(got_sin, np.array(want_sin, np.float32), "sinf")
  assert_bits_equal(got_cos, np.array(want_cos, np.float32), "cosf")


# Seeds to keys and counters ----------------------------------------------------------------


@pytest.mark.parametrize("seed_dtype,x64", [(tf.int32, False), (tf.int32, True),
                                             (tf.int64, True)], ids=str)
def test_get_key_counter(seed_dtype, x64):
  """Traced seeds under jit(vmap); static seeds give NumPy uint64 keys and counters. (An
  int64 seed input needs x64: the core refuses it without.)"""
  seeds = SEEDS32 if seed_dtype == tf.int32 else SEEDS64

  @tf.function
  def f(seed):
    key, counter, alg = tf.raw_ops.StatelessRandomGetKeyCounterAlg(seed=seed)
    key2, counter2 = tf.raw_ops.StatelessRandomGetKeyCounter(seed=seed)
    return key, counter, alg, key2, counter2, tf.raw_ops.StatelessRandomGetAlg()

  with jax.enable_x64(x64):
    jf = tf2jax.convert_functional(f, tf.TensorSpec([2], seed_dtype))
    batched = jax.jit(jax.vmap(jf))(seeds)
    for i, seed in enumerate(seeds):
      want = f(tf.constant(seed))
      for k, (w, g) in enumerate(zip(want, batched)):  # np.asarray also reads a U64
        assert_bits_equal(np.asarray(g)[i], w.numpy(), f"output {k} seed {seed}")
    # Static seeds: the key and counter stay NumPy uint64, with or without x64.
    for seed in seeds[:4]:
      g = tf.function(lambda: tf.raw_ops.StatelessRandomGetKeyCounter(
          seed=tf.constant(seed)))
      # Through the compiled graph: the public API turns outputs into JAX arrays.
      key, counter = tf2jax.convert_functional(g).converted.run(_ctx(), [])
      assert isinstance(key, np.ndarray) and key.dtype == np.uint64
      want = g()
      assert_bits_equal(key, want[0].numpy())
      assert_bits_equal(counter, want[1].numpy())


def _ctx():
  from tf2jax_core import CallContext
  return CallContext({}, None)


def test_uint64_key_counter_without_x64():
  """Without x64 a traced key/counter is a `U64` (uint32 halves): returned as such (its
  NumPy value is TF's), and refused with the x64 message by ops of other plugins."""
  seed = np.array([1, 2], np.int32)

  @tf.function
  def f(seed):
    return tf.raw_ops.StatelessRandomGetKeyCounter(seed=seed)[1]

  @tf.function
  def g(seed):
    return tf.cast(tf.raw_ops.StatelessRandomGetKeyCounter(seed=seed)[0], tf.float32)

  with jax.enable_x64(False):
    out = jax.jit(tf2jax.convert_functional(f, tf.TensorSpec([2], tf.int32)))(seed)
    assert isinstance(out, philox.U64) and out.dtype == np.uint64
    assert_bits_equal(np.asarray(out), f(seed).numpy())
    with pytest.raises(tf2jax.DtypeMismatchError, match="jax_enable_x64"):
      tf2jax.convert_functional(g, tf.TensorSpec([2], tf.int32))(seed)


# Stateless ops, bit for bit -------------------------------------------------------------------


def _v1_body(op, dtype, seed_dtype):
  def body(seed):
    outs = []
    for shape in V1_SHAPES:
      shape = tf.constant(shape, tf.int32)
      if op == "StatelessRandomUniformInt":
        lo, hi = _int_range(dtype)
        outs.append(tf.raw_ops.StatelessRandomUniformInt(shape=shape, seed=seed, minval=lo,
                                                         maxval=hi))
      else:
        outs.append(getattr(tf.raw_ops, op)(shape=shape, seed=seed, dtype=dtype))
    return outs
  return body


def _int_range(dtype):
  """Ranges with small and huge spans, and a negative minval."""
  if dtype == tf.int32:
    return tf.constant(-(2**31), tf.int32), tf.constant(2**31 - 1, tf.int32)
  return tf.constant(-7, tf.int64), tf.constant(2**40 + 3, tf.int64)


V1_CASES = (
    [("StatelessRandomUniform", d) for d in FLOATS]
    + [("StatelessRandomNormal", d) for d in FLOATS]
    + [("StatelessTruncatedNormal", d) for d in FLOATS]
    + [("StatelessRandomUniformInt", d) for d in RANGE_INTS]
    + [("StatelessRandomUniformFullInt", d) for d in FULL_INTS])


def _cases(cases):
  """32-bit dtypes without x64 (int32 seeds), 64-bit ones with x64 (int64 seeds)."""
  return [pytest.param(op, dtype, x64_for(dtype), id=f"{op}-{dtype.name}")
          for op, dtype in cases]


def _check_seeds(f, jf, seeds, what, shapes):
  batched = jax.jit(jax.vmap(jf))(seeds)
  for i, seed in enumerate(seeds):
    want = f(tf.constant(seed))
    for shape, w, g in zip(shapes, want, batched):
      assert_bits_equal(np.asarray(g)[i], w.numpy(), f"{what} shape {shape} seed {seed}")


@pytest.mark.parametrize("op,dtype,x64", _cases(V1_CASES))
def test_stateless_v1_bit_exact(op, dtype, x64):
  """jit(vmap) over seeds (int32 seeds without x64; int64 seeds with x64)."""
  seed_dtype = tf.int64 if x64 else tf.int32
  seeds = SEEDS64 if x64 else SEEDS32
  f = tf.function(_v1_body(op, dtype, seed_dtype))
  with jax.enable_x64(x64):
    jf = tf2jax.convert_functional(f, tf.TensorSpec([2], seed_dtype))
    _check_seeds(f, jf, seeds, op, V1_SHAPES)


def test_stateless_eager_and_jit():
  """The converted function called op by op and under jit (no vmap), without x64."""
  seed = SEEDS32[3]

  def body(s):
    return [tf.random.stateless_normal([6], s),
            tf.raw_ops.StatelessRandomUniformFullInt(shape=[3], seed=s, dtype=tf.uint32)]

  f = tf.function(body)
  want = f(tf.constant(seed))
  with jax.enable_x64(False):
    jf = tf2jax.convert_functional(f, tf.TensorSpec([2], tf.int32))
    for got in (jf(seed), jax.jit(jf)(seed)):
      for w, g in zip(want, got):
        assert_bits_equal(g, w.numpy())


API_CASES = [
    ("uniform", tf.float16), ("uniform", tf.float64), ("normal", tf.bfloat16),
    ("truncated_normal", tf.float32), ("uniform_int", tf.int64),
    ("uniform_full_int", tf.uint32)]


def _api_body(kind, dtype):
  """tf.random.stateless_* (GetKeyCounter + the V2 ops, as Keras uses them)."""
  def body(seed):
    outs = []
    for shape in API_SHAPES:
      if kind == "uniform":
        outs.append(tf.random.stateless_uniform(shape, seed, dtype=dtype))
      elif kind == "normal":
        outs.append(tf.random.stateless_normal(shape, seed, dtype=dtype))
      elif kind == "truncated_normal":
        outs.append(tf.random.stateless_truncated_normal(shape, seed, dtype=dtype))
      elif kind == "uniform_int":
        lo, hi = _int_range(dtype)
        outs.append(tf.random.stateless_uniform(shape, seed, lo, hi, dtype=dtype))
      else:
        outs.append(tf.random.stateless_uniform(shape, seed, None, None, dtype=dtype))
    return outs
  return body


@pytest.mark.parametrize("kind,dtype,x64", _cases(API_CASES))
def test_stateless_api_v2_bit_exact(kind, dtype, x64):
  """tf.random.stateless_*: GetKeyCounter feeding V2 ops with auto-select (alg 3); without
  x64 the traced key/counter travel as uint32 pairs."""
  seed_dtype = tf.int64 if x64 else tf.int32
  seeds = SEEDS64 if x64 else SEEDS32
  f = tf.function(_api_body(kind, dtype))
  ops = {n.op for n in f.get_concrete_function(tf.TensorSpec([2], seed_dtype)
                                               ).graph.as_graph_def().node}
  assert "StatelessRandomGetKeyCounter" in ops, ops
  with jax.enable_x64(x64):
    jf = tf2jax.convert_functional(f, tf.TensorSpec([2], seed_dtype))
    _check_seeds(f, jf, seeds, kind, API_SHAPES)


# With x64 (uint64 inputs): the 32-bit dtypes take the in-graph paths (uint64 products,
# the glibc port in float64) that the tests above, without x64, do not.
V2_OPS = {"StatelessRandomUniformV2": [tf.bfloat16, tf.float32],
          "StatelessRandomNormalV2": [tf.float32, tf.float16],
          "StatelessTruncatedNormalV2": [tf.bfloat16, tf.float64],
          "StatelessRandomUniformIntV2": [tf.int32, tf.int64],
          "StatelessRandomUniformFullIntV2": [tf.uint32, tf.uint64]}
_M64 = 2**64 - 1
# Counters whose block offsets carry across the 32-, 64- and 96-bit word boundaries.
KEY_COUNTERS = [
    ([0], [0, 0]), ([_M64], [_M64, _M64]), ([1], [_M64, 0]), ([5], [2**32 - 2, 7]),
    ([2**63], [_M64 - 3, _M64]), ([123456789], [2**64 - 600, 2**32 - 1]),
    ([0x1234_5678_9ABC_DEF0], [0xFFFF_FFFF_0000_0000, 3])]


@pytest.mark.parametrize("op,dtype", [(op, d) for op, ds in V2_OPS.items() for d in ds],
                         ids=lambda v: getattr(v, "name", v))
def test_stateless_v2_traced_key_counter(op, dtype):
  """Key and counter as uint64 inputs (x64: the in-graph glibc port and uint64 products
  for 32-bit dtypes), including counters that carry; alg 1 (Philox)."""
  alg = 1

  def body(key, counter):
    outs = []
    for shape in V2_SHAPES:
      kwargs = dict(shape=tf.constant(shape), key=key, counter=counter, alg=alg)
      if op == "StatelessRandomUniformIntV2":
        kwargs["minval"], kwargs["maxval"] = _int_range(dtype)
      else:
        kwargs["dtype"] = dtype
      outs.append(getattr(tf.raw_ops, op)(**kwargs))
    return outs

  f = tf.function(body)
  keys = np.array([k for k, _ in KEY_COUNTERS], np.uint64)
  counters = np.array([c for _, c in KEY_COUNTERS], np.uint64)
  with jax.enable_x64(True):
    jf = tf2jax.convert_functional(f, tf.TensorSpec([1], tf.uint64),
                                   tf.TensorSpec([2], tf.uint64))
    batched = jax.jit(jax.vmap(jf))(keys, counters)
    for i in range(len(keys)):
      want = f(tf.constant(keys[i]), tf.constant(counters[i]))
      for shape, w, g in zip(V2_SHAPES, want, batched):
        assert_bits_equal(np.asarray(g)[i], w.numpy(),
                          f"{op} shape {shape} key {keys[i]} counter {counters[i]}")


@settings(max_examples=8, deadline=None, derandomize=True, database=None)
@given(seed=st.tuples(st.integers(I32.min, I32.max), st.integers(I32.min, I32.max)),
       shape=st.lists(st.integers(0, 9), max_size=2),
       case=st.sampled_from([("uniform", tf.float32), ("uniform", tf.bfloat16),
                             ("normal", tf.float32), ("normal", tf.float16),
                             ("truncated_normal", tf.float32), ("uniform_int", tf.int32),
                             ("uniform_full_int", tf.uint32)]))
def test_stateless_static_seed_hypothesis(seed, shape, case):
  """Seeds and shapes drawn by hypothesis; the seed is a constant of the graph (the
  NumPy key/counter path), without x64."""
  kind, dtype = case
  seed = np.array(seed, np.int32)

  def body():
    if kind == "uniform":
      return tf.random.stateless_uniform(shape, seed, dtype=dtype)
    if kind == "normal":
      return tf.random.stateless_normal(shape, seed, dtype=dtype)
    if kind == "truncated_normal":
      return tf.random.stateless_truncated_normal(shape, seed, dtype=dtype)
    if kind == "uniform_int":
      return tf.random.stateless_uniform(shape, seed, -3, 1000, dtype=dtype)
    return tf.random.stateless_uniform(shape, seed, None, None, dtype=dtype)

  f = tf.function(body)
  with jax.enable_x64(False):
    got = tf2jax.convert_functional(f)()
  assert_bits_equal(got, f().numpy(), f"{kind} {dtype.name} {shape} {seed}")


# Counters (key 0) found by search whose first Philox block gives Box-Muller a zero (or,
# for float64, below 1e-7) uniform to take the log of, so TF's clamp to 1e-7 applies:
# word 0 (first pair) or word 2 (second pair) has its low 23 bits zero; words 0-1 give a
# double below 1e-7.
CLAMP_CASES = [(tf.float32, 4136581, "w0"), (tf.float16, 3574739, "w2"),
               (tf.bfloat16, 4136581, "w0"), (tf.float64, 5975774, "f64")]


@pytest.mark.parametrize("dtype,c0,where", CLAMP_CASES, ids=lambda v: getattr(v, "name", v))
def test_normal_epsilon_clamp(dtype, c0, where):
  key, counter = np.array([0], np.uint64), np.array([c0, 0], np.uint64)
  k, c = philox.words_of_key_counter("test", key, counter)
  w = philox.philox(np, c, k)
  if where == "f64":
    assert glibc.uint64_to_double(np, w[0], w[1]) < 1e-7
  else:
    assert int(w[0 if where == "w0" else 2]) & 0x7FFFFF == 0
  f = tf.function(lambda k, c: [
      tf.raw_ops.StatelessRandomNormalV2(shape=[4], key=k, counter=c, alg=1, dtype=dtype),
      tf.raw_ops.StatelessTruncatedNormalV2(shape=[4], key=k, counter=c, alg=1,
                                            dtype=dtype)])
  with jax.enable_x64(True):
    jf = tf2jax.convert_functional(f, tf.TensorSpec([1], tf.uint64),
                                   tf.TensorSpec([2], tf.uint64))
    for want, got in zip(f(key, counter), jax.jit(jf)(key, counter)):
      assert_bits_equal(got, want.numpy())


# Errors ---------------------------------------------------------------------------------------


def test_threefry_and_bad_inputs_are_refused():
  with jax.enable_x64(True):
    key, counter = np.array([1], np.uint64), np.array([1, 2], np.uint64)
    f = tf.function(lambda k, c: tf.raw_ops.StatelessRandomUniformV2(
        shape=[3], key=k, counter=c, alg=2))
    jf = tf2jax.convert_functional(f, tf.TensorSpec([1], tf.uint64), tf.TensorSpec([2],
                                                                                tf.uint64))
    with pytest.raises(tf2jax.NodeExecutionError, match="ThreeFry"):
      jf(key, counter)
    f = tf.function(lambda s: tf.raw_ops.StatelessRandomUniformInt(
        shape=[3], seed=s, minval=3, maxval=3))
    jf = tf2jax.convert_functional(f, tf.TensorSpec([2], tf.int32))
    with pytest.raises(tf2jax.NodeExecutionError, match="minval < maxval"):
      jf(np.array([1, 2], np.int32))
  with jax.enable_x64(False):
    f = tf.function(lambda s: tf.random.stateless_uniform([3], s, dtype=tf.float64))
    jf = tf2jax.convert_functional(f, tf.TensorSpec([2], tf.int32))
    with pytest.raises(tf2jax.DtypeMismatchError, match="jax_enable_x64"):
      jf(np.array([1, 2], np.int32))



def test_host_samplers_raise_where_tf_never_returns():
  """TF's Poisson kernel loops for ever on a NaN rate; the converted function raises a
  clear error (at conversion time for static rates, at call time under jit)."""
  f = tf.function(lambda lam: tf.random.stateless_poisson([3], [1, 2], lam, dtype=tf.int32))
  lam = np.array(np.nan, np.float32)
  jf = tf2jax.convert_functional(f, tf.TensorSpec([], tf.float32))
  with pytest.raises(Exception, match="Poisson rate is NaN"):
    np.asarray(jax.jit(jf)(lam))
  jf = tf2jax.convert_functional(f, tf.TensorSpec([], tf.float32))
  ok = np.asarray(jax.jit(jf)(np.float32(3.0)))
  np.testing.assert_array_equal(ok, f(np.float32(3.0)).numpy())


def test_host_sampler_shape_must_end_with_param_shape():
  f = tf.function(lambda a: tf.raw_ops.StatelessRandomGammaV2(shape=[3, 2], seed=[1, 2],
                                                               alpha=a))
  jf = tf2jax.convert_functional(f, tf.TensorSpec([3], tf.float32))
  with pytest.raises(tf2jax.NodeExecutionError, match=r"must end with the alpha shape \[3\]"):
    jf(np.ones(3, np.float32))


# tf.random.Generator ----------------------------------------------------------------------


def _generator(kind):
  if kind == "seed":
    return tf.random.Generator.from_seed(1234)
  if kind == "carry":  # the counter's low half about to wrap into the high half
    return tf.random.Generator.from_key_counter(key=77, counter=[-1000, 5], alg="philox")
  return tf.random.Generator.from_key_counter(key=-3, counter=[-1, -1], alg="philox")  # wraps


GEN_CASES = [
    ("StatefulUniform", tf.float32), ("StatefulUniform", tf.bfloat16),
    ("StatefulStandardNormalV2", tf.float16), ("StatefulStandardNormalV2", tf.float64),
    ("StatefulTruncatedNormal", tf.float32), ("StatefulUniformFullInt", tf.uint64),
    ("StatefulUniformInt", tf.int32)]


def _handle(g):
  """The generator's state handle, registered as a variable of the traced function (as
  Generator methods do)."""
  from tensorflow.python.ops import resource_variable_ops
  resource_variable_ops.variable_accessed(g.state)
  return g.state.handle


def _only_param(params):
  assert len(params) == 1, params
  return next(iter(params))


@pytest.mark.parametrize("op,dtype,kind", [
    (op, dtype, ["seed", "carry", "wrap"][i % 3]) for i, (op, dtype) in enumerate(GEN_CASES)],
    ids=lambda v: getattr(v, "name", v))
def test_generator_stateful_ops(op, dtype, kind):
  """Legacy stateful ops on a Generator's state: numbers and the advanced state, under jit,
  twice in a row (the second call from the returned params)."""
  g = _generator(kind)

  def body():
    outs = []
    for shape in [(5,), (0,), (2, 3)]:
      kwargs = dict(resource=_handle(g), algorithm=tf.constant(1, tf.int64),
                    shape=tf.constant(shape, tf.int64))
      if op == "StatefulUniformInt":
        kwargs["minval"], kwargs["maxval"] = _int_range(dtype)
      else:
        kwargs["dtype"] = dtype
      outs.append(getattr(tf.raw_ops, op)(**kwargs))
    return outs

  f = tf.function(body)
  with jax.enable_x64(True):
    jf, params = tf2jax.convert(f)
    name = _only_param(params)
    jitted = jax.jit(jf)
    params = {name: params[name]}
    for call in range(2):
      want = [w.numpy() for w in f()]
      outs, params = jitted(params)
      for w, o in zip(want, outs):
        assert_bits_equal(o, w, f"{op} {kind} call {call}")
      assert_bits_equal(params[name], g.state.numpy(), f"state after call {call}")


def test_generator_methods_and_skip():
  """Generator.uniform/normal/... via RngReadAndSkip (the core's StridedSlice/Bitcast
  permitting) and RngSkip/RngReadAndSkip on their own."""
  g = tf.random.Generator.from_key_counter(key=9, counter=[-300, 2], alg="philox")

  @tf.function
  def f():
    a = tf.raw_ops.RngReadAndSkip(resource=_handle(g), alg=1,
                                  delta=tf.constant(3, tf.uint64))
    tf.raw_ops.RngSkip(resource=_handle(g), algorithm=tf.constant(1, tf.int64),
                       delta=tf.constant(2**40 + 5, tf.int64))
    b = tf.raw_ops.RngReadAndSkip(resource=_handle(g), alg=3,
                                  delta=tf.constant(2**62 + 2**56 - 1, tf.uint64))
    # 256 delta = 2**64 - 256: TF's Skip loses the carry of the low words.
    c = tf.raw_ops.RngReadAndSkip(resource=_handle(g), alg=1,
                                  delta=tf.constant(2**56 - 1, tf.uint64))
    d = tf.raw_ops.RngReadAndSkip(resource=_handle(g), alg=1,
                                  delta=tf.constant(0, tf.uint64))
    return a, b, c, d

  with jax.enable_x64(True):
    jf, params = tf2jax.convert(f)
    name = _only_param(params)
    want = [w.numpy() for w in f()]
    for call in (jf, jax.jit(jf)):
      outs, new_params = call(params)
      for w, o in zip(want, outs):
        assert_bits_equal(o, w)
      assert_bits_equal(new_params[name], g.state.numpy())


def test_generator_without_x64():
  """Eagerly, params holding TF's NumPy state advance with NumPy (no x64 needed); under
  jit the int64 state needs x64 and says so."""
  g = tf.random.Generator.from_seed(42)
  f = tf.function(lambda: tf.raw_ops.StatefulUniform(
      resource=_handle(g), algorithm=tf.constant(1, tf.int64), shape=[7]))
  with jax.enable_x64(False):
    jf, params = tf2jax.convert(f)
    name = _only_param(params)
    out, new_params = jf(params)
    assert_bits_equal(out, f().numpy())
    assert_bits_equal(new_params[name], g.state.numpy())
    with pytest.raises(tf2jax.DtypeMismatchError, match="jax_enable_x64"):
      jax.jit(jf)(params)


# Stateful ops drawn from the rng key ---------------------------------------------------------

KS_P = 1e-4  # fixed keys: the tests are deterministic; this bounds their false alarms


def _convert_rng(body, *specs):
  f = tf.function(body)
  return f, tf2jax.convert_functional(f, *specs)


def _ks(samples, cdf, what):
  p = stats.kstest(np.asarray(samples, np.float64).ravel(), cdf).pvalue
  assert p > KS_P, f"{what}: KS p-value {p:.3g} <= {KS_P}"


@pytest.mark.parametrize("dtype", [tf.bfloat16], ids=lambda d: d.name)
def test_truncated_normal_from_rng(dtype):
  f, jf = _convert_rng(lambda: tf.random.truncated_normal([40, 50], dtype=dtype))
  with jax.enable_x64(dtype == tf.float64):
    got = jax.jit(lambda k: jf(rng=k))(jax.random.PRNGKey(0))
  want = f().numpy()
  assert got.shape == want.shape and got.dtype == want.dtype
  assert np.all(np.abs(np.asarray(got, np.float32)) <= 2)
  _ks(got, stats.truncnorm(-2, 2).cdf, "truncated normal")
  # Against TF's own samples too (two-sample KS).
  assert stats.ks_2samp(np.asarray(got, np.float64).ravel(),
                        np.asarray(want, np.float64).ravel()).pvalue > KS_P


def test_uniform_int_from_rng():
  f, jf = _convert_rng(lambda: [tf.random.uniform([3000], -5, 12, dtype=tf.int32),
                                tf.raw_ops.RandomUniformInt(shape=[0], minval=1, maxval=1)])
  got, empty = jf(rng=jax.random.PRNGKey(1))
  want = f()
  assert got.dtype == want[0].dtype and got.shape == (3000,) and empty.shape == (0,)
  counts = np.bincount(np.asarray(got) + 5, minlength=17)
  assert got.min() >= -5 and got.max() < 12
  assert stats.chisquare(counts).pvalue > KS_P
  with jax.enable_x64(True):
    f64, jf64 = _convert_rng(lambda: tf.random.uniform([10], -2**40, 2**40, dtype=tf.int64))
    assert jf64(rng=jax.random.PRNGKey(1)).dtype == np.int64


def test_multinomial_from_rng():
  with np.errstate(divide="ignore"):
    logits = np.log(np.array([[0.1, 0.2, 0.7], [0.5, 0.5, 0.0]], np.float32))
  f, jf = _convert_rng(lambda x: tf.random.categorical(x, 4000, dtype=tf.int32),
                       tf.TensorSpec([2, 3], tf.float32))
  got = jax.jit(lambda x, k: jf(x, rng=k))(logits, jax.random.PRNGKey(2))
  want = f(logits)
  assert got.shape == want.shape == (2, 4000) and got.dtype == want.dtype
  for row, p in zip(np.asarray(got), [[0.1, 0.2, 0.7], [0.5, 0.5, 0.0]]):
    counts = np.bincount(row, minlength=3)
    assert counts[np.array(p) == 0].sum() == 0
    nz = np.array(p) > 0
    assert stats.chisquare(counts[nz], np.array(p)[nz] * len(row)).pvalue > KS_P
  with jax.enable_x64(True):  # the op's default output_dtype is int64
    f, jf = _convert_rng(lambda x: tf.raw_ops.Multinomial(logits=x, num_samples=3),
                         tf.TensorSpec([0, 3], tf.float16))
    out = jf(np.zeros((0, 3), np.float16), rng=jax.random.PRNGKey(0))
  assert out.shape == (0, 3) and out.dtype == np.int64


def test_shuffle_from_rng():
  x = np.arange(60, dtype=np.float32).reshape(20, 3)
  f, jf = _convert_rng(lambda v: [tf.random.shuffle(v), tf.random.shuffle(v[0, 0])],
                       tf.TensorSpec([20, 3], tf.float32))
  got, scalar = jf(x, rng=jax.random.PRNGKey(3))
  assert got.shape == (20, 3) and scalar.shape == ()
  np.testing.assert_array_equal(np.sort(np.asarray(got)[:, 0]), x[:, 0])  # rows permuted
  np.testing.assert_array_equal(np.asarray(got)[:, 1] - np.asarray(got)[:, 0], 1)
  # Uniform over permutations: the position of element 0 over many keys.
  pos = jax.vmap(lambda k: jnp.argmin(jf(x, rng=k)[0][:, 0]))(
      jax.random.split(jax.random.PRNGKey(4), 2000))
  assert stats.chisquare(np.bincount(np.asarray(pos), minlength=20)).pvalue > KS_P


@pytest.mark.parametrize("dtype", [tf.float16], ids=lambda d: d.name)
def test_gamma_from_rng(dtype):
  alpha = np.array([0.5, 1.0, 3.0], dtype.as_numpy_dtype)
  f, jf = _convert_rng(lambda a: tf.random.gamma([3000], a, dtype=dtype),
                       tf.TensorSpec([3], dtype))
  with jax.enable_x64(dtype == tf.float64):
    got = np.asarray(jf(alpha, rng=jax.random.PRNGKey(5)))
  want = f(alpha).numpy()
  assert got.shape == want.shape == (3000, 3) and got.dtype == want.dtype
  for j, a in enumerate(alpha):
    _ks(got[:, j], stats.gamma(float(a)).cdf, f"gamma({a})")


def _poisson_v1_graph(n):
  """RandomPoisson was replaced in GraphDef version 25; TF still imports older graphs."""
  from tensorflow.core.framework import graph_pb2, types_pb2
  gd = graph_pb2.GraphDef()
  gd.versions.producer = 24
  node = gd.node.add(name="rate", op="Placeholder")
  node.attr["dtype"].type = types_pb2.DT_FLOAT
  node = gd.node.add(name="shape", op="Const")
  node.attr["dtype"].type = types_pb2.DT_INT32
  node.attr["value"].tensor.CopyFrom(tf.make_tensor_proto(np.array([n], np.int32)))
  node = gd.node.add(name="p", op="RandomPoisson", input=["shape", "rate"])
  node.attr["S"].type = types_pb2.DT_INT32
  node.attr["dtype"].type = types_pb2.DT_FLOAT
  return tf2jax.convert_graph_def(gd, inputs=["rate"], outputs="p:0")


def _check_poisson(got, rate):
  for j, lam in enumerate(rate):
    counts = got[:, j].astype(np.int64)
    assert abs(counts.mean() - lam) < 5 * np.sqrt(lam / len(counts)), (lam, counts.mean())
    # Chi-square on the bins with at least 5 expected counts, the rest pooled.
    k = np.arange(counts.max() + 1)
    expected = stats.poisson(float(lam)).pmf(k) * len(counts)
    keep = expected >= 5
    observed = np.bincount(counts, minlength=len(k))
    obs = np.append(observed[keep], observed[~keep].sum())
    exp = np.append(expected[keep], len(counts) - expected[keep].sum())
    assert stats.chisquare(obs, exp).pvalue > KS_P, lam


@pytest.mark.parametrize("rate_dtype,dtype", [(tf.int32, tf.float16)], ids=lambda d: d.name)
def test_poisson_from_rng(rate_dtype, dtype):
  rate = np.array([0.5 if rate_dtype.is_floating else 1, 4, 30], rate_dtype.as_numpy_dtype)
  with jax.enable_x64(x64_for(rate_dtype, dtype)):
    f, jf = _convert_rng(lambda r: tf.random.poisson([4000], r, dtype=dtype),
                         tf.TensorSpec([3], rate_dtype))
    got = np.asarray(jf(rate, rng=jax.random.PRNGKey(6)))
  want = f(rate).numpy()
  assert got.shape == want.shape == (4000, 3) and got.dtype == want.dtype
  _check_poisson(got, rate)


def test_poisson_v1_from_rng():
  rate = np.array([0.5, 4.0, 30.0], np.float32)
  got = np.asarray(_poisson_v1_graph(4000)(rate, rng=jax.random.PRNGKey(6)))
  assert got.shape == (4000, 3) and got.dtype == np.float32
  _check_poisson(got, rate)


@pytest.mark.parametrize("dtype", [tf.float32], ids=lambda d: d.name)
def test_parameterized_truncated_normal_from_rng(dtype):
  def body():
    return tf.raw_ops.ParameterizedTruncatedNormal(
        shape=[2, 3000], means=tf.constant([0.0, 5.0], dtype), stdevs=tf.constant(2.0, dtype),
        minvals=tf.constant([-1.0, 4.0], dtype), maxvals=tf.constant([3.0, 100.0], dtype))
  f, jf = _convert_rng(body)
  got = np.asarray(jf(rng=jax.random.PRNGKey(8)), np.float64)
  want = f().numpy()
  assert got.shape == want.shape and jf(rng=jax.random.PRNGKey(8)).dtype == want.dtype
  for row, (m, lo, hi) in zip(got, [(0.0, -1.0, 3.0), (5.0, 4.0, 100.0)]):
    if dtype == tf.float32:
      _ks(row, stats.truncnorm((lo - m) / 2, (hi - m) / 2, loc=m, scale=2).cdf, "ptn")
    assert row.min() >= lo and row.max() <= hi


def test_rng_ops_need_a_key_and_depend_on_it():
  f, jf = _convert_rng(lambda: tf.random.truncated_normal([5]))
  with pytest.raises(tf2jax.MissingRngError, match="TruncatedNormal"):
    jf()
  a, b = jf(rng=jax.random.PRNGKey(0)), jf(rng=jax.random.PRNGKey(0))
  np.testing.assert_array_equal(a, b)
  assert not np.array_equal(a, jf(rng=jax.random.PRNGKey(1)))
