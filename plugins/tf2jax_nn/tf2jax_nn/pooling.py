"""Pooling: AvgPool, AvgPool3D, MaxPool, MaxPoolV2, MaxPool3D, MaxPoolWithArgmax, and the
gradient kernels AvgPoolGrad, AvgPool3DGrad, MaxPoolGrad(V2), MaxPoolGradGrad(V2),
MaxPool3DGrad and MaxPoolGradWithArgmax.

Semantics follow TF's CPU kernels:

* AvgPool with SAME padding divides each window's sum by the number of valid (not
  padded) elements; float16/bfloat16 sum in float32 (TF's float16 AvgPool sums in
  float16 and can overflow where tf2jax does not). TF's Eigen AvgPool3D leaves out
  elements equal to the dtype's lowest value (Eigen's padding marker); tf2jax too.
* MaxPool ignores NaN (a NaN never wins a window) and a window with nothing above the
  dtype's lowest finite value gives that value, not -inf (TF starts from `lowest()`);
  oneDNN's bfloat16 kernel gives -inf there instead. MaxPool3D does the same with oneDNN
  (float32/bfloat16); TF's Eigen MaxPool3D kernel keeps -inf, and its NaN results depend
  on how Eigen vectorises the reduction, so NaN propagates here (XLA's max).
* Max-pooling gradients follow TF's gradient kernels, not XLA's: MaxPoolGrad sends each
  window's gradient to the first valid element, replaced only by a strictly greater one
  (the first maximum; the first element of a window of -inf or starting with NaN);
  MaxPool3DGrad gives it whole to every element within 1e-5 of the window's result.
* MaxPool across channels (ksize [1, 1, 1, k]) starts from each group's first element and
  replaces it only by a strictly greater one (a leading NaN stays).
* MaxPoolWithArgmax takes the first valid element of each window (row-major) and
  replaces it only by a strictly greater one, so ties give the lowest index and a
  leading NaN stays. Indices are ((b * height + y) * width + x) * channels + c, without
  the batch term unless include_batch_in_index.
* The gradient kernels as ops (see "Pooling gradients" below): MaxPoolGrad recomputes the
  element of each window from orig_input by MaxPoolGrad's rule above and ignores
  orig_output's values; MaxPoolGradGrad gathers grad at each window's first element equal
  to orig_output (0 where none is); MaxPool3DGrad adds the window's grad to every element
  within 1e-5 of orig_output; MaxPoolGradWithArgmax adds grad at the given indices.
"""

from __future__ import annotations

import itertools
import math

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from tf2jax_core import lowering
from tf2jax_nn._common import (Window, channel_axis, channels_last, compute_dtype,
                               cpu_kernel_reason, full_pads, is_empty, native, out_shape,
                               refuse, shape_of, window_pads, zeros)

FLOATS = ("float16", "bfloat16", "float32", "float64")
MAXPOOL_T = FLOATS + ("int8", "int16", "int32", "int64", "uint8", "uint16")
POOL3D_T = ("bfloat16", "float32")
ARGMAX_T = MAXPOOL_T + ("uint32", "uint64")


def _lowest(dtype):
  dtype = np.dtype(dtype)
  if dtype.kind in "iu":
    return np.asarray(np.iinfo(dtype).min, dtype)
  import ml_dtypes
  return np.asarray(ml_dtypes.finfo(dtype).min, dtype)


def _is_float(dtype) -> bool:
  return np.dtype(dtype).kind == "f" or np.dtype(dtype).name == "bfloat16"


class _Pool:
  """ksize / strides / padding of a pooling node, validated against TF's rules."""

  def __init__(self, node, nd: int, last: bool, ksize=None, strides=None,
               eigen_same: bool = False):
    attrs = dict(node.attrs)
    if ksize is not None:
      attrs["ksize"], attrs["strides"] = list(ksize), list(strides)
    rank = nd + 2
    ks = list(attrs.get("ksize", ()))
    if len(ks) != rank:
      refuse(node, "ksize", f"needs {rank} values", ks)
    if any(k < 1 for k in ks):
      refuse(node, "ksize", "values must be positive", ks)
    if ks[0] != 1:
      refuse(node, "ksize", "TF does not pool over the batch dimension", ks)
    self.ch = channel_axis(rank, last)
    self.depth = ks[self.ch]
    self.nd, self.last, self.rank = nd, last, rank
    st = list(attrs.get("strides", ()))
    if self.depth != 1 or (len(st) == rank and st[self.ch] != 1):
      self.window = None  # depth pooling, validated by MaxPool
      self.depth_stride = st[self.ch] if len(st) == rank else None
      self.ksize = ks
      self.strides_all = st
      return
    shim = _AttrView(node, attrs)
    self.window = Window(shim, nd, last, dilations_attr=None, eigen_same=eigen_same)
    self.ksize = tuple(ks[a] for a in self.window.spatial)
    if self.window.explicit is not None:
      for (lo, hi), k in zip(self.window.explicit, self.ksize):
        if lo >= k or hi >= k:
          refuse(node, "explicit_paddings", "TF requires each padding to be smaller than "
                                            "the window size")

  def pads(self, xs):
    w = self.window
    return window_pads(w.padding, [xs[a] for a in w.spatial], self.ksize, w.strides, None,
                       w.explicit, eigen_same=w.eigen_same)

  def dims(self):
    w = self.window
    dims = [1] * self.rank
    strides = [1] * self.rank
    for a, k, s in zip(w.spatial, self.ksize, w.strides):
      dims[a], strides[a] = k, s
    return tuple(dims), tuple(strides)


class _AttrView:
  """A node with some attrs replaced (MaxPoolV2's ksize/strides come from inputs)."""

  def __init__(self, node, attrs):
    self._node, self.attrs = node, attrs
    self.op, self.path, self.name = node.op, node.path, node.name


def _check_rank(x, rank: int, what: str):
  xs = shape_of(x)
  if len(xs) != rank:
    raise ValueError(f"{what}: input must be {rank}-dimensional, got shape {xs}")
  return xs


