"""TF's CPU random distributions from a Philox key and counter (as uint32 words).

Layout (tensorflow/core/kernels/random_op_cpu.h): output element i of the flat,
row-major output uses Philox call `counter + i // G`, slot `i % G`, with G = 4 outputs
per call for 16/32-bit dtypes and 2 for 64-bit dtypes; a partial last group is computed
in full and cut. Truncated normal is a rejection sampler: group g of G outputs reads
calls from `counter + 256 g` (G = 4) or `counter + 128 g` (float64) on.
"""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
import ml_dtypes
import numpy as np

from tf2jax_random import glibc
from tf2jax_random.philox import add128, philox, x64_enabled, x64_error

BF16 = np.dtype(ml_dtypes.bfloat16)
F16 = np.dtype(np.float16)
F32 = np.dtype(np.float32)
F64 = np.dtype(np.float64)
MAX_BLOCKS = 2**32

# Each distribution is one jitted function of the key and counter words (shape and dtype
# static): inlined under an outer `jit`, and compiled once per shape when the converted
# function runs op by op (instead of dispatching hundreds of tiny uint32 ops).
_jit = functools.partial(jax.jit, static_argnames=("shape", "dtype"))


def _need_x64(dtype) -> None:
  if np.dtype(dtype).itemsize == 8 and not x64_enabled():
    raise x64_error(f"A {np.dtype(dtype).name} random tensor must be produced")


def blocks(key, counter, num: int):
  """The 4 word arrays of Philox calls `counter + arange(num)`."""
  if num > MAX_BLOCKS:
    raise ValueError(f"{num} Philox calls are more than this implementation supports "
                     f"({MAX_BLOCKS}).")
  offsets = jnp.arange(num, dtype=jnp.uint32)
  return philox(jnp, add128(jnp, counter, offsets), key)


def _layout(words_per_block, num: int, shape):
  """Flattens [blocks, G] values (a list of G arrays) to `shape`, cutting the tail."""
  flat = jnp.stack(words_per_block, axis=-1).reshape(-1)
  return flat[:num].reshape(shape)


