"""Image resizing (NHWC): ResizeNearestNeighbor, ResizeBilinear, ResizeBicubic, ResizeArea
and ScaleAndTranslate.

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

ResizeBicubic, ResizeArea and ScaleAndTranslate are described at their lowerings; their
weights are computed with NumPy at conversion time (they depend on shapes only, and on
ScaleAndTranslate's scale and translation, which must be known then) and applied as
gathers summed left to right in float32, in TF's order, so that gradients are JAX's
transposes of them (TF's ResizeBicubicGrad and ScaleAndTranslateGrad).

The backprop kernels as ops of their own (ResizeBilinearGrad, ResizeNearestNeighborGrad,
ResizeBicubicGrad, ScaleAndTranslateGrad, found in graphs of gradients) are at the end.
"""

from __future__ import annotations

import jax.numpy as jnp
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


# ResizeBicubic ---------------------------------------------------------------------------
# TF's resize_bicubic_op.cc: Keys' cubic kernel tabulated at 1024 steps (a = -0.75, or
# -0.5 with half_pixel_centers, which also zeroes the taps outside the image and
# renormalises the weights), each output the y interpolation of 4 rows at 4 columns,
# then the x interpolation of these, in float32 sums taken left to right.

_TABLE = 1024


def _cubic_table(a: float) -> np.ndarray:
  x = np.arange(_TABLE + 1, dtype=np.float64) / _TABLE  # exact in float32
  near = ((a + 2) * x - (a + 3)) * x * x + 1
  far = ((a * (x + 1) - 5 * a) * (x + 1) + 8 * a) * (x + 1) - 4 * a
  return np.stack([near, far], axis=1).astype(_F32)


def _cubic_taps(in_size: int, out_size: int, align: bool, half: bool):
  """(indices [out, 4], float32 weights [out, 4]) of each output position."""
  scale = _scale(in_size, out_size, align)
  pos = np.arange(out_size, dtype=_F32)
  loc_f = (pos + _F32(0.5)) * scale - _F32(0.5) if half else pos * scale
  loc = np.floor(loc_f).astype(np.int64)
  offset = np.rint((loc_f - loc.astype(_F32)) * _F32(_TABLE)).astype(np.int64)  # lrintf
  table = _cubic_table(-0.5 if half else -0.75)
  weights = np.stack([table[offset, 1], table[offset, 0], table[_TABLE - offset, 0],
                      table[_TABLE - offset, 1]], axis=1)
  wanted = loc[:, None] + np.arange(-1, 3)
  index = np.clip(wanted, 0, in_size - 1)
  if half:
    weights = np.where(index == wanted, weights, _F32(0))
    total = ((weights[:, 0] + weights[:, 1]) + weights[:, 2]) + weights[:, 3]
    ok = np.abs(total) >= _F32(1000) * np.finfo(_F32).tiny
    inv = _F32(1) / np.where(ok, total, _F32(1))
    weights = np.where(ok[:, None], weights * inv[:, None], weights)
  return index, weights.astype(_F32)


def _sum4(values, weights):
  """values[0] * w[0] + ... + values[3] * w[3], left to right."""
  out = values[0] * weights[0]
  for v, w in zip(values[1:], weights[1:]):
    out = out + v * w
  return out


@lowering("ResizeBicubic", attrs={"T": REAL, "align_corners": None,
                                  "half_pixel_centers": None},
          static_inputs=(1,))
def resize_bicubic(node):
  align, half = _flags(node)

  def run(images, size):
    xs, out_h, out_w = _sizes(images, size)
    m = xnp(images)
    x = images.astype(_F32)
    yi, yw = _cubic_taps(xs[1], out_h, align, half)
    xi, xw = _cubic_taps(xs[2], out_w, align, half)
    rows = [m.take(x, yi[:, k], axis=1) for k in range(4)]
    yws = [yw[:, k].reshape(1, -1, 1, 1) for k in range(4)]
    cols = [_sum4([m.take(r, xi[:, j], axis=2) for r in rows], yws) for j in range(4)]
    out = _sum4(cols, [xw[:, j].reshape(1, 1, -1, 1) for j in range(4)])
    return out.astype(_F32)
  return run


