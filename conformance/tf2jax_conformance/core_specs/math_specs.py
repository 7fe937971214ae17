"""Specs of the core's elementwise math, comparisons, casts, reductions and MatMul."""

from __future__ import annotations

import math

import ml_dtypes
import numpy as np
from hypothesis import strategies as st

from tf2jax_conformance import dtypes as D
from tf2jax_conformance import strategies as cst
from tf2jax_conformance.spec import EXACT, Example, OpSpec, Tolerance, default_tolerance

SPECS: list[OpSpec] = []

# Elementwise ---------------------------------------------------------------------------


def unary_example(**element_kwargs):
  def example(dtype):
    return cst.arrays(dtype, cst.shapes(), **element_kwargs).map(
        lambda x: Example({"x": x}))
  return example


def binary_example(**element_kwargs):
  def example(dtype):
    return cst.broadcastable_shapes(2).flatmap(lambda shapes: st.tuples(
        cst.arrays(dtype, shapes[0], **element_kwargs),
        cst.arrays(dtype, shapes[1], **element_kwargs))).map(
            lambda xy: Example({"x": xy[0], "y": xy[1]}))
  return example


# Complex inputs are finite and moderate: at infinities, NaN, huge or tiny magnitudes
# the C99 Annex G special cases and the scaling of Eigen/libstdc++ (TF) and XLA differ,
# and TF's own results there are not consistent (Log(-1.2e-38+0j) has a NaN real part,
# Sqrt(3e38+0j) overflows to inf).
_COMPLEX_DOMAIN = ("complex inputs: finite parts, each 0 or with magnitude in [1e-3, {}] "
                   "(special values and extreme magnitudes differ between Eigen and XLA; "
                   "see math_specs.py)")


def moderate_complex(dtype: str, shape, bound: float):
  part = st.one_of(st.just(0.0), st.floats(1e-3, bound), st.floats(-bound, -1e-3))
  npd = D.np_dtype(dtype)

  def build(shp):
    n = math.prod(shp)
    return st.lists(st.tuples(part, part), min_size=n, max_size=n).map(
        lambda zs: np.array([complex(a, b) for a, b in zs], npd).reshape(shp))
  shape_st = shape if isinstance(shape, st.SearchStrategy) else st.just(tuple(shape))
  return shape_st.flatmap(build)


def unary(bound: float = 50.0):
  """Elementwise unary: every edge value for real dtypes, moderate complex values."""
  def example(dtype):
    if dtype in D.COMPLEX:
      return moderate_complex(dtype, cst.shapes(), bound).map(lambda x: Example({"x": x}))
    return unary_example()(dtype)
  return example


def binary(bound: float | None = None, nonzero_y: bool = False):
  def example(dtype):
    if dtype in D.COMPLEX and bound is not None:
      b = bound if dtype == "complex128" else min(bound, 1e15)
      y = (lambda shape: moderate_complex(dtype, shape, b).map(
          lambda v: np.where(v == 0, np.ones_like(v), v))) if nonzero_y else (
              lambda shape: moderate_complex(dtype, shape, b))
      return cst.broadcastable_shapes(2).flatmap(lambda shapes: st.tuples(
          moderate_complex(dtype, shapes[0], b), y(shapes[1]))).map(
              lambda xy: Example({"x": xy[0], "y": xy[1]}))
    return binary_example()(dtype)
  return example


def nonzero_cotangents(dtype, shape):
  """TF's Sqrt/Rsqrt gradient kernels return 0 where the cotangent is 0 (also where the
  derivative is infinite, at 0); JAX computes 0 * inf = NaN there. Known divergence."""
  return cst.cotangents(dtype, shape, nonzero=True)


_ZERO_CT = ("grad: cotangents are nonzero: at x=0 TF's Sqrt/Rsqrt gradient kernels return 0 "
            "for a 0 cotangent, JAX gives 0 * inf = NaN (a known divergence, not emulated: "
            "it needs a custom_vjp, which would break forward-mode differentiation).")

for _op in ["Sin", "Cos", "Exp", "Log"]:
  SPECS.append(OpSpec(_op, unary(), notes=_COMPLEX_DOMAIN.format(50)))
