"""Specs of the core's Max/Min/Prod/All/Any reductions, ArgMax/ArgMin, Equal/NotEqual and
the logical ops.

Values come from the shared strategies (NaN, +-inf, the largest finite values, subnormals,
int min/max), mixed with arrays drawn from a few values only so that ties (equal maxima,
equal elements) are frequent. Reduction axes are static inputs: a scalar or a vector,
negative or not, empty (no reduction), int32 or int64; now and then an invalid one (out
of range, duplicated), which TF rejects and so must the conversion (or the call).
"""

from __future__ import annotations

import math

import numpy as np
from hypothesis import strategies as st

from tf2jax_conformance import dtypes as D
from tf2jax_conformance import strategies as cst
from tf2jax_conformance.spec import Example, OpSpec, Tolerance, default_tolerance

SPECS: list[OpSpec] = []

NO_GRAD = ("jit", "static", "x64", "vmap")


def _array_of(elements, dtype: str, shape: tuple[int, ...]):
  n = math.prod(shape)
  npd = D.np_dtype(dtype)
  return st.lists(elements, min_size=n, max_size=n).map(
      lambda xs: np.array(xs, npd).reshape(shape) if xs else np.zeros(shape, npd))


def tie_arrays(dtype: str, shape: tuple[int, ...]):
  """Arrays whose elements come from the dtype's edge values and two drawn values: many
  ties (equal maxima, equal elements of x and y), NaN and infinities among them."""
  edges = cst.edge_values(dtype)
  return st.lists(cst.elements(dtype), min_size=2, max_size=2).flatmap(
      lambda few: _array_of(st.sampled_from(list(few) + edges), dtype, shape))


def values(dtype: str, shape: tuple[int, ...]):
  return st.one_of(cst.arrays(dtype, shape), tie_arrays(dtype, shape))


# Reduction axes ---------------------------------------------------------------------------


@st.composite
def reduction_axes(draw, rank: int):
  """(axes as the static input, whether TF accepts them). Mostly valid axes (a scalar
  when there is exactly one, sometimes as a scalar even then not); 1 in 12 invalid."""
  idx = D.np_dtype(draw(cst.index_dtypes()))
  if draw(st.integers(0, 11)) == 6:  # not 0: hypothesis draws 0 first
    if rank > 0 and draw(st.booleans()):
      a = draw(st.integers(0, rank - 1))
      return np.asarray([a, a - rank], idx), False  # the same dimension twice
    return np.asarray([draw(st.sampled_from([rank, -rank - 1]))], idx), False
  axes = draw(cst.axes(rank))
  if len(axes) == 1 and draw(st.booleans()):
    return np.asarray(axes[0], idx), True
  return np.asarray(axes, idx), True


def _reduced_size(shape, axes) -> int:
  rank = len(shape)
  return math.prod(shape[int(a) % rank] for a in np.reshape(axes, -1)) if rank else 1


def reduction_example(values_for, max_size: int = 64):
  """Examples of Max/Min/Prod/All/Any: `values_for(dtype, shape, n)` draws the input, n
  being the number of elements reduced into each output element."""
  def example(dtype):
    @st.composite
    def draw_example(draw):
      shape = draw(cst.shapes(max_dims=4, max_side=4, max_size=max_size))
      axes, ok = draw(reduction_axes(len(shape)))
      n = _reduced_size(shape, axes) if ok else 1
      x = draw(values_for(dtype, shape, n))
      return Example({"input": x, "axis": axes}, {"keep_dims": draw(st.booleans())})
    return draw_example()
  return example


# Max / Min ----------------------------------------------------------------------------------

_MAX_MIN_NOTES = ("NaN propagates (TF's CPU kernels, and XLA's max/min); an empty "
                  "reduction gives -inf/+inf for floats and the integer min/max. "
                  "Gradients (floats): TF's, split equally among tied extrema "
                  "(indicators / count * dy), NaN everywhere in a slice whose result is NaN.")

for _op in ["Max", "Min"]:
  SPECS.append(OpSpec(_op, reduction_example(lambda dtype, shape, n: values(dtype, shape)),
                      static_inputs=("axis",), notes=_MAX_MIN_NOTES))


