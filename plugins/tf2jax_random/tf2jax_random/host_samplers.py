"""TF's CPU samplers whose bits depend on double-precision libm calls, run on the host.

Gamma, Poisson and binomial are rejection samplers computed in double (log, log1p, exp,
pow, lgamma and the Box-Muller normal's log/sincos), and multinomial and shuffle read a
sequential stream of Philox words. To give TF's numbers bit for bit, they run here in
Python with the process's libm (the same glibc TF calls) and TF's control flow
(tensorflow/core/kernels/random_{binomial,poisson}_op.cc, stateless_random_gamma_op.cc,
multinomial_op.cc, random_shuffle_op.cc): at conversion time when every input is static,
else through `jax.pure_callback` (under `jit` and `vmap` too). The cost is Python speed,
tens of microseconds per sample (10-70 us measured on 2 busy cores).

Layout (gamma, Poisson, binomial): work item `o = param_index * samples_per_param +
sample_index` starts its own generator at `counter + skip * o` (TF's PhiloxRandom::Skip;
skip 256, or 42 for binomial inversion) and writes flat position `sample_index *
num_params + param_index`. Double uniforms and normals come two per Philox call and are
used second first.
"""

from __future__ import annotations

import bisect
import ctypes
import ctypes.util
import functools
import math
import struct

import jax
import jax.numpy as jnp
import ml_dtypes
import numpy as np

from tf2jax_core import is_static
from tf2jax_random import glibc
from tf2jax_random.philox import MUL0, MUL1, WEYL0, WEYL1

M32 = 0xFFFFFFFF
M128 = (1 << 128) - 1
TWO_PI = 2.0 * math.pi
RESERVED = 256      # Philox calls reserved per output (gamma, Poisson, binomial BTRS)
INVERSION = 42      # ... per output of binomial inversion
# Retries before a sampler gives up: TF's kernels would loop for ever on inputs such as a
# NaN Poisson rate; here they raise instead.
MAX_TRIES = 1 << 20


@functools.cache
def _libm():
  lib = ctypes.CDLL(ctypes.util.find_library("m") or "libm.so.6")
  for name, nargs in (("log", 1), ("log1p", 1), ("exp", 1), ("pow", 2), ("lgamma", 1)):
    fn = getattr(lib, name)
    fn.restype = ctypes.c_double
    fn.argtypes = [ctypes.c_double] * nargs
  for name in ("logf", "expf"):
    fn = getattr(lib, name)
    fn.restype = ctypes.c_float
    fn.argtypes = [ctypes.c_float]
  lib.sincos.restype = None
  lib.sincos.argtypes = [ctypes.c_double, ctypes.POINTER(ctypes.c_double),
                         ctypes.POINTER(ctypes.c_double)]
  return lib


# Philox on Python ints --------------------------------------------------------------------


def philox_block(counter: int, key: tuple[int, int]) -> tuple[int, int, int, int]:
  """Philox-4x32-10 of a 128-bit counter (an int) under key words (k0, k1)."""
  c0, c1, c2, c3 = counter & M32, (counter >> 32) & M32, (counter >> 64) & M32, counter >> 96
  k0, k1 = key
  for r in range(10):
    p0 = MUL0 * c0
    p1 = MUL1 * c2
    c0, c1, c2, c3 = ((p1 >> 32) ^ c1 ^ k0) & M32, p1 & M32, ((p0 >> 32) ^ c3 ^ k1) & M32, \
        p0 & M32
    if r < 9:
      k0 = (k0 + WEYL0) & M32
      k1 = (k1 + WEYL1) & M32
  return c0, c1, c2, c3


def tf_skip(counter: int, count: int) -> int:
  """PhiloxRandom::Skip(count): a 128-bit add whose carry out of word 0 is lost when the
  count's high word is 0xFFFFFFFF (TF increments it in 32 bits)."""
  w = [(counter >> (32 * i)) & M32 for i in range(4)]
  lo, hi = count & M32, (count >> 32) & M32
  w[0] = (w[0] + lo) & M32
  if w[0] < lo:
    hi = (hi + 1) & M32
  w[1] = (w[1] + hi) & M32
  if w[1] < hi:
    w[2] = (w[2] + 1) & M32
    if w[2] == 0:
      w[3] = (w[3] + 1) & M32
  return w[0] | w[1] << 32 | w[2] << 64 | w[3] << 96


