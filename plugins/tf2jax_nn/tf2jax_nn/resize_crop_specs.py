"""Conformance specs of the nn plugin's ResizeBicubic, ResizeArea, ScaleAndTranslate,
CropAndResize, ExtractGlimpseV2 and DrawBoundingBoxes(V2).

Images are small (sizes 1 to 6) with output sizes smaller, equal to and larger than the
input, every align_corners / half_pixel_centers combination (both: TF rejects it), every
kernel type and antialias setting. Float pixels are finite: these kernels multiply
weights of 0 by the pixels (an infinity gives NaN there), which both sides do, but the
float32 results of sums of large values would only test overflow.
"""

from __future__ import annotations

import math

import numpy as np
from hypothesis import strategies as st

from tf2jax_conformance import Example, OpSpec, Tolerance
from tf2jax_conformance import dtypes as D

_NO_GRAD = ("jit", "static", "x64", "vmap")
_FLAGS = [(False, False), (True, False), (False, True), (True, True)]  # (T, T): rejected


def _values(dtype, shape, bound=100.0):
  n = math.prod(shape)
  if dtype in D.INT:
    info = D.iinfo(dtype)
    ints = st.integers(max(int(info.min), -1000), min(int(info.max), 1000))
    return st.lists(ints, min_size=n, max_size=n).map(
        lambda xs: np.array(xs, D.np_dtype(dtype)).reshape(shape))
  floats = st.one_of(st.floats(-bound, bound, width=16), st.sampled_from([0.0, 1.0, -1.0]))
  return st.lists(floats, min_size=n, max_size=n).map(
      lambda xs: np.array(xs, np.float64).astype(D.np_dtype(dtype)).reshape(shape))


@st.composite
def _image(draw, dtype, max_side=6, min_side=1):
  shape = (draw(st.integers(1, 2)), draw(st.integers(min_side, max_side)),
           draw(st.integers(min_side, max_side)), draw(st.integers(1, 2)))
  return draw(_values(dtype, shape))


def _size():
  side = st.one_of(st.integers(1, 8), st.just(0))  # 0: TF rejects it
  return st.tuples(side, side).map(lambda s: np.array(s, np.int32))


def _resize_example(half: bool):
  def example(dtype):
    @st.composite
    def draw(draw):
      images = draw(_image(dtype))
      flags = draw(st.sampled_from(_FLAGS if half else _FLAGS[:2]))
      attrs = {"align_corners": flags[0]}
      if half:
        attrs["half_pixel_centers"] = flags[1]
      return Example({"images": images, "size": draw(_size())}, attrs)
    return draw()
  return example


def _resize_tolerance(dtype, example):
  # float32 sums of weighted pixels (as TF's kernels): XLA may fuse multiply-adds (FMA),
  # TF's build does not; cancellations make the error relative to the pixels' scale.
  x = np.asarray(example.inputs.get("images", example.inputs.get("image")), np.float64)
  mag = float(np.max(np.abs(x))) if x.size else 0.0
  return Tolerance(rtol=2e-6, atol=4e-7 * mag + 1e-30)


def _scale_translate_example(dtype):
  @st.composite
  def draw(draw):
    images = draw(_image(dtype))
    size = np.array([draw(st.integers(1, 8)), draw(st.integers(1, 8))], np.int32)
    ratio = size / np.array(images.shape[1:3], np.float32)
    scale = draw(st.one_of(
        st.just(ratio), st.tuples(st.floats(0.25, 4.0, width=32),
                                  st.floats(0.25, 4.0, width=32)).map(np.array)))
    translation = draw(st.one_of(
        st.just((0.0, 0.0)), st.tuples(st.floats(-3, 3, width=32), st.floats(-3, 3, width=32))))
    kernel = draw(st.sampled_from(["lanczos1", "lanczos3", "lanczos5", "gaussian", "box",
                                   "triangle", "keyscubic", "mitchellcubic"]))
    return Example({"images": images, "size": size,
                    "scale": np.asarray(scale, np.float32),
                    "translation": np.asarray(translation, np.float32)},
                   {"kernel_type": kernel, "antialias": draw(st.booleans())})
  return draw()


def _resize_specs() -> list[OpSpec]:
  return [
      OpSpec("ResizeBicubic", _resize_example(True), static_inputs=("size",),
             tolerance=_resize_tolerance, grad_dtypes=("float32", "float64"),
             notes="Gradients: TF's ResizeBicubicGrad (float32 and float64; TF has none "
                   "for other dtypes). Sums in float32 as TF's kernel."),
      OpSpec("ResizeArea", _resize_example(False), static_inputs=("size",),
             tolerance=_resize_tolerance, transforms=_NO_GRAD,
             notes="TF registers no gradient."),
      OpSpec("ScaleAndTranslate", _scale_translate_example,
             static_inputs=("size", "scale", "translation"), tolerance=_resize_tolerance,
             grad_dtypes=("float32",),
             notes="scale and translation must be known at conversion time (they decide the "
                   "spans). Gradients w.r.t. the images only (TF's ScaleAndTranslateGrad, "
                   "a float32 kernel: TF has none for other dtypes)."),
  ]


