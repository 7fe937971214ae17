"""Fake quantization: FakeQuantWithMinMaxArgs, FakeQuantWithMinMaxVars,
FakeQuantWithMinMaxVarsPerChannel, QuantizeAndDequantizeV2, QuantizeAndDequantizeV3,
QuantizeAndDequantizeV4.

Semantics follow TF's CPU kernels, step by step in the input's dtype:

* FakeQuant*: TF "nudges" [min, max] so that 0 is exactly representable, clamps to the
  nudged range and rounds to the grid. FakeQuantWithMinMaxArgs and the per-channel op
  multiply by the inverse scale, FakeQuantWithMinMaxVars divides by the scale (as TF).
  For the Vars ops, min == max == 0 gives zeros. Gradients are TF's: straight-through
  inside the nudged range, and for the Vars ops the sum of the gradients below (above)
  the nudged range goes to min (max).
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
from tf2jax_nn._common import refuse

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


def _masks(x, mn, mx, qmin, qmax, zero_guard: bool):
  """Where the gradient goes: (to the input, to min, to max), as float32 masks."""
  lo, hi, _, _ = _nudge(jnp, mn, mx, qmin, qmax)
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
