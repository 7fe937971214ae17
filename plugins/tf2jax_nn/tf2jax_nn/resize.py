"""Image resizing: ResizeNearestNeighbor and ResizeBilinear (NHWC).

Semantics follow TF's CPU kernels (image_resizer_state.h, resize_*_op.cc), whose source
positions are computed in float32:

* scale = (in - 1) / (out - 1) with align_corners (and out > 1), else in / out.
* ResizeNearestNeighbor: source index = min(floor(y * scale), in - 1); with align_corners
  roundf (halves away from 0) instead of floor; with half_pixel_centers
  floor((y + 0.5) * scale), clamped to [0, in - 1].
* ResizeBilinear: position y * scale, or (y + 0.5) * scale - 0.5 with half_pixel_centers;
  lower = max(floor(p), 0), upper = min(ceil(p), in - 1), weight p - floor(p); the four
  neighbours, cast to float32, combine as top = tl + (tr - tl) * wx, bottom likewise,
  top + (bottom - top) * wy (so an infinity next to an equal infinity gives NaN, as in
  TF). The output is float32 for every input dtype.
* align_corners and half_pixel_centers together are a conversion error (TF rejects them).
* The size input decides the output shape: it must be known at conversion time.
Gradients (float inputs) are JAX's of these gathers and lerps, the transposes TF's
ResizeNearestNeighborGrad / ResizeBilinearGrad kernels compute.
"""

from __future__ import annotations

import numpy as np

from tf2jax_core import REAL, lowering, xnp
from tf2jax_nn._common import refuse

_F32 = np.float32


def _flags(node) -> tuple[bool, bool]:
  align = bool(node.attrs.get("align_corners", False))
  half = bool(node.attrs.get("half_pixel_centers", False))
  if align and half:
    refuse(node, "half_pixel_centers", "TF rejects half_pixel_centers together with "
                                       "align_corners", half)
  return align, half


def _sizes(images, size) -> tuple[tuple[int, ...], int, int]:
  xs = tuple(int(d) for d in np.shape(images))
  if len(xs) != 4:
    raise ValueError(f"images (input 0) must be 4-D, got shape {list(xs)}")
  size = np.asarray(size)
  if size.shape != (2,):
    raise ValueError(f"size (input 1) must be a vector of 2 elements, got shape "
                     f"{list(size.shape)}")
  out_h, out_w = int(size[0]), int(size[1])
  if out_h <= 0 or out_w <= 0:
    raise ValueError(f"size (input 1) = {size.tolist()} must be positive")
  if xs[1] <= 0 or xs[2] <= 0:
    raise ValueError(f"images (input 0, shape {list(xs)}) must have a non-zero height "
                     "and width")
  return xs, out_h, out_w


def _scale(in_size: int, out_size: int, align: bool):
  if align and out_size > 1:
    return _F32(in_size - 1) / _F32(out_size - 1)
  return _F32(in_size) / _F32(out_size)


def _nearest_index(in_size: int, out_size: int, align: bool, half: bool) -> np.ndarray:
  scale = _scale(in_size, out_size, align)
  pos = np.arange(out_size, dtype=_F32)
  pos = (pos + _F32(0.5)) * scale if half else pos * scale
  if align:
    index = np.sign(pos) * np.floor(np.abs(pos) + _F32(0.5))  # roundf
  else:
    index = np.floor(pos)
  index = np.minimum(index.astype(np.int64), in_size - 1)
  if half:
    index = np.maximum(index, 0)
  return index


def _bilinear_weights(in_size: int, out_size: int, align: bool, half: bool):
  scale = _scale(in_size, out_size, align)
  pos = np.arange(out_size, dtype=_F32)
  pos = (pos + _F32(0.5)) * scale - _F32(0.5) if half else pos * scale
  floor = np.floor(pos)
  lower = np.maximum(floor.astype(np.int64), 0)
  upper = np.minimum(np.ceil(pos).astype(np.int64), in_size - 1)
  return lower, upper, (pos - floor).astype(_F32)


@lowering("ResizeNearestNeighbor", attrs={"T": REAL, "align_corners": None,
                                          "half_pixel_centers": None},
          static_inputs=(1,))
def resize_nearest_neighbor(node):
  align, half = _flags(node)

  def run(images, size):
    xs, out_h, out_w = _sizes(images, size)
    m = xnp(images)
    rows = _nearest_index(xs[1], out_h, align, half)
    cols = _nearest_index(xs[2], out_w, align, half)
    return m.take(m.take(images, rows, axis=1), cols, axis=2)
  return run


@lowering("ResizeBilinear", attrs={"T": REAL, "align_corners": None,
                                   "half_pixel_centers": None},
          static_inputs=(1,))
def resize_bilinear(node):
  align, half = _flags(node)

  def run(images, size):
    xs, out_h, out_w = _sizes(images, size)
    m = xnp(images)
    x = images.astype(_F32)
    y0, y1, wy = _bilinear_weights(xs[1], out_h, align, half)
    x0, x1, wx = _bilinear_weights(xs[2], out_w, align, half)
    top, bottom = m.take(x, y0, axis=1), m.take(x, y1, axis=1)
    wx = wx.reshape(1, 1, -1, 1)
    wy = wy.reshape(1, -1, 1, 1)
    tl, tr = m.take(top, x0, axis=2), m.take(top, x1, axis=2)
    bl, br = m.take(bottom, x0, axis=2), m.take(bottom, x1, axis=2)
    with np.errstate(invalid="ignore"):  # inf - inf: NaN, as in TF (NumPy path)
      upper = tl + (tr - tl) * wx
      lower = bl + (br - bl) * wx
      return (upper + (lower - upper) * wy).astype(_F32)
  return run
