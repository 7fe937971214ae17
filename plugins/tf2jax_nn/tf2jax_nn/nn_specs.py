"""Conformance specs of tf2jax-nn's activation, convolution, pooling and normalization ops.

`specs()` returns one `tf2jax_conformance.OpSpec` per op (a test dependency: this module
is only imported by the conformance harness).

What the strategies draw follows what TF's CPU kernels accept *in this process*
(`tf2jax_nn._common.native`): channels-first layouts, dilated 3-D / depthwise
convolutions and unequal depthwise strides only where TF runs its oneDNN kernels
(float32/bfloat16 with oneDNN on); grouped and dilated 2-D convolutions only for dtypes
whose gradients are not checked (TF's Eigen kernels have no gradient for them). Values
avoid subnormals where TF's kernels compare or multiply them: TF flushes denormals to
zero (FTZ/DAZ) on CPU, XLA does not. Filters have no NaN: a NaN tap over zero padding
gives NaN in TF's Eigen convolutions (0 * NaN) but not in oneDNN's nor XLA's, which skip
the padding.

Ops TF itself no longer runs, checked through a stand-in (`OpSpec.rewrite`): TF runs an
equivalent graph, which is then rewritten into the graph old TF versions wrote.
* Conv2DBackpropInputV2 (TF registers no kernel for it): Conv2DBackpropInput with the
  same attrs, whose input_sizes become a zero tensor of that shape.
* Conv3DBackpropInput (removed at GraphDef version 10): Conv3DBackpropInputV2, NDHWC.
* BatchNormWithGlobalNormalization (removed at version 9): its kernel's formula
  (t - m) * (rsqrt(v + eps) * gamma) + beta written with TF ops.
"""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

from tf2jax_conformance import dtypes as D
from tf2jax_conformance import strategies as cst
from tf2jax_conformance.spec import EXACT, Example, OpSpec, Tolerance, default_tolerance

from tf2jax_nn._common import native, window_pads

NO_GRAD = ("jit", "static", "x64", "vmap")
FLOATS = ("float16", "bfloat16", "float32", "float64")
F32_F64 = ("float32", "float64")


def _eps(dtype: str) -> float:
  return float(D.finfo(dtype).eps)


def _values(dtype: str, shape, bound: float = 4.0, nan: bool = True, inf: bool = False):
  """Moderate values (edge values within bounds: 0, -0, +-1, eps, NaN), no subnormals."""
  if dtype in D.INT:
    info = D.iinfo(dtype)
    return cst.arrays(dtype, shape, min_value=max(int(info.min), -20),
                      max_value=min(int(info.max), 20))
  kwargs = {} if inf else dict(min_value=-bound, max_value=bound)
  return cst.arrays(dtype, shape, allow_nan=nan, allow_inf=inf, allow_subnormal=False,
                    **kwargs)


def _finite_max(*arrays) -> float:
  out = 1.0
  for a in arrays:
    a = np.abs(np.asarray(a).astype(np.float64))
    a = a[np.isfinite(a)]
    out *= float(a.max()) if a.size else 0.0
  return out


def _sum_tolerance(dtype: str, terms: int, magnitude: float, rtol_ulps: float = 4) -> Tolerance:
  """Sums of `terms` products of size `magnitude`: summation order and accumulation
  precision are the implementation's (TF's half-precision kernels accumulate in half)."""
  if dtype in D.INT:
    return EXACT
  base = default_tolerance(dtype)
  return Tolerance(rtol=max(base.rtol, rtol_ulps * _eps(dtype)),
                   atol=base.atol + 2 * max(terms, 1) * _eps(dtype) * magnitude)


# Activations ----------------------------------------------------------------------------


def _unary(dtype):
  return cst.arrays(dtype, cst.shapes()).map(lambda x: Example({"features": x}))


def _leaky_relu(dtype):
  return st.tuples(cst.arrays(dtype, cst.shapes()),
                   st.sampled_from([0.2, 0.0, 0.01, 1.0, 2.0, -0.5])).map(
      lambda t: Example({"features": t[0]}, {"alpha": t[1]}))


def _activation_tolerance(dtype, ex):
  # exp(x) - 1 (TF's formula, not expm1) has an absolute error of about eps near 0, where
  # exp implementations differ by an ulp; half precision rounds twice in TF.
  base = default_tolerance(dtype)
  rtol = 4 * _eps(dtype) if dtype in ("float16", "bfloat16") else base.rtol
  return Tolerance(rtol=rtol, atol=2 * _eps(dtype))


_ACTIVATION_NOTES = ("Gradients follow TF's registered gradient kernels (EluGrad, SeluGrad, "
                     "SoftplusGrad, SoftsignGrad), checked for float32/float64; "
                     "half-precision gradients round differently.")


def _activation_specs():
  out = []
  for op in ["Elu", "Selu", "Softplus", "Softsign"]:
    out.append(OpSpec(op, _unary, tolerance=_activation_tolerance, grad_dtypes=F32_F64,
                      notes=_ACTIVATION_NOTES))
  out.append(OpSpec("LeakyRelu", _leaky_relu, tolerance=_activation_tolerance,
                    grad_dtypes=F32_F64, notes=_ACTIVATION_NOTES))
  return out


# Convolutions ---------------------------------------------------------------------------


def _ints(lo, hi, n):
  return st.lists(st.integers(lo, hi), min_size=n, max_size=n)


