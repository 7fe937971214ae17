"""Conformance specs of tf2jax-nn's convolution and pooling gradient kernels as ops:
Conv2DBackpropFilterV2, Conv3DBackpropFilter(V2), Dilation2DBackpropInput/Filter,
AvgPoolGrad, AvgPool3DGrad, MaxPoolGrad(V2), MaxPoolGradGrad(V2), MaxPool3DGrad and
MaxPoolGradWithArgmax; and FractionalMaxPool, FractionalAvgPool.

Inputs are drawn like the forward ops' in `nn_specs` (the same geometry helpers and
kernel restrictions). The orig_output of the max-pooling gradient ops is what MaxPool
gives for orig_input (computed here with NumPy), sometimes with elements replaced or,
for MaxPool3DGrad, shifted by less or more than the kernel's 1e-5: the kernels that read
it (MaxPoolGradGrad, MaxPool3DGrad) compare orig_input with it.

Sums: the gradient kernels add each window's gradient in the dtype and in their own
order (half floats in half precision), tf2jax in float32 for half floats and in XLA's
order: tolerances grow with the number of terms that meet in one element.

Ops TF no longer runs, checked through a stand-in (`OpSpec.rewrite`), like
Conv2DBackpropInputV2 in `nn_specs`:
* Conv2DBackpropFilterV2 (no kernel): Conv2DBackpropFilter, whose filter_sizes become a
  zero filter of that shape.
* Conv3DBackpropFilter (removed at GraphDef version 10): Conv3DBackpropFilterV2, NDHWC.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from tf2jax_conformance import dtypes as D
from tf2jax_conformance import strategies as cst
from tf2jax_conformance.spec import EXACT, Example, OpSpec

from tf2jax_nn._common import native, window_pads
from tf2jax_nn.nn_specs import (F32_F64, NO_GRAD, _backprop_example, _filter_grad_grad_tolerance,
                                _filter_grad_tolerance, _finite_max, _geometry, _layout_attrs,
                                _out_sizes, _pool_geometry, _pool_values, _rename,
                                _shape, _sum_tolerance, _values)

# Convolution filter gradients -------------------------------------------------------------


def _filter_build(stand_in):
  def build(example):
    import tensorflow as tf
    from tf2jax_conformance.harness import tf_attrs
    call, attrs = getattr(tf.raw_ops, stand_in), tf_attrs(stand_in, example.attrs)
    sizes = example.inputs["filter_sizes"]
    return lambda x, dy: call(input=x, filter_sizes=tf.constant(sizes), out_backprop=dy,
                              **attrs)
  return build


def _finite_input(example_fn):
  """3-D filter gradients: no NaN in the input. TF's CPU kernel (its own im2col code) puts
  a NaN input's products into other filter taps than those reading it: input
  [0, 0, NaN] (depth 3, 1x1 spatial), out_backprop 0, filter 1x2x2, SAME gives NaN at
  the three taps that read only padding and 0 at the one that reads the NaN."""
  def with_finite(ex):
    x = ex.inputs["input"]
    x = np.where(np.isnan(x.astype(np.float64)), np.zeros((), x.dtype), x)  # bfloat16 too
    inputs = dict(ex.inputs, input=x)
    return Example(inputs, ex.attrs, ex.extra)
  return lambda dtype: example_fn(dtype).map(with_finite)


def _ndhwc(example_fn):
  return lambda dtype: example_fn(dtype).filter(lambda ex: ex.attrs["data_format"] == "NDHWC")


_STAND_IN = ("TF no longer runs it: see the module docstring of "
             "tf2jax_nn.conv_pool_grad_specs. ")


def _conv_specs():
  common = dict(static_inputs=("filter_sizes",), tolerance=_filter_grad_tolerance,
                grad_tolerance=_filter_grad_grad_tolerance, grad_dtypes=F32_F64)
  return [
      OpSpec("Conv2DBackpropFilterV2", _backprop_example(2, wrt_filter=True),
             build=_filter_build("Conv2DBackpropFilter"), kernel_op="Conv2DBackpropFilter",
             rewrite=_rename("Conv2DBackpropFilter", "Conv2DBackpropFilterV2", sizes_input=1),
             notes=_STAND_IN + "Dtypes and attrs: those of Conv2DBackpropFilter's kernel.",
             **common),
      OpSpec("Conv3DBackpropFilterV2", _finite_input(_backprop_example(3, wrt_filter=True)),
             notes="No NaN inputs (see _finite_input: TF's kernel misplaces them). NCDHW "
                   "and dilations only where oneDNN runs them (float32/bfloat16; "
                   "drawn for bfloat16). TF's kernel pads SAME windows the usual way; its "
                   "gradient (Eigen Conv3D for float16/float64) does not when the stride "
                   "exceeds the window by 2 or more: gradient-checked dtypes draw tighter "
                   "strides.", **common),
      OpSpec("Conv3DBackpropFilter",
             _finite_input(_ndhwc(_backprop_example(3, wrt_filter=True))),
             build=_filter_build("Conv3DBackpropFilterV2"),
             rewrite=_rename("Conv3DBackpropFilterV2", "Conv3DBackpropFilter",
                             drop=("data_format",), producer=9, sizes_input=1),
             notes=_STAND_IN + "NDHWC only (the V1 op has no data_format). No NaN inputs, "
                   "as for Conv3DBackpropFilterV2.", **common),
  ]


# Dilation2D gradients ----------------------------------------------------------------------


@st.composite
def _dilation_backprop(draw, dtype):
  g = draw(_geometry(2, dilate=True, explicit=False))
  n, c = draw(st.integers(0, 2)), draw(st.integers(1, 3))
  kw = {} if dtype not in D.INT else dict(min_value=-100, max_value=100)
  # Any values (NaN, +-inf, the largest ones): which tap wins follows TF's comparisons.
  x = draw(cst.arrays(dtype, (n, *g["sizes"], c), allow_subnormal=False, **kw))
  f = draw(cst.arrays(dtype, (*g["k"], c), allow_subnormal=False, **kw))
  dy = draw(_values(dtype, (n, *_out_sizes(g), c)))
  return Example({"input": x, "filter": f, "out_backprop": dy},
                 {"strides": [1, *g["s"], 1], "rates": [1, *g["d"], 1],
                  "padding": g["padding"]})


def _dilation_tolerance(dtype, ex):
  # Up to every output of a (batch, channel) adds into one element (a tap of the filter
  # gradient; the input gradient takes fewer).
  dy = ex.inputs["out_backprop"]
  terms = int(np.prod(np.shape(dy)[:3])) if np.size(dy) else 1
  return _sum_tolerance(dtype, terms, _finite_max(dy))


_DILATION_NOTES = ("Each out_backprop element goes to the input element / filter tap of the "
                   "first tap (row-major) whose input + filter is strictly greater than the "
                   "dtype's lowest value and every sum before it (NaN never wins); where none "
                   "wins, TF's kernels use the input row/column max(window start, 0) and "
                   "filter tap (0, 0), even when that is not a tap of the window. TF registers "
                   "no gradient for these ops.")


def _dilation_specs():
  return [OpSpec(op, _dilation_backprop, tolerance=_dilation_tolerance, transforms=NO_GRAD,
                 notes=_DILATION_NOTES)
          for op in ("Dilation2DBackpropInput", "Dilation2DBackpropFilter")]


# Pooling gradients --------------------------------------------------------------------------


def _lowest(dtype: str):
  return D.iinfo(dtype).min if dtype in D.INT else -float(D.finfo(dtype).max)


def _np_max_pool(x, k, s, pads, outs, dtype: str):
  """MaxPool of a channels-last x as TF's CPU kernel gives it (NaN never wins, windows
  with nothing above the lowest value give it)."""
  nd = len(k)
  fill = np.nan if dtype not in D.INT else _lowest(dtype)
  xp = np.pad(x, [(0, 0)] + [tuple(p) for p in pads] + [(0, 0)], constant_values=fill)
  out = np.full((x.shape[0], *outs, x.shape[-1]), _lowest(dtype), dtype=x.dtype)
  for offset in itertools.product(*[range(kk) for kk in k]):
    index = (slice(None),) + tuple(slice(o, o + (n - 1) * ss + 1, ss)
                                   for o, n, ss in zip(offset, outs, s)) + (slice(None),)
    v = xp[index]
    with np.errstate(invalid="ignore"):
      out = np.where(v > out, v, out)
  assert out.ndim == nd + 2
  return out


@st.composite
def _orig_output(draw, x, g, dtype: str, *, near: bool = False):
  """orig_output for orig_input x: MaxPool's result, sometimes with elements replaced by
  other values or (near) shifted by an amount around MaxPool3DGrad's 1e-5."""
  pads, outs = window_pads(g["padding"], g["sizes"], g["k"], g["s"], None, g["pads"])
  y = _np_max_pool(x, g["k"], g["s"], pads, outs, dtype)
  how = draw(st.sampled_from(["exact", "exact", "replaced"] + (["shifted"] if near else [])))
  if how == "replaced" and y.size:
    other = draw(_pool_values(dtype, y.shape))
    mask = draw(hnp.arrays(np.bool_, y.shape))
    y = np.where(mask, other, y)
  elif how == "shifted":
    delta = draw(st.sampled_from([4e-6, -4e-6, 2e-5, -2e-5]))
    with np.errstate(over="ignore", invalid="ignore"):
      y = (y.astype(np.float64) + delta).astype(y.dtype)
  return y


