"""Helpers shared by the convolution, pooling and normalization lowerings.

Which attribute combinations a lowering accepts follows TensorFlow's CPU kernels, so a
graph TF cannot run on CPU is a conversion error here too, never a guess:

* With oneDNN (TF's default on x86; `TF_ENABLE_ONEDNN_OPTS=0` turns it off) float32 and
  bfloat16 convolutions and poolings run through oneDNN kernels, which also take
  channels-first layouts, dilated 3-D convolutions, and so on. Every other case runs
  TF's Eigen kernels, which only take channels-last layouts. `native(dtype)` says which
  of the two TF would run in this process; lowerings consult it at conversion time.
* Attribute values TF rejects outright (strides on the batch dimension, negative
  paddings, ...) are refused for every dtype.

A refusal is an `UnsupportedOpsError` naming the op, the node and the attribute.
"""

from __future__ import annotations

import functools
import math
from typing import Sequence

import jax
import numpy as np
from jax import lax

from tf2jax_core import BadAttr, UnsupportedOpsError

ONEDNN_DTYPES = ("float32", "bfloat16")
HIGHEST = lax.Precision.HIGHEST


@functools.lru_cache(maxsize=None)
def onednn_enabled() -> bool:
  """Whether TensorFlow runs its oneDNN CPU kernels in this process."""
  try:
    from tensorflow.python.util import _pywrap_util_port
    return bool(_pywrap_util_port.IsMklEnabled())
  except Exception:  # pragma: no cover - TF without the flag
    return False


def native(dtype) -> bool:
  """Whether TF's CPU kernel for `dtype` is the oneDNN one (see the module doc)."""
  return onednn_enabled() and np.dtype(dtype).name in ONEDNN_DTYPES


def refuse(node, attr: str, reason: str, value=None):
  """Raises the conversion error for an attribute (combination) TF's CPU kernel rejects."""
  shown = node.attrs.get(attr) if value is None else value
  raise UnsupportedOpsError(f"{node.op} node {node.path!r}", [],
                            [BadAttr(node.op, node.path, attr, shown, reason)])


def cpu_kernel_reason(node, what: str) -> str:
  dtype = node.attrs.get("T")
  name = np.dtype(dtype).name if dtype is not None else "?"
  if onednn_enabled():
    return (f"TF's CPU kernel for {node.op} supports {what} only for "
            f"T in {list(ONEDNN_DTYPES)} (its oneDNN kernels), not {name}")
  return (f"TF's CPU kernel for {node.op} does not support {what} without oneDNN "
          "(TF_ENABLE_ONEDNN_OPTS=0 in this process)")


# Layouts -------------------------------------------------------------------------------

CHANNELS_LAST = ("NHWC", "NDHWC", "NWC", "CHANNELS_LAST")
CHANNELS_FIRST = ("NCHW", "NCDHW", "NCW", "CHANNELS_FIRST")


def channels_last(data_format: str) -> bool:
  return data_format in CHANNELS_LAST


def spatial_axes(rank: int, last: bool) -> tuple[int, ...]:
  return tuple(range(1, rank - 1)) if last else tuple(range(2, rank))


def channel_axis(rank: int, last: bool) -> int:
  return rank - 1 if last else 1


def conv_dimension_numbers(nd: int, last: bool) -> tuple[str, str, str]:
  spatial = "DHW"[3 - nd:] if nd <= 3 else None
  if spatial is None:
    raise ValueError(f"{nd} spatial dimensions are not supported")
  lhs = ("N" + spatial + "C") if last else ("NC" + spatial)
  return lhs, spatial + "IO", lhs


# Window attributes ---------------------------------------------------------------------


