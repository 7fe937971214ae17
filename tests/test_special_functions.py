"""Special-function edge points that the thorough conformance profile found, against TF:
q just below 0 and huge x for Zeta, Polygamma's factorial, tiny a for Igamma, tiny x for
J1, and float16 Bessel gradients that overflow."""

import jax
import numpy as np
import pytest
import tensorflow as tf

import tf2jax

TINY32 = np.float32(-1.1754944e-38)


def check(fn_tf, *args, rtol, atol=0.0, grad=False):
  """Values (eager and jit) and, with `grad`, the gradient w.r.t. the last argument."""
  fn = tf2jax.convert_functional(tf.function(fn_tf), *args)
  want = fn_tf(*[tf.constant(a) for a in args]).numpy()
  for got in (fn(*args), jax.jit(fn)(*args)):
    got = np.asarray(got)
    assert got.dtype == want.dtype and got.shape == want.shape
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    np.testing.assert_allclose(got, want, rtol=rtol, atol=atol)
  if grad:
    with tf.GradientTape() as tape:
      last = tf.constant(args[-1])
      tape.watch(last)
      y = tf.reduce_sum(fn_tf(*args[:-1], last))
    tf_grad = tape.gradient(y, last).numpy()
    jax_grad = jax.grad(lambda v: fn(*args[:-1], v).sum())(args[-1])
    np.testing.assert_allclose(jax_grad, tf_grad, rtol=rtol)


def test_zeta_with_q_just_below_zero_and_huge_x():
  # (1 - f) rounds to 0 for q = -tiny: the first negative term must be q^-x itself.
  x = np.array([3.0, 2.0, 4.0, 2.5256836e13], np.float32)
  q = np.array([TINY32, -1e-20, -3e-7, 2.0], np.float32)
  check(tf.math.zeta, x, q, rtol=1e-6)


def test_polygamma_near_zero_and_factorials():
  a = np.array([0.0, 2.0, 4.0, 1.0, 3.0, 33.0], np.float32)
  x = np.array([1.0, TINY32, 0.5, -1e-20, 7.0, 0.9], np.float32)
  check(tf.math.polygamma, a, x, rtol=8 * np.finfo(np.float32).eps)


def test_trigamma_gradient_for_tiny_negative_x():
  with jax.enable_x64(True):
    check(tf.math.polygamma, np.array([0.0, 1.0]), np.array([-2.161986607343554e-81, -1e-200]),
          rtol=1e-13, grad=True)


@pytest.mark.parametrize("op", [tf.math.igamma, tf.math.igammac])
def test_igamma_for_tiny_a(op):
  # TF's values there are off by ~|ln a| eps (8e-6 for a = 1e-30 in float32), hence the
  # atol; a wrong branch (Igamma 0 instead of ~1, or NaN) still fails. Below a = 1e-36
  # TF's own series underflows (a TF bug), so no such a here.
  a = np.array([1e-30, 1e-12, 5e-5], np.float32)
  x = np.array([0.5, 1.0, 0.01], np.float32)
  check(op, a, x, rtol=1e-5, atol=1e-5)


def test_betainc_edges_with_nan_and_out_of_domain_parameters():
  # TF: NaN for a <= 0, b <= 0 or x outside [0, 1]; else 0 at x == 0 and 1 at x == 1,
  # even for a NaN a or b.
  grid = np.array(np.meshgrid([np.nan, 0.0, -1.0, 1.0, 2.5], [np.nan, 0.0, -1.0, 1.0, 2.5],
                              [0.0, 1.0, 0.5, np.nan, -0.5])).reshape(3, -1).astype(np.float32)
  check(tf.math.betainc, *grid, rtol=1e-5)  # XLA's interior values: ~8 eps


@pytest.mark.parametrize("op", [tf.math.igamma, tf.math.igammac])
def test_igamma_for_huge_a_where_xla_is_nan(op):
  a = np.array([3.564744e37, 3e38, 3.4e38, 1e30, 3e38], np.float32)
  x = np.array([7.129488e37, 3.4e38, 3e38, 3e30, 0.0], np.float32)
  check(op, a, x, rtol=1e-6)


def test_bessel_j1_where_tf_flushes_tiny_x_to_zero():
  # TF's J1 is 0 below |x| = 3.45e-37 (float32) and 3.2e-305 (float64), so its gradient
  # j0 - y / x is 1 there, not 1/2; just above, both are TF's ordinary values.
  for dtype, edge in [(np.float32, "0x1.d5d2b4p-122"), (np.float64, "0x1.694fdcf69cfdap-1012")]:
    edge = dtype(float.fromhex(edge))
    x = np.array([edge, np.nextafter(edge, dtype(0)), -edge / 2, 1e-300 * (dtype == np.float64),
                  0.5], dtype)
    with jax.enable_x64(dtype == np.float64):
      check(tf.math.special.bessel_j1, x, rtol=1e-6, grad=True)


@pytest.mark.parametrize("op", [tf.math.special.bessel_i0, tf.math.special.bessel_k1,
                                tf.math.special.bessel_k1e, tf.math.special.bessel_y1])
def test_float16_bessel_gradients_are_taken_in_float16(op):
  # TF's gradient ops run in float16: a derivative beyond its range is inf, so a zero
  # cotangent gives NaN and a unit one inf (I0 at 14, K1 and Y1 near 0).
  x = np.array([14.0, 0.003906, 0.001953, 1.5], np.float16)
  fn = tf2jax.convert_functional(tf.function(op), x)
  for cotangent in (np.zeros_like(x), np.ones_like(x)):
    with tf.GradientTape() as tape:
      xt = tf.constant(x)
      tape.watch(xt)
      y = op(xt)
    want = tape.gradient(y, xt, output_gradients=tf.constant(cotangent)).numpy()
    got = np.asarray(jax.vjp(fn, x)[1](cotangent)[0])
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    # TF rounds each step of its formula to float16 (K1e's cancels at 14: 1.5% apart).
    np.testing.assert_allclose(got, want, rtol=2e-3, atol=5e-4)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_erfinv_of_tiny_x_is_tfs(dtype):
  # TF computes ndtri((x + 1) / 2) / sqrt(2): 0 for |x| below ~eps / 4 (erfinv itself
  # would be ~0.886 x), and a few ulps off XLA's erfinv elsewhere.
  x = np.array([2.4e-26, -3e-20, 6e-8, 1e-12, 0.3, -0.9999, 0.5], dtype)
  with jax.enable_x64(dtype == np.float64):
    check(tf.math.erfinv, x, rtol=8 * np.finfo(dtype).eps)
