"""Conformance specs of the nn plugin's colour ops (tf2jax_nn.color).

Pixels are mostly in [0, 1] (what images hold), with exact ties between channels (grey
pixels, two equal channels) and some values outside [0, 1]. No NaN: TF's scalar and Eigen
code pick NaN or the other operand depending on vectorisation.

AdjustContrast was removed from TF at GraphDef version 2: TF runs its kernel's formula
(written with TF ops), and the traced graph is rewritten into one holding the op.
"""

from __future__ import annotations

import math

import numpy as np
from hypothesis import strategies as st

from tf2jax_conformance import Example, OpSpec, Tolerance
from tf2jax_conformance import dtypes as D

_NO_GRAD = ("jit", "static", "x64", "vmap")


def _shape(min_rank: int, channels: int | None = 3):
  dims = st.lists(st.integers(0, 3), min_size=min_rank - 1, max_size=3)
  last = st.just(channels) if channels else st.integers(1, 4)
  return st.tuples(dims, last).map(lambda t: (*t[0], t[1]))


def _pixels(dtype, shape, low=-0.25, high=1.25):
  n = math.prod(shape)
  value = st.one_of(st.sampled_from([0.0, 0.25, 0.5, 1.0]), st.floats(0, 1, width=16),
                    st.floats(low, high, width=16))
  return st.lists(value, min_size=n, max_size=n).map(
      lambda xs: np.array(xs, np.float64).astype(D.np_dtype(dtype)).reshape(shape))


def _images(dtype, min_rank=1, channels=3, **kw):
  return _shape(min_rank, channels).flatmap(lambda s: _pixels(dtype, s, **kw))


def _hsv_example(dtype):
  return _images(dtype).map(lambda x: Example({"images": x}))


def _scalar_example(name, values, min_rank=3, channels=3):
  def example(dtype):
    return st.tuples(_images(dtype, min_rank, channels), st.sampled_from(values)).map(
        lambda t: Example({"images": t[0], name: np.array(t[1], np.float32)}))
  return example


def _contrast_v1(dtype):
  if dtype in D.INT:
    info = D.iinfo(dtype)
    lo, hi = max(int(info.min), -300), min(int(info.max), 300)
    images = _shape(3, None).flatmap(lambda s: st.lists(
        st.integers(lo, hi), min_size=math.prod(s), max_size=math.prod(s)).map(
        lambda xs: np.array(xs, D.np_dtype(dtype)).reshape(s)))
  else:
    images = _images(dtype, 3, None)
  bounds = st.sampled_from([(0.0, 1.0), (-1e30, 1e30), (0.0, 255.0), (-5.0, 5.0)])
  return st.tuples(images, st.sampled_from([0.0, 0.5, 1.0, 2.5, -1.0]), bounds).map(
      lambda t: Example({"images": t[0], "contrast_factor": np.array(t[1], np.float32),
                         "min_value": np.array(t[2][0], np.float32),
                         "max_value": np.array(t[2][1], np.float32)}))


def _contrast_v1_build(example):
  import tensorflow as tf
  del example

  def body(images, factor, lo, hi):
    x = tf.cast(tf.identity(images, name="c_images"), tf.float32)
    factor, lo, hi = (tf.identity(v, name=f"c_{k}") for k, v in
                      zip(["factor", "lo", "hi"], [factor, lo, hi]))
    mean = tf.reduce_mean(x, axis=[-3, -2], keepdims=True)
    out = tf.maximum(tf.minimum((x - mean) * factor + mean, hi), lo)
    return tf.identity(out, name="c_out")
  return body


def _contrast_v1_rewrite(graph_def, example):
  del example
  out = next(n for n in graph_def.node if n.name == "c_out")
  images = next(n for n in graph_def.node if n.name == "c_images")
  node = graph_def.node.add(name="adjust_contrast", op="AdjustContrast",
                            input=["c_images", "c_factor", "c_lo", "c_hi"])
  node.attr["T"].type = images.attr["T"].type
  out.input[0] = "adjust_contrast"
  graph_def.versions.producer = 1


def _mean_tolerance(dtype, example):
  # The mean over height x width: summation orders differ (TF's kernels sum row by row).
  x = np.asarray(example.inputs["images"], np.float64)
  n = x.shape[-3] * x.shape[-2] if x.ndim >= 3 else 1
  mag = float(np.max(np.abs(x))) if x.size else 0.0
  factor = abs(float(example.inputs["contrast_factor"])) + 1
  return Tolerance(rtol=4e-7, atol=2 * n * 6e-8 * mag * factor + 1e-30)


def _hsv_tolerance(dtype, example):
  # A few ulps of the results' scale (pixels are within [-0.25, 1.25]): TF's Eigen half
  # code rounds every operation, XLA may keep fused intermediates in float32, and hues
  # are differences divided by the range.
  eps = float(D.finfo(dtype).eps)
  return Tolerance(rtol=4 * eps, atol=4 * eps)


def _hue_tolerance(dtype, example):
  # Scalar float32 code: the hue goes through [0, 6) and back; under jit XLA may fuse
  # a multiply-add (TF's build has no FMA): an ulp or two of the pixel scale.
  return Tolerance(rtol=2e-6, atol=2e-6)


def specs() -> list[OpSpec]:
  return [
      OpSpec("RGBToHSV", _hsv_example, tolerance=_hsv_tolerance,
             grad_tolerance=lambda d, e: Tolerance(rtol=1e-2 if d in ("float16", "bfloat16")
                                                   else 1e-5, atol=1e-2),
             notes="The gradient is TF's _RGBToHSVGrad formula (a custom VJP), not the "
                   "derivative of the forward: TF zeroes non-positive channels' terms."),
      OpSpec("HSVToRGB", _hsv_example, transforms=_NO_GRAD, tolerance=_hsv_tolerance,
             notes="TF registers no gradient (NotDifferentiable)."),
      OpSpec("AdjustContrastv2", _scalar_example("contrast_factor", [0.0, 0.5, 1.0, 2.5, -1.0],
                                                 channels=None),
             transforms=_NO_GRAD, tolerance=_mean_tolerance,
             notes="TF registers no gradient. The mean's summation order differs."),
      OpSpec("AdjustContrast", _contrast_v1, build=_contrast_v1_build,
             rewrite=_contrast_v1_rewrite, transforms=_NO_GRAD, tolerance=_mean_tolerance,
             notes="Removed from TF at GraphDef version 2: TF runs its kernel's formula, "
                   "rewritten into the op (see the module docstring). No gradient."),
      OpSpec("AdjustHue", _scalar_example("delta", [0.0, 0.1, -0.3, 0.5, -1.0, 1.0, 0.999]),
             transforms=_NO_GRAD, tolerance=_hue_tolerance, notes="TF registers no gradient."),
      OpSpec("AdjustSaturation", _scalar_example("scale", [0.0, 0.5, 1.0, 1.5, 3.0, -1.0]),
             transforms=_NO_GRAD, tolerance=_hue_tolerance, notes="TF registers no gradient."),
  ]