# Near their poles (tanh: i*pi/2 + k*i*pi, sigmoid: i*pi + 2k*i*pi) both functions are
# ill-conditioned: keep complex parts below the first pole.
SPECS.append(OpSpec("Tanh", unary(1.5), notes=_COMPLEX_DOMAIN.format(1.5) + " (below the "
                    "first pole at i*pi/2)"))
SPECS.append(OpSpec("Sigmoid", unary(3.0), notes=_COMPLEX_DOMAIN.format(3) + " (below the "
                    "first pole at i*pi)"))
for _op in ["Sqrt", "Rsqrt"]:
  SPECS.append(OpSpec(_op, unary(), cotangents=nonzero_cotangents,
                      notes=_COMPLEX_DOMAIN.format(50) + ". " + _ZERO_CT))

SPECS += [
    OpSpec("Neg", unary_example()),
    OpSpec("Square", unary(1e15), notes=_COMPLEX_DOMAIN.format("1e15")),
    OpSpec("Abs", unary_example()),
]

for _op in ["AddV2", "Sub", "Maximum", "Minimum"]:
  SPECS.append(OpSpec(_op, binary_example()))
SPECS.append(OpSpec("Mul", binary(1e150),
                    notes=_COMPLEX_DOMAIN.format("1e15 (complex64) / 1e150 (complex128)")))


def _largest_sum(terms, shape) -> float:
  """The largest sum of finite `terms` over the dimensions broadcast from `shape`."""
  terms = np.where(np.isfinite(terms), terms, 0.0)
  lead = terms.ndim - len(shape)
  axes = tuple(range(lead)) + tuple(lead + i for i, n in enumerate(shape)
                                    if n == 1 and terms.shape[lead + i] != 1)
  sums = terms.sum(axis=axes) if axes else terms
  return float(np.max(sums, initial=0.0))


def _div_grad_tolerance(dtype, example):
  """The default gradient tolerance (twice the forward rtol, that much of the largest
  cotangent) plus, in float16/bfloat16, the rounding of the terms the gradient sums over
  broadcast dimensions, g / y and g * x / y**2, which each side rounds in its own order
  (TF: -x / y / y). A sum that cancels keeps a few ulps of its terms, not of itself
  (float16: terms up to 3.2e4 summing to 4085, TF 4080, tf2jax 4096)."""
  base = default_tolerance(dtype)
  tol = Tolerance(2 * base.rtol, base.atol + 2 * base.rtol * cst.COTANGENT_MAX)
  if dtype not in ("float16", "bfloat16"):
    return tol
  x = np.asarray(example.inputs["x"], np.float64)
  y = np.asarray(example.inputs["y"], np.float64)
  shape = np.broadcast_shapes(x.shape, y.shape)
  with np.errstate(all="ignore"):
    yb = np.broadcast_to(y, shape)
    scale = max(_largest_sum(np.abs(1 / yb), x.shape),
                _largest_sum(np.abs(np.broadcast_to(x, shape) / yb ** 2), y.shape))
  eps = float(ml_dtypes.finfo(D.np_dtype(dtype)).eps)
  return Tolerance(tol.rtol, tol.atol + 4 * eps * cst.COTANGENT_MAX * scale)


SPECS.append(OpSpec("RealDiv", binary(1e150, nonzero_y=True),
                    grad_tolerance=_div_grad_tolerance,
                    notes=_COMPLEX_DOMAIN.format("1e15 (complex64) / 1e150 (complex128)")
                    + "; complex divisors are nonzero (TF gives NaN+NaNj for z / 0, XLA "
                    "infinities). Gradient tolerance in float16/bfloat16: 4 eps * 10 (the "
                    "largest cotangent) * the largest sum of |terms| over broadcast "
                    "dimensions (each side rounds the terms in its own order, and sums "
                    "that cancel keep that error)."))

for _op in ["Greater", "Less", "GreaterEqual", "LessEqual"]:
  SPECS.append(OpSpec(_op, binary_example(), transforms=("jit", "static", "x64", "vmap")))