@st.composite
def _geometry(draw, nd: int, *, dilate: bool, explicit: bool, same_strides: bool = False,
              max_k: int = 3, max_side: int = 6, tight: bool = False):
  """Window sizes, strides, dilations, padding and input sizes with a non-empty window.

  tight: strides at most one more than the (dilated) window, where TF's Eigen kernels
  place SAME windows like everyone else (see `window_pads`' eigen_same) and so agree
  with TF's gradient kernels.
  """
  k = draw(_ints(1, max_k, nd))
  d = draw(_ints(1, 2, nd)) if dilate else [1] * nd
  top = [min(3, (kk - 1) * dd + 2) if tight else 3 for kk, dd in zip(k, d)]
  if same_strides:
    s = [draw(st.integers(1, min(top)))] * nd
  else:
    s = [draw(st.integers(1, t)) for t in top]
  padding = draw(st.sampled_from(["SAME", "VALID"] + (["EXPLICIT"] if explicit else [])))
  pads = [tuple(draw(_ints(0, 2, 2))) for _ in range(nd)] if padding == "EXPLICIT" else None
  sizes = []
  for i in range(nd):
    k_eff = (k[i] - 1) * d[i] + 1
    lo = max(1, k_eff - (sum(pads[i]) if pads else 0)) if padding != "SAME" else 1
    sizes.append(draw(st.integers(lo, max(lo, max_side))))
  return dict(k=k, s=s, d=d, padding=padding, pads=pads, sizes=sizes)


def _layout_attrs(g, nd: int, last: bool, with_dilations: bool = True) -> dict:
  def full(v):
    return [1] + list(v) + [1] if last else [1, 1] + list(v)
  attrs = {"strides": full(g["s"]), "padding": g["padding"]}
  if with_dilations:
    attrs["dilations"] = full(g["d"])
  if g["pads"] is not None:
    spatial = [p for pair in g["pads"] for p in pair]
    attrs["explicit_paddings"] = ([0, 0] + spatial + [0, 0]) if last else [0, 0, 0, 0] + spatial
  return attrs


def _shape(n, spatial, c, last):
  return (n, *spatial, c) if last else (n, c, *spatial)


def _out_sizes(g):
  return window_pads(g["padding"], g["sizes"], g["k"], g["s"], g["d"], g["pads"])[1]


def _conv_tolerance(dtype, ex):
  x = ex.inputs.get("input", ex.inputs.get("out_backprop"))
  w = ex.inputs["filter"]
  terms = int(np.prod(np.shape(w)[:-1])) * max(1, np.shape(w)[-1])
  return _sum_tolerance(dtype, terms, _finite_max(x, w))


def _conv_grad_tolerance(dtype, ex):
  x = ex.inputs.get("input", ex.inputs.get("out_backprop"))
  w = ex.inputs["filter"]
  terms = int(np.prod(np.shape(x))) * int(np.prod(np.shape(w)))
  return _sum_tolerance(dtype, terms, 10 * max(_finite_max(x), 1) * max(_finite_max(w), 1))


def _extras(dtype: str) -> bool:
  """Grouped / dilated convolutions: TF's CPU gradients of them need oneDNN."""
  return dtype not in F32_F64 or native(dtype)


def _first(draw, dtype: str) -> bool:
  """Draws a channels-first layout where TF's CPU kernels run one: oneDNN, and only for
  bfloat16, whose gradients are not checked (several of TF's gradient kernels take
  channels-first layouts or EXPLICIT padding only through Eigen, which refuses them)."""
  return native(dtype) and dtype == "bfloat16" and draw(st.booleans())


def _nan_ok(dtype: str) -> bool:
  """NaN inputs for the convolutions whose gradients are not checked. TF's gradient
  kernels multiply elements that no window reads (strides, padding) by zeros, so a NaN
  there reaches gradients that XLA's (and the exact) gradient leave finite."""
  return dtype not in F32_F64


def _min_batch(dtype: str) -> int:
  """oneDNN's convolutions return garbage shapes for an empty batch: draw none there."""
  return 1 if native(dtype) else 0


@st.composite
def _conv2d(draw, dtype):
  last = not _first(draw, dtype)
  g = draw(_geometry(2, dilate=_extras(dtype), explicit=True))
  n = draw(st.integers(_min_batch(dtype), 2))
  cin_g = draw(st.integers(1, 3))
  groups = draw(st.integers(1, 2)) if _extras(dtype) else 1
  cout = groups * draw(st.integers(1, 2))
  x = draw(_values(dtype, _shape(n, g["sizes"], cin_g * groups, last), nan=_nan_ok(dtype)))
  w = draw(_values(dtype, (*g["k"], cin_g, cout), nan=False))
  attrs = _layout_attrs(g, 2, last)
  attrs["data_format"] = "NHWC" if last else "NCHW"
  return Example({"input": x, "filter": w}, attrs)


@st.composite
def _conv_nd(draw, dtype):
  nd = draw(st.sampled_from([2, 3] if dtype != "int32" else [2]))
  g = draw(_geometry(nd, dilate=(nd == 2), explicit=(nd == 2), max_side=5 if nd == 2 else 4))
  batch = draw(st.lists(st.integers(0, 2), min_size=1, max_size=2))
  cin, cout = draw(st.integers(1, 3)), draw(st.integers(1, 3))
  x = draw(_values(dtype, (*batch, *g["sizes"], cin)))
  w = draw(_values(dtype, (*g["k"], cin, cout), nan=False))
  attrs = _layout_attrs(g, nd, True)
  if nd == 3 or all(v == 1 for v in g["d"]):
    attrs.pop("dilations")
  attrs["batch_dims"] = len(batch)
  return Example({"input": x, "filter": w}, attrs)


