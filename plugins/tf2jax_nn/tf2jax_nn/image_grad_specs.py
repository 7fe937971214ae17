"""Conformance specs of the nn plugin's image backprop kernels (ResizeBilinearGrad,
ResizeNearestNeighborGrad, ResizeBicubicGrad, ScaleAndTranslateGrad,
CropAndResizeGradImage, CropAndResizeGradBoxes) and of ExtractGlimpse.

TF registers no gradient for any of them: they are checked with jit, the static path,
x64 and vmap. Incoming gradients are small images (sides 1 to 8, sometimes 0, which TF
rejects) of finite values: TF and tf2jax both multiply them by weights of 0, so an
infinity would give NaN on both sides, but the sums of large values would only test
overflow. original_image's batch and channels sometimes differ from the gradient's: TF
takes them from the gradient and reads nothing else of original_image but its shape.
"""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

from tf2jax_conformance import Example, OpSpec, Tolerance
from tf2jax_conformance import dtypes as D
from tf2jax_nn.resize_crop_specs import _FLAGS, _box_values, _glimpse_example, _values

_NO_GRAD = ("jit", "static", "x64", "vmap")
_EPS32 = float(np.finfo(np.float32).eps)
# The scatter kernels add the same terms in TF's order (XLA's and NumPy's scatters apply
# updates one by one, in order), with no sum of products XLA could fuse: exact.
_EXACT = {d: Tolerance() for d in ("float16", "bfloat16", "float32", "float64")}


def _side(high=8):
  """A side of 1 to high, sometimes 0 (TF rejects it)."""
  return st.sampled_from(list(range(1, high + 1)) * 2 + [0])


@st.composite
def _grads_and_original(draw, dtype, grads_dtype="float32"):
  """(grads, original_image): original_image of `dtype`, usually of the grads' batch and
  channels, and sides that are sometimes 0 (rejected by TF)."""
  b, c = draw(st.integers(1, 2)), draw(st.integers(1, 2))
  grads = draw(_values(grads_dtype, (b, draw(_side()), draw(_side()), c)))
  ob, oc = draw(st.sampled_from([(b, c), (b, c), (b, c), (3, 1)]))
  original = draw(_values(dtype, (ob, draw(_side()), draw(_side()), oc), bound=1.0))
  return grads, original


def _resize_grad_example(dtype):
  @st.composite
  def draw(draw):
    grads, original = draw(_grads_and_original(dtype))
    align, half = draw(st.sampled_from(_FLAGS))
    return Example({"grads": grads, "original_image": original},
                   {"align_corners": align, "half_pixel_centers": half})
  return draw()


def _nearest_grad_example(dtype):
  @st.composite
  def draw(draw):
    shape = (draw(st.integers(1, 2)), draw(_side()), draw(_side()), draw(st.integers(1, 2)))
    grads = draw(_values(dtype, shape))
    # Often much smaller than grads: many additions (and roundings) per output pixel.
    side = st.one_of(st.integers(1, 2), _side())
    size = np.array([draw(side), draw(side)], np.int32)
    align, half = draw(st.sampled_from(_FLAGS))  # both: TF accepts it (unlike the forward)
    return Example({"grads": grads, "size": size},
                   {"align_corners": align, "half_pixel_centers": half})
  return draw()


def _abs_sum(grads):
  """The largest sum of |grads| over one image channel: as no weight exceeds 2 in
  magnitude (the Lanczos kernels' normalised lobes), twice it bounds the partial sums of
  each row pass (and of the column pass, in units of the row pass's)."""
  g = np.abs(np.asarray(grads, np.float64))
  return float(np.max(g.sum(axis=(1, 2)))) if g.size else 0.0