# Prod ---------------------------------------------------------------------------------------

# Finite factors are kept in [1/b, b] with b ** n <= 2 ** E (n: the number of factors of
# one product), so that no partial product overflows or underflows, whatever the order of
# the multiplications: where a product of large and small factors overflows depends on
# that order, which is the implementation's. E leaves room for cotangents up to 10 (grad).
_PROD_E = {"float16": 9, "bfloat16": 100, "float32": 100, "float64": 1000,
           "complex64": 100, "complex128": 1000}


def _prod_bound(dtype: str, n: int) -> float:
  return 2.0 ** (_PROD_E[dtype] / max(n, 1))


def prod_values(dtype: str, shape, n: int):
  if dtype in D.INT:
    return values(dtype, shape)  # integer products wrap the same in any order
  b = _prod_bound(dtype, n)
  npd = D.np_dtype(dtype)
  if dtype in D.COMPLEX:
    part_dtype = "float32" if dtype == "complex64" else "float64"
    # Parts 0 or with magnitude in [1/b, b] / 2: |z| stays in [1/b, b] (or is 0). No
    # infinities or NaN: C99 complex multiplication by them differs between Eigen and XLA.
    mag = cst.elements(part_dtype, min_value=1 / b, max_value=b / 2, allow_nan=False,
                       allow_inf=False, allow_subnormal=False, edges=False)
    part = st.one_of(st.just(0.0), mag.map(float), mag.map(lambda v: -float(v)))
    nonzero = st.tuples(mag, part).flatmap(
        lambda t: st.sampled_from([complex(t[0], t[1]), complex(t[1], t[0]),
                                   complex(-t[0], t[1])]))
    elem = st.one_of(nonzero, st.sampled_from([0j, 1 + 0j, -1 + 0j, 1j]))
    return _array_of(elem.map(npd.type), dtype, shape)
  mag = cst.elements(dtype, min_value=1 / b, max_value=b, allow_nan=False, allow_inf=False,
                     allow_subnormal=False, edges=False)
  finite = st.tuples(mag, st.booleans()).map(lambda t: -t[0] if t[1] else t[0])
  # The edge values that keep partial products in range: 0, -0, +-1, +-inf, NaN.
  edges = [v for v in cst.edge_values(dtype)
           if not np.isfinite(float(v)) or float(v) in (0.0, 1.0, -1.0)]
  elem = st.one_of(finite, st.sampled_from(edges))
  return _array_of(elem, dtype, shape)


def _prod_tolerance(dtype: str, ex: Example, grad: bool = False) -> Tolerance:
  """Each side rounds every one of the n - 1 multiplications of a product (at most half
  an ulp each, in its own order): n ulps between them, relative to the product; for
  complex numbers relative to |product|, part by part (atol)."""
  base = default_tolerance(dtype)
  if dtype in D.INT:
    return base
  x = np.asarray(ex.inputs["input"])
  axes = ex.inputs["axis"]
  n = _reduced_size(x.shape, axes) if x.ndim else 1
  part = {"complex64": "float32", "complex128": "float64"}.get(dtype, dtype)
  eps = float(D.finfo(part).eps)
  rtol = base.rtol + n * eps
  if grad:
    rtol = 2 * rtol  # the cotangent's multiplication and TF's left * right products
  if dtype in D.COMPLEX:
    mag = np.abs(x.astype(np.complex128))
    if x.ndim and x.size:
      prods = np.prod(mag, axis=tuple(int(a) % x.ndim for a in np.reshape(axes, -1)))
      scale = float(np.max(prods)) if np.size(prods) else 0.0
    else:
      scale = float(np.max(mag)) if mag.size else 0.0
    return Tolerance(rtol, base.atol + 4 * n * eps * scale)
  if grad:
    return Tolerance(rtol, base.atol * 10)  # cotangents up to 10: subnormal gradients
  return Tolerance(rtol, base.atol)