@st.composite
def _conv3d(draw, dtype):
  last = not _first(draw, dtype)
  g = draw(_geometry(3, dilate=native(dtype) and dtype not in F32_F64, explicit=False,
                     max_k=2, max_side=4, tight=dtype in F32_F64))
  n = draw(st.integers(_min_batch(dtype), 2))
  cin, cout = draw(st.integers(1, 2)), draw(st.integers(1, 2))
  x = draw(_values(dtype, _shape(n, g["sizes"], cin, last), nan=_nan_ok(dtype)))
  w = draw(_values(dtype, (*g["k"], cin, cout), nan=False))
  attrs = _layout_attrs(g, 3, last)
  attrs["data_format"] = "NDHWC" if last else "NCDHW"
  return Example({"input": x, "filter": w}, attrs)


@st.composite
def _depthwise(draw, dtype):
  last = not _first(draw, dtype)
  # Unequal strides: oneDNN only; its gradient (DepthwiseConv2dNativeBackpropInput) runs
  # EXPLICIT padding with Eigen, which refuses them: no EXPLICIT then for float32.
  same = not native(dtype) or draw(st.booleans())
  g = draw(_geometry(2, dilate=native(dtype) and dtype not in F32_F64,
                     explicit=same or dtype not in F32_F64, same_strides=same))
  # Batch >= 1: TF's DepthwiseConv2dNativeBackpropFilter (the gradient) returns
  # uninitialised memory for an empty batch.
  n, c, mult = draw(st.integers(1, 2)), draw(st.integers(1, 3)), draw(st.integers(1, 2))
  x = draw(_values(dtype, _shape(n, g["sizes"], c, last), nan=_nan_ok(dtype)))
  w = draw(_values(dtype, (*g["k"], c, mult), nan=False))
  attrs = _layout_attrs(g, 2, last)
  attrs["data_format"] = "NHWC" if last else "NCHW"
  return Example({"input": x, "filter": w}, attrs)


def _backprop_example(nd: int, depthwise: bool = False, sizes_dtype=None,
                      wrt_filter: bool = False):
  """Inputs of an input gradient (input_sizes, filter, out_backprop) or, with
  `wrt_filter`, of a filter gradient (input, filter_sizes, out_backprop)."""
  @st.composite
  def example(draw, dtype):
    last = not _first(draw, dtype)
    # oneDNN features (channels-first, dilations, groups, unequal depthwise strides):
    # TF runs EXPLICIT padding of these ops with Eigen, which refuses them.
    extras = native(dtype) and dtype == "bfloat16"
    same = depthwise and (not native(dtype) or draw(st.booleans()))
    dilate = extras and not depthwise and nd == 2 and draw(st.booleans())
    groups_ok = extras and nd == 2 and not dilate
    # The gradient of a 3-D backprop is TF's Eigen Conv3D: tight strides (see _geometry).
    g = draw(_geometry(nd, dilate=dilate, same_strides=same, max_k=3 if nd == 2 else 2,
                       explicit=nd == 2 and last and not dilate and (same or not depthwise),
                       max_side=6 if nd == 2 else 4, tight=nd == 3 and dtype in F32_F64))
    n = draw(st.integers(max(_min_batch(dtype), 1 if depthwise else 0), 2))  # _depthwise
    cin = draw(st.integers(1, 3))
    if depthwise:
      mult = draw(st.integers(1, 2))
      w_shape, cout = (*g["k"], cin, mult), cin * mult
    else:
      groups = draw(st.integers(1, 2)) if groups_ok and g["padding"] != "EXPLICIT" else 1
      cout = groups * draw(st.integers(1, 2))
      w_shape, cin = (*g["k"], cin, cout), cin * groups
    in_shape = _shape(n, g["sizes"], cin, last)
    # Filter gradients: no NaN in dy (JAX's gradient of a grouped convolution spreads a NaN
    # to other groups' filters through 0 * NaN; TF's kernel does not).
    dy = draw(_values(dtype, _shape(n, _out_sizes(g), cout, last),
                      nan=_nan_ok(dtype) and not wrt_filter))
    w = draw(_values(dtype, w_shape, nan=False))
    attrs = _layout_attrs(g, nd, last)
    attrs["data_format"] = ("NHWC" if last else "NCHW") if nd == 2 else \
        ("NDHWC" if last else "NCDHW")
    if wrt_filter:
      x = draw(_values(dtype, in_shape, nan=_nan_ok(dtype)))
      return Example({"input": x, "filter_sizes": np.asarray(w_shape, np.int32),
                      "out_backprop": dy}, attrs)
    spatial_only = nd == 2 and not depthwise and draw(st.booleans())
    sizes = list(g["sizes"]) if spatial_only else list(in_shape)
    sdtype = sizes_dtype(draw) if sizes_dtype else "int32"
    return Example({"input_sizes": np.asarray(sizes, D.np_dtype(sdtype)), "filter": w,
                    "out_backprop": dy}, attrs)
  return example


def _backprop_tolerance(dtype, ex):
  w, dy = ex.inputs["filter"], ex.inputs["out_backprop"]
  terms = int(np.prod(np.shape(w)))
  return _sum_tolerance(dtype, terms, _finite_max(w, dy))


