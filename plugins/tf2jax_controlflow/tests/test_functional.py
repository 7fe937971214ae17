"""If / Case / While against TensorFlow: values, params, jit, grad and vmap."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import tensorflow as tf

import tf2jax

X = np.array([0.5, -1.0, 2.0], np.float32)


def power_loop(x, n):
  _, out = tf.while_loop(lambda i, acc: i < n, lambda i, acc: (i + 1, acc * x),
                         (tf.constant(0), tf.ones_like(x)))
  return out


def test_while_static_trip_count_is_differentiable():
  @tf.function
  def forward(x):
    return power_loop(x, tf.constant(3))

  fn = tf2jax.convert_functional(forward, X)
  np.testing.assert_allclose(jax.jit(fn)(X), forward(X).numpy(), rtol=1e-6)
  jaxpr = str(jax.make_jaxpr(fn)(X))
  assert "while" not in jaxpr or "scan" in jaxpr or "fori" in jaxpr
  with tf.GradientTape() as tape:
    x = tf.constant(X)
    tape.watch(x)
    y = tf.reduce_sum(forward(x))
  grad = jax.grad(lambda v: jnp.sum(fn(v)))(X)
  np.testing.assert_allclose(grad, tape.gradient(y, x).numpy(), rtol=1e-6)
  # vmap over the data (the trip count stays static).
  batch = np.stack([X, 2 * X])
  np.testing.assert_allclose(jax.vmap(fn)(batch), np.stack([forward(b).numpy() for b in batch]),
                             rtol=1e-6)


@pytest.mark.parametrize("n", [0, 1, 5])
def test_while_dynamic_trip_count(n):
  @tf.function
  def forward(x, n):
    return power_loop(x, n)

  fn = jax.jit(tf2jax.convert_functional(forward, X, np.int32(0)))
  np.testing.assert_allclose(fn(X, np.int32(n)), forward(X, np.int32(n)).numpy(), rtol=1e-6)


def test_while_data_dependent_loop_matches_tf():
  @tf.function
  def forward(x):
    # Double until the sum exceeds 100: the trip count depends on the data.
    return tf.while_loop(lambda v: tf.reduce_sum(v) < 100.0, lambda v: v * 2.0, [x])[0]

  fn = tf2jax.convert_functional(forward, X)
  for x in (X + 1, X * 10, X + 200):
    np.testing.assert_allclose(jax.jit(fn)(x), forward(x).numpy(), rtol=1e-6)


def test_while_body_assigns_variables():
  v = tf.Variable(np.float32(0.0), name="total")

  @tf.function
  def forward(x, n):
    def body(i):
      v.assign_add(tf.reduce_sum(x))
      return (i + 1,)

    tf.while_loop(lambda i: i < n, body, (tf.constant(0),))
    return v.read_value()

  fn, params = tf2jax.convert(forward, X, np.int32(0))
  for n, jit in ((3, False), (2, True)):
    f = jax.jit(fn) if jit else fn
    out, params = f(params, X, np.int32(n))
    tf_out = forward(X, np.int32(n))
    assert float(out) == pytest.approx(float(tf_out))
    assert float(params["total"]) == pytest.approx(float(v.numpy()))


def test_while_shape_change_is_a_clear_error():
  @tf.function
  def forward(x):
    return tf.while_loop(lambda i, v: i < 2, lambda i, v: (i + 1, tf.reshape(v, [1, -1])),
                         [0, x], shape_invariants=[tf.TensorShape([]),
                                                   tf.TensorShape(None)])[1]

  assert forward(X).shape == (1, 3)  # TF allows it with shape_invariants
  fn = tf2jax.convert_functional(forward, X)
  with pytest.raises(tf2jax.ConversionError, match=r"loop variable 3 changes from "
                     r"float32\[3\] to float32\[1, 3\]"):
    jax.jit(fn)(X)


@pytest.mark.parametrize("index", [-1, 0, 1, 2, 7])
def test_case_matches_tf_including_out_of_range(index):
  @tf.function
  def forward(x, i):
    return tf.switch_case(i, [lambda: x + 1.0, lambda: x * 2.0, lambda: -x])

  fn = tf2jax.convert_functional(forward, X, np.int32(0))
  expected = forward(X, np.int32(index)).numpy()
  np.testing.assert_allclose(fn(X, np.int32(index)), expected)
  np.testing.assert_allclose(jax.jit(fn)(X, np.int32(index)), expected)


def test_if_vmap_over_predicate():
  @tf.function
  def forward(x):
    return tf.cond(tf.reduce_sum(x) > 0, lambda: x * 2.0, lambda: x - 1.0)

  fn = tf2jax.convert_functional(forward, X)
  batch = np.stack([X, -X - 5])
  np.testing.assert_allclose(jax.vmap(fn)(batch), np.stack([forward(b).numpy() for b in batch]))
