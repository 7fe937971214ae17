"""Specs of the core's further elementwise ops (tf2jax_core/ops/elementwise_ops.py,
special_ops.py and bitwise_ops.py): division and modulo, rounding, classification,
clipping, powers, the x*log(y) family, trig/hyperbolic and special functions (incomplete
gamma/beta, zeta, polygamma, Bessel, Dawson, Ei, Fresnel, Spence), complex parts and
bitwise ops.

Real inputs take every edge value (0, -0.0, +-inf, NaN, the largest finite values,
subnormals, int min/max). Complex inputs are moderate (see math_specs._COMPLEX_DOMAIN).
Integer divisors are mostly nonzero, but now and then 0: TF's CPU kernels raise, and so
must the converted function (when the divisor is known; under jit it cannot be checked).
"""

from __future__ import annotations

import numpy as np
import scipy.special as sps
from hypothesis import strategies as st

from tf2jax_conformance import dtypes as D
from tf2jax_conformance import strategies as cst
from tf2jax_conformance.core_specs.math_specs import (_COMPLEX_DOMAIN, binary, binary_example,
                                                      moderate_complex, nonzero_cotangents, unary,
                                                      unary_example)
from tf2jax_conformance.spec import (Example, OpSpec, Tolerance, default_tolerance,
                                     largest_finite_abs, tolerances)

SPECS: list[OpSpec] = []

NO_GRAD = ("jit", "static", "x64", "vmap")
_CPLX = _COMPLEX_DOMAIN.format(50)


def _mostly_nonzero(arrays):
  """Zeros replaced by 1 in 3 draws out of 4 (integer division by zero raises in TF)."""
  return st.tuples(arrays, st.integers(0, 3)).map(
      lambda t: t[0] if t[1] == 0 else np.where(t[0] == 0, np.ones_like(t[0]), t[0]))


def division_example(dtype):
  if dtype in D.COMPLEX:
    return binary(1e150 if dtype == "complex128" else 1e15, nonzero_y=True)(dtype)
  if dtype not in D.INT:
    return binary_example()(dtype)
  return cst.broadcastable_shapes(2).flatmap(lambda s: st.tuples(
      cst.arrays(dtype, s[0]), _mostly_nonzero(cst.arrays(dtype, s[1])))).map(
          lambda xy: Example({"x": xy[0], "y": xy[1]}))


_INT_DIV = ("Integer division by zero raises in TF's CPU kernel and in the converted "
            "function when the divisor is known (not under jit, where XLA's result is "
            "returned).")
def _unit_cotangents(dtype, shape, nonzero: bool = False):
  """Cotangents of magnitude <= 1. A gradient summed over broadcast dimensions (FloorMod's
  y gradient -g * floor(x / y), MulNoNan's x * g): TF rounds each product (inf beyond the
  float max), XLA fuses them into the sum with FMAs (no such overflow). With |g| <= 1 no
  product exceeds its finite other factor."""
  return cst.cotangents(dtype, shape, nonzero=nonzero).map(
      lambda c: np.clip(c, -1, 1).astype(c.dtype))


SPECS.append(OpSpec("FloorMod", division_example, cotangents=_unit_cotangents,
                    notes=_INT_DIV + " grad: cotangents of magnitude <= 1 (see "
                                     "special_specs._unit_cotangents)."))
for _op in ["FloorDiv", "TruncateDiv"]:
  SPECS.append(OpSpec(_op, division_example, notes=_INT_DIV))
for _op in ["TruncateMod", "Mod"]:
  SPECS.append(OpSpec(_op, division_example, transforms=NO_GRAD,
                      notes=_INT_DIV + " No grad: TF registers no gradient for it."))
SPECS.append(OpSpec("Div", division_example, notes=_INT_DIV + " " + _COMPLEX_DOMAIN.format(
    "1e15 (complex64) / 1e150 (complex128)") + "; complex divisors are nonzero."))

_MOD_CPLX = _COMPLEX_DOMAIN.format("1e15 (complex64) / 1e150 (complex128)")
def _broadcast_sum_grad(dtype: str, ex: Example) -> Tolerance:
  """A gradient summed over broadcast dimensions is a sum of up to n products of a unit
  cotangent and the other input, added in the implementation's order (1 + max - max is 0
  or 1): the default gradient tolerance (cotangents <= 1) plus 2 n eps max|input|."""
  base = default_tolerance(dtype)
  values = [np.asarray(v) for v in ex.inputs.values()]
  n = int(np.prod(np.broadcast_shapes(*[v.shape for v in values])))
  part = {"complex64": "float32", "complex128": "float64"}.get(dtype, dtype)
  big = max(largest_finite_abs(v) for v in values)
  return Tolerance(2 * base.rtol,
                   base.atol + 2 * base.rtol + 2 * n * float(D.finfo(part).eps) * big)


def _finite_clipped(dtype, bound: float = 1e150, nonzero_y: bool = False):
  """binary(bound) with finite real values clipped to +-min(1e150, max / 1024) (infinities
  and NaN kept): then a sum of up to 1024 unit-cotangent products over broadcast
  dimensions overflows in no order, and its infinities are the same in every order."""
  def clip(ex):
    out = {}
    for k, v in ex.inputs.items():
      name = D.name_of(v.dtype)
      if name in D.FLOAT:
        b = min(1e150, float(D.finfo(name).max) / 1024)
        w = v.astype(np.float64)
        v = np.where(np.isfinite(w), np.clip(w, -b, b), w).astype(v.dtype)
      out[k] = v
    return Example(out, ex.attrs)
  return binary(bound, nonzero_y=nonzero_y)(dtype).map(clip)


