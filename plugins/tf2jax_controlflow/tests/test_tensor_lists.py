"""tf.TensorArray / TensorList ops against TensorFlow, inside and outside loops."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import tensorflow as tf

import tf2jax

X = np.arange(12, dtype=np.float32).reshape(4, 3) / 7 - 0.5


def check(forward, *args, grad=True):
  fn = tf2jax.convert_functional(forward, *args)
  expected = forward(*args)
  for f in (fn, jax.jit(fn)):
    for got, want in zip(jax.tree.leaves(f(*args)), tf.nest.flatten(expected)):
      assert np.asarray(got).dtype == want.dtype.as_numpy_dtype
      np.testing.assert_allclose(got, want.numpy(), rtol=1e-6, atol=1e-7)
  if grad:
    with tf.GradientTape() as tape:
      x = tf.constant(args[0])
      tape.watch(x)
      y = tf.reduce_sum(tf.nest.flatten(forward(x, *args[1:]))[0])
    g = jax.grad(lambda v: jnp.sum(jax.tree.leaves(fn(v, *args[1:]))[0]))(args[0])
    np.testing.assert_allclose(g, tape.gradient(y, x).numpy(), rtol=1e-6)
  return fn


def test_unstack_read_write_stack_in_a_loop():
  @tf.function
  def forward(x):
    inputs = tf.TensorArray(tf.float32, size=4).unstack(x)
    outputs = tf.TensorArray(tf.float32, size=4)

    def body(i, acc, out):
      acc = acc * 0.5 + inputs.read(i)
      return i + 1, acc, out.write(i, tf.tanh(acc))

    _, last, out = tf.while_loop(lambda i, *_: i < 4, body,
                                 (tf.constant(0), tf.zeros([3]), outputs))
    return out.stack(), last

  check(forward, X)


def test_element_shape_unknown_until_first_write():
  @tf.function
  def forward(x):
    out = tf.TensorArray(tf.float32, size=4, element_shape=tf.TensorShape(None))

    def body(i, out):
      return i + 1, out.write(i, x * tf.cast(i, tf.float32))

    return tf.while_loop(lambda i, _: i < 4, body, (tf.constant(0), out))[1].stack()

  check(forward, X[0])


def test_dynamic_index_loop_with_data_dependent_trip_count():
  @tf.function
  def forward(x, n):
    out = tf.TensorArray(tf.float32, size=5)

    def body(i, out):
      return i + 1, out.write(i, x * tf.cast(i + 1, tf.float32))

    return tf.while_loop(lambda i, _: i < n, body, (tf.constant(0), out))[1].stack()

  fn = tf2jax.convert_functional(forward, X[0], np.int32(0))
  for n in (0, 3, 5):
    np.testing.assert_allclose(jax.jit(fn)(X[0], np.int32(n)), forward(X[0], np.int32(n)))


def test_dynamic_size_gather_scatter_concat_outside_loops():
  @tf.function
  def forward(x):
    total = tf.reduce_sum(x, [0])
    grown = tf.TensorArray(tf.float32, size=0, dynamic_size=True)
    grown = grown.write(0, total).write(1, total * 2.0).write(3, -total)
    scattered = tf.TensorArray(tf.float32, size=5).scatter([3, 1, 0, 4], x)
    return (grown.stack(), grown.gather([1, 0]), grown.size(), scattered.stack(),
            grown.concat())

  fn = check(forward, X)
  with pytest.raises(tf2jax.ConversionError, match="dynamic-size TensorArray at a traced"):
    @tf.function
    def growing(x, n):
      ta = tf.TensorArray(tf.float32, size=0, dynamic_size=True)
      return tf.while_loop(lambda i, _: i < n, lambda i, ta: (i + 1, ta.write(i, x)),
                           (0, ta))[1].stack()

    tf2jax.convert_functional(growing, X[0], np.int32(0))(X[0], np.int32(2))
  del fn


R = tf.raw_ops


def _stack(handle, shape=-1):
  return R.TensorListStack(input_handle=handle, element_shape=shape,
                           element_dtype=tf.float32)


@jax.enable_x64(True)  # int64 outputs (lengths, shapes)
def _against_tf(forward, *args):
  """The converted function raises where TF raises, else returns TF's result."""
  try:
    want = forward(*[tf.constant(a) for a in args])
  except tf.errors.InvalidArgumentError:
    with pytest.raises(Exception):
      tf2jax.convert_functional(tf.function(forward), *args)(*args)
    return None
  got = tf2jax.convert_functional(tf.function(forward), *args)(*args)
  for g, w in zip(jax.tree.leaves(got), tf.nest.flatten(want)):
    np.testing.assert_array_equal(np.asarray(g), w.numpy())
  return got


def test_element_shape_is_the_declared_one():
  for declared in (-1, [-1], [3]):
    _against_tf(lambda x: R.TensorListElementShape(
        input_handle=R.TensorListFromTensor(tensor=x, element_shape=declared),
        shape_type=tf.int32), X)
  _against_tf(lambda x: R.TensorListElementShape(
      input_handle=R.TensorListPushBack(
          input_handle=R.EmptyTensorList(element_shape=-1, max_num_elements=-1,
                                         element_dtype=tf.float32), tensor=x[0]),
      shape_type=tf.int64), X)


def test_empty_lists_need_a_known_element_shape():
  empty = np.zeros((0, 3), np.float32)
  assert _against_tf(lambda x: _stack(R.TensorListFromTensor(tensor=x, element_shape=-1)),
                     empty) is None
  _against_tf(lambda x: _stack(R.TensorListFromTensor(tensor=x, element_shape=-1), [3]),
              empty)
  assert _against_tf(lambda x: R.TensorListGather(
      input_handle=R.TensorListFromTensor(tensor=x, element_shape=-1),
      indices=tf.zeros([0], tf.int32), element_shape=-1, element_dtype=tf.float32),
      X) is None


def test_push_back_respects_max_num_elements():
  def forward(x, max_num):
    handle = R.EmptyTensorList(element_shape=-1, max_num_elements=max_num,
                               element_dtype=tf.float32)
    for row in range(3):
      handle = R.TensorListPushBack(input_handle=handle, tensor=x[row])
    return _stack(handle)
  _against_tf(lambda x: forward(x, 3), X)
  assert _against_tf(lambda x: forward(x, 2), X) is None


def test_concat_v2_of_empty_and_unwritten_lists():
  def concat(handle, shape, leading):
    return R.TensorListConcatV2(input_handle=handle, element_shape=shape,
                                leading_dims=tf.constant(leading, tf.int64),
                                element_dtype=tf.float32)
  _against_tf(lambda x: concat(R.TensorListFromTensor(tensor=x, element_shape=-1), -1, []),
              np.zeros((3, 0, 2), np.float32))
  _against_tf(lambda x: concat(R.TensorListReserve(element_shape=[-1, 3], num_elements=2,
                                                   element_dtype=tf.float32),
                               [-1, 3], [1, 2]), X)
  _against_tf(lambda x: concat(R.TensorListReserve(element_shape=[-1, 3], num_elements=0,
                                                   element_dtype=tf.float32),
                               [-1, 3], []), X)
