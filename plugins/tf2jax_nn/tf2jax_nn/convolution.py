"""Convolutions: Conv, Conv2D, Conv3D, depthwise, their input gradients (transposed
convolutions) and filter gradients, Dilation2D and its gradients, and the fused pad /
resize-and-pad convolutions.

All convolutions go through `jax.lax.conv_general_dilated` with TF's layouts (filters
are HWIO / DHWIO), except float64 ones (see `_conv_by_taps`) and unpadded channels-last
1x1 ones (`_pointwise_conv`). float16 and bfloat16 accumulate in float32 and round once,
like TF's oneDNN kernels; float32 uses HIGHEST precision so accelerators do not drop to
bf16 passes. See `_common` for which attribute combinations are refused and why.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from tf2jax_core import REAL, lowering
from tf2jax_nn._common import (HIGHEST, Window, channel_axis, channels_last, compute_dtype,
                               conv_dimension_numbers, cpu_kernel_reason, is_empty, native,
                               out_shape, refuse, shape_of, window_pads, zeros)

FLOATS = ("float16", "bfloat16", "float32", "float64")
CONV2D_T = FLOATS + ("int32",)
PAD3 = ("SAME", "VALID", "EXPLICIT")
PAD2 = ("SAME", "VALID")


def _precision(dtype):
  return HIGHEST if np.dtype(dtype).kind == "f" else None


def _conv(x, w, strides, pads, dilations, groups, nd, last, lhs_dilation=None):
  """lax.conv_general_dilated, or for float64 a sum over filter taps (see below)."""
  cd = np.dtype(x.dtype)
  if cd == np.float64:
    return _conv_by_taps(x, w, strides, pads, dilations, groups, nd, last, lhs_dilation)
  if (last and groups == 1 and not any(lo or hi for lo, hi in pads)
      and all(k == 1 for k in w.shape[:nd]) and all(d == 1 for d in lhs_dilation or ())):
    return _pointwise_conv(x, w, strides, nd)
  return lax.conv_general_dilated(
      x, w, strides, pads, lhs_dilation=lhs_dilation, rhs_dilation=dilations,
      dimension_numbers=conv_dimension_numbers(nd, last), feature_group_count=groups,
      precision=_precision(cd))


def _pointwise_conv(x, w, strides, nd):
  """An unpadded 1x1 convolution as a matmul over the channel axis of the strided input.

  XLA's CPU backend runs these 1.3-2.8x faster as dots than as convolutions (ResNet's
  bottleneck shapes); TF-XLA's bridge rewrites them the same way.
  """
  x = x[(slice(None),) + tuple(slice(None, None, s) for s in strides)]
  return lax.dot_general(x, w.reshape(w.shape[nd:]), (((nd + 1,), (0,)), ((), ())),
                         precision=HIGHEST)


def _conv_by_taps(x, w, strides, pads, dilations, groups, nd, last, lhs_dilation=None):
  """A convolution as a sum over the filter taps of strided input slices times the tap's
  (in, out) matrix, with the padding (and input dilation) applied explicitly.

  Used for float64: XLA's CPU backend expands grouped float64 convolutions (which
  jax.vmap creates from any batched convolution) into dense ones with zero blocks, so a
  NaN in one group leaks into the others (NaN * 0). Explicit zero padding also gives TF's
  Eigen result for a NaN filter tap over padding (NaN, where XLA skips the padding).
  """
  if not last:
    x = jnp.moveaxis(x, 1, -1)
  lhs_dilation = lhs_dilation or (1,) * nd
  config = [(0, 0, 0)] + [(lo, hi, ld - 1) for (lo, hi), ld in zip(pads, lhs_dilation)]
  xp = lax.pad(x, np.zeros((), x.dtype), config + [(0, 0, 0)])
  k = w.shape[:nd]
  cin_g, cout = w.shape[nd], w.shape[nd + 1]
  outs = [(xp.shape[1 + i] - (k[i] - 1) * dilations[i] - 1) // strides[i] + 1
          for i in range(nd)]
  acc = None
  for taps in np.ndindex(*k):
    index = (slice(None),) + tuple(
        slice(t * d, t * d + (o - 1) * s + 1, s)
        for t, d, o, s in zip(taps, dilations, outs, strides)) + (slice(None),)
    patch = xp[index]
    tap = w[taps]
    if groups == 1:
      term = jnp.einsum("...c,co->...o", patch, tap, precision=HIGHEST)
    else:
      lead = patch.shape[:-1]
      term = jnp.einsum("...gc,cgo->...go", patch.reshape(lead + (groups, cin_g)),
                        tap.reshape(cin_g, groups, cout // groups), precision=HIGHEST)
      term = term.reshape(lead + (cout,))
    acc = term if acc is None else acc + term
  return acc if last else jnp.moveaxis(acc, -1, 1)


def conv_forward(x, w, window: Window, *, groups: str = "any", what: str = "Conv"):
  """TF's forward convolution of `x` (N..C or NC..) with filter `w` (spatial..., in, out).

  groups: "any" (input depth a multiple of the filter's), "none" (must be equal).
  """
  nd, last = window.nd, window.last
  xs, ws = shape_of(x), shape_of(w)
  if len(xs) != nd + 2 or len(ws) != nd + 2:
    raise ValueError(f"{what} needs a rank-{nd + 2} input and filter, got shapes {xs} and {ws}")
  ch = channel_axis(nd + 2, last)
  depth, fin, fout = xs[ch], ws[nd], ws[nd + 1]
  if is_empty(ws):
    raise ValueError(f"{what}: filter must not have zero elements, got shape {ws}")
  if groups == "none" and depth != fin:
    raise ValueError(f"{what}: input and filter must have the same depth: {depth} vs {fin}")
  if depth % fin:
    raise ValueError(f"{what}: input depth must be evenly divisible by filter depth: "
                     f"{depth} vs {fin}")
  num_groups = depth // fin
  if fout % num_groups:
    raise ValueError(f"{what}: output depth must be evenly divisible by number of groups: "
                     f"{fout} vs {num_groups}")
  in_sp = [xs[a] for a in window.spatial]
  pads, outs = window.pads(in_sp, ws[:nd])
  shape = out_shape(xs, window, outs, fout)
  dtype = np.dtype(x.dtype)
  if is_empty(shape) or is_empty(xs):
    return zeros(shape, dtype)
  cd = compute_dtype(dtype)
  y = _conv(jnp.asarray(x, cd), jnp.asarray(w, cd), window.strides, pads, window.dilations,
            num_groups, nd, last)
  return y.astype(dtype)


def conv_backprop_input(in_shape, w, dy, window: Window, *, what: str, groups_ok: bool = True):
  """The gradient of `conv_forward` with respect to its input: a transposed convolution."""
  nd, last = window.nd, window.last
  in_shape = tuple(int(d) for d in in_shape)
  ws, dys = shape_of(w), shape_of(dy)
  rank = nd + 2
  if len(in_shape) != rank or len(ws) != rank or len(dys) != rank:
    raise ValueError(f"{what} needs rank-{rank} input sizes, filter and out_backprop, got "
                     f"{in_shape}, {ws} and {dys}")
  ch = channel_axis(rank, last)
  depth, fin, fout = in_shape[ch], ws[nd], ws[nd + 1]
  if fin == 0 or depth % fin:
    raise ValueError(f"{what}: input depth must be evenly divisible by filter depth: "
                     f"{depth} vs {fin}")
  num_groups = depth // fin
  if num_groups != 1 and not groups_ok:
    raise ValueError(f"{what}: gradients of grouped convolutions are not supported by "
                     f"TF's CPU kernel for this dtype (input depth {depth}, filter depth {fin})")
  if fout % num_groups:
    raise ValueError(f"{what}: output depth must be evenly divisible by number of groups: "
                     f"{fout} vs {num_groups}")
  in_sp = [in_shape[a] for a in window.spatial]
  k = ws[:nd]
  pads, outs = window.pads(in_sp, k)
  want = out_shape(in_shape, window, outs, fout)
  if dys != want:
    raise ValueError(f"{what}: out_backprop has shape {dys}, the convolution of an input of "
                     f"shape {in_shape} gives {want}")
  dtype = np.dtype(dy.dtype)
  if is_empty(in_shape) or is_empty(dys) or is_empty(ws):
    return zeros(in_shape, dtype)
  cd = compute_dtype(dtype)
  cin_g, cout_g = fin, fout // num_groups
  wt = jnp.flip(jnp.asarray(w, cd), axis=tuple(range(nd)))
  wt = wt.reshape(tuple(k) + (cin_g, num_groups, cout_g))
  wt = wt.transpose(tuple(range(nd)) + (nd + 2, nd + 1, nd))
  wt = wt.reshape(tuple(k) + (cout_g, num_groups * cin_g))
  tpads = []
  for n, kk, d, s, (lo, _), o in zip(in_sp, k, window.dilations, window.strides, pads, outs):
    k_eff = (kk - 1) * d + 1
    before = k_eff - 1 - lo
    after = n + k_eff - 1 - ((o - 1) * s + 1) - before
    tpads.append((before, after))
  dx = _conv(jnp.asarray(dy, cd), wt, (1,) * nd, tpads, window.dilations, num_groups, nd,
             last, lhs_dilation=window.strides)
  return dx.astype(dtype)


def _check_native(node, condition: bool, attr: str, what: str, *,
                  explicit_is_eigen: bool = False) -> None:
  """Refuses `what` unless TF would run the node with its oneDNN kernel.

  explicit_is_eigen: TF's input-gradient ops run EXPLICIT padding with Eigen even with
  oneDNN on.
  """
  if not condition:
    return
  if explicit_is_eigen and node.attrs.get("padding") == "EXPLICIT":
    refuse(node, attr, f"TF's CPU kernel for {node.op} with EXPLICIT padding does not "
                       f"support {what}")
  if not native(node.attrs["T"]):
    refuse(node, attr, cpu_kernel_reason(node, what))


def _native_backprop(node) -> bool:
  return native(node.attrs["T"]) and node.attrs.get("padding") != "EXPLICIT"


def _dilated(window: Window) -> bool:
  return any(d != 1 for d in window.dilations)


# Conv2D, Conv3D, Conv ------------------------------------------------------------------


@lowering("Conv2D", attrs={"T": CONV2D_T, "strides": None, "padding": PAD3,
                           "explicit_paddings": None, "data_format": ("NHWC", "NCHW"),
                           "dilations": None, "use_cudnn_on_gpu": None})
def conv2d(node):
  last = channels_last(node.attrs.get("data_format", "NHWC"))
  _check_native(node, not last, "data_format", "the NCHW layout")
  window = Window(node, 2, last)
  return lambda x, w: conv_forward(x, w, window, what=node.op)


@lowering("Conv3D", attrs={"T": FLOATS, "strides": None, "padding": PAD2,
                           "data_format": ("NDHWC", "NCDHW"), "dilations": None})
def conv3d(node):
  last = channels_last(node.attrs.get("data_format", "NDHWC"))
  _check_native(node, not last, "data_format", "the NCDHW layout")
  window = Window(node, 3, last, eigen_same=not native(node.attrs["T"]))
  _check_native(node, _dilated(window), "dilations", "dilations other than 1")
  return lambda x, w: conv_forward(x, w, window, groups="none", what=node.op)


def _conv_data_format(value):
  if value == "CHANNELS_LAST":
    return True
  return ("TF's CPU kernel for Conv supports only CHANNELS_LAST (CHANNELS_FIRST fails "
          "with 'only supports the NHWC tensor format on the CPU')")


def _conv_groups(value):
  return True if value == 1 else "TF's CPU kernel for Conv does not support grouped convolutions"


def _conv_batch_dims(value):
  return True if value >= 1 else "batch_dims must be at least 1"


@lowering("Conv", attrs={"T": CONV2D_T, "strides": None, "padding": PAD3,
                         "explicit_paddings": None, "data_format": _conv_data_format,
                         "dilations": None, "batch_dims": _conv_batch_dims,
                         "groups": _conv_groups})
def conv(node):
  """The N-d Conv op: 2 or 3 spatial dims, `batch_dims` leading batch dims (TF's CPU
  kernel runs it with its Eigen Conv2D / Conv3D kernels)."""
  nd = len(node.attrs.get("strides", ())) - 2
  if nd not in (2, 3):
    refuse(node, "strides", "TF's CPU kernel for Conv supports 2 or 3 spatial dimensions "
                            "(strides of length 4 or 5)")
  window = Window(node, nd, True, eigen_same=(nd == 3))
  if nd == 3:
    if window.padding == "EXPLICIT":
      refuse(node, "padding", "TF's CPU kernel for Conv with 3 spatial dimensions has no "
                              "EXPLICIT padding (TF aborts)")
    if _dilated(window):
      refuse(node, "dilations", "TF's CPU kernel for Conv with 3 spatial dimensions "
                                "supports only dilations of 1")
    if np.dtype(node.attrs["T"]).name == "int32":
      refuse(node, "T", "TF's CPU kernel for Conv with 3 spatial dimensions has no int32 "
                        "kernel")
  batch_dims = int(node.attrs.get("batch_dims", 1))

  def run(x, w):
    xs = shape_of(x)
    if len(xs) != batch_dims + nd + 1:
      raise ValueError(f"Conv: input of rank {len(xs)}, expected batch_dims + {nd + 1} = "
                       f"{batch_dims + nd + 1}")
    lead = xs[:batch_dims]
    flat = jnp.reshape(jnp.asarray(x), (math.prod(lead),) + xs[batch_dims:])
    y = conv_forward(flat, w, window, groups="none", what="Conv")
    if math.prod(lead) == 0:
      return y  # TF's kernel keeps the batch dims flattened when there is no batch
    return jnp.reshape(y, lead + y.shape[1:])
  return run


# Depthwise -----------------------------------------------------------------------------


def _depthwise_filter(w, depth: int, what: str):
  ws = shape_of(w)
  if len(ws) != 4:
    raise ValueError(f"{what}: filter must be 4-dimensional, got shape {ws}")
  if ws[2] != depth:
    raise ValueError(f"{what}: input and filter must have the same depth: {depth} vs {ws[2]}")
  return jnp.reshape(jnp.asarray(w), ws[:2] + (1, ws[2] * ws[3]))


@lowering("DepthwiseConv2dNative", attrs={"T": FLOATS, "strides": None, "padding": PAD3,
                                          "explicit_paddings": None,
                                          "data_format": ("NHWC", "NCHW"), "dilations": None})
def depthwise_conv2d(node):
  last = channels_last(node.attrs.get("data_format", "NHWC"))
  _check_native(node, not last, "data_format", "the NCHW layout")
  window = Window(node, 2, last)
  _check_native(node, _dilated(window), "dilations", "dilations other than 1")
  _check_native(node, window.strides[0] != window.strides[1], "strides",
                "different row and column strides")

  def run(x, w):
    xs = shape_of(x)
    if len(xs) != 4:
      raise ValueError(f"{node.op}: input must be 4-dimensional, got shape {xs}")
    depth = xs[channel_axis(4, last)]
    return conv_forward(x, _depthwise_filter(w, depth, node.op), window, what=node.op)
  return run


# Input gradients (transposed convolutions) ---------------------------------------------


def _input_sizes(sizes, w, dy, window: Window, what: str) -> tuple[int, ...]:
  sizes = [int(s) for s in np.reshape(sizes, -1)]
  rank = window.rank
  if len(sizes) == rank:
    return tuple(sizes)
  if len(sizes) == window.nd and rank == 4:  # spatial sizes only: TF completes them
    shape = [0] * rank
    shape[0] = shape_of(dy)[0]
    for a, s in zip(window.spatial, sizes):
      shape[a] = s
    shape[channel_axis(rank, window.last)] = shape_of(w)[2]
    return tuple(shape)
  raise ValueError(f"{what}: input_sizes must have {rank} elements"
                   + (f" (or {window.nd})" if rank == 4 else "") + f", got {sizes}")


def _backprop2d(node, window: Window, sizes, w, dy):
  shape = _input_sizes(sizes, w, dy, window, node.op)
  return conv_backprop_input(shape, w, dy, window, what=node.op,
                             groups_ok=_native_backprop(node))


def _check_backprop2d(node, window: Window, last: bool) -> None:
  _check_native(node, not last, "data_format", "the NCHW layout", explicit_is_eigen=True)
  _check_native(node, _dilated(window), "dilations", "dilations other than 1",
                explicit_is_eigen=True)


_BACKPROP2D_ATTRS = {"T": CONV2D_T, "strides": None, "padding": PAD3,
                     "explicit_paddings": None, "data_format": ("NHWC", "NCHW"),
                     "dilations": None, "use_cudnn_on_gpu": None}


@lowering("Conv2DBackpropInput", attrs=_BACKPROP2D_ATTRS, static_inputs=(0,))
def conv2d_backprop_input(node):
  last = channels_last(node.attrs.get("data_format", "NHWC"))
  window = Window(node, 2, last)
  _check_backprop2d(node, window, last)
  return lambda sizes, w, dy: _backprop2d(node, window, sizes, w, dy)


@lowering("Conv2DBackpropInputV2", attrs=_BACKPROP2D_ATTRS)
def conv2d_backprop_input_v2(node):
  """Like Conv2DBackpropInput with the input's shape taken from a tensor (TF registers
  no CPU kernel for it; the attribute rules are those of Conv2DBackpropInput)."""
  last = channels_last(node.attrs.get("data_format", "NHWC"))
  window = Window(node, 2, last)
  _check_backprop2d(node, window, last)
  return lambda x, w, dy: _backprop2d(node, window, np.asarray(shape_of(x)), w, dy)


def _backprop3d(node, window: Window, shape, w, dy):
  shape = tuple(int(s) for s in np.reshape(shape, -1))
  if len(shape) != 5:
    raise ValueError(f"{node.op}: input_sizes must have 5 elements, got {list(shape)}")
  return conv_backprop_input(shape, w, dy, window, what=node.op, groups_ok=False)


@lowering("Conv3DBackpropInputV2", attrs={"T": FLOATS, "Tshape": ("int32", "int64"),
                                          "strides": None, "padding": PAD2,
                                          "data_format": ("NDHWC", "NCDHW"),
                                          "dilations": None}, static_inputs=(0,))
def conv3d_backprop_input_v2(node):
  last = channels_last(node.attrs.get("data_format", "NDHWC"))
  _check_native(node, not last, "data_format", "the NCDHW layout")
  window = Window(node, 3, last)
  _check_native(node, _dilated(window), "dilations", "dilations other than 1")
  return lambda sizes, w, dy: _backprop3d(node, window, sizes, w, dy)


@lowering("Conv3DBackpropInput", attrs={"T": ("float16", "float32", "float64"),
                                        "strides": None, "padding": PAD2, "dilations": None})
def conv3d_backprop_input(node):
  """The deprecated V1 op (removed from GraphDef version 10, found in old graphs): the
  input's shape comes from a tensor; NDHWC only."""
  window = Window(node, 3, True)
  _check_native(node, _dilated(window), "dilations", "dilations other than 1")
  return lambda x, w, dy: _backprop3d(node, window, np.asarray(shape_of(x)), w, dy)


