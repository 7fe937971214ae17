"""Stateless random ops, bit-identical to TensorFlow's CPU kernels.

The seed (V1 ops) or key/counter (V2 ops) may be static or computed at call time
(under `jit` and `vmap` too); shapes and the algorithm must be static. See
`philox.py` for how uint64 keys and counters are held without x64.
"""

from __future__ import annotations

import math

import numpy as np

from tf2jax_core import FLOAT, is_static, lowering
from tf2jax_random import distributions as dist
from tf2jax_random.philox import key_counter_tensors, scramble, words_of_key_counter

PHILOX, THREEFRY, AUTO_SELECT = 1, 2, 3
_SHAPE_T = ("int32", "int64")
_SEED_T = ("int32", "int64")
_INTS = ("int32", "int64")
_FULL_INTS = ("int32", "int64", "uint32", "uint64")


def static_shape(node, shape) -> tuple[int, ...]:
  shape = np.asarray(shape)
  if shape.ndim != 1:
    raise ValueError(f"{node.op} node {node.path!r}: shape must be a vector, got "
                     f"{shape.tolist()}")
  dims = tuple(int(d) for d in shape)
  if any(d < 0 for d in dims):
    raise ValueError(f"{node.op} node {node.path!r}: negative dimension in shape {dims}")
  return dims


def _check_alg(node, alg) -> None:
  alg = int(np.asarray(alg))
  if alg == THREEFRY:
    raise ValueError(f"{node.op} node {node.path!r}: the ThreeFry algorithm (2) has no CPU "
                     "kernel in TensorFlow ('Unsupported algorithm id'); use Philox (1) or "
                     "auto-select (3).")
  if alg not in (PHILOX, AUTO_SELECT):
    raise ValueError(f"{node.op} node {node.path!r}: unsupported algorithm id {alg}.")


def _seed_key_counter(node, seed):
  if tuple(seed.shape) != (2,):
    raise ValueError(f"{node.op} node {node.path!r}: seed must have shape [2], got "
                     f"{list(seed.shape)}")
  return scramble(seed)


def check_int_range(node, minval, maxval, num: int) -> None:
  for name, v in (("minval", minval), ("maxval", maxval)):
    if len(getattr(v, "shape", ())) != 0:
      raise ValueError(f"{node.op} node {node.path!r}: {name} must be a scalar, got shape "
                       f"{list(v.shape)}")
  if num and is_static(minval, maxval) and not np.asarray(minval) < np.asarray(maxval):
    raise ValueError(f"{node.op} node {node.path!r}: need minval < maxval, got "
                     f"{np.asarray(minval)} >= {np.asarray(maxval)}")


# Seeds to keys and counters ----------------------------------------------------------------


@lowering("StatelessRandomGetKeyCounter", attrs={"Tseed": _SEED_T})
def get_key_counter(node):
  def run(seed):
    key, counter = _seed_key_counter(node, seed)
    return list(key_counter_tensors(key, counter))
  return run


@lowering("StatelessRandomGetKeyCounterAlg", attrs={"Tseed": _SEED_T})
def get_key_counter_alg(node):
  def run(seed):
    key, counter = _seed_key_counter(node, seed)
    return [*key_counter_tensors(key, counter), np.asarray(PHILOX, np.int32)]
  return run


@lowering("StatelessRandomGetAlg")
def get_alg(node):
  # TF's CPU kernel picks Philox (its GPU one too; XLA picks by platform).
  return lambda: np.asarray(PHILOX, np.int32)


# V2 ops: shape, key, counter, alg -----------------------------------------------------------


def _v2(op, dtypes, sample):
  @lowering(op, attrs={"dtype": dtypes, "Tshape": _SHAPE_T}, static_inputs=(0, 3))
  def build(node):
    dtype = node.attrs["dtype"]

    def run(shape, key, counter, alg, *bounds):
      _check_alg(node, alg)
      shape = static_shape(node, shape)
      k, c = words_of_key_counter(f"{node.op} node {node.path!r}", key, counter)
      return sample(node, k, c, shape, dtype, *bounds)
    return run
  return build


def _uniform(node, k, c, shape, dtype):
  return dist.uniform(k, c, shape, dtype)


def _normal(node, k, c, shape, dtype):
  return dist.normal(k, c, shape, dtype)


def _truncated(node, k, c, shape, dtype):
  return dist.truncated_normal(k, c, shape, dtype)


def _full_int(node, k, c, shape, dtype):
  return dist.full_int(k, c, shape, dtype)


def _uniform_int(node, k, c, shape, dtype, minval, maxval):
  check_int_range(node, minval, maxval, math.prod(shape))
  return dist.uniform_int(k, c, shape, dtype, minval, maxval)


uniform_v2 = _v2("StatelessRandomUniformV2", FLOAT, _uniform)
normal_v2 = _v2("StatelessRandomNormalV2", FLOAT, _normal)
truncated_normal_v2 = _v2("StatelessTruncatedNormalV2", FLOAT, _truncated)
full_int_v2 = _v2("StatelessRandomUniformFullIntV2", _FULL_INTS, _full_int)
# TF registers CPU kernels of UniformIntV2 for int32 and int64 only.
uniform_int_v2 = _v2("StatelessRandomUniformIntV2", _INTS, _uniform_int)


# V1 ops: shape, seed ---------------------------------------------------------------------


def _v1(op, dtypes, sample, seed_types=_SEED_T):
  @lowering(op, attrs={"dtype": dtypes, "T": _SHAPE_T, "Tseed": seed_types},
            static_inputs=(0,))
  def build(node):
    dtype = node.attrs["dtype"]

    def run(shape, seed, *bounds):
      shape = static_shape(node, shape)
      k, c = _seed_key_counter(node, seed)
      return sample(node, k, c, shape, dtype, *bounds)
    return run
  return build


uniform_v1 = _v1("StatelessRandomUniform", FLOAT, _uniform)
normal_v1 = _v1("StatelessRandomNormal", FLOAT, _normal)
truncated_normal_v1 = _v1("StatelessTruncatedNormal", FLOAT, _truncated)
uniform_int_v1 = _v1("StatelessRandomUniformInt", _INTS, _uniform_int)
# The op allows uint32/uint64 seeds, but TF's kernel refuses them at run time
# ("Invalid seed type"), so the lowering does too (at conversion time).
full_int_v1 = _v1("StatelessRandomUniformFullInt", _FULL_INTS, _full_int)
