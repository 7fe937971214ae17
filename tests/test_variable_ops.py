"""Resource-variable ops where TF's kernels differ from the plain ops, against TF."""

import jax
import numpy as np
import pytest
import tensorflow as tf

import tf2jax

P0 = np.arange(12, dtype=np.float32).reshape(3, 4)


def _gather_fn(indices=None):
  """ResourceGather with batch_dims 1 (and the variable's value, which makes the function
  capture the variable, not only its handle)."""
  v = tf.Variable(P0)
  gather = lambda i: (tf.raw_ops.ResourceGather(resource=v.handle, indices=i,
                                                dtype=tf.float32, batch_dims=1),
                      v.read_value())
  if indices is None:  # indices an input
    return tf.function(gather)
  return tf.function(lambda: gather(tf.constant(indices)))


@pytest.mark.parametrize("indices", [[0, 0, -1], [[0, 4], [-2, 3], [1, 0]]])
def test_resource_gather_batch_dims_reads_across_batches_as_tf(indices):
  # TF's kernel offsets each batch's indices into the flattened [3 * 4] params: -1 in
  # batch 2 reads P0[1, 3], 4 in batch 0 reads P0[1, 0]. GatherV2 would raise.
  indices = np.array(indices, np.int32)
  fn = _gather_fn(indices)
  want = fn()[0].numpy()
  jax_fn, params = tf2jax.convert(fn)
  np.testing.assert_array_equal(np.asarray(jax_fn(params)[0][0]), want)
  fn = _gather_fn()
  jax_fn, params = tf2jax.convert(fn, tf.TensorSpec(indices.shape, tf.int32))
  (got, _), _ = jax.jit(jax_fn)(params, indices)
  np.testing.assert_array_equal(np.asarray(got), want)
  with pytest.raises(tf.errors.InvalidArgumentError):
    tf.gather(tf.constant(P0), indices, axis=1, batch_dims=1)


def test_resource_gather_outside_the_flattened_params_raises_as_tf():
  indices = np.array([0, 0, 4], np.int32)  # batch 2: flat index 2 * 4 + 4 = 12
  fn = _gather_fn(indices)
  with pytest.raises(tf.errors.InvalidArgumentError, match=r"indices\[2\] = 12 is not in"):
    fn()
  with pytest.raises(Exception, match=r"indices\[2\] = 12 is not in \[0, 4\)"):
    jax_fn, params = tf2jax.convert(fn)
    jax_fn(params)


def test_resource_scatter_div_by_a_huge_scalar_is_a_division():
  # XLA would divide by multiplying with the reciprocal, 2**-127 (subnormal), flushed
  # to 0: TF's 2 / 2**127 is 2**-126, the smallest normal float32.
  v = tf.Variable(np.full((2, 3), 2.0, np.float32))

  @tf.function
  def fn(u):
    with tf.control_dependencies([tf.raw_ops.ResourceScatterDiv(
        resource=v.handle, indices=tf.constant([1], tf.int32), updates=u)]):
      return v.read_value()

  jax_fn, params = tf2jax.convert(fn, tf.TensorSpec([], tf.float32))
  big = np.float32(2.0 ** 127)
  got, _ = jax.jit(jax_fn)(params, big)
  want = fn(big).numpy()
  assert want[1, 0] == np.float32(2.0 ** -126)
  np.testing.assert_array_equal(np.asarray(got), want)