# Cast ------------------------------------------------------------------------------------

CAST_DSTS = D.BOOL + D.NUMBER
_CAST_UNLOWERED = ("not lowered: the Cast lowering's attr rule accepts numeric and bool "
                   "dtypes only, so conversion raises UnsupportedOpsError")


def _in_range_bounds(src: str, dst: str) -> dict:
  """Element bounds keeping float -> int casts defined in C++ (truncation fits)."""
  info = D.iinfo(dst)
  imax, lo = int(info.max), float(info.min)
  part = {"complex64": "float32", "complex128": "float64"}.get(src, src)
  npd = D.np_dtype(part)
  # The largest value of the source dtype that is not above the integer maximum (Python
  # compares floats with ints exactly).
  hi = float(imax)
  with np.errstate(over="ignore"):
    while float(np.asarray(hi).astype(npd)) > imax:
      hi -= abs(hi) * float(D.finfo(part).eps)
  return dict(min_value=lo if lo < 0 else -0.99, max_value=hi, allow_nan=False,
              allow_inf=False)


def _full_mantissa(dtype: str, shape):
  """Random bit patterns of finite values (uniform mantissas, moderate exponents)."""
  part = {"complex64": "float32", "complex128": "float64"}.get(dtype, dtype)
  npd = D.np_dtype(part)
  nmant = int(D.finfo(part).nmant)

  def value(t):
    mant, exp, neg = t
    return (-1.0 if neg else 1.0) * (1.0 + mant / 2.0 ** nmant) * 2.0 ** exp

  elem = st.tuples(st.integers(0, 2 ** nmant - 1), st.integers(-20, 20), st.booleans()).map(
      value)

  def build(shp):
    n = math.prod(shp) * (2 if dtype in D.COMPLEX else 1)
    return st.lists(elem, min_size=n, max_size=n).map(
        lambda xs: _pack(_cast(xs, npd), dtype, shp))
  return shape.flatmap(build)


def _cast(values, npd):
  with np.errstate(over="ignore"):  # exponents beyond float16's range become inf
    return np.asarray(values).astype(npd)


def _pack(values, dtype, shape):
  if dtype in D.COMPLEX:
    values = _complex(values[0::2], values[1::2], dtype)
  return np.asarray(values).astype(D.np_dtype(dtype)).reshape(shape)


def _complex(real, imag, dtype):
  """real + i * imag without arithmetic (1j * inf has a NaN real part)."""
  out = np.zeros(np.shape(real), D.np_dtype(dtype))
  out.real, out.imag = real, imag
  return out


def cast_example(src: str):
  def for_dst(dst: str):
    kwargs = {}
    if (D.is_float(src) or src in D.COMPLEX) and (dst in D.INT):
      kwargs = _in_range_bounds(src, dst)
    x = cst.arrays(src, cst.shapes(), **kwargs)
    if (D.is_float(src) or src in D.COMPLEX) and not kwargs:
      # Values with every mantissa bit drawn, so rounding and truncation differ.
      x = st.one_of(x, _full_mantissa(src, cst.shapes()))
    if src in D.COMPLEX and dst in D.INT:
      # Only the real part is cast; the imaginary part may be anything.
      real = cst.arrays({"complex64": "float32", "complex128": "float64"}[src],
                        cst.shapes(), **kwargs)
      x = real.flatmap(lambda r: cst.arrays(src, r.shape).map(
          lambda z: _complex(r, z.imag, src)))
    return st.tuples(x, st.booleans()).map(
        lambda xt: Example({"x": xt[0]}, {"DstT": dst, "Truncate": xt[1]}))
  return st.sampled_from(CAST_DSTS).flatmap(for_dst)