SPECS += [
    OpSpec("DivNoNan", binary(1e150), notes=_MOD_CPLX),
    OpSpec("MulNoNan", _finite_clipped, cotangents=lambda d, s: _unit_cotangents(d, s, True),
           grad_tolerance=_broadcast_sum_grad,
           notes=_MOD_CPLX + (
        ". grad: cotangents are nonzero: TF's y gradient mul_no_nan(x, g) is 0 for g == 0 "
        "even where x is inf or NaN, which no JVP (linear in g) can give; tf2jax gives "
        "x * g there. And at most 1 in magnitude, finite real values within "
        "+-min(1e150, max / 1024) (see special_specs._unit_cotangents, _finite_clipped).")),
    OpSpec("SquaredDifference", binary(1e15), notes=_COMPLEX_DOMAIN.format("1e15")),
    OpSpec("Add", binary_example()),
]


def add_n_example(dtype):
  def values(shape):
    if dtype in D.COMPLEX:
      return moderate_complex(dtype, shape, 1e15)
    return cst.arrays(dtype, shape)
  return st.tuples(cst.shapes(), st.integers(1, 4)).flatmap(
      lambda t: st.lists(values(t[0]), min_size=t[1], max_size=t[1])).map(
          lambda xs: Example({"inputs": xs}))


SPECS.append(OpSpec("AddN", add_n_example, notes=_COMPLEX_DOMAIN.format("1e15") + ". At "
                    "most 4 inputs (TF's kernel adds up to 8 left to right, more in "
                    "groups of 8)."))


def _nonzero_complex_unary(bound):
  def example(dtype):
    if dtype in D.COMPLEX:
      return moderate_complex(dtype, cst.shapes(), bound).map(
          lambda x: Example({"x": np.where(x == 0, np.ones_like(x), x)}))
    return unary_example()(dtype)
  return example


for _op in ["Reciprocal", "Inv"]:
  SPECS.append(OpSpec(_op, _nonzero_complex_unary(1e15), cotangents=nonzero_cotangents,
                      notes=_COMPLEX_DOMAIN.format("1e15") + "; complex inputs nonzero. "
                      "grad: cotangents are nonzero: at x=0 TF's ReciprocalGrad kernel "
                      "returns 0 for a 0 cotangent, JAX gives 0 * inf = NaN (the known "
                      "divergence of Sqrt/Rsqrt, see math_specs._ZERO_CT)."))

_ROUND_INT = ("refused: TF 2.21's CPU Round kernel returns 0 for every integer input (a TF "
              "bug); tf2jax does not emulate it")
SPECS += [
    OpSpec("Sign", unary(), notes=_CPLX),
    OpSpec("Round", unary_example(), refused_dtypes={d: _ROUND_INT for d in ("int32", "int64")}),
]
for _op in ["Rint", "Floor", "Ceil"]:
  SPECS.append(OpSpec(_op, unary_example()))
for _op in ["IsNan", "IsInf", "IsFinite"]:
  SPECS.append(OpSpec(_op, unary_example(), transforms=NO_GRAD))


def clip_example(dtype):
  def for_shape(shape):
    bound = st.one_of(cst.arrays(dtype, ()), cst.arrays(dtype, shape))
    return st.tuples(cst.arrays(dtype, shape), bound, bound)
  return cst.shapes().flatmap(for_shape).map(lambda t: Example(
      {"t": t[0], "clip_value_min": t[1], "clip_value_max": t[2]}))


_CLIP_COMPLEX = ("refused: TF's complex ClipByValue orders complex numbers in a way of its "
                 "own (ClipByValue(5+0j, 2+1j, 3+0j) gives 3+1j); not emulated")
SPECS.append(OpSpec("ClipByValue", clip_example,
                    refused_dtypes={d: _CLIP_COMPLEX for d in D.COMPLEX},
                    notes="TF computes max(min(t, hi), lo) with std::min/max: a NaN bound "
                          "is ignored, lo wins where lo > hi."))


def pow_example(dtype):
  if dtype in D.COMPLEX:  # nonzero bases (see the notes)
    return binary(4.0)(dtype).map(lambda e: Example(
        {"x": np.where(e.inputs["x"] == 0, np.ones_like(e.inputs["x"]), e.inputs["x"]),
         "y": e.inputs["y"]}))
  if dtype in D.INT:
    y = st.tuples(cst.arrays(dtype, ()), st.integers(0, 7)).map(
        lambda t: t[0] if t[1] == 0 else np.abs(t[0] % 70).astype(t[0].dtype))
    return cst.broadcastable_shapes(2).flatmap(lambda s: st.tuples(
        cst.arrays(dtype, s[0]), cst.arrays(dtype, s[1]).flatmap(
            lambda a: st.lists(y, min_size=a.size, max_size=a.size).map(
                lambda v: np.array(v, a.dtype).reshape(a.shape))))).map(
        lambda xy: Example({"x": xy[0], "y": xy[1]}))
  return binary_example()(dtype)