def _crop(x, pool: _Pool, pads):
  """Applies negative paddings (see `window_pads`' eigen_same) as slices."""
  if all(lo >= 0 and hi >= 0 for lo, hi in pads):
    return x, pads
  start, limit = [0] * pool.rank, list(np.shape(x))
  kept = []
  for a, (lo, hi) in zip(pool.window.spatial, pads):
    start[a] = max(-lo, 0)
    limit[a] -= max(-hi, 0)
    kept.append((max(lo, 0), max(hi, 0)))
  return lax.slice(x, start, limit), kept


def max_pool(x, pool: _Pool, *, ignore_nan: bool, clamp: bool, what: str,
             near_grad: bool = False):
  """near_grad: TF's MaxPool3DGrad (an Eigen kernel for every dtype) gives the whole
  window gradient to each element within 1e-5 of the window's result, |x - y| < 1e-5
  (ties, near ties; none in a window of -inf, whose result is `lowest`, nor to NaN).
  Otherwise (MaxPoolGrad, MaxPoolGradV2) to the element of `_first_max_select`."""
  xs = _check_rank(x, pool.rank, what)
  pads, outs = pool.pads(xs)
  shape = out_shape(xs, pool.window, outs)
  dtype = np.dtype(x.dtype)
  if is_empty(shape) or is_empty(xs):
    return zeros(shape, dtype)
  x = jnp.asarray(x)
  dims, strides = pool.dims()
  x, pads = _crop(x, pool, pads)

  def forward(x):
    if _is_float(dtype):
      init = np.asarray(-np.inf, dtype)
      if ignore_nan:
        x = jnp.where(jnp.isnan(x), init, x)
    else:
      init = _lowest(dtype)
    y = lax.reduce_window(x, init, lax.max, dims, strides, full_pads(pool.window, pads))
    if clamp and _is_float(dtype):
      y = jnp.where(y < _lowest(dtype), _lowest(dtype), y)
    return y

  if not _is_float(dtype) or not (ignore_nan or near_grad):
    return forward(x)

  # TF's gradient kernels choose the elements that get each window's gradient by their
  # own rules (see the docstring), unlike XLA's gradient (the first maximum, which a
  # window of -inf may not have) and unlike TF's forward kernels (which skip NaN).
  @jax.custom_jvp
  def pooled(x):
    return forward(x)

  @pooled.defjvp
  def _jvp(primals, tangents):
    (x,), (t,) = primals, tangents
    y = pooled(x)
    if near_grad:
      return y, _near_max_sum(x, t, y, pool, pads, outs)
    return y, _first_max_select(x, t, pool, pads, outs)
  return pooled(x)


def _windows(x, t, pool: _Pool, pads, outs):
  """(x, t, valid) at each offset of the windows (row-major): strided slices of the
  padded arrays, shaped like the output."""
  rank, spatial = pool.rank, pool.window.spatial
  widths = [(0, 0)] * rank
  for a, p in zip(spatial, pads):
    widths[a] = tuple(p)
  xp, tp = jnp.pad(x, widths), jnp.pad(t, widths)
  valid = np.pad(np.ones([np.shape(x)[a] for a in spatial], bool), [tuple(p) for p in pads])
  for offset in itertools.product(*[range(k) for k in pool.ksize]):
    index, vindex = [slice(None)] * rank, []
    for a, o, s, n in zip(spatial, offset, pool.window.strides, outs):
      index[a] = slice(o, o + (n - 1) * s + 1, s)
      vindex.append(index[a])
    ok = np.expand_dims(valid[tuple(vindex)], [a for a in range(rank) if a not in spatial])
    yield xp[tuple(index)], tp[tuple(index)], jnp.asarray(ok)


def _first_max_select(x, t, pool: _Pool, pads, outs):
  """TF's MaxPoolGrad (Eigen and oneDNN): t at each window's first valid element
  (row-major), replaced only by a strictly greater element of x. The first maximum of a
  window with a finite maximum, the first element of a window of -inf or of one starting
  with NaN. Linear in t."""
  cur_v = cur_t = cur_ok = None
  for v, tv, ok in _windows(x, t, pool, pads, outs):
    if cur_v is None:
      cur_v, cur_t, cur_ok = v, tv, jnp.broadcast_to(ok, v.shape)
      continue
    take = ok & (~cur_ok | (v > cur_v))
    cur_v = jnp.where(take, v, cur_v)
    cur_t = jnp.where(take, tv, cur_t)
    cur_ok = cur_ok | ok
  return cur_t


def _near_max_sum(x, t, y, pool: _Pool, pads, outs):
  """TF's MaxPool3DGrad (Eigen): the sum over each window of t where |x - y| < 1e-5, in
  x's dtype. Linear in t."""
  near = np.asarray(1e-5, np.dtype(x.dtype))
  out = None
  for v, tv, ok in _windows(x, t, pool, pads, outs):
    part = jnp.where(ok & (jnp.abs(v - y) < near), tv, jnp.zeros_like(tv))
    out = part if out is None else out + part
  return out


def _window_counts(pool: _Pool, xs, pads, outs):
  """How many valid (not padded) elements each output window covers, as a static array."""
  count = np.ones((1,) * pool.rank, np.float64)
  for a, n, k, s, (lo, _), o in zip(pool.window.spatial, [xs[a] for a in pool.window.spatial],
                                    pool.ksize, pool.window.strides, pads, outs):
    start = np.arange(o) * s - lo
    c = np.minimum(start + k, n) - np.maximum(start, 0)
    shape = [1] * pool.rank
    shape[a] = o
    count = count * c.reshape(shape)
  return count


