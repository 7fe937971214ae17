"""Activations, softmax and bias addition."""

from __future__ import annotations

import jax
import numpy as np

from tf2jax_core import FLOAT, REAL, is_static, lowering, xnp


# jax.nn.relu / relu6 have TF's gradients: 0 at the kinks (x = 0, x = 6) and at NaN, where
# maximum/minimum would split the gradient in halves.


@lowering("Relu", attrs={"T": REAL})
def relu(node):
  def run(x):
    if not is_static(x) and jax.numpy.issubdtype(x.dtype, jax.numpy.floating):
      return jax.nn.relu(x)
    return xnp(x).maximum(x, np.zeros((), x.dtype))
  return run


@lowering("Relu6", attrs={"T": REAL})
def relu6(node):
  def run(x):
    if not is_static(x) and jax.numpy.issubdtype(x.dtype, jax.numpy.floating):
      return jax.nn.relu6(x)
    m = xnp(x)
    return m.minimum(m.maximum(x, np.zeros((), x.dtype)), np.asarray(6, x.dtype))
  return run


@lowering("BiasAdd", "BiasAddV1", attrs={"T": REAL + ("complex64", "complex128"),
                                         "data_format": ("NHWC", "NCHW")})
def bias_add(node):
  channels_first = node.attrs.get("data_format", "NHWC") == "NCHW"

  def run(x, bias):
    axis = 1 if channels_first else -1
    if np.ndim(bias) != 1 or np.ndim(x) < 2 or np.shape(x)[axis] != np.shape(bias)[0]:
      raise ValueError(f"BiasAdd needs a rank-1 bias matching the channels of a rank >= 2 "
                       f"input; got value {np.shape(x)}, bias {np.shape(bias)}")
    if channels_first and np.ndim(x) > 2:
      bias = xnp(bias).reshape(bias, (-1,) + (1,) * (np.ndim(x) - 2))
    return xnp(x, bias).add(x, bias)
  return run


@lowering("BiasAddGrad", attrs={"T": REAL + ("complex64", "complex128"),
                                "data_format": ("NHWC", "NCHW")})
def bias_add_grad(node):
  """Sums the gradient over every axis but the channels (axis 1 for NCHW, else the last).
  Half-precision dtypes accumulate in float32, like TF's kernel; integers wrap around."""
  channels_first = node.attrs.get("data_format", "NHWC") == "NCHW"

  def run(dy):
    if np.ndim(dy) < 2:
      raise ValueError(f"BiasAddGrad ({node.name!r}) needs a rank >= 2 gradient, got shape "
                       f"{np.shape(dy)}")
    axis = 1 if channels_first else np.ndim(dy) - 1
    axes = tuple(a for a in range(np.ndim(dy)) if a != axis)
    dtype = np.dtype(dy.dtype)
    acc = np.float32 if dtype.name in ("float16", "bfloat16") else dtype
    m = xnp(dy)
    return m.asarray(m.sum(m.asarray(dy, acc), axis=axes, dtype=acc), dtype)
  return run


def _softmax(x, log: bool):
  if is_static(x) and np.size(x) == 0:
    return np.array(x, copy=True)
  if is_static(x):
    shifted = x - np.max(x, axis=-1, keepdims=True)
    if log:
      return (shifted - np.log(np.sum(np.exp(shifted), axis=-1, keepdims=True))).astype(x.dtype)
    e = np.exp(shifted)
    return (e / np.sum(e, axis=-1, keepdims=True)).astype(x.dtype)
  return jax.nn.log_softmax(x, axis=-1) if log else jax.nn.softmax(x, axis=-1)


@lowering("Softmax", "LogSoftmax", attrs={"T": FLOAT})
def softmax(node):
  log = node.op == "LogSoftmax"
  return lambda logits: _softmax(logits, log)


