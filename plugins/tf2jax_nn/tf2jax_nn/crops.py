"""CropAndResize, ExtractGlimpseV2 and DrawBoundingBoxes(V2), as TF's CPU kernels.

* CropAndResize (crop_and_resize_op.cc): box b samples image box_ind[b] at
  in_y = y1 * (h - 1) + y * (y2 - y1) * (h - 1) / (crop_h - 1) (the box centre when
  crop_h is 1), likewise x, in float32; rows or columns outside [0, h - 1] get
  extrapolation_value. Bilinear blends the four neighbours as ResizeBilinear does, nearest
  rounds half away from zero. Flipped boxes (y1 > y2) sample upside down. The output is
  float32. Gradients: the image's is JAX's (TF's CropAndResizeGradImage, for float16,
  float32 and float64 images), the boxes' is the bilinear interpolation's derivative for
  both methods (TF's CropAndResizeGradBoxes also uses it for nearest: a custom JVP here).
* ExtractGlimpseV2 (Eigen's GlimpseExtractionOp, version 2): the glimpse of image i starts
  at the offset (y, x) = offsets[i], unnormalised (times the image size) and uncentred as
  TF does, truncated to integers; pixels outside the image get the noise. Only noise
  "zero" is deterministic: "uniform" and "gaussian" (the defaults) fill them with random
  values drawn by TF's own generator, which cannot be reproduced, so they are a
  conversion error.
* DrawBoundingBoxes(V2) (draw_bounding_box_op.cc): box corners scaled by (h - 1) and
  (w - 1) and truncated; each box's outline is painted in turn (later boxes on top), in
  the colours given (V2) or TF's default table, sides outside the image left out,
  inverted boxes skipped.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from tf2jax_core import lowering

F32 = jnp.float32
_CROP_DTYPES = ("uint8", "uint16", "uint32", "uint64", "int8", "int16", "int32", "int64",
                "float16", "bfloat16", "float32", "float64")


def _where(node) -> str:
  return f"{node.op} node {node.path!r}"


def _round_half_away(x):
  r = jnp.floor(x)
  return r + (x - r >= F32(0.5))


def _rounded(product):
  """The product rounded to float32 before it is added: without this select XLA contracts
  `a * b + c` into a fused multiply-add (TF's build has none), which moves positions
  across pixel boundaries (e.g. 4 + 3 * -1.3333334 is 0 in TF, -1.2e-7 fused)."""
  return jnp.where(product != product, F32(np.nan), product)


def _divide(x, n: int):
  """x / n correctly rounded: XLA rewrites a division by a constant into a multiplication
  by its reciprocal (an ulp off), not one by a value it cannot fold."""
  return x / jnp.where(x != x, F32(1), F32(n))


def _positions(lo, hi, size: int, n: int):
  """Sampling positions [boxes, n] of the box sides lo, hi ([boxes]) in float32."""
  top = F32(size - 1)
  if n > 1:
    scale = _divide((hi - lo) * top, n - 1)
    return (_rounded(lo[:, None] * top)
            + _rounded(jnp.arange(n, dtype=F32)[None, :] * scale[:, None]))
  return (F32(0.5) * (lo + hi) * top)[:, None]


def _sample(image, boxes, box_ind, crop_h: int, crop_w: int, method: str, extrapolation):
  """The crops [boxes, crop_h, crop_w, depth] of the float32 image."""
  _, h, w, _ = image.shape
  in_y = _positions(boxes[:, 0], boxes[:, 2], h, crop_h)
  in_x = _positions(boxes[:, 1], boxes[:, 3], w, crop_w)
  inside = (((in_y >= 0) & (in_y <= F32(h - 1)))[:, :, None]
            & ((in_x >= 0) & (in_x <= F32(w - 1)))[:, None, :])[..., None]
  picked = image[box_ind]  # [boxes, h, w, depth]

  def read(yi, xi):
    yi = jnp.clip(yi, 0, h - 1).astype(jnp.int32)
    xi = jnp.clip(xi, 0, w - 1).astype(jnp.int32)
    rows = jnp.take_along_axis(picked, yi[:, :, None, None], axis=1)
    return jnp.take_along_axis(rows, xi[:, None, :, None], axis=2)

  if method == "nearest":
    out = read(_round_half_away(in_y), _round_half_away(in_x))
  else:
    y0, x0 = jnp.floor(in_y), jnp.floor(in_x)
    y1, x1 = jnp.ceil(in_y), jnp.ceil(in_x)
    wy = (in_y - y0)[:, :, None, None]
    wx = (in_x - x0)[:, None, :, None]
    tl, tr, bl, br = read(y0, x0), read(y0, x1), read(y1, x0), read(y1, x1)
    top = tl + (tr - tl) * wx
    bottom = bl + (br - bl) * wx
    out = top + (bottom - top) * wy
  return jnp.where(inside, out, F32(extrapolation))


def _nearest_with_box_grad(crop_h, crop_w, extrapolation):
  """Nearest sampling whose boxes' derivative is the bilinear one (as TF's)."""
  @jax.custom_jvp
  def f(image, boxes, box_ind):
    return _sample(image, boxes, box_ind, crop_h, crop_w, "nearest", extrapolation)

  @f.defjvp
  def jvp(primals, tangents):
    image, boxes, box_ind = primals
    d_image, d_boxes, _ = tangents
    out = f(image, boxes, box_ind)
    near = _sample(d_image, jax.lax.stop_gradient(boxes), box_ind, crop_h, crop_w,
                   "nearest", 0.0)
    _, box_part = jax.jvp(
        lambda b: _sample(image, b, box_ind, crop_h, crop_w, "bilinear", extrapolation),
        (boxes,), (d_boxes,))
    return out, near + box_part
  return f


@lowering("CropAndResize", attrs={"T": _CROP_DTYPES, "method": ("bilinear", "nearest"),
                                  "extrapolation_value": None},
          static_inputs=(3,))
def crop_and_resize(node):
  method = node.attrs.get("method", "bilinear")
  extrapolation = float(node.attrs.get("extrapolation_value", 0.0))

  def run(image, boxes, box_ind, crop_size):
    where = _where(node)
    shape = tuple(int(d) for d in np.shape(image))
    if len(shape) != 4:
      raise ValueError(f"{where}: input image must be 4-D, got shape {list(shape)}")
    if shape[1] <= 0 or shape[2] <= 0:
      raise ValueError(f"{where}: image dimensions must be positive, got {list(shape)}")
    n = np.shape(boxes)[0] if np.ndim(boxes) == 2 else -1
    if np.shape(boxes) != (n, 4) or np.shape(box_ind) != (n,):
      raise ValueError(f"{where}: boxes must be [num_boxes, 4] and box_ind [num_boxes], got "
                       f"{list(np.shape(boxes))} and {list(np.shape(box_ind))}")
    crop = np.asarray(crop_size).reshape(-1)
    if crop.shape != (2,) or np.any(crop <= 0):
      raise ValueError(f"{where}: crop_size must be 2 positive sizes, got {crop.tolist()}")
    if isinstance(box_ind, np.ndarray) and np.any((box_ind < 0) | (box_ind >= shape[0])):
      raise ValueError(f"{where}: box_ind has values outside [0, {shape[0]})")
    crop_h, crop_w = int(crop[0]), int(crop[1])
    image = jnp.asarray(image).astype(F32)
    boxes = jnp.asarray(boxes, F32)
    if n == 0:
      return jnp.zeros((0, crop_h, crop_w, shape[3]), F32)
    if method == "nearest":
      return _nearest_with_box_grad(crop_h, crop_w, extrapolation)(image, boxes, box_ind)
    return _sample(image, boxes, box_ind, crop_h, crop_w, method, extrapolation)
  return run


def _noise(value) -> bool | str:
  if value == "zero":
    return True
  return ("TF fills the glimpse outside the image with random values from its own "
          "generator, which tf2jax cannot reproduce: only noise='zero' (with "
          "uniform_noise=False) converts")


def _uniform_noise(value) -> bool | str:
  return True if value is False else "only uniform_noise=False (with noise='zero') converts"


@lowering("ExtractGlimpseV2", attrs={"centered": None, "normalized": None,
                                     "uniform_noise": _uniform_noise, "noise": _noise},
          static_inputs=(1,))
def extract_glimpse_v2(node):
  centered = bool(node.attrs.get("centered", True))
  normalized = bool(node.attrs.get("normalized", True))

  def run(images, size, offsets):
    where = _where(node)
    shape = tuple(int(d) for d in np.shape(images))
    if len(shape) != 4:
      raise ValueError(f"{where}: input must be a 4-D tensor, got shape {list(shape)}")
    size = np.asarray(size).reshape(-1)
    if size.shape != (2,):
      raise ValueError(f"{where}: input must be a vector of size 2 (height, width)")
    if np.shape(offsets) != (shape[0], 2):
      raise ValueError(f"{where}: offsets must be [batch, 2], got {list(np.shape(offsets))}")
    gh, gw = int(size[0]), int(size[1])
    if gh < 0 or gw < 0:
      raise ValueError(f"{where}: Expected a non-negative size, got {size.tolist()}")
    b, h, w, _ = shape
    offsets = jnp.asarray(offsets, F32)
    y, x = offsets[:, 0], offsets[:, 1]
    if normalized:
      x, y = x * F32(w), y * F32(h)
      if centered:
        x = x / F32(2) + F32(w / 2) - F32(gw / 2)
        y = y / F32(2) + F32(h / 2) - F32(gh / 2)
    elif centered:
      x, y = x + F32(w / 2), y + F32(h / 2)
    oy, ox = jnp.trunc(y).astype(jnp.int32), jnp.trunc(x).astype(jnp.int32)
    rows = oy[:, None] + jnp.arange(gh, dtype=jnp.int32)
    cols = ox[:, None] + jnp.arange(gw, dtype=jnp.int32)
    images = jnp.asarray(images)
    picked = jnp.take_along_axis(images, jnp.clip(rows, 0, h - 1)[:, :, None, None], axis=1)
    picked = jnp.take_along_axis(picked, jnp.clip(cols, 0, w - 1)[:, None, :, None], axis=2)
    inside = (((rows >= 0) & (rows < h))[:, :, None] & ((cols >= 0) & (cols < w))[:, None, :])
    return jnp.where(inside[..., None], picked, jnp.zeros((), images.dtype))
  return run


_DEFAULT_COLORS = np.array([[1, 1, 0, 1], [0, 0, 1, 1], [1, 0, 0, 1], [0, 1, 0, 1],
                            [0.5, 0, 0.5, 1], [0.5, 0.5, 0, 1], [0.5, 0, 0, 1],
                            [0, 0, 0.5, 1], [0, 1, 1, 1], [1, 0, 1, 1]], np.float32)


def _draw(node, images, boxes, colors):
  where = _where(node)
  shape = tuple(int(d) for d in np.shape(images))
  if len(shape) != 4:
    raise ValueError(f"{where}: The rank of the images should be 4, got {list(shape)}")
  b, h, w, depth = shape
  if depth not in (1, 3, 4):
    raise ValueError(f"{where}: Channel depth should be either 1 (GRY), 3 (RGB), or 4 (RGBA)")
  if np.ndim(boxes) != 3 or np.shape(boxes)[0] != b or np.shape(boxes)[2] != 4:
    raise ValueError(f"{where}: boxes must be [batch, num_boxes, 4], got "
                     f"{list(np.shape(boxes))}")
  if colors is not None and (np.ndim(colors) != 2 or np.shape(colors)[1] < depth):
    raise ValueError(f"{where}: colors must be a 2-D matrix with at least {depth} "
                     f"channels, got shape {list(np.shape(colors))}")
  if colors is None or np.size(colors) == 0:  # TF's default table
    colors = _DEFAULT_COLORS.copy()
    if depth == 1:
      colors[:, 0] = 1
  colors = jnp.asarray(colors, F32)[:, :depth].astype(images.dtype)
  canvas = jnp.asarray(images)
  if h == 0 or w == 0:
    # TF fails ("... clamp is less than 0") on a box it neither skips as inverted nor as
    # outside: checked when the boxes are known (the spec draws non-empty images).
    if isinstance(boxes, np.ndarray) and boxes.size:
      r0, c0, r1, c1 = (np.trunc(boxes[..., i] * np.float32(s - 1)) for i, s in
                        enumerate((h, w, h, w)))
      if np.any((r0 <= r1) & (c0 <= c1) & (r0 < h) & (r1 >= 0) & (c0 < w) & (c1 >= 0)):
        raise ValueError(f"{where}: TF fails on a box of an empty image")
    return canvas
  boxes = jnp.asarray(boxes, F32)
  rows = jnp.arange(h)[None, :, None]
  cols = jnp.arange(w)[None, None, :]

  def trunc(v, scale):  # static_cast<int64_t>(float): towards zero
    return jnp.trunc(v * F32(scale)).astype(jnp.int32)[:, None, None]
  for k in range(int(np.shape(boxes)[1])):
    y0, x0 = trunc(boxes[:, k, 0], h - 1), trunc(boxes[:, k, 1], w - 1)
    y1, x1 = trunc(boxes[:, k, 2], h - 1), trunc(boxes[:, k, 3], w - 1)
    drawn = ~((y0 > y1) | (x0 > x1) | (y0 >= h) | (y1 < 0) | (x0 >= w) | (x1 < 0))
    in_cols = (cols >= x0) & (cols <= x1)
    in_rows = (rows >= y0) & (rows <= y1)
    line = (((rows == y0) | (rows == y1)) & in_cols) | (((cols == x0) | (cols == x1)) & in_rows)
    color = colors[k % colors.shape[0]]
    canvas = jnp.where((drawn & line)[..., None], color, canvas)
  return canvas


@lowering("DrawBoundingBoxes", attrs={"T": ("float16", "float32")})
def draw_bounding_boxes(node):
  return lambda images, boxes: _draw(node, images, boxes, None)


@lowering("DrawBoundingBoxesV2", attrs={"T": ("float16", "float32")})
def draw_bounding_boxes_v2(node):
  return lambda images, boxes, colors: _draw(node, images, boxes, colors)
