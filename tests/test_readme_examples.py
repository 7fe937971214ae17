"""The original tf2jax README's examples, run against TensorFlow."""

import jax
import jax.numpy as jnp
import keras
import numpy as np
import pytest
import tensorflow as tf

import tf2jax


@pytest.fixture
def x():
  return np.random.default_rng(0).normal(size=(128, 16)).astype(np.float32)


def test_pure_function(x):
  @tf.function
  def forward(x):
    return tf.sin(tf.cos(x))

  jax_func = tf2jax.convert_functional(forward, np.zeros_like(x))
  np.testing.assert_allclose(jax_func(x), forward(x).numpy(), rtol=1e-6, atol=1e-6)
  np.testing.assert_allclose(jax.jit(jax_func)(x), forward(x).numpy(), rtol=1e-6, atol=1e-6)


def test_keras_mlp_with_params(x):
  keras.utils.set_random_seed(0)
  model = keras.Sequential([keras.layers.Dense(64, activation="relu"), keras.layers.Dense(10)])

  @tf.function
  def forward(x):
    return model(x)

  jax_func, jax_params = tf2jax.convert(forward, np.zeros_like(x))
  assert {v.name for v in jax_params.values()} == set(jax_params)
  assert sorted(p.shape for p in jax_params.values()) == sorted(
      tuple(v.shape) for v in model.variables)
  assert all(p.trainable for p in jax_params.values())
  jax_outputs, new_params = jax.jit(jax_func)(jax_params, x)
  np.testing.assert_allclose(jax_outputs, forward(x).numpy(), rtol=1e-5, atol=1e-5)
  assert set(new_params) == set(jax_params)

  # The params are real inputs: changing them changes the output like TF's.
  doubled = {k: v * 2 for k, v in jax_params.items()}
  for var in model.variables:
    var.assign(var * 2)
  np.testing.assert_allclose(jax_func(doubled, x)[0], forward(x).numpy(), rtol=1e-5, atol=1e-4)


def test_gradients_match_tf(x):
  keras.utils.set_random_seed(1)
  model = keras.Sequential([keras.layers.Dense(8, activation="relu"), keras.layers.Dense(1)])

  @tf.function
  def loss(x):
    return tf.reduce_mean(tf.square(model(x)))

  jax_func, params = tf2jax.convert(loss, x)
  grads = jax.grad(lambda p: jax_func(p, x)[0])(params)
  with tf.GradientTape() as tape:
    value = loss(x)
  tf_grads = tape.gradient(value, model.trainable_variables)
  names = {v.name: v for v in params.values()}
  for var, g in zip(model.trainable_variables, tf_grads):
    key = var.value.name[:-2] if hasattr(var, "value") else var.name[:-2]
    assert key in names, (key, list(names))
    np.testing.assert_allclose(grads[key], g.numpy(), rtol=1e-4, atol=1e-6)


def test_saved_model_round_trip(x, tmp_path):
  @tf.function
  def forward(x):
    return tf.sin(tf.cos(x))

  model = tf.Module()
  model.f = forward
  model.f(x)  # Dummy call.
  tf.saved_model.save(model, str(tmp_path))
  restored = tf.saved_model.load(str(tmp_path))

  jax_func, jax_params = tf2jax.convert(restored.f, np.zeros_like(x))
  np.testing.assert_allclose(jax_func(jax_params, x)[0], forward(x).numpy(), rtol=1e-6)
  jax_func, jax_params = tf2jax.convert_from_restored(restored.f)
  np.testing.assert_allclose(jax_func(jax_params, x)[0], forward(x).numpy(), rtol=1e-6)


def test_saved_model_with_variables(x, tmp_path):
  keras.utils.set_random_seed(2)
  module = tf.Module()
  module.w = tf.Variable(np.random.default_rng(1).normal(size=(16, 4)).astype(np.float32))
  module.b = tf.Variable(np.zeros(4, np.float32), trainable=False)
  module.f = tf.function(lambda x: tf.nn.relu(tf.matmul(x, module.w) + module.b))
  expected = module.f(x).numpy()
  tf.saved_model.save(module, str(tmp_path))
  restored = tf.saved_model.load(str(tmp_path))

  jax_func, params = tf2jax.convert_from_restored(restored.f)
  assert sorted(p.shape for p in params.values()) == [(4,), (16, 4)]
  assert sorted(p.trainable for p in params.values()) == [False, True]
  np.testing.assert_allclose(jax.jit(jax_func)(params, x)[0], expected, rtol=1e-5, atol=1e-6)


