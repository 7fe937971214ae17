"""Fake quantization: FakeQuantWithMinMaxArgs, FakeQuantWithMinMaxVars,
FakeQuantWithMinMaxVarsPerChannel and their *Gradient ops, QuantizeAndDequantizeV2,
QuantizeAndDequantizeV3, QuantizeAndDequantizeV4; QuantizeV2 and Dequantize (quantized
dtypes are held as the integers of their width and sign; see their section).

Semantics follow TF's CPU kernels, step by step in the input's dtype:

* FakeQuant*: TF "nudges" [min, max] so that 0 is exactly representable, clamps to the
  nudged range and rounds to the grid. FakeQuantWithMinMaxArgs and the per-channel op
  multiply by the inverse scale, FakeQuantWithMinMaxVars divides by the scale (as TF).
  For the Vars ops, min == max == 0 gives zeros. Gradients are TF's: straight-through
  inside the nudged range, and for the Vars ops the sum of the gradients below (above)
  the nudged range goes to min (max). The FakeQuant*Gradient ops compute exactly these
  (TF registers no gradient for them).
* QuantizeAndDequantize*: without range_given the range is the input's min and max (per
  channel with `axis`); with it the input is clamped to the (adjusted) range. round_mode
  HALF_UP is floor(x + 0.5), HALF_TO_EVEN is rint. TF's gradient is the identity for V2
  and V3, and for V4 it passes the gradient where input_min <= x <= input_max (the input
  tensors, even without range_given). min and max get no gradient.
* QuantizeAndDequantizeV3's kernel also rejects a scalar input.
* The V2 and V4 kernels reject a per-channel range_given (axis != -1) whatever the shapes
  ("input_min must be a scalar", a TF bug); tf2jax raises too. V3 takes it.
* TF's CPU kernels flush subnormal results to zero; the NumPy (static) path does too.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from tf2jax_core import FLOAT, is_static, lowering
from tf2jax_nn._common import onednn_enabled, refuse

_F32 = np.float32


def _shape(x) -> tuple[int, ...]:
  return tuple(int(d) for d in np.shape(x))


def _ftz(m, v):
  """Subnormal results flushed to zero, as TF's CPU kernels and XLA do (NumPy only)."""
  if m is not np:
    return v
  v = np.asarray(v)
  return np.where(np.abs(v) < np.finfo(v.dtype).tiny, v * 0, v)


def _div(m, a, b):
  """a / b as TF computes it. XLA turns a division by a broadcast scalar into a
  multiplication by its (rounded) reciprocal: a divisor that depends on `a` keeps it a
  division (a NaN `a` gives NaN either way)."""
  if m is np:
    return a / b
  return a / jnp.where(jnp.isnan(a), a, b)


# FakeQuant ----------------------------------------------------------------------------


def _nudge(m, mn, mx, qmin: int, qmax: int):
  """TF's Nudge in float32: (nudged_min, nudged_max, scale, inv_scale)."""
  qmin_f, qmax_f = _F32(qmin), _F32(qmax)
  scale = _ftz(m, _div(m, mx - mn, qmax_f - qmin_f))
  inv_scale = (qmax_f - qmin_f) / (mx - mn)
  zp = qmin_f - mn / scale
  fl = m.floor(zp)
  rounded = fl + (zp - fl >= _F32(0.5)).astype(np.float32)  # std::round, zp >= 0 here
  zp = m.where(zp < qmin_f, qmin_f, m.where(zp > qmax_f, qmax_f, rounded))
  return (qmin_f - zp) * scale, (qmax_f - zp) * scale, scale, inv_scale


def _fake_quant(m, x, mn, mx, qmin, qmax, divide: bool, zero_guard: bool):
  lo, hi, scale, inv_scale = _nudge(m, mn, mx, qmin, qmax)
  quant_zero = m.floor(-lo * inv_scale + _F32(0.5))
  shifted = m.maximum(m.minimum(x, hi), lo) - lo
  q = _div(m, shifted, scale) if divide else shifted * inv_scale
  out = m.floor(q - quant_zero + _F32(0.5)) * scale
  if zero_guard:
    out = m.where((mn == 0) & (mx == 0), _F32(0), out)
  return out.astype(np.float32)