# Elu, Selu, LeakyRelu, Softplus, Softsign -------------------------------------------------
#
# The formulas are those of TF's Eigen kernels (relu_op_functor.h, softplus_op.h), so
# results agree to the last bits: Elu and Selu use exp(x) - 1 (not expm1), LeakyRelu
# selects on x > 0 (so alpha > 1 and negative alphas behave as in TF), and Softplus
# switches to x / exp(x) beyond TF's thresholds. Branches not taken are fed clamped values
# so that nothing overflows. Gradients are TF's registered ones (EluGrad: g * (y + 1)
# where y < 0, SeluGrad, SoftplusGrad: g / (exp(-x) + 1), SoftsignGrad: g / (1 + |x|)^2),
# which differ from the exact derivative by TF's rounding and at infinities.

_SELU_SCALE = 1.0507009873554804934193349852946
_SELU_SCALE_ALPHA = 1.7580993408473768599402175208123


def _tf_gradient(forward, gradient):
  """`forward(numpy_or_jnp, x)` with `gradient(x, y, tangent)` as its derivative; static
  inputs are computed with NumPy."""
  @jax.custom_jvp
  def traced(x):
    return forward(jax.numpy, x)

  @traced.defjvp
  def _jvp(primals, tangents):
    (x,), (t,) = primals, tangents
    y = traced(x)
    return y, gradient(x, y, t)

  def run(x):
    return forward(np, x) if is_static(x) else traced(x)
  return run


def _c(value, x):
  return np.asarray(value, x.dtype)


def _exp_minus_one(m, x):
  return m.exp(m.minimum(x, _c(0, x))) - _c(1, x)


def _elu(m, x):
  return m.where(x < 0, _exp_minus_one(m, x), x)


def _selu(m, x):
  return m.where(x < 0, _c(_SELU_SCALE_ALPHA, x) * _exp_minus_one(m, x), _c(_SELU_SCALE, x) * x)


def _softplus(m, x):
  # TF: threshold = log(eps) + 2; x > -threshold -> x; x < threshold -> exp(x);
  # else log1p(exp(x)). float16/bfloat16 compute in float32 like TF's kernel.
  dtype = x.dtype
  work = np.dtype("float32") if np.dtype(dtype).name in ("float16", "bfloat16") else dtype
  xw = x.astype(work)
  threshold = np.asarray(np.log(np.finfo(work).eps) + 2, work)
  big = xw > -threshold
  small = xw < threshold
  mid = m.clip(xw, threshold, -threshold)
  out = m.where(big, xw, m.where(small, m.exp(m.minimum(xw, threshold)), m.log1p(m.exp(mid))))
  return out.astype(dtype)


def _softsign(m, x):
  return x / (m.abs(x) + _c(1, x))


# The factors are selected before multiplying the tangent, so that transposing the JVP
# never multiplies a zero cotangent by an infinite factor of the branch not taken.
_elu_run = _tf_gradient(_elu, lambda x, y, t: t * jax.numpy.where(y < 0, y + _c(1, y),
                                                                  _c(1, y)))
_selu_run = _tf_gradient(_selu, lambda x, y, t: t * jax.numpy.where(
    y < 0, y + _c(_SELU_SCALE_ALPHA, y), _c(_SELU_SCALE, y)))
_softplus_run = _tf_gradient(_softplus, lambda x, y, t: t / (jax.numpy.exp(-x) + _c(1, x)))
_softsign_run = _tf_gradient(_softsign, lambda x, y, t: t / jax.numpy.square(
    jax.numpy.abs(x) + _c(1, x)))


@lowering("Elu", attrs={"T": FLOAT})
def elu(node):
  return _elu_run


@lowering("Selu", attrs={"T": FLOAT})
def selu(node):
  return _selu_run


@lowering("LeakyRelu", attrs={"T": FLOAT, "alpha": None})
def leaky_relu(node):
  alpha = float(node.attrs.get("alpha", 0.2))

  def run(x):
    m = xnp(x)
    return m.where(x > 0, x, x * _c(alpha, x))
  return run


@lowering("Softplus", attrs={"T": FLOAT})
def softplus(node):
  return _softplus_run


@lowering("Softsign", attrs={"T": FLOAT})
def softsign(node):
  return _softsign_run


