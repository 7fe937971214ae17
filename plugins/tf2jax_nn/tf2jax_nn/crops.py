"""CropAndResize (and its backprop kernels CropAndResizeGradImage and
CropAndResizeGradBoxes), ExtractGlimpse(V2) and DrawBoundingBoxes(V2), as TF's CPU kernels.

* CropAndResize (crop_and_resize_op.cc): box b samples image box_ind[b] at
  in_y = y1 * (h - 1) + y * (y2 - y1) * (h - 1) / (crop_h - 1) (the box centre when
  crop_h is 1), likewise x, in float32; rows or columns outside [0, h - 1] get
  extrapolation_value. Bilinear blends the four neighbours as ResizeBilinear does, nearest
  rounds half away from zero. Flipped boxes (y1 > y2) sample upside down. The output is
  float32. Gradients: the image's is JAX's (TF's CropAndResizeGradImage, for float16,
  float32 and float64 images), the boxes' is the bilinear interpolation's derivative for
  both methods (TF's CropAndResizeGradBoxes also uses it for nearest: a custom JVP here).
* CropAndResizeGradImage / CropAndResizeGradBoxes as ops: the same sampling positions,
  with TF's loops written out (see the lowerings).
* ExtractGlimpse(V2) (Eigen's GlimpseExtractionOp, versions 1 and 2): the glimpse of image
  i starts at the offset (y, x) = offsets[i], unnormalised (times the image size) and
  uncentred as TF does, truncated to integers; pixels outside the image get the noise.
  Version 1 (ExtractGlimpse) also halves centred unnormalised offsets and always
  subtracts half the glimpse size; version 2 does both only for normalised centred
  offsets. Only noise
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


def _check_crop_grads(node, grads, boxes, box_ind, depth: int):
  """(num_boxes, crop_h, crop_w) of grads, checked against boxes, box_ind and the image
  depth as TF's CropAndResizeGrad* kernels check them."""
  where = _where(node)
  gs = tuple(int(d) for d in np.shape(grads))
  if len(gs) != 4:
    raise ValueError(f"{where}: grads image must be 4-D, got shape {list(gs)}")
  if gs[1] <= 0 or gs[2] <= 0:
    raise ValueError(f"{where}: grads dimensions must be positive, got {list(gs)}")
  if np.shape(boxes) != (gs[0], 4) or np.shape(box_ind) != (gs[0],):
    raise ValueError(f"{where}: boxes must be [num_boxes, 4] and box_ind [num_boxes] with "
                     f"num_boxes = {gs[0]} (grads), got {list(np.shape(boxes))} and "
                     f"{list(np.shape(box_ind))}")
  if gs[3] != depth:
    raise ValueError(f"{where}: image and grads depth differ ({depth} vs {gs[3]})")
  return gs[:3]


def _check_box_ind(node, box_ind, batch: int):
  if isinstance(box_ind, np.ndarray) and np.any((box_ind < 0) | (box_ind >= batch)):
    raise ValueError(f"{_where(node)}: box_index has values outside [0, {batch})")


def _lerps(boxes, size: int, crop: int, lo: int, hi: int):
  """(positions [boxes, crop], in range, floor, ceil, lerp) along one side."""
  pos = _positions(boxes[:, lo], boxes[:, hi], size, crop)
  ok = (pos >= 0) & (pos <= F32(size - 1))
  low = jnp.floor(pos)
  return pos, ok, low, jnp.ceil(pos), pos - low


def _index(v, size: int):
  return jnp.clip(v, 0, size - 1).astype(jnp.int32)


@lowering("CropAndResizeGradImage", attrs={"T": ("float16", "float32", "float64"),
                                           "method": ("bilinear", "nearest")},
          static_inputs=(3,))