# ResizeArea ------------------------------------------------------------------------------
# TF's resize_area_op.cc: output pixel (y, x) covers [y * scale, (y + 1) * scale) of the
# input rows (likewise columns); each input pixel counts by the length of its overlap.
# Rows are summed first (the first and last overlapping columns weighted), then those
# sums weighted by their rows' overlaps, then times 1 / (height_scale * width_scale).


def _area_taps(in_size: int, out_size: int, scale):
  """(indices [out, K], weights [out, K], mask [out, K]): the input cells each output
  cell overlaps, clamped into the input, with their overlap (float32)."""
  pos = np.arange(out_size + 1, dtype=_F32) * scale
  start, end = np.floor(pos[:-1]), np.ceil(pos[1:])
  taps = int(np.max(end - start)) if out_size else 1
  i = start[:, None] + np.arange(taps, dtype=_F32)  # cell i covers [i, i + 1)
  lo, hi = pos[:-1, None], pos[1:, None]
  weight = np.where(i < lo, np.where(i + 1 > hi, scale, i + 1 - lo),
                    np.where(i + 1 > hi, hi - i, _F32(1))).astype(_F32)
  index = np.clip(i.astype(np.int64), 0, in_size - 1)
  return index, weight, i < end[:, None]


def _weighted_taps(m, x, axis: int, index, weight, mask):
  """sum_k x[index[:, k]] * weight[:, k] along `axis`, over the masked taps, in order."""
  shape = [1] * x.ndim
  shape[axis] = -1
  out = None
  for k in range(index.shape[1]):
    term = m.take(x, index[:, k], axis=axis) * weight[:, k].reshape(shape)
    if out is None:
      out = term
    else:
      out = out + m.where(mask[:, k].reshape(shape), term, _F32(0))
  return out


@lowering("ResizeArea", attrs={"T": REAL, "align_corners": None}, static_inputs=(1,))
def resize_area(node):
  align, _ = _flags(node)

  def run(images, size):
    xs, out_h, out_w = _sizes(images, size)
    m = xnp(images)
    # align_corners on a side of 1 makes the scale 0: TF then covers the input as without
    # align_corners (found by probing TF: its outputs are the pixels, not NaN).
    h_scale = _scale(xs[1], out_h, align) or _scale(xs[1], out_h, False)
    w_scale = _scale(xs[2], out_w, align) or _scale(xs[2], out_w, False)
    x = images.astype(_F32)
    row_sums = _weighted_taps(m, x, 2, *_area_taps(xs[2], out_w, w_scale))
    out = _weighted_taps(m, row_sums, 1, *_area_taps(xs[1], out_h, h_scale))
    return (out * _F32(1.0 / float(h_scale * w_scale))).astype(_F32)
  return run


# ScaleAndTranslate -----------------------------------------------------------------------
# TF's scale_and_translate_op.cc and sampling_kernels.h: output pixel x samples the input
# at (x + 0.5) / scale - translation / scale with a kernel (widened by 1 / scale when
# antialiasing a downscale), over a span of input pixels whose weights are normalised to
# sum to 1 (all 0 when the sample falls outside the input). Rows are resampled first into
# a float32 intermediate, then columns, each output a left-to-right sum of its span.

_PI = _F32(3.14159265359)


def _sin(x):
  return np.sin(x.astype(np.float64)).astype(_F32)  # sinf, correctly rounded


