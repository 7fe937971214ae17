"""Conformance specs of tf2jax-nn's Relu, Relu6, BiasAdd(V1), Softmax and LogSoftmax.

A test dependency: only the plugin's `tf2jax_conformance_specs` hook imports this module
(the other nn ops' specs are in nn_specs.py).
"""

from __future__ import annotations

import math

import numpy as np
from hypothesis import strategies as st

from tf2jax_conformance import dtypes as D
from tf2jax_conformance import strategies as cst
from tf2jax_conformance.spec import (Example, OpSpec, Tolerance, default_tolerance,
                                     largest_finite_abs)

from tf2jax_nn._common import native


def _features(dtype):
  return cst.arrays(dtype, cst.shapes()).map(lambda x: Example({"features": x}))


def _bias_add(with_format: bool):
  def example(dtype):
    formats = st.sampled_from(["NHWC", "NCHW"]) if with_format else st.just(None)

    def for_format(fmt):
      def for_shape(shape):
        channels = shape[1] if fmt == "NCHW" else shape[-1]
        return st.tuples(cst.arrays(dtype, shape), cst.arrays(dtype, (channels,))).map(
            lambda vb: Example({"value": vb[0], "bias": vb[1]},
                               {"data_format": fmt} if fmt else {}))
      # TF's graph shape inference wants rank >= 3 for NCHW (eager TF takes rank 2 too).
      return cst.shapes(min_dims=3 if fmt == "NCHW" else 2, max_dims=4).flatmap(for_shape)
    return formats.flatmap(for_format)
  return example


def _real_finfo(dtype):
  return D.finfo({"complex64": "float32", "complex128": "float64"}.get(dtype, dtype))


def _bias_add_grad(dtype):
  # Finite values at most max / 64 (64 elements at most): a sum of huge values overflows
  # or not depending on the summation order.
  kw = {} if dtype not in D.FLOAT + D.COMPLEX else dict(
      min_value=-float(_real_finfo(dtype).max) / 64, max_value=float(_real_finfo(dtype).max) / 64)

  def for_format(fmt):
    return cst.arrays(dtype, cst.shapes(min_dims=3 if fmt == "NCHW" else 2, max_dims=4),
                      **kw).map(
        lambda dy: Example({"out_backprop": dy}, {"data_format": fmt}))
  return st.sampled_from(["NHWC", "NCHW"]).flatmap(for_format)


def _bias_add_grad_tolerance(dtype: str, ex: Example) -> Tolerance:
  """A sum per channel: summation order is the implementation's (float32 accumulation
  for half dtypes, one rounding at the end)."""
  base = default_tolerance(dtype)
  if dtype not in D.FLOAT + D.COMPLEX:
    return base
  dy = np.abs(np.asarray(ex.inputs["out_backprop"]).astype(np.complex128))
  finite = dy[np.isfinite(dy)]
  n = max(int(np.size(dy)), 1)
  eps = float(_real_finfo(dtype).eps)
  return Tolerance(base.rtol, base.atol + 2 * n * eps * (float(finite.max()) if finite.size
                                                          else 0.0))


def _logits(log: bool):
  """Logits with every edge value (NaN, +-inf, the largest finite values), and rows of
  -inf only now and then. Not NaN or +inf for Softmax where TF runs oneDNN's kernel
  (float32, bfloat16): a row holding one gets NaN at those places and at others that
  depend on the vector lanes (e.g. [3.3, NaN at 14 of 17] -> NaN at 1 and 14), 0
  elsewhere. TF's Eigen kernels (float16, float64) and oneDNN's LogSoftmax give NaN for
  the whole row, as tf2jax does."""
  def example(dtype):
    special = log or not native(dtype)
    kwargs = {} if special else dict(allow_nan=False, max_value=float(D.finfo(dtype).max))

    @st.composite
    def draw_example(draw):
      x = draw(cst.arrays(dtype, cst.shapes(min_dims=1), **kwargs))
      if x.size and draw(st.integers(0, 3)) == 0:
        rows = x.reshape(-1, x.shape[-1]).copy()
        rows[draw(st.integers(0, rows.shape[0] - 1))] = -np.inf
        x = rows.reshape(x.shape)
      return Example({"logits": x})
    return draw_example()
  return example


def _softmax_tolerance(log: bool):
  def tolerance(dtype: str, ex: Example) -> Tolerance:
    """exp, a sum over the last axis and a division (or a log): a few ulps per term."""
    base = default_tolerance(dtype)
    x = np.asarray(ex.inputs["logits"]).astype(np.float64)
    n = x.shape[-1] if x.ndim else 1
    eps = float(D.finfo(dtype).eps)
    rtol = base.rtol + 2 * n * eps
    if not log:
      return Tolerance(rtol, base.atol + 2 * n * eps * float(D.finfo(dtype).tiny))
    scale = 2 * largest_finite_abs(x)
    return Tolerance(rtol, base.atol + 4 * eps * (scale + math.log(max(n, 1)) + 1))
  return tolerance


_SOFTMAX_NOTES = ("Logits with NaN, +-inf (rows of -inf give NaN) and the largest finite "
                  "values, except NaN and +inf for Softmax where TF runs oneDNN (float32, "
                  "bfloat16): its result for a row holding them depends on vector lanes "
                  "(NaN in some places, 0 in others). Tolerance: a few ulps per element of "
                  "the last axis (exp, sum, division); LogSoftmax also the absolute error "
                  "of x - max - log(sum).")


def specs() -> list[OpSpec]:
  return [
      OpSpec("Relu", _features),
      OpSpec("Relu6", _features),
      OpSpec("BiasAdd", _bias_add(True)),
      OpSpec("BiasAddV1", _bias_add(False)),
      OpSpec("BiasAddGrad", _bias_add_grad, tolerance=_bias_add_grad_tolerance,
             notes="NaN, subnormals and finite values up to max / 64 (sums of larger ones "
                   "overflow depending on the summation order); a sum per channel, so the "
                   "tolerance grows with the number of summed elements."),
      OpSpec("Softmax", _logits(False), tolerance=_softmax_tolerance(False),
             notes=_SOFTMAX_NOTES),
      OpSpec("LogSoftmax", _logits(True), tolerance=_softmax_tolerance(True),
             notes=_SOFTMAX_NOTES),
  ]
