"""Max/Min/Prod/All/Any, Mean, ArgMax/ArgMin and logic ops against TF, NaN and empty included."""

import jax
import numpy as np
import pytest
import tensorflow as tf

import tf2jax

NAN = np.nan


def check(fn_tf, *args):
  fn = tf2jax.convert_functional(tf.function(fn_tf), *args)
  expected = fn_tf(*[tf.constant(a) for a in args]).numpy()
  for got in (fn(*args), jax.jit(fn)(*args)):
    got = np.asarray(got)
    assert got.dtype == expected.dtype and got.shape == expected.shape
    np.testing.assert_array_equal(got, expected)


VALUES = {
    "nan": np.array([[1.0, NAN, 3.0], [-np.inf, 2.0, np.inf]], np.float32),
    "all_nan": np.array([[NAN, NAN], [NAN, 1.0]], np.float32),
    "ties": np.array([[2.0, 5.0, 5.0], [1.0, 1.0, 0.5]], np.float32),
    "int": np.array([[3, -7, 3], [2**31 - 1, -2**31, 0]], np.int32),
}


@pytest.mark.parametrize("op", ["reduce_max", "reduce_min", "reduce_prod"])
@pytest.mark.parametrize("case", sorted(VALUES))
@pytest.mark.parametrize("axis,keepdims", [(None, False), (0, True), (-1, False), ([], False)])
def test_reductions(op, case, axis, keepdims):
  check(lambda x: getattr(tf.math, op)(x, axis=axis, keepdims=keepdims), VALUES[case])


@pytest.mark.parametrize("op", ["reduce_max", "reduce_min", "reduce_prod"])
@pytest.mark.parametrize("dtype", [np.float32, np.int32])
def test_empty_reductions_give_identity(op, dtype):
  check(lambda x: getattr(tf.math, op)(x, axis=1), np.zeros((3, 0), dtype))


@pytest.mark.parametrize("op", ["argmax", "argmin"])
@pytest.mark.parametrize("case", sorted(VALUES))
@pytest.mark.parametrize("axis", [0, 1, -1])
@pytest.mark.parametrize("output_type", [tf.int32, tf.int64])
def test_argmax_argmin_skip_nan_and_take_first_tie(op, case, axis, output_type):
  if output_type == tf.int64:
    with jax.enable_x64(True):
      check(lambda x: getattr(tf.math, op)(x, axis=axis, output_type=output_type),
            VALUES[case])
  else:
    check(lambda x: getattr(tf.math, op)(x, axis=axis, output_type=output_type), VALUES[case])


def test_argmax_over_empty_dimension_is_refused():
  fn = tf2jax.convert_functional(tf.function(lambda x: tf.argmax(x, axis=1,
                                                                  output_type=tf.int32)),
                                 np.zeros((2, 0), np.float32))
  with pytest.raises(tf2jax.ConversionError, match="empty dimension"):
    fn(np.zeros((2, 0), np.float32))


def test_all_any_and_logic():
  a = np.array([[True, False], [True, True], [False, False]])
  b = np.array([[False, False], [True, False], [True, True]])
  check(lambda x: tf.reduce_all(x, axis=1), a)
  check(lambda x: tf.reduce_any(x, axis=0, keepdims=True), a)
  check(lambda x: tf.reduce_all(x, axis=1), np.zeros((2, 0), bool))
  check(lambda x, y: tf.logical_and(x, y), a, b)
  check(lambda x, y: tf.logical_or(x, y), a, b)
  check(lambda x: tf.logical_not(x), a)
  f = np.array([1.0, NAN, -0.0, 2.0], np.float32)
  g = np.array([1.0, NAN, 0.0, 3.0], np.float32)
  check(lambda x, y: tf.equal(x, y), f, g)
  check(lambda x, y: tf.not_equal(x, y), f, g)


@pytest.mark.parametrize("dtype", [np.int8, np.uint16, np.int32, np.uint32])
def test_integer_mean_sums_wide_and_truncates(dtype):
  # TF sums in 64 bits and truncates toward zero; without x64 tf2jax sums in two uint32
  # words. 100,003 elements near the dtype's ends overflow any 32-bit sum.
  info = np.iinfo(dtype)
  rng = np.random.default_rng(0)
  x = np.stack([rng.integers(info.max - 3, info.max, 100_003, dtype, endpoint=True),
                rng.integers(info.min, info.min + 3, 100_003, dtype, endpoint=True),
                rng.integers(info.min, info.max, 100_003, dtype, endpoint=True)])
  check(lambda x: tf.reduce_mean(x, axis=1), x)
  check(lambda x: tf.reduce_mean(x, axis=0), np.array([[-7, 2], [2, 0], [0, 1]], np.int32)
        if dtype == np.int32 else x[:, :2])


def test_float_mean_divides_by_the_count():
  # XLA turns sum / 3 into sum * (1 / 3): an ulp off for about a third of these.
  x = np.random.default_rng(1).uniform(-10, 10, (3, 400)).astype(np.float32)
  check(lambda x: tf.reduce_mean(x, axis=0), x)
  check(lambda x: tf.math.segment_mean(x, tf.constant([0, 0, 0])), x)