def _masks(x, mn, mx, qmin, qmax, zero_guard: bool, m=jnp):
  """Where the gradient goes: (to the input, to min, to max), as float32 masks."""
  lo, hi, _, _ = _nudge(m, mn, mx, qmin, qmax)
  inside = (x >= lo) & (x <= hi)
  below, above = x < lo, x > hi
  if zero_guard:  # min == max == 0: TF passes the whole gradient to the input
    zero = (mn == 0) & (mx == 0)
    inside, below, above = inside | zero, below & ~zero, above & ~zero
  return [a.astype(np.float32) for a in (inside, below, above)]


@functools.partial(jax.custom_jvp, nondiff_argnums=(3, 4, 5, 6))
def _fq(x, mn, mx, qmin, qmax, divide, zero_guard):
  return _fake_quant(jnp, x, mn, mx, qmin, qmax, divide, zero_guard)


@_fq.defjvp
def _fq_jvp(qmin, qmax, divide, zero_guard, primals, tangents):
  x, mn, mx = primals
  tx, tmin, tmax = tangents
  out = _fq(x, mn, mx, qmin, qmax, divide, zero_guard)
  inside, below, above = _masks(x, mn, mx, qmin, qmax, zero_guard)
  return out, inside * tx + below * tmin + above * tmax


def _check_num_bits(node):
  bits = int(node.attrs.get("num_bits", 8))
  if not 2 <= bits <= 16:
    refuse(node, "num_bits", "TF's kernel needs num_bits between 2 and 16, inclusive")
  return (1 if node.attrs.get("narrow_range", False) else 0), (1 << bits) - 1


def _run_fake_quant(x, mn, mx, qmin, qmax, divide, zero_guard):
  if is_static(x, mn, mx):
    with np.errstate(all="ignore"):
      return _fake_quant(np, np.asarray(x, np.float32), np.asarray(mn, np.float32),
                         np.asarray(mx, np.float32), qmin, qmax, divide, zero_guard)
  return _fq(jnp.asarray(x), jnp.asarray(mn), jnp.asarray(mx), qmin, qmax, divide,
             zero_guard)


_FQ_ATTRS = {"num_bits": None, "narrow_range": None}


@lowering("FakeQuantWithMinMaxArgs", attrs={"min": None, "max": None, **_FQ_ATTRS})
def fake_quant_args(node):
  qmin, qmax = _check_num_bits(node)
  mn, mx = _F32(node.attrs.get("min", -6.0)), _F32(node.attrs.get("max", 6.0))
  if not mn < mx:
    refuse(node, "min", f"TF's kernel needs min < max, got min {mn} >= max {mx}")

  return lambda x: _run_fake_quant(x, mn, mx, qmin, qmax, False, False)


@lowering("FakeQuantWithMinMaxVars", attrs=_FQ_ATTRS)
def fake_quant_vars(node):
  qmin, qmax = _check_num_bits(node)

  def run(x, mn, mx):
    for i, (name, v) in enumerate((("min", mn), ("max", mx)), 1):
      if np.ndim(v) != 0:
        raise ValueError(f"`{name}` (input {i}) must be rank 0 but is rank {np.ndim(v)}")
    return _run_fake_quant(x, mn, mx, qmin, qmax, True, True)
  return run


@lowering("FakeQuantWithMinMaxVarsPerChannel", attrs=_FQ_ATTRS)
def fake_quant_vars_per_channel(node):
  qmin, qmax = _check_num_bits(node)

  def run(x, mn, mx):
    xs = _shape(x)
    if not xs:
      raise ValueError("inputs (input 0) must be at least rank 1 (TF's kernel crashes on "
                       "a scalar)")
    for i, (name, v) in enumerate((("min", mn), ("max", mx)), 1):
      if np.ndim(v) != 1:
        raise ValueError(f"`{name}` (input {i}) must be rank 1 but is rank {np.ndim(v)}")
      if _shape(v)[0] != xs[-1]:
        raise ValueError(f"{name} (input {i}) has incorrect size, expected {xs[-1]} was "
                         f"{_shape(v)[0]}")
    return _run_fake_quant(x, mn, mx, qmin, qmax, False, True)
  return run