def _backprop_grad_tolerance(dtype, ex):
  w, dy = ex.inputs["filter"], ex.inputs["out_backprop"]
  terms = int(np.prod(np.shape(dy))) * int(np.prod(np.shape(w)))
  return _sum_tolerance(dtype, terms, 10 * max(_finite_max(w), 1) * max(_finite_max(dy), 1))


def _filter_grad_tolerance(dtype, ex):
  x, dy = ex.inputs["input"], ex.inputs["out_backprop"]
  return _sum_tolerance(dtype, int(np.prod(np.shape(dy))), _finite_max(x, dy))


def _filter_grad_grad_tolerance(dtype, ex):
  x, dy = ex.inputs["input"], ex.inputs["out_backprop"]
  terms = int(np.prod(np.shape(dy))) * int(np.prod(np.shape(x)))
  return _sum_tolerance(dtype, terms, 10 * max(_finite_max(x), 1) * max(_finite_max(dy), 1))


@st.composite
def _dilation2d(draw, dtype):
  g = draw(_geometry(2, dilate=True, explicit=False))
  n, c = draw(st.integers(0, 2)), draw(st.integers(1, 3))
  if dtype in F32_F64:
    # TF's gradient kernels send the gradient of a window without any sum above the
    # lowest value (all -inf or NaN) to its first tap: gradient-checked dtypes are finite.
    x = draw(_values(dtype, (n, *g["sizes"], c), bound=1e30, nan=False))
    f = draw(_values(dtype, (*g["k"], c), bound=1e30, nan=False))
  else:
    kw = {} if dtype not in D.INT else dict(min_value=-100, max_value=100)
    x = draw(cst.arrays(dtype, (n, *g["sizes"], c), allow_subnormal=False, **kw))
    f = draw(cst.arrays(dtype, (*g["k"], c), allow_subnormal=False, **kw))
  return Example({"input": x, "filter": f},
                 {"strides": [1, *g["s"], 1], "rates": [1, *g["d"], 1],
                  "padding": g["padding"]})


def _dilation_tolerance(dtype, ex):
  # One addition per output; TF rounds it in half precision once, like XLA.
  return default_tolerance(dtype)


def _mirror_pads(draw, sizes, mode):
  limit = [s if mode == "SYMMETRIC" else s - 1 for s in sizes]
  pads = [[0, 0]]
  for lim in limit:
    pads.append(draw(_ints(0, max(0, min(lim, 2)), 2)))
  pads.append([0, 0])
  return pads


@st.composite
def _fused_pad_conv(draw, dtype):
  mode = draw(st.sampled_from(["REFLECT", "SYMMETRIC"]))
  sizes = draw(_ints(1, 5, 2))
  pads = _mirror_pads(draw, sizes, mode)
  padded = [s + sum(p) for s, p in zip(sizes, pads[1:3])]
  k = [draw(st.integers(1, min(3, p))) for p in padded]
  padding = draw(st.sampled_from(["SAME", "VALID"]))
  s = draw(_ints(1, 2, 2))
  cin, cout = draw(st.integers(1, 3)), draw(st.integers(1, 3))
  x = draw(_values(dtype, (1, *sizes, cin)))
  w = draw(_values(dtype, (*k, cin, cout), nan=False))
  return Example({"input": x, "paddings": np.asarray(pads, np.int32), "filter": w},
                 {"mode": mode, "strides": [1, *s, 1], "padding": padding})


@st.composite
def _fused_resize_pad_conv(draw, dtype):
  mode = draw(st.sampled_from(["REFLECT", "SYMMETRIC"]))
  sizes = draw(_ints(1, 4, 2))
  size = draw(_ints(1, 6, 2))
  pads = _mirror_pads(draw, size, mode)
  padded = [s + sum(p) for s, p in zip(size, pads[1:3])]
  k = [draw(st.integers(1, min(3, p))) for p in padded]
  cin, cout = draw(st.integers(1, 2)), draw(st.integers(1, 2))
  x = draw(_values(dtype, (1, *sizes, cin)))
  w = draw(_values(dtype, (*k, cin, cout), nan=False))
  return Example({"input": x, "size": np.asarray(size, np.int32),
                  "paddings": np.asarray(pads, np.int32), "filter": w},
                 {"mode": mode, "strides": [1, *draw(_ints(1, 2, 2)), 1],
                  "padding": draw(st.sampled_from(["SAME", "VALID"])),
                  "resize_align_corners": draw(st.booleans())})


_BATCH1 = ("Batch 1 only: TF's CPU kernel gives wrong results for the batch elements after "
           "the first (they differ from MirrorPad + Conv2D, which the lowering computes). "
           "TF registers no gradient for the op.")


