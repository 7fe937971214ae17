"""Max / Min / Prod / All / Any reductions and ArgMax / ArgMin, with TF's edge cases:
NaN propagates through Max/Min, ArgMax/ArgMin skip NaN, empty reductions give the
identity (-inf / +inf / lowest / highest / 1 / True / False)."""

from __future__ import annotations

import numpy as np

from tf2jax_core.lowering import NUMBER, REAL, lowering, xnp

LOWERINGS = []
_INDEX = ("int32", "int64")


def normalize_axes(axes, rank: int) -> tuple[int, ...]:
  """TF's reduction axes: in [-rank, rank), no duplicates."""
  axes = [int(a) for a in np.reshape(axes, -1)]
  if any(not -rank <= a < rank for a in axes):
    raise ValueError(f"reduction axes {axes} out of range for rank {rank}")
  axes = tuple(a % rank for a in axes)
  if len(set(axes)) != len(axes):
    raise ValueError(f"reduction axes contain a duplicate dimension: {axes}")
  return axes


def _identity(name: str, dtype: np.dtype):
  if name == "max":
    return -np.inf if dtype.kind == "f" else np.iinfo(dtype).min
  return np.inf if dtype.kind == "f" else np.iinfo(dtype).max


def _reduction(op: str, name: str, types) -> None:
  @lowering(op, attrs={"T": types, "Tidx": _INDEX, "keep_dims": None}, static_inputs=(1,))
  def build(node):
    keep = node.attrs.get("keep_dims", False)

    def run(x, axes):
      axes = normalize_axes(axes, np.ndim(x))
      m = xnp(x)
      if name in ("max", "min"):
        dtype = np.dtype(x.dtype)
        initial = np.asarray(_identity(name, dtype), dtype) if dtype.kind in "fiu" else None
        return getattr(m, name)(x, axis=axes, keepdims=keep, initial=initial)
      if name == "prod":
        return m.prod(x, axis=axes, keepdims=keep, dtype=x.dtype)
      return getattr(m, name)(x, axis=axes, keepdims=keep)
    return run
  LOWERINGS.append(build)


_reduction("Max", "max", REAL)
_reduction("Min", "min", REAL)
_reduction("Prod", "prod", NUMBER)
_reduction("All", "all", ("bool",))
_reduction("Any", "any", ("bool",))


def _arg(op: str, name: str) -> None:
  @lowering(op, attrs={"T": REAL + ("bool",), "Tidx": _INDEX, "output_type": _INDEX},
            static_inputs=(1,))
  def build(node):
    out = np.dtype(node.attrs.get("output_type", "int64"))

    def run(x, axis):
      if np.ndim(axis) != 0:
        raise ValueError(f"the axis must be a scalar, got shape {np.shape(axis)}")
      axis = normalize_axes(axis, np.ndim(x))[0]
      if np.shape(x)[axis] == 0:
        raise ValueError(f"{op} over an empty dimension {axis} of shape {np.shape(x)}")
      m = xnp(x)
      if np.dtype(x.dtype).kind == "f":  # TF never selects NaN
        fill = -np.inf if name == "argmax" else np.inf
        x = m.where(m.isnan(x), np.asarray(fill, x.dtype), x)
      return getattr(m, name)(x, axis=axis).astype(out)
    return run
  LOWERINGS.append(build)


_arg("ArgMax", "argmax")
_arg("ArgMin", "argmin")
