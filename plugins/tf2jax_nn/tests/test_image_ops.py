"""tf2jax-nn's image ops (resize.py, color.py, crops.py) through the public tf.image API
on larger images than the conformance specs draw, and their conversion errors."""

from __future__ import annotations

import jax
import numpy as np
import pytest
import tensorflow as tf

import tf2jax
from tf2jax_core import ConversionError


def _compare(fn, *args, rtol=2e-5, atol=2e-5):
  want = fn(*[tf.constant(a) for a in args]).numpy()
  jax_fn = tf2jax.convert_functional(tf.function(fn, autograph=False), *args)
  got = np.asarray(jax.jit(jax_fn)(*args))
  assert got.dtype == want.dtype and got.shape == want.shape
  np.testing.assert_allclose(got, want, rtol=rtol, atol=atol)


IMAGE = np.random.RandomState(0).uniform(0, 1, (2, 37, 29, 3)).astype(np.float32)


@pytest.mark.parametrize("method,antialias", [("bicubic", False), ("area", False),
                                              ("lanczos3", True), ("lanczos5", False),
                                              ("mitchellcubic", True), ("gaussian", True)])
@pytest.mark.parametrize("size", [(11, 64), (80, 13)])
def test_tf_image_resize(method, antialias, size):
  _compare(lambda x: tf.image.resize(x, size, method=method, antialias=antialias), IMAGE)


def test_crop_and_resize_and_colour_ops():
  boxes = np.array([[0.1, 0.2, 0.9, 0.7], [0.8, 0.9, -0.2, 0.1], [-0.5, 0.3, 1.4, 1.2]],
                   np.float32)
  box_ind = np.array([0, 1, 1], np.int32)
  _compare(lambda x, b: tf.image.crop_and_resize(x, b, box_ind, (17, 9)), IMAGE, boxes)
  _compare(lambda x: tf.image.adjust_hue(tf.image.adjust_saturation(x, 1.7), 0.3), IMAGE)
  _compare(lambda x: tf.image.hsv_to_rgb(tf.image.rgb_to_hsv(x)), IMAGE)


def test_extract_glimpse_random_noise_is_a_conversion_error():
  fn = tf.function(lambda x, o: tf.image.extract_glimpse(x, (5, 5), o, noise="uniform"))
  offsets = np.zeros((2, 2), np.float32)
  with pytest.raises(ConversionError, match="ExtractGlimpseV2.*noise"):
    tf2jax.convert_functional(fn, IMAGE, offsets)
  zero = lambda x, o: tf.image.extract_glimpse(x, (5, 8), o, noise="zero")
  _compare(zero, IMAGE, np.array([[0.3, -0.9], [0.95, 0.1]], np.float32))


def test_scale_and_translate_needs_a_static_scale():
  def fn(x, scale):
    return tf.raw_ops.ScaleAndTranslate(images=x, size=[8, 8], scale=scale,
                                        translation=[0.0, 0.0])
  scale = np.ones(2, np.float32)
  with pytest.raises(ConversionError, match="ScaleAndTranslate.*known at conversion time"):
    tf2jax.convert_functional(tf.function(fn), IMAGE, scale)(IMAGE, scale)