def _conv_specs():
  return [
      OpSpec("Conv2D", _conv2d, tolerance=_conv_tolerance, grad_tolerance=_conv_grad_tolerance,
             grad_dtypes=F32_F64,
             notes="NCHW drawn only where TF's CPU kernel runs it (oneDNN, float32/bfloat16); "
                   "grouped and dilated convolutions only for dtypes whose gradients are not "
                   "checked, unless oneDNN runs them."),
      OpSpec("Conv", _conv_nd, tolerance=_conv_tolerance, transforms=NO_GRAD,
             notes="CHANNELS_LAST, groups=1; 3 spatial dims without EXPLICIT padding and "
                   "dilations (TF's CPU kernel rejects or aborts on those). TF registers no "
                   "gradient for Conv. With 3 spatial dims TF's Eigen kernel starts SAME "
                   "windows inside the input when the stride exceeds the window by 2 or "
                   "more; tf2jax does the same."),
      OpSpec("Conv3D", _conv3d, tolerance=_conv_tolerance, grad_tolerance=_conv_grad_tolerance,
             grad_dtypes=F32_F64,
             notes="TF's Eigen Conv3D starts SAME windows inside the input when the stride "
                   "exceeds the window by 2 or more (tf2jax too), but its gradient kernels "
                   "do not: gradient-checked dtypes draw strides at most window + 1."),
      OpSpec("DepthwiseConv2dNative", _depthwise, tolerance=_conv_tolerance,
             grad_tolerance=_conv_grad_tolerance, grad_dtypes=F32_F64),
      OpSpec("Conv2DBackpropInput", _backprop_example(2), static_inputs=("input_sizes",),
             tolerance=_backprop_tolerance, grad_tolerance=_backprop_grad_tolerance,
             grad_dtypes=F32_F64),
      OpSpec("Conv3DBackpropInputV2",
             _backprop_example(3, sizes_dtype=lambda draw: draw(cst.index_dtypes())),
             static_inputs=("input_sizes",), tolerance=_backprop_tolerance,
             grad_tolerance=_backprop_grad_tolerance, grad_dtypes=F32_F64),
      OpSpec("DepthwiseConv2dNativeBackpropInput", _backprop_example(2, depthwise=True),
             static_inputs=("input_sizes",), tolerance=_backprop_tolerance,
             grad_tolerance=_backprop_grad_tolerance, grad_dtypes=F32_F64),
      OpSpec("Conv2DBackpropFilter", _backprop_example(2, wrt_filter=True),
             static_inputs=("filter_sizes",), tolerance=_filter_grad_tolerance,
             grad_tolerance=_filter_grad_grad_tolerance, grad_dtypes=F32_F64,
             notes="Drawn like Conv2DBackpropInput (the same kernel restrictions)."),
      OpSpec("DepthwiseConv2dNativeBackpropFilter",
             _backprop_example(2, depthwise=True, wrt_filter=True),
             static_inputs=("filter_sizes",), tolerance=_filter_grad_tolerance,
             grad_tolerance=_filter_grad_grad_tolerance, grad_dtypes=F32_F64,
             notes="Batch >= 1: TF's kernel returns uninitialised memory for an empty batch."),
      OpSpec("Dilation2D", _dilation2d, tolerance=_dilation_tolerance, grad_dtypes=F32_F64,
             notes="NaN sums never win a window and empty windows give the dtype's lowest "
                   "value, as in TF's kernel; gradients go to the first maximum."),
      OpSpec("FusedPadConv2D", _fused_pad_conv, static_inputs=("paddings",),
             tolerance=_conv_tolerance, transforms=NO_GRAD, notes=_BATCH1),
      OpSpec("FusedResizeAndPadConv2D", _fused_resize_pad_conv,
             static_inputs=("size", "paddings"), tolerance=_conv_tolerance,
             transforms=NO_GRAD, notes=_BATCH1),
  ]


# Pooling --------------------------------------------------------------------------------


@st.composite
def _pool_geometry(draw, nd: int, explicit: bool, tight: bool = False):
  k = draw(_ints(1, 3, nd))
  s = [draw(st.integers(1, min(3, kk + 1) if tight else 3)) for kk in k]
  padding = draw(st.sampled_from(["SAME", "VALID"] + (["EXPLICIT"] if explicit else [])))
  pads = [tuple(draw(_ints(0, kk - 1, 2))) for kk in k] if padding == "EXPLICIT" else None
  sizes = []
  for i in range(nd):
    lo = max(1, k[i] - (sum(pads[i]) if pads else 0)) if padding != "SAME" else 1
    sizes.append(draw(st.integers(lo, max(lo, 6 if nd == 2 else 4))))
  return dict(k=k, s=s, d=[1] * nd, padding=padding, pads=pads, sizes=sizes)


def _pool_values(dtype, shape, nan=True, bound=None):
  if dtype in D.INT:
    return cst.arrays(dtype, shape)
  if bound is not None:
    return _values(dtype, shape, bound=bound, nan=nan)
  # NaN and +-inf also for the gradient-checked dtypes: TF's max-pooling gradient kernels
  # pick each window's element by their own rule (the first element of a window of -inf,
  # or of one starting with NaN), unlike its forward kernels, and so does the lowering.
  return cst.arrays(dtype, shape, allow_nan=nan, allow_subnormal=False)