class Stream:
  """One copy of TF's PhiloxRandom, read one 4-word call at a time."""

  __slots__ = ("key", "counter")

  def __init__(self, key, counter: int):
    self.key = key
    self.counter = counter

  def block(self):
    out = philox_block(self.counter, self.key)
    self.counter = (self.counter + 1) & M128
    return out


class Words:
  """SingleSampleAdapter: the stream's words one by one (SimplePhilox)."""

  __slots__ = ("stream", "buf")

  def __init__(self, stream: Stream):
    self.stream = stream
    self.buf: list[int] = []

  def __call__(self) -> int:
    if not self.buf:
      self.buf = list(self.stream.block())[::-1]
    return self.buf.pop()


def u64_to_double(x0: int, x1: int) -> float:
  """TF's Uint64ToDouble: x0 gives the high 20 mantissa bits, x1 the low 32."""
  bits = (((x0 & 0xFFFFF) | 0x3FF00000) << 32) | x1
  return struct.unpack("<d", struct.pack("<Q", bits))[0] - 1.0


class Draws:
  """TF's UNIFORM/normal macros of one work item: UniformDistribution<double> and
  NormalDistribution<double> give 2 values per Philox call, consumed second first."""

  __slots__ = ("stream", "uniforms", "normals")

  def __init__(self, stream: Stream):
    self.stream = stream
    self.uniforms: list[float] = []
    self.normals: list[float] = []

  def uniform(self) -> float:
    if not self.uniforms:
      w = self.stream.block()
      self.uniforms = [u64_to_double(w[0], w[1]), u64_to_double(w[2], w[3])]
    return self.uniforms.pop()

  def normal(self) -> float:
    if not self.normals:
      self.normals = normal_pair(self.stream.block())
    return self.normals.pop()


def normal_pair(w) -> list[float]:
  """TF's BoxMullerDouble of one Philox call: [sin, cos] times the radius (libm)."""
  lib = _libm()
  u1 = u64_to_double(w[0], w[1])
  u1 = 1e-7 if u1 < 1e-7 else u1
  theta = TWO_PI * u64_to_double(w[2], w[3])
  r = math.sqrt(-2.0 * lib.log(u1))
  s, c = ctypes.c_double(), ctypes.c_double()
  lib.sincos(theta, ctypes.byref(s), ctypes.byref(c))
  return [s.value * r, c.value * r]


def fdiv(a: float, b: float) -> float:
  """a / b with IEEE results for a zero divisor (C's, not Python's ZeroDivisionError)."""
  try:
    return a / b
  except ZeroDivisionError:
    if a == 0 or a != a:
      return math.nan
    return math.copysign(math.inf, a) * math.copysign(1.0, b)


def _floor(x: float) -> float:
  return float(math.floor(x)) if math.isfinite(x) else x


def _ceil(x: float) -> float:
  return float(math.ceil(x)) if math.isfinite(x) else x


def _too_many(what: str, value) -> ValueError:
  return ValueError(f"{what} sampler made {MAX_TRIES} attempts for parameter {value!r} "
                    "without accepting (TensorFlow's kernel would not terminate either).")


# Samplers of one work item --------------------------------------------------------------


def gamma_sample(d: Draws, alpha: float) -> float:
  """Marsaglia-Tsang, as TF's stateless gamma kernel (alpha 1: exponential)."""
  lib = _libm()
  if alpha == 1.0:
    return -lib.log1p(-d.uniform())
  below_one = alpha < 1
  dd = alpha + (2.0 / 3 if below_one else -1.0 / 3)
  c = 1.0 / 3 / math.sqrt(dd) if dd >= 0 else math.nan
  for _ in range(MAX_TRIES):
    x = d.normal()
    v = 1 + c * x
    if v <= 0:
      continue
    v = v * v * v
    u = d.uniform()
    if u < 1 - 0.0331 * (x * x) * (x * x) or (
        lib.log(u) < 0.5 * x * x + dd * (1 - v + lib.log(v))):
      res = dd * v
      if below_one:
        res *= lib.pow(d.uniform(), fdiv(1.0, alpha))
      return res
  raise _too_many("The gamma", alpha)