def test_rng(x):
  @tf.function
  def forward(x):
    return x + tf.random.normal(tf.shape(x)) * 0 + tf.random.uniform([128, 16])

  jax_func, jax_params = tf2jax.convert(forward, x)
  with pytest.raises(tf2jax.MissingRngError, match="RandomUniform"):
    jax_func(jax_params, x)
  out1, _ = jax_func(jax_params, x, rng=jax.random.PRNGKey(42))
  out2, _ = jax.jit(jax_func)(jax_params, x, rng=jax.random.PRNGKey(42))
  out3, _ = jax_func(jax_params, x, rng=jax.random.PRNGKey(43))
  np.testing.assert_array_equal(out1, out2)
  assert not np.array_equal(out1, out3)
  noise = np.asarray(out1) - x
  assert noise.shape == (128, 16) and 0 <= noise.min() and noise.max() < 1


def test_strict_shape_and_dtype_checks():
  @tf.function
  def forward(x):
    return tf.sin(tf.cos(x))

  jax_func = tf2jax.convert_functional(forward, np.zeros((10, 5), np.float32))
  with pytest.raises(tf2jax.InputSpecError, match=r"shape \(20, 5\)"):
    jax_func(np.zeros((20, 5), np.float32))
  with tf2jax.override_config("strict_shape_check", False):
    assert jax_func(np.zeros((20, 5), np.float32)).shape == (20, 5)

  jax_func(np.zeros((10, 5), np.int32))  # dtypes are not checked by default
  with tf2jax.override_config("strict_dtype_check", True):
    with pytest.raises(tf2jax.InputSpecError, match="int32"):
      jax_func(np.zeros((10, 5), np.int32))


def test_force_const_float32_to_bfloat16(x):
  @tf.function
  def forward(x):
    return x + tf.constant(3.14, dtype=tf.float32)

  with tf2jax.override_config("force_const_float32_to_bfloat16", True):
    jax_func = tf2jax.convert_functional(forward, np.zeros_like(x))
  out = jax_func(jnp.asarray(x, jnp.bfloat16))
  assert out.dtype == jnp.bfloat16
  np.testing.assert_allclose(np.asarray(out, np.float32), x + 3.14, rtol=1e-2, atol=2e-2)
  # Without the flag the constant stays float32, as in TF.
  assert tf2jax.convert_functional(forward, x)(x).dtype == jnp.float32


def test_prevent_gradient():
  @tf.function
  def prevent(x):
    return tf.raw_ops.PreventGradient(input=x * x, message="prevented")

  jax_func = tf2jax.convert_functional(prevent, 0.0)
  with pytest.raises(LookupError, match="prevented"):
    jax.grad(jax_func)(3.14)
  with tf2jax.config.override_config("raise_on_prevent_gradient", False):
    jax_func = tf2jax.convert_functional(prevent, 0.0)
  np.testing.assert_allclose(jax.grad(jax_func)(3.14), 6.28, rtol=1e-6)


def _jax2tf_style_relu_graph():
  """A graph as jax2tf (without native serialization) wrote jax.nn.relu: its input an
  Identity named jax2tf_arg_0, relu as Maximum(x, 0), its output jax2tf_out."""
  @tf.function(input_signature=[tf.TensorSpec([4], tf.float32)], autograph=False)
  def fn(x):
    x = tf.identity(x, name="jax2tf_arg_0")
    y = tf.math.maximum(x, tf.constant(0.0)) * tf.constant([1.0, 2.0, 3.0, 4.0])
    return tf.identity(tf.reduce_sum(y), name="jax2tf_out")
  return fn


def test_infer_relu_from_jax2tf_gives_jax_relu_gradient_at_zero():
  x = np.asarray([-1.0, 0.0, 0.0, 2.0], np.float32)
  fn = _jax2tf_style_relu_graph()
  assert "Maximum" in {n.op for n in fn.get_concrete_function().graph.as_graph_def().node}
  jax_relu_grad = jax.grad(lambda v: jnp.sum(jax.nn.relu(v) * jnp.arange(1.0, 5.0)))(x)
  with tf.GradientTape() as tape:
    xt = tf.constant(x)
    tape.watch(xt)
    tf_grad = tape.gradient(fn(xt), xt).numpy()
  assert tf_grad[1] == 2.0 and jax_relu_grad[1] == 0.0  # the two conventions differ at 0

  jax_func = tf2jax.convert_functional(fn, x)  # the flag is on by default
  np.testing.assert_allclose(jax.grad(jax_func)(x), jax_relu_grad)
  np.testing.assert_allclose(jax_func(x), fn(x).numpy())
  with tf2jax.override_config("infer_relu_from_jax2tf", False):
    jax_func = tf2jax.convert_functional(fn, x)
  np.testing.assert_allclose(jax.grad(jax_func)(x), tf_grad)

  # Maximum(x, 0) in a graph jax2tf did not write keeps TF's gradient.
  @tf.function(input_signature=[tf.TensorSpec([4], tf.float32)], autograph=False)
  def plain(x):
    return tf.reduce_sum(tf.math.maximum(x, 0.0) * tf.constant([1.0, 2.0, 3.0, 4.0]))
  np.testing.assert_allclose(jax.grad(tf2jax.convert_functional(plain, x))(x), tf_grad)
