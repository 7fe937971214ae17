"""Division and modulo against TF: integers by zero (an error when a result element
divides by 0, none when the broadcast result is empty); float FloorDiv/TruncateDiv of
known values (the quotient rounded to the dtype and flushed like TF's)."""

import jax
import ml_dtypes
import numpy as np
import pytest
import tensorflow as tf

import tf2jax

OPS = ["Div", "FloorDiv", "FloorMod", "TruncateDiv", "TruncateMod", "Mod"]
EMPTY = [(np.zeros((0,), np.int32), np.int32(0)), (np.int32(5), np.zeros((0,), np.int32)),
         (np.zeros((2, 0), np.int32), np.array([[0], [1]], np.int32))]


def _fn(op):
  return tf.function(lambda x, y: getattr(tf.raw_ops, op)(x=x, y=y))


@pytest.mark.parametrize("op", OPS)
@pytest.mark.parametrize("x,y", EMPTY)
def test_empty_result_does_not_divide(op, x, y):
  want = _fn(op)(x, y).numpy()
  got = np.asarray(tf2jax.convert_functional(_fn(op), x, y)(x, y))
  assert got.shape == want.shape and got.dtype == want.dtype


@pytest.mark.parametrize("op", OPS)
def test_zero_divisor_raises(op):
  x, y = np.array([7, -7], np.int32), np.int32(0)
  with pytest.raises(tf.errors.OpError):  # TruncateDiv/Mod: an InternalError
    _fn(op)(x, y)
  with pytest.raises(Exception, match="Integer division by zero"):
    tf2jax.convert_functional(_fn(op), x, y)(x, y)


@pytest.mark.parametrize("op", ["FloorDiv", "TruncateDiv"])
@pytest.mark.parametrize("dtype,x,y", [
    (np.float16, [4.32, 1.0, -7.0], [1.44, -3e4, 2.0]),  # 2.9993 rounds to 3 in float16
    (ml_dtypes.bfloat16, [-1.17549e-38, 3.0], [2.0, 1.5]),  # a subnormal quotient: -0
    (np.float32, [1.0, -1.0, 7.0], [-3.4028235e38, 3e38, 0.1]),
    (np.float64, [1.0, 5.0], [-1.7976931348623157e308, 0.3])])
def test_static_float_floor_and_truncate_div(op, dtype, x, y):
  x, y = np.array(x, dtype), np.array(y, dtype)
  f = tf.function(lambda: getattr(tf.raw_ops, op)(x=tf.constant(x), y=tf.constant(y)))
  want = f().numpy().astype(np.float64)
  with jax.enable_x64(dtype == np.float64):
    got = np.asarray(tf2jax.convert_functional(f)()).astype(np.float64)
  np.testing.assert_array_equal(got, want)
  np.testing.assert_array_equal(np.signbit(got), np.signbit(want))