# FakeQuant gradients ------------------------------------------------------------------


def _fake_quant_grad(m, g, x, mn, mx, qmin, qmax, zero_guard: bool, per_channel: bool):
  """TF's FakeQuant*Gradient kernels: the gradient inside the nudged range to the input,
  and (Vars ops) the sums of the gradients below / above it to min / max (per channel:
  over every axis but the last)."""
  inside, below, above = _masks(x, mn, mx, qmin, qmax, zero_guard, m)
  axes = tuple(range(np.ndim(x) - 1)) if per_channel else None
  # TF multiplies by a 0/1 mask (inf * 0 is NaN), which XLA would turn into a select.
  times = lambda mask: m.where(mask > 0, g, g * _F32(0))
  return (times(inside), times(below).sum(axis=axes).astype(np.float32),
          times(above).sum(axis=axes).astype(np.float32))


def _run_fake_quant_grad(node, g, x, mn, mx, qmin, qmax, zero_guard, per_channel):
  if _shape(g) != _shape(x):
    raise ValueError(f"{node.op} node {node.path!r}: gradients (input 0) and inputs "
                     f"(input 1) must have the same shape, got {list(_shape(g))} and "
                     f"{list(_shape(x))}")
  if is_static(g, x, mn, mx):
    m, cast = np, lambda v: np.asarray(v, np.float32)
  else:
    m, cast = jnp, jnp.asarray
  with np.errstate(all="ignore"):
    return _fake_quant_grad(m, cast(g), cast(x), cast(mn), cast(mx), qmin, qmax,
                            zero_guard, per_channel)


@lowering("FakeQuantWithMinMaxArgsGradient",
          attrs={"min": None, "max": None, **_FQ_ATTRS})
def fake_quant_args_gradient(node):
  qmin, qmax = _check_num_bits(node)
  mn, mx = _F32(node.attrs.get("min", -6.0)), _F32(node.attrs.get("max", 6.0))
  if not mn < mx:
    refuse(node, "min", f"TF's kernel needs min < max, got min {mn} >= max {mx}")

  def run(gradients, inputs):
    return _run_fake_quant_grad(node, gradients, inputs, mn, mx, qmin, qmax, False,
                                False)[0]
  return run


@lowering("FakeQuantWithMinMaxVarsGradient", attrs=_FQ_ATTRS)
def fake_quant_vars_gradient(node):
  qmin, qmax = _check_num_bits(node)

  def run(gradients, inputs, mn, mx):
    for i, (name, v) in enumerate((("min", mn), ("max", mx)), 2):
      if np.ndim(v) != 0:
        raise ValueError(f"{node.op} node {node.path!r}: `{name}` (input {i}) must be "
                         f"rank 0 but is rank {np.ndim(v)}")
    return tuple(_run_fake_quant_grad(node, gradients, inputs, mn, mx, qmin, qmax, True,
                                      False))
  return run


@lowering("FakeQuantWithMinMaxVarsPerChannelGradient", attrs=_FQ_ATTRS)
def fake_quant_vars_per_channel_gradient(node):
  qmin, qmax = _check_num_bits(node)

  def run(gradients, inputs, mn, mx):
    xs = _shape(inputs)
    if not xs:
      raise ValueError(f"{node.op} node {node.path!r}: inputs (input 1) must be at least "
                       "rank 1 (TF's kernel crashes on a scalar)")
    for i, (name, v) in enumerate((("min", mn), ("max", mx)), 2):
      if np.ndim(v) != 1:
        raise ValueError(f"{node.op} node {node.path!r}: `{name}` (input {i}) must be "
                         f"rank 1 but is rank {np.ndim(v)}")
      if _shape(v)[0] != xs[-1]:
        raise ValueError(f"{node.op} node {node.path!r}: {name} (input {i}) has incorrect "
                         f"size, expected {xs[-1]} was {_shape(v)[0]}")
    return tuple(_run_fake_quant_grad(node, gradients, inputs, mn, mx, qmin, qmax, True,
                                      True))
  return run


