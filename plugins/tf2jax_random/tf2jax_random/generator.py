"""`tf.random.Generator` ops: the generator's state variable is a param.

The Philox state is int64[3]: `[counter_lo64, counter_hi64, key]`. Every draw of n values
(`RngReadAndSkip` with delta n, or a legacy `Stateful*` op of n elements) returns/uses the
old state and adds 256 n to the 128-bit counter; `RngSkip(delta)` adds 256 delta. As in
TF, 256 delta is computed in 64 bits (wrapping: a delta of 2**56 or more loses its top
bits) and added with PhiloxRandom::Skip, whose carry out of the low 32 bits is lost when
the offset's high word is 0xFFFFFFFF. The numbers are those of the
stateless V2 ops with key `state[2]` and counter `state[0:2]`, so they match TF bit for bit.

The state is int64, so JAX needs x64 when the state is a JAX array (under `jit`, or after
a previous call returned it as one); params still holding TF's NumPy value are advanced
with NumPy, which also works without x64.
"""

from __future__ import annotations

import math

import jax.numpy as jnp
import numpy as np

from tf2jax_core import FLOAT, ConversionError, VariableRef, is_static, lowering
from tf2jax_random import distributions as dist
from tf2jax_random.philox import join64, split64, tf_skip, x64_error
from tf2jax_random.stateless import (AUTO_SELECT, PHILOX, THREEFRY, binomial_sample,
                                     check_int_range, static_shape)

_FULL_INTS = ("int32", "int64", "uint32", "uint64")


def _ref(node, handle) -> VariableRef:
  if not isinstance(handle, VariableRef):
    raise ConversionError(f"{node.op} node {node.path!r} expects a variable handle, got "
                          f"{type(handle).__name__}.")
  return handle


def _read_state(ctx, node, handle):
  ref = _ref(node, handle)
  if ref.name not in ctx.params:
    raise ConversionError(
        f"{node.op} node {node.path!r} reads the generator state {ref.name!r}, which params "
        f"lack (params have {sorted(ctx.params)[:10]}). Pass the params returned by "
        "convert().")
  state = ctx.params[ref.name]
  if not is_static(state):
    if np.dtype(state.dtype) != np.int64:
      raise x64_error(f"{node.op} node {node.path!r} reads the int64 generator state "
                      f"{ref.name!r}")
  elif np.asarray(state).dtype != np.int64:
    raise ConversionError(f"{node.op} node {node.path!r}: the generator state {ref.name!r} "
                          f"is {np.asarray(state).dtype}, not int64.")
  if tuple(state.shape) != (3,):
    raise ValueError(f"{node.op} node {node.path!r}: the Philox generator state must have "
                     f"shape [3], got {list(state.shape)}")
  return ref, state


def _check_alg(node, alg) -> None:
  alg = int(np.asarray(alg))
  if alg == THREEFRY:
    raise ValueError(f"{node.op} node {node.path!r}: TF's CPU kernels do not support the "
                     "ThreeFry algorithm (2) ('Non-XLA devices don't support the ThreeFry "
                     "algorithm').")
  if alg not in (PHILOX, AUTO_SELECT):
    raise ValueError(f"{node.op} node {node.path!r}: unsupported algorithm id {alg}.")


def _words(state):
  """(key words, counter words) of a Philox state [counter_lo, counter_hi, key]."""
  lo, hi = split64(state, "generator state")
  return (lo[2], hi[2]), (lo[0], hi[0], lo[1], hi[1])


