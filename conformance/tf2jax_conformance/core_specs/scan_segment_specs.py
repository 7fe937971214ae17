"""Specs of the core's scans (Cumsum, Cumprod, CumulativeLogsumexp), EuclideanNorm,
AccumulateNV2, segment reductions (sorted, unsorted, sparse, XLA's *V2) and counting ops
(Bincount, DenseBincount, Bucketize).

Sums and scans are compared within a bound that grows with the number of terms (TF adds
sequentially in the input's dtype, XLA in its own order). Finite float values are kept
small enough that no partial sum or product overflows in any order (where one does
depends on the order, the implementation's); infinities and NaN are drawn as such.
Segment ids are drawn valid most of the time and invalid now and then (unsorted,
negative, out of range, wrong shapes): TF rejects those and so must the conversion or
the call.
"""

from __future__ import annotations

import math

import numpy as np
from hypothesis import strategies as st

from tf2jax_conformance import dtypes as D
from tf2jax_conformance import strategies as cst
from tf2jax_conformance.core_specs.reduction_logic_specs import (prod_values, reduction_axes,
                                                                  tie_arrays)
from tf2jax_conformance.spec import Example, OpSpec, Tolerance, default_tolerance

SPECS: list[OpSpec] = []

NO_GRAD = ("jit", "static", "x64", "vmap")
_PART = {"complex64": "float32", "complex128": "float64"}


def _array_of(elements, dtype: str, shape) -> st.SearchStrategy[np.ndarray]:
  n = math.prod(shape)
  npd = D.np_dtype(dtype)
  return st.lists(elements, min_size=n, max_size=n).map(
      lambda xs: np.array(xs, npd).reshape(shape) if xs else np.zeros(shape, npd))


def _eps(dtype: str) -> float:
  return float(D.finfo(_PART.get(dtype, dtype)).eps)


def _max(dtype: str) -> float:
  return float(D.finfo(_PART.get(dtype, dtype)).max)


def bounded_values(dtype: str, shape, n: int, *, nonfinite: bool = True,
                   nan: bool = True) -> st.SearchStrategy[np.ndarray]:
  """Values whose sums of up to `n` terms cannot overflow: finite ones in
  [-max / 2n, max / 2n] (edge values within that range included), +-inf and NaN."""
  if dtype in D.INT:
    return cst.arrays(dtype, shape)
  bound = _max(dtype) / (2 * max(n, 1))
  if dtype in D.COMPLEX:
    part = _PART[dtype]
    p = cst.elements(part, min_value=-bound, max_value=bound, allow_nan=False,
                     allow_inf=False)
    elem = st.tuples(p, p).map(lambda t: complex(float(t[0]), float(t[1])))
    return _array_of(elem, dtype, shape)
  npd = D.np_dtype(dtype)
  finite = cst.elements(dtype, min_value=-bound, max_value=bound, allow_nan=False,
                        allow_inf=False)
  special = [math.inf, -math.inf] if nonfinite else []
  special += [math.nan] if (nan and nonfinite) else []
  if special:
    finite = st.one_of(finite, finite, st.sampled_from(special).map(npd.type))
  return _array_of(finite, dtype, shape)


def _finite_scale(x) -> float:
  mag = np.abs(np.asarray(x).astype(np.complex128 if np.iscomplexobj(x) else np.float64))
  mag = mag[np.isfinite(mag)]
  return float(np.max(mag)) if mag.size else 0.0


def sum_tolerance(dtype: str, terms: int, scale: float, grad_scale: float = 1.0
                  ) -> Tolerance:
  """Sums of `terms` terms of magnitude up to `scale` added in different orders: each
  side rounds every partial sum (half an ulp of at most terms * scale)."""
  base = default_tolerance(dtype)
  if dtype in D.INT or dtype == "bool":
    return base
  eps = _eps(dtype)
  return Tolerance(base.rtol, base.atol + 2 * terms * terms * eps * scale * grad_scale)


def _rarely(draw, n: int = 12) -> bool:
  """True 1 time in n, and never for hypothesis' simplest draw (its first examples stay
  valid inputs: a case must compare something)."""
  return draw(st.integers(0, n - 1)) == n - 1


# Scans ----------------------------------------------------------------------------------