_DEPTHWISE_BACKPROP_ATTRS = {"T": FLOATS, "strides": None, "padding": PAD3,
                             "explicit_paddings": None, "data_format": ("NHWC", "NCHW"),
                             "dilations": None}


def _depthwise_backprop_window(node) -> tuple[bool, Window]:
  """(channels last, window) of a depthwise gradient op, refusing what TF's CPU kernels
  refuse."""
  last = channels_last(node.attrs.get("data_format", "NHWC"))
  _check_native(node, not last, "data_format", "the NCHW layout", explicit_is_eigen=True)
  window = Window(node, 2, last)
  _check_native(node, window.strides[0] != window.strides[1], "strides",
                "different row and column strides", explicit_is_eigen=True)
  if _dilated(window):
    refuse(node, "dilations", f"TF's CPU kernels for {node.op} do not support dilations "
                              "other than 1")
  return last, window


@lowering("DepthwiseConv2dNativeBackpropInput", attrs=_DEPTHWISE_BACKPROP_ATTRS,
          static_inputs=(0,))
def depthwise_conv2d_backprop_input(node):
  last, window = _depthwise_backprop_window(node)

  def run(sizes, w, dy):
    shape = tuple(int(s) for s in np.reshape(sizes, -1))
    if len(shape) != 4:
      raise ValueError(f"{node.op}: input_sizes must have 4 elements, got {list(shape)}")
    depth = shape[channel_axis(4, last)]
    return conv_backprop_input(shape, _depthwise_filter(w, depth, node.op), dy, window,
                               what=node.op)
  return run