def _euclidean_norm(x, axis):
  return tf.function(lambda v: tf.raw_ops.EuclideanNorm(input=v, axis=axis))


@pytest.mark.parametrize("x", [
    np.array([65535, 65534, 4294967295, 3, 0], np.uint32),  # squares wrap at 65536
    np.array([9.223372e18 + 9.223372e18j, 1e19, 3 - 4j, 0], np.complex64),  # s + s overflows
], ids=["uint32", "complex64"])
def test_euclidean_norm_at_the_dtype_limits(x):
  fn_tf = _euclidean_norm(x, np.array([], np.int32))
  fn = tf2jax.convert_functional(fn_tf, x)
  want = fn_tf(tf.constant(x)).numpy()
  for got in (fn(x), jax.jit(fn)(x)):
    np.testing.assert_array_equal(np.asarray(got), want)


def _assert_vjp_matches_tf(fn_tf, x, cotangent):
  """TF's gradient of `fn_tf` at `x` for `cotangent` equals the jitted VJP's."""
  with tf.GradientTape() as tape:
    v = tf.constant(x)
    tape.watch(v)
    y = fn_tf(v)
  want = tape.gradient(y, v, output_gradients=tf.constant(cotangent)).numpy()
  fn = tf2jax.convert_functional(fn_tf, x)
  got = jax.jit(lambda x, c: jax.vjp(fn, x)[1](c)[0])(x, cotangent)
  np.testing.assert_array_equal(np.asarray(got), want)


def test_euclidean_norm_gradient_divides_in_tfs_order():
  # TF's x / (norm / g) is inf for x = tiny, norm = 0 (the square flushes); XLA's
  # rewrite (x * g) / norm flushes x * g and gave NaN.
  x = np.array([[0, 0], [1.1754944e-38, 0]], np.float32)
  _assert_vjp_matches_tf(_euclidean_norm(x, np.array([], np.int32)), x,
                         np.full(x.shape, 0.5, np.float32))


@pytest.mark.parametrize("g", [0.0, 2.0])
def test_unsorted_segment_prod_gradient_of_dropped_ids(g):
  # TF reads segment 0's factor for a negative (dropped) id and multiplies it by a 0
  # cotangent: inf there gives NaN.
  data = np.array([[1, 1], [0, 0], [np.inf, 1], [3, 0]], np.float32)
  ids = np.array([0, -1, 0, -1], np.int32)
  _assert_vjp_matches_tf(tf.function(lambda d: tf.math.unsorted_segment_prod(d, ids, 1)),
                         data, np.full((1, 2), g, np.float32))


@pytest.mark.parametrize("values, value_range, nbins", [
    (np.float64(0), [-2.2250738585072014e-308, 2.2250738585072014e-308], 6),  # step flushes
    (np.float32(0.5), np.array([-1e-45, 0.0], np.float32), 1),  # the range flushes: raises
    (np.array([0.5, 1, 3, -1, 5], np.float32), np.array([0, 4], np.float32), 4),
])
@pytest.mark.parametrize("static", [False, True], ids=["input", "constant"])
def test_histogram_fixed_width_flushes_subnormals_as_tf(values, value_range, nbins, static):
  # TF's CPU threads flush subnormals; NumPy (the static path) does not by itself.
  values = np.asarray(values)
  value_range = tf.constant(np.asarray(value_range, values.dtype))
  fn_tf = tf.function(lambda v: tf.raw_ops.HistogramFixedWidth(
      values=tf.constant(values) if static else v, value_range=value_range, nbins=nbins))
  try:
    want = fn_tf(tf.constant(values)).numpy()
  except tf.errors.InvalidArgumentError:
    want = None
  with jax.enable_x64(values.dtype == np.float64):
    if want is None:
      with pytest.raises(Exception, match="value_range"):
        tf2jax.convert_functional(fn_tf, values)(values)
    else:
      fn = tf2jax.convert_functional(fn_tf, values)
      np.testing.assert_array_equal(np.asarray(fn(values)), want)


@pytest.mark.parametrize("values,boundaries", [
    (np.array([0.0, -1e-310, -1e-40, 1e-40], np.float64), [3.5e-44]),  # found by thorough
    (np.array([0.0, -1e-310, -1e-40], np.float64), [0.0]),
    (np.array([0.0, -1e-40, 1e-40], np.float32), [1e-44]),
    (np.array([0, 1], np.int32), [-1e-44, 1e-44]),
])
@pytest.mark.parametrize("static", [False, True], ids=["input", "constant"])
def test_bucketize_reads_subnormals_as_zero_as_tf(values, boundaries, static):
  # TF's CPU threads read subnormal operands as zero (DAZ): boundaries, and float inputs.
  fn_tf = tf.function(lambda v: tf.raw_ops.Bucketize(
      input=tf.constant(values) if static else v, boundaries=boundaries))
  want = fn_tf(tf.constant(values)).numpy()
  with jax.enable_x64(values.dtype == np.float64):
    fn = tf2jax.convert_functional(fn_tf, values)
    for got in (fn(values), jax.jit(fn)(values)):
      np.testing.assert_array_equal(np.asarray(got), want)