def poisson_sample(d: Draws, rate: float, highest: float) -> float:
  """Knuth below rate 10, else Hormann's transformed rejection (in double)."""
  lib = _libm()
  if math.isnan(rate):
    raise ValueError("A Poisson rate is NaN: TensorFlow's kernel does not terminate for it.")
  if rate < 10:
    limit = lib.exp(-rate)
    prod, x = 1.0, 0.0
    for _ in range(MAX_TRIES):
      prod *= d.uniform()
      if prod <= limit and x <= highest:
        return x
      x += 1
    raise _too_many("The Poisson", rate)
  if math.isinf(rate):
    return math.inf
  log_rate = lib.log(rate)
  b = 0.931 + 2.53 * math.sqrt(rate)
  a = -0.059 + 0.02483 * b
  inv_alpha = 1.1239 + 1.1328 / (b - 3.4)
  v_r = 0.9277 - 3.6224 / (b - 2)
  for _ in range(MAX_TRIES):
    u = d.uniform() - 0.5
    v = d.uniform()
    us = 0.5 - abs(u)
    k = _floor((fdiv(2 * a, us) + b) * u + rate + 0.43)
    if k > highest:
      continue
    if us >= 0.07 and v <= v_r:
      return k
    if k < 0 or (us < 0.013 and v > us):
      continue
    s = lib.log(v * inv_alpha / (fdiv(a, us * us) + b))
    t = -rate + k * log_rate - lib.lgamma(k + 1)
    if s <= t:
      return k
  raise _too_many("The Poisson", rate)


_STIRLING_TAIL = (0.0810614667953272, 0.0413406959554092, 0.0276779256849983,
                  0.02079067210376509, 0.0166446911898211, 0.0138761288230707,
                  0.0118967099458917, 0.0104112652619720, 0.00925546218271273,
                  0.00833056343336287)


def _tail(k: float) -> float:
  if k <= 9:
    return _STIRLING_TAIL[int(k)]
  kp1sq = (k + 1) * (k + 1)
  return (1.0 / 12 - (1.0 / 360 - 1.0 / 1260 / kp1sq) / kp1sq) / (k + 1)


def binomial_inversion(d: Draws, n: float, p: float) -> float:
  lib = _libm()
  total, num = 0.0, 0
  log_q = lib.log1p(-p)
  for _ in range(MAX_TRIES):
    total += _ceil(fdiv(lib.log(d.uniform()), log_q))
    if total > n:
      return num
    num += 1
  raise _too_many("The binomial", (n, p))


def binomial_btrs(d: Draws, n: float, p: float) -> float:
  """Hormann's BTRS, as TF computes it (a log where the paper has none)."""
  lib = _libm()
  log = lib.log
  sd = math.sqrt(n * p * (1 - p))
  b = 1.15 + 2.53 * sd
  a = -0.0873 + 0.0248 * b + 0.01 * p
  c = n * p + 0.5
  v_r = 0.92 - 4.2 / b
  r = p / (1 - p)
  alpha = (2.83 + 5.1 / b) * sd
  m = math.floor((n + 1) * p)
  for _ in range(MAX_TRIES):
    u = d.uniform()
    v = d.uniform()
    u = u - 0.5
    us = 0.5 - abs(u)
    k = _floor((fdiv(2 * a, us) + b) * u + c)
    if us >= 0.07 and v <= v_r:
      return k
    if k < 0 or k > n:
      continue
    v = log(v * alpha / (fdiv(a, us * us) + b))
    bound = ((m + 0.5) * log((m + 1) / (r * (n - m + 1)))
             + (n + 1) * log((n - m + 1) / (n - k + 1))
             + (k + 0.5) * log(r * (n - k + 1) / (k + 1))
             + _tail(m) + _tail(n - m) - _tail(k) - _tail(n - k))
    if v <= bound:
      return k
  raise _too_many("The binomial", (n, p))


# Whole ops on NumPy values ----------------------------------------------------------------


def _counter_int(counter_words) -> int:
  return sum(int(w) << (32 * i) for i, w in enumerate(counter_words))


def _key_tuple(key_words) -> tuple[int, int]:
  return int(key_words[0]), int(key_words[1])


def _layout(shape, num_params: int):
  num = math.prod(shape)
  per = num // num_params if num_params else 0
  return num, per


def _flush(x: np.ndarray) -> np.ndarray:
  """Subnormals to (signed) zero: TF's kernels run with the CPU's flush-to-zero mode."""
  tiny = np.finfo(x.dtype).tiny
  return np.where(np.abs(x) < tiny, np.copysign(np.zeros((), x.dtype), x), x)


