"""Elementwise values and gradients that XLA:CPU computes less exactly than TF unless the
lowering stops it (found by the thorough profile and by probing), against TF under jit."""

import jax
import numpy as np
import pytest
import tensorflow as tf

import tf2jax


def tf_and_jax_grads(fn_tf, x):
  fn = tf2jax.convert_functional(tf.function(fn_tf), x)
  with tf.GradientTape() as tape:
    v = tf.constant(x)
    tape.watch(v)
    y = tf.reduce_sum(fn_tf(v))
  want = tape.gradient(y, v).numpy()
  grad = jax.grad(lambda v: fn(v).sum())
  return want, np.asarray(grad(x)), np.asarray(jax.jit(grad)(x))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("op", [tf.math.asin, tf.math.acos, tf.math.atan, tf.math.atanh])
def test_inverse_trig_gradient_near_one(op, dtype):
  # 1 -+ x*x with x*x rounded (TF) differs from an FMA's unrounded product: up to 37 ulps
  # (Acos) and 2e5 ulps (Atanh) for x near +-1. And 1 / sqrt is not rsqrt.
  rng = np.random.default_rng(0)
  x = np.concatenate([1 - rng.uniform(0, 1e-3, 500), rng.uniform(-1, -0.99, 500),
                      rng.uniform(-1, 1, 500), rng.uniform(-30, 30, 100), [0.99999, -0.999, 0.0, 1.0, 2.0, np.nan]])
  with jax.enable_x64(dtype == np.float64):
    want, eager, jitted = tf_and_jax_grads(op, x.astype(dtype))
  for got in (eager, jitted):
    assert got.dtype == want.dtype
    np.testing.assert_allclose(got, want, rtol=2 * np.finfo(dtype).eps)


@pytest.mark.parametrize("op", [tf.math.log1p, lambda y: tf.math.xlog1py(np.float64(3), y)])
def test_float64_log1p_near_minus_0_4(op):
  # XLA's float64 log1p is up to 120 ulps off around -0.41; TF is within 2 ulps.
  y = np.random.default_rng(0).uniform(-0.6, -0.2, 20_000)
  y = np.concatenate([y, [-1.0, -2.0, 1e-300, -1e-17, 1.11e-16, np.inf, -np.inf, np.nan]])
  with jax.enable_x64(True):
    fn = tf2jax.convert_functional(tf.function(op), y)
    got = np.asarray(jax.jit(fn)(y))
  want = op(tf.constant(y)).numpy()
  np.testing.assert_allclose(got, want, rtol=4 * np.finfo(np.float64).eps)


def test_float64_atanh_near_0_41():
  # XLA's float64 atanh (through its log1p) is up to 73 ulps off there.
  x = np.random.default_rng(0).uniform(-0.6, 0.6, 20_000)
  x = np.concatenate([x, [-1.0, 1.0, 2.0, 0.0, -0.0, 1e-300, -1e-20, np.nan]])
  with jax.enable_x64(True):
    fn = tf2jax.convert_functional(tf.function(tf.math.atanh), x)
    got = np.asarray(jax.jit(fn)(x))
  want = tf.math.atanh(tf.constant(x)).numpy()
  np.testing.assert_allclose(got, want, rtol=4 * np.finfo(np.float64).eps)
  real = ~np.isnan(want)
  np.testing.assert_array_equal(np.signbit(got[real]), np.signbit(want[real]))


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_atan2_gradient_is_tfs_formula(dtype):
  # TF: g / (x**2 + y**2), then times x or -y. In float16 the quotient overflows (inf at
  # x = 1e-3, y = 0) where JAX's x / (x**2 + y**2) is 1024.
  rng = np.random.default_rng(0)
  y = np.concatenate([[0, 0, 1e-3, 100, 0], rng.uniform(-3, 3, 300)]).astype(dtype)
  x = np.concatenate([[1e-3, 1, 0, 1e-3, 0], rng.uniform(-3, 3, 300)]).astype(dtype)
  with jax.enable_x64(dtype == np.float64):
    fn = tf2jax.convert_functional(tf.function(tf.math.atan2), y, x)
    got = jax.jit(jax.grad(lambda a, b: fn(a, b).sum(), (0, 1)))(y, x)
  with tf.GradientTape() as tape:
    a, b = tf.constant(y), tf.constant(x)
    tape.watch([a, b])
    total = tf.reduce_sum(tf.math.atan2(a, b))
  for g, w in zip(got, tape.gradient(total, [a, b])):
    np.testing.assert_allclose(np.asarray(g, np.float64), w.numpy().astype(np.float64),
                               rtol=2 * np.finfo(dtype).eps)