# Filter gradients ------------------------------------------------------------------------


def conv_backprop_filter(x, filter_shape, dy, forward, *, what: str):
  """The gradient of `forward(x, w)` with respect to a filter of `filter_shape`: the VJP of
  the forward convolution, computed in the compute dtype and rounded once."""
  filter_shape = tuple(int(d) for d in np.reshape(filter_shape, -1))
  dtype = np.dtype(dy.dtype)
  cd = compute_dtype(dtype)
  y, vjp = jax.vjp(lambda w: forward(jnp.asarray(x, cd), w), jnp.zeros(filter_shape, cd))
  if shape_of(dy) != tuple(y.shape):
    raise ValueError(f"{what}: out_backprop has shape {shape_of(dy)}, the convolution of an "
                     f"input of shape {shape_of(x)} with a filter of shape {filter_shape} "
                     f"gives {tuple(y.shape)}")
  return vjp(jnp.asarray(dy, cd))[0].astype(dtype)


def _filter_grad2d(node, window: Window, x, sizes, dy):
  sizes = [int(s) for s in np.reshape(sizes, -1)]
  if len(sizes) != 4:
    raise ValueError(f"{node.op}: filter_sizes must have 4 elements, got {sizes}")
  return conv_backprop_filter(
      x, sizes, dy, lambda x, w: conv_forward(x, w, window, what=node.op), what=node.op)


