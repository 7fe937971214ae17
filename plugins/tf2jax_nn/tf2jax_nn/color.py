"""Colour ops: RGBToHSV, HSVToRGB, AdjustContrast(v2), AdjustHue, AdjustSaturation.

Formulas follow TF's CPU kernels (colorspace_op.h, adjust_*_op.cc), in their order of
operations and precision:

* RGBToHSV / HSVToRGB compute in the image dtype (Eigen rounds half types after every
  operation). RGBToHSV's gradient is TF's `_RGBToHSVGrad` formula (a custom VJP): it
  zeroes the terms of non-positive channels and breaks ties its own way, so it is not the
  derivative of the forward everywhere.
* AdjustContrastv2 (float32): (x - mean) * factor + mean, the mean over height and width
  per channel. AdjustContrast (removed from TF at GraphDef version 2; old graphs still
  hold it): the same in float32 for every input dtype, clamped to [min_value, max_value].
* AdjustHue / AdjustSaturation (float32): TF's per-pixel scalar code. AdjustHue works on
  the hue in [0, 6) and the value range (rgb_to_hv_range / hv_range_to_rgb), AdjustSaturation
  goes through HSV (rgb_to_hsv / hsv_to_rgb of adjust_saturation_op.cc, whose hue
  constants 2/6 and 4/6 are doubles).
None of these has a gradient in TF except RGBToHSV.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from tf2jax_core import lowering

F32 = jnp.float32
_HSV = ("float16", "bfloat16", "float32", "float64")
_CONTRAST_V1 = ("uint8", "int8", "int16", "int32", "float32", "float64")


def _channels(node, images, min_rank: int = 1):
  shape = np.shape(images)
  if len(shape) < min_rank:
    raise ValueError(f"{node.op} node {node.path!r}: images must be at least {min_rank}-D, "
                     f"got shape {list(shape)}")
  if len(shape) < 1 or shape[-1] != 3:
    raise ValueError(f"{node.op} node {node.path!r}: the last dimension of images must be "
                     f"3, got shape {list(shape)}")
  return images[..., 0], images[..., 1], images[..., 2]


def _cmax(a, b):
  return jnp.where(a < b, b, a)  # std::max (NaN in `a` wins unless b compares)


def _rgb_to_hsv(r, g, b):
  dtype = r.dtype
  one = jnp.asarray(1, dtype)
  v = jnp.maximum(jnp.maximum(r, g), b)
  rng = v - jnp.minimum(jnp.minimum(r, g), b)
  s = jnp.where(v > 0, rng / jnp.where(v > 0, v, one), jnp.asarray(0, dtype))
  norm = (one / rng) * (one / jnp.asarray(6, dtype))
  two6, four6 = jnp.asarray(2, dtype) / 6, jnp.asarray(4, dtype) / 6
  h = jnp.where(r == v, norm * (g - b),
                jnp.where(g == v, norm * (b - r) + two6, norm * (r - g) + four6))
  h = jnp.where(rng > 0, h, jnp.asarray(0, dtype))
  h = jnp.where(h < 0, h + one, h)
  return jnp.stack([h, s, v], axis=-1)


def _recip(x):
  """TF's _CustomReciprocal: 1 / x, and 0 where x is 0."""
  safe = jnp.where(x == 0, jnp.ones_like(x), x)
  return jnp.where(x == 0, jnp.zeros_like(x), 1 / safe)


def _rgb_to_hsv_grad(images, hsv, ct):
  """TF's _RGBToHSVGrad (image_grad.py), term by term."""
  r, g, b = images[..., 0], images[..., 1], images[..., 2]
  s, v = hsv[..., 1], hsv[..., 2]
  f = lambda c: c.astype(r.dtype)
  r_max, g_max, b_max = f((r >= b) & (r >= g)), f((g > r) & (g >= b)), f((b > r) & (b > g))
  r_min, g_min, b_min = f((r < b) & (r < g)), f((g <= r) & (g < b)), f((b <= r) & (b <= g))
  pr, pg, pb = f(r > 0), f(g > 0), f(b > 0)
  sq = jnp.square
  ds_dr = pr * (r_max * (g_min * g + b_min * b) * _recip(sq(r))
                - r_min * _recip(g_max * g + b_max * b))
  ds_dg = pg * (g_max * (r_min * r + b_min * b) * _recip(sq(g))
                - g_min * _recip(r_max * r + b_max * b))
  ds_db = pb * (b_max * (g_min * g + r_min * r) * _recip(sq(b))
                - b_min * _recip(g_max * g + r_max * r))
  sv = _recip(sq(s)) * _recip(sq(v))
  dh_dr = (60 * (pr * r_max * -1 * (g - b) * sv)
           + 60 * (pg * g_max * r_min * (b - g) * _recip(sq(r - g)))
           + 60 * (pg * g_max * b_min * -1 * _recip(g - b))
           + 60 * (pb * b_max * r_min * (b - g) * _recip(sq(b - r)))
           + 60 * (pb * b_max * g_min * _recip(b - g))) / 360
  dh_dg = (60 * (pg * g_max * -1 * (b - r) * sv)
           + 60 * (pr * r_max * g_min * (r - b) * _recip(sq(r - g)))
           + 60 * (pr * r_max * b_min * _recip(r - b))
           + 60 * (pb * b_max * g_min * (r - b) * _recip(sq(b - g)))
           + 60 * (pb * b_max * r_min * -1 * _recip(b - r))) / 360
  dh_db = (60 * (pb * b_max * -1 * (r - g) * sv)
           + 60 * (pr * r_max * b_min * (g - r) * _recip(sq(r - b)))
           + 60 * (pr * r_max * g_min * -1 * _recip(r - g))
           + 60 * (pg * g_max * b_min * (g - r) * _recip(sq(g - b)))
           + 60 * (pg * g_max * r_min * _recip(g - r))) / 360
  ch, cs, cv = ct[..., 0], ct[..., 1], ct[..., 2]
  return jnp.stack([ch * dh_dr + cs * ds_dr + cv * r_max,
                    ch * dh_dg + cs * ds_dg + cv * g_max,
                    ch * dh_db + cs * ds_db + cv * b_max], axis=-1)


