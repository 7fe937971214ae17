"""Normalization: FusedBatchNorm (V1, V2, V3), BatchNormWithGlobalNormalization, LRN, and
the gradient kernels FusedBatchNormGrad (V1, V2, V3) and LRNGrad.

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

import jax
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


# Gradient kernels ------------------------------------------------------------------------


def _bn_grad_value(g, xf, scale, mean, variance, eps, axes, b, n, training):
  """TF's FusedBatchNormGrad kernel, in float32: the statistics are the reserve spaces
  (training) or the population ones (inference), taken as given."""
  inv = lax.rsqrt(variance + np.float32(eps))
  x_scaled = (xf - b(mean)) * b(inv)
  sum_g = jnp.sum(g, axis=axes)
  scale_backprop = jnp.sum(g * x_scaled, axis=axes)
  if training:
    rn = np.float32(1 / n)
    dx = b(scale * inv) * (g - b(sum_g * rn) - x_scaled * b(scale_backprop * rn))
  else:
    dx = g * b(scale * inv)
  return dx, scale_backprop, sum_g


def _bn_grad_tf_gradient(g, xf, scale, mean, variance, eps, axes, b, training):
  """The function TF's registered gradient of FusedBatchNormGrad* differentiates
  (nn_fused_batch_norm_grad.py): in training mode it recomputes the batch mean and
  variance from x instead of reading the reserve spaces."""
  if training:
    mean_x = jnp.mean(xf, axis=axes)
    var_x = jnp.mean(jnp.square(xf - b(lax.stop_gradient(mean_x))), axis=axes)
    x_offset = xf - b(mean_x)
    m = jnp.mean(g * x_offset, axis=axes)
    dx = b(scale * lax.rsqrt(var_x + np.float32(eps))) * (
        g - b(jnp.mean(g, axis=axes)) - b(m / (var_x + np.float32(eps))) * x_offset)
    scale_backprop = lax.rsqrt(var_x + np.float32(eps)) * jnp.sum(g * x_offset, axis=axes)
  else:
    inv = lax.rsqrt(variance + np.float32(eps))
    dx = g * b(scale * inv)
    scale_backprop = jnp.sum(g * (xf - b(mean)) * b(inv), axis=axes)
  return dx, scale_backprop, jnp.sum(g, axis=axes)


def _fused_batch_norm_grad(node):
  op = node.op
  dtype = np.dtype(node.attrs.get("T", "float32"))
  fmt = node.attrs.get("data_format", "NHWC")
  last = channels_last(fmt)
  rank = 5 if fmt in ("NDHWC", "NCDHW") else 4
  ch = channel_axis(rank, last)
  axes = tuple(a for a in range(rank) if a != ch)
  eps = float(node.attrs.get("epsilon", 1e-4))
  training = bool(node.attrs.get("is_training", True))
  # TF runs its oneDNN kernel for 4-D float32/bfloat16 inputs: it returns scalars as
  # reserve_space_3/4 (V3: 4/5) and takes NCHW in inference mode; the Eigen kernel returns
  # empty vectors and computes inference-mode gradients only for channels-last data.
  onednn = onednn_enabled() and rank == 4 and dtype.name in ("float32", "bfloat16")
  placeholder = () if onednn else (0,)

  def run(dy, x, scale, r1, r2, r3=None):
    xs = shape_of(x)
    if len(xs) != rank:
      raise ValueError(f"{op} ({node.name!r}): x must be {rank}-dimensional for data_format "
                       f"{fmt}, got shape {xs}")
    if shape_of(dy) != xs:
      raise ValueError(f"{op} ({node.name!r}): x and y_backprop must have the same shape, got "
                       f"{xs} and {shape_of(dy)}")
    depth = xs[ch]
    for name, v in (("scale", scale), ("reserve_space_1", r1), ("reserve_space_2", r2)):
      if np.ndim(v) != 1 or np.size(v) != depth:
        raise ValueError(f"{op} ({node.name!r}): {name} must be a vector of the {depth} "
                         f"channels of x, got shape {shape_of(v)}")
    zeros = [jnp.zeros(placeholder, _F32)] * 2
    empty = 0 in xs
    if empty and rank == 5:
      # TF returns zeros, and a 4-D x_backprop (H and W merged), which its own gradient
      # cannot take.
      h = 2 if last else 3
      xs = xs[:h] + (xs[h] * xs[h + 1],) + xs[h + 2:]
      return [jnp.zeros(xs, dtype), jnp.zeros((depth,), _F32), jnp.zeros((depth,), _F32)] + zeros
    if not training and not last and not onednn and not empty:
      raise ValueError(f"{op} ({node.name!r}): TF's CPU kernel computes is_training=false "
                       f"gradients for {dtype.name} only in a channels-last data_format "
                       f"(NHWC, NDHWC), not {fmt}")
    bshape = [1] * rank
    bshape[ch] = depth

    def b(v):
      return jnp.reshape(v, bshape)
    n = int(np.prod([xs[a] for a in axes]))

    @jax.custom_jvp
    def grads(dy, x, scale, mean, variance):
      if empty:  # zeros (TF's gradient of them is its formula's: NaN for scale in training)
        return jnp.zeros(xs, dtype), jnp.zeros((depth,), _F32), jnp.zeros((depth,), _F32)
      g, xf = jnp.asarray(dy, _F32), jnp.asarray(x, _F32)
      dx, ds, do = _bn_grad_value(g, xf, scale, mean, variance, eps, axes, b, n, training)
      return dx.astype(dtype), ds, do

    @grads.defjvp
    def _jvp(primals, tangents):
      dy, x, scale, mean, variance = primals

      def tf_gradient(dy, x, scale):
        g, xf = jnp.asarray(dy, _F32), jnp.asarray(x, _F32)
        dx, ds, do = _bn_grad_tf_gradient(g, xf, scale, mean, variance, eps, axes, b,
                                          training)
        return dx.astype(dtype), ds, do
      _, out_tangents = jax.jvp(tf_gradient, (dy, x, scale), tangents[:3])
      return grads(*primals), out_tangents

    outs = grads(dy, x, jnp.asarray(scale, _F32), jnp.asarray(r1, _F32), jnp.asarray(r2, _F32))
    return list(outs) + zeros
  return run


_BN_GRAD_COMMON = {"epsilon": None, "is_training": None}


@lowering("FusedBatchNormGrad", attrs={"T": ("float32",), "data_format": ("NHWC", "NCHW"),
                                       **_BN_GRAD_COMMON})
def fused_batch_norm_grad(node):
  """(x_backprop, scale_backprop, offset_backprop, reserve_space_3, reserve_space_4) of
  FusedBatchNorm. is_training: x_backprop = scale * rsqrt(v + eps) * (dy - mean(dy) -
  (x - m) * mean(dy * (x - m)) / (v + eps)) with m, v the reserve spaces 1 and 2 (the
  batch mean and biased variance); else dy * scale * rsqrt(v + eps) with the population
  m, v. scale_backprop = sum(dy * (x - m)) * rsqrt(v + eps), offset_backprop = sum(dy).
  The last outputs are placeholders: zeros (scalars from the oneDNN kernel, else empty
  vectors). Half-precision x computes in float32."""
  return _fused_batch_norm_grad(node)


@lowering("FusedBatchNormGradV2", attrs={"T": ("float16", "bfloat16", "float32"),
                                         "U": ("float32",), "data_format": ("NHWC", "NCHW"),
                                         **_BN_GRAD_COMMON})
def fused_batch_norm_grad_v2(node):
  """FusedBatchNormGrad for float16/bfloat16/float32 x (float32 scale and statistics)."""
  return _fused_batch_norm_grad(node)


@lowering("FusedBatchNormGradV3", attrs={"T": ("float16", "bfloat16", "float32"),
                                         "U": ("float32",),
                                         "data_format": ("NHWC", "NCHW", "NDHWC", "NCDHW"),
                                         **_BN_GRAD_COMMON})
def fused_batch_norm_grad_v3(node):
  """FusedBatchNormGradV2 with reserve_space_3 (ignored on CPU) and 5-D data formats."""
  return _fused_batch_norm_grad(node)


@lowering("LRNGrad", attrs={"T": ("float16", "float32"), "depth_radius": None, "bias": None,
                            "alpha": None, "beta": None})
def lrn_grad(node):
  """The gradient of LRN from its input x and output y (NHWC, across channels):
  dx_k = g_k * N_k^-beta - 2 * alpha * beta * x_k * sum_{|j - k| <= r} g_j * y_j / N_j,
  N_j = bias + alpha * sum_{|i - j| <= r} x_i^2. TF's kernel reads y as given and skips the
  terms of a zero g_j (NaN in x or y there gives 0, not NaN); float16 is computed in float32
  here (TF's kernel rounds every step to float16)."""
  r = int(node.attrs.get("depth_radius", 5))
  bias = float(node.attrs.get("bias", 1.0))
  alpha = float(node.attrs.get("alpha", 1.0))
  beta = float(node.attrs.get("beta", 0.5))
  if r < 0:
    refuse(node, "depth_radius", "must be non-negative")

  def run(dy, x, y):
    xs = shape_of(dy)
    if len(xs) != 4:
      raise ValueError(f"LRNGrad ({node.name!r}): inputs must be 4-dimensional, got shape {xs}")
    if shape_of(x) != xs or shape_of(y) != xs:
      raise ValueError(f"LRNGrad ({node.name!r}): input_grads, input_image and output_image "
                       f"must have the same shape, got {xs}, {shape_of(x)}, {shape_of(y)}")
    dtype = np.dtype(dy.dtype)
    if 0 in xs:
      return jnp.zeros(xs, dtype)

    def window_sum(v):
      return lax.reduce_window(v, np.float32(0), lax.add, (1, 1, 1, 2 * r + 1), (1, 1, 1, 1),
                               ((0, 0), (0, 0), (0, 0), (r, r)))
    g, xf, yf = (jnp.asarray(v, _F32) for v in (dy, x, y))
    norm = np.float32(bias) + np.float32(alpha) * window_sum(jnp.square(xf))
    if beta == 0.5:
      power = lax.rsqrt(norm)
    elif beta == 1.0:
      power = 1 / norm
    else:
      power = jnp.power(norm, np.float32(-beta))
    # TF's kernel adds nothing for a zero gradient g_j, even where x or y is NaN.
    nonzero = g != 0
    zero = np.float32(0)
    # |j - k| <= r is symmetric: the sum over the windows j holding k is a window sum at k.
    cross = window_sum(jnp.where(nonzero, g * yf / norm, zero))
    dx = jnp.where(nonzero, g * power, zero) - np.float32(2 * alpha * beta) * xf * cross
    dx = jnp.where(window_sum(nonzero.astype(_F32)) > 0, dx, zero)
    return dx.astype(dtype)
  return run