@lowering("Conv2DBackpropFilter", attrs={**_BACKPROP2D_ATTRS, "T": FLOATS}, static_inputs=(1,))
def conv2d_backprop_filter(node):
  last = channels_last(node.attrs.get("data_format", "NHWC"))
  window = Window(node, 2, last)
  _check_backprop2d(node, window, last)
  return lambda x, sizes, dy: _filter_grad2d(node, window, x, sizes, dy)


@lowering("DepthwiseConv2dNativeBackpropFilter", attrs=_DEPTHWISE_BACKPROP_ATTRS,
          static_inputs=(1,))
def depthwise_conv2d_backprop_filter(node):
  last, window = _depthwise_backprop_window(node)

  def run(x, sizes, dy):
    sizes = [int(s) for s in np.reshape(sizes, -1)]
    xs = shape_of(x)
    if len(sizes) != 4 or len(xs) != 4:
      raise ValueError(f"{node.op}: needs a 4-d input and 4 filter_sizes, got input shape "
                       f"{xs} and filter_sizes {sizes}")
    depth = xs[channel_axis(4, last)]
    forward = lambda x, w: conv_forward(x, _depthwise_filter(w, depth, node.op), window,
                                        what=node.op)
    return conv_backprop_filter(x, sizes, dy, forward, what=node.op)
  return run