def _pow_tolerance(dtype, ex):
  """Complex z**w = exp(w log z) is ill-conditioned in |w log z| (Pow(0.001j, 3) in
  complex64 differs by 8.4 ulps between TF and XLA), and each part of the result may be
  much smaller than its modulus: 8 eps of |z**w| (1 + |w log z|) absolute are added."""
  base = default_tolerance(dtype)
  if dtype not in D.COMPLEX:
    return base
  x, y = (np.asarray(ex.inputs[k]).astype(np.complex128) for k in "xy")
  with np.errstate(all="ignore"):
    scale = np.abs(x ** y) * (1 + np.abs(y * np.log(x)))
  scale = scale[np.isfinite(scale)]
  eps = float(D.finfo(_REAL_OF[dtype]).eps)
  return Tolerance(base.rtol, base.atol + 8 * eps * (float(np.max(scale)) if scale.size else 0))


SPECS.append(OpSpec("Pow", pow_example, tolerance=_pow_tolerance, notes=(
    "Integer exponents are mostly in [0, 70) (negative ones raise in TF, and in the "
    "converted function when known). Complex bases are nonzero, parts of moderate size; "
    "tolerance scaled by |z**w| (1 + |w log z|) (see special_specs._pow_tolerance).")))

def _xlog1py_tolerance(dtype: str, ex: Example) -> Tolerance:
  """Complex: an absolute 2 eps |x| besides the default; TF's complex log1p(y) takes its
  real part from log|1 + y| (see the Log1p spec)."""
  base = default_tolerance(dtype)
  if dtype not in D.COMPLEX:
    return base
  return Tolerance(base.rtol, base.atol + 2 * float(D.finfo(dtype).eps) * largest_finite_abs(
      ex.inputs["x"]))


for _op in ["Xlogy", "Xdivy", "Xlog1py"]:
  SPECS.append(OpSpec(_op, lambda d: _finite_clipped(d, 1e15, nonzero_y=True),
                      tolerance=_xlog1py_tolerance if _op == "Xlog1py" else None,
                      cotangents=_unit_cotangents,
                      grad_tolerance=_broadcast_sum_grad,
                      notes=_COMPLEX_DOMAIN.format("1e15") + "; complex y nonzero. grad: "
                      "unit cotangents, clipped values (see _unit_cotangents)." + (
                          " Complex: an absolute tolerance of 2 eps |x| (TF's log1p, see "
                          "the Log1p spec)." if _op == "Xlog1py" else "")))


def atan2_example(dtype):
  return binary_example()(dtype).map(lambda e: Example({"y": e.inputs["x"], "x": e.inputs["y"]}))


SPECS.append(OpSpec("Atan2", atan2_example))


# Trigonometric, hyperbolic and special functions --------------------------------------

for _op in ["Asin", "Acos", "Atan", "Asinh", "Atanh", "Expm1"]:
  SPECS.append(OpSpec(_op, unary(), notes=_CPLX))
# TF's complex log1p takes its real part from log|1 + z|, |1 + z| rounded: an absolute
# error of ~eps/2 that is all of it for small |z| (Log1p(0.001j) in complex64: TF
# 4.77e-7, the true value 5.0e-7, XLA's).
SPECS.append(OpSpec("Log1p", unary(), notes=_CPLX + "; complex: an absolute tolerance of "
                    "2 eps (TF's real part is log|1 + z|, see special_specs.py).",
                    tolerance=tolerances(**{c: Tolerance(default_tolerance(c).rtol, 2 * float(
                        D.finfo(c).eps)) for c in ("complex64", "complex128")})))
# Near their poles (tan: pi/2 + k*pi) the functions are ill-conditioned; cosh/sinh overflow
# beyond ~89 (float32) in the real part, where Eigen and XLA scale differently.
SPECS.append(OpSpec("Tan", unary(1.5), notes=_COMPLEX_DOMAIN.format(1.5) + " (below the "
                    "first pole at pi/2)"))


def _below_1e150(dtype):
  """TF's Eigen erf of float64 values above ~1.3e154 is NaN (x * x overflows; a TF bug;
  tf2jax gives 1): such values are clipped to +-1e150."""
  def clip(ex):
    x = ex.inputs["x"]
    if dtype == "float64":
      x = np.where(np.abs(x) > 1e150, np.sign(x) * 1e150, x).astype(x.dtype)
    return Example({"x": x})
  return unary_example()(dtype).map(clip)


SPECS.append(OpSpec("Erf", _below_1e150, notes="float64 values above 1e150 are clipped: "
                    "TF's erf of them is NaN (a TF bug; tf2jax gives +-1)."))
def _erfc_tolerance(dtype: str, ex: Example) -> Tolerance:
  """The default plus 2 x**2 eps relative for x > 1: erfc's condition number there. TF's
  float64 erfc is that far off (256 ulps at x = 25: exp(-x*x) of a rounded x*x; XLA's is
  within 6); in float32 both are up to ~33 ulps off in the tail."""
  base = default_tolerance(dtype)
  if dtype in ("float16", "bfloat16"):
    return base
  x = np.asarray(ex.inputs["x"], np.float64)
  x = x[np.isfinite(x) & (x > 1)]
  scale = float(np.max(2 * x * x)) if x.size else 0.0
  return Tolerance(base.rtol + float(D.finfo(dtype).eps) * scale, base.atol)


SPECS.append(OpSpec("Erfc", unary_example(), tolerance=_erfc_tolerance,
                    notes="Relative tolerance grows as 2 x**2 eps for x > 1 (erfc's "
                          "conditioning; TF's float64 tail is 256 ulps off at x = 25)."))


