"""Each first-party plugin, loaded through its entry point, converts real TF graphs."""

import jax
import numpy as np
import pytest
import tensorflow as tf
from tensorflow.compiler.tf2xla.ops import gen_xla_ops

import tf2jax
from tf2jax_core import plugins


def provider(op):
  return plugins.manager().op_table().get(op).provider.name


def test_nn_activations_match_tf():
  @tf.function
  def forward(x, b):
    h = tf.nn.bias_add(x, b)
    return tf.nn.relu(h), tf.nn.relu6(h * 4), tf.nn.softmax(h), tf.nn.log_softmax(h)

  x = np.random.default_rng(0).normal(size=(5, 7)).astype(np.float32) * 3
  b = np.linspace(-1, 1, 7).astype(np.float32)
  fn = jax.jit(tf2jax.convert_functional(forward, x, b))
  for got, want in zip(fn(x, b), forward(x, b)):
    np.testing.assert_allclose(got, want.numpy(), rtol=1e-5, atol=1e-6)
  assert {provider(op) for op in ("Relu", "Relu6", "Softmax", "BiasAdd")} == {"tf2jax-nn"}


def test_random_draws_from_the_rng_key():
  @tf.function
  def sample():
    return tf.random.uniform([1000]), tf.random.normal([2, 3], dtype=tf.float16)

  fn = tf2jax.convert_functional(sample)
  u, n = fn(rng=jax.random.PRNGKey(0))
  tf_u, tf_n = sample()
  assert u.shape == tf_u.shape and u.dtype == tf_u.dtype.as_numpy_dtype
  assert n.shape == tf_n.shape and n.dtype == tf_n.dtype.as_numpy_dtype
  assert 0 <= float(u.min()) and float(u.max()) < 1 and abs(float(u.mean()) - 0.5) < 0.05
  np.testing.assert_array_equal(u, fn(rng=jax.random.PRNGKey(0))[0])
  assert provider("RandomUniform") == "tf2jax-random"


@pytest.mark.parametrize("jit", [False, True])
def test_controlflow_cond_with_variable_assignment(jit):
  v = tf.Variable(np.float32(0.0), name="hits")

  @tf.function
  def forward(x):
    def hit():
      v.assign_add(1.0)
      return x * 2.0

    return tf.cond(tf.reduce_sum(x) > 0, hit, lambda: x - 1.0)

  x = np.array([1.0, 2.0], np.float32)
  fn, params = tf2jax.convert(forward, x)
  fn = jax.jit(fn) if jit else fn
  for value in (x, -x):
    out, params = fn(params, value)
    np.testing.assert_array_equal(out, forward(value).numpy())
    assert float(params["hits"]) == float(v.numpy())
  assert provider("If") == "tf2jax-controlflow"


def test_controlflow_static_predicate_picks_a_branch():
  @tf.function
  def forward(x):
    return tf.cond(tf.constant(True), lambda: x + 1.0, lambda: x / 0.0)

  fn = tf2jax.convert_functional(forward, np.zeros(3, np.float32))
  jaxpr = str(jax.make_jaxpr(fn)(np.zeros(3, np.float32)))
  assert "cond" not in jaxpr and "div" not in jaxpr
  np.testing.assert_array_equal(fn(np.ones(3, np.float32)), [2.0, 2.0, 2.0])


def test_xla_dynamic_slices_match_tf_xla():
  @tf.function(jit_compile=True)
  def forward(x, start, update):
    sliced = gen_xla_ops.xla_dynamic_slice(x, start, tf.constant([2, 2]))
    return sliced, gen_xla_ops.xla_dynamic_update_slice(x, update, start)

  x = np.arange(16, dtype=np.float32).reshape(4, 4)
  update = -np.ones((2, 2), np.float32)
  fn = tf2jax.convert_functional(forward, x, np.zeros(2, np.int32), update)
  for start in ([1, 3], [0, 0], [-5, 2]):
    start = np.array(start, np.int32)
    for got, want in zip(jax.jit(fn)(x, start, update), forward(x, start, update)):
      np.testing.assert_array_equal(got, want.numpy())
  assert provider("XlaDynamicSlice") == "tf2jax-xla"
