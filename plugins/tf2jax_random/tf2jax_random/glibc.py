"""TensorFlow's Box-Muller transform with glibc's `logf`/`sincosf` (float) and
`log`/`sincos` (double), which TF's CPU kernels call.

float32 (also the base of float16/bfloat16): glibc >= 2.28 computes `logf` and `sincosf`
in double precision (ARM's optimized-routines algorithms) and rounds once to float. This
module ports both, with glibc's own tables (read from glibc 2.36's libm), to
NumPy/`jax.numpy` float64. The port was compared with the libm of the machine TF runs on
over *every* input Box-Muller can give them (all 2**23 values of `u1` and of `theta`):
identical bits, with or without FMA contraction of the double arithmetic (see
`tools/verify_glibc_port.py`). In JAX it runs in the graph when x64 is on; without x64
(no float64 in JAX) the same NumPy code runs through `jax.pure_callback`.

float64: glibc's double `log` and `sincos` (IBM/ARM code with double-double steps) are
not ported; the converted function calls the process's libm through ctypes in a host
callback, one value at a time (about 1 microsecond per normal). float64 needs x64 anyway.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import math

import jax
import jax.numpy as jnp
import numpy as np

from tf2jax_random.philox import x64_enabled

_H = float.fromhex

# glibc sysdeps/ieee754/flt-32/e_logf_data.c (LOGF_TABLE_BITS = 4): (1/c, log(c)).
_LOGF_INVC = np.array([_H(v) for v in """
  0x1.661ec79f8f3bep+0 0x1.571ed4aaf883dp+0 0x1.49539f0f010b0p+0 0x1.3c995b0b80385p+0
  0x1.30d190c8864a5p+0 0x1.25e227b0b8ea0p+0 0x1.1bb4a4a1a343fp+0 0x1.12358f08ae5bap+0
  0x1.0953f419900a7p+0 0x1.0p+0 0x1.e608cfd9a47acp-1 0x1.ca4b31f026aa0p-1
  0x1.b2036576afce6p-1 0x1.9c2d163a1aa2dp-1 0x1.886e6037841edp-1 0x1.767dcf5534862p-1
  """.split()])
_LOGF_LOGC = np.array([_H(v) for v in """
  -0x1.57bf7808caadep-2 -0x1.2bef0a7c06ddbp-2 -0x1.01eae7f513a67p-2 -0x1.b31d8a68224e9p-3
  -0x1.6574f0ac07758p-3 -0x1.1aa2bc79c8100p-3 -0x1.a4e76ce8c0e5ep-4 -0x1.1973c5a611cccp-4
  -0x1.252f438e10c1ep-5 0x0p+0 0x1.aa5aa5df25984p-5 0x1.c5e53aa362eb4p-4
  0x1.526e57720db08p-3 0x1.bc2860d224770p-3 0x1.1058bc8a07ee1p-2 0x1.4043057b6ee09p-2
  """.split()])
_LN2 = _H("0x1.62e42fefa39efp-1")
_LOGF_A = (_H("-0x1.00ea348b88334p-2"), _H("0x1.5575b0be00b6ap-2"), _H("-0x1.ffffef20a4123p-2"))

# glibc sysdeps/ieee754/flt-32/s_sincosf_data.c (x86-64: TOINT_INTRINSICS = 0).
_HPI_INV = _H("0x1.45f306dc9c883p+23")  # 2/pi * 2**24
_HPI = _H("0x1.921fb54442d18p+0")  # pi/2
_SINCOSF = {  # table 0; table 1 negates the cosine coefficients
    "c0": 1.0, "c1": _H("-0x1.ffffffd0c621cp-2"), "c2": _H("0x1.55553e1068f19p-5"),
    "c3": _H("-0x1.6c087e89a359dp-10"), "c4": _H("0x1.99343027bf8c3p-16"),
    "s1": _H("-0x1.555545995a603p-3"), "s2": _H("0x1.1107605230bc4p-7"),
    "s3": _H("-0x1.994eb3774cf24p-13"),
}
_TWO_PI = 2.0 * math.pi  # 2.0f * M_PI in TF: a double


def _bitcast(xp, x, dtype):
  if xp is np:
    return np.asarray(x).view(dtype)
  return jax.lax.bitcast_convert_type(x, dtype)


def logf(xp, x):
  """glibc's logf for normal positive float32 `x` (the values Box-Muller passes)."""
  ix = _bitcast(xp, x, np.uint32)
  with np.errstate(over="ignore"):
    tmp = ix - np.uint32(0x3F330000)
  i = ((tmp >> np.uint32(19)) & np.uint32(15)).astype(np.int32)
  k = _bitcast(xp, tmp, np.int32) >> np.int32(23)
  iz = ix - (tmp & np.uint32(0x1FF << 23))
  invc = xp.asarray(_LOGF_INVC)[i]
  logc = xp.asarray(_LOGF_LOGC)[i]
  z = _bitcast(xp, iz, np.float32).astype(np.float64)
  r = z * invc - 1.0
  y0 = logc + k.astype(np.float64) * _LN2
  r2 = r * r
  y = _LOGF_A[1] * r + _LOGF_A[2]
  y = _LOGF_A[0] * r2 + y
  y = y * r2 + (y0 + r)
  return xp.where(ix == np.uint32(0x3F800000), np.float32(0), y.astype(np.float32))