SPECS.append(OpSpec(
    "Prod", reduction_example(prod_values, max_size=24), static_inputs=("axis",),
    tolerance=_prod_tolerance, grad_tolerance=lambda d, ex: _prod_tolerance(d, ex, True),
    notes="Inputs of at most 24 elements; finite float factors in [1/b, b] with "
          "b ** n <= 2 ** E (n factors per product), so that no partial product overflows "
          "or underflows in any order of multiplication (where it does depends on the "
          "order, the implementation's); edge values 0, -0, +-1, +-inf, NaN. Complex "
          "factors finite (C99 special cases differ between Eigen and XLA). Tolerance: n "
          "ulps relative to the product (each side rounds n - 1 multiplications in its own "
          "order). Gradients (floats): TF's exclusive cumulative products against JAX's "
          "product rule, equal up to rounding (zeros and infinities included)."))


# All / Any ------------------------------------------------------------------------------------

for _op in ["All", "Any"]:
  SPECS.append(OpSpec(
      _op, reduction_example(lambda dtype, shape, n: cst.arrays("bool", shape)),
      dtype_attr=None, dtypes=("bool",), static_inputs=("axis",), transforms=NO_GRAD,
      notes="The input is bool (the op has no type attr); Tidx (int32/int64, the dtypes "
            "of TF's kernel) is drawn in every case. An empty reduction gives True (All) "
            "or False (Any)."))


# ArgMax / ArgMin --------------------------------------------------------------------------------

# Their op defs differ: ArgMax's output_type may be int16, uint16, int32 or int64,
# ArgMin's only int32 or int64 (TF rejects the others when it builds the node).
_OUTPUT_TYPES = {"ArgMax": ("int16", "uint16", "int32", "int64"), "ArgMin": ("int32", "int64")}
# Not int16, which TF's kernel registry lists for the dimension (Tidx): TF's kernel and
# shape function read an int16 dimension as a wider integer ("Expected dimension in the
# range [-1, 1), but got 1572864000"), and tf2jax refuses it.
_ARG_TIDX = ("int32", "int64")


def arg_example(op):
  return lambda dtype: _arg_example(op, dtype)


def _arg_example(op, dtype):
  @st.composite
  def draw_example(draw):
    # One draw in 8, never the first, is rank 0 or an empty reduced dimension: TF rejects
    # them (no dimension / "Reduction axis is empty"), and so must tf2jax. (Drawn freely,
    # with size-0 sides first, they made all 3 examples of some `full` cases.)
    rejected = draw(st.integers(0, 7)) == 7
    shape = [] if rejected and draw(st.booleans()) else list(
        draw(cst.shapes(min_dims=1, max_dims=4)))
    rank = len(shape)
    axis = draw(st.integers(-rank, rank - 1)) if rank else 0
    if rank:
      shape[axis] = 0 if rejected else max(shape[axis], 1)
    shape = tuple(shape)
    out = draw(st.sampled_from(_OUTPUT_TYPES[op]))
    tidx = draw(st.sampled_from(_ARG_TIDX))
    return Example({"input": draw(values(dtype, shape)),
                    "dimension": np.asarray(axis, D.np_dtype(tidx))}, {"output_type": out})
  return draw_example()


_ARG_NOTES = ("TF's CPU kernels (Eigen's tuple reducers) start from (index 0, lowest) (ArgMin: "
              "highest) and take a value only when strictly greater (smaller): ties give "
              "the first index, NaN is never selected, and a slice with nothing above the "
              "lowest finite value (only NaN, -inf or lowest) gives 0; tf2jax does the same. "
              "Reducing an empty dimension raises, in TF and in tf2jax. output_type covers "
              "int16, uint16, int32, int64 (ArgMin: int32, int64, all its op def allows); the "
              "dimension int32 and int64, not int16 (TF's kernel "
              "reads an int16 dimension as a wider integer: garbage; tf2jax refuses it).")

for _op in ["ArgMax", "ArgMin"]:
  SPECS.append(OpSpec(_op, arg_example(_op), static_inputs=("dimension",), transforms=NO_GRAD,
                      notes=_ARG_NOTES))


# Equal / NotEqual -------------------------------------------------------------------------------