# QuantizeAndDequantize ----------------------------------------------------------------


def _range_and_scale(m, mn, mx, signed: bool, bits: int, narrow: bool, dtype):
  """TF's ComputeQuantizationRange: (min, max, scale, inverse_scale) in `dtype`."""
  if signed:
    qmin = -(1 << (bits - 1)) + (1 if narrow else 0)
    qmax = (1 << (bits - 1)) - 1
  else:
    qmin, qmax = 0, (1 << bits) - 1
  qmin, qmax = np.asarray(qmin, dtype), np.asarray(qmax, dtype)
  big = np.asarray(np.finfo(dtype).max, dtype)
  from_min = m.where(qmin * mn > 0, _ftz(m, qmin / mn), big)
  from_max = m.where(qmax * mx > 0, _ftz(m, qmax / mx), big)
  use_min = from_min < from_max
  scale = m.where(use_min, from_min, from_max)
  inverse = _ftz(m, m.where(use_min, _div(m, mn, qmin), _div(m, mx, qmax)))
  new_max = m.where(use_min, _ftz(m, qmax * inverse), mx)
  new_min = m.where(use_min, mn, _ftz(m, qmin * inverse))
  return new_min, new_max, scale, inverse


def _quantize_dequantize(m, x, mn, mx, *, signed, bits, narrow, range_given, half_up, axis):
  dtype = np.dtype(x.dtype)
  xs = _shape(x)
  if axis == -1:
    shape3 = (1, max(int(np.prod(xs)), 0), 1)
  else:
    shape3 = (int(np.prod(xs[:axis])), xs[axis], int(np.prod(xs[axis + 1:])))
  v = m.reshape(x, shape3)
  if range_given:
    lo = m.reshape(mn.astype(dtype), (1, -1, 1) if axis != -1 else (1, 1, 1))
    hi = m.reshape(mx.astype(dtype), (1, -1, 1) if axis != -1 else (1, 1, 1))
  elif 0 in shape3:
    return x
  else:
    reduce = (0, 2) if axis != -1 else (0, 1, 2)
    lo, hi = m.min(v, axis=reduce, keepdims=True), m.max(v, axis=reduce, keepdims=True)
  lo, hi, scale, inverse = _range_and_scale(m, lo, hi, signed, bits, narrow, dtype)
  if range_given:
    v = m.maximum(m.minimum(v, hi), lo)
  v = _ftz(m, v * scale)
  v = m.floor(v + np.asarray(0.5, dtype)) if half_up else m.round(v)
  return m.reshape(_ftz(m, v * inverse), xs).astype(dtype)


@functools.partial(jax.custom_jvp, nondiff_argnums=(3,))
def _qdq(x, mn, mx, params):
  kw = dict(params)
  kw.pop("v4_grad")
  return _quantize_dequantize(jnp, x, mn, mx, **kw)


@_qdq.defjvp
def _qdq_jvp(params, primals, tangents):
  x, mn, mx = primals
  tx = tangents[0]
  out = _qdq(x, mn, mx, params)
  p = dict(params)
  if not p["v4_grad"]:
    return out, tx
  axis = p["axis"]
  shape = [1] * x.ndim
  if axis != -1:
    shape[axis] = -1
  lo, hi = jnp.reshape(mn, shape), jnp.reshape(mx, shape)
  return out, jnp.where((x >= lo) & (x <= hi), tx, jnp.zeros_like(tx))