@pytest.mark.parametrize("dtype", [np.complex64, np.complex128])
def test_complex_expm1_where_cos_b_is_near_one(dtype):
  # The real part expm1(a) cos b + cos b - 1: TF (Eigen) keeps it, XLA's formula loses it
  # (1742 ulps off in complex128).
  rng = np.random.default_rng(0)
  z = np.concatenate([1j * rng.uniform(-50, 50, 500), 1j * np.array([37.6875, 1e-3]),
                      rng.uniform(-3, 3, 500) + 1j * rng.uniform(-50, 50, 500)]).astype(dtype)
  with jax.enable_x64(dtype == np.complex128):
    fn = tf2jax.convert_functional(tf.function(tf.math.expm1), z)
    static = tf2jax.convert_functional(tf.function(lambda: tf.math.expm1(tf.constant(z))))()
    for got in (jax.jit(fn)(z), static):
      got = np.asarray(got).astype(np.complex128)
      want = tf.math.expm1(z).numpy().astype(np.complex128)
      np.testing.assert_array_less(np.abs(got - want), 4 * np.finfo(dtype).eps * np.abs(want) + 1e-300)


@pytest.mark.parametrize("dtype,x,y,g", [
    (np.float32, 2.0, -3.4028235e38, 2.0),  # g * y = -inf, times 2**(y - 1) = 0: NaN
    (np.float64, 0.0, 2.2250738585072014e-308, 0.5),  # g * y flushed to 0, times inf
    (np.float16, -200.0, 2.0, 2.0)])  # g * z overflows float16, times log_x := 0: NaN
def test_pow_gradient_multiplies_in_tfs_order(dtype, x, y, g):
  x, y, g = (np.array([v], dtype) for v in (x, y, g))
  with jax.enable_x64(dtype == np.float64):
    fn = tf2jax.convert_functional(tf.function(tf.math.pow), x, y)
    _, vjp = jax.vjp(jax.jit(fn), x, y)
    got = [np.asarray(v, np.float64) for v in vjp(g)]
  with tf.GradientTape() as tape:
    a, b = tf.constant(x), tf.constant(y)
    tape.watch([a, b])
    z = tf.math.pow(a, b)
  want = [w.numpy().astype(np.float64) for w in tape.gradient(z, [a, b], output_gradients=g)]
  for gv, wv in zip(got, want):
    np.testing.assert_allclose(gv, wv, rtol=4 * np.finfo(dtype).eps)


@pytest.mark.parametrize("dtype", [np.complex64, np.complex128])
def test_complex_log1p_of_minus_one_is_tfs(dtype):
  # TF: -inf + NaN j (log(0) would be -inf + 0j); Xlog1py keeps x * log1p(y) as TF does.
  z = np.array([-1 + 0j, complex(-1, -0.0), -1 + 1j, 0.5j], dtype)
  x = np.array([1, 2 - 1j, 1, 1], dtype)
  with jax.enable_x64(dtype == np.complex128):
    for op, args in [(tf.math.log1p, (z,)), (tf.math.xlog1py, (x, z))]:
      want = op(*args).numpy()
      got = np.asarray(jax.jit(tf2jax.convert_functional(tf.function(op), *args))(*args))
      np.testing.assert_array_equal(np.isnan(got.real), np.isnan(want.real))
      np.testing.assert_array_equal(np.isnan(got.imag), np.isnan(want.imag))
      np.testing.assert_allclose(got.real, want.real, atol=2 * np.finfo(dtype).eps)


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
@pytest.mark.parametrize("op", [tf.math.sinh, tf.math.cosh])
def test_real_sinh_cosh_at_large_x(op, dtype):
  # XLA's exp(|x| - log 2) rounds the subtraction: 24 ulps off TF at |x| ~ 89 (float32),
  # 495 ulps near 710 (float64).
  top = float(np.log(np.finfo(dtype).max)) + 0.69
  x = np.random.default_rng(0).uniform(-top, top, 20_000)
  x = np.concatenate([x, np.linspace(top - 3, top + 1, 2000), np.linspace(-3, 3, 2001),
                      [0.0, -0.0, 1e-30, np.inf, -np.inf, np.nan]]).astype(dtype)
  with jax.enable_x64(dtype == np.float64):
    fn = tf2jax.convert_functional(tf.function(op), x)
    got = np.asarray(jax.jit(fn)(x))
    want_grad, _, grad = tf_and_jax_grads(op, x)
  want = op(tf.constant(x)).numpy()
  rtol = 6 * np.finfo(dtype).eps
  np.testing.assert_allclose(got, want, rtol=rtol)
  np.testing.assert_array_equal(np.signbit(got), np.signbit(want))
  np.testing.assert_allclose(grad, want_grad, rtol=rtol)
