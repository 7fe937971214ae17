"""Conformance specs of tf2jax-nn's gradient kernels of activations and normalization:
ReluGrad, Relu6Grad, EluGrad, SeluGrad, LeakyReluGrad, SoftplusGrad, SoftsignGrad,
LRNGrad, FusedBatchNormGrad, FusedBatchNormGradV2 and FusedBatchNormGradV3.

A test dependency: only the plugin's `tf2jax_conformance_specs` hook imports this module.
Their own gradients are TF's registered ones (ReluGrad w.r.t. the incoming gradient is
ReluGrad again, ...); SoftsignGrad and LRNGrad have none in TF, so no gradient check.
"""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

from tf2jax_conformance import dtypes as D
from tf2jax_conformance import strategies as cst
from tf2jax_conformance.spec import EXACT, Example, OpSpec, Tolerance, default_tolerance

NO_GRAD = ("jit", "static", "x64", "vmap")


def _eps(dtype: str) -> float:
  return float(D.finfo(dtype).eps)


def _finite_max(*arrays) -> float:
  """The product of the largest finite magnitudes of `arrays` (0 for none)."""
  out = 1.0
  for a in arrays:
    a = np.abs(np.asarray(a).astype(np.float64))
    a = a[np.isfinite(a)]
    out *= float(a.max()) if a.size else 0.0
  return out


def _sum_tolerance(dtype: str, terms: int, magnitude: float, rtol_ulps: float = 4
                   ) -> Tolerance:
  """Sums of `terms` terms of size `magnitude`: the summation order is the
  implementation's, so each term may carry a rounding error of the sum."""
  base = default_tolerance(dtype)
  return Tolerance(rtol=max(base.rtol, rtol_ulps * _eps(dtype)),
                   atol=base.atol + 2 * max(terms, 1) * _eps(dtype) * magnitude)


# Activation gradients -------------------------------------------------------------------


def _pair(second: str, bound_gradients: bool = False):
  """(gradients, `second`) of one shape, every edge value (NaN, +-inf, the largest finite
  values, subnormals); gradients at most max / 16 with `bound_gradients`."""
  def example(dtype):
    kw = {}
    if bound_gradients:
      big = float(D.finfo(dtype).max) / 16
      kw = dict(min_value=-big, max_value=big, allow_inf=False)

    def for_shape(shape):
      return st.tuples(cst.arrays(dtype, shape, **kw), cst.arrays(dtype, shape)).map(
          lambda t: Example({"gradients": t[0], second: t[1]}))
    return cst.shapes().flatmap(for_shape)
  return example


@st.composite
def _leaky_pair(draw, dtype):
  ex = draw(_pair("features")(dtype))
  ex.attrs["alpha"] = draw(st.sampled_from([0.2, 0.0, 0.01, 0.3, 1.0, 2.0, -0.5]))
  return ex


def _activation_specs() -> list[OpSpec]:
  exact = "A product with a 0/1 mask: exact (integers too)."
  return [
      OpSpec("ReluGrad", _pair("features"), tolerance=lambda d, ex: EXACT,
             notes=exact + " TF multiplies by the mask, so an infinite or NaN gradient "
                           "where features <= 0 gives NaN, not 0."),
      OpSpec("Relu6Grad", _pair("features"), tolerance=lambda d, ex: EXACT,
             notes=exact + " The mask is 0 < features < 6 (0 at 6); inf * 0 gives NaN."),
      OpSpec("LeakyReluGrad", _leaky_pair,
             notes="gradients where features > 0, else gradients * alpha (alpha rounded "
                   "to T): one rounding; default tolerance for half dtypes, where XLA may "
                   "keep a product in float32."),
      OpSpec("EluGrad", _pair("outputs"),
             notes="(y + 1) * g where y < 0, else g: two roundings, the default "
                   "tolerance (XLA may skip the rounding between them in half precision)."),
      OpSpec("SeluGrad", _pair("outputs"),
             notes="g * (y + scale * alpha) where y < 0, else g * scale: two roundings, "
                   "default tolerance."),
      OpSpec("SoftplusGrad", _pair("features", bound_gradients=True),
             notes="g / (exp(-x) + 1): exp may differ by an ulp between Eigen and XLA, "
                   "default tolerance. Gradients at most max / 16: the gradient w.r.t. x "
                   "is TF's (ct * g) / (exp(-x) + 2 + exp(x)), and JAX's transposition "
                   "computes ct * (g / (...)), which does not overflow where ct * g does."),
      OpSpec("SoftsignGrad", _pair("features"), transforms=NO_GRAD,
             notes="g / (|x| + 1)^2: three roundings, default tolerance. TF registers no "
                   "gradient for SoftsignGrad: no gradient check."),
  ]


# LRNGrad ---------------------------------------------------------------------------------