def avg_pool(x, pool: _Pool, *, what: str, skip_lowest: bool = False):
  """skip_lowest: Eigen's AvgPoolMeanReducer (TF's Eigen AvgPool3D) treats elements equal
  to the dtype's lowest value as padding: they count neither in the sum nor in the
  number of elements (a window of only those gives 0 / 0 = NaN)."""
  xs = _check_rank(x, pool.rank, what)
  pads, outs = pool.pads(xs)
  shape = out_shape(xs, pool.window, outs)
  dtype = np.dtype(x.dtype)
  if is_empty(shape) or is_empty(xs):
    return zeros(shape, dtype)
  cd = compute_dtype(dtype)
  dims, strides = pool.dims()
  x = jnp.asarray(x)
  if skip_lowest:
    keep = x != _lowest(dtype)
    x = jnp.where(keep, x, np.zeros((), dtype))
    kc, kpads = _crop(keep.astype(cd), pool, pads)
    counts = lax.reduce_window(kc, np.asarray(0, cd), lax.add, dims, strides,
                               full_pads(pool.window, kpads))
  else:
    counts = _window_counts(pool, xs, pads, outs).astype(cd)
  xc, pads = _crop(x.astype(cd), pool, pads)
  s = lax.reduce_window(xc, np.asarray(0, cd), lax.add, dims, strides,
                        full_pads(pool.window, pads))
  return (s / counts).astype(dtype)


def _layout(node, default: str, nd: int, *, explicit_nchw: bool = True) -> bool:
  fmt = node.attrs.get("data_format", default)
  last = channels_last(fmt)
  if not last:
    if not explicit_nchw and node.attrs.get("padding") == "EXPLICIT":
      refuse(node, "data_format", f"TF's CPU kernel for {node.op} does not support "
                                  f"{fmt} with EXPLICIT padding")
    if not native(node.attrs["T"]):
      refuse(node, "data_format", cpu_kernel_reason(node, f"the {fmt} layout"))
  return last


def _max_pool_flags(node, kernel: str = "MaxPool") -> dict:
  """NaN and empty-window behaviour of the TF CPU kernel that would run the node."""
  dtype = np.dtype(node.attrs["T"]).name
  onednn = native(dtype) and node.attrs.get("padding") != "EXPLICIT" and kernel != "MaxPoolV2"
  if kernel == "MaxPool3D" and not onednn:
    return {"ignore_nan": False, "clamp": False}  # Eigen's MaxPool3D: see the module doc
  # oneDNN's bfloat16 kernel leaves -inf; every other kernel starts from lowest().
  return {"ignore_nan": True, "clamp": not (onednn and dtype == "bfloat16")}