@st.composite
def _scan_axis(draw, rank: int):
  """(axis, whether TF accepts it): a scalar in [-rank, rank), 1 in 12 invalid (out of
  range, or a vector)."""
  idx = D.np_dtype(draw(cst.index_dtypes()))
  if rank == 0 or _rarely(draw):
    kind = draw(st.sampled_from(["range", "vector"])) if rank else "range"
    if kind == "vector":
      return np.asarray([draw(st.integers(0, rank - 1))], idx), False
    return np.asarray(draw(st.sampled_from([rank, -rank - 1])), idx), False
  return np.asarray(draw(st.integers(-rank, rank - 1)), idx), True


def scan_example(values_for):
  def example(dtype):
    @st.composite
    def draw_example(draw):
      shape = draw(cst.shapes(min_dims=draw(st.sampled_from([1, 1, 1, 1, 0])), max_dims=3,
                              max_side=5, max_size=48))
      axis, ok = draw(_scan_axis(len(shape)))
      n = shape[int(axis) % len(shape)] if ok else 1
      x = draw(values_for(dtype, shape, n))
      return Example({"x": x, "axis": axis},
                     {"exclusive": draw(st.booleans()), "reverse": draw(st.booleans())})
    return draw_example()
  return example


def _axis_len(ex: Example) -> int:
  x = np.asarray(ex.inputs["x"])
  if x.ndim == 0 or np.ndim(ex.inputs["axis"]) != 0:
    return 1
  a = int(ex.inputs["axis"])
  return x.shape[a % x.ndim] if -x.ndim <= a < x.ndim else 1


def _cumsum_tolerance(dtype: str, ex: Example, grad: bool = False) -> Tolerance:
  n = _axis_len(ex)
  scale = 10.0 if grad else _finite_scale(ex.inputs["x"])  # cotangents are up to 10
  tol = sum_tolerance(dtype, n, scale)
  return Tolerance(2 * tol.rtol, tol.atol) if grad else tol


SPECS.append(OpSpec(
    "Cumsum", scan_example(bounded_values), static_inputs=("axis",),
    tolerance=_cumsum_tolerance, grad_tolerance=lambda d, ex: _cumsum_tolerance(d, ex, True),
    notes="exclusive and reverse drawn; the axis a scalar (int32 or int64) in "
          "[-rank, rank), now and then out of range or a vector (TF rejects both, and so "
          "does tf2jax). TF adds sequentially in the input's dtype (float16 too), XLA in "
          "its own order: finite values are kept below max / 2n so that no partial sum "
          "overflows, and the tolerance is n ulps of n times the largest term. Integer "
          "sums wrap the same way. Gradient: the reversed cumulative sum (TF's)."))


def _prod_scan_values(dtype, shape, n):
  return prod_values(dtype, shape, n)


def _cumprod_tolerance(dtype: str, ex: Example, grad: bool = False) -> Tolerance:
  base = default_tolerance(dtype)
  if dtype in D.INT:
    return base
  n = _axis_len(ex)
  eps = _eps(dtype)
  x = np.asarray(ex.inputs["x"])
  mag = np.abs(x.astype(np.complex128 if dtype in D.COMPLEX else np.float64))
  finite = mag[np.isfinite(mag)]
  big = float(np.max(finite)) if finite.size else 1.0
  big = max(big, 1.0)
  rtol = base.rtol + 2 * n * eps
  if not grad:
    if dtype in D.COMPLEX:  # relative to |product|, part by part
      return Tolerance(rtol, base.atol + 4 * n * eps * big ** n)
    return Tolerance(rtol, base.atol)
  # TF's gradient: cumsum(prod * dy) / x, the sum of up to n terms of magnitude up to
  # 10 * big ** n, divided by x (at least 1 / big).
  nz = finite[finite > 0]
  small = float(np.min(nz)) if nz.size else 1.0
  return Tolerance(2 * rtol, base.atol * 10 + 4 * n * n * eps * 10 * big ** n / min(small, 1.0))