def _abs_ulps(dtype: str, n: float) -> Tolerance:
  eps = float(D.finfo(dtype).eps)
  return Tolerance(rtol=8 * eps, atol=n * eps)


# Digamma has zeros (at 1.4616 and between each pair of negative poles) where the relative
# error of any approximation is unbounded: Eigen's and XLA's series each have absolute
# errors of a few eps (Digamma(1.0) in float32: TF -0.57721591, XLA -0.57721537, the true
# value -0.5772157), so an absolute tolerance of 8 eps is added.
def _digamma_example(dtype):
  # TF's gradient is zeta(2, x) (Eigen's Hurwitz zeta), wrong for x < 0 (TF: 6.78 at
  # -7.5, the trigamma function 9.74): negative non-integers are drawn as |x|.
  return unary_example()(dtype).map(lambda e: Example({"x": np.where(
      (e.inputs["x"] < 0) & (e.inputs["x"] != np.floor(e.inputs["x"])),
      np.abs(e.inputs["x"]), e.inputs["x"])}))


SPECS.append(OpSpec("Digamma", _digamma_example, tolerance={
    "float32": _abs_ulps("float32", 8), "float64": _abs_ulps("float64", 8)},
    grad_dtypes=("float32", "float64"),
    notes="x is not a negative non-integer: there TF's gradient (Eigen's zeta(2, x)) is "
          "not the trigamma function, tf2jax's is. "
          "Absolute tolerance of 8 eps besides the default (see special_specs.py). No "
          "float16 grad: TF's gradient calls Polygamma, which has no float16 kernel."))


def _conditioned(derivative):
  """The default tolerance plus 8 ulps of the input times the derivative: near +-1 (0 and
  1 for Ndtri) the inverse functions are ill-conditioned, and Eigen's and XLA's
  approximations differ by more than a few ulps of the output (Erfinv(-0.9999) in float32:
  TF -2.751035, XLA -2.7510269, 25 ulps apart but within 1 ulp of the input's rounding)."""
  def tolerance(dtype, ex):
    base = default_tolerance(dtype)
    x = np.asarray(ex.inputs["x"], np.float64)
    with np.errstate(all="ignore"):
      d = np.abs(x) * derivative(x)
    d = d[np.isfinite(d)]
    scale = float(np.max(d)) if d.size else 0.0
    return Tolerance(base.rtol, base.atol + 8 * float(D.finfo(dtype).eps) * scale)
  return tolerance


def _exp_square_grad(inverse, k: float, forward):
  """The gradient of Erfinv/Ndtri is c exp(y**2 / k) of the output y: a forward error dy
  grows into a relative gradient error 2 |y| dy / k (Ndtri'(5.6e-17) in float32: 64 ulps
  apart for outputs 1 ulp apart). Twice that, plus the default gradient tolerance."""
  def tolerance(dtype, ex):
    fwd = forward(dtype, ex)
    x = np.asarray(ex.inputs["x"], np.float64)
    with np.errstate(all="ignore"):
      y = np.abs(inverse(x))
    y = y[np.isfinite(y)]
    y_max = float(np.max(y)) if y.size else 0.0
    return Tolerance(2 * fwd.rtol + 4 * y_max * (fwd.rtol * y_max + fwd.atol) / k,
                     2 * fwd.atol)
  return tolerance


_ERFINV_TOL = _conditioned(lambda x: np.sqrt(np.pi) / 2 * np.exp(sps.erfinv(x) ** 2))
_NDTRI_TOL = _conditioned(lambda x: np.sqrt(2 * np.pi) * np.exp(sps.ndtri(x) ** 2 / 2))
SPECS.append(OpSpec("Erfinv", unary_example(), tolerance=_ERFINV_TOL,
                    grad_tolerance=_exp_square_grad(sps.erfinv, 1, _ERFINV_TOL),
                    notes="TF computes ndtri((x + 1) / 2) / sqrt(2), 0 for |x| below ~eps / "
                          "4; so does tf2jax. grad: see special_specs._exp_square_grad."))
SPECS.append(OpSpec("Ndtri", unary_example(), tolerance=_NDTRI_TOL,
                    grad_tolerance=_exp_square_grad(sps.ndtri, 2, _NDTRI_TOL),
                    notes="grad: see special_specs._exp_square_grad."))


# Complex numbers -----------------------------------------------------------------------

_CPLX_OF = {"float32": "complex64", "float64": "complex128"}
_REAL_OF = {"complex64": "float32", "complex128": "float64"}


def complex_example(dtype):
  return cst.broadcastable_shapes(2).flatmap(lambda s: st.tuples(
      cst.arrays(dtype, s[0]), cst.arrays(dtype, s[1]))).map(
          lambda t: Example({"real": t[0], "imag": t[1]}, {"Tout": _CPLX_OF[dtype]}))


SPECS.append(OpSpec("Complex", complex_example, transforms=NO_GRAD,
                    notes="No grad: the harness draws real cotangents for the float32/"
                          "float64 cases, and the output is complex."))


def complex_part_example(dtype):
  return unary()(dtype).map(lambda e: Example({"input": e.inputs["x"]},
                                              {"Tout": _REAL_OF[dtype]}))


for _op in ["Real", "Imag", "Angle", "ComplexAbs"]:
  SPECS.append(OpSpec(_op, complex_part_example if _op != "ComplexAbs" else
                      (lambda dtype: complex_part_example(dtype).map(
                          lambda e: Example({"x": e.inputs["input"]}, e.attrs))),
                      notes=_CPLX))
