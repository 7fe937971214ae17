"""ImageProjectiveTransformV2/V3: TF's ProjectiveGenerator (image_ops.h), in float32.

Output pixel (x, y) of image b reads the input at ((a0 x + a1 y + a2) / k,
(b0 x + b1 y + b2) / k) with k = c0 x + c1 y + 1 (k = 0 gives the fill value). The fill
mode maps coordinates outside the image (REFLECT, WRAP, NEAREST clamp; CONSTANT keeps
them, and reads outside give the fill value), then NEAREST interpolation rounds half
away from zero and BILINEAR blends the four neighbours in float32 (so float64 and int64
images are blended in float32 too, as TF does) and casts back (truncating for ints).

Under `jit`, XLA may contract `w0 * v0 + w1 * v1` into a fused multiply-add, which TF's
build (no FMA) does not: a blend within a float32 ulp of an integer can then truncate
to the integer below TF's (off by one; seen in about 1 of 500 random integer cases).
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

from tf2jax_core import lowering

_DTYPES = ("uint8", "int32", "int64", "float16", "bfloat16", "float32", "float64")
_FILL_MODES = ("CONSTANT", "REFLECT", "WRAP", "NEAREST")
_INTERPOLATIONS = ("NEAREST", "BILINEAR")
F32 = jnp.float32


def _trunc(x):
  return jnp.trunc(x)


def _map_coordinate(coord, size: int, mode: str):
  """TF's MapCoordinate<mode> on float32 coordinates (C++ int64/float conversions kept:
  `n * trunc(v)` is computed exactly and rounded to float32 when added to a float)."""
  if mode == "CONSTANT":
    return coord
  top = F32(size - 1)
  if mode == "NEAREST":
    return jnp.clip(coord, F32(0), top)
  if size <= 1:
    small = jnp.where((coord < 0) | (coord > top), F32(0), coord)
    return jnp.clip(small, F32(0), top)
  if mode == "REFLECT":
    sz2 = F32(2 * size)
    neg = sz2 * _trunc(-coord / sz2) + coord
    neg = jnp.where(neg < F32(-size), neg + sz2, -neg - F32(1))
    pos = coord - sz2 * _trunc(coord / sz2)
    pos = jnp.where(pos >= F32(size), sz2 - pos - F32(1), pos)
  else:  # WRAP
    sz = F32(size - 1)
    n = F32(size)
    neg = coord + n * (_trunc(-coord / sz) + F32(1))
    pos = coord - n * _trunc(coord / sz)
  mapped = jnp.where(coord < 0, neg, jnp.where(coord > top, pos, coord))
  return jnp.clip(mapped, F32(0), top)


def _reader(images, fill):
  """read_with_fill_value: the input at integral float coordinates, or the fill value
  outside the image (NaN and huge coordinates included)."""
  batch, height, width, _ = images.shape
  b = jnp.arange(batch)[:, None, None]

  def read(y, x):
    inside = (y >= 0) & (y < height) & (x >= 0) & (x < width)
    yi = jnp.where(inside, y, 0).astype(jnp.int32)
    xi = jnp.where(inside, x, 0).astype(jnp.int32)
    values = images[b, yi, xi]  # [batch, out_h, out_w, channels]
    return jnp.where(inside[..., None], values, fill)
  return read


def _round_half_away(x):
  return jnp.where(x < 0, -jnp.floor(-x + F32(0.5)), jnp.floor(x + F32(0.5)))


def _transform(node, images, transforms, output_shape, fill_value):
  dtype = np.dtype(node.attrs["dtype"])
  mode = node.attrs.get("fill_mode", "CONSTANT")
  interpolation = node.attrs["interpolation"]
  where = f"{node.op} node {node.path!r}"
  if mode not in _FILL_MODES:
    raise ValueError(f"{where}: unknown fill_mode {mode!r} (TF has {list(_FILL_MODES)}).")
  if interpolation not in _INTERPOLATIONS:
    raise ValueError(f"{where}: unknown interpolation {interpolation!r} (TF has "
                     f"{list(_INTERPOLATIONS)}).")
  if len(images.shape) != 4:
    raise ValueError(f"{where}: images must be [batch, height, width, channels], got shape "
                     f"{list(images.shape)}")
  batch = images.shape[0]
  if len(transforms.shape) != 2 or transforms.shape[1] != 8 or \
      transforms.shape[0] not in (1, batch):
    raise ValueError(f"{where}: transforms must have shape [1 or {batch}, 8], got "
                     f"{list(transforms.shape)}")
  out_shape = np.asarray(output_shape).reshape(-1)
  if out_shape.size != 2 or np.any(out_shape <= 0):
    raise ValueError(f"{where}: output_shape must be 2 positive ints [height, width] (TF: "
                     f"'output dimensions must be positive'), got {out_shape.tolist()}")
  out_h, out_w = (int(v) for v in out_shape)
  channels = images.shape[3]
  if batch * out_h * out_w * channels == 0:
    return jnp.zeros((batch, out_h, out_w, channels), dtype)

  images = jnp.asarray(images)
  fill = jnp.asarray(fill_value, F32).astype(dtype)
  t = jnp.broadcast_to(jnp.asarray(transforms, F32), (batch, 8))[:, :, None, None]
  x = jnp.arange(out_w, dtype=F32)[None, None, :]
  y = jnp.arange(out_h, dtype=F32)[None, :, None]
  projection = t[:, 6] * x + t[:, 7] * y + F32(1)
  zero = projection == 0
  safe = jnp.where(zero, F32(1), projection)
  in_x = (t[:, 0] * x + t[:, 1] * y + t[:, 2]) / safe
  in_y = (t[:, 3] * x + t[:, 4] * y + t[:, 5]) / safe
  in_x = _map_coordinate(in_x, images.shape[2], mode)
  in_y = _map_coordinate(in_y, images.shape[1], mode)
  read = _reader(images, fill)

  if interpolation == "NEAREST":
    out = read(_round_half_away(in_y), _round_half_away(in_x))
  else:
    y0, x0 = jnp.floor(in_y), jnp.floor(in_x)
    y1, x1 = y0 + F32(1), x0 + F32(1)
    wx1, wx0 = (x1 - in_x)[..., None], (in_x - x0)[..., None]
    wy1, wy0 = (y1 - in_y)[..., None], (in_y - y0)[..., None]

    def f(v):
      return v.astype(F32)
    top = wx1 * f(read(y0, x0)) + wx0 * f(read(y0, x1))
    bottom = wx1 * f(read(y1, x0)) + wx0 * f(read(y1, x1))
    blend = wy1 * top + wy0 * bottom
    if dtype.kind in "iu":
      # static_cast<int>(float) truncates (NaN and out-of-range: x86's "indefinite").
      info = np.iinfo(dtype)
      bad = ~jnp.isfinite(blend) | (blend <= F32(info.min) - 1) | (blend >= F32(info.max) + 1)
      out = jnp.where(bad, info.min if dtype.itemsize >= 4 else 0,
                      jnp.trunc(jnp.where(bad, 0, blend)).astype(dtype))
    else:
      out = blend.astype(dtype)
  return jnp.where(zero[..., None], fill, out).astype(dtype)


_ATTRS = {"dtype": _DTYPES, "interpolation": None, "fill_mode": None}


@lowering("ImageProjectiveTransformV2", attrs=_ATTRS, static_inputs=(2,))
def image_projective_transform_v2(node):
  return lambda images, transforms, output_shape: _transform(
      node, images, transforms, output_shape, 0.0)


@lowering("ImageProjectiveTransformV3", attrs=_ATTRS, static_inputs=(2,))
def image_projective_transform_v3(node):
  def run(images, transforms, output_shape, fill_value):
    if len(getattr(fill_value, "shape", ())) != 0:
      raise ValueError(f"{node.op} node {node.path!r}: fill_value must be a scalar, got "
                       f"shape {list(fill_value.shape)}")
    return _transform(node, images, transforms, output_shape, fill_value)
  return run
