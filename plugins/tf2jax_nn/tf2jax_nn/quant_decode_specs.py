"""Conformance specs of tf2jax-nn's FakeQuant*Gradient ops, Dequantize, QuantizeV2 and
IsotonicRegression.

`specs()` returns one `tf2jax_conformance.OpSpec` per op (a test dependency: only the
plugin's `tf2jax_conformance_specs` hook imports this module).
"""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

from tf2jax_conformance import dtypes as D
from tf2jax_conformance import strategies as cst
from tf2jax_conformance.spec import Example, OpSpec, Tolerance, default_tolerance
from tf2jax_nn.quant_nms_ctc_specs import (NO_GRAD, _f32, _fq_attrs, _fq_inputs, _fq_range,
                                           _rarely, _sum_grad_tolerance, _tf)


# FakeQuant gradients --------------------------------------------------------------------


def _grads_like(draw, shape):
  """The incoming gradients: mostly the input's shape, now and then another (rejected)."""
  if _rarely(draw, 12):
    shape = shape + (1,)
  return draw(cst.arrays("float32", shape))


def _fq_args_grad_example(dtype):
  @st.composite
  def draw(draw):
    mn, mx = _fq_range(draw)
    if mn >= mx and not _rarely(draw, 4):  # TF's kernel rejects min >= max
      mn, mx = _f32(-abs(mx) - 1.0), _f32(abs(mn) + 1.0)
    bound = max(abs(mn), abs(mx)) * 1.5 + 1
    shape = draw(cst.shapes())
    x = draw(_fq_inputs(shape, bound if draw(st.booleans()) else None))
    return Example({"gradients": _grads_like(draw, shape), "inputs": x},
                   {"min": mn, "max": mx, **_fq_attrs(draw)})
  return draw()


def _fq_vars_grad_example(per_channel: bool):
  def example(dtype):
    @st.composite
    def draw(draw):
      if per_channel:  # a scalar input crashes TF's kernel (a failed CHECK)
        shape = draw(cst.shapes(min_dims=1, max_dims=3))
        d = shape[-1] + 1 if _rarely(draw, 12) else shape[-1]
        ranges = [_fq_range(draw) for _ in range(d)]
        mn = np.asarray([r[0] for r in ranges], np.float32)
        mx = np.asarray([r[1] for r in ranges], np.float32)
      else:
        shape = draw(cst.shapes())
        lo, hi = _fq_range(draw)
        mn, mx = np.asarray(lo, np.float32), np.asarray(hi, np.float32)
        if _rarely(draw, 12):
          mn = mn.reshape(1)  # rejected: min must be a scalar
      bound = float(np.max(np.abs(np.concatenate([mn.ravel(), mx.ravel()])),
                           initial=0)) * 1.5 + 1
      x = draw(_fq_inputs(shape, bound if draw(st.booleans()) else None))
      return Example({"gradients": _grads_like(draw, shape), "inputs": x, "min": mn,
                      "max": mx}, _fq_attrs(draw))
    return draw()
  return example


def _fq_grad_tolerance(dtype, ex):
  return _sum_grad_tolerance(dtype, Example({"inputs": ex.inputs["inputs"]}))


_FQ_GRAD_NOTES = (
    "The gradient inside the nudged range passes to the input (exact); the Vars ops also "
    "sum the gradients below / above it into min / max: the tolerance is float32 eps "
    "times 20 n of the largest magnitude (n = elements summed, summation order). TF "
    "registers no gradient for these ops. num_bits 1, gradients of another shape and "
    "(Args) min >= max, (Vars) a non-scalar min, (PerChannel) a wrong channel count are "
    "drawn now and then (TF rejects them). No NaN min or max (TF casts a NaN zero point "
    "to uint16, undefined behaviour).")