@lowering("Conv2DBackpropFilterV2", attrs={**_BACKPROP2D_ATTRS, "T": FLOATS})
def conv2d_backprop_filter_v2(node):
  """Like Conv2DBackpropFilter with the filter's shape taken from a tensor (TF registers
  no CPU kernel for it; the attribute rules are those of Conv2DBackpropFilter)."""
  last = channels_last(node.attrs.get("data_format", "NHWC"))
  window = Window(node, 2, last)
  _check_backprop2d(node, window, last)
  return lambda x, w, dy: _filter_grad2d(node, window, x, np.asarray(shape_of(w)), dy)


def _filter_grad3d(node, window: Window, x, sizes, dy):
  sizes = [int(s) for s in np.reshape(sizes, -1)]
  if len(sizes) != 5:
    raise ValueError(f"{node.op}: filter_sizes must have 5 elements, got {sizes}")
  return conv_backprop_filter(
      x, sizes, dy, lambda x, w: conv_forward(x, w, window, groups="none", what=node.op),
      what=node.op)


@lowering("Conv3DBackpropFilterV2", attrs={"T": FLOATS, "strides": None, "padding": PAD2,
                                           "data_format": ("NDHWC", "NCDHW"),
                                           "dilations": None}, static_inputs=(1,))
def conv3d_backprop_filter_v2(node):
  """The filter gradient of Conv3D. TF's CPU kernel pads SAME windows the usual way (not
  like Eigen's forward Conv3D)."""
  last = channels_last(node.attrs.get("data_format", "NDHWC"))
  _check_native(node, not last, "data_format", "the NCDHW layout")
  window = Window(node, 3, last)
  _check_native(node, _dilated(window), "dilations", "dilations other than 1")
  return lambda x, sizes, dy: _filter_grad3d(node, window, x, sizes, dy)


