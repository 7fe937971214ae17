"""Keras 3 Dropout in training mode, converted and compared with TF bit for bit.

The graph also needs the core op FloorMod (Keras reduces its SeedGenerator state with
`floormod(x, 2147483646)`).
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import jax  # noqa: E402
import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402

import tf2jax  # noqa: E402


def _bits(x):
  a = np.asarray(x)
  return a.view(f"u{a.dtype.itemsize}")


@pytest.mark.parametrize("dtype,rate,noise_shape,seed", [
    ("float32", 0.3, None, 1337), ("float32", 0.5, (None, 1, 4), 2**31 + 5),
    ("float16", 0.25, None, 7), ("bfloat16", 0.6, None, 0)])
def test_keras_dropout_training_matches_tf(dtype, rate, noise_shape, seed):
  layer = keras.layers.Dropout(rate, noise_shape=noise_shape, seed=seed, dtype=dtype)
  x = np.random.default_rng(0).normal(size=(3, 5, 4)).astype(
      tf.as_dtype(dtype).as_numpy_dtype)
  layer(x, training=False)  # builds the layer (and its SeedGenerator state)

  @tf.function
  def step(x):
    return layer(x, training=True)

  with jax.enable_x64(True):  # the SeedGenerator state is int64
    jf, params = tf2jax.convert(step, tf.TensorSpec(x.shape, dtype))
    assert len(params) == 1  # the SeedGenerator's state
    (name,) = params
    jitted = jax.jit(jf)
    for call in range(3):  # each training call consumes one seed
      want = step(x).numpy()
      got, params = jitted(params, x)
      np.testing.assert_array_equal(_bits(got), _bits(want), err_msg=f"call {call}")
      state = [v for v in layer.variables if "seed_generator" in v.path]
      np.testing.assert_array_equal(np.asarray(params[name]), state[0].numpy())
