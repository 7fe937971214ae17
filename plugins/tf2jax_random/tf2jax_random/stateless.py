"""Stateless random ops, bit-identical to TensorFlow's CPU kernels.

The seed (V1 ops) or key/counter (V2 ops) may be static or computed at call time
(under `jit` and `vmap` too); shapes and the algorithm must be static. See
`philox.py` for how uint64 keys and counters are held without x64.
"""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np

from tf2jax_core import FLOAT, NUMBER, is_static, lowering
from tf2jax_random import distributions as dist
from tf2jax_random import host_samplers as host
from tf2jax_random.philox import (key_counter_tensors, scramble, words_of_key_counter,
                                  x64_enabled, x64_error)

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


# Samplers run on the host (host_samplers.py): gamma, Poisson, binomial, multinomial,
# shuffle -----------------------------------------------------------------------------------


def _host(node, fn, shape, dtype, *args):
  traced = not all(is_static(a) for a in jax.tree_util.tree_leaves(args))
  if traced and np.dtype(dtype).itemsize == 8 and not x64_enabled():
    raise x64_error(f"{node.op} node {node.path!r} must produce a {np.dtype(dtype).name} "
                    "tensor from values known only at call time")
  return host.on_host(fn, shape, dtype, *args)


def _ends_with(node, shape, param_shape, what) -> None:
  param_shape = tuple(param_shape)
  if len(param_shape) > len(shape) or tuple(shape[len(shape) - len(param_shape):]) \
      != param_shape:
    raise ValueError(f"{node.op} node {node.path!r}: shape {list(shape)} must end with the "
                     f"{what} shape {list(param_shape)} (TF: 'Shape passed in must end with "
                     "broadcasted shape').")


def _gamma(node, key, counter, shape, alpha):
  dtype = node.attrs["dtype"]
  _ends_with(node, shape, alpha.shape, "alpha")
  sample = lambda a: _host(node, functools.partial(_gamma_host, shape=shape, dtype=dtype),
                           shape, dtype, key, counter, a)
  if is_static(alpha):
    return sample(alpha)
  return _gamma_with_alpha_grad(sample, node)(alpha)


def _gamma_with_alpha_grad(sample, node):
  """`sample(alpha)` differentiable w.r.t. alpha like TF: implicit reparameterization,
  d sample / d alpha = RandomGammaGrad(alpha, sample), which TF has for float32/64 only."""
  @jax.custom_jvp
  def f(alpha):
    return sample(alpha)

  @f.defjvp
  def f_jvp(primals, tangents):
    (alpha,), (t_alpha,) = primals, tangents
    out = f(alpha)
    if out.dtype not in (np.float32, np.float64):
      raise TypeError(f"{node.op} node {node.path!r}: TF has no gradient w.r.t. alpha for "
                      f"{out.dtype} samples (RandomGammaGrad takes float32 and float64).")
    partial = jax.lax.random_gamma_grad(jnp.broadcast_to(alpha, out.shape), out)
    # TF's derivative is 0 at a zero sample, whatever alpha (0, negative or NaN too).
    partial = jnp.where(out == 0, jnp.zeros((), out.dtype), partial)
    return out, partial * t_alpha
  return f


def _gamma_host(key, counter, alpha, *, shape, dtype):
  return host.gamma(key, counter, shape, alpha, dtype)


@lowering("StatelessRandomGammaV2", attrs={"dtype": FLOAT, "T": _SHAPE_T, "Tseed": _SEED_T},
          static_inputs=(0,))
def gamma_v2(node):
  def run(shape, seed, alpha):
    key, counter = _seed_key_counter(node, seed)
    return _gamma(node, key, counter, static_shape(node, shape), alpha)
  return run


@lowering("StatelessRandomGammaV3", attrs={"dtype": FLOAT, "shape_dtype": _SHAPE_T},
          static_inputs=(0, 3))
def gamma_v3(node):
  def run(shape, key, counter, alg, alpha):
    _check_alg(node, alg)
    k, c = words_of_key_counter(f"{node.op} node {node.path!r}", key, counter)
    return _gamma(node, k, c, static_shape(node, shape), alpha)
  return run


_POISSON_T = ("float16", "float32", "float64", "int32", "int64")


@lowering("StatelessRandomPoisson", attrs={"Rtype": _POISSON_T, "dtype": _POISSON_T,
                                           "T": _SHAPE_T, "Tseed": _SEED_T},
          static_inputs=(0,))
def poisson(node):
  dtype = node.attrs["dtype"]

  def run(shape, seed, rate):
    shape = static_shape(node, shape)
    _ends_with(node, shape, rate.shape, "rate")
    key, counter = _seed_key_counter(node, seed)
    return _host(node, functools.partial(_poisson_host, shape=shape, dtype=dtype), shape,
                 dtype, key, counter, rate)
  return run


def _poisson_host(key, counter, rate, *, shape, dtype):
  return host.poisson(key, counter, shape, rate, dtype)


