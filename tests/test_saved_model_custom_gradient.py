"""A model-shaped function from a SavedModel on disk: variables read and assigned,
elementwise math, comparisons, logic, bitwise and special functions, and a
`tf.custom_gradient`; values, new params and gradients against the restored TF model."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import tensorflow as tf

import tf2jax


@tf.custom_gradient
def _scaled_gradient(h):
  """The identity, whose gradient TF scales by 0.25 (not the true gradient)."""
  def grad(dy):
    return 0.25 * dy
  return tf.identity(h), grad


class GatedModel(tf.Module):

  def __init__(self):
    super().__init__()
    rng = np.random.default_rng(0)
    self.w1 = tf.Variable(rng.normal(size=(4, 6)).astype(np.float32), name="w1")
    self.b1 = tf.Variable(rng.normal(size=(6,)).astype(np.float32), name="b1")
    self.w2 = tf.Variable(rng.normal(size=(6, 3)).astype(np.float32) / 3, name="w2")
    self.temperature = tf.Variable(1.5, name="temperature")
    self.calls = tf.Variable(np.int32(0), trainable=False, name="calls")

  @tf.function(input_signature=[tf.TensorSpec((None, 4), tf.float32),
                                tf.TensorSpec((None,), tf.int32)])
  def __call__(self, x, flags):
    self.calls.assign_add(1)
    h = _scaled_gradient(tf.matmul(x, self.w1) + self.b1)
    h = tf.where(h > 0.0, h, 0.1 * h)
    h = tf.math.lgamma(1.5 + tf.abs(h)) + tf.math.erf(h) * tf.math.tanh(h)
    h = tf.math.xlogy(h, 1.0 + tf.square(h)) - tf.math.digamma(2.0 + tf.sigmoid(h))
    gate = tf.logical_and(tf.not_equal(tf.bitwise.bitwise_and(flags, 3), 0),
                          tf.greater_equal(tf.bitwise.right_shift(flags, 2), 1))
    y = tf.matmul(h, self.w2) / self.temperature
    y = tf.where(gate[:, None], y, tf.math.betainc(2.0, 3.0, tf.sigmoid(y)))
    # The counter is read after its assignment: the value must include this call.
    return y + 0.01 * tf.cast(self.calls, tf.float32)


@pytest.fixture(scope="module")
def restored(tmp_path_factory):
  path = str(tmp_path_factory.mktemp("gated") / "model")
  tf.saved_model.save(GatedModel(), path)
  return tf.saved_model.load(path)


def _inputs(batch):
  rng = np.random.default_rng(batch)
  return (rng.normal(size=(batch, 4)).astype(np.float32),
          rng.integers(0, 16, size=batch).astype(np.int32))


@pytest.mark.parametrize("convert", ["convert", "convert_from_restored"])
def test_values_new_params_and_gradients_match_the_restored_model(restored, convert):
  if convert == "convert":
    fn, params = tf2jax.convert(restored.__call__, tf.TensorSpec((None, 4), tf.float32),
                                tf.TensorSpec((None,), tf.int32))
  else:
    fn, params = tf2jax.convert_from_restored(restored.__call__)
  x, flags = _inputs(5)
  calls_before = int(restored.calls.numpy())
  assert int(params["calls"]) == calls_before and not params["calls"].trainable
  out, new_params = jax.jit(fn)(params, x, flags)
  want = restored(x, flags).numpy()  # also increments TF's counter
  np.testing.assert_allclose(out, want, rtol=2e-5, atol=1e-6)
  assert int(new_params["calls"]) == calls_before + 1 == int(restored.calls.numpy())
  for name in ("w1", "b1", "w2", "temperature"):
    assert params[name].trainable
    np.testing.assert_array_equal(new_params[name], params[name])

  names = {n: getattr(restored, n) for n in ("w1", "b1", "w2", "temperature")}
  with tf.GradientTape() as tape:
    tx = tf.constant(x)
    tape.watch(tx)
    loss = tf.reduce_sum(tf.square(restored(tx, flags)))
  tf_grads = tape.gradient(loss, [tx] + [names[n] for n in names])

  # fn increments the counter from the value TF's taped call started from.
  base = dict(params, calls=np.int32(calls_before + 1))
  jax_loss = lambda tp, v: jnp.sum(jnp.square(fn({**base, **tp}, v, flags)[0]))
  trainable_params = {n: params[n] for n in names}
  gp, gx = jax.jit(jax.grad(jax_loss, argnums=(0, 1)))(trainable_params, x)
  np.testing.assert_allclose(gx, tf_grads[0].numpy(), rtol=1e-4, atol=1e-5)
  for name, g in zip(names, tf_grads[1:]):
    np.testing.assert_allclose(gp[name], g.numpy(), rtol=1e-4, atol=1e-5, err_msg=name)

  # The custom gradient is what makes these match: plain autodiff differs from TF's.
  with tf2jax.override_config("convert_custom_gradient", False):
    plain, _ = tf2jax.convert(restored.__call__, tf.TensorSpec((None, 4), tf.float32),
                              tf.TensorSpec((None,), tf.int32))
  plain_loss = lambda tp, v: jnp.sum(jnp.square(plain({**base, **tp}, v, flags)[0]))
  plain_gx = jax.grad(plain_loss, argnums=1)(trainable_params, x)
  assert not np.allclose(plain_gx, tf_grads[0].numpy(), rtol=1e-2)
