"""JAX -> jax2tf (native serialization) -> tf2jax round trips, against the original JAX."""

import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import tensorflow as tf
from jax.experimental import jax2tf

import tf2jax

RNG = np.random.default_rng(0)


def conv(x):
  w = jnp.linspace(-1, 1, 3 * 3 * 3 * 4).reshape(3, 3, 3, 4)
  return jax.lax.conv_general_dilated(x, w, (1, 1), "SAME",
                                      dimension_numbers=("NHWC", "HWIO", "NHWC"))


def attention(x):
  scores = x @ jnp.swapaxes(x, -1, -2) / np.sqrt(x.shape[-1])
  return jax.nn.softmax(scores, axis=-1) @ x


def scan(x):
  return jax.lax.scan(lambda c, v: (c * 0.5 + v, jnp.tanh(c)), jnp.zeros(x.shape[1:]), x)[1]


def while_loop(x):
  return jax.lax.while_loop(lambda v: jnp.sum(v) < 100.0, lambda v: v * 2.0 + 1.0, x)


def cumsum(x):
  return jnp.cumsum(x, axis=0) + jax.lax.cummax(x, axis=1)


@jax.custom_vjp
def clipped(x):
  return jnp.sin(x)


clipped.defvjp(lambda x: (jnp.sin(x), x), lambda x, g: (jnp.clip(g * jnp.cos(x), -0.1, 0.1),))


def random_bits(x):
  return x + jax.random.uniform(jax.random.key(3), x.shape)


FUNCTIONS = {
    "conv": (conv, (2, 5, 5, 3)),
    "attention": (attention, (2, 4, 8)),
    "scan": (scan, (6, 3)),
    "while": (while_loop, (4,)),
    "cumsum": (cumsum, (4, 5)),
    "custom_vjp": (lambda x: clipped(x) * 2.0, (3, 4)),
    "random_bits": (random_bits, (3, 4)),
}