def _qdq_lowering(node, version: int):
  signed = bool(node.attrs.get("signed_input", True))
  range_given = bool(node.attrs.get("range_given", version == 3))
  narrow = bool(node.attrs.get("narrow_range", False))
  axis = int(node.attrs.get("axis", -1))
  half_up = node.attrs.get("round_mode", "HALF_TO_EVEN") == "HALF_UP"
  if axis < -1:
    refuse(node, "axis", f"TF's kernel needs axis >= -1, got {axis}")

  def check_bits(bits):
    if not 0 < bits < (62 if signed else 63):
      raise ValueError(f"num_bits is out of range: {bits} with signed_input {signed}")

  if version != 3:
    check_bits(int(node.attrs.get("num_bits", 8)))

  def run(x, mn, mx, *num_bits):
    if version == 3:
      if np.ndim(num_bits[0]) != 0:
        raise ValueError("num_bits (input 3) must be a scalar")
      bits = int(num_bits[0])
      check_bits(bits)
    else:
      bits = int(node.attrs.get("num_bits", 8))
    xs = _shape(x)
    if version == 3 and not xs:
      raise ValueError("Axis requested is larger than input dimensions. Axis: -1 Input "
                       "Dimensions: 0 (TF's V3 kernel rejects a scalar input)")
    if axis != -1 and axis >= len(xs):
      raise ValueError(f"Shape must be at least rank {axis + 1} but is rank {len(xs)}")
    if range_given and axis != -1:
      if version != 3:
        raise ValueError(f"{node.op}: TF's CPU kernel rejects range_given with a "
                         "per-channel axis ('input_min must be a scalar')")
      for name, v in (("input_min", mn), ("input_max", mx)):
        if _shape(v) != (xs[axis],):
          raise ValueError(f"{name} must have shape [{xs[axis]}] (the size of axis "
                           f"{axis}), got {list(_shape(v))}")
    elif range_given:
      # V3 takes any one-element tensor, V2 and V4 a scalar.
      if np.size(mn) != 1 or np.size(mx) != 1 or (
          version != 3 and (np.ndim(mn) or np.ndim(mx))):
        raise ValueError("input_min (input 1) and input_max (input 2) must be scalars")
      mn, mx = mn.reshape(()), mx.reshape(())
      if is_static(mn, mx) and not mn <= mx:
        raise ValueError(f"Invalid range: input_min {mn} > input_max {mx}")
    params = (("signed", signed), ("bits", bits), ("narrow", narrow),
              ("range_given", range_given), ("half_up", half_up), ("axis", axis))
    if is_static(x, mn, mx):
      with np.errstate(all="ignore"):
        return _quantize_dequantize(np, x, np.asarray(mn), np.asarray(mx), **dict(params))
    v4 = (("v4_grad", version == 4),)
    if version == 4 and (_shape(mn) != ((xs[axis],) if axis != -1 else ())
                         or _shape(mx) != _shape(mn)):
      v4 = (("v4_grad", False),)  # TF's gradient rejects such shapes: no gradient then
    return _qdq(jnp.asarray(x), jax.lax.stop_gradient(jnp.asarray(mn)),
                jax.lax.stop_gradient(jnp.asarray(mx)), params + v4)
  return run


_QDQ_ATTRS = {"signed_input": None, "num_bits": None, "range_given": None, "T": FLOAT,
              "round_mode": ("HALF_TO_EVEN", "HALF_UP"), "narrow_range": None, "axis": None}


@lowering("QuantizeAndDequantizeV2", attrs=_QDQ_ATTRS)
def quantize_and_dequantize_v2(node):
  return _qdq_lowering(node, 2)


@lowering("QuantizeAndDequantizeV3",
          attrs={k: v for k, v in _QDQ_ATTRS.items() if k not in ("num_bits", "round_mode")})
def quantize_and_dequantize_v3(node):
  return _qdq_lowering(node, 3)


@lowering("QuantizeAndDequantizeV4", attrs=_QDQ_ATTRS)
def quantize_and_dequantize_v4(node):
  return _qdq_lowering(node, 4)