def _fq_grad_specs():
  return [
      OpSpec("FakeQuantWithMinMaxArgsGradient", _fq_args_grad_example, dtype_attr=None,
             dtypes=("float32",), transforms=NO_GRAD, notes=_FQ_GRAD_NOTES),
      OpSpec("FakeQuantWithMinMaxVarsGradient", _fq_vars_grad_example(False),
             dtype_attr=None, dtypes=("float32",), transforms=NO_GRAD,
             tolerance=_fq_grad_tolerance, notes=_FQ_GRAD_NOTES),
      OpSpec("FakeQuantWithMinMaxVarsPerChannelGradient", _fq_vars_grad_example(True),
             dtype_attr=None, dtypes=("float32",), transforms=NO_GRAD,
             tolerance=_fq_grad_tolerance,
             notes=_FQ_GRAD_NOTES + " Never a scalar input (TF's kernel aborts the process)."),
  ]


# IsotonicRegression ----------------------------------------------------------------------

_ISO_OUT = {"int8": "float32", "int16": "float32", "int32": "float64", "int64": "float64"}


def _isotonic_example(dtype):
  @st.composite
  def draw(draw):
    if dtype in _ISO_OUT:  # no gradient: every rank, empty shapes too
      shape = draw(cst.shapes(max_dims=3, max_side=8))
    else:  # TF's gradient is only right for rank 2 (see the notes)
      shape = draw(cst.shapes(min_dims=2, max_dims=2, min_side=1, max_side=8))
    if draw(st.booleans()):  # coarse values: ties and runs of equal means
      values = np.asarray(draw(st.lists(st.integers(-3, 3), min_size=int(np.prod(shape)),
                                        max_size=int(np.prod(shape)))), np.float64)
      x = values.reshape(shape).astype(D.np_dtype(dtype))
    else:
      x = draw(cst.arrays(dtype, shape))
    return Example({"input": x}, {"output_dtype": _ISO_OUT.get(dtype, dtype)})
  return draw()


def _isotonic_build(ex):
  """The op, its int32 segments cast to the output dtype (the gradient check needs float
  outputs; segment numbers are below 9, so exact)."""
  tf = _tf()

  def fn(x):
    out, segments = tf.raw_ops.IsotonicRegression(
        input=x, output_dtype=tf.as_dtype(D.np_dtype(ex.attrs["output_dtype"])))
    assert segments.dtype == tf.int32
    return out, tf.cast(segments, out.dtype)
  return fn


def _isotonic_tolerance(dtype, ex):
  """TF's blocks sum in the output dtype, in the order tf2jax does: the default few
  ulps."""
  return default_tolerance(_ISO_OUT.get(dtype, dtype))


def _isotonic_grad_tolerance(dtype, ex):
  """Block means of the cotangents (magnitudes up to 10): sums of up to n values, so n
  ulps of 10 absolute, and 2 ulps relative."""
  eps = float(D.finfo(dtype).eps)
  n = max(np.shape(ex.inputs["input"])[-1:] or (1,))
  return Tolerance(2 * eps, 10 * n * eps)


def _isotonic_specs():
  return [OpSpec("IsotonicRegression", _isotonic_example, build=_isotonic_build,
                 tolerance=_isotonic_tolerance,
                 grad_tolerance=_isotonic_grad_tolerance, notes=(
                     "output_dtype is the one TF's kernel registers for T (float32 for "
                     "int8/int16, float64 for int32/int64, else T). Float cases are "
                     "rank 2 (batch, n >= 1): TF's gradient (Python, _MeanAggregator) "
                     "splits the first axis, so for rank 1 it returns shape [n, 1], for "
                     "rank 3 it mixes rows, and empty inputs raise; the integer cases "
                     "(no gradient) draw every rank from 0 to 3 and empty shapes. "
                     "Half the examples use small integers (ties: equal neighbours stay "
                     "separate blocks). The segments are compared cast to the output dtype (the "
                     "gradient check needs float outputs; they are small, so exact)."))]


# QuantizeV2 and Dequantize ---------------------------------------------------------------
#
# The cases are TF's quantized dtypes; the values are drawn as the integers of the same
# width and sign (what tf2jax holds them as) and bitcast in the graph: TF's Bitcast
# between int8 and qint8 keeps the bits.