@jax.custom_vjp
def _rgb_to_hsv_op(images):
  return _rgb_to_hsv(images[..., 0], images[..., 1], images[..., 2])


def _rgb_to_hsv_fwd(images):
  hsv = _rgb_to_hsv_op(images)
  return hsv, (images, hsv)


_rgb_to_hsv_op.defvjp(_rgb_to_hsv_fwd, lambda res, ct: (_rgb_to_hsv_grad(*res, ct),))


@lowering("RGBToHSV", attrs={"T": _HSV})
def rgb_to_hsv(node):
  def run(images):
    _channels(node, images)
    return _rgb_to_hsv_op(jnp.asarray(images))
  return run


@lowering("HSVToRGB", attrs={"T": _HSV})
def hsv_to_rgb(node):
  def run(images):
    h, s, v = _channels(node, jnp.asarray(images))
    dtype = h.dtype
    c = lambda x: jnp.asarray(x, dtype)
    clip = lambda x: jnp.minimum(jnp.maximum(x, c(0)), c(1))
    dh = h * c(6)
    dr = clip(jnp.abs(dh - c(3)) - c(1))
    dg = clip(-jnp.abs(dh - c(2)) + c(2))
    db = clip(-jnp.abs(dh - c(4)) + c(2))
    one_s = -s + c(1)
    return jnp.stack([(one_s + s * dr) * v, (one_s + s * dg) * v, (one_s + s * db) * v],
                     axis=-1)
  return run


def _image_mean(node, images):
  """The per-channel mean over height and width (axes -3 and -2), in float32."""
  if np.ndim(images) < 3:
    raise ValueError(f"{node.op} node {node.path!r}: images must be at least 3-D "
                     f"[..., height, width, channels], got shape {list(np.shape(images))}")
  return jnp.mean(images, axis=(-3, -2), keepdims=True)


def _scalar(node, name, value):
  if np.ndim(value) != 0:
    raise ValueError(f"{node.op} node {node.path!r}: {name} must be a scalar, got shape "
                     f"{list(np.shape(value))}")
  return jnp.asarray(value, F32)


@lowering("AdjustContrastv2", attrs={"T": ("float32",)})
def adjust_contrastv2(node):
  def run(images, contrast_factor):
    factor = _scalar(node, "contrast_factor", contrast_factor)
    x = jnp.asarray(images, F32)
    mean = _image_mean(node, x)
    return (x - mean) * factor + mean
  return run


@lowering("AdjustContrast", attrs={"T": _CONTRAST_V1})
def adjust_contrast(node):
  def run(images, contrast_factor, min_value, max_value):
    factor = _scalar(node, "contrast_factor", contrast_factor)
    lo = _scalar(node, "min_value", min_value)
    hi = _scalar(node, "max_value", max_value)
    x = jnp.asarray(images).astype(F32)
    mean = _image_mean(node, x)
    adjusted = (x - mean) * factor + mean
    return jnp.maximum(jnp.minimum(adjusted, hi), lo)
  return run


def _hv_range(r, g, b):
  """TF's rgb_to_hv_range: hue in [0, 6], v_min, v_max (ties go either way)."""
  rg = r < g
  cat = jnp.where(rg, jnp.where(b < r, 1, jnp.where(b > g, 3, 2)),
                  jnp.where(b < g, 0, jnp.where(b > r, 4, 5)))
  vmax = jnp.where(rg, jnp.where(b > g, b, g), jnp.where(b > r, b, r))
  vmin = jnp.where(rg, jnp.where(b < r, b, r), jnp.where(b < g, b, g))
  vmid = jnp.where(rg, jnp.where(b < r, r, jnp.where(b > g, g, b)),
                   jnp.where(b < g, g, jnp.where(b > r, r, b)))
  span = vmax - vmin
  ratio = (vmid - vmin) / jnp.where(span == 0, F32(1), span)
  h = cat.astype(F32) + jnp.where(cat % 2 == 0, ratio, F32(1) - ratio)
  return jnp.where(vmax == vmin, F32(0), h), vmin, vmax