def _lanczos(radius: float):
  r = _F32(radius)

  def kernel(x):
    with np.errstate(invalid="ignore", divide="ignore"):
      px = _PI * x
      value = r * _sin(px) * _sin(px / r) / (_PI * _PI * x * x)
    tiny = x.astype(np.float64) <= 1e-3  # a float compared with a double
    return np.where(x > r, _F32(0), np.where(tiny, _F32(1), value))
  return kernel, radius


def _gaussian(x):
  value = np.exp((-x * x).astype(np.float64) / (2.0 * 0.5 * 0.5)).astype(_F32)
  return np.where(x >= _F32(1.5), _F32(0), value)


def _box(x):
  return np.where(x < _F32(0.5), _F32(1), np.where(x == _F32(0.5), _F32(0.5), _F32(0)))


def _triangle(x):
  return np.where(x < _F32(1), _F32(1) - x, _F32(0))


def _cubic(outer, inner):
  def kernel(x):
    far = ((_F32(outer[0]) * x + _F32(outer[1])) * x + _F32(outer[2])) * x + _F32(outer[3])
    near = ((_F32(inner[0]) * x + _F32(inner[1])) * x) * x + _F32(inner[2])
    return np.where(x >= _F32(2), _F32(0), np.where(x >= _F32(1), far, near))
  return kernel


_KERNELS = {
    "lanczos1": _lanczos(1.0), "lanczos3": _lanczos(3.0), "lanczos5": _lanczos(5.0),
    "gaussian": (_gaussian, 1.5), "box": (_box, 1.0), "triangle": (_triangle, 1.0),
    "keyscubic": (_cubic((-0.5, 2.5, -4.0, 2.0), (1.5, -2.5, 1.0)), 2.0),
    "mitchellcubic": (_cubic((_F32(-7.0) / _F32(18.0), 2.0, -(_F32(10.0) / _F32(3.0)),
                              _F32(16.0) / _F32(9.0)),
                             (_F32(7.0) / _F32(6.0), -2.0, _F32(8.0) / _F32(9.0))), 2.0),
}


def _kernel_type(value) -> bool | str:
  if str(value).lower() in _KERNELS:
    return True
  return f"TF knows the kernel types {sorted(_KERNELS)}"


def _spans(node, out_size: int, in_size: int, scale, translate, antialias: bool):
  """(starts [out], float32 weights [out, span]) as TF's ComputeSpansCore."""
  kernel, radius = _KERNELS[node.attrs.get("kernel_type", "lanczos3").lower()]
  inv_scale = _F32(1.0 / float(scale))
  inv_translate = -inv_scale * _F32(translate)
  kernel_scale = max(inv_scale, _F32(1)) if antialias else _F32(1)
  reach = _F32(radius) * kernel_scale
  span = min(2 * int(np.ceil(reach)) + 1, in_size)
  sample = (np.arange(out_size, dtype=_F32) + _F32(0.5)) * inv_scale + inv_translate
  starts = np.zeros(out_size, np.int64)
  weights = np.zeros((out_size, span), _F32)
  for x, s in enumerate(sample):
    if s < 0 or s > in_size:
      continue
    lo = min(max(int(np.ceil(s - reach - _F32(0.5))), 0), in_size - 1)
    hi = min(max(int(np.floor(s + reach - _F32(0.5))), 0), in_size - 1) + 1
    if hi - lo > span:
      raise ValueError(f"{node.op} node {node.path!r}: TF fails with 'Span is too large: "
                       f"{hi - lo} vs {span}'")
    pos = np.arange(lo, hi, dtype=_F32) + _F32(0.5) - s
    w = kernel(np.abs(pos * (_F32(1) / kernel_scale))).astype(_F32)
    total = _F32(0)
    for v in w:
      total = _F32(total + v)
    if abs(total) >= _F32(1000) * np.finfo(_F32).tiny:
      weights[x, :hi - lo] = w * (_F32(1) / total)
    starts[x] = lo
  return starts, weights


