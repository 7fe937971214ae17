"""Activations, softmax and bias addition."""

from __future__ import annotations

import jax
import numpy as np

from tf2jax_core import FLOAT, REAL, is_static, lowering, xnp


@lowering("Relu", attrs={"T": REAL})
def relu(node):
  def run(x):
    return xnp(x).maximum(x, np.zeros((), x.dtype))
  return run


@lowering("Relu6", attrs={"T": REAL})
def relu6(node):
  def run(x):
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


def _softmax(x, log: bool):
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
