"""Philox-4x32-10 and TensorFlow's seed handling, in uint32 arithmetic.

Everything here works on uint32 *words* and is written once for NumPy and `jax.numpy`
(`xp`), so it runs without `jax_enable_x64`: a uint64 value is a pair of words (low,
high). The 32x32 -> 64-bit products of Philox use uint64 when the backend has it (NumPy,
or JAX with x64 on) and 16-bit halves otherwise; both give the same bits.

TensorFlow's key/counter tensors are uint64 (`key` uint64[1] = k0 | k1 << 32, `counter`
uint64[2] = [c0 | c1 << 32, c2 | c3 << 32]). They are represented as:
- NumPy uint64 arrays when known at conversion time (static seeds), with or without x64;
- JAX uint64 arrays when JAX runs with x64;
- otherwise (traced seeds, no x64) `U64` objects holding the two uint32 halves. Random
  ops of this plugin read them; any other op receiving one (or a `U64` returned by the
  converted function and then used as an array) raises a clear error asking for x64.
"""

from __future__ import annotations

from typing import Any, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from tf2jax_core import DtypeMismatchError, is_static

MUL0 = 0xD2511F53
MUL1 = 0xCD9E8D57
WEYL0 = 0x9E3779B9
WEYL1 = 0xBB67AE85
# The key of the one Philox call that turns a seed into a key and a counter.
SCRAMBLE_KEY = (0x3EC8F720, 0x02461E29)

U32 = np.dtype(np.uint32)
U64_DTYPE = np.dtype(np.uint64)
MASK32 = 0xFFFFFFFF


def x64_enabled() -> bool:
  return bool(jax.config.jax_enable_x64)


def x64_error(what: str) -> DtypeMismatchError:
  from tf2jax_core.walker import x64_message
  return DtypeMismatchError(x64_message(what, np.uint32))


def xp_of(*values):
  return np if is_static(*values) else jnp


def u32(xp, value):
  """A uint32 array (wrapping Python ints modulo 2**32)."""
  if isinstance(value, int):
    return xp.asarray(np.uint32(value & MASK32))
  return xp.asarray(value).astype(U32) if getattr(value, "dtype", None) != U32 \
      else xp.asarray(value)


@jax.tree_util.register_pytree_node_class
class U64:
  """A uint64 tensor held as two uint32 JAX arrays (for JAX without x64).

  It reports `dtype` uint64 and TF's shape so the walker's dtype check accepts it as
  the uint64 output of StatelessRandomGetKeyCounter & co.
  """

  dtype = U64_DTYPE

  def __init__(self, lo, hi):
    self.lo, self.hi = lo, hi

  @property
  def shape(self):
    return tuple(self.lo.shape)

  @property
  def ndim(self):
    return len(self.shape)

  def tree_flatten(self):
    return (self.lo, self.hi), None

  @classmethod
  def tree_unflatten(cls, aux, children):
    return cls(*children)

  def __jax_array__(self):
    raise x64_error("A uint64 key/counter of the random plugin is used by another op")

  def __array__(self, dtype=None, copy=None):
    lo, hi = np.asarray(self.lo, np.uint64), np.asarray(self.hi, np.uint64)
    out = lo | (hi << np.uint64(32))
    return out if dtype is None else out.astype(dtype)

  def __repr__(self):
    return f"U64(shape={self.shape})"


def split64(value, what: str = "value"):
  """(lo, hi) uint32 words of a uint64/int64 tensor in any of its representations."""
  if isinstance(value, U64):
    return value.lo, value.hi
  if is_static(value):
    v = np.asarray(value)
    if v.dtype.itemsize != 8:
      v = v.astype(np.int64)
    v = v.view(np.uint64) if v.dtype != np.uint64 else v
    return (v & np.uint64(MASK32)).astype(U32), (v >> np.uint64(32)).astype(U32)
  dtype = np.dtype(value.dtype)
  if dtype.itemsize != 8:
    raise x64_error(f"The {what} must be a 64-bit tensor")
  v = jax.lax.bitcast_convert_type(value, jnp.uint64) if dtype != U64_DTYPE else value
  return ((v & jnp.uint64(MASK32)).astype(jnp.uint32),
          (v >> jnp.uint64(32)).astype(jnp.uint32))