SPECS.append(OpSpec(
    "Cast", cast_example, dtype_attr="SrcT", dtypes=D.BOOL + D.NUMBER,
    refused_dtypes={d: _CAST_UNLOWERED for d in D.FLOAT8 + D.FLOAT4 + D.NARROW_INT},
    tolerance=lambda dtype, ex: EXACT,
    # No grad: the cases mix destinations, and a cast to an integer or bool has none.
    transforms=("jit", "static", "x64", "vmap"),
    notes="Casts are exact (Truncate=True included: TF 2.21's CPU kernel truncates to "
          "bfloat16 from float32 only, and from float64 to complex64 it zeroes the mantissa "
          "and the exponent's lowest bit, 1.0 giving 0.5; tf2jax does the same). DstT covers bool and numeric dtypes (float8/int4/int2/float4 destinations are "
          "refused by the lowering's attr rule). Float -> integer casts of NaN, +-inf and "
          "values outside the integer range are left out: they are undefined behaviour in "
          "TF's C++ kernel, and x86 TF gives results that depend on the source dtype "
          "(float32 NaN -> int32 gives INT_MIN, bfloat16 saturates, uint32 gives 2**31), "
          "where tf2jax gives XLA's saturating cast with NaN -> 0."))


# Reductions --------------------------------------------------------------------------


def reduction_values(dtype: str, shape, mean: bool = False):
  """Finite values small enough that no order of summation overflows (where a finite sum
  overflows depends on the summation order, which is the implementation's), with
  infinities and NaN; complex values moderate (see _COMPLEX_DOMAIN)."""
  if dtype in D.COMPLEX:
    return moderate_complex(dtype, shape, 1e15)
  if dtype in D.INT or (dtype == "float16" and not mean):
    return cst.arrays(dtype, shape)  # integers wrap; TF's float16 Sum runs in float32
  bound = float(D.finfo(dtype).max) / 128
  npd = D.np_dtype(dtype)
  elem = st.one_of(cst.elements(dtype, min_value=-bound, max_value=bound),
                   st.sampled_from([np.inf, -np.inf]).map(lambda v: npd.type(v)))
  n = math.prod(shape)
  return st.lists(elem, min_size=n, max_size=n).map(
      lambda xs: np.array(xs, npd).reshape(shape))


def reduction_example(dtype, mean: bool = False):
  def for_shape(shape):
    rank = len(shape)
    return st.tuples(
        reduction_values(dtype, shape, mean),
        cst.axes(rank),
        st.booleans(),  # axes as a scalar when there is exactly one
        cst.index_dtypes(),
        st.booleans()).map(lambda t: Example(
            {"input": t[0],
             "axis": np.asarray(t[1][0] if (t[2] and len(t[1]) == 1) else t[1],
                                dtype=D.np_dtype(t[3]))},
            {"keep_dims": t[4]}))
  return cst.shapes(max_dims=4, max_side=4).flatmap(for_shape)


def _sum_bound(dtype: str, ex: Example, mean: bool) -> Tolerance:
  """Summation order is the implementation's: allow n * eps * sum(|x|) (n: reduced size)."""
  base = default_tolerance(dtype)
  if dtype in D.INT:
    return base  # exact (wrapping) integer sums
  x = np.asarray(ex.inputs["input"])
  axes = np.reshape(ex.inputs["axis"], -1)
  n = math.prod(x.shape[int(a)] for a in axes) if x.ndim else 1
  part = {"complex64": "float32", "complex128": "float64"}.get(dtype, dtype)
  mag = np.abs(x.astype(np.complex128 if dtype in D.COMPLEX else np.float64))
  mag = mag[np.isfinite(mag)]
  scale = float(np.max(mag)) * n if mag.size else 0.0
  if mean:
    scale /= max(n, 1)
  eps = float(D.finfo(part).eps)
  return Tolerance(rtol=base.rtol, atol=base.atol + 2 * n * eps * scale)


SPECS.append(OpSpec(
    "Sum", reduction_example, static_inputs=("axis",),
    tolerance=lambda dtype, ex: _sum_bound(dtype, ex, False),
    grad_tolerance=lambda dtype, ex: _sum_bound(dtype, ex, False)))