def binomial_sample(node, key, counter, shape, counts, probs):
  """The samples of Stateless/StatefulRandomBinomial (counts and probs broadcast together
  to the trailing dims of `shape`)."""
  dtype = node.attrs["dtype"]
  try:
    batch = np.broadcast_shapes(tuple(counts.shape), tuple(probs.shape))
  except ValueError:
    raise ValueError(f"{node.op} node {node.path!r}: counts of shape {list(counts.shape)} and "
                     f"probs of shape {list(probs.shape)} do not broadcast") from None
  _ends_with(node, shape, batch, "broadcast counts/probs")
  xp = np if is_static(counts, probs) else jnp
  counts, probs = xp.broadcast_to(counts, batch), xp.broadcast_to(probs, batch)
  return _host(node, functools.partial(_binomial_host, shape=shape, dtype=dtype), shape,
               dtype, key, counter, counts, probs)


def _binomial_host(key, counter, counts, probs, *, shape, dtype):
  return host.binomial(key, counter, shape, counts, probs, dtype)


_BINOMIAL_OUT = ("float16", "float32", "float64", "int32", "int64")
_BINOMIAL_T = ("float16", "float32", "float64")


@lowering("StatelessRandomBinomial", attrs={"dtype": _BINOMIAL_OUT, "T": _BINOMIAL_T,
                                            "S": _SHAPE_T, "Tseed": _SEED_T},
          static_inputs=(0,))
def binomial(node):
  def run(shape, seed, counts, probs):
    key, counter = _seed_key_counter(node, seed)
    return binomial_sample(node, key, counter, static_shape(node, shape), counts, probs)
  return run


@lowering("StatelessMultinomial", attrs={"T": FLOAT, "output_dtype": ("int32", "int64"),
                                         "Tseed": _SEED_T}, static_inputs=(1,))
def multinomial(node):
  """Sequential over rows, as TF's kernel on one thread. TF splits large batches (batch x
  50 x (num_samples log2(classes) + classes) above about 1e5) into shards that restart
  the Philox stream at thread-count-dependent rows: its own result then differs between
  machines; this one equals TF's with one intra-op thread."""
  dtype = node.attrs["output_dtype"]

  def run(logits, num_samples, seed):
    if len(logits.shape) != 2:
      raise ValueError(f"{node.op} node {node.path!r}: logits should be a matrix, got shape "
                       f"{list(logits.shape)}")
    n = int(np.asarray(num_samples))
    if n < 0:
      raise ValueError(f"{node.op} node {node.path!r}: num_samples should be non-negative, "
                       f"got {n}")
    batch, classes = logits.shape
    if classes == 0:
      raise ValueError(f"{node.op} node {node.path!r}: num_classes should be positive, got 0")
    key, counter = _seed_key_counter(node, seed)
    if batch * n == 0:
      return np.zeros((batch, n), dtype)
    return _host(node, functools.partial(host.multinomial, num_samples=n, dtype=dtype),
                 (batch, n), dtype, key, counter, logits)
  return run


@lowering("StatelessShuffle", attrs={"T": NUMBER + ("bool",)}, static_inputs=(3,))
def shuffle(node):
  """Shuffles along axis 0 with TF's permutation (drawn on the host from key and counter);
  the values stay in JAX."""
  def run(value, key, counter, alg):
    _check_alg(node, alg)
    k, c = words_of_key_counter(f"{node.op} node {node.path!r}", key, counter)
    if len(value.shape) == 0 or value.shape[0] <= 1 or math.prod(value.shape) == 0:
      return value
    size = value.shape[0]
    perm = host.on_host(functools.partial(host.shuffle_permutation, size=size), (size,),
                        np.int32 if size < 2**31 else np.int64, k, c)
    xp = np if is_static(value, perm) else jnp
    return xp.take(value, perm.astype(np.int32) if xp is np else perm, axis=0)
  return run


@lowering("StatelessParameterizedTruncatedNormal",
          attrs={"dtype": ("float16", "float32", "float64"), "S": _SHAPE_T,
                 "Tseed": _SEED_T}, static_inputs=(0,))
def parameterized_truncated_normal(node):
  """Parameters broadcast together to the trailing dims of `shape`; sequential over batch
  members, as TF on one thread (TF shards outputs above roughly a thousand by its thread
  count, which makes its own result machine-dependent)."""
  dtype = node.attrs["dtype"]

  def run(shape, seed, means, stddevs, minvals, maxvals):
    shape = static_shape(node, shape)
    params = (means, stddevs, minvals, maxvals)
    try:
      batch = np.broadcast_shapes(*(tuple(p.shape) for p in params))
    except ValueError:
      raise ValueError(f"{node.op} node {node.path!r}: means, stddevs, minvals and maxvals "
                       f"of shapes {[list(p.shape) for p in params]} do not broadcast") \
          from None
    _ends_with(node, shape, batch, "broadcast parameter")
    xp = np if is_static(*params) else jnp
    params = [xp.broadcast_to(p, batch) for p in params]
    key, counter = _seed_key_counter(node, seed)
    return _host(node, functools.partial(host.parameterized_truncated_normal, shape=shape),
                 shape, dtype, key, counter, *params)
  return run