@lowering("Conv3DBackpropFilter", attrs={"T": ("float16", "float32", "float64"),
                                         "strides": None, "padding": PAD2, "dilations": None})
def conv3d_backprop_filter(node):
  """The deprecated V1 op (removed from GraphDef version 10, found in old graphs): the
  filter's shape comes from a tensor; NDHWC only."""
  window = Window(node, 3, True)
  _check_native(node, _dilated(window), "dilations", "dilations other than 1")
  return lambda x, w, dy: _filter_grad3d(node, window, x, np.asarray(shape_of(w)), dy)


# Dilation2D ------------------------------------------------------------------------------


def _lowest(dtype):
  dtype = np.dtype(dtype)
  if dtype.kind == "f" or dtype.name == "bfloat16":
    import ml_dtypes
    return np.asarray(ml_dtypes.finfo(dtype).min, dtype)
  return np.asarray(np.iinfo(dtype).min, dtype)


@lowering("Dilation2D", attrs={"T": REAL, "strides": None, "rates": None, "padding": PAD2})
def dilation2d(node):
  """Grayscale morphological dilation, as TF's CPU kernel computes it: the maximum of
  input + filter over the valid window positions, NaN sums never win, and a window
  without any sum above the dtype's lowest value gives that lowest value."""
  window = Window(node, 2, True, dilations_attr="rates")

  def run(x, f):
    xs, fs = shape_of(x), shape_of(f)
    if len(xs) != 4 or len(fs) != 3 or fs[2] != xs[3]:
      raise ValueError(f"Dilation2D needs a rank-4 input and a rank-3 filter of the same "
                       f"depth, got shapes {xs} and {fs}")
    pads, outs = window.pads(xs[1:3], fs[:2])
    shape = (xs[0], outs[0], outs[1], xs[3])
    dtype = np.dtype(x.dtype)
    if is_empty(shape):
      return zeros(shape, dtype)
    xp = jnp.pad(jnp.asarray(x), [(0, 0), pads[0], pads[1], (0, 0)])
    valid = np.pad(np.ones(xs[1:3], bool), pads)
    f = jnp.asarray(f)
    cur = jnp.full(shape, _lowest(dtype))
    (sh, sw), (rh, rw) = window.strides, window.dilations
    for i in range(fs[0]):
      for j in range(fs[1]):
        h0, w0 = i * rh, j * rw
        hs = slice(h0, h0 + (outs[0] - 1) * sh + 1, sh)
        wsl = slice(w0, w0 + (outs[1] - 1) * sw + 1, sw)
        v = xp[:, hs, wsl, :] + f[i, j]
        take = jnp.asarray(valid[hs, wsl])[None, :, :, None] & (v > cur)
        cur = jnp.where(take, v, cur)
    return cur
  return run


