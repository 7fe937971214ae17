"""Sparse-op edge cases against TF."""

import jax
import numpy as np
import tensorflow as tf

import tf2jax


def test_sparse_dense_cwise_div_by_one_broadcast_value_under_jit():
  # The 1-element dense side is broadcast; XLA would multiply by its reciprocal, which is
  # subnormal (flushed to 0) for 2**127.
  @tf.function
  def f(values, dense):
    return tf.raw_ops.SparseDenseCwiseDiv(
        sp_indices=tf.constant([[0], [1], [2]], tf.int64), sp_values=values,
        sp_shape=tf.constant([3], tf.int64), dense=dense)

  values = np.array([2.0, 3.0, 6.0], np.float32)
  fn = tf2jax.convert_functional(f, values, np.ones(1, np.float32))
  for dense in ([2.0**127], [3.0], [-1e-30]):
    dense = np.array(dense, np.float32)
    want = f(values, dense).numpy()
    assert want[0] != 0
    np.testing.assert_array_equal(jax.jit(fn)(values, dense), want)
