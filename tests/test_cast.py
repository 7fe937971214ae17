"""Cast with Truncate=True where TF 2.21's CPU kernel departs from plain truncation
(found by the thorough profile), against TF: eager, jit and the static NumPy path."""

import jax
import ml_dtypes
import numpy as np
import pytest
import tensorflow as tf

import tf2jax

VALUES = [1.0, 3.0, 0.1, -123.456, 1.00390625 + 2**-12, 3e38, 1e-310, np.inf, np.nan, -0.0]


@pytest.mark.parametrize("src,dst", [
    (np.float64, np.complex64),  # TF: mantissa and exponent's lowest bit zeroed (1 -> 0.5)
    (np.float64, ml_dtypes.bfloat16), (np.float16, ml_dtypes.bfloat16),  # TF: rounds
    (np.complex64, ml_dtypes.bfloat16), (np.complex128, ml_dtypes.bfloat16),
    (np.float32, ml_dtypes.bfloat16), (np.float64, np.float32)])  # truncates
def test_cast_truncate_matches_tf(src, dst):
  x = np.array(VALUES, np.float64)
  with np.errstate(over="ignore", invalid="ignore"):
    x = (x + 0.5j * x).astype(src) if np.dtype(src).kind == "c" else x.astype(src)
  dst_tf = tf.as_dtype(dst)
  f = tf.function(lambda v: tf.raw_ops.Cast(x=v, DstT=dst_tf, Truncate=True))
  want = f(tf.constant(x)).numpy()
  with jax.enable_x64(True):
    fn = tf2jax.convert_functional(f, x)
    static = tf2jax.convert_functional(tf.function(lambda: f(tf.constant(x))))()
    for got in (fn(x), jax.jit(fn)(x), static):
      got = np.asarray(got)
      assert got.dtype == want.dtype
      wide = np.complex128 if np.dtype(dst).kind == "c" else np.float64  # NaN-aware
      np.testing.assert_array_equal(got.astype(wide), want.astype(wide))