def _sincosf_poly(xp, x, x2, table1, odd):
  def c(name):
    v = _SINCOSF[name]
    return xp.where(table1, -v, v) if name[0] == "c" else v
  x4 = x2 * x2
  x3 = x2 * x
  c2 = c("c3") + x2 * c("c4")
  s1 = c("s2") + x2 * c("s3")
  c1 = c("c0") + x2 * c("c1")
  x5 = x3 * x2
  x6 = x4 * x2
  s = x + x3 * c("s1")
  cc = c1 + x4 * c("c2")
  sin = (s + x5 * s1).astype(np.float32)
  cos = (cc + x6 * c2).astype(np.float32)
  return xp.where(odd, cos, sin), xp.where(odd, sin, cos)


def sincosf(xp, y):
  """glibc's sincosf for float32 `y` in [0, 120) (Box-Muller's angles are in [0, 2pi))."""
  x = y.astype(np.float64)
  top = (_bitcast(xp, y, np.uint32) >> np.uint32(20)) & np.uint32(0x7FF)
  tiny = top < np.uint32(0x398)  # |y| < 2**-12: sin = y, cos = 1
  small = top < np.uint32(0x3F4)  # |y| < 0.75 (abstop12 of pi/4): no reduction
  # reduce_fast: the quadrant from the 2**24-scaled product, truncated to int32. With
  # n = 0 (small |y|) the reduced branch is exactly the unreduced one: x - 0 * pi/2 = x,
  # sign +1, table 0, sin and cos not swapped.
  n = ((x * _HPI_INV).astype(np.int32) + np.int32(0x800000)) >> np.int32(24)
  n = xp.where(small, np.int32(0), n)
  xr = x - n.astype(np.float64) * _HPI
  q = n & np.int32(3)
  sign = xp.where((q == 1) | (q == 2), -1.0, 1.0)
  sin, cos = _sincosf_poly(xp, xr * sign, xr * xr, (n & 2) != 0, (n & 1) != 0)
  sin = xp.where(tiny, y, sin)
  cos = xp.where(tiny, np.float32(1), cos)
  return sin, cos


def uint32_to_float(xp, w):
  """TF's Uint32ToFloat: the low 23 bits as a float32 in [0, 1)."""
  bits = (w & np.uint32(0x7FFFFF)) | np.uint32(0x3F800000)
  return _bitcast(xp, bits, np.float32) - np.float32(1)


def box_muller_f32_port(xp, w0, w1):
  """TF's BoxMullerFloat on word arrays, in `xp` float64 arithmetic (exact)."""
  u1 = uint32_to_float(xp, w0)
  u1 = xp.where(u1 < np.float32(1e-7), np.float32(1e-7), u1)
  theta = (_TWO_PI * uint32_to_float(xp, w1).astype(np.float64)).astype(np.float32)
  t = np.float32(-2.0) * logf(xp, u1)  # exact: a power of two times a float
  r = xp.sqrt(t.astype(np.float64)).astype(np.float32)  # = sqrtf (correctly rounded)
  sin, cos = sincosf(xp, theta)
  r64 = r.astype(np.float64)  # float products are exact in double, rounded once
  return ((sin.astype(np.float64) * r64).astype(np.float32),
          (cos.astype(np.float64) * r64).astype(np.float32))


def box_muller_f32(w0, w1):
  """(sin, cos) float32 normals of TF's BoxMullerFloat for uint32 word arrays."""
  if isinstance(w0, np.ndarray) and isinstance(w1, np.ndarray):
    return box_muller_f32_port(np, w0, w1)
  if x64_enabled():
    return box_muller_f32_port(jnp, w0, w1)
  w0, w1 = jnp.broadcast_arrays(w0, w1)
  out = jax.ShapeDtypeStruct(w0.shape, jnp.float32)
  return jax.pure_callback(_box_muller_f32_host, (out, out), w0, w1,
                           vmap_method="broadcast_all")