def _cast(values: list[float], dtype) -> np.ndarray:
  """static_cast<T>(double) under flush-to-zero: 16-bit floats round through float32,
  as Eigen's do."""
  dtype = np.dtype(dtype)
  out = np.asarray(values, np.float64)
  if dtype.kind == "f" and dtype.itemsize == 8:
    return _flush(out)
  if dtype.kind in "iu":
    info = np.iinfo(dtype)
    # x86 converts NaN and out-of-range doubles to the integer "indefinite" value.
    with np.errstate(invalid="ignore"):
      bad = ~np.isfinite(out) | (out < info.min) | (out > info.max)
    return np.where(bad, info.min, np.where(bad, 0.0, out).astype(dtype)).astype(dtype)
  return _flush(out.astype(np.float32)).astype(dtype)


def gamma(key_words, counter_words, shape, alpha, dtype) -> np.ndarray:
  key, base = _key_tuple(key_words), _counter_int(counter_words)
  alpha = np.asarray(alpha).astype(np.float64).reshape(-1)
  num, per = _layout(shape, alpha.size)
  out = [0.0] * num
  for o in range(num):
    p, s = divmod(o, per)
    out[s * alpha.size + p] = gamma_sample(Draws(Stream(key, tf_skip(base, RESERVED * o))),
                                           float(alpha[p]))
  return _cast(out, dtype).reshape(shape)


def _highest(dtype) -> float:
  dtype = np.dtype(dtype)
  if dtype.kind in "iu":
    return float(np.iinfo(dtype).max)
  return float(ml_dtypes.finfo(dtype).max)


def poisson(key_words, counter_words, shape, rate, dtype) -> np.ndarray:
  key, base = _key_tuple(key_words), _counter_int(counter_words)
  rate = np.asarray(rate).astype(np.float64).reshape(-1)
  num, per = _layout(shape, rate.size)
  highest = _highest(dtype)
  out = [0.0] * num
  for o in range(num):
    p, s = divmod(o, per)
    out[s * rate.size + p] = poisson_sample(
        Draws(Stream(key, tf_skip(base, RESERVED * o))), float(rate[p]), highest)
  if np.dtype(dtype).kind in "iu":
    # An infinite rate gives NumTraits<int>::infinity(), which is 0.
    out = [0.0 if v == math.inf else v for v in out]
  return _cast(out, dtype).reshape(shape)


def binomial(key_words, counter_words, shape, counts, probs, dtype) -> np.ndarray:
  """`counts` and `probs` already broadcast to the batch shape (the trailing dims of
  `shape`), in their input dtype T: TF computes `1 - p` and `n * p >= 10` in T."""
  key, base = _key_tuple(key_words), _counter_int(counter_words)
  counts, probs = np.asarray(counts).reshape(-1), np.asarray(probs).reshape(-1)
  num, per = _layout(shape, counts.size)
  t = counts.dtype.type
  out = [0.0] * num
  for o in range(num):
    b, s = divmod(o, per)
    count, prob = counts[b], probs[b]
    n = float(count)
    if not math.isfinite(n) and not (n <= 0.0 or prob <= 0):
      raise ValueError(f"A binomial count is {n}: TensorFlow's kernel does not terminate "
                       "for it.")
    if n <= 0.0 or prob <= t(0):
      value = 0.0
    elif prob >= t(1):
      value = n
    elif prob <= t(0.5) or prob > t(0.5):
      flip = prob > t(0.5)
      q = t(1) - prob if flip else prob
      with np.errstate(over="ignore"):
        large = count * q >= t(10)
      if large:
        draws = Draws(Stream(key, tf_skip(base, RESERVED * o)))
        value = binomial_btrs(draws, n, float(q))
      else:
        draws = Draws(Stream(key, tf_skip(base, INVERSION * o)))
        value = binomial_inversion(draws, n, float(q))
      if flip:
        value = n - value
    else:  # NaN probability
      value = math.nan
    out[s * counts.size + b] = value
  return _cast(out, dtype).reshape(shape)