def equality_example(dtype):
  @st.composite
  def draw_example(draw):
    strict = draw(st.booleans())
    if draw(st.integers(0, 7)) == 0:
      # Shapes that do not broadcast: TF raises (incompatible_shape_error=True) or gives a
      # scalar (False for Equal, True for NotEqual).
      a = draw(st.integers(2, 4))
      sx, sy = (draw(st.integers(0, 3)), a), (a + 1,)
    else:
      sx, sy = draw(cst.broadcastable_shapes(2))
    # Both from the same few values most of the time: equal elements are frequent.
    if draw(st.booleans()):
      edges = cst.edge_values(dtype)
      few = draw(st.lists(cst.elements(dtype), min_size=1, max_size=2))
      elem = st.sampled_from(list(few) + edges)
      x, y = draw(_array_of(elem, dtype, sx)), draw(_array_of(elem, dtype, sy))
    else:
      x, y = draw(cst.arrays(dtype, sx)), draw(cst.arrays(dtype, sy))
    return Example({"x": x, "y": y}, {"incompatible_shape_error": strict})
  return draw_example()


for _op in ["Equal", "NotEqual"]:
  SPECS.append(OpSpec(
      _op, equality_example, transforms=NO_GRAD,
      notes="NaN is unequal to everything, -0 equals 0, complex numbers compare both parts. "
            "incompatible_shape_error=False with shapes that do not broadcast gives a "
            "scalar (False / True), as in TF's kernel."))


# Logical ops ------------------------------------------------------------------------------------


def logical_example(unary: bool):
  def example(dtype):
    if unary:
      return cst.arrays("bool", cst.shapes()).map(lambda x: Example({"x": x}))
    return cst.broadcastable_shapes(2).flatmap(lambda s: st.tuples(
        cst.arrays("bool", s[0]), cst.arrays("bool", s[1]))).map(
            lambda xy: Example({"x": xy[0], "y": xy[1]}))
  return example


for _op, _unary in [("LogicalAnd", False), ("LogicalOr", False), ("LogicalNot", True)]:
  SPECS.append(OpSpec(_op, logical_example(_unary), dtype_attr=None, dtypes=("bool",),
                      transforms=NO_GRAD, notes="bool only (the op has no type attr)."))


# HistogramFixedWidth ----------------------------------------------------------------


@st.composite
def _histogram_example(draw, dtype):
  """Ranges whose width and offsets cannot overflow T (TF's kernel then indexes out of
  bounds), now and then an empty range (TF rejects it); values without NaN (TF casts NaN
  to int32: undefined), from anywhere or from within the range."""
  if dtype in D.FLOAT:
    big = float(D.finfo(dtype).max) / 4
    kw = dict(min_value=-big, max_value=big, allow_nan=False, allow_inf=False)
  else:
    info = D.iinfo(dtype)
    kw = dict(min_value=int(info.min), max_value=int(info.max))
  lo = draw(cst.elements(dtype, **kw))
  if dtype not in D.FLOAT:
    lo = int(lo)
  top = kw["max_value"] if dtype in D.FLOAT else min(int(info.max), lo + int(info.max))
  hi = draw(cst.elements(dtype, **{**kw, "min_value": lo, "max_value": top}))
  if lo == hi and draw(st.integers(0, 3)):
    hi, lo = (np.asarray(v, D.np_dtype(dtype)) for v in (top, lo))
  shape = draw(cst.shapes(max_dims=3, max_size=24))
  inside = dict(min_value=lo, max_value=hi, allow_nan=False) if dtype in D.FLOAT else \
      dict(min_value=int(lo), max_value=int(hi))
  anywhere = dict(allow_nan=False) if dtype in D.FLOAT else \
      dict(max_value=top)
  values = draw(cst.arrays(dtype, shape, **anywhere) if not lo < hi else
                st.one_of(cst.arrays(dtype, shape, **inside),
                          cst.arrays(dtype, shape, **anywhere)))
  return Example({"values": values,
                  "value_range": np.array([lo, hi], D.np_dtype(dtype)),
                  "nbins": np.asarray(draw(st.integers(1, 6)), np.int32)},
                 {"dtype": draw(cst.index_dtypes())})


SPECS.append(OpSpec(
    "HistogramFixedWidth", _histogram_example, static_inputs=("nbins",), transforms=NO_GRAD,
    notes="No NaN values (TF casts NaN to an int: undefined); ranges whose width and "
          "offsets fit T (TF's kernel writes out of bounds otherwise). Values outside "
          "the range count in the edge bins."))