# Gradient kernels ---------------------------------------------------------------------------
#
# The kernels TF's gradient functions emit (graphs exported with their gradients hold them),
# with the formulas of TF's kernels, so that NaN and infinities come out as in TF: ReluGrad
# and Relu6Grad multiply the gradient by a 0/1 mask (an infinite gradient where the mask is 0
# gives NaN), the others select a factor. Their own gradients are TF's registered ones (all
# but SoftsignGrad have one): w.r.t. the incoming gradient the kernel itself; w.r.t. the
# features nothing for ReluGrad, Relu6Grad and LeakyReluGrad, g where y < 0 for EluGrad and
# SeluGrad, and g / (exp(-x) + 2 + exp(x)) for SoftplusGrad. JAX's derivatives of the
# formulas below are exactly those; SoftplusGrad's is written out (the plain derivative
# overflows to NaN where TF's formula gives 0).


def _same_shape(node, gradients, other, name: str):
  if np.shape(gradients) != np.shape(other):
    raise ValueError(f"{node.op} ({node.name!r}): gradients and {name} must have the same "
                     f"shape, got {np.shape(gradients)} and {np.shape(other)}")


@lowering("ReluGrad", "Relu6Grad", attrs={"T": REAL})
def relu_grad(node):
  """gradients * (features > 0), times (features < 6) for Relu6Grad, as a product (an
  infinite or NaN gradient gives NaN where the mask is 0)."""
  six = node.op == "Relu6Grad"

  def run(g, x):
    _same_shape(node, g, x, "features")
    m = xnp(g, x)
    keep = x > _c(0, x)
    if six:
      keep = keep & (x < _c(6, x))
    # g * 0 where masked, not 0: TF multiplies by the mask (inf * 0 = NaN), and XLA turns
    # a product with a converted mask into a select.
    return m.where(keep, g, g * _c(0, g))
  return run


@lowering("LeakyReluGrad", attrs={"T": FLOAT, "alpha": None})
def leaky_relu_grad(node):
  """gradients where features > 0, else gradients * alpha (alpha rounded to T)."""
  alpha = float(node.attrs.get("alpha", 0.2))

  def run(g, x):
    _same_shape(node, g, x, "features")
    return g * xnp(g, x).where(x > _c(0, x), _c(1, g), _c(alpha, g))
  return run


@lowering("EluGrad", "SeluGrad", attrs={"T": FLOAT})
def elu_grad(node):
  """From Elu's (Selu's) outputs y: gradients * (y + 1) where y < 0, else gradients; Selu:
  gradients * (y + scale * alpha) where y < 0, else gradients * scale."""
  selu = node.op == "SeluGrad"

  def run(g, y):
    _same_shape(node, g, y, "outputs")
    m = xnp(g, y)
    if selu:
      factor = m.where(y < _c(0, y), y + _c(_SELU_SCALE_ALPHA, y), _c(_SELU_SCALE, y))
    else:
      factor = m.where(y < _c(0, y), y + _c(1, y), _c(1, y))
    return g * factor
  return run


def _softplus_grad(m, g, x):
  return g / (m.exp(-x) + _c(1, x))


@jax.custom_jvp
def _softplus_grad_traced(g, x):
  return _softplus_grad(jax.numpy, g, x)


@_softplus_grad_traced.defjvp
def _softplus_grad_jvp(primals, tangents):
  (g, x), (dg, dx) = primals, tangents
  jnp = jax.numpy
  second = g / (jnp.exp(-x) + _c(2, x) + jnp.exp(x))
  return _softplus_grad_traced(g, x), _softplus_grad(jnp, dg, x) + dx * second


@lowering("SoftplusGrad", attrs={"T": FLOAT})
def softplus_grad(node):
  """gradients / (exp(-features) + 1)."""
  def run(g, x):
    _same_shape(node, g, x, "features")
    return _softplus_grad(np, g, x) if is_static(g, x) else _softplus_grad_traced(g, x)
  return run


@lowering("SoftsignGrad", attrs={"T": FLOAT})
def softsign_grad(node):
  """gradients / (|features| + 1)^2. TF registers no gradient for it; JAX differentiates
  the formula."""
  def run(g, x):
    _same_shape(node, g, x, "features")
    m = xnp(g, x)
    return g / m.square(m.abs(x) + _c(1, x))
  return run