@st.composite
def _lrn_grad_example(draw, dtype):
  shape = (draw(st.integers(0, 2)), draw(st.integers(1, 3)), draw(st.integers(1, 3)),
           draw(st.integers(1, 7)))

  def values():
    return cst.arrays(dtype, shape, min_value=-3.0, max_value=3.0, allow_inf=False,
                      allow_subnormal=False)
  g, x, y = draw(values()), draw(values()), draw(values())
  if draw(st.booleans()):  # the output LRN gives (the usual input): y = x / N^beta
    y = None
  attrs = {"depth_radius": draw(st.integers(0, 3)),
           "bias": draw(st.sampled_from([1.0, 0.5, 2.0])),
           "alpha": draw(st.sampled_from([1.0, 0.1, 1e-4])),
           "beta": draw(st.sampled_from([0.5, 0.75, 1.0]))}
  if y is None:
    y = _lrn_reference(x, **attrs).astype(x.dtype)
  return Example({"input_grads": g, "input_image": x, "output_image": y}, attrs)


def _lrn_reference(x, depth_radius, bias, alpha, beta):
  xf = np.asarray(x, np.float64)
  sq = np.square(xf)
  c = xf.shape[-1]
  norm = np.zeros_like(xf)
  for k in range(c):
    norm[..., k] = sq[..., max(0, k - depth_radius):k + depth_radius + 1].sum(-1)
  return xf / (bias + alpha * norm) ** beta


def _lrn_grad_tolerance(dtype, ex):
  """dx_k sums 2r + 1 terms g_j * (N_j^-beta [j = k] - 2 alpha beta x_k y_j / N_j), with
  N_j >= bias; TF's float16 kernel also rounds the sum of squares in N_j (2r + 1 terms)
  to float16 at every step: twice as many roundings."""
  a = ex.attrs
  r, bias, alpha, beta = a["depth_radius"], a["bias"], a["alpha"], a["beta"]
  g = _finite_max(ex.inputs["input_grads"])
  x = _finite_max(ex.inputs["input_image"])
  y = _finite_max(ex.inputs["output_image"])
  term = g * (bias ** -beta + 2 * alpha * beta * x * y / bias)
  # A relative error e in N_j changes N_j^-beta and 1 / N_j by (beta or 1) * e.
  terms = (2 * r + 1) * (2 if dtype == "float16" else 1)
  return _sum_tolerance(dtype, terms, term * (1 + alpha * (2 * r + 1) * x * x / bias),
                        rtol_ulps=8)


# FusedBatchNormGrad -----------------------------------------------------------------------

_BN_FORMATS = {"FusedBatchNormGrad": ["NHWC", "NCHW"],
               "FusedBatchNormGradV2": ["NHWC", "NCHW"],
               "FusedBatchNormGradV3": ["NHWC", "NCHW", "NDHWC", "NCDHW"]}


def _bn_grad_example(op: str):
  @st.composite
  def example(draw, dtype):
    fmt = draw(st.sampled_from(_BN_FORMATS[op]))
    rank = 5 if fmt in ("NDHWC", "NCDHW") else 4
    last = fmt.endswith("C")
    c = draw(st.integers(1, 3))
    # float32 is gradient-checked: no empty rank-5 x there (TF's kernel then returns a
    # rank-4 x_backprop, which TF's own second-order gradient cannot take).
    low = 1 if (rank == 5 and dtype == "float32") else 0
    other = draw(st.lists(st.integers(low, 3), min_size=rank - 1, max_size=rank - 1))
    shape = (other[0], *other[1:], c) if last else (other[0], c, *other[1:])
    training = draw(st.booleans())

    def values(dt, shp, bound):
      return cst.arrays(dt, shp, min_value=-bound, max_value=bound, allow_inf=False,
                        allow_subnormal=False, allow_nan=False)
    nan = draw(st.integers(0, 3)) == 0
    x = draw(cst.arrays(dtype, shape, min_value=-8.0, max_value=8.0, allow_inf=False,
                        allow_subnormal=False, allow_nan=nan))
    dy = draw(values(dtype, shape, 8.0))
    scale = draw(values("float32", (c,), 3.0))
    axes = tuple(a for a in range(rank) if a != (rank - 1 if last else 1))
    if training and x.size and draw(st.booleans()):
      # The reserve spaces FusedBatchNorm returns: the batch mean and biased variance.
      xf = x.astype(np.float64)
      mean = xf.mean(axis=axes).astype(np.float32)
      variance = xf.var(axis=axes).astype(np.float32)
    else:
      mean = draw(values("float32", (c,), 3.0))
      variance = draw(cst.arrays("float32", (c,), min_value=0.0, max_value=4.0,
                                 allow_nan=False, allow_subnormal=False))
    inputs = {"y_backprop": dy, "x": x, "scale": scale, "reserve_space_1": mean,
              "reserve_space_2": variance}
    if op == "FusedBatchNormGradV3":
      # Ignored on CPU (a oneDNN workspace elsewhere): any shape.
      r3 = draw(st.sampled_from([(), (0,), (c,)]))
      inputs["reserve_space_3"] = np.zeros(r3, np.float32) + np.float32(0.5)
    return Example(inputs, {"epsilon": draw(st.sampled_from([1e-3, 1e-4, 1e-5])),
                            "data_format": fmt, "is_training": training})
  return example