_AS_INT = {"qint8": "int8", "quint8": "uint8", "qint16": "int16", "quint16": "uint16",
           "qint32": "int32"}


def _q_range(draw, per_axis: int | None):
  """(min_range, max_range) float32 arrays: scalars, or vectors of `per_axis`."""
  n = 1 if per_axis is None else per_axis
  lo, hi = [], []
  for _ in range(n):
    a = draw(st.floats(-20, 20, width=32))
    b = draw(st.floats(-20, 20, width=32))
    kind = draw(st.sampled_from(["sorted", "sorted", "sorted", "zero", "equal", "any"]))
    if kind == "sorted":
      a, b = min(a, b), max(a, b)
    elif kind == "zero":
      a, b = 0.0, 0.0
    elif kind == "equal":
      b = a
    lo.append(a)
    hi.append(b)
  lo, hi = np.asarray(lo, np.float32), np.asarray(hi, np.float32)
  if per_axis is None:
    lo, hi = lo.reshape(()), hi.reshape(())
  return lo, hi


def _q_axis(draw, shape, mode):
  if mode == "MIN_FIRST" or not shape or not draw(st.booleans()):
    return -1, None
  axis = draw(st.integers(0, len(shape) - 1))
  return axis, shape[axis]


def _dequantize_example(dtype):
  @st.composite
  def draw(draw):
    shape = draw(cst.shapes(max_dims=3))
    mode = draw(st.sampled_from(["MIN_COMBINED", "MIN_FIRST", "SCALED"]))
    axis, n = _q_axis(draw, shape, mode)
    lo, hi = _q_range(draw, n)
    attrs = {"mode": mode, "narrow_range": draw(st.booleans()), "axis": axis,
             "dtype": "bfloat16" if mode == "MIN_COMBINED" and draw(st.booleans())
             else "float32"}
    x = draw(cst.arrays(_AS_INT[dtype], shape))
    return Example({"input": x, "min_range": lo, "max_range": hi}, attrs, {"T": dtype})
  return draw()


def _dequantize_build(ex):
  tf = _tf()

  def fn(x, lo, hi):
    q = tf.bitcast(x, getattr(tf, ex.extra["T"]))
    attrs = dict(ex.attrs, dtype=tf.as_dtype(D.np_dtype(ex.attrs["dtype"])))
    return tf.raw_ops.Dequantize(input=q, min_range=lo, max_range=hi, **attrs)
  return fn


def _dequantize_tolerance(dtype, ex):
  """Float32 steps as TF's (the default few ulps; bfloat16 rounds the float32 result).
  MIN_FIRST: TF adds (q - qmin) * s to round(min / s) * s with another rounding than
  float32's (its scalar path sums in double): 2 float32 ulps of max(|min|, |max|) too.
  MIN_COMBINED: (q + half) * scale + min, which XLA may fuse into one FMA (one rounding,
  not two): where the terms (up to 2 max(|min|, |max|)) cancel, 4 ulps of that."""
  out = ex.attrs["dtype"]
  base = default_tolerance(out)
  ulps = {"MIN_FIRST": 2, "MIN_COMBINED": 4}.get(ex.attrs["mode"])
  if ulps is None:
    return base
  big = float(np.max(np.abs([ex.inputs["min_range"], ex.inputs["max_range"]])))
  return Tolerance(base.rtol, base.atol + ulps * big * float(D.finfo("float32").eps))


