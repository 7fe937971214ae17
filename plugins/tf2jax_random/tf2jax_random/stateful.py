"""Stateful random ops, drawn from the converted function's `rng` key.

Each node draws from a key derived from the node's name (`ctx.rng()`), so results do
not depend on evaluation order and the same key gives the same numbers. TF's numbers
depend on its global seed and op seeds (`seed`/`seed2` attrs) and are not reproduced:
shapes and dtypes are TF's, and the distributions are the same (checked statistically).
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np

from tf2jax_core import FLOAT, NUMBER, lowering
from tf2jax_random.stateless import check_int_range, static_shape

_SEEDS = {"seed": None, "seed2": None}
_ATTRS = {"dtype": FLOAT, "T": ("int32", "int64"), **_SEEDS}
_SHAPE_T = ("int32", "int64")


def _compute_dtype(dtype):
  """float16/bfloat16 samples are drawn in float32 and rounded."""
  dtype = np.dtype(dtype)
  return np.dtype(np.float32) if dtype.itemsize < 4 else dtype


@lowering("RandomStandardNormal", attrs=_ATTRS, static_inputs=(0,), needs_rng=True)
def random_standard_normal(node):
  dtype = node.attrs["dtype"]
  return lambda ctx, shape: jax.random.normal(ctx.rng(), static_shape(node, shape), dtype)


@lowering("RandomUniform", attrs=_ATTRS, static_inputs=(0,), needs_rng=True)
def random_uniform(node):
  dtype = node.attrs["dtype"]
  return lambda ctx, shape: jax.random.uniform(ctx.rng(), static_shape(node, shape), dtype)


@lowering("TruncatedNormal", attrs=_ATTRS, static_inputs=(0,), needs_rng=True)
def truncated_normal(node):
  dtype = node.attrs["dtype"]

  def run(ctx, shape):
    shape = static_shape(node, shape)
    work = _compute_dtype(dtype)
    return jax.random.truncated_normal(ctx.rng(), -2.0, 2.0, shape, work).astype(dtype)
  return run


@lowering("RandomUniformInt", attrs={"Tout": ("int32", "int64"), "T": _SHAPE_T, **_SEEDS},
          static_inputs=(0,), needs_rng=True)
def random_uniform_int(node):
  dtype = node.attrs["Tout"]

  def run(ctx, shape, minval, maxval):
    shape = static_shape(node, shape)
    check_int_range(node, minval, maxval, math.prod(shape))
    return jax.random.randint(ctx.rng(), shape, minval, maxval, dtype)
  return run


@lowering("Multinomial", attrs={"T": FLOAT, "output_dtype": ("int32", "int64"), **_SEEDS},
          static_inputs=(1,), needs_rng=True)
def multinomial(node):
  out_dtype = node.attrs["output_dtype"]

  def run(ctx, logits, num_samples):
    if logits.ndim != 2:
      raise ValueError(f"{node.op} node {node.path!r}: logits must be a matrix, got shape "
                       f"{list(logits.shape)}")
    batch, classes = logits.shape
    n = int(num_samples)
    if n < 0:
      raise ValueError(f"{node.op} node {node.path!r}: num_samples must be >= 0, got {n}")
    if classes == 0 and batch * n:
      raise ValueError(f"{node.op} node {node.path!r}: num_classes should be positive")
    if batch * n == 0:
      return jnp.zeros((batch, n), out_dtype)
    work = jnp.asarray(logits).astype(_compute_dtype(logits.dtype))
    draws = jax.random.categorical(ctx.rng(), work, axis=-1, shape=(n, batch))
    return draws.T.astype(out_dtype)
  return run


@lowering("RandomShuffle", attrs={"T": NUMBER + ("bool",), **_SEEDS}, needs_rng=True)
def random_shuffle(node):
  def run(ctx, value):
    if np.ndim(value) == 0 or value.shape[0] <= 1:
      return value
    return jax.random.permutation(ctx.rng(), jnp.asarray(value), axis=0, independent=False)
  return run


@lowering("RandomGamma", attrs={"S": _SHAPE_T, "T": ("float16", "float32", "float64"),
                                **_SEEDS}, static_inputs=(0,), needs_rng=True)
def random_gamma(node):
  dtype = node.attrs["T"]

  def run(ctx, shape, alpha):
    shape = static_shape(node, shape) + tuple(alpha.shape)
    work = _compute_dtype(dtype)
    a = jnp.broadcast_to(jnp.asarray(alpha).astype(work), shape)
    return jax.random.gamma(ctx.rng(), a, shape, work).astype(dtype)
  return run


def _poisson(node, ctx, shape, rate, dtype):
  shape = static_shape(node, shape) + tuple(rate.shape)
  rate = jnp.asarray(rate)
  work = np.dtype(np.float64) if rate.dtype.itemsize == 8 else np.dtype(np.float32)
  lam = jnp.broadcast_to(rate.astype(work), shape)
  counts = jax.random.poisson(ctx.rng(), lam, shape, dtype=jnp.int64 if np.dtype(
      dtype).itemsize == 8 and jax.config.jax_enable_x64 else jnp.int32)
  if np.dtype(dtype).kind == "f":
    # TF returns NaN for NaN or negative rates in float outputs.
    counts = jnp.where(jnp.isnan(lam) | (lam < 0), jnp.nan, counts.astype(work))
  return counts.astype(dtype)


@lowering("RandomPoisson", attrs={"S": _SHAPE_T, "dtype": ("float16", "float32", "float64"),
                                  **_SEEDS}, static_inputs=(0,), needs_rng=True)
def random_poisson(node):
  dtype = node.attrs["dtype"]
  return lambda ctx, shape, rate: _poisson(node, ctx, shape, rate, dtype)


_POISSON_T = ("float16", "float32", "float64", "int32", "int64")


@lowering("RandomPoissonV2", attrs={"S": _SHAPE_T, "R": _POISSON_T, "dtype": _POISSON_T,
                                    **_SEEDS}, static_inputs=(0,), needs_rng=True)
def random_poisson_v2(node):
  dtype = node.attrs["dtype"]
  return lambda ctx, shape, rate: _poisson(node, ctx, shape, rate, dtype)


@lowering("ParameterizedTruncatedNormal", attrs=_ATTRS, static_inputs=(0,), needs_rng=True)
def parameterized_truncated_normal(node):
  dtype = node.attrs["dtype"]

  def run(ctx, shape, means, stdevs, minvals, maxvals):
    shape = static_shape(node, shape)
    if not shape:
      raise ValueError(f"{node.op} node {node.path!r}: shape must have at least one "
                       "dimension (the batch)")
    batch = shape[0]
    per_batch = math.prod(shape[1:])
    work = _compute_dtype(dtype)
    params = []
    for name, p in (("means", means), ("stdevs", stdevs), ("minvals", minvals),
                    ("maxvals", maxvals)):
      if np.ndim(p) > 1:
        raise ValueError(f"{node.op} node {node.path!r}: input {name} should be a scalar "
                         f"or vector, got shape {list(p.shape)}")
      size = int(np.size(p))
      if size not in (1, batch):
        raise ValueError(f"{node.op} node {node.path!r}: input {name} should have length 1 "
                         f"or shape[0] ({batch}), got {size}")
      p = jnp.asarray(p).astype(work).reshape(-1)
      params.append(jnp.broadcast_to(p, (batch,))[:, None])
    mean, std, lo, hi = params
    if batch * per_batch == 0:
      return jnp.zeros(shape, dtype)
    z = jax.random.truncated_normal(ctx.rng(), (lo - mean) / std, (hi - mean) / std,
                                    (batch, per_batch), work)
    return (z * std + mean).reshape(shape).astype(dtype)
  return run