def crop_and_resize_grad_image(node):
  """The image gradient of CropAndResize: an image of image_size and dtype T to which
  every crop pixel inside the image adds, in T, its grads (float32) times its bilinear
  weights (T((1 - x_lerp) * ((1 - y_lerp) * g)) and so on), or the whole of them at the
  rounded position (nearest); boxes, rows, columns, then the four corners in TF's order
  (float16 sums round at every step, as TF's)."""
  method = node.attrs.get("method", "bilinear")
  dtype = np.dtype(node.attrs["T"])

  def run(grads, boxes, box_ind, image_size):
    where = _where(node)
    size = np.asarray(image_size).reshape(-1)
    if size.size != 4:
      raise ValueError(f"{where}: image_size must have 4 elements, got {size.tolist()}")
    batch, h, w, depth = (int(v) for v in size)
    if h <= 0 or w <= 0:
      raise ValueError(f"{where}: image dimensions must be positive, got {size.tolist()}")
    if batch < 0 or depth < 0:
      raise ValueError(f"{where}: image_size must not be negative, got {size.tolist()}")
    n, crop_h, crop_w = _check_crop_grads(node, grads, boxes, box_ind, depth)
    _check_box_ind(node, box_ind, batch)
    if n == 0 or batch * depth == 0:
      return jnp.zeros((batch, h, w, depth), dtype)
    boxes = jnp.asarray(boxes, F32)
    g = jnp.asarray(grads, F32)
    in_y, ok_y, y0, y1, ly = _lerps(boxes, h, crop_h, 0, 2)
    in_x, ok_x, x0, x1, lx = _lerps(boxes, w, crop_w, 1, 3)
    inside = (ok_y[:, :, None] & ok_x[:, None, :])[..., None, None]
    if method == "nearest":
      rows, cols = _round_half_away(in_y)[..., None], _round_half_away(in_x)[..., None]
      terms = g[:, :, :, None, :]
    else:
      ly, lx = ly[:, :, None, None], lx[:, None, :, None]
      d_top, d_bottom = (F32(1) - ly) * g, ly * g
      terms = jnp.stack([(F32(1) - lx) * d_top, lx * d_top,
                         (F32(1) - lx) * d_bottom, lx * d_bottom], axis=3)
      rows = jnp.stack([y0, y0, y1, y1], axis=-1)
      cols = jnp.stack([x0, x1, x0, x1], axis=-1)
    terms = jnp.where(inside, terms, F32(0)).astype(dtype)  # [n, crop_h, crop_w, K, d]
    b = jnp.asarray(box_ind, jnp.int32)[:, None, None, None]
    index = (b, _index(rows, h)[:, :, None, :], _index(cols, w)[:, None, :, :])
    return jnp.zeros((batch, h, w, depth), dtype).at[index].add(terms)
  return run


# The op's T (TF registers kernels for bfloat16, uint32 and uint64 too, which the op's
# definition does not allow).
_GRAD_BOXES_DTYPES = ("uint8", "uint16", "int8", "int16", "int32", "int64", "float16",
                      "float32", "float64")


@lowering("CropAndResizeGradBoxes", attrs={"T": _GRAD_BOXES_DTYPES,
                                           "method": ("bilinear",)})