def _dilation_taps(node, window: Window, x, f, dy):
  """Which filter tap wins each output of Dilation2D, as TF's gradient kernels pick it:
  the first valid tap (row-major) whose input + filter is strictly greater than all
  before it and than the dtype's lowest value. Returns (input row, input column, tap)
  per output, with tap -1 where no tap wins (all sums NaN, -inf or lowest); TF's kernels
  then use the row and column max(window start, 0) and filter tap (0, 0)."""
  xs, fs = shape_of(x), shape_of(f)
  if len(xs) != 4 or len(fs) != 3 or fs[2] != xs[3]:
    raise ValueError(f"{node.op} needs a rank-4 input and a rank-3 filter of the same "
                     f"depth, got shapes {xs} and {fs}")
  pads, outs = window.pads(xs[1:3], fs[:2])
  shape = (xs[0], outs[0], outs[1], xs[3])
  if shape_of(dy) != shape:
    raise ValueError(f"{node.op}: out_backprop has shape {shape_of(dy)}, the dilation of an "
                     f"input of shape {xs} with a filter of shape {fs} gives {shape}")
  (sh, sw), (rh, rw) = window.strides, window.dilations
  h_beg = np.arange(outs[0]) * sh - pads[0][0]
  w_beg = np.arange(outs[1]) * sw - pads[1][0]
  if is_empty(shape):
    return shape, h_beg, w_beg, None
  x, f = jnp.asarray(x), jnp.asarray(f)
  cur = jnp.full(shape, _lowest(x.dtype))
  tap = jnp.full(shape, -1, np.int32)
  for i in range(fs[0]):
    h_in = h_beg + i * rh
    ok_h = (h_in >= 0) & (h_in < xs[1])
    for j in range(fs[1]):
      w_in = w_beg + j * rw
      ok = ok_h[:, None] & ((w_in >= 0) & (w_in < xs[2]))[None, :]
      if not ok.any():
        continue
      v = x[:, np.clip(h_in, 0, xs[1] - 1)][:, :, np.clip(w_in, 0, xs[2] - 1)] + f[i, j]
      take = jnp.asarray(ok)[None, :, :, None] & (v > cur)
      cur = jnp.where(take, v, cur)
      tap = jnp.where(take, np.int32(i * fs[1] + j), tap)
  return shape, h_beg, w_beg, tap


def _sum_dtype(dtype):
  return compute_dtype(dtype) if np.dtype(dtype).kind == "f" or \
      np.dtype(dtype).name == "bfloat16" else np.dtype(dtype)


_DILATION_ATTRS = {"T": REAL, "strides": None, "rates": None, "padding": PAD2}