def _num_and_blocks(shape, group: int):
  num = math.prod(shape)
  return num, -(-num // group)


# Uniform floats and integers ------------------------------------------------------------


def _words_to_unit(words, dtype):
  """TF's Uint32ToFloat / Uint16ToHalf / Uint16ToGfloat16 on 32-bit words."""
  if dtype == F32:
    return glibc.uint32_to_float(jnp, words)
  if dtype == F16:
    bits = ((words & np.uint32(0x3FF)) | np.uint32(0x3C00)).astype(jnp.uint16)
    return jax.lax.bitcast_convert_type(bits, jnp.float16) - jnp.float16(1)
  if dtype == BF16:
    bits = ((words & np.uint32(0x7F)) | np.uint32(0x3F80)).astype(jnp.uint16)
    return jax.lax.bitcast_convert_type(bits, jnp.bfloat16) - jnp.bfloat16(1)
  raise TypeError(f"no 32-bit uniform for {dtype}")


@_jit
def uniform(key, counter, shape, dtype):
  """Uniform floats in [0, 1) (TF's UniformDistribution)."""
  dtype = np.dtype(dtype)
  _need_x64(dtype)
  if dtype == F64:
    num, nb = _num_and_blocks(shape, 2)
    w = blocks(key, counter, nb)
    vals = [glibc.uint64_to_double(jnp, w[0], w[1]), glibc.uint64_to_double(jnp, w[2], w[3])]
    return _layout(vals, num, shape)
  num, nb = _num_and_blocks(shape, 4)
  w = blocks(key, counter, nb)
  return _layout([_words_to_unit(x, dtype) for x in w], num, shape)


def _u64(lo, hi):
  return lo.astype(jnp.uint64) | (hi.astype(jnp.uint64) << jnp.uint64(32))


@_jit
def full_int(key, counter, shape, dtype):
  """Integers over the dtype's whole range (TF's UniformFullIntDistribution)."""
  dtype = np.dtype(dtype)
  _need_x64(dtype)
  if dtype.itemsize == 8:
    num, nb = _num_and_blocks(shape, 2)
    w = blocks(key, counter, nb)
    bits = _layout([_u64(w[0], w[1]), _u64(w[2], w[3])], num, shape)
  else:
    num, nb = _num_and_blocks(shape, 4)
    bits = _layout(list(blocks(key, counter, nb)), num, shape)
  return jax.lax.bitcast_convert_type(bits, dtype) if bits.dtype != dtype else bits


def _as_unsigned(x, udtype):
  x = jnp.asarray(x)
  return jax.lax.bitcast_convert_type(x, udtype) if x.dtype != udtype else x


@_jit
def uniform_int(key, counter, shape, dtype, minval, maxval):
  """Integers in [minval, maxval): lo + bits mod (hi - lo) (TF's UniformDistribution)."""
  dtype = np.dtype(dtype)
  _need_x64(dtype)
  if dtype.itemsize == 8:
    num, nb = _num_and_blocks(shape, 2)
    w = blocks(key, counter, nb)
    bits = _layout([_u64(w[0], w[1]), _u64(w[2], w[3])], num, shape)
    udtype = jnp.uint64
  else:
    num, nb = _num_and_blocks(shape, 4)
    bits = _layout(list(blocks(key, counter, nb)), num, shape)
    udtype = jnp.uint32
  lo = _as_unsigned(jnp.asarray(minval, dtype), udtype)
  hi = _as_unsigned(jnp.asarray(maxval, dtype), udtype)
  span = hi - lo
  # TF refuses lo >= hi; a zero span only happens then (garbage in, no crash out).
  span = jnp.where(span == 0, jnp.ones_like(span), span)
  return jax.lax.bitcast_convert_type(lo + bits % span, dtype)


# Normal and truncated normal ------------------------------------------------------------


def _normal_pairs_f32(w):
  """Box-Muller on the word pairs (w0, w1), (w2, w3): four float32 values per call."""
  # Both pairs in one call (a leading axis of 2) keeps the graph half as big.
  a, b = glibc.box_muller_f32(jnp.stack([w[0], w[2]]), jnp.stack([w[1], w[3]]))
  return [a[0], b[0], a[1], b[1]]


@_jit
def normal(key, counter, shape, dtype):
  """Standard normals (TF's NormalDistribution: Box-Muller with glibc's functions)."""
  dtype = np.dtype(dtype)
  _need_x64(dtype)
  if dtype == F64:
    num, nb = _num_and_blocks(shape, 2)
    w = blocks(key, counter, nb)
    return _layout(list(glibc.box_muller_f64(*w)), num, shape)
  num, nb = _num_and_blocks(shape, 4)
  w = blocks(key, counter, nb)
  out = _layout(_normal_pairs_f32(w), num, shape)
  return out if dtype == F32 else out.astype(dtype)


TRUNCATE = 2.0
WINDOW = 256  # Philox calls reserved per output, times G / 4


@_jit
def truncated_normal(key, counter, shape, dtype):
  """Standard normals with |x| < 2 by rejection (TF's TruncatedNormalDistribution).

  Group g of G outputs draws from calls `counter + stride * g + j`, j = 0, 1, ... (stride
  256 for G = 4, 128 for float64), testing the sin then the cos value of each Box-Muller
  pair and keeping values with |x| < 2 until G are kept. All groups advance together in
  a while loop that stops when every group is full (about 3 rounds); a group needing
  more than `stride` calls (probability below 1e-300) would read into the next group's
  window in TF and stops here.
  """
  dtype = np.dtype(dtype)
  _need_x64(dtype)
  group = 2 if dtype == F64 else 4
  stride = WINDOW * group // 4
  shift = int(math.log2(stride))
  num, ngroups = _num_and_blocks(shape, group)
  if ngroups == 0:
    return jnp.zeros(shape, dtype)
  g = jnp.arange(ngroups, dtype=jnp.uint32)
  base_lo, base_hi = g << np.uint32(shift), g >> np.uint32(32 - shift)
  work = F64 if dtype == F64 else F32
  slots = jnp.arange(group, dtype=jnp.int32)

  def round_(state):
    j, count, out = state
    ctr = add128(jnp, counter, base_lo | j.astype(jnp.uint32), base_hi)
    w = philox(jnp, ctr, key)
    cands = list(glibc.box_muller_f64(*w)) if dtype == F64 else _normal_pairs_f32(w)
    for v in cands:
      take = (jnp.abs(v) < TRUNCATE) & (count < group)
      put = take[:, None] & (slots[None, :] == count[:, None])
      out = jnp.where(put, v[:, None], out)
      count = count + take.astype(jnp.int32)
    return j + 1, count, out

  def cond(state):
    j, count, _ = state
    return (j < stride) & jnp.any(count < group)

  init = (jnp.int32(0), jnp.zeros(ngroups, jnp.int32), jnp.zeros((ngroups, group), work))
  _, _, out = jax.lax.while_loop(cond, round_, init)
  out = out.reshape(-1)[:num].reshape(shape)
  return out if dtype == work else out.astype(dtype)