def _hv_range_to_rgb(h, vmin, vmax):
  """TF's hv_range_to_rgb."""
  cat = _to_int(h)
  ratio = h - cat.astype(F32)
  ratio = jnp.where(cat % 2 == 0, ratio, F32(1) - ratio)
  vmid = vmin + ratio * (vmax - vmin)
  pick = lambda *vals: jnp.select([cat == i for i in range(5)], list(vals[:5]), vals[5])
  return (pick(vmax, vmid, vmin, vmin, vmid, vmax),
          pick(vmid, vmax, vmax, vmid, vmin, vmin),
          pick(vmin, vmin, vmid, vmax, vmax, vmid))


def _to_int(x):
  """static_cast<int>(float): truncation; NaN and out-of-range give INT_MIN (x86)."""
  bad = ~(jnp.abs(x) < F32(2.0 ** 31))
  return jnp.where(bad, np.int32(-2 ** 31), jnp.trunc(jnp.where(bad, 0, x)).astype(jnp.int32))


@lowering("AdjustHue", attrs={"T": ("float32",)})
def adjust_hue(node):
  def run(images, delta):
    delta = _scalar(node, "delta", delta)
    r, g, b = _channels(node, jnp.asarray(images, F32), 3)
    h, vmin, vmax = _hv_range(r, g, b)
    h = h + delta * F32(6)
    for _ in range(2):  # TF's while loops; |delta| <= 1 needs at most two turns
      h = jnp.where(h < 0, h + F32(6), h)
    for _ in range(2):
      h = jnp.where(h >= 6, h - F32(6), h)
    return jnp.stack(_hv_range_to_rgb(h, vmin, vmax), axis=-1)
  return run


def _scalar_rgb_to_hsv(r, g, b):
  """adjust_saturation_op.cc's rgb_to_hsv (float32, with double constants)."""
  v = _cmax(r, _cmax(g, b))
  mn = jnp.where(b < g, b, g)
  mn = jnp.where(mn < r, mn, r)  # std::min(r, std::min(g, b))
  span = v - mn
  s = jnp.where(v > 0, span / jnp.where(v > 0, v, F32(1)), F32(0))
  norm = F32(1) / (F32(6) * span)
  h = jnp.where(r == v, norm * (g - b),
                jnp.where(g == v, _add_double(norm * (b - r), 2.0 / 6.0),
                               _add_double(norm * (r - g), 4.0 / 6.0)))
  h = jnp.where(span <= 0, F32(0), h)
  h = jnp.where(h < 0, h + F32(1), h)
  return h, s, v


def _add_double(x, c: float):
  """float32(double(x) + c) without float64: c = hi + lo in float32, x + hi rounded
  once is what float32(x + c) is except near ties, where lo decides (two-sum)."""
  hi = np.float32(c)
  lo = np.float32(c - float(hi))
  s = x + hi
  err = (x - (s - hi)) + (hi - (s - (s - hi)))  # exact error of x + hi
  return s + (err + lo)


def _scalar_hsv_to_rgb(h, s, v):
  """adjust_saturation_op.cc's hsv_to_rgb."""
  c = s * v
  m = v - c
  dh = h * F32(6)
  cat = _to_int(dh)
  fmodu = dh
  fmodu = jnp.where(fmodu <= 0, fmodu + F32(2), fmodu)  # h in [0, 1]: one turn at most
  fmodu = jnp.where(fmodu >= F32(2), fmodu - F32(2), fmodu)
  fmodu = jnp.where(fmodu >= F32(2), fmodu - F32(2), fmodu)
  fmodu = jnp.where(fmodu >= F32(2), fmodu - F32(2), fmodu)
  x = c * (F32(1) - jnp.abs(fmodu - F32(1)))
  z = jnp.zeros_like(c)
  pick = lambda *vals: jnp.select([cat == i for i in range(6)], list(vals), z)
  return (pick(c, x, z, z, x, c) + m, pick(x, c, c, x, z, z) + m,
          pick(z, z, x, c, c, x) + m)


@lowering("AdjustSaturation", attrs={"T": ("float32",)})
def adjust_saturation(node):
  def run(images, scale):
    scale = _scalar(node, "scale", scale)
    r, g, b = _channels(node, jnp.asarray(images, F32), 3)
    h, s, v = _scalar_rgb_to_hsv(r, g, b)
    s = jnp.minimum(F32(1), jnp.maximum(F32(0), s * scale))
    return jnp.stack(_scalar_hsv_to_rgb(h, s, v), axis=-1)
  return run