# QuantizeV2 and Dequantize -------------------------------------------------------------
#
# Quantized tensors (qint8, quint8, qint16, quint16, qint32) are held as the integers of
# their width and sign. TF's CPU kernels, in float32 unless said otherwise:
# * QuantizeV2 first widens the range: min = min(0, input_min), max = max(0, input_max,
#   min + max(1, |input_min|, |input_max|) * ensure_minimum_range) (per slice with axis).
#   MIN_COMBINED: round((clamp(x, min, max) - min) * scale - half), scale = (qmax - qmin)
#   / (max - min) (the division in double), half = (qmax - qmin + 1) / 2 for signed types.
#   MIN_FIRST: round(x * s) - round(min * s) + qmin clamped to [qmin, qmax], s = 2^bits /
#   ((max - min) * 2^bits / (2^bits - 1)) (double, used as float). SCALED: TF's
#   symmetric scale (see `_scaled_range`), x clamped to the adjusted range, times the
#   scale, rounded half away from zero or half to even.
# * Dequantize: MIN_COMBINED (q + half) * (max - min) / (qmax - qmin) + min; MIN_FIRST
#   (q - qmin) * s' + round(min / s') * s', s' = (max - min) * 2^bits / (2^bits - 1) /
#   2^bits (double, used as float); SCALED q * max(min / qmin', max / qmax) (unsigned:
#   max / qmax), qmin' = qmin + narrow_range.

_QTYPES = ("int8", "uint8", "int16", "uint16", "int32")


def _std_min(m, a, b):
  return m.where(b < a, b, a)  # std::min: NaN in `a` stays, in `b` is dropped


def _std_max(m, a, b):
  return m.where(a < b, b, a)


def _round_away(m, v):
  return m.where(v < 0, -m.floor(-v + _F32(0.5)), m.floor(v + _F32(0.5)))


def _to_int(m, v, dtype):
  """float32 -> the integer dtype as TF's kernels cast: NaN gives 0, and for int32 a
  value outside its range gives INT32_MIN (x86's conversion of an out-of-range float)."""
  info = np.iinfo(dtype)
  v = m.where(m.isnan(v), _F32(0), v)
  if info.bits == 32:
    bad = (v >= _F32(2.0**31)) | (v < _F32(-2.0**31))
    return m.where(bad, _F32(-2.0**31), v).astype(np.int64).astype(dtype)
  return m.clip(v, _F32(info.min), _F32(info.max)).astype(dtype)


def _widened_range(m, lo, hi, ensure_minimum_range: float):
  lo = _std_min(m, _F32(0), lo)
  # (TF takes |input_min| here; with input_min > 0 it is below |input_max|, as 0 is.)
  eps = _std_max(m, _F32(1), _std_max(m, m.abs(lo), m.abs(hi))) * _F32(ensure_minimum_range)
  return lo, _std_max(m, _F32(0), _std_max(m, hi, lo + eps))


def _scaled_range(m, lo, hi, info, narrow: bool):
  """SCALED mode's (scale, min, max): the smaller of the scales fitting min and max."""
  qmin, qmax = _F32(info.min + (1 if narrow else 0)), _F32(info.max)
  big = _F32(np.finfo(np.float32).max)
  from_min = m.where(qmin * lo > 0, qmin / lo, big)
  from_max = m.where(qmax * hi > 0, qmax / hi, big)
  scale = _std_min(m, from_min, from_max)
  return scale, _ftz(m, qmin / scale), _ftz(m, qmax / scale)


def _min_first_scale(bits: int, lo, hi, m, inverse: bool, dtype=np.float32):
  steps = float(1 << bits)
  rng = (hi.astype(np.float64) - lo.astype(np.float64)) * (steps / (steps - 1.0))
  return ((rng / steps) if inverse else (steps / rng)).astype(dtype)


def _quantize(m, x, lo, hi, dtype, mode, half_even, narrow, emr):
  info = np.iinfo(dtype)
  lo, hi = _widened_range(m, lo, hi, emr)
  if mode == "MIN_COMBINED":
    scale = ((float(info.max) - float(info.min)) / (hi.astype(np.float64)
                                                    - lo.astype(np.float64)))
    scale = scale.astype(np.float32)
    half = _F32((float(info.max) - float(info.min) + 1) / 2) if info.min < 0 else _F32(0)
    v = _round_away(m, (_std_max(m, _std_min(m, x, hi), lo) - lo) * scale - half)
    return _to_int(m, v, dtype), lo, hi
  if mode == "MIN_FIRST":
    s = _min_first_scale(info.bits, lo, hi, m, inverse=False)
    v = _round_away(m, x * s) - _round_away(m, lo * s) + _F32(info.min)
    v = m.where(lo == hi, _F32(info.min), v)
    return _to_int(m, v, dtype), lo, hi
  wide = _std_max(m, m.abs(lo), m.abs(hi))
  scale, lo, hi = _scaled_range(m, lo, hi, info, narrow)
  v = _std_max(m, _std_min(m, x, hi), lo) * scale
  v = m.round(v) if half_even else _round_away(m, v)
  if _onednn_quantize(dtype, mode, half_even, narrow):
    # TF's oneDNN kernel: the same values, but it reports the range as [-M, M] ([0, M]
    # unsigned), M = max(|min|, |max|) of the widened range.
    lo, hi = (-wide if info.min < 0 else wide * 0), wide
  return _to_int(m, v, dtype), lo, hi