def _bn_magnitudes(ex):
  """(n, magnitude of a term of the sums, 1 / sqrt(variance + eps)) for the statistics of
  the reserve spaces and for the batch statistics of x (which TF's second-order gradient
  recomputes)."""
  x = np.asarray(ex.inputs["x"]).astype(np.float64)
  scale = np.asarray(ex.inputs["scale"], np.float64)
  c = scale.shape[0]
  fmt = ex.attrs["data_format"]
  ch = x.ndim - 1 if fmt.endswith("C") else 1
  axes = tuple(a for a in range(x.ndim) if a != ch)
  n = max(1, x.size // max(1, c))
  eps = ex.attrs["epsilon"]
  var = np.asarray(ex.inputs["reserve_space_2"], np.float64)
  inv = 1 / np.sqrt((var.min() if var.size else 1.0) + eps)
  with np.errstate(all="ignore"):
    batch_var = np.nanmin(x.var(axis=axes)) if x.size else 1.0
  inv_b = 1 / np.sqrt((batch_var if np.isfinite(batch_var) else 0.0) + eps)
  inv = max(inv, inv_b)
  g = _finite_max(ex.inputs["y_backprop"]) + 1
  xc = (_finite_max(x) + _finite_max(ex.inputs["reserve_space_1"]) + 1) * inv
  s = _finite_max(scale) + 1
  # x_backprop = s * inv * (g - mean(g) - x_scaled * mean(g * x_scaled)) and
  # scale_backprop = sum(g * x_scaled): terms of about s * inv * g * (2 + xc^2) and g * xc.
  return n, s * inv * g * (2 + xc * xc) + g * xc, inv


def _bn_grad_tolerance(dtype, ex):
  """float32 sums over the n reduced elements (TF's kernel and XLA sum in different
  orders); a half-precision x_backprop is rounded to T once more (TF's kernel computes in
  float32 too). The tolerance is one for the whole case, so its float32 outputs get the
  half one."""
  n, magnitude, _ = _bn_magnitudes(ex)
  f32 = _sum_tolerance("float32", n, magnitude)
  if dtype == "float32":
    return f32
  return Tolerance(rtol=4 * _eps(dtype), atol=f32.atol + 2 * _eps(dtype) * magnitude)


def _bn_grad_grad_tolerance(dtype, ex):
  """TF's second-order gradient differentiates its own float32 formula (batch statistics
  recomputed from x): derivatives of the sums bring further factors of inv^2 * x_scaled
  and of the cotangents (at most 10)."""
  n, magnitude, inv = _bn_magnitudes(ex)
  return _sum_tolerance("float32", n, 10 * magnitude * (1 + inv * inv), rtol_ulps=16)


def _bn_notes(op: str) -> str:
  return (
      "x_backprop, scale_backprop and offset_backprop from the reserve spaces taken as "
      "the batch mean and biased variance (training) or the population ones (inference); "
      "the last two outputs are TF's placeholders (zeros: scalars from the oneDNN kernel, "
      "float32/bfloat16 4-D x, else empty vectors) and are compared. Without oneDNN (and "
      "for float16, 5-D x) TF rejects is_training=false with channels-first data, which "
      "the strategy draws. An empty x gives zeros (a 4-D x_backprop for a 5-D x, as TF). "
      "Gradients (float32): TF's registered ones, which recompute the batch statistics "
      "from x in training mode and give the reserve spaces none.")


def _norm_specs() -> list[OpSpec]:
  out = []
  for op in _BN_FORMATS:
    out.append(OpSpec(op, _bn_grad_example(op), tolerance=_bn_grad_tolerance,
                      grad_tolerance=_bn_grad_grad_tolerance, grad_dtypes=("float32",),
                      notes=_bn_notes(op)))
  out.append(OpSpec("LRNGrad", _lrn_grad_example, tolerance=_lrn_grad_tolerance,
                    transforms=NO_GRAD,
                    notes="Finite inputs in [-3, 3] (with NaN), output_image drawn freely "
                          "or as LRN's output for input_image. TF registers no gradient "
                          "for LRNGrad: no gradient check."))
  return out


def specs() -> list[OpSpec]:
  return _activation_specs() + _norm_specs()