def _pool_example(op: str, nd: int):
  @st.composite
  def example(draw, dtype):
    explicit = op == "MaxPool"
    g = draw(_pool_geometry(nd, explicit, tight=(nd == 3 and dtype == "float32")))
    # MaxPoolV2 has no data_format: NHWC only (channels-first strides would pool across
    # depth, which TF skips for empty inputs and refuses otherwise).
    last = op == "MaxPoolV2" or not (g["padding"] != "EXPLICIT" and _first(draw, dtype))
    n, c = draw(st.integers(0, 2)), draw(st.integers(1, 3))
    # TF's Eigen MaxPool3D: NaN results depend on how Eigen vectorises (see pooling.py).
    nan = not (op == "MaxPool3D" and not native(dtype))
    grad = op.startswith("Max") and dtype in (F32_F64 if nd == 2 else ("float32",))
    # AvgPool: TF's float16 kernel sums in float16 (overflows where tf2jax, summing in
    # float32, does not); TF's AvgPool3D gradient counts the elements its Eigen forward
    # kernel leaves out (those equal to the lowest value).
    bound = 1e3 if (op == "AvgPool" and dtype == "float16") else \
        1e30 if (op == "AvgPool3D" and dtype == "float32") else None
    # Pooling across channels: TF has no gradient kernel for it.
    depth = op == "MaxPool" and last and not grad and draw(st.integers(0, 4)) == 0
    if depth:  # pooling across channels
      kd = draw(st.integers(1, 3))
      x = draw(_pool_values(dtype, (n, *g["sizes"], c * kd), nan, bound))
      attrs = {"ksize": [1, 1, 1, kd], "strides": [1, 1, 1, kd], "padding": "VALID"}
    else:
      x = draw(_pool_values(dtype, _shape(n, g["sizes"], c, last), nan, bound))
      attrs = _layout_attrs(g, nd, last, with_dilations=False)
      attrs["ksize"] = [1, *g["k"], 1] if last else [1, 1, *g["k"]]
    if op != "MaxPoolV2":
      fmt = ("NHWC" if last else "NCHW") if nd == 2 else ("NDHWC" if last else "NCDHW")
      attrs["data_format"] = fmt
    inputs = {"input" if op != "AvgPool" else "value": x}
    if op == "MaxPoolV2":
      inputs["ksize"] = np.asarray(attrs.pop("ksize"), np.int32)
      inputs["strides"] = np.asarray(attrs.pop("strides"), np.int32)
    return Example(inputs, attrs)
  return example


def _avg_tolerance(dtype, ex):
  x = next(iter(ex.inputs.values()))
  k = int(np.prod(ex.attrs.get("ksize", [1])))
  return _sum_tolerance(dtype, k, _finite_max(x))


@st.composite
def _argmax_example(draw, dtype):
  g = draw(_pool_geometry(2, False))
  n, c = draw(st.integers(0, 2)), draw(st.integers(1, 3))  # TF refuses n = 0: so does tf2jax
  x = draw(_pool_values(dtype, (n, *g["sizes"], c)))
  return Example({"input": x}, {"ksize": [1, *g["k"], 1], "strides": [1, *g["s"], 1],
                                "padding": g["padding"],
                                "Targmax": draw(st.sampled_from(["int32", "int64"])),
                                "include_batch_in_index": draw(st.booleans())})


_MAXPOOL_NOTES = ("NaN never wins a window and windows without a value above the lowest "
                  "finite one give that value (oneDNN's bfloat16 kernel: -inf). No "
                  "subnormals: TF compares with denormals flushed to zero. Gradients "
                  "(float32/float64, NaN and +-inf included) go where TF's gradient kernels "
                  "send them: to the first valid element of each window, replaced only by "
                  "a strictly greater one (the first maximum; the first element of a window "
                  "of -inf or of one starting with NaN).")


def _pool_specs():
  return [
      OpSpec("MaxPool", _pool_example("MaxPool", 2), grad_dtypes=F32_F64, notes=_MAXPOOL_NOTES),
      OpSpec("MaxPoolV2", _pool_example("MaxPoolV2", 2), static_inputs=("ksize", "strides"),
             grad_dtypes=F32_F64, notes=_MAXPOOL_NOTES + " NHWC only (TF's kernel)."),
      OpSpec("MaxPool3D", _pool_example("MaxPool3D", 3), grad_dtypes=("float32",),
             notes="Without oneDNN, inputs have no NaN: TF's Eigen MaxPool3D gives NaN "
                   "results that depend on vectorisation; NaN propagates in tf2jax. "
                   "Gradients (float32, NaN and +-inf included where drawn) follow TF's "
                   "Eigen MaxPool3DGrad: each window's gradient goes whole to every element "
                   "within 1e-5 of the window's result (ties and near ties; none in a "
                   "window of -inf, whose result is the lowest finite value)."),
      OpSpec("AvgPool", _pool_example("AvgPool", 2), tolerance=_avg_tolerance,
             grad_tolerance=_avg_tolerance, grad_dtypes=F32_F64,
             notes="SAME windows divide by their number of valid elements. float16 values "
                   "are bounded: TF's float16 kernel sums in float16."),
      OpSpec("AvgPool3D", _pool_example("AvgPool3D", 3), tolerance=_avg_tolerance,
             grad_tolerance=_avg_tolerance, grad_dtypes=("float32",),
             notes="TF's Eigen kernel leaves out elements equal to the lowest value (Eigen's "
                   "padding marker), and so does tf2jax; its gradient kernel does not, so "
                   "float32 (gradient-checked) values are bounded."),
      OpSpec("MaxPoolWithArgmax", _argmax_example, transforms=NO_GRAD,
             notes="The first valid element of a window, replaced only by a strictly "
                   "greater one (ties: lowest index; a leading NaN stays). No gradient "
                   "check: TF's gradient kernel exists for int64 indices only and the "
                   "harness differentiates every output."),
  ]


# Normalization --------------------------------------------------------------------------

_BN_FORMATS = {"FusedBatchNorm": ["NHWC", "NCHW"], "FusedBatchNormV2": ["NHWC", "NCHW"],
               "FusedBatchNormV3": ["NHWC", "NCHW", "NDHWC", "NCDHW"]}