def convert(f, shape, **kwargs):
  tf_fn = tf.function(jax2tf.convert(f, with_gradient=False, **kwargs), autograph=False)
  return tf2jax.convert_functional(tf_fn, tf.TensorSpec(shape, tf.float32))


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_round_trip_values_jit_and_vmap(name):
  f, shape = FUNCTIONS[name]
  x = RNG.random(shape).astype(np.float32)
  fn = convert(f, shape)
  np.testing.assert_allclose(fn(x), f(x), rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(jax.jit(fn)(x), f(x), rtol=1e-5, atol=1e-6)
  batch = np.stack([x, 2 * x - 0.5])
  with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    got = jax.vmap(fn)(batch)
  np.testing.assert_allclose(got, jax.vmap(f)(batch), rtol=1e-5, atol=1e-6)
  assert any("one example at a time" in str(w.message) for w in caught)


def test_shape_polymorphism_any_batch_size():
  f = lambda x: jnp.tanh(x) @ jnp.ones((3, 2)) + jnp.mean(x)
  tf_fn = tf.function(jax2tf.convert(f, polymorphic_shapes=["(b, 3)"], with_gradient=False),
                      autograph=False)
  fn = jax.jit(tf2jax.convert_functional(tf_fn, tf.TensorSpec((None, 3), tf.float32)))
  for b in (1, 4, 7):
    x = RNG.random((b, 3)).astype(np.float32)
    np.testing.assert_allclose(fn(x), f(x), rtol=1e-5)


def test_saved_model_round_trip(tmp_path):
  f, shape = FUNCTIONS["attention"]
  module = tf.Module()
  module.f = tf.function(jax2tf.convert(f, with_gradient=False), autograph=False,
                         input_signature=[tf.TensorSpec(shape, tf.float32)])
  tf.saved_model.save(module, str(tmp_path))
  restored = tf.saved_model.load(str(tmp_path))
  fn = tf2jax.convert_functional_from_restored(restored.f)
  x = RNG.random(shape).astype(np.float32)
  np.testing.assert_allclose(jax.jit(fn)(x), f(x), rtol=1e-5, atol=1e-6)


def test_prevent_gradient_without_serialized_gradient():
  fn = convert(jnp.sin, (3,))
  with pytest.raises(LookupError):
    jax.grad(lambda v: jnp.sum(fn(v)))(np.ones(3, np.float32))


def test_platform_mismatch_is_refused_unless_disabled():
  tf_fn = tf.function(jax2tf.convert(jnp.sin, with_gradient=False,
                                     native_serialization_platforms=("tpu",)), autograph=False)
  spec = tf.TensorSpec((3,), tf.float32)
  with pytest.raises(tf2jax.ConversionError, match=r"platforms \('tpu',\), not 'cpu'"):
    tf2jax.convert_functional(tf_fn, spec)
  with tf2jax.override_config("xlacallmodule_strict_checks", False):
    tf2jax.convert_functional(tf_fn, spec)  # converts; running may fail on this platform


# Every function but the while loop, which JAX cannot differentiate in reverse mode.
@pytest.mark.parametrize("name", sorted(set(FUNCTIONS) - {"while"}))
def test_gradients_from_the_serialized_vjp(name):
  f, shape = FUNCTIONS[name]
  tf_fn = tf.function(jax2tf.convert(f), autograph=False)  # with_gradient=True
  fn = tf2jax.convert_functional(tf_fn, tf.TensorSpec(shape, tf.float32))
  x = RNG.random(shape).astype(np.float32)
  loss = lambda g: lambda v: jnp.sum(jnp.sin(g(v)))
  np.testing.assert_allclose(jax.grad(loss(fn))(x), jax.grad(loss(f))(x), rtol=1e-5,
                             atol=1e-6)
  np.testing.assert_allclose(jax.jit(jax.grad(loss(fn)))(x), jax.grad(loss(f))(x),
                             rtol=1e-5, atol=1e-6)
  batch = np.stack([x, x * 0.5])
  with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    got = jax.vmap(jax.grad(loss(fn)))(batch)
  np.testing.assert_allclose(got, jax.vmap(jax.grad(loss(f)))(batch), rtol=1e-5, atol=1e-6)


def _polymorphic(f):
  tf_fn = tf.function(jax2tf.convert(f, polymorphic_shapes=["(b, 3)"], with_gradient=False),
                      autograph=False)
  return tf2jax.convert_functional(tf_fn, tf.TensorSpec((None, 3), tf.float32))


def _loops(fn, x) -> bool:
  jaxpr = str(jax.make_jaxpr(jax.vmap(fn))(x))
  return "scan" in jaxpr or "while" in jaxpr


def test_vmap_folds_into_the_polymorphic_batch_dim_when_asked():
  rowwise = lambda x: jnp.tanh(x) @ jnp.arange(6.0, dtype=jnp.float32).reshape(3, 2)
  batch = RNG.random((4, 5, 3)).astype(np.float32)
  with tf2jax.override_config("xlacallmodule_vmap_merges_batch_dim", True):
    fn = _polymorphic(rowwise)
  with warnings.catch_warnings():
    warnings.simplefilter("error")  # no "one example at a time" warning
    got = jax.jit(jax.vmap(fn))(batch)
    assert not _loops(fn, batch)
  np.testing.assert_allclose(got, jax.vmap(rowwise)(batch), rtol=1e-5, atol=1e-6)


def test_vmap_stays_sequential_by_default_and_for_non_batch_outputs():
  # Batch statistics: folding the vmapped axis into b would be wrong, so the default maps
  # one example at a time; an output without the leading dim falls back even when asked.
  centered = lambda x: x - jnp.mean(x, axis=0)
  stats = lambda x: (x * 2.0, jnp.sum(x, axis=0))
  batch = RNG.random((4, 5, 3)).astype(np.float32)
  fn = _polymorphic(centered)
  with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    got = jax.vmap(fn)(batch)
  assert any("one example at a time" in str(w.message) for w in caught)
  assert _loops(fn, batch)
  np.testing.assert_allclose(got, jax.vmap(centered)(batch), rtol=1e-5, atol=1e-6)
  with tf2jax.override_config("xlacallmodule_vmap_merges_batch_dim", True):
    fn = _polymorphic(stats)
  with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    got = jax.vmap(fn)(batch)
  for g, w in zip(got, jax.vmap(stats)(batch)):
    np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-6)
