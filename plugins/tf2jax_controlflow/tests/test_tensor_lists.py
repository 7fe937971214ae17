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