def _box_muller_f32_host(w0, w1):
  with np.errstate(all="ignore"):
    a, b = box_muller_f32_port(np, np.asarray(w0, np.uint32), np.asarray(w1, np.uint32))
  return a, b


# float64: the process's libm --------------------------------------------------------------


@functools.cache
def _libm():
  name = ctypes.util.find_library("m") or "libm.so.6"
  lib = ctypes.CDLL(name)
  lib.log.restype = ctypes.c_double
  lib.log.argtypes = [ctypes.c_double]
  lib.sincos.restype = None
  lib.sincos.argtypes = [ctypes.c_double, ctypes.POINTER(ctypes.c_double),
                         ctypes.POINTER(ctypes.c_double)]
  return lib


def uint64_to_double(xp, hi_word, lo_word):
  """TF's Uint64ToDouble(x0, x1): the first word gives the high 20 mantissa bits."""
  hi = (hi_word & np.uint32(0xFFFFF)) | np.uint32(0x3FF00000)
  if xp is np:
    bits = (hi.astype(np.uint64) << np.uint64(32)) | lo_word.astype(np.uint64)
    return bits.view(np.float64) - 1.0
  bits = (hi.astype(jnp.uint64) << jnp.uint64(32)) | lo_word.astype(jnp.uint64)
  return jax.lax.bitcast_convert_type(bits, jnp.float64) - 1.0


def box_muller_f64_host(w0, w1, w2, w3):
  """TF's BoxMullerDouble with libm's log and sincos (NumPy in, NumPy out)."""
  w0, w1, w2, w3 = (np.asarray(w, np.uint32) for w in (w0, w1, w2, w3))
  u1 = uint64_to_double(np, w0, w1)
  u1 = np.where(u1 < 1e-7, 1e-7, u1)
  v1 = _TWO_PI * uint64_to_double(np, w2, w3)
  lib = _libm()
  log = lib.log
  logs = np.array([log(v) for v in u1.ravel().tolist()], np.float64).reshape(u1.shape)
  u2 = np.sqrt(-2.0 * logs)
  s_val, c_val = ctypes.c_double(), ctypes.c_double()
  ps, pc = ctypes.byref(s_val), ctypes.byref(c_val)
  sin = np.empty(v1.size)
  cos = np.empty(v1.size)
  sincos = lib.sincos
  for i, v in enumerate(v1.ravel().tolist()):
    sincos(v, ps, pc)
    sin[i] = s_val.value
    cos[i] = c_val.value
  return sin.reshape(v1.shape) * u2, cos.reshape(v1.shape) * u2


def _box_muller_f64_host_words(w0, w1, w2, w3):
  """The float64 normals as (low, high) uint32 words: a callback's float64 results are
  canonicalized by JAX in the thread running it, where a `jax.enable_x64` context of
  the caller does not apply (it would see float32)."""
  out = []
  for v in box_muller_f64_host(w0, w1, w2, w3):
    words = np.ascontiguousarray(v, np.float64).view(np.uint64)
    out += [(words & np.uint64(0xFFFFFFFF)).astype(np.uint32),
            (words >> np.uint64(32)).astype(np.uint32)]
  return tuple(out)


def _f64_of_words(lo, hi):
  bits = lo.astype(jnp.uint64) | (hi.astype(jnp.uint64) << jnp.uint64(32))
  return jax.lax.bitcast_convert_type(bits, jnp.float64)


def box_muller_f64(w0, w1, w2, w3):
  """(sin, cos) float64 normals of TF's BoxMullerDouble for uint32 word arrays."""
  if all(isinstance(w, np.ndarray) for w in (w0, w1, w2, w3)):
    return box_muller_f64_host(w0, w1, w2, w3)
  w0, w1, w2, w3 = jnp.broadcast_arrays(w0, w1, w2, w3)
  out = jax.ShapeDtypeStruct(w0.shape, jnp.uint32)
  s_lo, s_hi, c_lo, c_hi = jax.pure_callback(
      _box_muller_f64_host_words, (out,) * 4, w0, w1, w2, w3, vmap_method="broadcast_all")
  return _f64_of_words(s_lo, s_hi), _f64_of_words(c_lo, c_hi)
