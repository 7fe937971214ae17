"""Pooling: AvgPool, AvgPool3D, MaxPool, MaxPoolV2, MaxPool3D, MaxPoolWithArgmax.

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
"""

from __future__ import annotations

import itertools

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