def _bn_example(op: str):
  @st.composite
  def example(draw, dtype):
    fmt = draw(st.sampled_from(_BN_FORMATS[op]))
    rank = 5 if fmt in ("NDHWC", "NCDHW") else 4
    c = draw(st.integers(1, 3))
    # Rank 5, float32 (gradient-checked): not empty, TF's FusedBatchNormGradV3 returns an
    # x gradient of rank 4 for an empty rank-5 x.
    low = 1 if (rank == 5 and dtype == "float32") else 0
    other = draw(st.lists(st.integers(low, 3), min_size=rank - 1, max_size=rank - 1))
    shape = (other[0], *other[1:], c) if fmt.endswith("C") else (other[0], c, *other[1:])
    training = draw(st.booleans())
    factor = draw(st.sampled_from([1.0, 0.5, 0.01]))
    x = draw(_values(dtype, shape, bound=8.0))
    scale, offset, mean = (draw(_values("float32", (c,), bound=3.0, nan=False))
                           for _ in range(3))
    variance = draw(cst.arrays("float32", (c,), min_value=0.0, max_value=4.0,
                               allow_nan=False, allow_subnormal=False))
    if training and factor == 1.0 and draw(st.booleans()):
      mean = variance = np.zeros((0,), np.float32)  # ignored: may be empty
    return Example({"x": x, "scale": scale, "offset": offset, "mean": mean,
                    "variance": variance},
                   {"epsilon": draw(st.sampled_from([1e-3, 1e-4, 1e-5])),
                    "exponential_avg_factor": factor, "data_format": fmt,
                    "is_training": training})
  return example


def _bn_build(op: str):
  def build(ex):
    import tensorflow as tf
    fn = getattr(tf.raw_ops, op)
    n = int(np.prod(ex.inputs["x"].shape)) // max(1, ex.inputs["scale"].shape[0])
    # TF's Eigen kernel leaves the reserve spaces uninitialised in inference mode and
    # for empty inputs: compare y, batch_mean and batch_variance there.
    keep = None if (ex.attrs["is_training"] and n > 0) else 3

    def body(x, scale, offset, mean, variance):
      outs = fn(x=x, scale=scale, offset=offset, mean=mean, variance=variance, **ex.attrs)
      return list(outs)[:keep]
    return body
  return build