def _scale_translate_grad_example(dtype):
  @st.composite
  def draw(draw):
    b, c = draw(st.integers(1, 2)), draw(st.integers(1, 2))
    h, w = draw(st.integers(1, 6)), draw(st.integers(1, 6))
    size = (draw(st.integers(1, 8)), draw(st.integers(1, 8)))
    grads = draw(_values("float32", (b, size[0], size[1], c)))
    ob, oc = draw(st.sampled_from([(b, c), (b, c), (3, 1)]))
    original = draw(_values("float32", (ob, h, w, oc), bound=1.0))
    ratio = np.array(size, np.float32) / np.array([h, w], np.float32)
    scale = draw(st.one_of(
        st.just(ratio), st.tuples(st.floats(0.25, 4.0, width=32),
                                  st.floats(0.25, 4.0, width=32)).map(np.array),
        st.just(np.array([0.0, 1.0]))))  # 0: TF rejects it
    translation = draw(st.one_of(
        st.just((0.0, 0.0)), st.tuples(st.floats(-3, 3, width=32), st.floats(-3, 3, width=32))))
    kernel = draw(st.sampled_from(["lanczos1", "lanczos3", "lanczos5", "gaussian", "box",
                                   "triangle", "keyscubic", "mitchellcubic"]))
    return Example({"grads": grads, "original_image": original,
                    "scale": np.asarray(scale, np.float32),
                    "translation": np.asarray(translation, np.float32)},
                   {"kernel_type": kernel, "antialias": draw(st.booleans())})
  return draw()


def _spans_tolerance(dtype, example):
  # TF's order of sums (rows, then columns, each span left to right), but XLA contracts
  # `sum + weight * pixel` into fused multiply-adds, which TF's build does not: each step
  # may round differently by half an ulp of a partial sum, bounded by the sum of the
  # terms' magnitudes (weights up to 2 in magnitude per pixel, with negative lobes).
  atol = 16 * _EPS32 * 2 * _abs_sum(example.inputs["grads"]) + 1e-30
  return Tolerance(rtol=4 * _EPS32, atol=atol)


def _resize_grad_specs() -> list[OpSpec]:
  return [
      OpSpec("ResizeBilinearGrad", _resize_grad_example, tolerance=_EXACT,
             transforms=_NO_GRAD,
             notes="grads are float32 for every T (the dtype of original_image and of the "
                   "output). Terms g * y_weight * x_weight in float32, summed in TF's "
                   "order in float32 (float64 for float64: the float32 terms are summed in "
                   "float64); half types are rounded once at the end, as TF's kernel does. "
                   "Exact: same terms, same order. TF registers no gradient."),
      OpSpec("ResizeNearestNeighborGrad", _nearest_grad_example, static_inputs=("size",),
             tolerance=_EXACT, transforms=_NO_GRAD,
             notes="Sums in T in TF's order (rows, then columns): integers wrap, float16 "
                   "and bfloat16 round at every addition, so results are TF's exactly. "
                   "align_corners with half_pixel_centers is accepted (unlike the forward "
                   "op). TF registers no gradient."),
      OpSpec("ResizeBicubicGrad", _resize_grad_example, tolerance=_spans_tolerance,
             transforms=_NO_GRAD,
             notes="T (float32, float64: TF's kernels) is original_image's dtype and the "
                   "output's; g * y_weight * x_weight is computed and summed in T. The order "
                   "of a pixel's 16 taps differs from TF's in some cases (1 - 1 ulp seen for "
                   "a 1x1 image): a few ulps of the sum of magnitudes. TF registers no "
                   "gradient."),
      OpSpec("ScaleAndTranslateGrad", _scale_translate_grad_example,
             static_inputs=("scale", "translation"), tolerance=_spans_tolerance,
             transforms=_NO_GRAD,
             notes="TF has a float32 kernel only. scale and translation must be known at "
                   "conversion time (they decide the spans). TF registers no gradient."),
  ]


def _crop_grads(draw, depth):
  n = draw(st.sampled_from([1, 2, 3, 0]))
  boxes = draw(_box_values(4 * n)).reshape(n, 4)
  shape = (n, draw(_side(high=5)), draw(_side(high=5)), depth)
  return draw(_values("float32", shape)), boxes