SPECS.append(OpSpec(
    "Mean", lambda dtype: reduction_example(dtype, mean=True), static_inputs=("axis",),
    notes="TF's float16 Mean accumulates in float16 (its Sum in float32) and tf2jax in "
          "float32: float16 values are kept small enough not to overflow either way. "
          "Integers over their whole range: TF sums 8- to 32-bit types in 64 bits (only "
          "int64/uint64 sums wrap) and truncates the quotient toward zero.",
    tolerance=lambda dtype, ex: _sum_bound(dtype, ex, True),
    grad_tolerance=lambda dtype, ex: _sum_bound(dtype, ex, True)))


# MatMul ----------------------------------------------------------------------------------


def matmul_example(dtype):
  # Finite real values within sqrt(max / 8), infinities and NaN kept: no product of a
  # k <= 4 sum overflows. Near the float max TF rounds each product (inf) where XLA's
  # FMA keeps it exact (float32 6 * 5.67e37 - 3.4e32: TF inf, tf2jax 3.40282e38).
  def values(shape):
    if dtype in D.COMPLEX:
      return moderate_complex(dtype, shape, 1e15)
    if dtype not in D.FLOAT:
      return cst.arrays(dtype, shape)
    bound = math.sqrt(float(D.finfo(dtype).max) / 8)
    return cst.arrays(dtype, shape).map(lambda v: np.where(
        np.isfinite(v), np.clip(v.astype(np.float64), -bound, bound), v).astype(v.dtype))

  def for_dims(dims):
    m, k, n = dims
    return st.tuples(st.booleans(), st.booleans()).flatmap(lambda t: st.tuples(
        values((k, m) if t[0] else (m, k)),
        values((n, k) if t[1] else (k, n))).map(lambda ab: Example(
            {"a": ab[0], "b": ab[1]}, {"transpose_a": t[0], "transpose_b": t[1]})))
  return st.tuples(*[st.integers(0, 4)] * 3).flatmap(for_dims)


def _matmul_bound(dtype: str, ex: Example) -> Tolerance:
  """Accumulation order and precision are the implementation's: k * eps * max(|a||b|)."""
  base = default_tolerance(dtype)
  if dtype in D.INT:
    return base
  a, b = (np.abs(np.asarray(ex.inputs[k]).astype(np.complex128)) for k in "ab")
  if ex.attrs.get("transpose_a"):
    a = a.T
  if ex.attrs.get("transpose_b"):
    b = b.T
  a, b = np.where(np.isfinite(a), a, 0), np.where(np.isfinite(b), b, 0)
  k = a.shape[1]
  prod = a @ b if a.size and b.size else np.zeros((0,))
  scale = float(np.max(prod)) if prod.size and np.all(np.isfinite(prod)) else 0.0
  part = {"complex64": "float32", "complex128": "float64"}.get(dtype, dtype)
  return Tolerance(rtol=base.rtol, atol=base.atol + 2 * k * float(D.finfo(part).eps) * scale)


SPECS.append(OpSpec("MatMul", matmul_example, tolerance=_matmul_bound,
                    grad_tolerance=_matmul_bound,
                    notes=_COMPLEX_DOMAIN.format("1e15") + "; real finite values within "
                    "sqrt(max / 8), so that no sum of products overflows (TF rounds each "
                    "product, XLA fuses them with FMAs)"))


# Hyperbolic ------------------------------------------------------------------------------


def _hyperbolic_grad_tolerance(dtype: str, ex: Example) -> Tolerance:
  """Twice the default, and 10 times that absolute (near 0, sinh(x) ~ x)."""
  rtol = 2 * default_tolerance(dtype).rtol
  return Tolerance(rtol, 10 * rtol)


# tf2jax's real sinh/cosh are within 5 ulps of TF's (XLA's own: 24 float32 ulps near 89,
# 495 float64 ulps near 710), so the default tolerance holds at every |x|.
for _op in ["Sinh", "Cosh"]:
  SPECS.append(OpSpec(_op, unary(), grad_tolerance=_hyperbolic_grad_tolerance,
                      notes=_COMPLEX_DOMAIN.format(50)))
SPECS.append(OpSpec("Acosh", unary(), notes=_COMPLEX_DOMAIN.format(50) + ". grad: TF's "
                    "g / sinh(acosh(x)), NaN below 1 (as tf2jax's)."))