def crop_and_resize_grad_boxes(node):
  """The boxes' gradient of (bilinear) CropAndResize, float32 [num_boxes, 4]: for every
  crop pixel inside the image, the image's float32 slopes between the four neighbours,
  times grads, times the derivative of the position w.r.t. each box side
  ((h - 1) - y * ratio for y1, y * ratio for y2 with ratio = (h - 1) / (crop_h - 1);
  (h - 1) / 2 for both when crop_h is 1; likewise x)."""
  def run(grads, image, boxes, box_ind):
    where = _where(node)
    shape = tuple(int(d) for d in np.shape(image))
    if len(shape) != 4:
      raise ValueError(f"{where}: input image must be 4-D, got shape {list(shape)}")
    batch, h, w, depth = shape
    if h <= 0 or w <= 0:
      raise ValueError(f"{where}: image dimensions must be positive, got {list(shape)}")
    n, crop_h, crop_w = _check_crop_grads(node, grads, boxes, box_ind, depth)
    _check_box_ind(node, box_ind, batch)
    if n == 0 or depth == 0:
      return jnp.zeros((n, 4), F32)
    boxes = jnp.asarray(boxes, F32)
    g = jnp.asarray(grads, F32)
    _, ok_y, y0, y1, ly = _lerps(boxes, h, crop_h, 0, 2)
    _, ok_x, x0, x1, lx = _lerps(boxes, w, crop_w, 1, 3)
    picked = jnp.asarray(image).astype(F32)[jnp.asarray(box_ind, jnp.int32)]

    def read(yi, xi):
      rows = jnp.take_along_axis(picked, _index(yi, h)[:, :, None, None], axis=1)
      return jnp.take_along_axis(rows, _index(xi, w)[:, None, :, None], axis=2)
    tl, tr, bl, br = read(y0, x0), read(y0, x1), read(y1, x0), read(y1, x1)
    ly, lx = ly[:, :, None, None], lx[:, None, :, None]
    slope_y = _rounded((F32(1) - lx) * (bl - tl)) + _rounded(lx * (br - tr))
    slope_x = _rounded((F32(1) - ly) * (tr - tl)) + _rounded(ly * (br - bl))
    inside = (ok_y[:, :, None] & ok_x[:, None, :])[..., None]
    slope_y = jnp.where(inside, slope_y * g, F32(0))
    slope_x = jnp.where(inside, slope_x * g, F32(0))

    def sides(slope, size: int, crop: int, axis: int):
      if crop > 1:
        ratio = F32(size - 1) / F32(crop - 1)
        shape = [1, 1, 1, 1]
        shape[axis] = crop
        at = (np.arange(crop, dtype=np.float32) * ratio).reshape(shape)
        return ((slope * (F32(size - 1) - at)).sum(axis=(1, 2, 3)),
                (slope * at).sum(axis=(1, 2, 3)))
      half = (slope * F32(0.5 * (size - 1))).sum(axis=(1, 2, 3))
      return half, half
    dy1, dy2 = sides(slope_y, h, crop_h, 1)
    dx1, dx2 = sides(slope_x, w, crop_w, 2)
    return jnp.stack([dy1, dx1, dy2, dx2], axis=1).astype(F32)
  return run


def _noise(value) -> bool | str:
  if value == "zero":
    return True
  return ("TF fills the glimpse outside the image with random values from its own "
          "generator, which tf2jax cannot reproduce: only noise='zero' (with "
          "uniform_noise=False) converts")


def _uniform_noise(value) -> bool | str:
  return True if value is False else "only uniform_noise=False (with noise='zero') converts"


def _glimpse(node, version: int, images, size, offsets):
  where = _where(node)
  centered = bool(node.attrs.get("centered", True))
  normalized = bool(node.attrs.get("normalized", True))
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
  if version == 1:
    if normalized:
      x, y = _rounded(x * F32(w)), _rounded(y * F32(h))
    if centered:
      x = _rounded(x / F32(2)) + F32(w / 2)
      y = _rounded(y / F32(2)) + F32(h / 2)
    x, y = x - F32(gw / 2), y - F32(gh / 2)
  elif normalized:
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
  if h == 0 or w == 0:
    return jnp.zeros((b, gh, gw, shape[3]), images.dtype)
  picked = jnp.take_along_axis(images, jnp.clip(rows, 0, h - 1)[:, :, None, None], axis=1)
  picked = jnp.take_along_axis(picked, jnp.clip(cols, 0, w - 1)[:, None, :, None], axis=2)
  inside = (((rows >= 0) & (rows < h))[:, :, None] & ((cols >= 0) & (cols < w))[:, None, :])
  return jnp.where(inside[..., None], picked, jnp.zeros((), images.dtype))


_GLIMPSE_ATTRS = {"centered": None, "normalized": None, "uniform_noise": _uniform_noise,
                  "noise": _noise}


@lowering("ExtractGlimpse", attrs=_GLIMPSE_ATTRS, static_inputs=(1,))
def extract_glimpse(node):
  return lambda images, size, offsets: _glimpse(node, 1, images, size, offsets)


@lowering("ExtractGlimpseV2", attrs=_GLIMPSE_ATTRS, static_inputs=(1,))
def extract_glimpse_v2(node):
  return lambda images, size, offsets: _glimpse(node, 2, images, size, offsets)


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