def _depth_max_pool(node, pool: _Pool):
  """Max pooling across channels (ksize/strides [1, 1, 1, k]): TF's CPU rules."""
  sp_k = [k for i, k in enumerate(pool.ksize) if i not in (0, pool.ch)]
  sp_s = [s for i, s in enumerate(pool.strides_all) if i not in (0, pool.ch)]
  if len(pool.strides_all) != pool.rank or pool.strides_all[0] != 1:
    refuse(node, "strides", f"needs {pool.rank} values with a batch stride of 1",
           pool.strides_all)
  if not pool.last:
    refuse(node, "data_format", "TF's CPU kernel pools across depth only in NHWC")
  if any(k != 1 for k in sp_k) or any(s != 1 for s in sp_s):
    refuse(node, "ksize", "TF's MaxPool supports exactly one of pooling across depth or "
                          "pooling across width/height", pool.ksize)
  if pool.depth != pool.depth_stride:
    refuse(node, "strides", "depthwise max pooling requires the depth window to equal the "
                            "depth stride", pool.strides_all)
  if node.attrs.get("padding") == "EXPLICIT":
    refuse(node, "padding", "depthwise max pooling does not take EXPLICIT padding")
  k = pool.depth

  def run(x):
    xs = _check_rank(x, 4, node.op)
    if xs[3] % k:
      raise ValueError(f"{node.op}: depthwise max pooling requires the depth window ({k}) "
                       f"to evenly divide the input depth ({xs[3]})")
    dtype = np.dtype(x.dtype)
    shape = xs[:3] + (xs[3] // k,)
    if is_empty(shape):
      return zeros(shape, dtype)
    # TF's kernel starts from the first element of each group and replaces it only by a
    # strictly greater one: a leading NaN stays, later NaNs never win, -inf stays -inf.
    x = jnp.reshape(jnp.asarray(x), shape + (k,))
    cur = x[..., 0]
    for j in range(1, k):
      cur = jnp.where(x[..., j] > cur, x[..., j], cur)
    return cur
  return run


@lowering("MaxPool", attrs={"T": MAXPOOL_T, "ksize": None, "strides": None,
                            "padding": ("SAME", "VALID", "EXPLICIT"), "explicit_paddings": None,
                            "data_format": ("NHWC", "NCHW")})
def max_pool2d(node):
  last = _layout(node, "NHWC", 2, explicit_nchw=False)
  pool = _Pool(node, 2, last)
  if pool.window is None:
    return _depth_max_pool(node, pool)
  flags = _max_pool_flags(node)
  return lambda x: max_pool(x, pool, what=node.op, **flags)


@lowering("MaxPoolV2", attrs={"T": MAXPOOL_T, "padding": ("SAME", "VALID"),
                              "data_format": lambda v: True if v == "NHWC" else
                              "TF's CPU kernel for MaxPoolV2 supports only NHWC"},
          static_inputs=(1, 2))
def max_pool_v2(node):
  flags = _max_pool_flags(node, "MaxPoolV2")

  def run(x, ksize, strides):
    ks = [int(k) for k in np.reshape(ksize, -1)]
    st = [int(s) for s in np.reshape(strides, -1)]
    pool = _Pool(node, 2, True, ks, st)
    if pool.window is None:
      return _depth_max_pool(node, pool)(x)
    return max_pool(x, pool, what=node.op, **flags)
  return run


@lowering("MaxPool3D", attrs={"T": POOL3D_T, "ksize": None, "strides": None,
                              "padding": ("SAME", "VALID"), "data_format": ("NDHWC", "NCDHW")})
def max_pool3d(node):
  last = _layout(node, "NDHWC", 3)
  pool = _Pool(node, 3, last, eigen_same=not native(node.attrs["T"]))
  if pool.window is None:
    refuse(node, "ksize", "TF's MaxPool3D does not pool across depth", pool.ksize)
  flags = _max_pool_flags(node, "MaxPool3D")
  return lambda x: max_pool(x, pool, what=node.op, near_grad=True, **flags)


@lowering("AvgPool", attrs={"T": FLOATS, "ksize": None, "strides": None,
                            "padding": ("SAME", "VALID"), "data_format": ("NHWC", "NCHW")})
def avg_pool2d(node):
  last = _layout(node, "NHWC", 2)
  pool = _Pool(node, 2, last)
  if pool.window is None:
    refuse(node, "ksize", "TF's AvgPool does not pool across depth (non-spatial pooling is "
                          "not supported)", pool.ksize)
  return lambda x: avg_pool(x, pool, what=node.op)


@lowering("AvgPool3D", attrs={"T": POOL3D_T, "ksize": None, "strides": None,
                              "padding": ("SAME", "VALID"), "data_format": ("NDHWC", "NCDHW")})
def avg_pool3d(node):
  last = _layout(node, "NDHWC", 3)
  eigen = not native(node.attrs["T"])
  pool = _Pool(node, 3, last, eigen_same=eigen)
  if pool.window is None:
    refuse(node, "ksize", "TF's AvgPool3D does not pool across depth", pool.ksize)
  return lambda x: avg_pool(x, pool, what=node.op, skip_lowest=eigen)


@lowering("MaxPoolWithArgmax", attrs={"T": ARGMAX_T, "Targmax": ("int32", "int64"),
                                      "ksize": None, "strides": None,
                                      "padding": ("SAME", "VALID"),
                                      "include_batch_in_index": None})
def max_pool_with_argmax(node):
  pool = _Pool(node, 2, True)
  if pool.window is None:
    refuse(node, "ksize", "TF's MaxPoolWithArgmax does not pool across depth", pool.ksize)
  index_dtype = np.dtype(node.attrs.get("Targmax", "int64"))
  with_batch = bool(node.attrs.get("include_batch_in_index", False))

  def run(x):
    xs = _check_rank(x, 4, node.op)
    if is_empty(xs):
      raise ValueError(f"{node.op}: tensor_in must not be empty (TF's kernel), got shape {xs}")
    pads, outs = pool.pads(xs)
    shape = (xs[0], outs[0], outs[1], xs[3])
    dtype = np.dtype(x.dtype)
    if is_empty(shape):
      return zeros(shape, dtype), zeros(shape, index_dtype)
    n, h, w, c = xs
    x = jnp.asarray(x)
    pad4 = [(0, 0), pads[0], pads[1], (0, 0)]
    xp = jnp.pad(x, pad4)
    valid = np.pad(np.ones((h, w), bool), pads)
    idx = (lax.broadcasted_iota(index_dtype, (h, w, c), 0) * w
           + lax.broadcasted_iota(index_dtype, (h, w, c), 1)) * c \
        + lax.broadcasted_iota(index_dtype, (h, w, c), 2)
    idx = jnp.pad(idx, pad4[1:])[None]
    if with_batch:
      batch = lax.broadcasted_iota(index_dtype, (n, 1, 1, 1), 0) * (h * w * c)
    (sh, sw), (kh, kw) = pool.window.strides, pool.ksize
    cur_v = cur_i = cur_ok = None
    for i in range(kh):
      for j in range(kw):
        hs = slice(i, i + (outs[0] - 1) * sh + 1, sh)
        ws = slice(j, j + (outs[1] - 1) * sw + 1, sw)
        v, ix = xp[:, hs, ws, :], idx[:, hs, ws, :]
        ok = jnp.asarray(valid[hs, ws])[None, :, :, None]
        if cur_v is None:
          cur_v, cur_i, cur_ok = v, jnp.broadcast_to(ix, v.shape), jnp.broadcast_to(ok, v.shape)
          continue
        take = ok & (~cur_ok | (v > cur_v))
        cur_v = jnp.where(take, v, cur_v)
        cur_i = jnp.where(take, ix, cur_i)
        cur_ok = cur_ok | ok
    if with_batch:
      cur_i = cur_i + batch
    return cur_v, cur_i.astype(index_dtype)
  return run


# Pooling gradients -------------------------------------------------------------------------
#
# TF's CPU gradient kernels are Eigen ones (oneDNN runs only the average-pooling ones):
# MaxPoolGrad/V2, MaxPoolGradGrad/V2 and MaxPool3DGrad take channels-last layouts only
# and never pool across depth. Each max-pooling gradient op is differentiated as TF's
# registered gradient does (a custom VJP), which is not always the transpose of the op:
# MaxPoolGrad's gradient is MaxPoolGradGrad (the element equal to orig_output) although
# the op itself sends the gradient to the element it recomputes from orig_input, and
# MaxPool3DGrad's gradient (MaxPool3DGradGrad) gathers the first element exactly equal to
# orig_output although the op sends the gradient to every element within 1e-5 of it.


def _grad_pool(node, nd: int, *, ksize=None, strides=None) -> _Pool:
  """The window of a max-pooling gradient node: channels-last, spatial pooling only."""
  default = "NHWC" if nd == 2 else "NDHWC"
  fmt = node.attrs.get("data_format", default)
  if fmt != default:
    refuse(node, "data_format", f"TF's CPU kernel for {node.op} supports only {default}")
  pool = _Pool(node, nd, True, ksize, strides)
  if pool.window is None:
    refuse(node, "ksize", f"TF's CPU kernel for {node.op} does not pool across depth "
                          "(ksize and strides must be 1 on the channel dimension)",
           pool.ksize)
  return pool


def _grad_shapes(pool: _Pool, x, dy, what: str, dy_name: str = "grad"):
  """(padding, output sizes) of the forward pooling of `x`, checking `dy` against them."""
  xs = _check_rank(x, pool.rank, what)
  pads, outs = pool.pads(xs)
  want = out_shape(xs, pool.window, outs)
  if shape_of(dy) != want:
    raise ValueError(f"{what}: {dy_name} has shape {shape_of(dy)}, the pooling of an input "
                     f"of shape {xs} gives {want}")
  return xs, pads, outs


def _acc_dtype(dtype):
  """Scatters accumulate half floats in float32 (TF adds in the dtype, in its order)."""
  return compute_dtype(dtype) if _is_float(dtype) else np.dtype(dtype)


def _scatter_windows(parts, pool: _Pool, xs, pads, outs, dtype):
  """Adds output-shaped `parts` (one per window offset, row-major, None for nothing) into
  an input of shape `xs`: the transpose of `_windows`."""
  acc = _acc_dtype(dtype)
  padded = list(xs)
  for a, (lo, hi) in zip(pool.window.spatial, pads):
    padded[a] += lo + hi
  buf = jnp.zeros(padded, acc)
  for offset, part in zip(itertools.product(*[range(k) for k in pool.ksize]), parts):
    if part is None:
      continue
    index = [slice(None)] * pool.rank
    for a, o, s, n in zip(pool.window.spatial, offset, pool.window.strides, outs):
      index[a] = slice(o, o + (n - 1) * s + 1, s)
    buf = buf.at[tuple(index)].add(jnp.asarray(part).astype(acc))
  start = [0] * pool.rank
  for a, (lo, _) in zip(pool.window.spatial, pads):
    start[a] = lo
  return lax.slice(buf, start, [b + n for b, n in zip(start, xs)]).astype(dtype)


def _first_max_offsets(x, pool: _Pool, pads, outs):
  """Which window offset (row-major) TF's MaxPoolGrad sends each window's gradient to:
  the first valid element, replaced only by a strictly greater one."""
  cur_v = cur_k = cur_ok = None
  for k, (v, _, ok) in enumerate(_windows(x, x, pool, pads, outs)):
    if cur_v is None:
      cur_v, cur_ok = v, jnp.broadcast_to(ok, v.shape)
      cur_k = jnp.zeros(v.shape, np.int32)
      continue
    take = ok & (~cur_ok | (v > cur_v))
    cur_v = jnp.where(take, v, cur_v)
    cur_k = jnp.where(take, np.int32(k), cur_k)
    cur_ok = cur_ok | ok
  return cur_k


def _n_offsets(pool: _Pool) -> int:
  return int(np.prod(pool.ksize))


def _scatter_first_max(x, dy, pool: _Pool, xs, pads, outs):
  """TF's MaxPoolGrad: each window's gradient added to the element `_first_max_offsets`
  picks."""
  sel = _first_max_offsets(jnp.asarray(x), pool, pads, outs)
  dy = jnp.asarray(dy)
  zero = jnp.zeros_like(dy)
  parts = [jnp.where(sel == k, dy, zero) for k in range(_n_offsets(pool))]
  return _scatter_windows(parts, pool, xs, pads, outs, np.dtype(dy.dtype))


def _gather_first_equal(x, y, g, pool: _Pool, pads, outs):
  """TF's MaxPoolGradGrad: for each window, g at its first valid element equal to the
  window's orig_output y (0 where none is, e.g. y NaN or not in the window)."""
  out = jnp.zeros(np.shape(y), np.dtype(g.dtype))
  found = None
  for v, gv, ok in _windows(jnp.asarray(x), jnp.asarray(g), pool, pads, outs):
    hit = ok & (v == y)
    if found is not None:
      hit = hit & ~found
    out = jnp.where(hit, gv, out)
    found = hit if found is None else found | hit
  return out


def _near(v, y):
  return jnp.abs(v - y) < np.asarray(1e-5, np.dtype(v.dtype))


def _scatter_near(x, y, dy, pool: _Pool, xs, pads, outs):
  """TF's MaxPool3DGrad: each window's gradient added whole to every valid element within
  1e-5 of orig_output (computed in the dtype, like TF's Eigen kernel)."""
  zero = jnp.zeros_like(dy)
  parts = [jnp.where(ok & _near(v, y), dy, zero)
           for v, _, ok in _windows(jnp.asarray(x), jnp.asarray(x), pool, pads, outs)]
  return _scatter_windows(parts, pool, xs, pads, outs, np.dtype(dy.dtype))


def _tf_vjp(fn, grad_fn):
  """`fn(x, y, g)` whose VJP is TF's registered gradient: zeros for x and y, and
  `grad_fn(x, y, cotangent)` for g."""
  @jax.custom_vjp
  def f(x, y, g):
    return fn(x, y, g)

  def fwd(x, y, g):
    return fn(x, y, g), (x, y)

  def bwd(res, ct):
    x, y = res
    return jnp.zeros_like(x), jnp.zeros_like(y), grad_fn(x, y, ct)
  f.defvjp(fwd, bwd)
  return f


def max_pool_grad(x, y, dy, pool: _Pool, what: str):
  """TF's MaxPoolGrad (orig_output is only checked for its shape)."""
  xs, pads, outs = _grad_shapes(pool, x, dy, what)
  if shape_of(y) != shape_of(dy):
    raise ValueError(f"{what}: orig_output has shape {shape_of(y)}, grad {shape_of(dy)}")
  dtype = np.dtype(dy.dtype)
  if is_empty(xs) or is_empty(shape_of(dy)):
    return zeros(xs, dtype)
  fn = _tf_vjp(lambda x, y, g: _scatter_first_max(x, g, pool, xs, pads, outs),
               lambda x, y, ct: _gather_first_equal(x, y, ct, pool, pads, outs))
  return fn(jnp.asarray(x), jnp.asarray(y), jnp.asarray(dy))


def max_pool_grad_grad(x, y, g, pool: _Pool, what: str):
  """TF's MaxPoolGradGrad: the gradient of MaxPoolGrad with respect to its grad."""
  xs, pads, outs = _grad_shapes(pool, x, y, what, "orig_output")
  if shape_of(g) != xs:
    raise ValueError(f"{what}: grad has shape {shape_of(g)}, orig_input {xs}")
  dtype = np.dtype(g.dtype)
  if is_empty(xs) or is_empty(shape_of(y)):
    return zeros(shape_of(y), dtype)
  fn = _tf_vjp(lambda x, y, g: _gather_first_equal(x, y, g, pool, pads, outs),
               lambda x, y, ct: _scatter_first_max(x, ct, pool, xs, pads, outs))
  return fn(jnp.asarray(x), jnp.asarray(y), jnp.asarray(g))


_MAXPOOL_GRAD_ATTRS = {"T": ARGMAX_T, "ksize": None, "strides": None,
                       "data_format": ("NHWC", "NCHW")}


@lowering("MaxPoolGrad", attrs={**_MAXPOOL_GRAD_ATTRS,
                                "padding": ("SAME", "VALID", "EXPLICIT"),
                                "explicit_paddings": None})
def max_pool_grad2d(node):
  """The gradient of MaxPool: each window's grad goes to the element TF's kernel recomputes
  from orig_input (the first valid one, replaced only by a strictly greater one: the first
  maximum; the first element of a window of -inf or starting with NaN)."""
  pool = _grad_pool(node, 2)
  return lambda x, y, dy: max_pool_grad(x, y, dy, pool, node.op)


@lowering("MaxPoolGradV2", attrs={"T": _MAXPOOL_GRAD_ATTRS["T"], "padding": ("SAME", "VALID"),
                                  "data_format": ("NHWC", "NCHW")}, static_inputs=(3, 4))
def max_pool_grad2d_v2(node):
  """MaxPoolGrad with ksize and strides from (static) inputs."""
  _grad_pool_format(node)

  def run(x, y, dy, ksize, strides):
    pool = _grad_pool(node, 2, ksize=_ints(ksize), strides=_ints(strides))
    return max_pool_grad(x, y, dy, pool, node.op)
  return run


@lowering("MaxPoolGradGrad", attrs={**_MAXPOOL_GRAD_ATTRS, "padding": ("SAME", "VALID")})
def max_pool_grad_grad2d(node):
  """For each window of orig_input, grad at its first valid element equal to orig_output
  (0 where none is: NaN or -inf windows, whose MaxPool result is not in the window)."""
  pool = _grad_pool(node, 2)
  return lambda x, y, g: max_pool_grad_grad(x, y, g, pool, node.op)


@lowering("MaxPoolGradGradV2", attrs={"T": _MAXPOOL_GRAD_ATTRS["T"],
                                      "padding": ("SAME", "VALID"),
                                      "data_format": ("NHWC", "NCHW")}, static_inputs=(3, 4))
def max_pool_grad_grad2d_v2(node):
  """MaxPoolGradGrad with ksize and strides from (static) inputs."""
  _grad_pool_format(node)

  def run(x, y, g, ksize, strides):
    pool = _grad_pool(node, 2, ksize=_ints(ksize), strides=_ints(strides))
    return max_pool_grad_grad(x, y, g, pool, node.op)
  return run


def _grad_pool_format(node):
  if node.attrs.get("data_format", "NHWC") != "NHWC":
    refuse(node, "data_format", f"TF's CPU kernel for {node.op} supports only NHWC")


def _ints(values):
  return [int(v) for v in np.reshape(values, -1)]


def _tinput(value):
  return True if value in POOL3D_T else \
      f"TF's CPU kernel for MaxPool3DGrad takes TInput in {list(POOL3D_T)}"


@lowering("MaxPool3DGrad", attrs={"T": POOL3D_T, "TInput": _tinput, "ksize": None,
                                  "strides": None, "padding": ("SAME", "VALID"),
                                  "data_format": ("NDHWC", "NCDHW")})
def max_pool3d_grad(node):
  """The gradient of MaxPool3D as TF's Eigen kernel computes it: each window's grad added
  whole to every element within 1e-5 of the given orig_output."""
  if np.dtype(node.attrs.get("TInput", "float32")) != np.dtype(node.attrs["T"]):
    refuse(node, "TInput", "TF's CPU kernel for MaxPool3DGrad needs TInput equal to T")
  pool = _grad_pool(node, 3)

  def run(x, y, dy):
    xs, pads, outs = _grad_shapes(pool, x, dy, node.op)
    if shape_of(y) != shape_of(dy):
      raise ValueError(f"{node.op}: orig_output has shape {shape_of(y)}, grad {shape_of(dy)}")
    dtype = np.dtype(dy.dtype)
    if is_empty(xs) or is_empty(shape_of(dy)):
      return zeros(xs, dtype)
    fn = _tf_vjp(lambda x, y, g: _scatter_near(x, y, g, pool, xs, pads, outs),
                 lambda x, y, ct: _gather_first_equal(x, y, ct, pool, pads, outs))
    return fn(jnp.asarray(x), jnp.asarray(y), jnp.asarray(dy))
  return run


def avg_pool_grad(shape, dy, pool: _Pool, what: str):
  """The gradient of `avg_pool` for an input of `shape`: the VJP of the forward pooling
  (half floats in float32, rounded once)."""
  shape = tuple(_ints(shape))
  if len(shape) != pool.rank:
    raise ValueError(f"{what}: orig_input_shape must have {pool.rank} elements, got "
                     f"{list(shape)}")
  if any(d < 0 for d in shape):
    raise ValueError(f"{what}: orig_input_shape must be non-negative, got {list(shape)}")
  dtype = np.dtype(dy.dtype)
  cd = compute_dtype(dtype)
  y, vjp = jax.vjp(lambda x: avg_pool(x, pool, what=what), jnp.zeros(shape, cd))
  if shape_of(dy) != tuple(y.shape):
    raise ValueError(f"{what}: grad has shape {shape_of(dy)}, the pooling of an input of "
                     f"shape {shape} gives {tuple(y.shape)}")
  return vjp(jnp.asarray(dy, cd))[0].astype(dtype)


@lowering("AvgPoolGrad", attrs={"T": FLOATS, "ksize": None, "strides": None,
                                "padding": ("SAME", "VALID"),
                                "data_format": ("NHWC", "NCHW")}, static_inputs=(0,))
def avg_pool_grad2d(node):
  """Each window's grad divided by its number of valid elements, added to them."""
  last = _layout(node, "NHWC", 2)
  pool = _Pool(node, 2, last)
  if pool.window is None:
    refuse(node, "ksize", "TF's AvgPoolGrad does not pool across depth", pool.ksize)
  return lambda shape, dy: avg_pool_grad(shape, dy, pool, node.op)


@lowering("AvgPool3DGrad", attrs={"T": POOL3D_T, "ksize": None, "strides": None,
                                  "padding": ("SAME", "VALID"),
                                  "data_format": ("NDHWC", "NCDHW")}, static_inputs=(0,))
def avg_pool3d_grad(node):
  """Like AvgPoolGrad; TF's kernel pads SAME windows the usual way (not like Eigen's
  forward AvgPool3D) and counts every element."""
  last = _layout(node, "NDHWC", 3)
  pool = _Pool(node, 3, last)
  if pool.window is None:
    refuse(node, "ksize", "TF's AvgPool3DGrad does not pool across depth", pool.ksize)
  return lambda shape, dy: avg_pool_grad(shape, dy, pool, node.op)


@lowering("MaxPoolGradWithArgmax", attrs={"T": ARGMAX_T, "Targmax": ("int64",),
                                          "ksize": None, "strides": None,
                                          "padding": ("SAME", "VALID"),
                                          "include_batch_in_index": None})
def max_pool_grad_with_argmax(node):
  """grad added at the flat indices `argmax` of the input (plus the batch's offset unless
  include_batch_in_index). TF's kernel aborts on an index outside the element's batch;
  here such an index drops its gradient (it cannot be checked when argmax is traced)."""
  pool = _grad_pool(node, 2)
  with_batch = bool(node.attrs.get("include_batch_in_index", False))

  def run(x, dy, argmax):
    xs, _, _ = _grad_shapes(pool, x, dy, node.op)
    if shape_of(argmax) != shape_of(dy):
      raise ValueError(f"{node.op}: argmax has shape {shape_of(argmax)}, grad "
                       f"{shape_of(dy)}")
    dtype = np.dtype(dy.dtype)
    if is_empty(xs) or is_empty(shape_of(dy)):
      return zeros(xs, dtype)
    n, per_batch = xs[0], int(np.prod(xs[1:]))
    idx = jnp.asarray(argmax).astype(np.int64 if n * per_batch >= 2**31 else np.int32)
    if not with_batch:
      idx = idx + (lax.broadcasted_iota(idx.dtype, idx.shape, 0) * per_batch)
    acc = _acc_dtype(dtype)
    flat = jnp.zeros((n * per_batch,), acc).at[idx.reshape(-1)].add(
        jnp.asarray(dy).reshape(-1).astype(acc), mode="drop")
    return flat.reshape(xs).astype(dtype)
  return run


# Fractional pooling ------------------------------------------------------------------------
#
# TF's kernels draw the pooling sequences of rows and columns from a PhiloxRandom seeded
# with (seed, seed2), built afresh on every call: a function of the attrs and the input
# shape, computed here at conversion time. With seed = seed2 = 0 TF draws a random seed
# when it builds the kernel, which nothing can reproduce: refused.

_M32 = 0xFFFFFFFF


def _philox_block(counter: int, key: tuple[int, int]) -> tuple[int, ...]:
  """Philox-4x32-10 of a 128-bit counter under key words (k0, k1)."""
  c = [(counter >> (32 * i)) & _M32 for i in range(4)]
  k0, k1 = key
  for r in range(10):
    p0, p1 = 0xD2511F53 * c[0], 0xCD9E8D57 * c[2]
    c = [((p1 >> 32) ^ c[1] ^ k0) & _M32, p1 & _M32, ((p0 >> 32) ^ c[3] ^ k1) & _M32,
         p0 & _M32]
    if r < 9:
      k0, k1 = (k0 + 0x9E3779B9) & _M32, (k1 + 0xBB67AE85) & _M32
  return tuple(c)


class _GuardedPhilox:
  """TF's GuardedPhiloxRandom(seed, seed2): key = seed, counter words 2-3 = seed2;
  ReserveSamples32(n) hands out the stream at the current counter and skips ceil(n / 4)
  blocks. The stream's words are read one by one (SingleSampleAdapter)."""

  def __init__(self, seed: int, seed2: int):
    seed, seed2 = seed & (2**64 - 1), seed2 & (2**64 - 1)
    self.key = (seed & _M32, seed >> 32)
    self.counter = seed2 << 64

  def reserve32(self, n: int):
    counter, key, buf = self.counter, self.key, []
    self.counter = (self.counter + (n + 3) // 4) % 2**128

    def word():
      nonlocal counter
      if not buf:
        buf.extend(reversed(_philox_block(counter, key)))
        counter = (counter + 1) % 2**128
      return buf.pop()
    return word


def _uint64_to_double(x0: int, x1: int) -> float:
  bits = (((x0 & 0xFFFFF) | 0x3FF00000) << 32) | x1
  return float(np.array(bits, np.uint64).view(np.float64)) - 1.0


def _pooling_sequence(n_in: int, n_out: int, gen: _GuardedPhilox, pseudo: bool) -> np.ndarray:
  """TF's GeneratePoolingSequence: the cumulative window starts (n_out + 1 values)."""
  k = n_in // n_out
  if pseudo:
    # Windows of ceil(alpha * (i + u)), u uniform in [0, max_u).
    word = gen.reserve32(2)
    alpha = n_in / n_out
    max_u = min((k + 2) / alpha - 1, (n_in + 1 - k) / alpha - (n_out - 1))
    u = _uint64_to_double(word(), word()) * max_u
    cum = [1] + [int(math.ceil(alpha * (i + u))) for i in range(1, n_out)] + [n_in + 1]
    diff = [b - a for a, b in zip(cum[:-1], cum[1:])]
  else:
    # n_in % n_out windows of k + 1 and the rest of k, shuffled (TF's RandomShuffle).
    word = gen.reserve32(n_out)
    diff = [k + 1] * (n_in % n_out) + [k] * (n_out - n_in % n_out)
    for i in range(n_out - 1):
      j = i + word() % (n_out - i)
      diff[i], diff[j] = diff[j], diff[i]
  if n_in % n_out == 0:
    diff = [k] * n_out  # drawn all the same (the generator moves on)
  return np.concatenate([[0], np.cumsum(diff)]).astype(np.int64)


def _fractional_windows(seq: np.ndarray, size: int, overlapping: bool):
  """(index, valid) arrays of shape (outputs, longest window) of the rows (or columns)
  each output reads: seq[i] to seq[i + 1] - 1, or seq[i + 1] when overlapping, at most
  size - 1."""
  starts = seq[:-1]
  ends = np.minimum(seq[1:] - (0 if overlapping else 1), size - 1)
  width = int((ends - starts).max()) + 1
  index = starts[:, None] + np.arange(width)[None, :]
  valid = index <= ends[:, None]
  return np.where(valid, index, starts[:, None]), valid


class _Fractional:
  """The attrs of a FractionalMaxPool / FractionalAvgPool node, validated."""

  def __init__(self, node):
    ratio = [float(r) for r in node.attrs.get("pooling_ratio", ())]
    if len(ratio) != 4:
      refuse(node, "pooling_ratio", "needs 4 values (NHWC)")
    if any(r < 1 for r in ratio):
      refuse(node, "pooling_ratio", "values cannot be smaller than 1")
    if ratio[0] != 1 or ratio[3] != 1:
      refuse(node, "pooling_ratio", "TF does not pool fractionally over the batch nor the "
                                    "channel dimension")
    seed, seed2 = int(node.attrs.get("seed", 0)), int(node.attrs.get("seed2", 0))
    if not node.attrs.get("deterministic", False):
      if seed or seed2:
        refuse(node, "deterministic", "TF requires seed and seed2 to be 0 when "
                                      "deterministic is false")
      refuse(node, "deterministic", "TF draws the pooling sequences from a random seed "
                                    "(deterministic false), which cannot be reproduced")
    if seed == 0 and seed2 == 0:
      refuse(node, "seed", "seed and seed2 both 0: TF draws a random seed when it builds "
                           "the kernel, which cannot be reproduced")
    self.node, self.ratio, self.seed, self.seed2 = node, ratio, seed, seed2
    self.pseudo = bool(node.attrs.get("pseudo_random", False))
    self.overlapping = bool(node.attrs.get("overlapping", False))

  def sequences(self, xs):
    node = self.node
    if len(xs) != 4:
      raise ValueError(f"{node.op} node {node.name!r}: input must be 4-dimensional, got "
                       f"shape {xs}")
    outs = []
    for i, (n, r) in enumerate(zip(xs, self.ratio)):
      if n < r:
        raise ValueError(f"{node.op} node {node.name!r}: pooling ratio {r} is higher than "
                         f"the input size {n} of dimension {i}")
      outs.append(int(np.floor(np.float32(n) / np.float32(r))))
    gen = _GuardedPhilox(self.seed, self.seed2)
    rows = _pooling_sequence(xs[1], outs[1], gen, self.pseudo)
    cols = _pooling_sequence(xs[2], outs[2], gen, self.pseudo)
    return rows, cols

  def patches(self, x, rows, cols):
    """x gathered into (N, out rows, row window, out cols, column window, C) and the
    validity of each position, shaped to broadcast."""
    ri, rv = _fractional_windows(rows, x.shape[1], self.overlapping)
    ci, cv = _fractional_windows(cols, x.shape[2], self.overlapping)
    p = jnp.asarray(x)[:, ri][:, :, :, ci]
    valid = rv[None, :, :, None, None, None] & cv[None, None, None, :, :, None]
    return p, valid


_FRACTIONAL_ATTRS = {"T": ("float32", "float64", "int32", "int64"), "pooling_ratio": None,
                     "pseudo_random": None, "overlapping": None, "deterministic": None,
                     "seed": None, "seed2": None}


@lowering("FractionalMaxPool", attrs=_FRACTIONAL_ATTRS)
def fractional_max_pool(node):
  """The maximum of each window (NaN never wins; a window with nothing above the lowest
  value gives it) and the row and column pooling sequences. Gradients go where TF's
  FractionalMaxPoolGrad sends them: the first element of a window, replaced only by a
  strictly greater one."""
  frac = _Fractional(node)

  def run(x):
    xs = shape_of(x)
    rows, cols = frac.sequences(xs)
    dtype = np.dtype(x.dtype)
    p, valid = frac.patches(x, rows, cols)
    shape = p.shape[:2] + p.shape[3:4] + p.shape[5:]

    def forward(p):
      if _is_float(dtype):
        v = jnp.where(valid & ~jnp.isnan(p), p, np.asarray(-np.inf, dtype))
        return jnp.maximum(jnp.max(v, axis=(2, 4)), _lowest(dtype))
      return jnp.max(jnp.where(valid, p, _lowest(dtype)), axis=(2, 4))

    @jax.custom_jvp
    def pooled(p):
      return forward(p)

    @pooled.defjvp
    def _jvp(primals, tangents):
      (p,), (t,) = primals, tangents
      cur_v = cur_t = cur_ok = None
      for i, j in itertools.product(range(p.shape[2]), range(p.shape[4])):
        v, tv = p[:, :, i, :, j], t[:, :, i, :, j]
        ok = jnp.asarray(valid[:, :, i, :, j])
        if cur_v is None:
          cur_v, cur_t, cur_ok = v, tv, jnp.broadcast_to(ok, v.shape)
          continue
        take = ok & (~cur_ok | (v > cur_v))
        cur_v, cur_t = jnp.where(take, v, cur_v), jnp.where(take, tv, cur_t)
        cur_ok = cur_ok | ok
      return pooled(p), cur_t

    y = pooled(p) if _is_float(dtype) else forward(p)
    assert y.shape == shape
    return y, rows, cols
  return run


@lowering("FractionalAvgPool", attrs=_FRACTIONAL_ATTRS)
def fractional_avg_pool(node):
  """The mean of each window, summed in the dtype in TF's (row-major) order and divided by
  the window's size (integers: truncated), and the row and column pooling sequences."""
  frac = _Fractional(node)

  def run(x):
    xs = shape_of(x)
    rows, cols = frac.sequences(xs)
    dtype = np.dtype(x.dtype)
    p, valid = frac.patches(x, rows, cols)
    zero = np.zeros((), dtype)
    total = jnp.zeros(p.shape[:2] + p.shape[3:4] + p.shape[5:], dtype)
    for i, j in itertools.product(range(p.shape[2]), range(p.shape[4])):
      total = total + jnp.where(jnp.asarray(valid[:, :, i, :, j]), p[:, :, i, :, j], zero)
    count = valid.sum(axis=(2, 4)).astype(dtype)
    if dtype.kind in "iu":
      y = lax.div(total, jnp.asarray(np.broadcast_to(count, total.shape)))
    else:
      y = total / count
    return y, rows, cols
  return run