class Window:
  """Spatial strides, dilations and padding of a conv or pooling node, validated."""

  def __init__(self, node, nd: int, last: bool, *, strides_attr: str = "strides",
               dilations_attr: str | None = "dilations", eigen_same: bool = False):
    self.nd, self.last = nd, last
    self.eigen_same = eigen_same
    rank = nd + 2
    self.rank = rank
    sp = spatial_axes(rank, last)
    ch = channel_axis(rank, last)
    self.spatial = sp

    def per_dim(attr, values, allow_empty=False):
      values = list(values)
      if allow_empty and not values:
        return (1,) * nd
      if len(values) != rank:
        refuse(node, attr, f"needs {rank} values (one per dimension of the "
                           f"{node.attrs.get('data_format', 'NHWC')} input)")
      if any(v < 1 for v in values):
        refuse(node, attr, "values must be positive")
      if values[0] != 1 or values[ch] != 1:
        refuse(node, attr, "TF does not support values other than 1 in the batch and "
                           "channel dimensions")
      return tuple(values[i] for i in sp)

    self.strides = per_dim(strides_attr, node.attrs.get(strides_attr, ()))
    self.dilations = (per_dim(dilations_attr, node.attrs.get(dilations_attr, ()), True)
                      if dilations_attr else (1,) * nd)
    self.padding = node.attrs.get("padding", "VALID")
    self.explicit = None
    if self.padding == "EXPLICIT":
      pads = list(node.attrs.get("explicit_paddings", ()))
      if len(pads) != 2 * rank:
        refuse(node, "explicit_paddings", f"needs {2 * rank} values with padding EXPLICIT")
      if any(p < 0 for p in pads):
        refuse(node, "explicit_paddings", "paddings must be non-negative")
      if pads[0] or pads[1] or pads[2 * ch] or pads[2 * ch + 1]:
        refuse(node, "explicit_paddings", "TF does not pad the batch and channel dimensions")
      self.explicit = tuple((pads[2 * i], pads[2 * i + 1]) for i in sp)
    elif node.attrs.get("explicit_paddings"):
      refuse(node, "explicit_paddings", "explicit paddings need padding EXPLICIT")

  def pads(self, in_sizes: Sequence[int], k_sizes: Sequence[int], what: str = "input"
           ) -> tuple[list[tuple[int, int]], list[int]]:
    """(padding per spatial dim, output sizes), as TF's GetWindowedOutputSize computes them."""
    return window_pads(self.padding, in_sizes, k_sizes, self.strides, self.dilations,
                       self.explicit, what, self.eigen_same)


def window_pads(padding: str, in_sizes, k_sizes, strides, dilations=None, explicit=None,
                what: str = "input", eigen_same: bool = False):
  """(lo, hi) padding per spatial dim and output sizes, as TF computes them.

  eigen_same: the kernel passes SAME to Eigen's Spatial/CuboidConvolution or pooling
  (TF's Eigen Conv3D, MaxPool3D, AvgPool3D, the N-d Conv op with 3 spatial dims and the
  fused pad convolutions). Eigen computes the leading padding as
  ((out - 1) * stride + window - size) / 2 in C++ integer division, which is negative
  when the stride exceeds the window by 2 or more: the windows then start inside the
  input (a negative padding) instead of at its first element.
  """
  pads, outs = [], []
  dilations = dilations or (1,) * len(in_sizes)
  for i, (n, k, s, d) in enumerate(zip(in_sizes, k_sizes, strides, dilations)):
    k_eff = (k - 1) * d + 1
    if padding == "SAME":
      out = -(-n // s)
      raw = (out - 1) * s + k_eff - n
      if eigen_same and raw < 0:
        lo = -((-raw) // 2)  # C++ division truncates towards zero
        hi = raw - lo
      else:
        total = max(raw, 0)
        lo, hi = total // 2, total - total // 2
    else:
      lo, hi = explicit[i] if padding == "EXPLICIT" else (0, 0)
      num = n + lo + hi - k_eff + s
      out = num // s if num >= 0 else -((-num) // s)  # C++ division truncates
      if out < 0:
        raise ValueError(
            f"Computed output size would be negative: {out} [{what} size {n}, padding "
            f"{lo}+{hi}, effective window size {k_eff}, stride {s}]")
    pads.append((lo, hi))
    outs.append(out)
  return pads, outs


def full_pads(window: Window, spatial_pads) -> list[tuple[int, int]]:
  pads = [(0, 0)] * window.rank
  for ax, p in zip(window.spatial, spatial_pads):
    pads[ax] = p
  return pads


def out_shape(x_shape, window: Window, outs, channels: int | None = None) -> tuple:
  shape = list(x_shape)
  for ax, o in zip(window.spatial, outs):
    shape[ax] = o
  if channels is not None:
    shape[channel_axis(window.rank, window.last)] = channels
  return tuple(shape)


def shape_of(x) -> tuple[int, ...]:
  return tuple(int(d) for d in np.shape(x))


def compute_dtype(dtype):
  """The dtype convolutions accumulate in: float32 for float16/bfloat16."""
  dtype = np.dtype(dtype)
  if dtype.name in ("float16", "bfloat16"):
    return np.dtype("float32")
  return dtype


def zeros(shape, dtype):
  return jax.numpy.zeros(shape, dtype)


def is_empty(shape) -> bool:
  return math.prod(shape) == 0