SPECS.append(OpSpec(
    "Cumprod", scan_example(_prod_scan_values), static_inputs=("axis",),
    tolerance=_cumprod_tolerance, grad_tolerance=lambda d, ex: _cumprod_tolerance(d, ex, True),
    notes="Factors as in Prod's spec: finite floats in [1/b, b] with b ** n <= 2 ** E (no "
          "partial product overflows or underflows, in any order), edge values 0, -0, +-1, "
          "+-inf, NaN; complex factors finite. Integer products wrap. Gradient (floats): "
          "TF's div_no_nan(cumsum(cumprod(x) * dy, reverse=not reverse), x), 0 at zeros, "
          "not the exact derivative JAX's cumprod would give."))


def _lse_values(dtype, shape, n):
  # Moderate finite values (TF's gradient formula exponentiates differences of them, so
  # its rounding grows with their size), +-inf and NaN.
  bound = 8.0 if dtype in ("float16", "bfloat16") else 30.0
  npd = D.np_dtype(dtype)
  finite = cst.elements(dtype, min_value=-bound, max_value=bound, allow_nan=False,
                        allow_inf=False, allow_subnormal=False)
  special = st.sampled_from([math.inf, -math.inf, math.nan]).map(npd.type)
  return _array_of(st.one_of(finite, finite, finite, special), dtype, shape)


def _lse_tolerance(dtype: str, ex: Example, grad: bool = False) -> Tolerance:
  n = _axis_len(ex)
  eps = _eps(dtype)
  base = default_tolerance(dtype)
  bound = 8.0 if dtype in ("float16", "bfloat16") else 30.0
  rtol = base.rtol + 4 * n * eps
  atol = base.atol + 4 * n * eps * bound
  if grad:  # exp(a + x) with a and x carrying errors of atol: relative errors of atol
    return Tolerance(4 * (rtol + atol), base.atol * 10)
  return Tolerance(rtol, atol)


SPECS.append(OpSpec(
    "CumulativeLogsumexp", scan_example(_lse_values), static_inputs=("axis",),
    tolerance=_lse_tolerance, grad_tolerance=lambda d, ex: _lse_tolerance(d, ex, True),
    notes="TF's CPU kernel applies Eigen's scalar LogSumExp(acc, x) step by step from "
          "-inf: min/max as std::min/max (a NaN element leaves both at the accumulator, "
          "which then grows by log 2; a NaN accumulator stays NaN), then "
          "max + log1p(exp(min - max)), or max itself when it is -inf (so inf, inf gives "
          "NaN); tf2jax scans the same steps. Finite values in [-30, 30] ([-8, 8] for "
          "float16/bfloat16): TF's gradient formula exponentiates their differences. "
          "Gradient: TF's (cotangent split into positive and negative parts, each through "
          "a reversed cumulative logsumexp)."))


# EuclideanNorm -------------------------------------------------------------------------------