def _box_values(n, low=-0.5, high=1.5):
  low, high = float(np.float32(low)), float(np.float32(high))
  coord = st.one_of(st.floats(low, high, width=32), st.sampled_from([0.0, 0.5, 1.0]))
  return st.lists(coord, min_size=n, max_size=n).map(lambda xs: np.array(xs, np.float32))


def _crop_example(dtype):
  @st.composite
  def draw(draw):
    images = draw(_image(dtype, max_side=5))
    n = draw(st.integers(0, 3))
    boxes = draw(_box_values(4 * n)).reshape(n, 4)
    box_ind = np.array([draw(st.integers(0, images.shape[0] - 1)) for _ in range(n)],
                       np.int32)
    side = st.one_of(st.integers(1, 5), st.just(0))  # 0: TF rejects it
    return Example({"image": images, "boxes": boxes, "box_ind": box_ind,
                    "crop_size": np.array([draw(side), draw(side)], np.int32)},
                   {"method": draw(st.sampled_from(["bilinear", "nearest"])),
                    "extrapolation_value": draw(st.sampled_from([0.0, -1.5, 7.0]))})
  return draw()


def _crop_grad_tolerance(dtype, example):
  # The boxes' gradient sums pixel differences times cotangents (up to 10) over the
  # crop; TF's CropAndResizeGradImage accumulates float16 images' gradients in float16.
  x = np.asarray(example.inputs["image"], np.float64)
  mag = float(np.max(np.abs(x))) if x.size else 0.0
  crop = int(np.prod(example.inputs["crop_size"]))
  if dtype == "float16":
    return Tolerance(rtol=4e-3, atol=0.05 * crop)
  return Tolerance(rtol=1e-5, atol=1e-5 * (mag + 1) * crop)


def _glimpse_example(dtype):
  @st.composite
  def draw(draw):
    images = draw(_image("float32", max_side=5))
    normalized = draw(st.booleans())
    bound = 1.2 if normalized else 6.0
    offsets = draw(_box_values(2 * images.shape[0], -bound, bound)).reshape(-1, 2)
    size = np.array([draw(st.integers(0, 6)), draw(st.integers(0, 6))], np.int32)
    return Example({"input": images, "size": size, "offsets": offsets},
                   {"centered": draw(st.booleans()), "normalized": normalized,
                    "uniform_noise": False, "noise": "zero"})
  return draw()


def _draw_example(v2: bool):
  def example(dtype):
    @st.composite
    def draw(draw):
      # Empty images: TF fails on boxes it does not skip (values, not shapes).
      b, h, w = draw(st.integers(1, 2)), draw(st.integers(1, 5)), draw(st.integers(1, 5))
      depth = draw(st.sampled_from([1, 3, 4, 2]))  # 2: TF rejects it
      images = draw(_values(dtype, (b, h, w, depth), bound=1.0))
      n = draw(st.integers(0, 4))
      boxes = draw(_box_values(4 * b * n, -0.3, 1.3)).reshape(b, n, 4)
      inputs = {"images": images, "boxes": boxes}
      if v2:
        k, c = draw(st.integers(0, 3)), draw(st.sampled_from([4, max(depth, 1)]))
        inputs["colors"] = draw(_box_values(k * c, 0.0, 1.0)).reshape(k, c)
      return Example(inputs)
    return draw()
  return example


def _crop_specs() -> list[OpSpec]:
  return [
      OpSpec("CropAndResize", _crop_example, static_inputs=("crop_size",),
             tolerance=_resize_tolerance, grad_inputs=("image", "boxes"),
             grad_tolerance=_crop_grad_tolerance,
             grad_dtypes=("uint8", "uint16", "int8", "int16", "int32", "int64", "float16",
                          "float32", "float64"),
             notes="box_ind must be in range (a traced index out of range is clamped; TF "
                   "fails). Gradients w.r.t. image (float16/32/64) and boxes (every dtype). "
                   "For nearest, the boxes' gradient is the bilinear one, as TF's."),
      OpSpec("ExtractGlimpseV2", _glimpse_example, dtype_attr=None, dtypes=("float32",),
             static_inputs=("size",), transforms=_NO_GRAD,
             notes="Only noise='zero' (uniform_noise=False) converts: TF fills the glimpse "
                   "outside the image with values from its own random generator for "
                   "'uniform' and 'gaussian'. TF registers no gradient."),
      OpSpec("DrawBoundingBoxes", _draw_example(False), transforms=_NO_GRAD,
             notes="TF registers no gradient."),
      OpSpec("DrawBoundingBoxesV2", _draw_example(True), transforms=_NO_GRAD,
             notes="TF registers no gradient."),
  ]


def specs() -> list[OpSpec]:
  return _resize_specs() + _crop_specs()