def _crop_grad_image_example(dtype):
  @st.composite
  def draw(draw):
    batch, depth = draw(st.integers(1, 2)), draw(st.integers(1, 2))
    grads, boxes = _crop_grads(draw, depth)
    box_ind = np.array([draw(st.integers(0, batch - 1)) for _ in boxes], np.int32)
    h, w = draw(_side(high=5)), draw(_side(high=5))
    image_size = np.array([batch, h, w, draw(st.sampled_from([depth] * 8 + [3]))], np.int32)
    return Example({"grads": grads, "boxes": boxes, "box_ind": box_ind,
                    "image_size": image_size},
                   {"T": dtype, "method": draw(st.sampled_from(["bilinear", "nearest"]))})
  return draw()


def _crop_grad_boxes_example(dtype):
  @st.composite
  def draw(draw):
    batch, depth = draw(st.integers(1, 2)), draw(st.integers(1, 2))
    grads, boxes = _crop_grads(draw, depth)
    box_ind = np.array([draw(st.integers(0, batch - 1)) for _ in boxes], np.int32)
    image_depth = draw(st.sampled_from([depth] * 8 + [3]))
    image = draw(_values(dtype, (batch, draw(_side(high=5)), draw(_side(high=5)),
                                 image_depth)))
    return Example({"grads": grads, "image": image, "boxes": boxes, "box_ind": box_ind})
  return draw()


def _crop_grad_boxes_tolerance(dtype, example):
  # Each side's gradient is a float32 sum over the crop's pixels and channels of the
  # image's slope (a difference of neighbours, at most the image's range) times grads
  # times the position's derivative (at most size - 1). TF sums sequentially, tf2jax as
  # XLA reduces (and XLA may fuse multiply-adds): a few ulps of that sum's magnitude.
  image = np.asarray(example.inputs["image"], np.float64)
  grads = np.abs(np.asarray(example.inputs["grads"], np.float64))
  if not image.size or not grads.size:
    return Tolerance()
  spread = float(image.max() - image.min()) * (max(image.shape[1:3]) - 1)
  sums = grads.sum(axis=(1, 2, 3)).max() * spread
  return Tolerance(rtol=4 * _EPS32, atol=2 * _EPS32 * sums + 1e-30)


def _crop_grad_specs() -> list[OpSpec]:
  return [
      OpSpec("CropAndResizeGradImage", _crop_grad_image_example,
             static_inputs=("image_size",), tolerance=_EXACT, transforms=_NO_GRAD,
             notes="T is the output's dtype (grads are float32). Each term is computed in "
                   "float32, cast to T and added in TF's order (boxes, rows, columns, "
                   "corners), so float16 sums round at every step as TF's (exact). box_ind must be "
                   "in range (TF fails otherwise; a traced index is clamped). TF registers "
                   "no gradient."),
      OpSpec("CropAndResizeGradBoxes", _crop_grad_boxes_example,
             tolerance=_crop_grad_boxes_tolerance, transforms=_NO_GRAD,
             notes="Only method='bilinear' exists (the op's definition). The output is "
                   "float32 for every image dtype. box_ind must be in range (TF fails "
                   "otherwise; a traced index is clamped). TF registers no gradient."),
      OpSpec("ExtractGlimpse", _glimpse_example, dtype_attr=None, dtypes=("float32",),
             static_inputs=("size",), transforms=_NO_GRAD,
             notes="Version 1 of Eigen's glimpse (offsets are placed differently from "
                   "ExtractGlimpseV2's). Only noise='zero' (uniform_noise=False) converts: "
                   "TF fills the glimpse outside the image with values from its own random "
                   "generator for 'uniform', 'gaussian' and '' (the defaults). TF registers "
                   "no gradient."),
  ]


def specs() -> list[OpSpec]:
  return _resize_grad_specs() + _crop_grad_specs()