SPECS.append(OpSpec("Conj", lambda dtype: unary()(dtype).map(
    lambda e: Example({"input": e.inputs["x"]})), notes=_CPLX))


# Bitwise -------------------------------------------------------------------------------

for _op in ["BitwiseAnd", "BitwiseOr", "BitwiseXor"]:
  SPECS.append(OpSpec(_op, binary_example(), transforms=NO_GRAD))
SPECS.append(OpSpec("Invert", unary_example(), transforms=NO_GRAD))
SPECS.append(OpSpec("PopulationCount", unary_example(), transforms=NO_GRAD))


def shift_example(dtype):
  bits = D.np_dtype(dtype).itemsize * 8
  lo = 0 if dtype in D.UNSIGNED_INT else -3
  y = lambda shape: st.one_of(cst.arrays(dtype, shape, min_value=lo, max_value=bits + 3),
                              cst.arrays(dtype, shape))
  return cst.broadcastable_shapes(2).flatmap(lambda s: st.tuples(
      cst.arrays(dtype, s[0]), y(s[1]))).map(lambda xy: Example({"x": xy[0], "y": xy[1]}))


for _op in ["LeftShift", "RightShift"]:
  SPECS.append(OpSpec(_op, shift_example, transforms=NO_GRAD, notes=(
      "Shift amounts include negative ones and ones of the bit width or more: TF's CPU "
      "kernel clamps them to [0, bits - 1], and so does the lowering.")))


# NextAfter, ApproximateEqual ---------------------------------------------------------


def _named_binary(a: str, b: str):
  return lambda dtype: binary_example()(dtype).map(
      lambda e: Example({a: e.inputs["x"], b: e.inputs["y"]}))


SPECS.append(OpSpec("NextAfter", _named_binary("x1", "x2"), transforms=NO_GRAD,
                    notes="No grad: TF's NextAfter gradient is zero by definition (not "
                          "checked)."))


def approx_equal_example(dtype):
  """Random pairs, or y = x + tolerance (often exactly `tolerance` apart: the edge)."""
  npd = D.np_dtype(dtype)

  def build(t):
    x, y, tol, edge = t
    if edge:
      with np.errstate(all="ignore"):
        y = (x + npd.type(tol)).astype(npd)
    return Example({"x": x, "y": y}, {"tolerance": tol})
  return cst.shapes().flatmap(lambda s: st.tuples(
      cst.arrays(dtype, s), cst.arrays(dtype, s),
      st.sampled_from([1e-5, 0.5, 0.0, 3.0]), st.booleans())).map(build)


SPECS.append(OpSpec("ApproximateEqual", approx_equal_example, transforms=NO_GRAD,
                    notes="TF's CPU kernel tests |x - y| <= tolerance (its doc says <)."))


# Lgamma is 0 at 1 and 2: near there, as for Digamma, the absolute errors of Eigen's and
# XLA's approximations (a few float32 eps; float16 is computed in float32) decide.
SPECS.append(OpSpec("Lgamma", unary_example(), tolerance={
    "float16": Tolerance(default_tolerance("float16").rtol, 8 * float(D.finfo("float32").eps)),
    "float32": _abs_ulps("float32", 8), "float64": _abs_ulps("float64", 8)},
    notes="Absolute tolerance of 8 float32/float64 eps besides the default (zeros at 1 "
          "and 2, see special_specs.py)."))


# Special functions (tf2jax_core/ops/special_ops.py) ------------------------------------

_HALF_IN_F32 = Tolerance(default_tolerance("float16").rtol, 8 * float(D.finfo("float32").eps))


def _rel_abs(n_rel: float, n_abs: float, half_abs: float = 8.0):
  """n_rel ulps relative plus n_abs eps absolute (half dtypes: computed in float32)."""
  return {"float16": Tolerance(default_tolerance("float16").rtol,
                               half_abs * float(D.finfo("float32").eps)),
          **{d: Tolerance(n_rel * float(D.finfo(d).eps),
                          n_abs * float(D.finfo(d).eps) + float(D.finfo(d).tiny))
             for d in ("float32", "float64")}}


for _op in ["BesselI0", "BesselI0e", "BesselI1", "BesselI1e"]:
  SPECS.append(OpSpec(_op, unary_example(), tolerance={"float16": _HALF_IN_F32}))

# K0, K1 (and K0e, K1e) are +inf for x <= 0 in TF (SciPy: NaN below 0), and so in tf2jax.
# TF's Cephes series and tf2jax's Chebyshev series (fitted to SciPy) each err by a few ulps:
# up to 7 ulps apart on a dense grid (BesselK1e(1.7) in float32), so 16 ulps are allowed.
for _op in ["BesselK0", "BesselK0e", "BesselK1", "BesselK1e"]:
  SPECS.append(OpSpec(_op, unary_example(), tolerance=_rel_abs(16, 0),
                      notes="+inf for x <= 0, as TF's kernel (the functions are defined "
                            "for x > 0). 16 ulps (two independent series, see "
                            "special_specs.py)."))