def _bn_tolerance(dtype, ex):
  x = np.asarray(ex.inputs["x"]).astype(np.float64)
  n = max(1, x.size // max(1, ex.inputs["scale"].shape[0]))
  var = np.asarray(ex.inputs["variance"], np.float64)
  eps = ex.attrs["epsilon"]
  inv = 1 / np.sqrt(min(var.min() if var.size else 1.0, 1.0) + eps)
  magnitude = (_finite_max(x) + 1) * inv * (_finite_max(ex.inputs["scale"]) + 1) + \
      _finite_max(ex.inputs["offset"])
  f32 = _sum_tolerance("float32", n, magnitude * max(inv, 1))
  if dtype == "float32":
    return f32
  return Tolerance(rtol=4 * _eps(dtype), atol=f32.atol + 2 * _eps(dtype) * magnitude)


_BN_NOTES = ("Inference mode and empty inputs compare y, batch_mean and batch_variance only "
             "(TF's Eigen kernel leaves the reserve spaces uninitialised there). Gradients "
             "(float32) follow TF's: through y only; mean and variance get none.")


def _norm_specs():
  out = []
  for op in ["FusedBatchNorm", "FusedBatchNormV2", "FusedBatchNormV3"]:
    out.append(OpSpec(op, _bn_example(op), build=_bn_build(op), tolerance=_bn_tolerance,
                      grad_tolerance=_bn_tolerance, grad_dtypes=("float32",),
                      contains=(op,), notes=_BN_NOTES))
  out.append(OpSpec("LRN", _lrn_example, tolerance=_lrn_tolerance,
                    grad_tolerance=_lrn_tolerance, grad_dtypes=("float32",),
                    notes="float16 inputs have no NaN: TF's float16 kernel spreads a NaN to "
                          "all channels of its pixel (band-matrix product)."))
  return out


@st.composite
def _lrn_example(draw, dtype):
  shape = (draw(st.integers(0, 2)), *draw(_ints(1, 3, 2)), draw(st.integers(1, 7)))
  # float16: no NaN. TF's float16 LRN sums squares with a band-matrix product, so a NaN
  # in one channel spreads to every channel of its pixel (NaN * 0).
  return Example({"input": draw(_values(dtype, shape, bound=3.0, nan=dtype != "float16"))},
                 {"depth_radius": draw(st.integers(0, 3)),
                  "bias": draw(st.sampled_from([1.0, 0.5, 2.0])),
                  "alpha": draw(st.sampled_from([1.0, 0.1, 1e-4])),
                  "beta": draw(st.sampled_from([0.5, 0.75, 1.0]))})


def _lrn_tolerance(dtype, ex):
  r = ex.attrs["depth_radius"]
  return _sum_tolerance(dtype, 2 * r + 1, _finite_max(ex.inputs["input"]) ** 2 + 1,
                        rtol_ulps=8)


# Ops TF no longer runs (see the module docstring) ---------------------------------------


def _sizes_to_zeros(graph_def, node, dtype_enum, index: int = 0):
  """The Const feeding `node`'s input `index` (a shape: input_sizes, filter_sizes) becomes
  a zero tensor of that shape."""
  import tensorflow as tf
  name = node.input[index].split(":")[0]
  const = next(n for n in graph_def.node if n.name == name)
  shape = [int(d) for d in tf.make_ndarray(const.attr["value"].tensor).reshape(-1)]
  np_dtype = tf.dtypes.as_dtype(dtype_enum).as_numpy_dtype
  const.attr["value"].tensor.CopyFrom(tf.make_tensor_proto(np.zeros(shape, np_dtype)))
  const.attr["dtype"].type = dtype_enum
  node.input[index] = name


def _rename(stand_in, op, drop=(), producer=None, sizes_input: int = 0):
  """Rewrites the stand-in into `op`, whose shape input (`sizes_input`) is a tensor of
  that shape instead of the shape."""
  def rewrite(graph_def, example):
    del example
    for node in graph_def.node:
      if node.op == stand_in:
        _sizes_to_zeros(graph_def, node, node.attr["T"].type, sizes_input)
        node.op = op
        for attr in drop:
          del node.attr[attr]
    if producer is not None:
      graph_def.versions.producer = producer
  return rewrite


def _backprop_build(stand_in):
  def build(example):
    import tensorflow as tf
    from tf2jax_conformance.harness import tf_attrs
    call, attrs = getattr(tf.raw_ops, stand_in), tf_attrs(stand_in, example.attrs)
    sizes = example.inputs["input_sizes"]
    return lambda w, dy: call(input_sizes=tf.constant(sizes), filter=w, out_backprop=dy,
                              **attrs)
  return build


def _full_sizes(example_fn, nd, **kw):
  """Backprop examples whose input_sizes give the whole input shape, channels last."""
  last = "NHWC" if nd == 2 else "NDHWC"
  return lambda dtype: example_fn(nd, **kw)(dtype).filter(
      lambda ex: len(ex.inputs["input_sizes"]) == nd + 2
      and ex.attrs["data_format"] == last)


@st.composite
def _bn_global_example(draw, dtype):
  c = draw(st.integers(1, 4))
  t_shape = (draw(st.integers(0, 2)), *draw(_ints(1, 3, 2)), c)
  return Example({"t": draw(_values(dtype, t_shape)), "m": draw(_values(dtype, (c,))),
                  "v": np.abs(draw(_values(dtype, (c,), nan=False))),
                  "beta": draw(_values(dtype, (c,))), "gamma": draw(_values(dtype, (c,)))},
                 extra={"variance_epsilon": draw(st.sampled_from([1e-3, 0.5, 1e-5])),
                        "scale_after_normalization": draw(st.booleans())})


def _bn_global_build(example):
  import tensorflow as tf
  eps = example.extra["variance_epsilon"]
  scale_after = example.extra["scale_after_normalization"]

  def body(t, m, v, beta, gamma):
    t, m, v, beta, gamma = (tf.identity(x, name=f"bn_{k}") for k, x in
                            zip(["t", "m", "v", "beta", "gamma"], [t, m, v, beta, gamma]))
    # The attr is a float32: old kernels added it to v as such.
    factor = tf.math.rsqrt(v + tf.cast(tf.constant(eps, tf.float32), v.dtype))
    if scale_after:
      factor = factor * gamma
    return tf.identity((t - m) * factor + beta, name="bn_out")
  return body


def _bn_global_rewrite(graph_def, example):
  out = next(n for n in graph_def.node if n.name == "bn_out")
  t = next(n for n in graph_def.node if n.name == "bn_t")
  node = graph_def.node.add(name="bn_global", op="BatchNormWithGlobalNormalization",
                            input=[f"bn_{k}" for k in ["t", "m", "v", "beta", "gamma"]])
  node.attr["T"].type = t.attr["T"].type
  node.attr["variance_epsilon"].f = example.extra["variance_epsilon"]
  node.attr["scale_after_normalization"].b = example.extra["scale_after_normalization"]
  out.input[0] = "bn_global"
  graph_def.versions.producer = 8


_STAND_IN = "TF no longer runs it: see the module docstring of tf2jax_nn.nn_specs. "


def _legacy_specs():
  backprop = dict(static_inputs=("input_sizes",), tolerance=_backprop_tolerance,
                  grad_tolerance=_backprop_grad_tolerance, grad_dtypes=F32_F64)
  return [
      OpSpec("Conv2DBackpropInputV2", _full_sizes(_backprop_example, 2),
             build=_backprop_build("Conv2DBackpropInput"), kernel_op="Conv2DBackpropInput",
             rewrite=_rename("Conv2DBackpropInput", "Conv2DBackpropInputV2"),
             notes=_STAND_IN + "Dtypes: those of Conv2DBackpropInput's kernel.", **backprop),
      OpSpec("Conv3DBackpropInput", _full_sizes(_backprop_example, 3),
             build=_backprop_build("Conv3DBackpropInputV2"),
             rewrite=_rename("Conv3DBackpropInputV2", "Conv3DBackpropInput",
                             drop=("Tshape", "data_format"), producer=9),
             notes=_STAND_IN, **backprop),
      OpSpec("BatchNormWithGlobalNormalization", _bn_global_example,
             build=_bn_global_build, rewrite=_bn_global_rewrite, grad_dtypes=F32_F64,
             notes=_STAND_IN + "No float16 gradients: d rsqrt(v + eps) overflows float16 "
                   "for small v, where TF's Eigen kernels compute half gradients in float32 "
                   "(0 * inf: NaN in JAX, 0 in TF)."),
  ]


def specs() -> list:
  """Every spec of this module (the plugin's conformance hook returns them)."""
  return (_activation_specs() + _conv_specs() + _pool_specs() + _norm_specs()
          + _legacy_specs())

