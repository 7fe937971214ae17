"""More elementwise math: integer and float division/modulo, rounding, classification,
clipping, powers, x*log(y) family, trig/hyperbolic and special functions, complex parts.

Static inputs are computed with NumPy/SciPy (half-precision dtypes in float32, rounded
back once, as TF's Eigen kernels do); traced ones with jax.numpy/lax. Outputs keep TF's
dtype. Integer division by zero raises like TF's CPU kernels whenever the divisor's values
are known (static, or concrete outside `jit`); under `jit` they cannot be checked and XLA's
result is returned. Likewise integer Pow with a negative exponent.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import ml_dtypes
import numpy as np
import scipy.special as sps

from tf2jax_core.lowering import COMPLEX, FLOAT, NUMBER, REAL, is_static, lowering, xnp
from tf2jax_core.ops.math_ops import _div, _flush, _real_div, _with_tf_grad

LOWERINGS = []

_HALF = (np.dtype(np.float16), np.dtype(ml_dtypes.bfloat16))


def _known(value):
  """`value` as NumPy when its values are known now, else None (a tracer under jit)."""
  if is_static(value):
    return np.asarray(value)
  if isinstance(value, jax.core.Tracer):
    return None
  try:
    return np.asarray(value)
  except Exception:  # pragma: no cover
    return None


def _is_int(x) -> bool:
  return np.issubdtype(np.dtype(x.dtype), np.integer)


def _check_nonzero(x, y) -> None:
  """TF raises for an integer 0 divisor, unless the broadcast result is empty."""
  if _is_int(y) and math.prod(np.broadcast_shapes(np.shape(x), np.shape(y))):
    k = _known(y)
    if k is not None and np.any(k == 0):
      raise ValueError("Integer division by zero")


def _np_up(fn, *xs):
  """NumPy `fn` on static values; half-precision dtypes computed in float32."""
  dtype = np.asarray(xs[0]).dtype
  with np.errstate(all="ignore"):
    if dtype in _HALF:
      out = fn(*(np.asarray(x).astype(np.float32) for x in xs))
    else:
      out = fn(*(np.asarray(x) for x in xs))
  out = np.asarray(out)
  if out.dtype.kind == dtype.kind or (dtype in _HALF and out.dtype.kind == "f"):
    return out.astype(dtype)
  return out  # bool, or the real part type of a complex input


def _np_quotient(x, y):
  """Static x / y rounded to x's dtype, a subnormal quotient flushed to zero as in TF's
  CPU kernels (not float16's: TF computes it in float32, where it is normal)."""
  return _flush(_np_up(np.true_divide, x, y))


def _register(op: str, types, run, extra_attrs=None) -> None:
  attrs = {"T": types}
  attrs.update(extra_attrs or {})

  @lowering(op, attrs=attrs)
  def build(node):
    return run
  LOWERINGS.append(build)


# Division and modulo ---------------------------------------------------------------


def _np_floor_mod_float(x, y):
  mod = np.fmod(x, y)
  return np.where((mod != 0) & ((y < 0) != (mod < 0)), mod + y, mod)


def _jnp_floor_mod_float(x, y):
  mod = jax.lax.rem(*jnp.broadcast_arrays(x, y))
  return jnp.where((mod != 0) & ((y < 0) != (mod < 0)), mod + y, mod)


# TF's FloorMod gradient: (g, -g * floor_div(x, y)).
_floor_mod_float = _with_tf_grad(
    _jnp_floor_mod_float, lambda x, y, tx, ty: tx - ty * jnp.floor(_div(x, y)))


def floor_mod(x, y):
  _check_nonzero(x, y)
  if is_static(x, y):
    if _is_int(x):
      with np.errstate(all="ignore"):
        return np.remainder(x, y).astype(x.dtype)
    return _np_up(_np_floor_mod_float, x, y)
  if _is_int(x):
    return jnp.remainder(x, y)
  return _floor_mod_float(x, y)


def floor_div(x, y):
  """Integers: floor of the exact quotient (INT_MIN // -1 wraps); floats: floor(x / y)."""
  _check_nonzero(x, y)
  if is_static(x, y):
    if _is_int(x):
      with np.errstate(all="ignore"):
        return np.floor_divide(x, y).astype(x.dtype)
    return _np_up(np.floor, _np_quotient(x, y))
  if _is_int(x):
    return jnp.floor_divide(x, y)
  return jnp.floor(_div(x, y))


def _np_trunc_div_int(x, y):
  q = np.floor_divide(x, y)
  r = np.remainder(x, y)
  if np.dtype(x.dtype).kind == "u":
    return q
  return np.where((r != 0) & ((x < 0) != (y < 0)), q + 1, q).astype(x.dtype)


def truncate_div(x, y):
  _check_nonzero(x, y)
  if is_static(x, y):
    if _is_int(x):
      with np.errstate(all="ignore"):
        return np.asarray(_np_trunc_div_int(x, y)).astype(x.dtype)
    return _np_up(np.trunc, _np_quotient(x, y))
  if _is_int(x):
    return jax.lax.div(*jnp.broadcast_arrays(x, y))
  return jnp.trunc(_div(x, y))


def truncate_mod(x, y):
  """C's % for integers, fmod for floats (the sign of x)."""
  _check_nonzero(x, y)
  if is_static(x, y):
    if _is_int(x):
      with np.errstate(all="ignore"):
        return np.fmod(x, y).astype(x.dtype)
    return _np_up(np.fmod, x, y)
  return jax.lax.rem(*jnp.broadcast_arrays(x, y))


def div(x, y):
  """Div: truncating for integers, true division for floats and complex numbers."""
  if _is_int(x):
    return truncate_div(x, y)
  if is_static(x, y):
    return _np_up(np.true_divide, x, y)
  return _real_div(x, y)


_register("FloorMod", REAL, floor_mod)
_register("FloorDiv", REAL, floor_div)
_register("TruncateDiv", REAL, truncate_div)
_register("TruncateMod", REAL, truncate_mod)
_register("Mod", REAL, truncate_mod)
_register("Div", NUMBER, div)


def _safe(y):
  m = xnp(y)
  return m.where(y == 0, m.ones_like(y), y)


def _jnp_div_no_nan(x, y):
  return jnp.where(y == 0, jnp.zeros((), x.dtype), _div(x, _safe(y)))


# TF's DivNoNan gradient: (div_no_nan(g, y), g * div_no_nan(div_no_nan(-x, y), y)).
_div_no_nan = _with_tf_grad(
    _jnp_div_no_nan,
    lambda x, y, tx, ty: (_jnp_div_no_nan(tx, y)
                          + ty * _jnp_div_no_nan(_jnp_div_no_nan(-x, y), y)))


def div_no_nan(x, y):
  if is_static(x, y):
    return _np_up(lambda a, b: np.where(b == 0, np.zeros((), a.dtype), a / _safe(b)), x, y)
  return _div_no_nan(x, y)


def _jnp_mul_no_nan(x, y):
  return jnp.where(y == 0, jnp.zeros((), x.dtype), x * y)


# TF's MulNoNan gradient: (mul_no_nan(g, y), mul_no_nan(x, g)). The second is not linear
# in g (0 where g == 0 even for x = inf): the JVP uses x * g, which differs only for a 0
# cotangent and a non-finite x (a custom_vjp would break forward-mode differentiation).
_mul_no_nan = _with_tf_grad(
    _jnp_mul_no_nan,
    lambda x, y, tx, ty: _jnp_mul_no_nan(tx, y) + x * ty)


def mul_no_nan(x, y):
  if is_static(x, y):
    return _np_up(lambda a, b: np.where(b == 0, np.zeros((), a.dtype), a * b), x, y)
  return _mul_no_nan(x, y)


def squared_difference(x, y):
  if is_static(x, y):
    def f(a, b):
      d = a - b
      return np.conj(d) * d if d.dtype.kind == "c" else d * d
    return _np_up(f, x, y)
  d = x - y
  return jnp.conj(d) * d if jnp.iscomplexobj(d) else d * d


def add(x, y):
  return xnp(x, y).add(x, y)


_register("DivNoNan", FLOAT + COMPLEX, div_no_nan)
_register("MulNoNan", FLOAT + COMPLEX, mul_no_nan)
_register("SquaredDifference", NUMBER, squared_difference)
_register("Add", NUMBER, add)


@lowering("AddN", attrs={"T": NUMBER, "N": None})
def add_n(node):
  def run(*xs):
    shapes = {tuple(np.shape(x)) for x in xs}
    if len(shapes) != 1:
      raise ValueError(f"AddN inputs must have the same shape, got {sorted(shapes)}")
    out = xs[0]
    for x in xs[1:]:  # left to right, as TF's kernel for up to 8 inputs
      out = xnp(out, x).add(out, x)
    return out
  return run


LOWERINGS.append(add_n)


# Unary -------------------------------------------------------------------------------


def _unary(op: str, types, np_fn, jnp_fn, extra_attrs=None) -> None:
  def run(x):
    return _np_up(np_fn, x) if is_static(x) else jnp_fn(x)
  _register(op, types, run, extra_attrs)


@jax.custom_jvp
def _reciprocal(x):
  return jnp.ones((), x.dtype) / x


# TF's ReciprocalGrad: -g * conj(y)**2 (JAX's -g / x**2 overflows elsewhere).
_reciprocal.defjvp(lambda p, t: (_reciprocal(p[0]),
                                 -t[0] * jnp.conj(_reciprocal(p[0])) ** 2))

for _op in ("Reciprocal", "Inv"):
  _unary(_op, FLOAT + COMPLEX, lambda x: np.ones((), x.dtype) / x, _reciprocal)


def _np_sign(x):
  if x.dtype.kind == "c":
    a = np.abs(x)
    return np.where(a == 0, np.zeros((), x.dtype), x / np.where(a == 0, 1, a))
  return np.where(x == 0, np.zeros((), x.dtype), np.sign(x))  # sign(-0.0) is +0.0 in TF


def _jnp_sign(x):
  if jnp.iscomplexobj(x):
    return jnp.sign(x)
  return jnp.where(x == 0, jnp.zeros((), x.dtype), jnp.sign(x))


_unary("Sign", FLOAT + COMPLEX + ("int8", "int16", "int32", "int64"), _np_sign, _jnp_sign)
# Round on integers is refused: TF 2.21's CPU kernel returns 0 for every integer.
_unary("Round", FLOAT, np.rint, jnp.round)
_unary("Rint", FLOAT, np.rint, jnp.rint)
_unary("Floor", FLOAT, np.floor, jnp.floor)
_unary("Ceil", FLOAT, np.ceil, jnp.ceil)
_unary("IsNan", FLOAT, np.isnan, jnp.isnan)
_unary("IsInf", FLOAT, np.isinf, jnp.isinf)
_unary("IsFinite", FLOAT, np.isfinite, jnp.isfinite)


# ClipByValue -------------------------------------------------------------------------


def _clip(m, t, lo, hi):
  # TF: std::max(std::min(t, hi), lo) = where(hi < t, hi, t), then where(m < lo, lo, m):
  # a NaN bound is ignored, a NaN value kept, and lo wins when lo > hi.
  v = m.where(hi < t, hi, t)
  return m.where(v < lo, lo, v)


@jax.custom_jvp
def _clip_jnp(t, lo, hi):
  return _clip(jnp, t, lo, hi)


@_clip_jnp.defjvp
def _clip_jvp(primals, tangents):
  # TF's gradient: to t where lo <= t <= hi, to lo where t < lo, to hi where t > hi.
  t, lo, hi = primals
  tt, tlo, thi = tangents
  out = _clip_jnp(t, lo, hi)
  below, above = t < lo, t > hi
  zero = jnp.zeros((), out.dtype)
  tan = jnp.where(below | above, zero, tt) + jnp.where(below, tlo, zero) + jnp.where(
      above, thi, zero)
  return out, jnp.broadcast_to(tan, out.shape).astype(out.dtype)


@lowering("ClipByValue", attrs={"T": REAL})
def clip_by_value(node):
  def run(t, lo, hi):
    for name, b in (("clip_value_min", lo), ("clip_value_max", hi)):
      if np.ndim(b) != 0 and np.shape(b) != np.shape(t):
        raise ValueError(f"ClipByValue: {name} must be a scalar or have the shape of t "
                         f"{list(np.shape(t))}, got {list(np.shape(b))}")
    if is_static(t, lo, hi):
      return np.asarray(_clip(np, t, lo, hi)).astype(t.dtype)
    if jnp.issubdtype(t.dtype, jnp.inexact):
      return _clip_jnp(t, jnp.broadcast_to(lo, jnp.shape(t)), jnp.broadcast_to(hi, jnp.shape(t)))
    return _clip(jnp, t, lo, hi)
  return run


LOWERINGS.append(clip_by_value)


# Pow ---------------------------------------------------------------------------------


def _pow_tangent(x, y, tx, ty):
  # TF's Pow gradient: (g * y * x**(y - 1), g * x**y * log(x) where x > 0 else 0),
  # multiplied left to right. The VJP applies a tangent's factors last to first, so they
  # are written in reverse: an overflow of g * y (inf * 0 = NaN) happens as in TF.
  z = jnp.power(x, y)
  if jnp.iscomplexobj(x):
    log_x = jnp.where(x != 0, jnp.log(jnp.where(x != 0, x, 1)), 0)
  else:
    log_x = jnp.where(x > 0, jnp.log(jnp.where(x > 0, x, 1)), 0)
  return tx * jnp.power(x, y - jnp.ones((), y.dtype)) * y + ty * log_x * z


_pow_inexact = _with_tf_grad(jnp.power, _pow_tangent)


def _np_int_pow(x, y):
  x, y = np.broadcast_arrays(np.asarray(x), np.asarray(y))
  out = np.ones(x.shape, x.dtype)
  base, exp = x.copy(), y.astype(np.int64)
  with np.errstate(all="ignore"):
    while np.any(exp > 0):
      odd = (exp & 1) == 1
      out = np.where(odd, out * base, out).astype(x.dtype)
      base = (base * base).astype(x.dtype)
      exp = exp >> 1
  return out


def _jnp_int_pow(x, y):
  # Squaring over every bit of y: XLA's integer pow ignores the bits of y above the 6th
  # (Pow(2, 69) in int64 gives 32 under jit; TF wraps to 0).
  out, base = jnp.ones_like(x), x
  for _ in range(np.dtype(x.dtype).itemsize * 8 - 1):
    out = jnp.where((y & 1) == 1, out * base, out)
    base, y = base * base, y >> 1
  return out


def pow_(x, y):
  if _is_int(x):
    k = _known(y)
    # TF checks the exponents it uses: none when the broadcast result is empty.
    if k is not None and np.any(k < 0) and 0 not in np.broadcast_shapes(np.shape(x), k.shape):
      raise ValueError("Integers to negative integer powers are not allowed")
    if is_static(x, y):
      return _np_int_pow(x, y)
    return _jnp_int_pow(*jnp.broadcast_arrays(x, y))
  if is_static(x, y):
    return _np_up(np.power, x, y)
  return _pow_inexact(x, y)


_register("Pow", FLOAT + COMPLEX + ("int8", "int16", "int32", "int64"), pow_)


# x * log(y) family -------------------------------------------------------------------


def _x_times(f_np, f_jnp):
  """where(x == 0, 0, x * f(y)); TF returns 0 for x == 0 whatever y is (NaN included)."""
  def jnp_fn(x, y):
    zero = jnp.zeros((), x.dtype)
    return jnp.where(x == 0, zero, x * f_jnp(jnp.where(x == 0, jnp.ones((), y.dtype), y)))

  def np_fn(x, y):
    return np.where(x == 0, np.zeros((), x.dtype), x * f_np(y))
  return np_fn, jnp_fn


def _log1p(x):
  """log(1 + x). XLA's float64 log1p is up to 120 ulps off (near x = -0.41); there
  log(u) * x / (u - 1) with u = 1 + x, within 2 ulps of TF. The barrier keeps XLA from
  folding (1 + x) - 1 into x."""
  if x.dtype != np.float64:
    return jnp.log1p(x)
  u = jax.lax.optimization_barrier(1 + x)
  log_u = jnp.log(u)
  return jnp.where(u == 1, x, jnp.where(jnp.isinf(u), log_u, x * (log_u / (u - 1))))


def _log1p_op(m, log1p):
  """The Log1p op: TF's complex log1p(-1) is -inf + NaN j (Xlog1py's is not special)."""
  def run(x):
    out = log1p(x)
    if np.iscomplexobj(x):
      at = (m.real(x) == -1) & (m.imag(x) == 0)
      out = m.where(at, m.asarray(complex(-np.inf, np.nan), x.dtype), out)
    return out
  return run


_xlogy_np, _xlogy_jnp = _x_times(np.log, jnp.log)
_xlog1py_np, _xlog1py_jnp = _x_times(np.log1p, _log1p)
_xdivy_np = lambda x, y: np.where(x == 0, np.zeros((), x.dtype), x / y)


def _xdivy_jnp(x, y):
  return jnp.where(x == 0, jnp.zeros((), x.dtype),
                   _div(x, jnp.where(x == 0, jnp.ones((), y.dtype), y)))


def _nz(x):
  return (x != 0).astype(x.dtype)


# TF's gradients: Xlogy (xlogy(x != 0, y), xdivy(x, y)); Xdivy (xdivy(x != 0, y),
# xdivy(-x, y**2)); Xlog1py (xlog1py(x != 0, y), xdivy(x, y + 1)).
_xlogy = _with_tf_grad(_xlogy_jnp, lambda x, y, tx, ty: (
    tx * _xlogy_jnp(_nz(x), y) + ty * _xdivy_jnp(x, y)))
_xdivy = _with_tf_grad(_xdivy_jnp, lambda x, y, tx, ty: (
    tx * _xdivy_jnp(_nz(x), y) + ty * _xdivy_jnp(-x, y * y)))
_xlog1py = _with_tf_grad(_xlog1py_jnp, lambda x, y, tx, ty: (
    tx * _xlog1py_jnp(_nz(x), y) + ty * _xdivy_jnp(x, y + jnp.ones((), y.dtype))))

for _op, _np_fn, _jnp_fn in [("Xlogy", _xlogy_np, _xlogy), ("Xdivy", _xdivy_np, _xdivy),
                             ("Xlog1py", _xlog1py_np, _xlog1py)]:
  _register(_op, FLOAT + COMPLEX, (lambda f, g: lambda x, y: _np_up(f, x, y)
                                   if is_static(x, y) else g(x, y))(_np_fn, _jnp_fn))


# Trigonometric, hyperbolic and special functions --------------------------------------

def _with_unary_grad(forward, derivative):
  """`forward(x)` whose JVP is `t * derivative(x, y)` (TF's gradient formula)."""
  @jax.custom_jvp
  def f(x):
    return forward(x)

  @f.defjvp
  def f_jvp(primals, tangents):
    y = f(primals[0])
    return y, (tangents[0] * derivative(primals[0], y)).astype(y.dtype)
  return f


def _rounded_product(u, v):
  """u * v, rounded before it is used. Under jit XLA:CPU lets LLVM fuse `1 - x * x` into
  one FMA, with the product unrounded (Acos'(0.99999) in float32 came out 37 ulps off
  TF's); the select keeps the product a value of its own."""
  return jnp.where(jnp.isnan(u), u, u * v)


def _rounded_square(x):
  return _rounded_product(x, x)


def _atanh_forward(x):
  """XLA's float64 atanh goes through its log1p (up to 73 ulps off near 0.41); this one,
  sign(x) log1p(2|x| / (1 - |x|)) / 2, is within 2 ulps of TF."""
  if x.dtype != np.float64:
    return jnp.arctanh(x)
  a = jnp.abs(x)
  return jnp.sign(x) * (0.5 * _log1p(2 * a / (1 - a)))


def _tf_reciprocal_grad(forward, den):
  """Real `forward` with TF's gradient `g * reciprocal(den(x))`; the barrier stops XLA
  rewriting 1 / sqrt into the less exact rsqrt. Complex inputs keep JAX's gradient."""
  real = _with_unary_grad(forward, lambda x, y: 1 / jax.lax.optimization_barrier(den(x)))
  return lambda x: forward(x) if jnp.iscomplexobj(x) else real(x)


def _expm1(m):
  """expm1; of a complex number as TF (Eigen) computes it: with e = expm1(a), the real
  part e - 2 (e + 1) sin(b / 2)**2 and the imaginary part (e + 1) sin b. XLA's loses the
  real part where cos b ~ 1 (1742 ulps off TF in complex128; Eigen's is within 3)."""
  product = (lambda u, v: u * v) if m is np else _rounded_product  # no FMA under jit

  def run(z):
    if not np.iscomplexobj(z):
      return m.expm1(z)
    a, b = m.real(z), m.imag(z)
    e = m.expm1(a)
    s = m.sin(b / 2)
    re, im = e - product(2 * (e + 1), product(s, s)), (e + 1) * m.sin(b)
    if m is jnp:
      return jax.lax.complex(re, im)
    out = np.empty(np.shape(z), z.dtype)
    out.real, out.imag = re, im
    return out
  return run


# TF's gradient: g * exp(x).
_jnp_expm1 = _with_unary_grad(_expm1(jnp), lambda x, y: jnp.exp(x))


# TF's gradient: g / (x**2 + y**2) first, then times x (for y) and -y (for x); in float16
# that quotient overflows where JAX's x / (x**2 + y**2) does not (x = 1e-3, y = 0: inf).
_atan2 = _with_tf_grad(jnp.arctan2, lambda y, x, ty, tx: (
    (ty * x + tx * -y) / (_rounded_square(x) + _rounded_square(y))))


@lowering("Atan2", attrs={"T": FLOAT})
def atan2(node):
  return lambda y, x: _np_up(np.arctan2, y, x) if is_static(y, x) else _atan2(y, x)


LOWERINGS.append(atan2)


# TF's gradients: Asin 1 / sqrt(1 - x**2), Acos its negation, Atan 1 / (1 + x**2),
# Atanh 1 / (1 - x**2); Log1p 1 / (1 + x) (below).
_asin = _tf_reciprocal_grad(jnp.arcsin, lambda x: jnp.sqrt(1 - _rounded_square(x)))
_acos = _tf_reciprocal_grad(jnp.arccos, lambda x: -jnp.sqrt(1 - _rounded_square(x)))
_atan = _tf_reciprocal_grad(jnp.arctan, lambda x: 1 + _rounded_square(x))
_atanh = _tf_reciprocal_grad(_atanh_forward, lambda x: 1 - _rounded_square(x))


for _op, _np_fn, _jnp_fn in [
    ("Tan", np.tan, jnp.tan), ("Asin", np.arcsin, _asin), ("Acos", np.arccos, _acos),
    ("Atan", np.arctan, _atan), ("Asinh", np.arcsinh, jnp.arcsinh),
    ("Atanh", np.arctanh, _atanh), ("Expm1", _expm1(np), _jnp_expm1),
    ("Log1p", _log1p_op(np, np.log1p),
     _tf_reciprocal_grad(_log1p_op(jnp, _log1p), lambda x: 1 + x))]:
  _unary(_op, FLOAT + COMPLEX, _np_fn, _jnp_fn)


def _real_sinh_cosh(x, sinh: bool):
  """Real sinh or cosh from exp(|x|) (expm1 for sinh), and exp(|x| / 2)**2 / 2 where
  exp(|x|) overflows. XLA's exp(|x| - log 2) rounds the subtraction: 24 ulps off at
  |x| ~ 89 in float32, 495 ulps near 710 in float64; these are within 5 and 3 of TF."""
  if x.dtype.itemsize < 4:
    return _real_sinh_cosh(x.astype(jnp.float32), sinh).astype(x.dtype)
  ax = jnp.abs(x)
  big = float(np.log(np.finfo(x.dtype).max))
  half = jnp.exp(ax / 2)
  huge = half * (half / 2)
  if sinh:
    m = jnp.expm1(jnp.minimum(ax, big))
    return jnp.copysign(jnp.where(ax < big, (m + m / (m + 1)) / 2, huge), x)
  e = jnp.exp(jnp.minimum(ax, big))
  return jnp.where(ax < big, e / 2 + 0.5 / e, huge)


@jax.custom_jvp
def _sinh(x):
  return _real_sinh_cosh(x, True)


@jax.custom_jvp
def _cosh(x):
  return _real_sinh_cosh(x, False)


# TF's gradients: Sinh g * cosh(x), Cosh g * sinh(x).
_sinh.defjvp(lambda p, t: (_sinh(p[0]), t[0] * _cosh(p[0])))
_cosh.defjvp(lambda p, t: (_cosh(p[0]), t[0] * _sinh(p[0])))


def _sinh_cosh(real_fn):
  """Complex sinh/cosh part by part, as libstdc++ (TF): sinh(a + ib) = sinh a cos b +
  i cosh a sin b, cosh(a + ib) = cosh a cos b + i sinh a sin b. XLA's exp-based formula
  loses the real part of sinh for small |a| (Sinh(-0.001-0.0075j) in complex64: 4.5e-5
  relative error)."""
  other = _cosh if real_fn is _sinh else _sinh

  def run(x):
    if not jnp.iscomplexobj(x):
      return real_fn(x)
    a, b = jnp.real(x), jnp.imag(x)
    return jax.lax.complex(real_fn(a) * jnp.cos(b), other(a) * jnp.sin(b))
  return run


_unary("Sinh", FLOAT + COMPLEX, np.sinh, _sinh_cosh(_sinh))
_unary("Cosh", FLOAT + COMPLEX, np.cosh, _sinh_cosh(_cosh))


@jax.custom_jvp
def _acosh(x):
  return jnp.arccosh(x)


# TF's gradient: g / sinh(y) (NaN below 1, where JAX's 1 / sqrt(x**2 - 1) is not).
_acosh.defjvp(lambda p, t: (_acosh(p[0]), t[0] / _sinh_cosh(_sinh)(_acosh(p[0]))))
_unary("Acosh", FLOAT + COMPLEX, np.arccosh, _acosh)
_unary("Erf", FLOAT, sps.erf, jax.lax.erf)
_unary("Erfc", FLOAT, sps.erfc, jax.lax.erfc)


# TF's gradients: Erfinv g * sqrt(pi) / 2 * exp(y**2), Ndtri g * sqrt(2 pi) * exp(y**2 / 2)
# (infinite at the ends, so a 0 cotangent there gives NaN, as in TF).
def _tf_erfinv(m, special):
  """TF's Erfinv, ndtri((x + 1) / 2) / sqrt(2): it loses the low bits of x (0 for |x| below
  ~eps / 4, where erfinv(x) ~ 0.886 x), and tf2jax gives what TF gives."""
  def run(x):
    return (special.ndtri((x + 1) / 2) / np.sqrt(2)).astype(x.dtype)
  return run


_erfinv = _with_unary_grad(_tf_erfinv(jnp, jax.scipy.special),
                           lambda x, y: (np.sqrt(np.pi) / 2) * jnp.exp(y * y))
_ndtri = _with_unary_grad(jax.scipy.special.ndtri,
                          lambda x, y: np.sqrt(2 * np.pi) * jnp.exp(y * y / 2))
_unary("Erfinv", ("float32", "float64"), _tf_erfinv(np, sps), _erfinv)
_unary("Ndtri", ("float32", "float64"), sps.ndtri, _ndtri)


def _lgamma(m, f):
  # Exactly 0 at 1 and 2, as C's lgamma in TF (XLA gives 4.8e-7 at 1); +inf at -inf.
  def run(x):
    out = m.where((x == 1) | (x == 2), m.zeros((), x.dtype), f(x))
    return m.where(x == -m.inf, m.asarray(m.inf, x.dtype), out)
  return run


_unary("Lgamma", ("float16", "float32", "float64"), _lgamma(np, sps.gammaln),
       # TF's gradient: digamma(x).
       _with_unary_grad(_lgamma(jnp, jax.lax.lgamma), lambda x, y: jax.lax.digamma(x)))


def _np_digamma(x):
  # TF: NaN at 0 and the negative integers (poles), where SciPy gives -inf at 0.
  return np.where((x <= 0) & (x == np.floor(x)), np.nan, sps.psi(x))


_unary("Digamma", ("float16", "float32", "float64"), _np_digamma,
       # TF's gradient: polygamma(1, x), which TF makes 0 at +inf (XLA: NaN).
       _with_unary_grad(jax.lax.digamma, lambda x, y: jnp.where(
           x == jnp.inf, jnp.zeros((), x.dtype), jax.lax.polygamma(jnp.ones((), x.dtype), x))))


# Complex numbers ---------------------------------------------------------------------



@lowering("Complex", attrs={"T": ("float32", "float64"), "Tout": COMPLEX})
def complex_(node):
  tout = node.attrs["Tout"]

  def run(re, im):
    if is_static(re, im):
      re, im = np.broadcast_arrays(re, im)
      out = np.zeros(re.shape, tout)
      out.real, out.imag = re, im
      return out
    return jax.lax.complex(*jnp.broadcast_arrays(re, im))
  return run


LOWERINGS.append(complex_)

for _op, _np_fn, _jnp_fn in [("Real", np.real, jnp.real), ("Imag", np.imag, jnp.imag),
                             ("Angle", np.angle, jnp.angle),
                             ("ComplexAbs", np.abs, jnp.abs)]:
  _unary(_op, COMPLEX, _np_fn, _jnp_fn, {"Tout": ("float32", "float64")})
_unary("Conj", COMPLEX, np.conj, jnp.conj)


# NextAfter, ApproximateEqual -------------------------------------------------------------
# (Igamma, Igammac, Zeta, Polygamma, Betainc, Bessel functions and more: special_ops.py.)


@lowering("NextAfter", attrs={"T": ("float32", "float64")})
def next_after(node):
  return lambda x1, x2: (np.nextafter(x1, x2) if is_static(x1, x2)
                         else jnp.nextafter(x1, x2))


LOWERINGS.append(next_after)


@lowering("ApproximateEqual", attrs={"T": NUMBER, "tolerance": None})
def approximate_equal(node):
  tol = float(node.attrs.get("tolerance", 1e-5))

  def run(x, y):
    if np.shape(x) != np.shape(y):
      raise ValueError(f"ApproximateEqual: x and y must have one shape, got "
                       f"{list(np.shape(x))} and {list(np.shape(y))}")
    m = xnp(x, y)
    return m.abs(x - y) <= m.asarray(tol, dtype=x.dtype)  # TF: <=, not its doc's <
  return run


LOWERINGS.append(approximate_equal)