def _gather_spans(m, x, axis: int, starts, weights, in_size: int):
  index = starts[:, None] + np.arange(weights.shape[1])
  return _weighted_taps(m, x, axis, np.minimum(index, in_size - 1), weights,
                        index < in_size)


@lowering("ScaleAndTranslate", attrs={"T": REAL, "kernel_type": _kernel_type,
                                      "antialias": None},
          static_inputs=(1, 2, 3))
def scale_and_translate(node):
  antialias = bool(node.attrs.get("antialias", True))

  def run(images, size, scale, translation):
    where = f"{node.op} node {node.path!r}"
    xs = tuple(int(d) for d in np.shape(images))
    size, scale, translation = (np.asarray(v).reshape(-1) for v in (size, scale, translation))
    if len(xs) != 4:
      raise ValueError(f"{where}: images must be 4-D, got shape {list(xs)}")
    if size.shape != (2,) or scale.shape != (2,) or translation.shape != (2,):
      raise ValueError(f"{where}: size, scale and translation must hold 2 values each")
    if np.any(size <= 0):
      raise ValueError(f"{where}: output dimensions must be positive, got {size.tolist()}")
    if not np.all(scale > 0):
      raise ValueError(f"{where}: scale must be greater than zero, got {scale.tolist()}")
    if xs[1] <= 0 or xs[2] <= 0:
      raise ValueError(f"{where}: input image must be of non-zero size, got {list(xs)}")
    out_h, out_w = int(size[0]), int(size[1])
    rows = _spans(node, out_h, xs[1], scale[0], translation[0], antialias)
    cols = _spans(node, out_w, xs[2], scale[1], translation[1], antialias)
    m = xnp(images)
    x = _gather_spans(m, images.astype(_F32), 1, *rows, xs[1])
    return _gather_spans(m, x, 2, *cols, xs[2]).astype(_F32)
  return run


# Backprop kernels ------------------------------------------------------------------------
# TF's *Grad kernels scatter each incoming gradient pixel into the pixels it was computed
# from, looping over rows, columns, then taps. `_add_at` applies the updates in that order
# (NumPy's add.at and XLA's CPU scatter apply them one by one), so that sums rounded at
# every step (ResizeNearestNeighborGrad's half types) are TF's.


def _add_at(m, shape, dtype, index, updates):
  """zeros(shape).at[index].add(updates), the updates applied in order."""
  if m is np:
    out = np.zeros(shape, dtype)
    with np.errstate(all="ignore"):
      np.add.at(out, index, updates.astype(dtype))
    return out
  return jnp.zeros(shape, dtype).at[index].add(updates.astype(dtype))


def _grad_shapes(node, grads, original):
  """(grads shape, original shape), checked as TF's ImageResizerGradientState."""
  where = f"{node.op} node {node.path!r}"
  gs = tuple(int(d) for d in np.shape(grads))
  os = tuple(int(d) for d in np.shape(original))
  if len(gs) != 4:
    raise ValueError(f"{where}: input_grad must be 4-dimensional, got shape {list(gs)}")
  if len(os) != 4:
    raise ValueError(f"{where}: original_image must be 4-dimensional, got shape {list(os)}")
  if gs[1] <= 0 or gs[2] <= 0:
    raise ValueError(f"{where}: resized dimensions must be positive, got {list(gs)}")
  if os[1] <= 0 or os[2] <= 0:
    raise ValueError(f"{where}: original dimensions must be positive, got {list(os)}")
  return gs, os


@lowering("ResizeBilinearGrad", attrs={"T": ("float16", "bfloat16", "float32", "float64"),
                                       "align_corners": None, "half_pixel_centers": None})