def _max_grad_example(op: str, nd: int, grad_dtypes):
  @st.composite
  def example(draw, dtype):
    v2 = op.endswith("V2")
    # EXPLICIT: MaxPoolGrad only, not where gradients are checked (TF's gradient,
    # MaxPoolGradGrad, has no EXPLICIT padding).
    explicit = op == "MaxPoolGrad" and dtype not in grad_dtypes
    g = draw(_pool_geometry(nd, explicit))
    # TF's gradient of MaxPool3DGrad (MaxPool3DGradGrad) refuses an empty orig_input.
    low = 1 if (op == "MaxPool3DGrad" and dtype in grad_dtypes) else 0
    n, c = draw(st.integers(low, 2)), draw(st.integers(1, 3))
    x = draw(_pool_values(dtype, (n, *g["sizes"], c)))
    y = draw(_orig_output(x, g, dtype, near=op == "MaxPool3DGrad"))
    grad_grad = op.startswith("MaxPoolGradGrad")
    g_in = draw(_values(dtype, x.shape if grad_grad else y.shape))
    attrs = _layout_attrs(g, nd, True, with_dilations=False)
    attrs["ksize"] = [1, *g["k"], 1]
    attrs["data_format"] = "NHWC" if nd == 2 else "NDHWC"
    inputs = {"orig_input": x, "orig_output": y, "grad": g_in}
    if v2:
      inputs["ksize"] = np.asarray(attrs.pop("ksize"), np.int32)
      inputs["strides"] = np.asarray(attrs.pop("strides"), np.int32)
    return Example(inputs, attrs)
  return example


