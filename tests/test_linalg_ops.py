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
