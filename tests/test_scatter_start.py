"""jaxlib 0.10.2's XLA:CPU merged a scatter's zero start value with equal zero indices
(CSE) and then overwrote that buffer in place: under jit(vmap), with int32 ids fixed to 0
in the graph and a batch as large as the number of ids, sums came out wrong. The lowerings
pass their start values through a barrier; each case is compared with TF row by row."""

import jax
import numpy as np
import pytest
import tensorflow as tf

import tf2jax

ZEROS = np.zeros(3, np.int32)
OPS = {
    "SegmentSum": lambda v: tf.math.segment_sum(v, ZEROS),
    "SegmentMean": lambda v: tf.math.segment_mean(v, ZEROS),
    "UnsortedSegmentSum": lambda v: tf.math.unsorted_segment_sum(v, ZEROS, 1),
    "SparseSegmentSum": lambda v: tf.sparse.segment_sum(v, ZEROS, ZEROS),
    "ScatterNd": lambda v: tf.scatter_nd(ZEROS[:, None], v, [1]),
    "TensorScatterAdd": lambda v: tf.tensor_scatter_nd_add(tf.zeros([1], tf.int32),
                                                           ZEROS[:, None], v),
    "TensorScatterMax": lambda v: tf.tensor_scatter_nd_max(tf.zeros([1], tf.int32),
                                                           ZEROS[:, None], v),
    "Bincount": lambda v: tf.math.bincount(ZEROS, weights=v, minlength=1, maxlength=1),
    "UnsortedSegmentProd": lambda v: tf.math.unsorted_segment_prod(v, ZEROS, 1),
    "SparseReduceSum": lambda v: tf.sparse.reduce_sum(
        tf.sparse.SparseTensor(np.zeros((3, 2), np.int64), v, [1, 2]), axis=1),
}


@pytest.mark.parametrize("op", sorted(OPS))
def test_jit_vmap_with_constant_zero_ids(op):
  fn_tf = OPS[op]
  rows = np.array([[1, 2, 3], [4, 5, 6], [7, 8, 9]], np.int32)
  fn = tf2jax.convert_functional(tf.function(fn_tf), rows[0])
  want = np.stack([fn_tf(tf.constant(r)).numpy() for r in rows])
  got = np.asarray(jax.jit(jax.vmap(fn))(rows))
  np.testing.assert_array_equal(got, want)