# J0, J1, Y0, Y1 oscillate: near their zeros the relative error of any approximation is
# unbounded, and for large x the result depends on how the phase x - pi/4 is rounded: up
# to ~x eps radians, times the amplitude sqrt(2 / (pi x)). TF's Cephes approximations and
# tf2jax's Chebyshev series differ by a few eps absolute near zeros (BesselY1(6.7) in
# float64: 10 eps apart, 2.3e-15 absolute), and SciPy's float64 values (the static path)
# by the phase rounding of TF's float32 kernel for float16 inputs (BesselJ0 of large
# float16 values: 2.9e-6 apart). So 16 eps + 2 min(x eps, 1) sqrt(2 / (pi x)) absolute
# is added (float16 is computed in float32: float32's eps).
def _oscillating_tolerance(cotangent: float):
  def tolerance(dtype, ex):
    x = np.abs(np.asarray(ex.inputs["x"], np.float64))
    x = x[np.isfinite(x)]
    eps = float(D.finfo("float32" if dtype == "float16" else dtype).eps)
    phase = 2 * np.minimum(x * eps, 1) * np.sqrt(2 / (np.pi * np.maximum(x, 1)))
    bound = 16 * eps + (float(np.max(phase)) if x.size else 0.0)
    rtol = default_tolerance(dtype).rtol * (2 if cotangent > 1 else 1)
    return Tolerance(rtol, bound * cotangent + float(D.finfo(dtype).tiny))
  return tolerance


for _op in ["BesselJ0", "BesselJ1", "BesselY0", "BesselY1"]:
  SPECS.append(OpSpec(_op, unary_example(), tolerance=_oscillating_tolerance(1),
                      grad_tolerance=_oscillating_tolerance(10),
                      notes="Absolute tolerance of 16 eps + 2 min(x eps, 1) sqrt(2 / (pi x)) "
                            "besides the default (oscillating functions, phase rounding; see "
                            "special_specs.py); NaN at +-inf and Y -inf for x <= 0, as TF's "
                            "kernel."))


def _dawsn_example(dtype):
  # TF's Dawsn is 0.5 / |x| for x <= -1e9 (the sign is flipped twice; a TF bug, Dawson's
  # integral is odd): such values are drawn as |x|.
  return unary_example()(dtype).map(lambda e: Example({"x": np.where(
      e.inputs["x"] <= -1e9, np.abs(e.inputs["x"]), e.inputs["x"])}))


SPECS.append(OpSpec("Dawsn", _dawsn_example, notes="x > -1e9: below, TF's kernel returns "
                    "-dawsn(x) (a TF bug; tf2jax gives dawsn(x))."))
SPECS.append(OpSpec("Expint", unary_example(), notes="NaN for x < 0, as TF's kernel."))


def _fresnel_tolerance(dtype, ex):
  """The default plus 8 eps * max|x| absolute: for large x the Fresnel integrals are
  1/2 + O(1/x) terms in sin/cos(pi/2 x^2), whose rounded argument (pi/2 x^2 in the input's
  precision, as TF computes it) shifts the result by up to ~|x| eps (FresnelCos(1e4) in
  float32: TF 0.49998, the exact value 0.50000). Beyond |x| = 36974 both give +-1/2."""
  base = default_tolerance(dtype)
  x = np.abs(np.asarray(ex.inputs["x"], np.float64))
  x = x[np.isfinite(x) & (x <= 36974)]
  scale = float(np.max(x)) if x.size else 0.0
  return Tolerance(base.rtol, base.atol + 8 * float(D.finfo(dtype).eps) * scale)


for _op in ["FresnelCos", "FresnelSin"]:
  SPECS.append(OpSpec(_op, unary_example(), tolerance=_fresnel_tolerance, notes=(
      "Absolute tolerance of 8 eps * max|x| besides the default (ill-conditioned for "
      "large x, see special_specs._fresnel_tolerance).")))
SPECS.append(OpSpec("Spence", unary_example()))


def _named(*names):
  """Elementwise inputs `names` of one broadcast shape set, every edge value."""
  def example(dtype):
    return cst.broadcastable_shapes(len(names)).flatmap(lambda s: st.tuples(
        *[cst.arrays(dtype, shape) for shape in s])).map(
            lambda xs: Example(dict(zip(names, xs))))
  return example


def _igamma_tolerance(dtype, ex):
  """32 eps * (1 + max|a| + max|x|) relative (over finite inputs), 8 eps absolute.
  Both TF's (Eigen's) and XLA's series lose accuracy as a and x grow (their exponent
  a log x - x - lgamma(a) carries an absolute rounding error of that size): measured
  over 50,000 random (a, x) in [1e-3, 1e4], |TF - XLA| <= 17 eps (1 + a + x) relative.
  For a << 1 both compute Igammac as 1 - Igamma, with absolute errors of a few eps
  (float32, a = 5.2e-4, x = 0.43: 3.38167e-4 exactly, TF 3.38137e-4, XLA 3.38674e-4).
  Near a = x (values ~0.5) that absolute error is up to 18 eps (1 + a + x), so the
  relative tolerance is 64 eps (1 + max|a| + max|x|). For tiny a, TF's absolute error
  grows like |ln a| eps (float64 Igamma(1.9e-289, 0.862): TF 1 + 278 eps, true 1 - 1e-289;
  its IgammaGradA there is ~1.5 |ln a| eps off, relative to values of a few units), so
  3 |ln min a| eps is added to both parts."""
  eps = float(D.finfo(dtype).eps)
  scale = [np.abs(np.asarray(v, np.float64)) for v in ex.inputs.values()]
  scale = [v[np.isfinite(v)] for v in scale]
  scale = 1 + sum(float(v.max()) if v.size else 0.0 for v in scale)
  a = np.abs(np.asarray(ex.inputs["a"], np.float64))
  a = a[(a > 0) & (a < 1)]
  log_a = float(-np.log(a.min())) if a.size else 0.0
  return Tolerance((64 * scale + 3 * log_a) * eps, (8 + 3 * log_a) * eps)


