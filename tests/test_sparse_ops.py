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


def test_sparse_reduce_groups_landing_on_one_position_overwrite_as_in_tf():
  # TF checks an index's output position, not each index: [1, -1, 0] of a [2, 1, 1] output
  # lands on [0, 0, 0]. It assigns each group's reduction there, so the group sorted last
  # wins; valid duplicates ([0, 0, 0] twice) are one group and are reduced together.
  indices = np.array([[1, -1, 0], [0, 0, 0], [0, 0, 0], [1, 0, 0]], np.int64)
  values = np.array([5.0, 2.0, 3.0, 7.0], np.float32)
  for op in ("SparseReduceSum", "SparseReduceMax"):
    for axes in ([], [2]):
      @tf.function
      def f(i, v, op=op, axes=axes):
        return getattr(tf.raw_ops, op)(
            input_indices=i, input_values=v, input_shape=tf.constant([2, 1, 1], tf.int64),
            reduction_axes=tf.constant(axes, tf.int32), keep_dims=False)
      want = f(tf.constant(indices), values).numpy()
      with jax.enable_x64(True):
        fn = tf2jax.convert_functional(f, indices, values)
        np.testing.assert_array_equal(fn(indices, values), want, err_msg=f"{op} {axes}")
        np.testing.assert_array_equal(jax.jit(fn)(indices, values), want,
                                      err_msg=f"{op} {axes} jit")