def _window_overlap(ex) -> int:
  """How many windows can meet in one input element."""
  k = ex.attrs.get("ksize", ex.inputs.get("ksize"))
  s = ex.attrs.get("strides", ex.inputs.get("strides"))
  return int(np.prod([-(-int(kk) // int(ss)) for kk, ss in zip(k, s)]))


def _exact(dtype, ex):
  """Gathers: the values are copied."""
  return EXACT


def _scatter_tolerance(dtype, ex):
  return _sum_tolerance(dtype, _window_overlap(ex), _finite_max(ex.inputs["grad"]))


def _scatter_grad_tolerance(dtype, ex):
  # The gradient of a gather scatters the cotangents (magnitudes up to 10).
  return _sum_tolerance(dtype, _window_overlap(ex), 10.0)


_MAXPOOL_GRAD_NOTES = (
    "NHWC only and no pooling across depth (TF's CPU kernel refuses the rest). Each window's "
    "grad goes to the element TF's kernel recomputes from orig_input: the first valid one, "
    "replaced only by a strictly greater one (NaN and +-inf drawn); orig_output's values "
    "are not read. Gradients (float32/float64) are TF's registered one, MaxPoolGradGrad "
    "(the first element equal to orig_output, 0 if none), not the transpose of the op.")
_GRADGRAD_NOTES = (
    "NHWC only. grad at each window's first valid element equal to orig_output (drawn as "
    "MaxPool's result, sometimes with elements replaced), 0 where none is (NaN, -inf "
    "windows).")
_MAXPOOL3D_GRAD_NOTES = (
    "NDHWC only (TF's CPU kernel is Eigen's for both dtypes). Each window's grad is added "
    "whole to every valid element within 1e-5 of the given orig_output (computed in the "
    "dtype); orig_output is MaxPool's result, sometimes replaced or shifted by 4e-6 or 2e-5. "
    "Gradients (float32) are TF's registered one, MaxPool3DGradGrad: the first element "
    "of each window exactly equal to orig_output (not within 1e-5); batch >= 1 there "
    "(MaxPool3DGradGrad refuses empty inputs).")


@st.composite
def _argmax_grad_example(draw, dtype):
  g = draw(_pool_geometry(2, False))
  n, c = draw(st.integers(0, 2)), draw(st.integers(1, 3))
  x = draw(_pool_values(dtype, (n, *g["sizes"], c)))
  out_shape = (n, *_out_sizes(g), c)
  dy = draw(_values(dtype, out_shape))
  per_batch = int(np.prod(x.shape[1:]))
  # Any index within the element's batch (TF's kernel aborts on others), not only the
  # window's maximum: duplicates and untouched elements.
  idx = draw(hnp.arrays(np.int64, out_shape, elements=st.integers(0, max(per_batch - 1, 0))))
  with_batch = draw(st.booleans())
  if with_batch and idx.size:
    idx = idx + np.arange(n, dtype=np.int64).reshape(-1, 1, 1, 1) * per_batch
  return Example({"input": x, "grad": dy, "argmax": idx},
                 {"ksize": [1, *g["k"], 1], "strides": [1, *g["s"], 1],
                  "padding": g["padding"], "include_batch_in_index": with_batch})


def _avg_grad_example(nd: int):
  @st.composite
  def example(draw, dtype):
    # The gradient-checked 3-D dtype: TF's gradient is AvgPool3D (tight strides, see
    # nn_specs' pooling examples).
    g = draw(_pool_geometry(nd, False, tight=(nd == 3 and dtype == "float32")))
    # Channels first where oneDNN runs the kernel (TF's Eigen kernel refuses it).
    last = not (native(dtype) and draw(st.booleans()))
    n, c = draw(st.integers(0, 2)), draw(st.integers(1, 3))
    dy = draw(_values(dtype, _shape(n, _out_sizes(g), c, last)))
    attrs = _layout_attrs(g, nd, last, with_dilations=False)
    attrs["ksize"] = [1, *g["k"], 1] if last else [1, 1, *g["k"]]
    attrs["data_format"] = ("NHWC" if last else "NCHW") if nd == 2 else \
        ("NDHWC" if last else "NCDHW")
    return Example({"orig_input_shape": np.asarray(_shape(n, g["sizes"], c, last), np.int32),
                    "grad": dy}, attrs)
  return example


def _avg_grad_tolerance(dtype, ex):
  # Each element adds grad / count of the windows over it (TF: grad * (1 / count), in
  # the dtype).
  return _sum_tolerance(dtype, _window_overlap(ex), _finite_max(ex.inputs["grad"]))


def _avg_grad_grad_tolerance(dtype, ex):
  # The gradient is AvgPool of the cotangents (magnitudes up to 10).
  return _sum_tolerance(dtype, int(np.prod(ex.attrs["ksize"])), 10.0)


def _pool_specs():
  v2 = dict(static_inputs=("ksize", "strides"))
  return [
      OpSpec("AvgPoolGrad", _avg_grad_example(2), static_inputs=("orig_input_shape",),
             tolerance=_avg_grad_tolerance, grad_tolerance=_avg_grad_grad_tolerance,
             grad_dtypes=F32_F64,
             notes="NCHW where oneDNN runs the kernel (float32/bfloat16). SAME windows "
                   "divide by their number of valid elements. Gradients (AvgPool) for "
                   "float32/float64: TF's float16 AvgPool sums in float16."),
      OpSpec("AvgPool3DGrad", _avg_grad_example(3), static_inputs=("orig_input_shape",),
             tolerance=_avg_grad_tolerance, grad_tolerance=_avg_grad_grad_tolerance,
             grad_dtypes=("float32",),
             notes="NCDHW too (oneDNN runs both dtypes). Gradients (AvgPool3D) for float32 "
                   "with strides at most window + 1."),
      OpSpec("MaxPoolGrad", _max_grad_example("MaxPoolGrad", 2, F32_F64),
             tolerance=_scatter_tolerance, grad_tolerance=_exact, grad_dtypes=F32_F64,
             notes=_MAXPOOL_GRAD_NOTES + " EXPLICIT padding only where gradients are not "
                   "checked (MaxPoolGradGrad has none)."),
      OpSpec("MaxPoolGradV2", _max_grad_example("MaxPoolGradV2", 2, F32_F64),
             tolerance=_scatter_tolerance, grad_tolerance=_exact, grad_dtypes=F32_F64,
             notes=_MAXPOOL_GRAD_NOTES, **v2),
      OpSpec("MaxPoolGradGrad", _max_grad_example("MaxPoolGradGrad", 2, F32_F64),
             tolerance=_exact, grad_tolerance=_scatter_grad_tolerance,
             grad_dtypes=F32_F64,
             notes=_GRADGRAD_NOTES + " Gradients (float32/float64) are TF's: MaxPoolGrad."),
      OpSpec("MaxPoolGradGradV2", _max_grad_example("MaxPoolGradGradV2", 2, ()),
             tolerance=_exact, transforms=NO_GRAD,
             notes=_GRADGRAD_NOTES + " TF registers no gradient for it.", **v2),
      OpSpec("MaxPool3DGrad", _max_grad_example("MaxPool3DGrad", 3, ("float32",)),
             tolerance=_scatter_tolerance, grad_tolerance=_exact, grad_dtypes=("float32",),
             notes=_MAXPOOL3D_GRAD_NOTES),
      OpSpec("MaxPoolGradWithArgmax", _argmax_grad_example, tolerance=_scatter_tolerance,
             transforms=NO_GRAD,
             notes="grad added at the given flat indices (any index of the element's batch "
                   "is drawn, with and without include_batch_in_index). Targmax int64 only: "
                   "TF's CPU kernel has none for int32 (tf2jax refuses it). TF registers no "
                   "gradient for it."),
  ]


def specs() -> list:
  """Every spec of this module (the plugin's conformance hook returns them)."""
  return _conv_specs() + _dilation_specs() + _pool_specs() + _fractional_specs()


# Fractional pooling -------------------------------------------------------------------------

# float32 values of pooling ratios (TF stores the attr as float32).
_RATIOS = (1.0, 1.2, 1.44, 1.5, 1.73, 2.0, 2.5, 2.9)


@st.composite
def _fractional_example(draw, dtype):
  ratio = [1.0, draw(st.sampled_from(_RATIOS)), draw(st.sampled_from(_RATIOS)), 1.0]
  sizes = [draw(st.integers(math.ceil(r), 12)) for r in ratio[1:3]]
  n, c = draw(st.integers(1, 2)), draw(st.integers(1, 2))
  x = draw(_pool_values(dtype, (n, *sizes, c)))
  # Both seeds 0 make TF draw a random seed: not drawn (tf2jax refuses it).
  seeds = draw(st.tuples(st.integers(-2**31, 2**31 - 1), st.integers(-2**31, 2**31 - 1))
               .filter(lambda s: s != (0, 0)))
  return Example({"value": x}, {"pooling_ratio": ratio, "pseudo_random": draw(st.booleans()),
                                "overlapping": draw(st.booleans()), "deterministic": True,
                                "seed": seeds[0], "seed2": seeds[1]})


def _fractional_specs():
  notes = ("Pooling sequences drawn from TF's PhiloxRandom(seed, seed2) as its kernel does "
           "(pseudo-random and random, with and without overlapping); a sequence whose "
           "windows all have the same size still moves the generator on. seed = seed2 = 0 "
           "(a random seed in TF) and deterministic false are refused.")
  # The harness differentiates every output; two of them are int64 sequences.
  no_grad = (" No gradient check: the harness differentiates every output and two are "
             "int64 (the lowering's VJP sends a window's gradient where TF's gradient "
             "kernel does: the first element, replaced only by a strictly greater one / "
             "evenly).")
  return [
      OpSpec("FractionalMaxPool", _fractional_example, transforms=NO_GRAD,
             notes=notes + " NaN never wins a window; a window with nothing above the lowest "
                   "value gives it." + no_grad),
      OpSpec("FractionalAvgPool", _fractional_example, transforms=NO_GRAD,
             notes=notes + " Sums in the dtype in TF's order (row-major), integers divided "
                   "with truncation." + no_grad),
  ]
