"""Shared hypothesis strategies: shapes, values with edge cases, axes, indices, matrices.

Values are NumPy arrays of the exact dtype (bfloat16, float8 and int4 through
ml_dtypes). Element strategies mix moderate values, the dtype's full range and edge
values (0, -0.0, +-1, +-inf, NaN, the largest finite values, the smallest normal and
subnormal values, int min/max), so a few examples already meet the corner cases.
JAX has no string dtype, so there are no string strategies.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from tf2jax_conformance import dtypes as D

# Shapes ---------------------------------------------------------------------------


def shapes(min_dims: int = 0, max_dims: int = 4, min_side: int = 0, max_side: int = 5,
           max_size: int = 64) -> st.SearchStrategy[tuple[int, ...]]:
  """Array shapes: scalars (rank 0), 0-sized dims and small sides, at most `max_size`."""
  return (st.lists(st.integers(min_side, max_side), min_size=min_dims, max_size=max_dims)
          .map(tuple).filter(lambda s: math.prod(s) <= max_size))


def broadcastable_shapes(num_shapes: int = 2, min_dims: int = 0, max_dims: int = 4,
                         min_side: int = 0, max_side: int = 4
                         ) -> st.SearchStrategy[tuple[tuple[int, ...], ...]]:
  """`num_shapes` shapes that broadcast together (NumPy/TF rules), ranks may differ."""
  return hnp.mutually_broadcastable_shapes(
      num_shapes=num_shapes, min_dims=min_dims, max_dims=max_dims, min_side=min_side,
      max_side=max_side).map(lambda b: tuple(b.input_shapes))


# Values ---------------------------------------------------------------------------


def edge_values(dtype: str, *, allow_nan: bool = True, allow_inf: bool = True,
                allow_subnormal: bool = True, min_value=None, max_value=None) -> list:
  """The edge values of a dtype, as NumPy scalars of that dtype."""
  npd = D.np_dtype(dtype)
  if dtype == "bool":
    return [np.bool_(False), np.bool_(True)]
  if dtype in D.INT or dtype in D.NARROW_INT:
    info = D.iinfo(dtype)
    cands = [0, 1, int(info.max), int(info.min)] + ([-1] if int(info.min) < 0 else [])
    out = [c for c in cands if (min_value is None or c >= min_value)
           and (max_value is None or c <= max_value)]
    return [npd.type(c) for c in dict.fromkeys(out)]
  if dtype in D.COMPLEX:
    part = "float32" if dtype == "complex64" else "float64"
    reals = edge_values(part, allow_nan=allow_nan, allow_inf=allow_inf,
                        allow_subnormal=allow_subnormal)
    out = [complex(r, 0.0) for r in reals[:6]] + [complex(0.0, r) for r in reals[:6]]
    if allow_inf:
      out.append(complex(np.inf, -np.inf))
    if allow_nan:
      out.append(complex(np.nan, 1.0))
    return [npd.type(c) for c in out]
  info = D.finfo(dtype)
  cands = [0.0, -0.0, 1.0, -1.0, float(info.max), -float(info.max), float(info.tiny),
           -float(info.tiny), float(info.eps)]
  if allow_subnormal and float(info.smallest_subnormal) < float(info.tiny):
    cands += [float(info.smallest_subnormal), -float(info.smallest_subnormal)]
  if allow_inf:
    cands += [math.inf, -math.inf]
  if allow_nan:
    cands.append(math.nan)
  out = []
  for c in cands:
    if (min_value is not None and not c >= min_value) or (
        max_value is not None and not c <= max_value):
      if not (math.isnan(c) and allow_nan):
        continue
    v = np.asarray(c).astype(npd)
    f = float(v)
    if math.isinf(c) and not math.isinf(f):
      continue  # the dtype has no infinities
    if not math.isnan(c) and math.isnan(f):
      continue
    if c == 0 and math.copysign(1.0, c) < 0 and math.copysign(1.0, f) > 0:
      continue  # the dtype has no negative zero
    out.append(npd.type(v))
  return out


def _float_values(dtype: str, min_value, max_value, allow_nan, allow_inf, allow_subnormal,
                  edges: bool):
  npd = D.np_dtype(dtype)
  info = D.finfo(dtype)
  big = float(info.max)
  lo = -big if min_value is None else max(float(min_value), -big)
  hi = big if max_value is None else min(float(max_value), big)

  def cast(x: float):
    v = np.asarray(x).astype(npd)
    f = float(v)
    if f < lo or f > hi:  # rounding stepped outside the bounds
      v = np.asarray(min(max(f, lo), hi)).astype(npd)
    if not allow_subnormal and f != 0 and abs(f) < float(info.tiny):
      v = np.asarray(0.0).astype(npd)
    return npd.type(v)

  mod_lo, mod_hi = max(lo, -10.0), min(hi, 10.0)
  parts = []
  if mod_lo <= mod_hi:
    parts.append(st.floats(mod_lo, mod_hi, allow_nan=False, allow_infinity=False).map(cast))
  parts.append(st.floats(lo, hi, allow_nan=False, allow_infinity=False).map(cast))
  if edges:
    ev = edge_values(dtype, allow_nan=allow_nan, allow_inf=allow_inf,
                     allow_subnormal=allow_subnormal, min_value=min_value,
                     max_value=max_value)
    if ev:
      parts.append(st.sampled_from(ev))
  return st.one_of(*parts)


def elements(dtype: str, *, min_value=None, max_value=None, allow_nan: bool = True,
             allow_inf: bool = True, allow_subnormal: bool = True, edges: bool = True
             ) -> st.SearchStrategy:
  """Scalars of `dtype` (NumPy scalar types), edge values included unless `edges=False`.

  `min_value`/`max_value` bound finite values (NaN stays allowed unless `allow_nan` is
  False; infinities outside the bounds are dropped).
  """
  npd = D.np_dtype(dtype)
  if dtype == "bool":
    return st.booleans().map(np.bool_)
  if dtype in D.INT or dtype in D.NARROW_INT:
    info = D.iinfo(dtype)
    lo = int(info.min) if min_value is None else max(int(math.ceil(min_value)), int(info.min))
    hi = int(info.max) if max_value is None else min(int(math.floor(max_value)), int(info.max))
    parts = [st.integers(max(lo, -10), min(hi, 10))] if max(lo, -10) <= min(hi, 10) else []
    parts.append(st.integers(lo, hi))
    if edges:
      ev = edge_values(dtype, min_value=lo, max_value=hi)
      if ev:
        parts.append(st.sampled_from([int(v) for v in ev]))
    return st.one_of(*parts).map(npd.type)
  if dtype in D.COMPLEX:
    part = "float32" if dtype == "complex64" else "float64"
    comp = _float_values(part, min_value, max_value, allow_nan, allow_inf, allow_subnormal,
                         edges)
    return st.tuples(comp, comp).map(lambda ri: npd.type(complex(float(ri[0]), float(ri[1]))))
  return _float_values(dtype, min_value, max_value, allow_nan, allow_inf, allow_subnormal,
                       edges)


def arrays(dtype: str, shape, **element_kwargs) -> st.SearchStrategy[np.ndarray]:
  """Arrays of `dtype` and `shape` (a tuple or a strategy of tuples).

  `element_kwargs` go to `elements` (bounds, allow_nan, allow_inf, ...).
  """
  npd = D.np_dtype(dtype)
  shape_st = shape if isinstance(shape, st.SearchStrategy) else st.just(tuple(shape))
  elem = elements(dtype, **element_kwargs)

  def build(shp):
    size = math.prod(shp)
    return st.lists(elem, min_size=size, max_size=size).map(
        lambda xs: np.array(xs, dtype=npd).reshape(shp) if xs
        else np.zeros(shp, dtype=npd))
  return shape_st.flatmap(build)


def finite_arrays(dtype: str, shape, *, bound: float = 10.0) -> st.SearchStrategy[np.ndarray]:
  """Moderate finite values in [-bound, bound] (cotangents, well-behaved inputs)."""
  return arrays(dtype, shape, min_value=-bound, max_value=bound, allow_nan=False,
                allow_inf=False, allow_subnormal=False)


COTANGENT_MAX = 10.0  # the largest magnitude `cotangents` draws


def cotangents(dtype: str, shape, *, nonzero: bool = False) -> st.SearchStrategy[np.ndarray]:
  """Cotangents for gradient checks: 0 (unless `nonzero`) or magnitudes in [1e-3, 10],
  so that gradient formulas meet no subnormal intermediate (which TF flushes to zero)."""
  npd = D.np_dtype(dtype)
  parts = [st.floats(1e-3, COTANGENT_MAX), st.floats(-COTANGENT_MAX, -1e-3)]
  if not nonzero:
    parts.insert(0, st.just(0.0))
  elem = st.one_of(*parts)
  shape_st = shape if isinstance(shape, st.SearchStrategy) else st.just(tuple(shape))

  def build(shp):
    size = math.prod(shp)
    return st.lists(elem, min_size=size, max_size=size).map(
        lambda xs: np.array(xs, dtype=np.float64).astype(npd).reshape(shp))
  return shape_st.flatmap(build)


# Axes, indices, matrices -------------------------------------------------------------


def axes(rank: int, *, min_size: int = 0, negative: bool = True
         ) -> st.SearchStrategy[list[int]]:
  """Distinct axes of an array of `rank` (each may be written as a negative index)."""
  if rank == 0:
    return st.just([])

  def spell(ax):
    if not negative:
      return st.just(ax)
    return st.lists(st.booleans(), min_size=len(ax), max_size=len(ax)).map(
        lambda neg: [a - rank if n else a for a, n in zip(ax, neg)])
  return (st.lists(st.integers(0, rank - 1), min_size=min(min_size, rank), max_size=rank,
                   unique=True).flatmap(spell))


def index_dtypes() -> st.SearchStrategy[str]:
  """The dtypes TF takes for indices, axes and shapes."""
  return st.sampled_from(["int32", "int64"])


def valid_indices(dim: int, shape, dtype: str = "int32", *, negative: bool = False
                  ) -> st.SearchStrategy[np.ndarray]:
  """Index arrays whose values are valid positions along a dimension of size `dim`."""
  lo = -dim if negative else 0
  if dim == 0:
    shape_st = shape if isinstance(shape, st.SearchStrategy) else st.just(tuple(shape))
    return shape_st.filter(lambda s: math.prod(s) == 0).map(
        lambda s: np.zeros(s, D.np_dtype(dtype)))
  return arrays(dtype, shape, min_value=lo, max_value=dim - 1, edges=False)


def well_conditioned_matrices(dtype: str, n: int, batch: Sequence[int] = ()
                              ) -> st.SearchStrategy[np.ndarray]:
  """Square matrices with a strictly dominant diagonal (condition number below ~3)."""
  def fix(a):
    a = a.astype(np.float64) if D.np_dtype(dtype).kind != "c" else a.astype(np.complex128)
    off = np.sum(np.abs(a), axis=-1, keepdims=True)
    eye = np.eye(n, dtype=bool)
    a = np.where(eye, 2 * off + 1, a)
    return a.astype(D.np_dtype(dtype))
  return finite_arrays(dtype, tuple(batch) + (n, n), bound=1.0).map(fix)