def resize_bilinear_grad(node):
  """The image gradient of ResizeBilinear: grads (float32, the resized shape) scattered
  into an image of original_image's height and width (batch and channels are the grads',
  original_image's are not checked) and dtype. Each pixel's four terms
  g * y_weight * x_weight are float32; they are summed in float64 for float64 images and
  in float32 otherwise (half types are cast at the end, not rounded at every step)."""
  align, half = _flags(node)
  dtype = np.dtype(node.attrs["T"])
  acc = np.dtype(np.float64) if dtype == np.float64 else np.dtype(_F32)

  def run(grads, original_image):
    gs, os = _grad_shapes(node, grads, original_image)
    m = xnp(grads)
    y0, y1, wy = _bilinear_weights(os[1], gs[1], align, half)
    x0, x1, wx = _bilinear_weights(os[2], gs[2], align, half)
    g = grads.astype(_F32)
    gy = [g * ((_F32(1) - wy)).reshape(1, -1, 1, 1), g * wy.reshape(1, -1, 1, 1)]
    wxs = [(_F32(1) - wx).reshape(1, 1, -1, 1), wx.reshape(1, 1, -1, 1)]
    # Per pixel: top-left, top-right, bottom-left, bottom-right (TF's order).
    terms = m.stack([gy[i] * wxs[j] for i in (0, 1) for j in (0, 1)], axis=3)
    rows = np.stack([y0, y0, y1, y1], axis=1)[:, None, :]  # [h, 1, 4]
    cols = np.stack([x0, x1, x0, x1], axis=1)[None, :, :]  # [1, w, 4]
    out = _add_at(m, (gs[0], os[1], os[2], gs[3]), acc, (slice(None), rows, cols), terms)
    return out.astype(dtype)
  return run


# The op's T (TF registers CPU kernels for more integers, which its definition rejects).
_NN_GRAD_DTYPES = ("uint8", "int8", "int32", "float16", "bfloat16", "float32", "float64")


@lowering("ResizeNearestNeighborGrad", attrs={"T": _NN_GRAD_DTYPES, "align_corners": None,
                                              "half_pixel_centers": None},
          static_inputs=(1,))
def resize_nearest_neighbor_grad(node):
  """The image gradient of ResizeNearestNeighbor: each pixel of grads added, in T, to the
  pixel of the size-shaped output it was read from (integers wrap; half types round at
  every addition, rows then columns in order, as TF). Unlike the forward kernel, TF's
  accepts align_corners together with half_pixel_centers (it rounds (y + 0.5) * scale)."""
  align = bool(node.attrs.get("align_corners", False))
  half = bool(node.attrs.get("half_pixel_centers", False))
  dtype = np.dtype(node.attrs["T"])

  def run(grads, size):
    where = f"{node.op} node {node.path!r}"
    gs = tuple(int(d) for d in np.shape(grads))
    if len(gs) != 4:
      raise ValueError(f"{where}: input must be 4-dimensional, got shape {list(gs)}")
    size = np.asarray(size)
    if size.shape != (2,):
      raise ValueError(f"{where}: shape_t (input 1) must be a vector of two elements, got "
                       f"shape {list(size.shape)}")
    out_h, out_w = int(size[0]), int(size[1])
    if out_h <= 0 or out_w <= 0:
      raise ValueError(f"{where}: shape_t's elements must be positive, got {size.tolist()}")
    m = xnp(grads)
    shape = (gs[0], out_h, out_w, gs[3])
    if gs[1] == 0 or gs[2] == 0:
      return m.zeros(shape, dtype)
    rows = _nearest_index(out_h, gs[1], align, half)[:, None]
    cols = _nearest_index(out_w, gs[2], align, half)[None, :]
    return _add_at(m, shape, dtype, (slice(None), rows, cols), grads)
  return run


@lowering("ResizeBicubicGrad", attrs={"T": ("float32", "float64"), "align_corners": None,
                                      "half_pixel_centers": None})