def _igamma_example(dtype):
  # TF's series underflows for 0 < a < ~1e-37 (float32; ~1e-307 float64): exp(-lgamma(a))
  # flushes to 0, and TF gives Igamma 0 where it is ~1 (a TF bug). Such a are drawn as
  # 1e-30 (1e-300).
  tiny = 1e-36 if dtype == "float32" else 1e-306
  # Near a = x, TF's and XLA's series lose about eps * a absolutely: float32 Igamma(8.7e6,
  # 8.7e6) is 2e-4 in TF and 1.26 in XLA, where it is 0.5. Such pairs are scaled down
  # together (keeping x / a) until the larger is 1e3. Measured against SciPy near a = x:
  # TF's float64 error is 2e-11 at 1e4, 3e-6 at 1e5, 0.07 at 1e6; float32's 0.013 at 1e4;
  # TF's and XLA's IgammaGradA agree within 139 eps at 1e3, 6e7 eps at 1e4.
  big = 1e3
  def lift(e):
    a, x = e.inputs["a"], e.inputs["x"]
    a = np.where((a != 0) & (np.abs(a) < tiny), np.sign(a) * tiny * 1e6, a).astype(a.dtype)
    with np.errstate(all="ignore"):
      top = np.maximum(np.abs(a), np.abs(x))
      near = np.isfinite(top) & (top > big) & (x / a > 0.5) & (x / a < 2)
      if near.any():  # the pair then takes its broadcast shape
        scale = np.where(near, big / np.where(near, top, 1), 1)
        a, x = (np.broadcast_to(v * scale, near.shape).astype(v.dtype) for v in (a, x))
    return Example({"a": a, "x": x})
  return _named("a", "x")(dtype).map(lift)


SPECS += [OpSpec(_op, _igamma_example, tolerance=_igamma_tolerance, notes=(
    "Tolerance (64 (1 + max|a| + max|x|) + 3 |ln min a|) eps relative, (8 + 3 |ln min a|) "
    "eps absolute: "
    "TF's and XLA's algorithms both lose accuracy as a and x grow, and for small a (see "
    "special_specs._igamma_tolerance). 0 < |a| < 1e-36 (float32; 1e-306 float64) is "
    "drawn as 1e-30 (1e-300): below, TF's series underflows and gives Igamma 0 where it "
    "is ~1 (a TF bug). Pairs with 0.5 < x / a < 2 above 1e3 are scaled down to it: "
    "above, TF's error grows fast (IgammaGradA: TF and XLA 6e7 eps apart at 1e4; float64 "
    "values: 3e-6 at 1e5, 0.07 at 1e6; float32 "
    "Igamma(8.7e6, 8.7e6): TF 2e-4, XLA 1.26, true 0.5).")) for _op in ["Igamma", "Igammac"]]


def _near_negative(v, dtype):
  """Non-integer v < 0 drawn as |v| below -6 (float32) or -1e4 (float64). There TF's
  zeta(x, v) sums (v + k)^-x one term at a time up to v + k > 9, and in float32 its
  kernel is wrong below about -6 (zeta(2, -8.5) = -2.85e12; the sum is 9.76)."""
  floor = -6 if dtype == "float32" else -1e4
  return np.where((v < floor) & (np.floor(v) != v), -v, v).astype(v.dtype)


def _zeta_example(dtype):
  return _named("x", "q")(dtype).map(lambda e: Example({
      "x": e.inputs["x"], "q": _near_negative(e.inputs["q"], dtype)}))


def _cancellation(x, q, dtype, factor=1.0):
  """16 eps * factor * sum |(q + k)^-x| over the elements with a non-integer q < 0 (the
  sum's terms cancel there, and its rounding error scales with them), else 0."""
  x, q, factor = np.broadcast_arrays(np.asarray(x, np.float64), np.asarray(q, np.float64),
                                     np.asarray(factor, np.float64))
  pick = (q < 0) & (np.floor(q) != q) & np.isfinite(x) & (x > 1)
  f = q[pick] - np.floor(q[pick])
  with np.errstate(all="ignore"):
    terms = factor[pick] * (sps.zeta(x[pick], 1 - f) + sps.zeta(x[pick], f))
  terms = terms[np.isfinite(terms)]
  return 16 * float(D.finfo(dtype).eps) * float(np.max(terms)) if terms.size else 0.0


def _zeta_tolerance(dtype, ex):
  """The default, plus the cancellation term for q < 0 and, relative, eps (1 + |x|)
  |ln q| for 0 < q < 1: TF's and XLA's q^-x go through exp(-x ln q), whose error grows
  with the exponent (float64 d/dq zeta(0.00195, 1.4e-17): TF and XLA 30 eps apart)."""
  base = default_tolerance(dtype)
  x, q = (np.asarray(ex.inputs[k], np.float64) for k in ("x", "q"))
  x, q = np.broadcast_arrays(x, q)
  pick = (q > 0) & (q < 1) & np.isfinite(x)
  cond = float(np.max((1 + np.abs(x[pick])) * -np.log(q[pick]))) if pick.any() else 0.0
  return Tolerance(base.rtol + float(D.finfo(dtype).eps) * cond,
                   base.atol + _cancellation(ex.inputs["x"], ex.inputs["q"], dtype))