def multinomial(key_words, counter_words, logits, num_samples: int, dtype) -> np.ndarray:
  """One sequential stream over all rows: TF's single-shard result (see stateless.py)."""
  words = Words(Stream(_key_tuple(key_words), _counter_int(counter_words)))
  logits = np.asarray(logits)
  lowest = float(ml_dtypes.finfo(logits.dtype).min)
  rows = logits.astype(np.float64)
  finite = np.isfinite(rows)
  out = np.zeros((rows.shape[0], num_samples), dtype)
  with np.errstate(invalid="ignore", over="ignore"):
    for b, row in enumerate(rows):
      ok = finite[b]
      top = float(row[ok].max()) if ok.any() else lowest
      cdf = np.cumsum(np.where(ok, np.exp(row - top), 0.0)).tolist()
      total = cdf[-1] if cdf else 0.0
      for j in range(num_samples):
        x0 = words()
        x1 = words()
        out[b, j] = bisect.bisect_right(cdf, u64_to_double(x0, x1) * total)
  return out


def shuffle_permutation(key_words, counter_words, size: int) -> np.ndarray:
  """RandomShuffle's index permutation: for i in 0..size-2, swap i with i + word % (size-i)
  (64-bit draws of two words when size exceeds 2**32 - 1)."""
  words = Words(Stream(_key_tuple(key_words), _counter_int(counter_words)))
  perm = list(range(size))
  wide = size >= M32
  for i in range(size - 1):
    r = words() | (words() << 32) if wide else words()
    j = i + r % (size - i)
    perm[i], perm[j] = perm[j], perm[i]
  return np.asarray(perm, np.int64)


# Parameterized truncated normal (TruncatedNormalFunctorV2), in the dtype T ----------------

PTN_MAX_ITERATIONS = 1000
F16, F32, F64 = np.dtype(np.float16), np.dtype(np.float32), np.dtype(np.float64)


class TypedDraws:
  """UniformDistribution<T> and NormalDistribution<T> (T half, float or double), one
  Philox call per draw: 4 values (2 for double), used in order."""

  def __init__(self, stream: Stream, dtype):
    self.stream = stream
    self.t = np.dtype(dtype).type
    self.wide = np.dtype(dtype) == F64

  def uniform(self) -> list:
    w = self.stream.block()
    if self.wide:
      return [np.float64(u64_to_double(w[0], w[1])), np.float64(u64_to_double(w[2], w[3]))]
    words = np.asarray(w, np.uint32)
    if self.t is np.float32:
      return list(glibc.uint32_to_float(np, words))
    bits = ((words & np.uint32(0x3FF)) | np.uint32(0x3C00)).astype(np.uint16)
    return list(bits.view(np.float16) - np.float16(1))

  def normal(self) -> list:
    w = self.stream.block()
    if self.wide:
      return [np.float64(v) for v in normal_pair(w)]
    words = np.asarray(w, np.uint32)
    s0, c0 = glibc.box_muller_f32_port(np, words[0:1], words[1:2])
    s1, c1 = glibc.box_muller_f32_port(np, words[2:3], words[3:4])
    return [self.t(v[0]) for v in (s0, c0, s1, c1)]


def _ptn_math(t):
  """log, exp and sqrt of TF's Eigen::numext for T: libm's double functions, or the float
  ones with the result rounded to T (half)."""
  lib = _libm()
  if t is np.float64:
    return (lambda x: np.float64(lib.log(float(x))), lambda x: np.float64(lib.exp(float(x))),
            lambda x: np.float64(math.sqrt(x)) if x >= 0 else np.float64(math.nan))
  return (lambda x: t(lib.logf(float(x))), lambda x: t(lib.expf(float(x))),
          lambda x: t(np.sqrt(np.float32(x))))