@lowering("Dilation2DBackpropInput", attrs=_DILATION_ATTRS)
def dilation2d_backprop_input(node):
  """The gradient of Dilation2D with respect to its input, as TF's CPU kernel computes
  it: each out_backprop element added to the input element of its window's winning tap
  (see `_dilation_taps`). Half floats sum in float32 (TF sums in the dtype)."""
  window = Window(node, 2, True, dilations_attr="rates")

  def run(x, f, dy):
    xs = shape_of(x)
    shape, h_beg, w_beg, tap = _dilation_taps(node, window, x, f, dy)
    dtype = np.dtype(dy.dtype)
    if tap is None or is_empty(xs):
      return zeros(xs, dtype)
    kw = shape_of(f)[1]
    (rh, rw) = window.dilations
    rows = jnp.where(tap >= 0, h_beg[None, :, None, None] + (tap // kw) * rh,
                     np.maximum(h_beg, 0)[None, :, None, None])
    cols = jnp.where(tap >= 0, w_beg[None, None, :, None] + (tap % kw) * rw,
                     np.maximum(w_beg, 0)[None, None, :, None])
    n = lax.broadcasted_iota(np.int32, shape, 0)
    c = lax.broadcasted_iota(np.int32, shape, 3)
    acc = _sum_dtype(dtype)
    out = jnp.zeros(xs, acc).at[n, rows.astype(np.int32), cols.astype(np.int32), c].add(
        jnp.asarray(dy).astype(acc))
    return out.astype(dtype)
  return run


@lowering("Dilation2DBackpropFilter", attrs=_DILATION_ATTRS)
def dilation2d_backprop_filter(node):
  """The gradient of Dilation2D with respect to its filter, as TF's CPU kernel computes
  it: each out_backprop element added to its window's winning tap (tap (0, 0) where none
  wins; see `_dilation_taps`). Half floats sum in float32 (TF sums in the dtype)."""
  window = Window(node, 2, True, dilations_attr="rates")

  def run(x, f, dy):
    fs = shape_of(f)
    _, _, _, tap = _dilation_taps(node, window, x, f, dy)
    dtype = np.dtype(dy.dtype)
    if tap is None or is_empty(fs):
      return zeros(fs, dtype)
    tap = jnp.maximum(tap, 0)
    acc = _sum_dtype(dtype)
    dy = jnp.asarray(dy).astype(acc)
    zero = jnp.zeros_like(dy)
    taps = [jnp.sum(jnp.where(tap == k, dy, zero), axis=(0, 1, 2))
            for k in range(fs[0] * fs[1])]
    return jnp.stack(taps).reshape(fs).astype(dtype)
  return run


# Fused pad / resize-and-pad convolutions --------------------------------------------------


def _mirror_pad(x, paddings, mode: str, what: str):
  pads = np.asarray(paddings).reshape(-1, 2).astype(np.int64)
  xs = shape_of(x)
  if pads.shape[0] != len(xs):
    raise ValueError(f"{what}: paddings must have {len(xs)} rows, got {pads.shape[0]}")
  offset = 0 if mode == "SYMMETRIC" else 1
  for d, (lo, hi) in enumerate(pads):
    if lo < 0 or hi < 0 or lo > xs[d] - offset or hi > xs[d] - offset:
      raise ValueError(f"{what}: paddings {pads.tolist()} must be non-negative and at most "
                       f"{'the' if offset == 0 else 'one less than the'} size of the "
                       f"padded dimension ({mode} mode), input shape {xs}")
  if not pads.any():
    return jnp.asarray(x)
  return jnp.pad(jnp.asarray(x), [tuple(p) for p in pads.tolist()],
                 mode="symmetric" if mode == "SYMMETRIC" else "reflect")


def _resize_axis(n_in: int, n_out: int, align_corners: bool):
  """TF's legacy bilinear sampling positions along one axis (float32 arithmetic)."""
  if align_corners and n_out > 1:
    scale = np.float32(n_in - 1) / np.float32(n_out - 1)
  else:
    scale = np.float32(n_in) / np.float32(n_out)
  pos = np.arange(n_out, dtype=np.float32) * np.float32(scale)
  lo = np.floor(pos).astype(np.int64)
  hi = np.minimum(np.ceil(pos).astype(np.int64), n_in - 1)
  return lo, hi, (pos - lo.astype(np.float32))


def resize_bilinear_legacy(x, size, align_corners: bool):
  """ResizeBilinear with half_pixel_centers=False, as TF's fused resize kernel does it."""
  xs = shape_of(x)
  oh, ow = int(size[0]), int(size[1])
  dtype = np.dtype(x.dtype)
  if (oh, ow) == xs[1:3]:
    return jnp.asarray(x)
  if oh <= 0 or ow <= 0 or xs[1] <= 0 or xs[2] <= 0:
    raise ValueError(f"resize: sizes must be positive, got input {xs[1:3]} and size {[oh, ow]}")
  ylo, yhi, yl = _resize_axis(xs[1], oh, align_corners)
  xlo, xhi, xl = _resize_axis(xs[2], ow, align_corners)
  x = jnp.asarray(x)
  yl = jnp.asarray(yl.astype(dtype))[None, :, None, None]
  xl = jnp.asarray(xl.astype(dtype))[None, None, :, None]
  top, bottom = x[:, ylo], x[:, yhi]
  tl, tr, bl, br = top[:, :, xlo], top[:, :, xhi], bottom[:, :, xlo], bottom[:, :, xhi]
  t = tl + (tr - tl) * xl
  b = bl + (br - bl) * xl
  return t + (b - t) * yl


def _fused_window(node) -> Window:
  return Window(node, 2, True, dilations_attr=None, eigen_same=True)


@lowering("FusedPadConv2D", attrs={"T": FLOATS, "mode": ("REFLECT", "SYMMETRIC"),
                                   "strides": None, "padding": PAD2}, static_inputs=(1,))
def fused_pad_conv2d(node):
  window = _fused_window(node)
  mode = node.attrs["mode"]

  def run(x, paddings, w):
    return conv_forward(_mirror_pad(x, paddings, mode, node.op), w, window, groups="none",
                        what=node.op)
  return run


@lowering("FusedResizeAndPadConv2D", attrs={"T": ("float16", "float32", "float64"),
                                            "resize_align_corners": None,
                                            "mode": ("REFLECT", "SYMMETRIC"),
                                            "strides": None, "padding": PAD2},
          static_inputs=(1, 2))
def fused_resize_and_pad_conv2d(node):
  window = _fused_window(node)
  mode = node.attrs["mode"]
  align = bool(node.attrs.get("resize_align_corners", False))

  def run(x, size, paddings, w):
    size = np.reshape(size, -1)
    if size.shape != (2,) or len(shape_of(x)) != 4:
      raise ValueError(f"{node.op}: needs a rank-4 input and a size of 2 elements, got "
                       f"shapes {shape_of(x)} and {list(size)}")
    resized = resize_bilinear_legacy(x, size, align)
    return conv_forward(_mirror_pad(resized, paddings, mode, node.op), w, window,
                        groups="none", what=node.op)
  return run


__all__ = ["conv_forward", "conv_backprop_input", "resize_bilinear_legacy", "window_pads"]