def _quantize_example(dtype):
  @st.composite
  def draw(draw):
    shape = draw(cst.shapes(max_dims=3))
    modes = ["MIN_COMBINED", "SCALED"] + ([] if dtype == "quint8" else ["MIN_FIRST"])
    mode = draw(st.sampled_from(modes))
    axis, n = _q_axis(draw, shape, mode)
    lo, hi = _q_range(draw, n)
    narrow = draw(st.booleans())
    round_mode = "HALF_AWAY_FROM_ZERO"
    if mode == "SCALED" and draw(st.booleans()) and (narrow or dtype not in ("qint8",
                                                                          "quint8")):
      round_mode = "HALF_TO_EVEN"
    attrs = {"T": dtype, "mode": mode, "round_mode": round_mode, "narrow_range": narrow,
             "axis": axis,
             "ensure_minimum_range": draw(st.sampled_from([0.01, 0.01, 0.0, 1.0]))}
    bound = float(np.max(np.abs(np.concatenate([lo.ravel(), hi.ravel(), [1.0]])))) * 1.5
    # No NaN: TF casts it to an integer as the CPU happens to (0 in scalar code, the
    # type's minimum in vector lanes: -32768 at [1, 1, 1] of a 2x2x2 qint16 input).
    x = draw(cst.arrays("float32", shape, min_value=-bound, max_value=bound, allow_nan=False)
             if draw(st.booleans()) else cst.arrays("float32", shape, allow_nan=False))
    # min > max is rejected by TF: drawn as graph constants (tf2jax then raises too).
    const = bool(np.any(lo > hi))
    return Example({"input": x, "min_range": lo, "max_range": hi}, attrs,
                   {"const_range": const})
  return draw()


def _quantize_build(ex):
  tf = _tf()
  const = ex.extra.get("const_range", False)
  lo_value, hi_value = ex.inputs["min_range"], ex.inputs["max_range"]

  def fn(x, lo, hi):
    if const:
      lo, hi = tf.constant(lo_value), tf.constant(hi_value)
    attrs = dict(ex.attrs, T=getattr(tf, ex.attrs["T"]))
    q, out_lo, out_hi = tf.raw_ops.QuantizeV2(input=x, min_range=lo, max_range=hi, **attrs)
    return tf.bitcast(q, tf.as_dtype(D.np_dtype(_AS_INT[ex.attrs["T"]]))), out_lo, out_hi
  return fn


_Q_NOTES = ("Quantized tensors are held as the integers of their width and sign (qint8 "
            "as int8, ...): the inputs are drawn as such integers and bitcast in the "
            "graph (Bitcast keeps the bits). ")


def _quantize_specs():
  return [
      OpSpec("Dequantize", _dequantize_example, dtypes=tuple(_AS_INT),
             build=_dequantize_build, transforms=NO_GRAD, tolerance=_dequantize_tolerance,
             notes=_Q_NOTES + (
                 "Modes MIN_COMBINED, MIN_FIRST (not per axis: TF does not implement it), "
                 "SCALED, narrow_range, per-axis ranges, dtype float32 and bfloat16 (TF: "
                 "MIN_COMBINED only), ranges with min > max and min == max. With oneDNN, "
                 "TF runs SCALED through its oneDNN kernel: it has no qint32 kernel "
                 "(tf2jax refuses too) and its quint8 narrow_range scale is max(min / 1, "
                 "max / 255) (Eigen's: max / 255). MIN_FIRST tolerance: see "
                 "_dequantize_tolerance.")),
      OpSpec("QuantizeV2", _quantize_example, dtypes=tuple(_AS_INT)[:-1],
             refused_dtypes={"qint32": (
                 "TF's float32 arithmetic for 32-bit ranges is not matched (results 128 "
                 "apart, values at 2^31 cast with undefined behaviour)")},
             build=_quantize_build, transforms=NO_GRAD,
             notes=_Q_NOTES + (
                 "Modes MIN_COMBINED, MIN_FIRST (scalar range only; not for quint8, which "
                 "tf2jax refuses: TF rounds differently in and out of its vectorized "
                 "loop), SCALED with both "
                 "round modes (HALF_TO_EVEN: TF refuses it for the other modes, and "
                 "8-bit types without narrow_range run through TF's oneDNN kernel, which "
                 "tf2jax refuses: not drawn), narrow_range, per-axis ranges, "
                 "ensure_minimum_range 0, 0.01 and 1. Ranges with min > max (rejected), "
                 "min == max. No NaN inputs: TF casts NaN to an integer as the CPU happens "
                 "to (0 in scalar code, the type's minimum in vector lanes).")),
  ]


def specs():
  return _fq_grad_specs() + _isotonic_specs() + _quantize_specs()