def _ptn_one(draws: TypedDraws, out: np.ndarray, positions, mean, stddev, minval, maxval):
  """The samples of one batch member into `out[positions]` (TF's three samplers)."""
  t = draws.t
  log, exp, sqrt = _ptn_math(t)
  if not (stddev > t(0) and minval < maxval and (np.isfinite(minval) or
                                                   np.isfinite(maxval))):
    raise ValueError("Invalid parameters: need stddev > 0, minval < maxval and a finite "
                     f"bound; got mean {mean}, stddev {stddev}, minval {minval}, maxval "
                     f"{maxval}.")
  if (np.isinf(minval) and minval < t(0)) or maxval < mean:
    minval, maxval = maxval, minval
    stddev = -stddev
  norm_min = (minval - mean) / stddev
  norm_max = (maxval - mean) / stddev
  sqrt_factor = sqrt(norm_min * norm_min + t(4))
  cutoff = t(2) * exp(t(0.5) + (norm_min * (norm_min - sqrt_factor)) / t(4)) / \
      (norm_min + sqrt_factor)
  diff = norm_max - norm_min
  bound = t(1.3)
  randn = (norm_min < -bound and norm_max >= t(0)) or (norm_max > bound and norm_min <= t(0))

  def candidates():
    """(z, accepted) in the order TF's sampler tests them, drawing as it goes."""
    if randn:
      while True:
        for v in draws.normal():
          yield v, norm_min <= v <= norm_max
    elif diff < cutoff:
      plus = t(0) if norm_min < t(0) else norm_min * norm_min
      while True:
        z = [x * diff + norm_min for x in draws.uniform()]
        g = [(plus - zi * zi) / t(2) for zi in z]
        u = draws.uniform()
        for i in range(len(z)):
          yield z[i], u[i] <= exp(g[i])
    else:
      alpha = (norm_min + sqrt(norm_min * norm_min + t(4))) / t(2)
      while True:
        r = draws.uniform()
        for i in range(0, len(r), 2):
          z = -log(r[i]) / alpha + norm_min
          x = alpha - z if norm_min < alpha else norm_min - alpha
          yield z, r[i + 1] <= exp(-x * x / t(2)) and z < norm_max

  n, k, tries = len(positions), 0, 0
  if n == 0:
    return
  for z, accepted in candidates():
    # The uniform and exponential samplers take their candidate after too many tries;
    # the normal one gives up.
    if accepted or (not randn and tries + 1 >= PTN_MAX_ITERATIONS):
      out[positions[k]] = z * stddev + mean
      k += 1
      if k >= n:
        return
      tries = 0
    else:
      tries += 1
      if randn and tries > PTN_MAX_ITERATIONS:
        raise ValueError("TruncatedNormal randn rejection sampler exceeded maximum "
                         "iterations")


def parameterized_truncated_normal(key_words, counter_words, means, stddevs, minvals, maxvals,
                                   *, shape) -> np.ndarray:
  """Parameters already broadcast together to the batch shape (the trailing dims of
  `shape`). One sequential stream over the batch members: TF's single-shard result."""
  dtype = np.asarray(means).dtype
  params = [np.asarray(p, dtype).reshape(-1) for p in (means, stddevs, minvals, maxvals)]
  batches = params[0].size
  num = math.prod(shape)
  out = np.zeros(num, dtype)
  draws = TypedDraws(Stream(_key_tuple(key_words), _counter_int(counter_words)), dtype)
  with np.errstate(all="ignore"):
    for b in range(batches):
      _ptn_one(draws, out, range(b, num, batches), *(p[b] for p in params))
  return out.reshape(shape)


# Running them from JAX ---------------------------------------------------------------------


def _to_words(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  bits = np.ascontiguousarray(x).view(np.uint64).reshape(np.shape(x))
  return (bits & np.uint64(M32)).astype(np.uint32), (bits >> np.uint64(32)).astype(np.uint32)


def _of_words(lo, hi, dtype):
  bits = lo.astype(jnp.uint64) | (hi.astype(jnp.uint64) << jnp.uint64(32))
  return jax.lax.bitcast_convert_type(bits, dtype)


def on_host(fn, shape, dtype, *args):
  """`fn(*args)` (NumPy in, NumPy array of `shape`/`dtype` out): directly when every
  argument is static, else as a `pure_callback`. 64-bit results travel as uint32 words:
  JAX canonicalizes a callback's results in the thread that runs it, where the caller's
  x64 context does not apply."""
  dtype = np.dtype(dtype)
  if all(is_static(a) for a in jax.tree_util.tree_leaves(args)):
    return fn(*jax.tree_util.tree_map(np.asarray, args))
  shape = tuple(shape)
  if dtype.itemsize == 8:
    def host_words(*a):
      return _to_words(np.asarray(fn(*a), dtype))
    part = jax.ShapeDtypeStruct(shape, jnp.uint32)
    lo, hi = jax.pure_callback(host_words, (part, part), *args, vmap_method="sequential")
    return _of_words(lo, hi, dtype)

  def host(*a):
    return np.asarray(fn(*a), dtype)
  return jax.pure_callback(host, jax.ShapeDtypeStruct(shape, dtype), *args,
                           vmap_method="sequential")