def join64(lo, hi, dtype=U64_DTYPE):
  """A uint64/int64 tensor from words: NumPy, JAX with x64, or a `U64` (uint64 only)."""
  dtype = np.dtype(dtype)
  if is_static(lo, hi):
    out = np.asarray(lo).astype(np.uint64) | (np.asarray(hi).astype(np.uint64) << np.uint64(32))
    return out.view(dtype) if dtype != U64_DTYPE else out
  if x64_enabled():
    out = lo.astype(jnp.uint64) | (hi.astype(jnp.uint64) << jnp.uint64(32))
    return jax.lax.bitcast_convert_type(out, dtype) if dtype != U64_DTYPE else out
  if dtype != U64_DTYPE:
    raise x64_error(f"A {dtype.name} value must be produced")
  return U64(lo, hi)


# Philox ----------------------------------------------------------------------------------


def _mulhilo(xp, a: int, b):
  """(high, low) words of the 64-bit product of the constant `a` and the words `b`."""
  if xp is np or x64_enabled():
    wide = np.uint64 if xp is np else jnp.uint64
    p = b.astype(wide) * wide(a)
    return (p >> wide(32)).astype(U32), (p & wide(MASK32)).astype(U32)
  # 16-bit halves; no partial sum below overflows 32 bits.
  a_lo, a_hi = np.uint32(a & 0xFFFF), np.uint32(a >> 16)
  sixteen, low16 = np.uint32(16), np.uint32(0xFFFF)
  b_lo, b_hi = b & low16, b >> sixteen
  u = a_hi * b_lo + ((a_lo * b_lo) >> sixteen)
  v = a_lo * b_hi + (u & low16)
  hi = a_hi * b_hi + (u >> sixteen) + (v >> sixteen)
  return hi, b * np.uint32(a)


def _round(xp, c0, c1, c2, c3, k0, k1):
  hi0, lo0 = _mulhilo(xp, MUL0, c0)
  hi1, lo1 = _mulhilo(xp, MUL1, c2)
  return hi1 ^ c1 ^ k0, lo1, hi0 ^ c3 ^ k1, lo0


def philox(xp, counter: Sequence, key: Sequence):
  """Philox-4x32-10 of counters (c0..c3) under keys (k0, k1): 4 uint32 word arrays.

  With JAX, scalar (per-seed) calls run the rounds in a `fori_loop` (XLA compiles
  unrolled scalar code slowly); array calls are unrolled into one fused loop.
  """
  c0, c1, c2, c3 = (u32(xp, c) for c in counter)
  k0, k1 = (u32(xp, k) for k in key)
  if xp is jnp and all(jnp.ndim(x) == 0 for x in (c0, c1, c2, c3, k0, k1)):
    def body(_, s):
      c0, c1, c2, c3, k0, k1 = s
      c = _round(jnp, c0, c1, c2, c3, k0, k1)
      return (*c, k0 + np.uint32(WEYL0), k1 + np.uint32(WEYL1))
    return jax.lax.fori_loop(0, 10, body, (c0, c1, c2, c3, k0, k1))[:4]
  with np.errstate(over="ignore"):
    for r in range(10):
      c0, c1, c2, c3 = _round(xp, c0, c1, c2, c3, k0, k1)
      if r < 9:
        k0 = k0 + np.uint32(WEYL0)
        k1 = k1 + np.uint32(WEYL1)
  return c0, c1, c2, c3


