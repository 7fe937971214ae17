"""A Keras 3 model with RandomFlip, RandomRotation and Dropout, run in training mode:
converted (from a tf.function and from a SavedModel on disk) and compared with TF.

Every random decision comes from Keras SeedGenerators through stateless ops: the flips
and the dropout mask must equal TF's bit for bit, and the generators' states in
`new_params` must advance exactly as TF's variables. The rotation matrix is built from
the (exact) random angle with Sin/Cos, whose last bits differ between XLA and TF's
Eigen kernels, so rotated pixels agree to float32 rounding of the interpolation
weights (a different angle would be off by tens). RandomRotation needs
ImageProjectiveTransformV3 and EnsureShape (tf2jax-nn and the core).
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import jax  # noqa: E402
import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402

import tf2jax  # noqa: E402


def _augmenter(fill_mode: str, interpolation: str):
  inp = keras.Input((12, 10, 3))
  flipped = keras.layers.RandomFlip("horizontal_and_vertical", seed=7)(inp)
  rotated = keras.layers.RandomRotation(0.25, fill_mode=fill_mode, interpolation=interpolation,
                                        seed=11)(flipped)
  dropped = keras.layers.Dropout(0.4, seed=5)(rotated)
  features = keras.layers.Conv2D(4, 3, kernel_initializer=keras.initializers.GlorotUniform(3))(
      dropped)
  pooled = keras.layers.GlobalAveragePooling2D()(features)
  return keras.Model(inp, [flipped, rotated, dropped, pooled])


def _states(model):
  return sorted(v.numpy().tolist() for v in model.variables if "seed_generator" in v.path)


def _param_states(params):
  return sorted(np.asarray(v).tolist() for k, v in params.items() if "seed_generator" in k)


def _same_rotation(got, want, what):
  # Pixels in [0, 255]: interpolation weights within a few float32 ulps.
  np.testing.assert_allclose(got, want, rtol=0, atol=2e-3, err_msg=what)


def _check_steps(model, step, jf, params, images, steps=3):
  for call in range(steps):
    want = [t.numpy() for t in step(images)]
    got, params = jf(params, images)
    flipped, rotated, dropped, pooled = (np.asarray(g) for g in got)
    np.testing.assert_array_equal(flipped, want[0], err_msg=f"flip, call {call}")
    _same_rotation(rotated, want[1], f"rotation, call {call}")
    np.testing.assert_array_equal(dropped == 0, want[2] == 0, err_msg=f"mask, call {call}")
    _same_rotation(dropped, want[2], f"dropout, call {call}")
    np.testing.assert_allclose(pooled, want[3], rtol=1e-5, atol=1e-6)
    assert _param_states(params) == _states(model), f"generator states, call {call}"
  return params


@pytest.mark.parametrize("fill_mode,interpolation", [("reflect", "bilinear"),
                                                      ("constant", "nearest")])
def test_augmentation_training_matches_tf(fill_mode, interpolation):
  model = _augmenter(fill_mode, interpolation)
  images = np.random.default_rng(0).uniform(0, 255, (4, 12, 10, 3)).astype(np.float32)

  @tf.function
  def step(x):
    return model(x, training=True)

  with jax.enable_x64(True):  # the SeedGenerator states are int64
    jf, params = tf2jax.convert(step, tf.TensorSpec(images.shape, tf.float32))
    assert len(_param_states(params)) == 3
    _check_steps(model, step, jax.jit(jf), params, images)


def test_augmentation_from_saved_model(tmp_path):
  model = _augmenter("reflect", "bilinear")
  module = tf.Module()
  module.model = model
  # Keras 3 SeedGenerator states are not tracked through the model: list them.
  module.variables_ = list(model.variables)
  module.step = tf.function(lambda x: model(x, training=True),
                            input_signature=[tf.TensorSpec([None, 12, 10, 3], tf.float32)])
  tf.saved_model.save(module, str(tmp_path))
  restored = tf.saved_model.load(str(tmp_path))
  images = np.random.default_rng(1).uniform(0, 255, (2, 12, 10, 3)).astype(np.float32)
  with jax.enable_x64(True):
    jf, params = tf2jax.convert_from_restored(restored.step)
    for call in range(2):
      want = [t.numpy() for t in restored.step(images)]
      got, params = jax.jit(jf)(params, images)
      np.testing.assert_array_equal(np.asarray(got[0]), want[0], err_msg=f"flip {call}")
      np.testing.assert_array_equal(np.asarray(got[2]) == 0, want[2] == 0)
      for g, w in zip(got[1:3], want[1:3]):
        _same_rotation(np.asarray(g), w, f"call {call}")
      np.testing.assert_allclose(np.asarray(got[3]), want[3], rtol=1e-5, atol=1e-6)
    restored_states = sorted(v.numpy().tolist() for v in restored.variables_
                             if "seed_generator" in v.name)
    assert _param_states(params) == restored_states
