"""Max / Min / Prod / All / Any reductions and ArgMax / ArgMin, with TF's CPU edge cases:
NaN propagates through Max/Min, empty reductions give the identity (-inf / +inf /
lowest / highest / 1 / True / False).

ArgMax/ArgMin follow Eigen's tuple reducers (TF's CPU kernels): the running best starts
at (index 0, lowest) (ArgMin: highest) and is replaced only by a strictly greater
(smaller) value, so NaN is never selected, a row with nothing above `lowest` gives index
0 (e.g. [-inf, lowest] -> 0) and ties give the first index.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
from jax import lax
import ml_dtypes
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


def _is_float(dtype) -> bool:
  """float16/32/64 and the ml_dtypes floats (bfloat16's NumPy kind is "V", not "f")."""
  return bool(jnp.issubdtype(np.dtype(dtype), jnp.floating))


def _finfo(dtype):
  return ml_dtypes.finfo(np.dtype(dtype))


def _identity(name: str, dtype):
  """The identity of max/min: -inf/+inf for floats (TF's CPU kernels), int min/max."""
  dtype = np.dtype(dtype)
  if _is_float(dtype):
    return np.asarray(-np.inf if name == "max" else np.inf, dtype)
  info = np.iinfo(dtype)
  return np.asarray(info.min if name == "max" else info.max, dtype)


@functools.partial(jax.custom_jvp, nondiff_argnums=(1, 2))
def _extreme(x, axes: tuple[int, ...], is_max: bool):
  """Max/Min of floats: XLA's reduction (it starts from -inf / +inf, so an empty one gives
  TF's identity), with TF's gradient (_MinOrMaxGrad): indicators / count * dy, split
  among the elements equal to the result, NaN over a slice whose result is NaN (count 0).

  Not jnp.max: it skips an empty list of axes (gradient dy where TF's is NaN at NaN), its
  `initial` splits ties with the identity (an all -inf slice would get half of TF's
  gradient), and XLA rewrites its gradient's dy * indicator / count into a select,
  which drops the NaN of 0 / 0.
  """
  return (lax.reduce_max if is_max else lax.reduce_min)(x, axes)


@_extreme.defjvp
def _extreme_jvp(axes, is_max, primals, tangents):
  (x,), (t,) = primals, tangents
  y = _extreme(x, axes, is_max)
  indicators = (x == lax.expand_dims(y, axes)).astype(x.dtype)
  count = lax.expand_dims(lax.reduce_sum(indicators, axes), axes)
  # 0 / 0 spelled out: XLA rewrites indicators / count into a select that yields 0 there.
  weights = jnp.where(count > 0, indicators / count, np.asarray(np.nan, x.dtype))
  return y, lax.reduce_sum(weights * t, axes)


def _reduction(op: str, name: str, types) -> None:
  @lowering(op, attrs={"T": types, "Tidx": _INDEX, "keep_dims": None}, static_inputs=(1,))
  def build(node):
    keep = node.attrs.get("keep_dims", False)

    def run(x, axes):
      axes = normalize_axes(axes, np.ndim(x))
      m = xnp(x)
      if name in ("max", "min"):
        if m is np:
          empty = any(np.shape(x)[a] == 0 for a in axes)
          initial = _identity(name, x.dtype) if empty else None
          return getattr(np, name)(x, axis=axes, keepdims=keep, initial=initial)
        y = _extreme(x, axes, name == "max") if _is_float(x.dtype) else \
            (lax.reduce_max if name == "max" else lax.reduce_min)(x, axes)
        return lax.expand_dims(y, axes) if keep else y
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
  # TF's CPU kernels also take int16/uint16 outputs. Its int16 dimension (Tidx) is not
  # lowered: TF's kernel and shape function read it as a wider integer (garbage).
  @lowering(op, attrs={"T": REAL + ("bool",), "Tidx": _INDEX,
                       "output_type": ("int16", "uint16") + _INDEX},
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
      if _is_float(x.dtype):
        # Eigen starts from (0, lowest) and keeps it unless a value is strictly greater:
        # NaN and values below lowest (-inf) count as lowest (ArgMin: highest, +inf).
        info = _finfo(x.dtype)
        if name == "argmax":
          bound = np.asarray(info.min, x.dtype)
          x = m.where(m.isnan(x) | (x < bound), bound, x)
        else:
          bound = np.asarray(info.max, x.dtype)
          x = m.where(m.isnan(x) | (x > bound), bound, x)
      return getattr(m, name)(x, axis=axis).astype(out)
    return run
  LOWERINGS.append(build)


_arg("ArgMax", "argmax")
_arg("ArgMin", "argmin")


@lowering("HistogramFixedWidth", attrs={"T": ("int32", "int64", "float32", "float64"),
                                       "dtype": _INDEX}, static_inputs=(2,))
def _histogram_fixed_width(node):
  """TF's kernel: bin = min(int((max(x, lo) - lo) / ((hi - lo) / nbins)), nbins - 1), the
  differences taken in T and the division in float64 (float32 without x64, which may
  put a value within an ulp of a bin edge in the other bin). NaN values are undefined
  in TF (its int cast of NaN)."""
  from tf2jax_core.ops.array_ops import _known
  from tf2jax_core.ops.math_ops import _flush
  out = np.dtype(node.attrs.get("dtype", "int32"))

  def run(values, value_range, nbins):
    if np.shape(value_range) != (2,):
      raise ValueError(f"value_range must have 2 elements, got shape "
                       f"{list(np.shape(value_range))}")
    if np.ndim(nbins) != 0 or int(nbins) <= 0:
      raise ValueError(f"nbins must be a positive scalar, got {np.asarray(nbins).tolist()}")
    n = int(nbins)
    m = xnp(values, value_range)
    # TF's CPU threads flush subnormal inputs and results to zero (XLA's too); NumPy's
    # static path does it by hand: a subnormal step puts every value in the last bin.
    is_float = np.dtype(value_range.dtype).kind == "f"
    known = _known(value_range)
    if known is not None:
      known = _flush(np.asarray(known)) if is_float else np.asarray(known)
      if not known[0] < known[1]:
        raise ValueError(f"value_range must satisfy value_range[0] < value_range[1], got "
                         f"{known.tolist()}")
    flush = _flush if m is np and is_float else (lambda v: v)
    wide = np.float64 if m is np or jax.config.jax_enable_x64 else np.float32
    lo, hi = flush(value_range[0]), flush(value_range[1])
    with np.errstate(all="ignore"):
      step = flush(flush(hi - lo).astype(wide) / wide(n))
      diff = flush(flush(m.maximum(flush(values), lo) - lo).astype(wide))
      bins = m.minimum(diff / step, wide(n - 1)).astype(np.int32).reshape(-1)
    if m is np:
      return np.bincount(bins, minlength=n).astype(out)
    return jnp.bincount(bins, length=n).astype(out)
  return run