def add128(xp, counter: Sequence, *offset):
  """The 128-bit counter (4 words, c0 lowest) plus an offset of up to 4 words (lowest
  first), modulo 2**128."""
  c = [u32(xp, w) for w in counter]
  one, zero = np.uint32(1), np.uint32(0)
  out = []
  carry = None
  with np.errstate(over="ignore"):
    for i in range(4):
      t = c[i]
      wrapped = None
      if i < len(offset) and offset[i] is not None:
        o = u32(xp, offset[i])
        t = t + o
        wrapped = t < o
      if carry is not None:
        t = t + carry
        over = (t == zero) & (carry == one)
        wrapped = over if wrapped is None else (wrapped | over)
      out.append(t)
      carry = None if wrapped is None else xp.where(wrapped, one, zero)
  return tuple(out)


def tf_skip(xp, counter: Sequence, count_lo, count_hi):
  """TF's PhiloxRandom::Skip(count) for a uint64 count given as words.

  Like a 128-bit addition, except that a carry out of the low word into a high word of
  0xFFFFFFFF is lost (TF adds `++count_hi` in 32 bits), as TF does.
  """
  c0, c1, c2, c3 = (u32(xp, c) for c in counter)
  count_lo, count_hi = u32(xp, count_lo), u32(xp, count_hi)
  one, zero = np.uint32(1), np.uint32(0)
  with np.errstate(over="ignore"):
    c0 = c0 + count_lo
    count_hi = count_hi + xp.where(c0 < count_lo, one, zero)
    c1 = c1 + count_hi
    carry = c1 < count_hi
    c2 = c2 + xp.where(carry, one, zero)
    c3 = c3 + xp.where(carry & (c2 == zero), one, zero)
  return c0, c1, c2, c3


# Seeds, keys and counters --------------------------------------------------------------


def seed_words(seed):
  """The 4 words (lo s0, hi s0, lo s1, hi s1) of a [2] seed, sign-extended to 64 bits."""
  xp = xp_of(seed)
  if np.dtype(seed.dtype).itemsize == 8:
    lo, hi = split64(seed, "seed")
  else:
    s = xp.asarray(seed)
    lo = s.astype(U32) if xp is np else jax.lax.bitcast_convert_type(s, jnp.uint32)
    hi = xp.where(s < 0, np.uint32(MASK32), np.uint32(0))
  return lo[..., 0], hi[..., 0], lo[..., 1], hi[..., 1]


def scramble(seed):
  """TF's GenerateKey: a [2] seed -> (key words (k0, k1), counter words (c0..c3))."""
  xp = xp_of(seed)
  m0, m1, m2, m3 = philox(xp, seed_words(seed), SCRAMBLE_KEY)
  zero = xp.zeros_like(m0)
  return (m0, m1), (zero, zero, m2, m3)


def key_counter_tensors(key_words, counter_words) -> tuple[Any, Any]:
  """TF's uint64 key [1] and counter [2] tensors from words."""
  k0, k1 = key_words
  c0, c1, c2, c3 = counter_words
  xp = xp_of(k0, k1, c0, c1, c2, c3)
  key = join64(xp.expand_dims(k0, -1), xp.expand_dims(k1, -1))
  counter = join64(xp.stack([c0, c2], axis=-1), xp.stack([c1, c3], axis=-1))
  return key, counter


def words_of_key_counter(op: str, key, counter):
  """(key words, counter words) of TF's V2 key uint64[1] and counter uint64[2]."""
  if tuple(key.shape) != (1,):
    raise ValueError(f"{op}: key must have shape [1], not {list(key.shape)}")
  if len(counter.shape) != 1 or counter.shape[0] < 2:
    raise ValueError(f"{op}: counter must be a vector of at least 2 elements (Philox), "
                     f"got shape {list(counter.shape)}")
  k_lo, k_hi = split64(key, "key")
  c_lo, c_hi = split64(counter, "counter")
  return (k_lo[0], k_hi[0]), (c_lo[0], c_hi[0], c_lo[1], c_hi[1])
