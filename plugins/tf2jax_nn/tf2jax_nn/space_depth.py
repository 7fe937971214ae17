"""Space/batch/depth rearrangements, patch extraction and data-format helpers:
SpaceToBatch, SpaceToBatchND, BatchToSpace, BatchToSpaceND, SpaceToDepth, DepthToSpace,
ExtractImagePatches, ExtractVolumePatches, DataFormatDimMap, DataFormatVecPermute.

Semantics follow TF's CPU kernels:

* The block shapes, paddings and crops of the *ToBatch*/*ToSpace* ops decide the output
  shape, so they must be known at conversion time (graph constants or static shapes).
* SpaceToDepth and DepthToSpace: TF's CPU kernels take only data_format NHWC (NCHW and
  NCHW_VECT_C are GPU-only); other formats are a conversion error.
* Patches: zero padding, SAME padding placed like TF (the larger half after), patch
  elements ordered (planes, rows, cols) then depth. ExtractVolumePatches places SAME
  windows like Eigen's volume patches: with a stride larger than the window by 2 or more
  the leading padding is negative (C++ division), so windows start inside the input
  (e.g. size 3, window 1, stride 3 picks element 1); ExtractImagePatches clamps it at 0.
* DataFormatDimMap maps x as TF's kernel does: m = (x + n) % n with C++'s remainder
  (the sign of the dividend), then m = 0 .. n-2 pick their dimension and anything else
  (including a negative m, for x < -n) the last one.
* DataFormatVecPermute of a vector of n - 2 elements (or n - 2 rows) permutes only the
  spatial dimensions (D, H, W) of the formats.
"""

from __future__ import annotations

import math

import numpy as np
from jax import lax

from tf2jax_core import lowering, xnp
from tf2jax_nn._common import refuse, window_pads

# TF's CPU kernels of the space/batch ops take every real number dtype.
_SPACE_T = ("bfloat16", "float16", "float32", "float64", "int8", "int16", "int32", "int64",
            "uint8", "uint16", "uint32", "uint64")
_DEPTH_T = _SPACE_T + ("bool", "complex64", "complex128")
_PATCH_T = _SPACE_T + ("complex64", "complex128")
_IDX = ("int32", "int64")


def _shape(x) -> tuple[int, ...]:
  return tuple(int(d) for d in np.shape(x))


def _ints(value, what: str, shape=None) -> np.ndarray:
  value = np.asarray(value)
  if shape is not None and value.shape != shape:
    raise ValueError(f"{what} must have shape {list(shape)}, got {list(value.shape)}")
  return value.astype(np.int64)


# Space <-> batch ----------------------------------------------------------------------