SPECS.append(OpSpec("Zeta", _zeta_example, grad_inputs=("q",), tolerance=_zeta_tolerance,
                    notes="grad: q only (TF has no gradient for x). Non-integer q < 0 is "
                    "drawn above -6 in float32 and -1e4 in float64, and the absolute tolerance "
                    "grows with the sum of |terms| there (see special_specs._near_negative "
                    "and _cancellation)."))


def _polygamma_example(dtype):
  # The order a is an integer in TF's domain (NaN otherwise): mostly small integers.
  # Polygamma(n, x) is (-1)^(n+1) n! zeta(n + 1, x) in TF, so x is drawn as Zeta's q.
  order = st.one_of(st.integers(0, 4).map(float), cst.elements(dtype))
  return cst.broadcastable_shapes(2).flatmap(lambda s: st.tuples(
      st.lists(order, min_size=int(np.prod(s[0])), max_size=int(np.prod(s[0]))).map(
          lambda v: np.array(v, D.np_dtype(dtype)).reshape(s[0])),
      cst.arrays(dtype, s[1]))).map(lambda t: Example({
          "a": t[0], "x": _near_negative(t[1], dtype)}))


def _polygamma_tolerance(dtype, ex):
  # Digamma's (a == 0) plus the zeta sum's cancellation, times n!, for a >= 1.
  base = _abs_ulps(dtype, 8)
  a = np.asarray(ex.inputs["a"], np.float64)
  with np.errstate(all="ignore"):
    factor = np.where((a >= 1) & (a <= 170), sps.gamma(np.minimum(np.abs(a), 170) + 1), 0)
  return Tolerance(base.rtol, base.atol + _cancellation(a + 1, ex.inputs["x"], dtype,
                                                        factor))


SPECS.append(OpSpec("Polygamma", _polygamma_example, grad_inputs=("x",),
                    tolerance=_polygamma_tolerance, notes=(
                        "grad: x only (TF has no gradient for a). x is drawn as Zeta's q; "
                        "the tolerance is Digamma's plus n! times Zeta's cancellation term "
                        "(see special_specs._polygamma_tolerance).")))


def _betainc_example(dtype):
  # TF's kernel takes a, b and x of one shape, or scalars among them. x always has the
  # shape (TF's x gradient fails in a Reshape for a scalar x beside a larger a or b, and
  # for a scalar a or b beside a 0-sized x: TF bugs).
  def values(shape):
    one = cst.arrays(dtype, shape)
    return one if 0 in shape else st.one_of(cst.arrays(dtype, ()), one)
  # Both TF's and XLA's continued fractions lose about eps * max(a, b) absolutely (their
  # prefactor subtracts lgammas of that size): float32 I_x(1, 1e35) is 2.0 in TF, 0 in
  # XLA. a and b above 1e3 (float32; 1e8 float64) are drawn as that.
  top = 1e3 if dtype == "float32" else 1e8
  cap = lambda v: np.where(np.isfinite(v) & (v > top), top, v).astype(v.dtype)
  return cst.shapes().flatmap(lambda shape: st.tuples(
      values(shape), values(shape), cst.arrays(dtype, shape))).map(
          lambda t: Example({"a": cap(t[0]), "b": cap(t[1]), "x": t[2]}))


def _betainc_tolerance(dtype, ex):
  """The default plus (256 + 32 (1 + max finite a, b)) eps absolute. Measured against
  SciPy over 20,000 random points per decade range: TF's error <= 13 eps (1 + max(a, b))
  for a, b above 1e-2, XLA's <= 27 eps (1 + max(a, b)); for tiny a or b, XLA's is up to
  190 eps (float64) and TF's 40."""
  base = default_tolerance(dtype)
  eps = float(D.finfo(dtype).eps)
  a, b = np.broadcast_arrays(*(np.abs(np.asarray(ex.inputs[k], np.float64)) for k in "ab"))
  ok = np.isfinite(a) & np.isfinite(b) & (a > 0) & (b > 0)
  top = float(np.max(np.maximum(a, b)[ok])) if ok.any() else 0.0
  # Relative: the prefactor exp(... - lbeta(a, b)) carries lbeta's absolute error, about
  # eps (|lgamma a| + |lgamma b| + |lgamma(a + b)|) (float64 d/dx at a = b = 1.5e-167:
  # TF and XLA 770 eps apart).
  with np.errstate(all="ignore"):
    lg = np.abs(sps.gammaln(a[ok])) + np.abs(sps.gammaln(b[ok])) + np.abs(
        sps.gammaln(a[ok] + b[ok]))
  lg = float(lg.max()) if lg.size else 0.0
  return Tolerance(base.rtol + 4 * eps * lg, base.atol + (256 + 32 * (1 + top)) * eps)


SPECS.append(OpSpec("Betainc", _betainc_example, grad_inputs=("x",), notes=(
    "grad: x only (TF has no gradient for a and b). x is never a scalar beside a larger "
    "a or b, and a, b are not scalars beside a 0-sized x: TF's gradient fails there (TF "
    "bugs). a and b above 1e3 (float32; 1e8 float64) are drawn as that: TF's and XLA's "
    "absolute errors grow like eps * max(a, b), and both are garbage far above. Absolute "
    "tolerance (256 + 32 (1 + max a, b)) eps, relative 4 eps times the lgammas of a, b "
    "and a + b (see special_specs._betainc_tolerance)."),
    tolerance=_betainc_tolerance))