def _onednn_quantize(dtype, mode, half_even: bool, narrow: bool) -> bool:
  """Whether TF (with oneDNN) runs QuantizeV2 through its oneDNN kernel."""
  return (onednn_enabled() and mode == "SCALED" and half_even and not narrow
          and np.dtype(dtype).itemsize == 1)


def _dequantize(m, q, lo, hi, mode, narrow, per_axis: bool = False):
  info = np.iinfo(q.dtype)
  v = q.astype(np.float32)
  if mode == "MIN_COMBINED":
    scale = (hi - lo) / (_F32(info.max) - _F32(info.min))
    half = _F32((float(info.max) - float(info.min) + 1) / 2) if info.min < 0 else _F32(0)
    return (v + half) * scale + lo
  if mode == "MIN_FIRST":
    s = _min_first_scale(info.bits, lo, hi, m, inverse=True)
    base = _round_away(m, lo / s) * s
    out = (v - _F32(info.min)) * s + base
    return m.where(lo == hi, lo, out)
  qmin = _F32(info.min + (1 if narrow else 0))
  if info.min == 0 and not (narrow and info.bits == 8 and onednn_enabled()):
    scale = hi / _F32(info.max)
  else:
    scale = _std_max(m, lo / qmin, hi / _F32(info.max))
  if info.bits == 32 and not per_axis:
    # TF's SCALED qint32 with one range gives -2^31 * scale for values that round to 2^31
    # in float32 (2147483584 and above: Dequantize(2147483647, 0, 1) is -1), as a
    # float -> int32 conversion would; its per-axis path gives 1.
    v = m.where(v >= _F32(2.0**31), _F32(-2.0**31), v)
  return v * scale


def _slices(node, x, lo, hi, axis: int):
  """min and max shaped to broadcast against x (per slice of `axis`), checked."""
  xs = _shape(x)
  if axis == -1:
    if np.size(lo) < 1 or np.size(hi) < 1:
      raise ValueError(f"{node.op} node {node.path!r}: min_range and max_range must hold "
                       f"a value, got shapes {list(_shape(lo))} and {list(_shape(hi))}")
    # TF reads the first value of each (any shape).
    return lo.reshape(-1)[0], hi.reshape(-1)[0]
  if axis < -1 or axis >= len(xs):
    raise ValueError(f"{node.op} node {node.path!r}: axis {axis} is out of bounds for an "
                     f"input of rank {len(xs)}")
  for name, v in (("min_range", lo), ("max_range", hi)):
    if _shape(v) != (xs[axis],):
      raise ValueError(f"{node.op} node {node.path!r}: {name} must have shape "
                       f"[{xs[axis]}] (the size of axis {axis}), got {list(_shape(v))}")
  shape = [1] * len(xs)
  shape[axis] = xs[axis]
  return lo.reshape(shape), hi.reshape(shape)


_MODES = ("MIN_COMBINED", "MIN_FIRST", "SCALED")


@lowering("QuantizeV2", attrs={"T": _QTYPES[:-1], "mode": _MODES,
                               "round_mode": ("HALF_AWAY_FROM_ZERO", "HALF_TO_EVEN"),
                               "narrow_range": None, "axis": None,
                               "ensure_minimum_range": None})