def _space_to_batch(x, block, pads):
  xs = _shape(x)
  m_dims = len(block)
  if len(xs) < 1 + m_dims:
    raise ValueError(f"input (input 0, shape {list(xs)}) must have rank at least "
                     f"{1 + m_dims} for a block shape of {m_dims} dimensions")
  if (block < 1).any():
    raise ValueError(f"block_shape values must be positive, got {block.tolist()}")
  if (pads < 0).any():
    raise ValueError(f"paddings must be non-negative, got {pads.tolist()}")
  spatial = []
  for i in range(m_dims):
    padded = xs[1 + i] + int(pads[i, 0]) + int(pads[i, 1])
    if padded % int(block[i]):
      raise ValueError(f"padded size {padded} of dimension {1 + i} of input (input 0, shape "
                       f"{list(xs)}) is not divisible by block_shape[{i}] = {int(block[i])}")
    spatial.append(padded // int(block[i]))
  m = xnp(x)
  widths = [(0, 0)] + [tuple(int(p) for p in pads[i]) for i in range(m_dims)]
  widths += [(0, 0)] * (len(xs) - 1 - m_dims)
  x = m.pad(x, widths)
  batch, rest = xs[0], xs[1 + m_dims:]
  split = [batch]
  for s, b in zip(spatial, block):
    split += [s, int(b)]
  x = m.reshape(x, split + list(rest))
  # [batch, s1, b1, ..., sM, bM, rest] -> [b1, ..., bM, batch, s1, ..., sM, rest]
  perm = ([2 + 2 * i for i in range(m_dims)] + [0] + [1 + 2 * i for i in range(m_dims)]
          + list(range(1 + 2 * m_dims, 1 + 2 * m_dims + len(rest))))
  x = m.transpose(x, perm)
  return m.reshape(x, [batch * int(np.prod(block, dtype=np.int64))] + spatial + list(rest))


def _batch_to_space(x, block, crops):
  xs = _shape(x)
  m_dims = len(block)
  if len(xs) < 1 + m_dims:
    raise ValueError(f"input (input 0, shape {list(xs)}) must have rank at least "
                     f"{1 + m_dims} for a block shape of {m_dims} dimensions")
  if (block < 1).any():
    raise ValueError(f"block_shape values must be positive, got {block.tolist()}")
  if (crops < 0).any():
    raise ValueError(f"crops must be non-negative, got {crops.tolist()}")
  prod = int(np.prod(block, dtype=np.int64))
  if xs[0] % prod:
    raise ValueError(f"input (input 0, shape {list(xs)}): the batch size {xs[0]} is not "
                     f"divisible by the product of block_shape {block.tolist()} = {prod}")
  batch = xs[0] // prod
  spatial, rest = xs[1:1 + m_dims], xs[1 + m_dims:]
  for i in range(m_dims):
    full = spatial[i] * int(block[i])
    if int(crops[i, 0]) + int(crops[i, 1]) > full:
      raise ValueError(f"crops {crops[i].tolist()} of dimension {1 + i} exceed its size "
                       f"{full} (input shape {list(xs)}, block shape {block.tolist()})")
  m = xnp(x)
  x = m.reshape(x, [int(b) for b in block] + [batch] + list(spatial) + list(rest))
  # [b1..bM, batch, s1..sM, rest] -> [batch, s1, b1, ..., sM, bM, rest]
  perm = [m_dims]
  for i in range(m_dims):
    perm += [m_dims + 1 + i, i]
  perm += list(range(1 + 2 * m_dims, 1 + 2 * m_dims + len(rest)))
  x = m.transpose(x, perm)
  full = [s * int(b) for s, b in zip(spatial, block)]
  x = m.reshape(x, [batch] + full + list(rest))
  index = [slice(None)] + [slice(int(crops[i, 0]), full[i] - int(crops[i, 1]))
                           for i in range(m_dims)]
  return x[tuple(index)]


def _block_and_pairs(block, pairs, what: str):
  block = _ints(block, "block_shape (input 1)")
  if block.ndim != 1:
    raise ValueError(f"block_shape (input 1) must be 1-D, got shape {list(block.shape)}")
  pairs = _ints(pairs, f"{what} (input 2)", (block.shape[0], 2))
  return block, pairs


@lowering("SpaceToBatchND", attrs={"T": _SPACE_T, "Tblock_shape": _IDX, "Tpaddings": _IDX},
          static_inputs=(1, 2))
def space_to_batch_nd(node):
  def run(x, block, paddings):
    return _space_to_batch(x, *_block_and_pairs(block, paddings, "paddings"))
  return run


@lowering("BatchToSpaceND", attrs={"T": _SPACE_T, "Tblock_shape": _IDX, "Tcrops": _IDX},
          static_inputs=(1, 2))
def batch_to_space_nd(node):
  def run(x, block, crops):
    return _batch_to_space(x, *_block_and_pairs(block, crops, "crops"))
  return run


def _block_size(node, minimum: int = 2) -> int:
  size = int(node.attrs.get("block_size", 0))
  if size < minimum:
    refuse(node, "block_size", f"must be at least {minimum}")
  return size


def _check_rank4(x, name: str = "input"):
  xs = _shape(x)
  if len(xs) != 4:
    raise ValueError(f"{name} (input 0) must be 4-D, got shape {list(xs)}")
  return xs


@lowering("SpaceToBatch", attrs={"T": _SPACE_T, "Tpaddings": _IDX, "block_size": None},
          static_inputs=(1,))
def space_to_batch(node):
  size = _block_size(node)

  def run(x, paddings):
    _check_rank4(x)
    pads = _ints(paddings, "paddings (input 1)", (2, 2))
    return _space_to_batch(x, np.array([size, size]), pads)
  return run


@lowering("BatchToSpace", attrs={"T": _SPACE_T, "Tidx": _IDX, "block_size": None},
          static_inputs=(1,))
def batch_to_space(node):
  size = _block_size(node)

  def run(x, crops):
    _check_rank4(x)
    crops = _ints(crops, "crops (input 1)", (2, 2))
    return _batch_to_space(x, np.array([size, size]), crops)
  return run


# Space <-> depth ----------------------------------------------------------------------


def _nhwc_only(op: str):
  def rule(value):
    if value == "NHWC":
      return True
    return (f"TF's CPU kernel for {op} supports only data_format NHWC ({value} runs on GPU "
            "only)")
  return rule


@lowering("DepthToSpace", attrs={"T": _DEPTH_T, "block_size": None,
                                 "data_format": _nhwc_only("DepthToSpace")})
def depth_to_space(node):
  b = _block_size(node)

  def run(x):
    n, h, w, c = _check_rank4(x)
    if c % (b * b):
      raise ValueError(f"input (input 0, shape {[n, h, w, c]}): the depth {c} is not "
                       f"divisible by block_size * block_size = {b * b}")
    m = xnp(x)
    y = m.reshape(x, (n, h, w, b, b, c // (b * b)))
    y = m.transpose(y, (0, 1, 3, 2, 4, 5))
    return m.reshape(y, (n, h * b, w * b, c // (b * b)))
  return run


@lowering("SpaceToDepth", attrs={"T": _DEPTH_T, "block_size": None,
                                 "data_format": _nhwc_only("SpaceToDepth")})
def space_to_depth(node):
  b = _block_size(node)

  def run(x):
    n, h, w, c = _check_rank4(x)
    if h % b or w % b:
      raise ValueError(f"input (input 0, shape {[n, h, w, c]}): height and width must be "
                       f"divisible by block_size {b}")
    m = xnp(x)
    y = m.reshape(x, (n, h // b, b, w // b, b, c))
    y = m.transpose(y, (0, 1, 3, 2, 4, 5))
    return m.reshape(y, (n, h // b, w // b, b * b * c))
  return run


# Patches ------------------------------------------------------------------------------


def _patch_attr(node, attr: str, rank: int, default=None) -> list[int]:
  values = list(node.attrs.get(attr, default if default is not None else ()))
  if len(values) != rank:
    refuse(node, attr, f"needs {rank} values, one per dimension of the input")
  if values[0] != 1 or values[-1] != 1:
    refuse(node, attr, "TF supports only 1 for the batch and depth dimensions")
  if any(v < 1 for v in values):
    refuse(node, attr, "values must be positive")
  return values[1:-1]


def _patches(x, ksizes, strides, rates, padding: str, eigen_same: bool = False):
  """eigen_same: the leading SAME padding is Eigen's, negative (the windows start inside
  the input) when a stride exceeds the window by 2 or more (see `window_pads`)."""
  xs = _shape(x)
  pads, outs = window_pads(padding, xs[1:-1], ksizes, strides, rates, eigen_same=eigen_same)
  m = xnp(x)
  depth = xs[-1]
  out_shape = (xs[0], *outs, math.prod(ksizes) * depth)
  if math.prod(out_shape) == 0:
    return m.zeros(out_shape, x.dtype)
  xp = m.pad(x, [(0, 0)] + [(max(lo, 0), max(hi, 0)) for lo, hi in pads] + [(0, 0)])
  parts = []
  for offset in np.ndindex(*ksizes):
    index = [slice(None)]
    for o, r, s, n, (lo, _) in zip(offset, rates, strides, outs, pads):
      start = o * r - min(lo, 0)
      index.append(slice(start, start + (n - 1) * s + 1, s))
    index.append(slice(None))
    parts.append(xp[tuple(index)])
  y = m.stack(parts, axis=-2)
  return m.reshape(y, out_shape)


@lowering("ExtractImagePatches", attrs={"T": _PATCH_T, "ksizes": None, "strides": None,
                                        "rates": None, "padding": ("SAME", "VALID")})
def extract_image_patches(node):
  ksizes = _patch_attr(node, "ksizes", 4)
  strides = _patch_attr(node, "strides", 4)
  rates = _patch_attr(node, "rates", 4)
  padding = node.attrs["padding"]

  def run(images):
    xs = _shape(images)
    if len(xs) != 4:
      raise ValueError(f"images (input 0) must be 4-D, got shape {list(xs)}")
    return _patches(images, ksizes, strides, rates, padding)
  return run


@lowering("ExtractVolumePatches", attrs={"T": _SPACE_T, "ksizes": None, "strides": None,
                                         "padding": ("SAME", "VALID")})
def extract_volume_patches(node):
  ksizes = _patch_attr(node, "ksizes", 5)
  strides = _patch_attr(node, "strides", 5)
  padding = node.attrs["padding"]

  def run(x):
    xs = _shape(x)
    if len(xs) != 5:
      raise ValueError(f"input (input 0) must be 5-D, got shape {list(xs)}")
    return _patches(x, ksizes, strides, [1, 1, 1], padding, eigen_same=True)
  return run


# Data formats -------------------------------------------------------------------------


def _formats(node) -> tuple[str, str]:
  src = node.attrs.get("src_format", "NHWC")
  dst = node.attrs.get("dst_format", "NCHW")
  src = src.decode() if isinstance(src, bytes) else src
  dst = dst.decode() if isinstance(dst, bytes) else dst
  if len(src) not in (4, 5):
    refuse(node, "src_format", "must have 4 or 5 characters", src)
  if len(dst) != len(src) or sorted(dst) != sorted(src) or len(set(src)) != len(src):
    refuse(node, "dst_format", f"must be a permutation of src_format {src!r}", dst)
  return src, dst


@lowering("DataFormatDimMap", attrs={"T": _IDX, "src_format": None, "dst_format": None})
def data_format_dim_map(node):
  src, dst = _formats(node)
  n = len(src)
  table = [dst.index(c) for c in src]

  def run(x):
    m = xnp(x)
    dtype = x.dtype
    nn = np.asarray(n, dtype)
    if m is np:
      with np.errstate(all="ignore"):  # x + n wraps around like TF's int arithmetic
        mod = np.fmod(np.asarray(x + nn, dtype), nn)
    else:
      shifted = x + nn
      mod = lax.rem(shifted, lax.full_like(shifted, n))
    out = m.full(np.shape(x), table[-1], dtype)
    for i in range(n - 2, -1, -1):
      out = m.where(mod == np.asarray(i, dtype), np.asarray(table[i], dtype), out)
    return out
  return run


@lowering("DataFormatVecPermute", attrs={"T": _IDX, "src_format": None, "dst_format": None})
def data_format_vec_permute(node):
  src, dst = _formats(node)
  n = len(src)
  spatial_chars = "HW" if n == 4 else "DHW"

  def run(x):
    xs = _shape(x)
    sizes = (n, n - 2)
    ok = (len(xs) == 1 and xs[0] in sizes) or (len(xs) == 2 and xs[0] in sizes
                                               and xs[1] == 2)
    if not ok:
      raise ValueError(f"x (input 0) must be a vector of {n} or {n - 2} elements or a "
                       f"{n}x2 or {n - 2}x2 matrix, got shape {list(xs)}")
    s, d = src, dst
    if xs[0] == n - 2:
      s = "".join(c for c in src if c in spatial_chars)
      d = "".join(c for c in dst if c in spatial_chars)
      if len(s) != n - 2 or len(d) != n - 2:
        raise ValueError(f"formats {src!r} and {dst!r} must contain {spatial_chars} for "
                         f"an input of {n - 2} spatial dimensions")
    perm = [s.index(c) for c in d]
    return xnp(x).take(x, np.asarray(perm), axis=0)
  return run