def resize_bicubic_grad(node):
  """The image gradient of ResizeBicubic: each pixel g of grads (float32, cast to T) adds
  T(g * y_weight * x_weight) to its 4 x 4 taps (rows, then columns), summed in T; the
  output has original_image's height, width and dtype, grads' batch and channels."""
  align, half = _flags(node)
  dtype = np.dtype(node.attrs["T"])

  def run(grads, original_image):
    gs, os = _grad_shapes(node, grads, original_image)
    m = xnp(grads)
    yi, yw = _cubic_taps(os[1], gs[1], align, half)
    xi, xw = _cubic_taps(os[2], gs[2], align, half)
    g = grads.astype(dtype)
    gy = [g * yw[:, k].astype(dtype).reshape(1, -1, 1, 1) for k in range(4)]
    terms = m.stack([gy[k] * xw[:, j].astype(dtype).reshape(1, 1, -1, 1)
                     for k in range(4) for j in range(4)], axis=3)
    rows = np.repeat(yi, 4, axis=1)[:, None, :]  # [h, 1, 16]: tap k * 4 + j
    cols = np.tile(xi, (1, 4))[None, :, :]
    return _add_at(m, (gs[0], os[1], os[2], gs[3]), dtype, (slice(None), rows, cols), terms)
  return run


def _grad_spans(starts, weights, in_size: int):
  """The transposed spans of a resampling (TF's ComputeGradSpans): for each input pixel,
  the first output pixel using it and the (nonzero) weights of the following ones."""
  out_size, span = weights.shape
  uses = [[] for _ in range(in_size)]
  for o in range(out_size):
    for j in range(span):
      i = int(starts[o]) + j
      if weights[o, j] != 0 and i < in_size:
        uses[i].append((o, weights[o, j]))
  width = max([u[-1][0] - u[0][0] + 1 for u in uses if u] + [1])
  grad_starts = np.zeros(in_size, np.int64)
  grad_weights = np.zeros((in_size, width), _F32)
  for i, u in enumerate(uses):
    if u:
      grad_starts[i] = u[0][0]
      for o, w in u:
        grad_weights[i, o - u[0][0]] += w
  return grad_starts, grad_weights


@lowering("ScaleAndTranslateGrad", attrs={"T": ("float32",), "kernel_type": _kernel_type,
                                          "antialias": None},
          static_inputs=(2, 3))
def scale_and_translate_grad(node):
  """The image gradient of ScaleAndTranslate: the forward spans (of original_image's
  height and width to the grads') transposed, each input pixel the float32 sum, left to
  right, of the output pixels its weight went to, rows first. Batch and channels are the
  grads'; an empty original image gives an empty gradient, empty grads zeros."""
  antialias = bool(node.attrs.get("antialias", True))

  def run(grads, original_image, scale, translation):
    where = f"{node.op} node {node.path!r}"
    gs = tuple(int(d) for d in np.shape(grads))
    os = tuple(int(d) for d in np.shape(original_image))
    scale, translation = (np.asarray(v).reshape(-1) for v in (scale, translation))
    if len(gs) != 4 or len(os) != 4:
      raise ValueError(f"{where}: grads and original_image must be 4-D, got shapes "
                       f"{list(gs)} and {list(os)}")
    if scale.shape != (2,) or translation.shape != (2,):
      raise ValueError(f"{where}: scale and translation must hold 2 values each")
    if not np.all(scale > 0):
      raise ValueError(f"{where}: scale must be greater than zero, got {scale.tolist()}")
    m = xnp(grads)
    shape = (gs[0], os[1], os[2], gs[3])
    if 0 in shape or gs[1] == 0 or gs[2] == 0:
      return m.zeros(shape, _F32)
    rows = _grad_spans(*_spans(node, gs[1], os[1], scale[0], translation[0], antialias),
                       os[1])
    cols = _grad_spans(*_spans(node, gs[2], os[2], scale[1], translation[1], antialias),
                       os[2])
    x = _gather_spans(m, grads.astype(_F32), 1, *rows, gs[1])
    return _gather_spans(m, x, 2, *cols, gs[2]).astype(_F32)
  return run
