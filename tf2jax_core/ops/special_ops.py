"""Special functions: incomplete gamma and beta functions, zeta, polygamma, Bessel
functions, Dawson's integral, the exponential integral, Fresnel integrals, Spence.

Static inputs are computed with SciPy (the Cephes algorithms TF's Eigen kernels also
port); traced ones with jax.lax / jax.scipy.special where JAX has the function, else with
Chebyshev series fitted here, at import, to SciPy's values. Half-precision inputs are
computed in float32 and rounded back once, as TF's kernels do. Edge values (poles,
infinities, NaN) follow TF's kernels. Gradients use TF's formulas (see math_grad.py).
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import jax.scipy.special as jss
import numpy as np
import scipy.special as sps
from numpy.polynomial import chebyshev

from tf2jax_core.lowering import is_static, lowering
from tf2jax_core.ops.elementwise_ops import (_HALF, _np_digamma, _np_up, _xlog1py_jnp,
                                             _xlogy_jnp)

LOWERINGS = []

_F32_64 = ("float32", "float64")
_F16_32_64 = ("float16", "float32", "float64")


def _in_f32(fn):
  """`fn` computed in float32 for half-precision inputs, rounded back once."""
  def run(*xs):
    dtype = xs[0].dtype
    if np.dtype(dtype) in _HALF:
      return fn(*(x.astype(jnp.float32) for x in xs)).astype(dtype)
    return fn(*xs)
  return run


def _register(op: str, types, np_fn, jnp_fn) -> None:
  @lowering(op, attrs={"T": types})
  def build(node):
    def run(*xs):
      if is_static(*xs):
        return _np_up(np_fn, *xs)
      return jnp_fn(*jnp.broadcast_arrays(*xs))
    return run
  LOWERINGS.append(build)


def _with_grad(forward, derivatives):
  """`forward(*xs)` whose JVP is sum(t_i * d_i(*xs, y)) (TF's gradient formulas); an
  entry of None in `derivatives` is an input TF gives no gradient (treated as 0).
  Half precision: the value and each derivative are computed in float32 and rounded
  once, and the products are taken in the input dtype, as TF's gradient ops run in it
  (a derivative beyond float16's range is inf there, so a zero cotangent gives NaN)."""
  @jax.custom_jvp
  def f(*xs):
    return _in_f32(forward)(*xs)

  @f.defjvp
  def f_jvp(primals, tangents):
    y = f(*primals)
    out = jnp.zeros_like(y)
    for d, t in zip(derivatives, tangents):
      if d is not None:
        out = out + t * _in_f32(d)(*primals, y)
    return y, out.astype(y.dtype)
  return f


def _nan_where(m, bad, y):
  return m.where(bad, m.asarray(np.nan, y.dtype), y)


# Incomplete gamma and beta functions, zeta, polygamma -----------------------------------


def _igamma_fix(m, igamma, lower):
  # TF's Eigen kernels: NaN where x < 0, a <= 0 or either is NaN; Igamma(a, 0) is 0
  # whatever a is (checked first).
  # XLA's is NaN for huge a (float32 a ~1e37 and up): where x <= a TF's Igamma is 0
  # (Igammac 1 for x < a), above it 1 (Igammac 0); TF's Igamma(inf, inf) is 0.
  def run(a, x):
    y = igamma(a, x)
    below = (a >= x) if lower else (a > x)
    huge = m.isnan(y) & (x >= 0) & ~m.isnan(x) & ~m.isnan(a)
    low, high = (m.zeros_like(y), m.ones_like(y)) if lower else (m.ones_like(y),
                                                                  m.zeros_like(y))
    y = m.where(huge, m.where(below, low, high), y)
    if lower:
      y = m.where((a == np.inf) & (x == np.inf), m.zeros_like(y), y)
    y = _nan_where(m, (x < 0) | (a <= 0) | m.isnan(a) | m.isnan(x), y)
    return m.where(x == 0, m.zeros_like(y), y) if lower else y
  return run


def _igamma_dx(a, x, y):
  # TF: exp(-x + (a - 1) log(x) - lgamma(a)).
  return jnp.exp(-x + (a - 1) * jnp.log(x) - jax.lax.lgamma(a))


def _igamma_grad_a(a, x):
  # TF's IgammaGradA is 0 at x == 0 (whatever a is), for a == +inf, for x == +inf and
  # for huge a (float32 a ~1e37 and up); XLA's is NaN there.
  g = jax.lax.igamma_grad_a(a, x)
  zero = (x == 0) | ((a == np.inf) & (x > 0)) | ((x == np.inf) & (a > 0)) | (
      jnp.isnan(g) & (x > 0) & (a > 0))
  return jnp.where(zero, jnp.zeros_like(g), g)


_igamma = _with_grad(_igamma_fix(jnp, jax.lax.igamma, True),
                     (lambda a, x, y: _igamma_grad_a(a, x), _igamma_dx))
_igammac = _with_grad(_igamma_fix(jnp, jax.lax.igammac, False),
                      (lambda a, x, y: -_igamma_grad_a(a, x),
                       lambda a, x, y: -_igamma_dx(a, x, y)))
_register("Igamma", _F32_64, _igamma_fix(np, sps.gammainc, True), _igamma)
_register("Igammac", _F32_64, _igamma_fix(np, sps.gammaincc, False), _igammac)


@lowering("IgammaGradA", attrs={"T": _F32_64})
def igamma_grad_a(node):
  """TF's raw IgammaGradA(a, x): d Igamma(a, x) / da, the kernel of Igamma's gradient
  (inputs broadcast). SciPy has no such function: static inputs go through JAX too."""
  def run(a, x):
    a, x = jnp.broadcast_arrays(a, x)
    return _igamma_grad_a(a, x).astype(a.dtype)
  return run


def _zeta_fix(m, zeta):
  # Edge values of TF's Eigen zeta (checked against TF 2.21): +inf at x == 1, NaN for
  # x < 1; for q <= 0 an integer q gives +inf when x is an even integer (or +inf) and NaN
  # otherwise, and a non-integer q needs an integer x; x == +inf sums (q + k)^-inf
  # (+inf for q < 1, 1 for q == 1, 0 above); q == +inf gives 0.
  def run(x, q):
    y = zeta(x, q)
    inf, nan = m.asarray(np.inf, y.dtype), m.asarray(np.nan, y.dtype)
    x_int = m.floor(x) == x
    x_even = x_int & (m.fmod(m.where(m.isfinite(x), x, 0), 2) == 0) | (x == np.inf)
    q_int = m.floor(q) == q
    y = m.where((q == np.inf) & (x > 1), m.zeros_like(y), y)
    y = m.where(x == np.inf, m.where(q < 1, inf, m.where(q == 1, m.ones_like(y),
                                                          m.zeros_like(y))), y)
    y = m.where((q <= 0) & q_int, m.where(x_even, inf, nan), y)
    y = m.where((q <= 0) & ~q_int & ~x_int, nan, y)
    y = m.where(m.isnan(q) | m.isnan(x), nan, y)
    return m.where(x == 1, inf, m.where(x < 1, nan, y))
  return run


def _zeta_sum(m, zeta):
  """TF's zeta(x, q), the sum of (q + k)^-x over k >= 0, from `zeta` (NumPy's or XLA's)
  where that is right: q > 0 and moderate x."""
  def positive_q(x, q):
    # XLA's zeta is NaN for large x (float32 from x ~ 1e4), SciPy's too (x ~ 1e13). There
    # 2^-x underflows, so only q^-x and (q + 1)^-x count.
    big = x >= (200 if x.dtype == np.float32 else 1100)
    with np.errstate(all="ignore"):
      direct = m.power(q, -x) + m.where(q < 1, m.power(q + 1, -x), 0)
    return m.where(big & m.isfinite(x), direct, zeta(m.where(big, 2, x), q))

  def run(x, q):
    # XLA's zeta is wrong for q < 0 (TF sums from q on, x an integer there). With
    # f = q - floor(q), the negative terms are (-1)^x (zeta(x, 1 - f) - zeta(x, 1 - q));
    # zeta(x, 1 - f)'s first term is written (q - ceil(q))^-x, which is exact where 1 - f
    # rounds to 0 (q just below 0).
    neg = q < 0
    f = q - m.floor(q)
    sign = m.where(m.fmod(m.where(m.isfinite(x), x, 0), 2) == 0, 1, -1).astype(x.dtype)
    safe = lambda v: m.where(neg & (f > 0), v, 1)
    with np.errstate(all="ignore"):
      first = m.power(q - m.ceil(q), -x)
    below = first + sign * (positive_q(x, safe(2 - f)) - positive_q(x, safe(1 - q))) + (
        positive_q(x, safe(f)))
    return m.where(neg, below, positive_q(x, m.where(neg, 1, q)))
  return run


_zeta_jnp = _zeta_sum(jnp, jax.lax.zeta)
_zeta_np = _zeta_fix(np, _zeta_sum(np, sps.zeta))


def _polygamma_fix(m, polygamma):
  # NaN unless a is a non-negative integer, as in TF.
  def run(a, x):
    return _nan_where(m, (m.floor(a) != a) | (a < 0), polygamma(a, x))
  return run


def _np_polygamma(a, x):
  n1 = np.where(a >= 1, a, 1) + 1
  sign = np.where(np.fmod(np.where(np.isfinite(n1), n1, 0), 2) == 0, 1, -1)
  with np.errstate(all="ignore"):
    higher = sign * sps.gamma(n1) * _zeta_np(n1, x)
  return np.where(a == 0, _np_digamma(x), higher)


_FACTORIALS = np.array([float(math.factorial(k)) for k in range(171)])  # 0! to 170!


def _polygamma_jnp(a, x):
  # TF: digamma(x) for a == 0, else (-1)^(a+1) a! zeta(a + 1, x), a + 1 rounded to the
  # dtype (with _zeta_jnp, right for x < 0, where XLA's polygamma is not).
  n1 = jnp.where(a >= 1, a, 1) + 1
  sign = jnp.where(jnp.fmod(jnp.where(jnp.isfinite(n1), n1, 0), 2) == 0, 1, -1).astype(x.dtype)
  with np.errstate(over="ignore"):  # inf from 35! on in float32
    table = _FACTORIALS.astype(x.dtype)
  factorial = jnp.where(n1 > 171, np.inf, jnp.asarray(table)[
      jnp.clip(jnp.nan_to_num(n1) - 1, 0, 170).astype(jnp.int32)])
  higher = sign * factorial * _zeta_fix(jnp, _zeta_jnp)(n1, x)
  return jnp.where(a == 0, jax.lax.digamma(x), higher)


# TF's gradients: Zeta -x zeta(x + 1, q) for q (none for x), Polygamma
# polygamma(a + 1, x) for x (none for a).
_zeta = _with_grad(_zeta_fix(jnp, _zeta_jnp),
                   (None, lambda x, q, y: -x * _zeta_fix(jnp, _zeta_jnp)(x + 1, q)))
_polygamma = _with_grad(_polygamma_fix(jnp, _polygamma_jnp),
                        (None, lambda a, x, y: _polygamma_fix(jnp, _polygamma_jnp)(a + 1, x)))
_register("Zeta", _F32_64, _zeta_np, _zeta)
_register("Polygamma", _F32_64, _polygamma_fix(np, _np_polygamma), _polygamma)


def _betainc_fix(m, betainc):
  # TF's Eigen betainc: NaN for a <= 0, b <= 0 or x outside [0, 1] (or NaN); otherwise 0
  # at x == 0 and 1 at x == 1, even for a NaN a or b.
  def run(a, b, x):
    y = betainc(a, b, x)
    y = m.where(x == 0, m.zeros_like(y), m.where(x == 1, m.ones_like(y), y))
    nan_ab = (m.isnan(a) | m.isnan(b)) & (x != 0) & (x != 1)
    return _nan_where(m, (a <= 0) | (b <= 0) | (x < 0) | (x > 1) | m.isnan(x) | nan_ab, y)
  return run


def _betainc_dx(a, b, x, y):
  # TF: exp(xlog1py(b - 1, -x) + xlogy(a - 1, x) - log(B(a, b))).
  log_beta = jax.lax.lgamma(a) + jax.lax.lgamma(b) - jax.lax.lgamma(a + b)
  return jnp.exp(_xlog1py_jnp(b - 1, -x) + _xlogy_jnp(a - 1, x) - log_beta)


_betainc_jnp = _with_grad(_betainc_fix(jnp, jax.lax.betainc), (None, None, _betainc_dx))
_betainc_np = _betainc_fix(np, sps.betainc)


@lowering("Betainc", attrs={"T": _F32_64})
def betainc(node):
  def run(a, b, x):
    shapes = {tuple(np.shape(v)) for v in (a, b, x) if np.ndim(v)}
    if len(shapes) > 1:
      raise ValueError(f"Betainc: a, b and x must have one shape or be scalars, got "
                       f"{[list(np.shape(v)) for v in (a, b, x)]}")
    if is_static(a, b, x):
      return _np_up(_betainc_np, a, b, x)
    return _betainc_jnp(*jnp.broadcast_arrays(a, b, x))
  return run


LOWERINGS.append(betainc)

# Bessel functions I0, I1, K0, K1 (and the exponentially scaled ones) ---------------------


def _fit(fn, lo, hi, deg=20):
  """Chebyshev coefficients of `fn` on [lo, hi]: a least-squares fit to SciPy's values at
  many points (which averages out their rounding). The intervals below reach a little
  beyond where they are used: fits are least accurate at the ends."""
  n = 8 * deg
  t = np.cos(np.pi * (np.arange(n) + 0.5) / n)  # inside (-1, 1): no pole at the ends
  with np.errstate(all="ignore"):
    return chebyshev.chebfit(t, fn(lo + (t + 1) * (hi - lo) / 2), deg), lo, hi


def _cheb(fit, v):
  """The fitted series at `v` (Clenshaw's recurrence in v's dtype)."""
  c, lo, hi = fit
  t = (v - (lo + hi) / 2) * (2 / (hi - lo))
  b1, b2 = jnp.zeros_like(t), jnp.zeros_like(t)
  for ck in c[:0:-1]:
    b1, b2 = 2 * t * b1 - b2 + ck.astype(t.dtype), b1
  return t * b1 - b2 + c[0].astype(t.dtype)


_sqrt = np.sqrt
# K0(x) = A(x^2) - log(x / 2) I0(x) and K1(x) = log(x / 2) I1(x) + B(x^2) / x for x <= 2;
# K0e(x) = C(8 / x) / sqrt(x) and K1e(x) = D(8 / x) / sqrt(x) for x > 2 (as in Cephes).
_K0_SMALL = _fit(lambda t: sps.k0(_sqrt(t)) + np.log(_sqrt(t) / 2) * sps.i0(_sqrt(t)), 0,
                 4.5, 12)
_K1_SMALL = _fit(lambda t: _sqrt(t) * (sps.k1(_sqrt(t)) - np.log(_sqrt(t) / 2)
                                       * sps.i1(_sqrt(t))), 0, 4.5, 12)
_K0_LARGE = _fit(lambda u: sps.k0e(8 / u) * _sqrt(8 / u), 0, 4.5)
_K1_LARGE = _fit(lambda u: sps.k1e(8 / u) * _sqrt(8 / u), 0, 4.5)


def _k(order, scaled):
  small, large = (_K0_SMALL, _K0_LARGE) if order == 0 else (_K1_SMALL, _K1_LARGE)
  i = jss.i0 if order == 0 else jss.i1

  def run(x):
    # K is NaN for x < 0 and +inf at 0, as in TF.
    xs = jnp.where(x > 2, jnp.ones_like(x), x)
    log_i = jnp.log(xs / 2) * i(xs)
    if order == 0:
      lo = _cheb(small, xs * xs) - log_i
    else:
      lo = log_i + _cheb(small, xs * xs) / xs
    if scaled:
      lo = lo * jnp.exp(xs)
    xl = jnp.where(x > 2, x, jnp.full_like(x, 4))
    hi = _cheb(large, 8 / xl) / jnp.sqrt(xl)
    if not scaled:
      hi = hi * jnp.exp(-xl)
    # +inf for x <= 0, as in TF (SciPy: NaN below 0).
    return jnp.where(x <= 0, jnp.full_like(x, jnp.inf), jnp.where(x > 2, hi, lo))
  return run


_k0, _k1, _k0e, _k1e = _k(0, False), _k(1, False), _k(0, True), _k(1, True)


def _np_k(fn, order):
  # +inf for x <= 0; below twice the smallest normal number, x / 2 flushes to 0 in TF's
  # (and XLA's) log(x / 2): +inf for K0, NaN for K1.
  def run(x):
    tiny = np.finfo(x.dtype).tiny
    y = np.where(x <= 0, np.inf, fn(x))
    return np.where((x > 0) & (x < 2 * tiny), np.inf if order == 0 else np.nan, y)
  return run


def _i1_dx(x, y):
  return jnp.where(x == 0, jnp.ones_like(x), jss.i0(x) - y / x)


def _i1e_dx(x, y):
  return jnp.where(x == 0, jnp.full_like(x, 0.5), jss.i0e(x) - y * (jnp.sign(x) + 1 / x))


def _register_unary(types, rows) -> None:
  """Registers each (op, NumPy function, JAX function, derivative d(x, y)) row."""
  for op, np_fn, jnp_fn, d in rows:
    _register(op, types, np_fn, _with_grad(jnp_fn, (d,)))


_register_unary(_F16_32_64, [
    ("BesselI0", sps.i0, jss.i0, lambda x, y: jss.i1(x)),
    ("BesselI0e", sps.i0e, jss.i0e, lambda x, y: jss.i1e(x) - jnp.sign(x) * y),
    ("BesselI1", sps.i1, jss.i1, _i1_dx),
    ("BesselI1e", sps.i1e, jss.i1e, _i1e_dx),
    # TF's gradients: K0 -k1, K0e y - k1e, K1 -k0 - y / x, K1e y (1 - 1 / x) - k0e.
    ("BesselK0", _np_k(sps.k0, 0), _k0, lambda x, y: -_k1(x)),
    ("BesselK0e", _np_k(sps.k0e, 0), _k0e, lambda x, y: y - _k1e(x)),
    ("BesselK1", _np_k(sps.k1, 1), _k1, lambda x, y: -_k0(x) - y / x),
    ("BesselK1e", _np_k(sps.k1e, 1), _k1e, lambda x, y: y * (1 - 1 / x) - _k0e(x)),
])


# Bessel functions J0, J1, Y0, Y1 -------------------------------------------------------
# For x <= 5: J0 = A0(x^2), J1 = x A1(x^2), Y0 = 2/pi J0 log(x) + B0(x^2),
# Y1 = 2/pi (J1 log(x) - 1/x) + x B1(x^2). For x > 5 (u = 25 / x^2), with s = sqrt(2/(pi x)):
# float64 as Cephes, J = s (P(u) cos(xn) - Q(u) sin(xn)), Y = s (P sin(xn) + Q cos(xn)),
# xn = x - pi/4 (3 pi/4 for order 1) rounded once; float32 as Cephes' float version,
# J = s M(u) cos(x + phi(u)), Y = s M sin(x + phi), x + phi rounded once.


def _x_of(t):
  return np.sqrt(t)


def _jy(order):
  j, y = (sps.j0, sps.y0) if order == 0 else (sps.j1, sps.y1)
  shift = (0.25 if order == 0 else 0.75) * np.pi

  def pq(u):
    x = 5 / np.sqrt(u)
    xn = x - shift
    jx, yx = j(x) / np.sqrt(2 / (np.pi * x)), y(x) / np.sqrt(2 / (np.pi * x))
    return jx * np.cos(xn) + yx * np.sin(xn), (yx * np.cos(xn) - jx * np.sin(xn)) * x, x, jx, yx

  if order == 0:
    small_j = _fit(lambda t: j(_x_of(t)), 0, 28)
    small_y = _fit(lambda t: y(_x_of(t)) - 2 / np.pi * j(_x_of(t)) * np.log(_x_of(t)), 0, 28)
  else:
    small_j = _fit(lambda t: j(_x_of(t)) / _x_of(t), 0, 28)
    small_y = _fit(lambda t: (y(_x_of(t)) - 2 / np.pi * (j(_x_of(t)) * np.log(_x_of(t))
                                                         - 1 / _x_of(t))) / _x_of(t), 0, 28)
  p = _fit(lambda u: pq(u)[0], 0, 1.15)
  xq = _fit(lambda u: pq(u)[1], 0, 1.15)  # x Q(u)
  m = _fit(lambda u: np.hypot(pq(u)[3], pq(u)[4]), 0, 1.15)
  # x (phi + shift): phi is the phase of J + iY minus x (near -shift).
  xphi = _fit(lambda u: (np.unwrap(np.arctan2(pq(u)[4], pq(u)[3]) - pq(u)[2]) % (2 * np.pi)
                         - 2 * np.pi + shift) * pq(u)[2], 0, 1.15)
  return small_j, small_y, p, xq, m, xphi, shift


_JY0, _JY1 = _jy(0), _jy(1)


# TF's J1 kernels give 0 below these |x| (an intermediate flushed to zero), so its
# gradient there, j0 - y / x, is 1 (found by bisecting TF's float32 and float64 outputs).
_J1_ZERO_BELOW = {np.dtype(np.float32): float.fromhex("0x1.d5d2b4p-122"),
                  np.dtype(np.float64): float.fromhex("0x1.694fdcf69cfdap-1012")}


def _bessel_jy(order, kind):
  small_j, small_y, p, xq, m, xphi, shift = _JY0 if order == 0 else _JY1

  def small(x):
    t = x * x
    j = _cheb(small_j, t) if order == 0 else x * _cheb(small_j, t)
    if kind == "j":
      return j
    log_x = jnp.log(x)
    if order == 0:
      return (2 / np.pi) * j * log_x + _cheb(small_y, t)
    return (2 / np.pi) * (j * log_x - 1 / x) + x * _cheb(small_y, t)

  def large(x):
    u = 25 / (x * x)
    s = jnp.sqrt((2 / np.pi) / x)
    if x.dtype == jnp.float64:
      xn = x - shift
      pu, qu = _cheb(p, u), _cheb(xq, u) / x
      c, sn = jnp.cos(xn), jnp.sin(xn)
      return s * (pu * c - qu * sn) if kind == "j" else s * (pu * sn + qu * c)
    phase = x + (_cheb(xphi, u) / x - shift)
    trig = jnp.cos if kind == "j" else jnp.sin
    return s * _cheb(m, u) * trig(phase)

  def run(x):
    a = jnp.abs(x) if kind == "j" else x
    big = a > 5
    out = jnp.where(big, large(jnp.where(big, a, jnp.full_like(a, 16))),
                    small(jnp.where(big, jnp.ones_like(a), a)))
    out = jnp.where(jnp.isinf(x), jnp.full_like(x, jnp.nan), out)  # NaN at +-inf, as TF
    if kind == "j":
      if order == 0:
        return out
      out = jnp.where(a < _J1_ZERO_BELOW[np.dtype(x.dtype)], jnp.zeros_like(out), out)
      return jnp.where(x < 0, -out, out)
    # Y: -inf at and below 0, as TF; TF's float32 Y1(0) is NaN (0 * log(0) - 1/0).
    out = jnp.where(x <= 0, jnp.full_like(x, -jnp.inf), out)
    if order == 1 and x.dtype == jnp.float32:
      out = jnp.where(x == 0, jnp.full_like(x, jnp.nan), out)
    return out
  return run


_j0, _j1, _y0, _y1 = (_bessel_jy(0, "j"), _bessel_jy(1, "j"), _bessel_jy(0, "y"),
                      _bessel_jy(1, "y"))


def _np_j(fn):
  return lambda x: np.where(np.isinf(x), np.nan, fn(x))


def _np_j1(x):
  out = _np_j(sps.j1)(x)
  below = _J1_ZERO_BELOW.get(np.dtype(x.dtype))
  return out if below is None else np.where(np.abs(x) < below, 0 * out, out)


def _np_y(fn):
  return lambda x: np.where(x <= 0, -np.inf, _np_j(fn)(x))


_register_unary(_F16_32_64, [
    # TF's gradients: J0 -j1, J1 j0 - y / x (1/2 at 0), Y0 -y1, Y1 y0 - y / x.
    ("BesselJ0", _np_j(sps.j0), _j0, lambda x, y: -_j1(x)),
    ("BesselJ1", _np_j1, _j1,
     lambda x, y: jnp.where(x == 0, jnp.full_like(x, 0.5), _j0(x) - y / x)),
    ("BesselY0", _np_y(sps.y0), _y0, lambda x, y: -_y1(x)),
    ("BesselY1", lambda x: np.where((x == 0) & (x.dtype == np.float32), np.nan,
                                    _np_y(sps.y1)(x)), _y1, lambda x, y: _y0(x) - y / x),
])


# Dawson's integral, exponential integral, Fresnel integrals, Spence's function ------------


def _np_fresnel(part):
  return lambda x: np.where(np.abs(x) > 36974, np.sign(x) * 0.5, sps.fresnel(x)[part])


def _fresnel(part):
  # TF's kernel is +-1/2 beyond |x| = 36974 (its asymptotic series ends there).
  def run(x):
    return jnp.where(jnp.abs(x) > 36974, jnp.sign(x) * 0.5, jss.fresnel(x)[part])
  return run


def _expint(x):
  # TF: NaN for x < 0 (Ei is defined there, but TF's kernel has no branch for it), -inf
  # at 0 (JAX: NaN).
  # JAX's expi evaluates every branch: its while loop for x < 0 does not end for huge
  # |x|, so only x >= 0 reaches it.
  safe = jnp.where(x < 0, jnp.ones_like(x), x)
  y = jnp.where(x == 0, jnp.full_like(x, -jnp.inf), jss.expi(safe))
  return jnp.where(x < 0, jnp.full_like(x, jnp.nan), y)


def _spence_dx(x, y):
  return jnp.where(x == 1, -jnp.ones_like(x), jnp.log(x) / (1 - x))


def _np_flushes_1_over(x):
  # TF's Expint and Spence kernels compute 1 / x, which flushes to 0 beyond 1 / tiny (and
  # at inf), giving NaN (as XLA's do on the traced path; SciPy's are finite).
  return np.abs(x) > 1 / np.finfo(x.dtype).tiny


def _half_pi_x2(x):
  return (np.pi / 2) * jnp.square(x)


_register_unary(_F32_64, [
    # TF's gradients: Dawsn 1 - 2 x y, Expint exp(x) / x, FresnelCos cos(pi/2 x^2),
    # FresnelSin sin(pi/2 x^2), Spence log(x) / (1 - x) (-1 at 1).
    ("Dawsn", sps.dawsn, jss.dawsn, lambda x, y: 1 - 2 * x * y),
    ("Expint", lambda x: np.where((x < 0) | _np_flushes_1_over(x), np.nan, sps.expi(x)),
     _expint,
     lambda x, y: jnp.exp(x) / x),
    ("FresnelCos", _np_fresnel(1), _fresnel(1), lambda x, y: jnp.cos(_half_pi_x2(x))),
    ("FresnelSin", _np_fresnel(0), _fresnel(0), lambda x, y: jnp.sin(_half_pi_x2(x))),
    ("Spence", lambda x: np.where(_np_flushes_1_over(x), np.nan, sps.spence(x)), jss.spence,
     _spence_dx),
])