def _norm_values(dtype: str, shape, n: int):
  if dtype in D.INT:
    # Sums of squares that fit the dtype: TF casts sqrt(double(sum)) back, and a wrapped
    # negative sum is undefined behaviour there.
    info = D.iinfo(dtype)
    b = int(math.isqrt(int(info.max) // max(n, 1)))
    lo = 0 if dtype in D.UNSIGNED_INT else -b
    return cst.arrays(dtype, shape, min_value=lo, max_value=b)
  bound = math.sqrt(_max(dtype) / (2 * max(n, 1)))
  if dtype in D.COMPLEX:
    return bounded_values(dtype, shape, 1).map(
        lambda x: np.clip(x.real, -bound, bound).astype(x.dtype)
        + 1j * np.clip(x.imag, -bound, bound).astype(x.dtype))
  npd = D.np_dtype(dtype)
  finite = cst.elements(dtype, min_value=-bound, max_value=bound, allow_nan=False,
                        allow_inf=False, allow_subnormal=False)
  special = st.sampled_from([math.inf, -math.inf, math.nan, 0.0, -0.0]).map(npd.type)
  return _array_of(st.one_of(finite, finite, special), dtype, shape)


def _norm_example(dtype):
  @st.composite
  def draw_example(draw):
    shape = draw(cst.shapes(max_dims=3, max_side=4, max_size=32))
    axes, ok = draw(reduction_axes(len(shape)))
    n = (math.prod(shape[int(a) % len(shape)] for a in np.reshape(axes, -1))
         if ok and shape else 1)
    return Example({"input": draw(_norm_values(dtype, shape, n)), "axis": axes},
                   {"keep_dims": draw(st.booleans())})
  return draw_example()


def _norm_tolerance(dtype: str, ex: Example, grad: bool = False) -> Tolerance:
  base = default_tolerance(dtype)
  if dtype in D.INT:
    return base
  x = np.asarray(ex.inputs["input"])
  axes = ex.inputs["axis"]
  try:
    n = math.prod(x.shape[int(a) % x.ndim] for a in np.reshape(axes, -1)) if x.ndim else 1
  except Exception:
    n = 1
  eps = _eps(dtype)
  scale = _finite_scale(x)
  tiny = float(D.finfo(_PART.get(dtype, dtype)).tiny)
  # The sum of squares rounded n times in either order (relative n eps), halved by the
  # square root; squares below the smallest normal flush to 0 on one side and not on
  # the other (sqrt(n * tiny)).
  rtol = base.rtol + n * eps
  atol = base.atol + math.sqrt(n * tiny) * 2 + n * eps * scale
  if grad:
    return Tolerance(4 * rtol, 10 * atol)
  return Tolerance(rtol, atol)


SPECS.append(OpSpec(
    "EuclideanNorm", _norm_example, static_inputs=("axis",), tolerance=_norm_tolerance,
    grad_tolerance=lambda d, ex: _norm_tolerance(d, ex, True),
    notes="Axes and keep_dims as for Sum (invalid axes drawn too). TF squares and sums in "
          "the input's dtype (float16 included) and takes the square root; integers: "
          "static_cast<T>(sqrt(double(sum))), truncated; their values are kept so that the "
          "sum of squares fits the dtype (a wrapped negative sum is undefined behaviour in "
          "TF's kernel). Finite floats are kept below sqrt(max / 2n); complex values "
          "finite (TF's complex sqrt of NaN/inf parts differs). Gradient: TF's "
          "x / (norm / dy), division order included."))


# AccumulateNV2 -----------------------------------------------------------------------------------


def _accumulate_example(dtype):
  @st.composite
  def draw_example(draw):
    shape = draw(cst.shapes(max_dims=3, max_side=4, max_size=24))
    k = draw(st.integers(1, 4))
    xs = [draw(bounded_values(dtype, shape, k)) for _ in range(k)]
    return Example({"inputs": xs}, extra={"shape": shape})
  return draw_example()


def _accumulate_build(ex: Example):
  import tensorflow as tf
  shape = list(ex.extra["shape"])

  # TF has no kernel for AccumulateNV2: a graph pass rewrites it when a tf.function runs,
  # so the reference is the op inside a tf.function (traced into a function call).
  @tf.function(autograph=False)
  def inner(*xs):
    return tf.raw_ops.AccumulateNV2(inputs=list(xs), shape=shape)
  return inner


def _accumulate_tolerance(dtype: str, ex: Example) -> Tolerance:
  xs = ex.inputs["inputs"]
  return sum_tolerance(dtype, len(xs), max([_finite_scale(x) for x in xs] + [0.0]))


SPECS.append(OpSpec(
    "AccumulateNV2", _accumulate_example, dtype_attr=None, dtypes=D.NUMBER,
    build=_accumulate_build, tolerance=_accumulate_tolerance,
    grad_tolerance=lambda d, ex: sum_tolerance(d, 1, 10.0),
    notes="TF has no kernel for AccumulateNV2 (a graph pass replaces it by a temporary "
          "variable and AssignAdds when a tf.function runs): the op is built inside a "
          "tf.function, and the dtypes covered are those the rewritten graph runs (every "
          "number type; not bool). 1 to 4 inputs of the same shape."))


# Segment reductions ------------------------------------------------------------------------


def _segment_values(name: str, dtype: str, shape, n: int):
  """Data for a segment reduction whose segments have up to `n` elements."""
  if name == "prod":
    return prod_values(dtype, shape, n)
  if name in ("max", "min"):
    # No NaN: TF's segment max/min keep or drop a NaN depending on its position and on
    # whether the kernel runs vectorized (e.g. max(1, nan) is NaN, max(nan, 1) is 1).
    arrays = tie_arrays(dtype, shape)
    if dtype in D.FLOAT:
      arrays = arrays.map(lambda x: np.where(np.isnan(x.astype(np.float64)),
                                             np.asarray(0, x.dtype), x).astype(x.dtype))
    return arrays
  return bounded_values(dtype, shape, n)


def _rest_shape():
  return cst.shapes(max_dims=2, max_side=3, max_size=6)


def _sorted_ids(n: int, idx: str):
  return st.lists(st.integers(0, 4), min_size=n, max_size=n).map(
      lambda v: np.asarray(sorted(v), D.np_dtype(idx)))


@st.composite
def _invalid_sorted_ids(draw, n: int, idx: str):
  """Ids TF's sorted segment ops reject: unsorted, negative, or of the wrong length."""
  npd = D.np_dtype(idx)
  kinds = ["length", "matrix"] + (["unsorted", "negative"] if n >= 2 else [])
  kind = draw(st.sampled_from(kinds))
  if kind == "unsorted":
    return np.asarray([1] * (n - 1) + [0], npd)
  if kind == "negative":
    return np.asarray([-1] + [0] * (n - 1), npd)
  if kind == "matrix":
    return np.zeros((n, 1), npd)
  return np.zeros(n + 1, npd)


def _segment_example(name: str):
  def example(dtype):
    @st.composite
    def draw_example(draw):
      idx = draw(cst.index_dtypes())
      n = draw(st.integers(0, 6))
      rest = draw(_rest_shape())
      if _rarely(draw):
        ids = draw(_invalid_sorted_ids(n, idx))
      else:
        ids = draw(_sorted_ids(n, idx))
      longest = max(np.unique(ids, return_counts=True)[1].tolist() + [1]) \
          if ids.ndim == 1 else n
      data = draw(_segment_values(name, dtype, (n,) + rest, longest))
      return Example({"data": data, "segment_ids": ids})
    return draw_example()
  return example


def _longest(ex: Example) -> int:
  """The number of elements of the longest segment (all of them for odd ids)."""
  ids = np.asarray(ex.inputs["segment_ids"]).reshape(-1)
  if not ids.size:
    return 1
  return int(np.max(np.unique(ids, return_counts=True)[1]))


def _segment_tolerance(name: str):
  def tolerance(dtype: str, ex: Example, grad: bool = False) -> Tolerance:
    base = default_tolerance(dtype)
    if dtype in D.INT:
      return base
    data = np.asarray(ex.inputs["data"])
    n = _longest(ex)
    eps = _eps(dtype)
    if name == "prod":
      if grad:
        return Tolerance(4 * (base.rtol + n * eps), base.atol * 10)
      if dtype in D.COMPLEX:  # relative to |product|, part by part
        big = max(_finite_scale(data), 1.0)
        return Tolerance(base.rtol + 2 * n * eps, base.atol + 4 * n * eps * big ** n)
      return Tolerance(base.rtol + 2 * n * eps, base.atol)
    if name in ("max", "min"):
      return Tolerance(2 * base.rtol, base.atol) if grad else base
    scale = 10.0 if grad else _finite_scale(data)
    tol = sum_tolerance(dtype, n, scale)
    return Tolerance(2 * tol.rtol, tol.atol) if grad else tol
  return tolerance


_SORTED_NOTES = {
    "sum": "",
    "mean": " Integer means truncate toward zero (C++ division); float16 sums and means "
            "are accumulated in float16, as TF does.",
    "max": " Empty segments give 0 (not the lowest value). No NaN in the data: TF's "
           "result for a NaN depends on its position and on the kernel's vectorized path "
           "(max(1, nan) is NaN, max(nan, 1) is 1). Gradient: TF's, split evenly among "
           "the elements equal to the segment's result.",
    "prod": " Factors as in Prod's spec (no partial product overflows in any order); "
            "gradient: TF's three cases (no zero: product / x; one zero: the product of "
            "the others; several zeros: 0).",
}
_SORTED_NOTES["min"] = _SORTED_NOTES["max"]

for _op, _name in [("SegmentSum", "sum"), ("SegmentMean", "mean"), ("SegmentMax", "max"),
                   ("SegmentMin", "min"), ("SegmentProd", "prod")]:
  _tol = _segment_tolerance(_name)
  SPECS.append(OpSpec(
      _op, _segment_example(_name), static_inputs=("segment_ids",), tolerance=_tol,
      grad_tolerance=lambda d, ex, _tol=_tol: _tol(d, ex, True),
      notes="segment_ids is static: the output has segment_ids[-1] + 1 rows (tf2jax "
            "raises a StaticInputError naming the node and the input when the ids are "
            "computed at call time). Ids sorted in [0, 4], int32 or int64, with gaps "
            "(empty segments give 0, 1 for SegmentProd); 1 in 12 invalid (unsorted, "
            "negative, wrong length, a matrix), which TF and tf2jax reject."
            + _SORTED_NOTES[_name]))


def _unsorted_example(name: str, ids_dtypes, xla: bool = False):
  def example(dtype):
    @st.composite
    def draw_example(draw):
      idx = draw(st.sampled_from(ids_dtypes))
      num_dtype = D.np_dtype(draw(cst.index_dtypes()))
      num = 0 if (not xla and _rarely(draw, 8)) else draw(st.integers(1, 4))
      ids_shape = draw(cst.shapes(max_dims=2, max_side=4, max_size=8))
      rest = draw(_rest_shape())
      lo = -2 if draw(st.booleans()) else 0  # negative ids are dropped
      if xla:
        hi = num + 1 if draw(st.booleans()) else num - 1  # XLA drops ids >= num too
      else:
        hi = num + 1 if _rarely(draw) else num - 1  # TF raises on >= num
      if hi < lo:
        lo = hi = -1
      ids = draw(cst.arrays(idx, ids_shape, min_value=lo, max_value=hi, edges=False))
      num_value = np.asarray(num, num_dtype)
      if not xla and _rarely(draw, 16):
        num_value = draw(st.sampled_from([np.asarray(-1, num_dtype),
                                          np.asarray([num], num_dtype)]))
      data = draw(_segment_values(name, dtype, ids_shape + rest, max(math.prod(ids_shape), 1)))
      return Example({"data": data, "segment_ids": ids, "num_segments": num_value})
    return draw_example()
  return example


_unsorted_tolerance = _segment_tolerance


_UNSORTED_NOTES = {
    "sum": "",
    "prod": " Factors as in Prod's spec; gradient: TF's three-case formula.",
    "max": " Empty segments give the lowest finite value, and -inf never goes below it "
           "(TF starts from lowest). No NaN in the data (TF's result depends on the "
           "kernel's path). Gradient: TF's, split evenly among the elements equal to the "
           "result.",
}
_UNSORTED_NOTES["min"] = _UNSORTED_NOTES["max"].replace("lowest", "highest").replace(
    "-inf never goes below", "+inf never goes above")

for _op, _name, _idx in [("UnsortedSegmentSum", "sum", ("int16", "int32", "int64")),
                         ("UnsortedSegmentProd", "prod", ("int32", "int64")),
                         ("UnsortedSegmentMax", "max", ("int32", "int64")),
                         ("UnsortedSegmentMin", "min", ("int32", "int64"))]:
  _tol = _unsorted_tolerance(_name)
  SPECS.append(OpSpec(
      _op, _unsorted_example(_name, _idx), static_inputs=("num_segments",), tolerance=_tol,
      grad_tolerance=lambda d, ex, _tol=_tol: _tol(d, ex, True),
      notes="num_segments is static (0 to 4, int32 or int64; now and then negative or a "
            "vector, which TF rejects). segment_ids of any shape that prefixes the data's "
            f"({', '.join(_idx)}), negative ids dropped. Ids >= num_segments: TF raises, "
            "and so does tf2jax when the ids are concrete (not under jax.jit, where they "
            "are dropped)." + _UNSORTED_NOTES[_name]))


for _op, _name in [("SegmentSumV2", "sum"), ("SegmentProdV2", "prod"),
                   ("SegmentMaxV2", "max"), ("SegmentMinV2", "min")]:
  SPECS.append(OpSpec(
      _op, _unsorted_example(_name, ("int32", "int64"), xla=True),
      static_inputs=("num_segments",), tolerance=_unsorted_tolerance(_name),
      kernel_device="XLA_CPU_JIT", tf_jit_compile=True, transforms=NO_GRAD,
      notes="TF has only XLA kernels for the *V2 segment ops: the reference runs with "
            "jit_compile. They behave like the unsorted ops: ids of any prefix shape, in "
            "any order, ids outside [0, num_segments) dropped, empty segments 0 / 1 / "
            "lowest / highest; num_segments (static) must be positive (XLA rejects 0). TF "
            "registers no gradient for them." + (
                " No NaN in the data." if _name in ("max", "min") else "")))


# Sparse segment reductions -----------------------------------------------------------------


def _sparse_example(with_num: bool):
  def example(dtype):
    @st.composite
    def draw_example(draw):
      rows = 0 if _rarely(draw, 8) else draw(st.integers(1, 5))
      rest = draw(_rest_shape())
      # No empty indices with float data: TF's gradient kernels (SparseSegment*Grad) then
      # return uninitialized memory instead of zeros.
      k = draw(st.integers(1 if (dtype in D.FLOAT and rows) else 0, 6))
      idx = draw(cst.index_dtypes())
      seg = draw(cst.index_dtypes())
      data = draw(bounded_values(dtype, (rows,) + rest, k))
      if rows == 0 and dtype not in D.FLOAT:
        k = draw(st.sampled_from([0, 0, 1]))  # 1: out of range, TF raises
      hi = rows if _rarely(draw) else rows - 1
      indices = draw(cst.arrays(idx, (k,), min_value=0, max_value=max(hi, 0), edges=False))
      if rows == 0 and k:
        indices = np.zeros(k, D.np_dtype(idx))
      if _rarely(draw):
        ids = draw(_invalid_sorted_ids(k, seg))
      else:
        ids = draw(_sorted_ids(k, seg))
      inputs = {"data": data, "indices": indices, "segment_ids": ids}
      if with_num:
        top = int(ids.max()) + 1 if ids.size and ids.ndim == 1 else 0
        num = max(top - 1, 0) if _rarely(draw) else draw(st.integers(top, top + 2))
        inputs["num_segments"] = np.asarray(num, D.np_dtype(draw(cst.index_dtypes())))
      grad_ok = dtype not in D.FLOAT
      return Example(inputs, {"sparse_gradient": draw(st.booleans()) if grad_ok else False})
    return draw_example()
  return example


def _sparse_tolerance(dtype: str, ex: Example, grad: bool = False) -> Tolerance:
  base = default_tolerance(dtype)
  if dtype in D.INT:
    return base
  k = max(len(ex.inputs["indices"]), 1)
  # TF accumulates float16/bfloat16 in float32: one final rounding, plus the sum's.
  eps = float(D.finfo("float32").eps) if dtype in ("float16", "bfloat16") else _eps(dtype)
  scale = 10.0 if grad else _finite_scale(ex.inputs["data"])
  tol = Tolerance(base.rtol, base.atol + 2 * k * k * eps * scale)
  return Tolerance(2 * tol.rtol, tol.atol) if grad else tol


for _base in ["SparseSegmentSum", "SparseSegmentMean", "SparseSegmentSqrtN"]:
  for _with_num in (False, True):
    _op = _base + ("WithNumSegments" if _with_num else "")
    SPECS.append(OpSpec(
        _op, _sparse_example(_with_num),
        static_inputs=("segment_ids", "num_segments") if _with_num else ("segment_ids",),
        grad_inputs=("data",), tolerance=_sparse_tolerance,
        grad_tolerance=lambda d, ex: _sparse_tolerance(d, ex, True),
        notes="segment_ids is static (sorted, int32 or int64; 1 in 12 invalid) and so is "
              "num_segments (1 in 12 too small); indices are traced, in range most of the "
              "time (TF rejects an index out of range, and tf2jax does when the indices "
              "are concrete; under jax.jit they are clamped). TF accumulates "
              "float16/bfloat16 in float32, as tf2jax does. sparse_gradient only changes "
              "the form of TF's gradient (IndexedSlices, which the harness cannot compare): "
              "it is drawn for integer data and left False for floats."))


# Counting ops ---------------------------------------------------------------------------------


_COUNT_TYPES = ("int32", "int64", "float32", "float64")


def _weights(dtype: str, shape, draw):
  if draw(st.booleans()):
    return np.zeros((0,), D.np_dtype(dtype))
  return draw(bounded_values(dtype, shape, max(math.prod(shape), 1)))


def _bincount_example(dtype):
  @st.composite
  def draw_example(draw):
    size = draw(st.integers(0, 5))
    shape = draw(cst.shapes(max_dims=2, max_side=4, max_size=12))
    lo = -1 if _rarely(draw) else 0
    arr = draw(cst.arrays("int32", shape, min_value=lo, max_value=size + 2, edges=False))
    size_value = np.asarray(-1 if _rarely(draw, 16) else size, np.int32)
    return Example({"arr": arr, "size": size_value, "weights": _weights(dtype, shape, draw)})
  return draw_example()


def _count_tolerance(dtype: str, ex: Example) -> Tolerance:
  w = ex.inputs["weights"]
  return sum_tolerance(dtype, max(np.size(w), 1), _finite_scale(w))


SPECS.append(OpSpec(
    "Bincount", _bincount_example, static_inputs=("size",), transforms=NO_GRAD,
    tolerance=_count_tolerance,
    notes="size is static (the output's length; now and then negative, which TF rejects); "
          "arr of any rank, values >= size ignored, negative values raise (TF), in "
          "tf2jax when arr is concrete (dropped under jax.jit). Weights empty (counts) "
          "or of arr's shape. TF registers no gradient for Bincount."))


def _dense_bincount_example(dtype):
  @st.composite
  def draw_example(draw):
    size = draw(st.integers(0, 5))
    rank = draw(st.sampled_from([0, 1, 1, 2, 2, 3]))  # rank 3: TF rejects it
    shape = draw(cst.shapes(min_dims=rank, max_dims=rank, max_side=4, max_size=12))
    tidx = draw(cst.index_dtypes())
    lo = -1 if _rarely(draw) else 0
    x = draw(cst.arrays(tidx, shape, min_value=lo, max_value=size + 2, edges=False))
    return Example({"input": x, "size": np.asarray(size, D.np_dtype(tidx)),
                    "weights": _weights(dtype, shape, draw)},
                   {"binary_output": draw(st.booleans())})
  return draw_example()


SPECS.append(OpSpec(
    "DenseBincount", _dense_bincount_example, static_inputs=("size",), transforms=NO_GRAD,
    tolerance=_count_tolerance,
    notes="Input of rank 0 to 2 (rank 2 counts row by row; rank 3 is rejected), Tidx int32 "
          "or int64, size static; binary_output gives 1 where a value occurs (weights then "
          "ignored, as in TF). Negative values raise (TF), in tf2jax when concrete. TF "
          "registers no gradient for DenseBincount."))


def _bucketize_example(dtype):
  @st.composite
  def draw_example(draw):
    raw = draw(st.lists(st.one_of(
        st.floats(-10, 10, width=32), st.sampled_from([0.0, 1.0, -1.0, math.inf, -math.inf])),
        max_size=5))
    bounds = raw if _rarely(draw) else sorted(raw)  # unsorted: TF rejects
    shape = draw(cst.shapes(max_dims=3, max_side=4, max_size=24))
    if dtype in D.INT:
      x = draw(cst.arrays(dtype, shape, min_value=-12, max_value=12))
    else:
      near = st.sampled_from(bounds).map(float) if bounds else st.just(0.0)
      npd = D.np_dtype(dtype)
      elem = st.one_of(cst.elements(dtype), near.map(npd.type),
                       cst.elements(dtype, min_value=-12, max_value=12))
      x = draw(_array_of(elem, dtype, shape))
    return Example({"input": x}, {"boundaries": [float(b) for b in bounds]})
  return draw_example()


SPECS.append(OpSpec(
    "Bucketize", _bucketize_example, transforms=NO_GRAD,
    notes="The index of std::upper_bound in the boundaries (float32 values, sorted; 1 in "
          "12 unsorted, which TF rejects and tf2jax refuses at conversion): the number of "
          "boundaries b with !(x < b), so NaN falls in the last bucket. Integers compare "
          "as float32 (C++'s conversion), float64 inputs against the widened boundaries. "
          "Values are drawn on the boundaries too."))
