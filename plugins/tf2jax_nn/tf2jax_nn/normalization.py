"""Normalization: FusedBatchNorm (V1, V2, V3), BatchNormWithGlobalNormalization, LRN.

FusedBatchNorm follows TF's CPU kernel:

* x of dtype T (float16/bfloat16/float32) is normalised in U = float32 and y cast to T.
* is_training=True normalises with the batch mean and the *biased* batch variance.
  Outputs 1 and 2 (batch_mean, batch_variance) are the statistics to keep: with
  exponential_avg_factor f == 1 the batch mean and the *unbiased* variance (n / (n - 1),
  n the number of reduced elements, no correction when n <= 1); with f != 1 the running
  averages (1 - f) * mean + f * batch_mean and (1 - f) * variance + f * unbiased_var.
  reserve_space_1 / reserve_space_2 are the batch mean and biased variance.
* is_training=False normalises with the given mean and variance; outputs 1-4 are those.
* An empty x gives NaN statistics and zero reserve spaces, as TF does.
* reserve_space_3 (V3) is an empty float32 array whose shape TF's kernel decides: [0]
  for the oneDNN kernel (float32/bfloat16, rank 4, oneDNN on), a scalar otherwise.
* Gradients follow TF's registered gradient: only y is differentiated (through x, scale
  and offset, and through the batch statistics in training mode); the mean and variance
  inputs and outputs 1-5 get no gradient.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
from jax import lax

from tf2jax_core import lowering
from tf2jax_nn._common import channel_axis, channels_last, onednn_enabled, refuse, shape_of

_F32 = np.dtype("float32")


def _fused_batch_norm(node):
  op = node.op
  dtype = np.dtype(node.attrs.get("T", "float32"))
  fmt = node.attrs.get("data_format", "NHWC")
  last = channels_last(fmt)
  rank = 5 if fmt in ("NDHWC", "NCDHW") else 4
  ch = channel_axis(rank, last)
  axes = tuple(a for a in range(rank) if a != ch)
  eps = float(node.attrs.get("epsilon", 1e-4))
  factor = float(node.attrs.get("exponential_avg_factor", 1.0))
  training = bool(node.attrs.get("is_training", True))
  v3 = op == "FusedBatchNormV3"
  r3_shape = (0,) if (onednn_enabled() and rank == 4 and dtype.name in ("float32", "bfloat16")) \
      else ()

  def run(x, scale, offset, mean, variance):
    xs = shape_of(x)
    if len(xs) != rank:
      raise ValueError(f"{op}: input must be {rank}-dimensional for data_format {fmt}, got "
                       f"shape {xs}")
    depth = xs[ch]
    sizes = {"scale": scale, "offset": offset, "mean": mean, "variance": variance}
    need = ["scale", "offset"]
    if not training:
      need += ["mean", "variance"]
    elif factor != 1.0:
      need += ["mean", "variance"]
    for name in need:
      if np.size(sizes[name]) != depth or np.ndim(sizes[name]) != 1:
        raise ValueError(f"{op}: {name} must have the same number of elements as the "
                         f"channels of x, got shape {shape_of(sizes[name])} and {depth}"
                         + (" (is_training=false)" if not training else ""))
    bshape = [1] * rank
    bshape[ch] = depth

    def b(v):
      return jnp.reshape(v, bshape)

    xf = jnp.asarray(x, _F32)
    scale = jnp.asarray(scale, _F32)
    offset = jnp.asarray(offset, _F32)
    mean = lax.stop_gradient(jnp.asarray(mean, _F32))
    variance = lax.stop_gradient(jnp.asarray(variance, _F32))
    n = int(np.prod([xs[a] for a in axes]))
    if training:
      if n == 0:
        nan = jnp.full((depth,), np.nan, _F32)
        batch_mean, batch_var = nan, nan
      else:
        batch_mean = jnp.mean(xf, axis=axes)
        batch_var = jnp.mean(jnp.square(xf - b(batch_mean)), axis=axes)
      inv = lax.rsqrt(batch_var + np.float32(eps))
      y = (xf - b(batch_mean)) * b(inv * scale) + b(offset)
      adjust = np.float32(n / (n - 1)) if n > 1 else np.float32(1)
      if factor == 1.0:
        out_mean, out_var = batch_mean, batch_var * adjust
      else:
        f = np.float32(factor)
        out_mean = (np.float32(1) - f) * mean + f * batch_mean
        out_var = (np.float32(1) - f) * variance + (f * adjust) * batch_var
      r1, r2 = batch_mean, batch_var
    else:
      inv = lax.rsqrt(variance + np.float32(eps))
      y = (xf - b(mean)) * b(inv * scale) + b(offset)
      out_mean, out_var, r1, r2 = mean, variance, mean, variance
      if n == 0:
        nan = jnp.full((depth,), np.nan, _F32)
        out_mean, out_var = nan, nan
    if n == 0:
      r1 = r2 = jnp.zeros((depth,), _F32)
      y = jnp.zeros(xs, _F32)  # empty; keeps NaN statistics out of the gradients
    stats = [lax.stop_gradient(v) for v in (out_mean, out_var, r1, r2)]
    outs = [y.astype(dtype)] + stats
    if v3:
      outs.append(jnp.zeros(r3_shape, _F32))
    return outs
  return run


_BN_COMMON = {"epsilon": None, "exponential_avg_factor": None, "is_training": None}


@lowering("FusedBatchNorm", attrs={"T": ("float32",), "data_format": ("NHWC", "NCHW"),
                                   **_BN_COMMON})
def fused_batch_norm(node):
  return _fused_batch_norm(node)


@lowering("FusedBatchNormV2", attrs={"T": ("float16", "bfloat16", "float32"),
                                     "U": ("float32",), "data_format": ("NHWC", "NCHW"),
                                     **_BN_COMMON})
def fused_batch_norm_v2(node):
  return _fused_batch_norm(node)


@lowering("FusedBatchNormV3", attrs={"T": ("float16", "bfloat16", "float32"),
                                     "U": ("float32",),
                                     "data_format": ("NHWC", "NCHW", "NDHWC", "NCDHW"),
                                     **_BN_COMMON})
def fused_batch_norm_v3(node):
  return _fused_batch_norm(node)


@lowering("BatchNormWithGlobalNormalization",
          attrs={"T": ("float16", "float32", "float64"), "variance_epsilon": None,
                 "scale_after_normalization": None})
def batch_norm_with_global_normalization(node):
  """The pre-FusedBatchNorm op (removed from GraphDef version 9, found in old graphs):
  (t - m) * rsqrt(v + eps) * gamma + beta, gamma only with scale_after_normalization."""
  eps = float(node.attrs["variance_epsilon"])
  scale_after = bool(node.attrs["scale_after_normalization"])

  def run(t, m, v, beta, gamma):
    ts = shape_of(t)
    if len(ts) != 4:
      raise ValueError(f"{node.op}: input must be 4-dimensional, got shape {ts}")
    for name, a in (("m", m), ("v", v), ("beta", beta), ("gamma", gamma)):
      if shape_of(a) != (ts[3],):
        raise ValueError(f"{node.op}: {name} must be a vector of {ts[3]} elements, got "
                         f"shape {shape_of(a)}")
    dtype = np.dtype(t.dtype)
    factor = lax.rsqrt(jnp.asarray(v) + np.asarray(eps, dtype))
    if scale_after:
      factor = factor * gamma
    return ((jnp.asarray(t) - m) * factor + beta).astype(dtype)
  return run


@lowering("LRN", attrs={"T": ("float16", "float32"), "depth_radius": None, "bias": None,
                        "alpha": None, "beta": None})
def lrn(node):
  """Local response normalisation across channels (NHWC):
  x / (bias + alpha * sum(x[..., c - r : c + r + 1] ** 2)) ** beta; float16 in float32."""
  r = int(node.attrs.get("depth_radius", 5))
  bias = float(node.attrs.get("bias", 1.0))
  alpha = float(node.attrs.get("alpha", 1.0))
  beta = float(node.attrs.get("beta", 0.5))
  if r < 0:
    refuse(node, "depth_radius", "must be non-negative")

  def run(x):
    xs = shape_of(x)
    if len(xs) != 4:
      raise ValueError(f"LRN: input must be 4-dimensional, got shape {xs}")
    dtype = np.dtype(x.dtype)
    xf = jnp.asarray(x, _F32)
    if 0 in xs:
      return jnp.zeros(xs, dtype)
    sq = lax.reduce_window(jnp.square(xf), np.float32(0), lax.add, (1, 1, 1, 2 * r + 1),
                           (1, 1, 1, 1), ((0, 0), (0, 0), (0, 0), (r, r)))
    base = np.float32(bias) + np.float32(alpha) * sq
    if beta == 0.5:
      scale = lax.rsqrt(base)
    elif beta == 1.0:
      scale = 1 / base
    else:
      scale = jnp.power(base, np.float32(-beta))
    return (xf * scale).astype(dtype)
  return run

