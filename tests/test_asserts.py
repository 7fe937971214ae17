"""Assert and CheckNumerics: known failures raise like TF; traced ones are checkify checks
with `enable_checkify_for_asserts`, and dropped without it."""

import jax
import numpy as np
import pytest
import tensorflow as tf
from jax.experimental import checkify

import tf2jax

SPEC = tf.TensorSpec([3], tf.int32)


@tf.function(autograph=False)
def positive(x):
  # int32 and string data: TF emits the Assert op itself, without a cond around it.
  check = tf.debugging.Assert(tf.reduce_all(x > 0), ["x must be positive:", x])
  with tf.control_dependencies([check]):
    return x * 2


@tf.function(autograph=False)
def finite(x):
  return tf.debugging.check_numerics(x, "x is bad") + 1.0


def _convert(fn, spec, checkify_on):
  with tf2jax.override_config("enable_checkify_for_asserts", checkify_on):
    return tf2jax.convert_functional(fn, spec)


def test_checkify_reports_a_failing_assert_on_a_traced_input():
  fn = _convert(positive, SPEC, True)
  checked = checkify.checkify(jax.jit(fn))
  err, out = checked(np.array([1, 2, 3], np.int32))
  assert err.get() is None
  np.testing.assert_array_equal(out, [2, 4, 6])
  err, _ = checked(np.array([1, -2, 3], np.int32))
  message = err.get()
  # TF's message (each tensor in brackets); the traced data formatted by checkify.
  assert "Assert node" in message
  assert "assertion failed: [x must be positive:] [ 1 -2  3]" in message
  with pytest.raises(checkify.JaxRuntimeError, match="assertion failed"):
    err.throw()
  with pytest.raises(tf.errors.InvalidArgumentError, match="x must be positive"):
    positive(tf.constant([1, -2, 3]))


def test_checkify_reports_failing_check_numerics():
  fn = _convert(finite, tf.TensorSpec([2], tf.float32), True)
  checked = jax.jit(checkify.checkify(fn))
  err, out = checked(np.array([1.0, 2.0], np.float32))
  assert err.get() is None
  np.testing.assert_array_equal(out, [2.0, 3.0])
  err, _ = checked(np.array([1.0, np.inf], np.float32))
  assert "CheckNumerics node" in err.get() and "x is bad : Tensor had NaN or Inf" in err.get()


def test_known_failures_raise_when_traced_and_when_called():
  @tf.function(autograph=False)
  def always_fails(x):
    check = tf.raw_ops.Assert(condition=tf.constant(False), data=[tf.constant("never"), x])
    with tf.control_dependencies([check]):
      return tf.identity(x)

  for checkify_on in (False, True):
    fn = _convert(always_fails, SPEC, checkify_on)
    # The condition is a constant: tracing fails, before anything runs.
    with pytest.raises(ValueError, match=r"assertion failed: \[never\] <traced>"):
      jax.eval_shape(fn, jax.ShapeDtypeStruct((3,), np.int32))
  with pytest.raises(tf.errors.InvalidArgumentError, match="never"):
    always_fails(tf.constant([1, 2, 3]))

  # Concrete values outside jit are known too: TF's message, data included.
  fn = _convert(positive, SPEC, False)
  with pytest.raises(ValueError, match=r"assertion failed: \[x must be positive:\] \[1 -2 3\]"):
    fn(np.array([1, -2, 3], np.int32))
  fn = _convert(finite, tf.TensorSpec([2], tf.float32), False)
  with pytest.raises(ValueError, match="x is bad : Tensor had Inf and NaN values"):
    fn(np.array([np.nan, np.inf], np.float32))


def test_traced_checks_are_dropped_without_the_flag():
  fn = _convert(positive, SPEC, False)
  np.testing.assert_array_equal(jax.jit(fn)(np.array([1, -2, 3], np.int32)), [2, -4, 6])
  fn = _convert(finite, tf.TensorSpec([2], tf.float32), False)
  assert np.isnan(jax.jit(fn)(np.array([np.nan, 0.0], np.float32))[0])


def test_checkify_reports_an_assert_inside_a_cond():
  """Float data: TF guards the Assert with a cond (If), so it is traced inside lax.cond
  even in an eager call; checkify still reports it."""
  @tf.function(autograph=False)
  def scaled(x):
    tf.debugging.assert_positive(x, message="need positive")
    return x * 2.0

  fn = _convert(scaled, tf.TensorSpec([3], tf.float32), True)
  err, _ = checkify.checkify(jax.jit(fn))(np.array([1.0, -1.0, 2.0], np.float32))
  assert "need positive" in err.get() and "[ 1. -1.  2.]" in err.get()
  err, out = checkify.checkify(fn)(np.array([1.0, 3.0, 2.0], np.float32))
  assert err.get() is None
  np.testing.assert_array_equal(out, [2.0, 6.0, 4.0])
