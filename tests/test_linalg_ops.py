"""Linear-algebra lowerings against TF: the cases the conformance specs' draws reach rarely."""

import jax
import numpy as np
import pytest
import tensorflow as tf

import tf2jax


@pytest.mark.parametrize("shape", [(1, 0), (0, 1, 0), (3, 2), (2, 3), (2, 2)])
def test_qr_full_matrices_gradient_raises_where_tfs_does(shape):
  # TF's QrGrad raises for full_matrices with more rows than columns, empty ones included
  # (JAX's QR derivative gave zeros for (1, 0): found by the thorough run).
  x = np.ones(shape, np.float32) + np.eye(*shape[-2:], dtype=np.float32)
  f = tf.function(lambda x: tf.raw_ops.Qr(input=x, full_matrices=True)[1])
  tx = tf.constant(x)
  try:  # (TF raises when the tape records the tf.function's call)
    with tf.GradientTape() as tape:
      tape.watch(tx)
      y = tf.reduce_sum(f(tx))
    want = tape.gradient(y, tx).numpy()
  except NotImplementedError:
    want = None
  fn = tf2jax.convert_functional(f, x)
  grad = jax.grad(lambda x: fn(x).sum())
  if want is None:
    with pytest.raises(Exception, match="no gradient for Qr with full_matrices=True"):
      grad(x)
  else:
    np.testing.assert_allclose(np.asarray(grad(x)), want, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("t", [-1e-30, -1e-10, 0.0])
def test_matrix_square_root_where_tfs_schur_block_fails(t):
  # TF's (Eigen's) square root of a real 2x2 Schur block whose complex eigenvalues have
  # imaginary parts near eps is wrong ([[2, -1e-30], [0.5, 2]] -> 1.414 I, residual 0.5);
  # tf2jax's squares back to the input, and matches TF where TF's does.
  a = np.array([[2.0, t], [0.5, 2.0]])
  f = tf.function(lambda x: tf.raw_ops.MatrixSquareRoot(input=x))
  with jax.enable_x64(True):
    got = np.asarray(jax.jit(tf2jax.convert_functional(f, a))(a))
  np.testing.assert_allclose(got @ got, a, rtol=0, atol=1e-15)
  want = f(tf.constant(a)).numpy()
  if np.abs(want @ want - a).max() < 1e-15:
    np.testing.assert_allclose(got, want, rtol=1e-14, atol=1e-30)
  else:
    assert t == -1e-30  # the case TF gets wrong


@pytest.mark.parametrize("dtype", [np.complex64, np.complex128])
def test_matrix_logarithm_of_defective_matrices(dtype):
  # A Jordan block has no eigendecomposition: log [[2, 0.5j], [0, 2]] has 0.25j at
  # [0, 1], where V log(W) V^-1 gave 0 (found by the thorough run's vmap rows).
  x = np.stack([np.array([[2, 0.5j], [0, 2]]), np.array([[2.5, 0], [0.5j, 2]]),
                np.array([[-1, 0], [0, 1j]])]).astype(dtype)
  f = tf.function(lambda x: tf.raw_ops.MatrixLogarithm(input=x))
  want = f(tf.constant(x)).numpy()
  tol = 64 * 3 * np.finfo(dtype).eps
  with jax.enable_x64(dtype == np.complex128):
    fn = tf2jax.convert_functional(f, x[0])
    for got in ([fn(row) for row in x], jax.jit(jax.vmap(fn))(x)):
      np.testing.assert_allclose(np.stack(got), want, rtol=tol, atol=tol)


def test_matrix_logarithm_gradient_raises_as_tfs_does():
  x = np.array([[2, 0.5j], [0, 2]], np.complex64)
  f = tf.function(lambda x: tf.raw_ops.MatrixLogarithm(input=x))
  tx = tf.constant(x)
  with pytest.raises(LookupError):  # TF registers no gradient for it
    with tf.GradientTape() as tape:
      tape.watch(tx)
      y = tf.math.real(tf.reduce_sum(f(tx)))
    tape.gradient(y, tx)
  fn = tf2jax.convert_functional(f, x)
  with pytest.raises(Exception, match="no gradient for MatrixLogarithm"):
    jax.jvp(fn, (x,), (x,))