def _skip(ctx, ref, state, delta) -> None:
  """Writes the state advanced like TF's UpdateMemWithPhiloxRandom to params: the counter
  skips 256 delta, computed in 64 bits (wrapping), with PhiloxRandom::Skip's carries."""
  xp = np if is_static(state, delta) else jnp
  d_lo, d_hi = split64(delta, "delta")
  with np.errstate(over="ignore"):
    count_lo = d_lo << np.uint32(8)
    count_hi = (d_hi << np.uint32(8)) | (d_lo >> np.uint32(24))
  _, counter = _words(state)
  c0, c1, c2, c3 = tf_skip(xp, counter, count_lo, count_hi)
  lo, hi = split64(state, "generator state")
  new_lo = xp.stack([c0, c2, lo[2]])
  new_hi = xp.stack([c1, c3, hi[2]])
  if xp is np:
    ctx.params[ref.name] = join64(new_lo, new_hi, np.int64)
  else:
    ctx.params[ref.name] = join64(jnp.asarray(new_lo), jnp.asarray(new_hi), np.int64)


@lowering("RngReadAndSkip", static_inputs=(1,), needs_context=True)
def rng_read_and_skip(node):
  def run(ctx, handle, alg, delta):
    _check_alg(node, alg)
    ref, state = _read_state(ctx, node, handle)
    _skip(ctx, ref, state, delta)
    return state
  return run


@lowering("RngSkip", static_inputs=(1,), needs_context=True)
def rng_skip(node):
  def run(ctx, handle, algorithm, delta):
    _check_alg(node, algorithm)
    ref, state = _read_state(ctx, node, handle)
    _skip(ctx, ref, state, delta)
  return run


def _stateful(op, dtypes, sample):
  @lowering(op, attrs={"dtype": dtypes, "shape_dtype": ("int32", "int64")},
            static_inputs=(1, 2), needs_context=True)
  def build(node):
    dtype = node.attrs["dtype"]

    def run(ctx, handle, algorithm, shape, *bounds):
      _check_alg(node, algorithm)
      shape = static_shape(node, shape)
      ref, state = _read_state(ctx, node, handle)
      key, counter = _words(state)
      out = sample(node, key, counter, shape, dtype, *bounds)
      _skip(ctx, ref, state, np.asarray(math.prod(shape), np.uint64))
      return out
    return run
  return build


def _uniform_int(node, k, c, shape, dtype, minval, maxval):
  check_int_range(node, minval, maxval, math.prod(shape))
  return dist.uniform_int(k, c, shape, dtype, minval, maxval)


stateful_uniform = _stateful("StatefulUniform", FLOAT,
                             lambda node, k, c, s, d: dist.uniform(k, c, s, d))
stateful_normal = _stateful("StatefulStandardNormalV2", FLOAT,
                            lambda node, k, c, s, d: dist.normal(k, c, s, d))
stateful_truncated = _stateful("StatefulTruncatedNormal", FLOAT,
                               lambda node, k, c, s, d: dist.truncated_normal(k, c, s, d))
stateful_full_int = _stateful("StatefulUniformFullInt", _FULL_INTS,
                              lambda node, k, c, s, d: dist.full_int(k, c, s, d))
stateful_uniform_int = _stateful("StatefulUniformInt", ("int32", "int64"), _uniform_int)


@lowering("StatefulRandomBinomial", attrs={"S": ("int32", "int64"),
                                           "T": ("float16", "float32", "float64"),
                                           "dtype": ("float16", "float32", "float64", "int32",
                                                     "int64")},
          static_inputs=(1, 2), needs_context=True)
def stateful_random_binomial(node):
  """The stateless binomial sampler from the old state; the counter then skips
  256 * (num_batches * 2 * 100 * (samples_per_batch + 3) / 4), TF's reservation."""
  def run(ctx, handle, algorithm, shape, counts, probs):
    _check_alg(node, algorithm)
    shape = static_shape(node, shape)
    ref, state = _read_state(ctx, node, handle)
    key, counter = _words(state)
    out = binomial_sample(node, key, counter, shape, counts, probs)
    batch = np.broadcast_shapes(tuple(counts.shape), tuple(probs.shape))
    num_batches = math.prod(batch)
    per_batch = math.prod(shape[:len(shape) - len(batch)])
    delta = num_batches * 2 * 100 * (per_batch + 3) // 4
    _skip(ctx, ref, state, np.asarray(delta, np.uint64))
    return out
  return run
