"""Flax models -> jax2tf -> SavedModel on disk -> tf2jax, against the original Flax model:
values under jit for several batch sizes, gradients w.r.t. params and inputs, and vmap."""

import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import tensorflow as tf
from flax import linen as nn
from jax.experimental import jax2tf

import tf2jax


class MLP(nn.Module):
  @nn.compact
  def __call__(self, x):
    return nn.Dense(3)(nn.gelu(nn.Dense(16)(x)))


class CNN(nn.Module):
  @nn.compact
  def __call__(self, x):
    x = nn.relu(nn.Conv(8, (3, 3))(x))
    x = nn.avg_pool(x, (2, 2), (2, 2))
    x = nn.LayerNorm()(x)
    return nn.Dense(4)(x.reshape((x.shape[0], -1)))


MODELS = {"mlp": (MLP, (7,)), "cnn": (CNN, (8, 8, 3))}


def saved_and_converted(name, tmp_path):
  """The Flax model, its params, and the tf2jax conversion of its jax2tf SavedModel."""
  model_cls, feature_shape = MODELS[name]
  model = model_cls()
  x0 = np.zeros((1,) + feature_shape, np.float32)
  params = model.init(jax.random.key(0), x0)
  leaves, treedef = jax.tree_util.tree_flatten(params)

  def apply_flat(flat, x):
    return model.apply(jax.tree_util.tree_unflatten(treedef, flat), x)

  module = tf.Module()
  module.params = [tf.Variable(leaf, name=f"param{i}") for i, leaf in enumerate(leaves)]
  exported = jax2tf.convert(apply_flat, polymorphic_shapes=[None, "(b, ...)"])
  module.f = tf.function(lambda x: exported(module.params, x), autograph=False,
                         input_signature=[tf.TensorSpec((None,) + feature_shape, tf.float32)])
  tf.saved_model.save(module, str(tmp_path))
  restored = tf.saved_model.load(str(tmp_path))
  fn, tf2jax_params = tf2jax.convert_from_restored(restored.f)
  names = [f"param{i}" for i in range(len(leaves))]
  assert sorted(tf2jax_params) == sorted(names)
  return model, params, treedef, names, fn, tf2jax_params


@pytest.mark.parametrize("name", sorted(MODELS))
def test_flax_round_trip(name, tmp_path):
  model, params, treedef, names, fn, tf2jax_params = saved_and_converted(name, tmp_path)
  # The converted params are the Flax params.
  for n, leaf in zip(names, jax.tree_util.tree_leaves(params)):
    np.testing.assert_array_equal(tf2jax_params[n], leaf)
  feature_shape = MODELS[name][1]
  rng = np.random.default_rng(0)
  jitted = jax.jit(lambda p, x: fn(p, x)[0])
  for batch in (1, 5):
    x = rng.normal(size=(batch,) + feature_shape).astype(np.float32)
    np.testing.assert_allclose(jitted(tf2jax_params, x), model.apply(params, x),
                               rtol=1e-5, atol=1e-6)

  # Gradients (from jax2tf's serialized VJP) w.r.t. params and inputs.
  x = rng.normal(size=(3,) + feature_shape).astype(np.float32)
  loss = lambda out: jnp.sum(jnp.sin(out))
  got_p, got_x = jax.jit(jax.grad(lambda p, x: loss(fn(p, x)[0]), argnums=(0, 1)))(
      tf2jax_params, x)
  want_p, want_x = jax.grad(lambda p, x: loss(model.apply(p, x)), argnums=(0, 1))(params, x)
  np.testing.assert_allclose(got_x, want_x, rtol=1e-4, atol=1e-6)
  for n, leaf in zip(names, jax.tree_util.tree_leaves(want_p)):
    np.testing.assert_allclose(got_p[n], leaf, rtol=1e-4, atol=1e-6)

  # vmap over a leading axis of examples (each a batch of 2).
  xs = rng.normal(size=(3, 2) + feature_shape).astype(np.float32)
  with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    got = jax.vmap(lambda x: fn(tf2jax_params, x)[0])(xs)
  np.testing.assert_allclose(got, jax.vmap(lambda x: model.apply(params, x))(xs),
                             rtol=1e-5, atol=1e-6)