def quantize_v2(node):
  dtype = np.dtype(node.attrs["T"])
  mode = node.attrs.get("mode", "MIN_COMBINED")
  half_even = node.attrs.get("round_mode", "HALF_AWAY_FROM_ZERO") == "HALF_TO_EVEN"
  narrow = bool(node.attrs.get("narrow_range", False))
  axis = int(node.attrs.get("axis", -1))
  emr = float(node.attrs.get("ensure_minimum_range", 0.01))
  if half_even and mode != "SCALED":
    refuse(node, "round_mode", f"TF's kernel takes HALF_TO_EVEN only for mode SCALED, "
           f"not {mode}")
  if axis != -1 and mode == "MIN_FIRST":
    refuse(node, "axis", "TF's kernel does not implement MIN_FIRST with axis != -1")
  if mode == "MIN_FIRST" and dtype == np.uint8:
    refuse(node, "T", "TF's MIN_FIRST quint8 kernel rounds x * s - min * s once in its "
           "vectorized loop and round(x * s) - round(min * s) elsewhere: tf2jax does not "
           "match which elements take which yet")
  if _onednn_quantize(dtype, mode, half_even, narrow):
    refuse(node, "round_mode", "TF with oneDNN quantizes 8-bit SCALED HALF_TO_EVEN without "
           "narrow_range through its oneDNN kernel, whose rounding tf2jax does not match "
           "yet")

  def run(x, min_range, max_range):
    lo, hi = _slices(node, x, min_range, max_range, axis)
    if is_static(lo, hi) and np.any(np.asarray(hi) < np.asarray(lo)):
      raise ValueError(f"{node.op} node {node.path!r}: input_max_range must be larger "
                       f"than input_min_range, got {min_range} and {max_range}")
    m = np if is_static(x, lo, hi) else jnp
    with np.errstate(all="ignore"):
      q, out_lo, out_hi = _quantize(m, m.asarray(x, np.float32), m.asarray(lo, np.float32),
                                    m.asarray(hi, np.float32), dtype, mode, half_even,
                                    narrow, emr)
    # TF takes its scalar path (scalar output ranges) when there is one slice.
    vec = axis != -1 and _shape(x)[axis] != 1
    return q, m.reshape(out_lo, (-1,) if vec else ()), m.reshape(out_hi, (-1,) if vec else ())
  return run


@lowering("Dequantize", attrs={"T": _QTYPES, "mode": _MODES, "narrow_range": None,
                               "axis": None, "dtype": ("float32", "bfloat16")})
def dequantize(node):
  mode = node.attrs.get("mode", "MIN_COMBINED")
  narrow = bool(node.attrs.get("narrow_range", False))
  axis = int(node.attrs.get("axis", -1))
  out = np.dtype(node.attrs.get("dtype", np.float32))
  if axis != -1 and mode == "MIN_FIRST":
    refuse(node, "axis", "TF's kernel does not implement MIN_FIRST with axis != -1")
  if out != np.float32 and mode != "MIN_COMBINED":
    refuse(node, "mode", f"TF's kernel gives bfloat16 only in mode MIN_COMBINED, not {mode}")
  if mode == "SCALED" and np.dtype(node.attrs["T"]) == np.int32 and onednn_enabled():
    refuse(node, "T", "TF with oneDNN runs Dequantize SCALED through its oneDNN kernel, "
           "which has no qint32 kernel")

  onednn_8bit = (mode == "SCALED" and np.dtype(node.attrs["T"]).itemsize == 1
                 and onednn_enabled())

  def run(q, min_range, max_range):
    if onednn_8bit and not 1 <= len(_shape(q)) <= 5:
      raise ValueError(f"{node.op} node {node.path!r}: TF with oneDNN dequantizes 8-bit "
                       f"SCALED inputs of rank 1 to 5 only, got shape {list(_shape(q))}")
    lo, hi = _slices(node, q, min_range, max_range, axis)
    m = np if is_static(q, lo, hi) else jnp
    with np.errstate(all="ignore"):
      v = _dequantize(m, m.asarray(q), m.asarray(lo, np.float32),
                      m.asarray(hi, np.float32), mode, narrow, per_axis=axis != -1)
    return _ftz(m, v).astype(out)
  return run
