"""Specs of the scatters and slice assignment on TF1 reference variables (Scatter*,
ScatterNd*, StridedSliceAssign), of the sparse segment gradient kernels
(SparseSegment*Grad) and of sparse ops on a SparseTensor given as (indices, values,
dense_shape): SparseReduceSum/Max, SparseDenseCwise* and SparseSoftmax.

Ref-variable specs follow variable_specs.py's VariableV2 specs: a VariableV2 in a
tf.function gets its initial value by an Assign, then the op runs on it, and both the op's
output (the updated variable) and a read ordered after it are compared. Their inputs are
those of the resource ops' specs (variable_specs.py), so repeated and out-of-range indices
are drawn the same way.
"""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

from tf2jax_conformance import dtypes as D
from tf2jax_conformance import strategies as cst
from tf2jax_conformance.core_specs.array_manipulation_specs import _sum_tol
from tf2jax_conformance.core_specs.scan_segment_specs import (
    NO_GRAD, _eps, _finite_scale, _rarely, bounded_values, sum_tolerance)
from tf2jax_conformance.core_specs.sparse_specs import _indices
from tf2jax_conformance.core_specs.structure_specs import _names, _tf
from tf2jax_conformance.core_specs.variable_specs import (
    _INT32_REF, _NO_ASSIGN, _SCATTER_NOTE, _TF1, _strided_example, _with_initial,
    resource_scatter_example, resource_scatter_nd_example)
from tf2jax_conformance.spec import EXACT, Example, OpSpec, Tolerance, default_tolerance

# TF1 reference variables --------------------------------------------------------------


def _with_locking(example_fn):
  """Adds a drawn `use_locking` attr (it changes nothing but TF's locking)."""
  def example(dtype):
    return st.tuples(example_fn(dtype), st.booleans()).map(lambda t: Example(
        t[0].inputs, {**t[0].attrs, "use_locking": t[1]}, t[0].extra))
  return example


def _complex_nonzero(example_fn):
  """Complex divisors made nonzero: TF (Eigen) and XLA divide a complex number by 0
  differently (e.g. 0.001j / 0 is nan+nanj in TF, nan+infj in XLA)."""
  def fix(ex):
    u = ex.inputs["updates"]
    if u.dtype.kind == "c":
      u = np.where(u == 0, np.ones_like(u), u)
    return Example({**ex.inputs, "updates": u}, ex.attrs, ex.extra)
  return lambda dtype: example_fn(dtype).map(fix)


def _ref_op_body(op):
  """VariableV2 in a tf.function (TF runs it there, not eagerly): Assign the initial
  value, run `op` on the ref with the example's inputs (begin/end/strides as constants),
  then read the variable back (control dependencies order them)."""
  def build(example):
    tf = _tf()
    init = example.extra["initial"]
    dtype = tf.as_dtype(init.dtype)
    name = f"conformance_ref_{next(_names)}"
    consts = {k: tf.constant(example.extra[k]) for k in ("begin", "end", "strides")
              if k in example.extra}
    names = list(example.inputs)

    @tf.function(autograph=False)
    def body(*args):
      v = tf.raw_ops.VariableV2(shape=init.shape, dtype=dtype, shared_name=name)
      first = tf.raw_ops.Assign(ref=v, value=tf.constant(init))
      with tf.control_dependencies([first]):
        out = getattr(tf.raw_ops, op)(ref=v, **dict(zip(names, args)), **consts,
                                      **example.attrs)
      with tf.control_dependencies([out]):
        read = tf.identity(v)
      return tf.identity(out), read
    return body
  return build


_REF_NOTE = ("A VariableV2 in a tf.function (TF runs it there), given its initial value by "
             "an Assign, then {op}, then read back through an Identity ordered after it; "
             "both the op's output (the updated variable) and the read are compared. "
             "use_locking drawn (no effect). ")


def _ref_specs() -> list[OpSpec]:
  out = []
  for name in ("Add", "Sub", "Mul", "Div", "Min", "Max", "Update"):
    kind = name.lower()
    tol = _with_initial(_sum_tol) if kind in ("add", "sub") else (lambda d, ex: EXACT)
    if kind in ("mul", "div"):
      tol = None  # the default: TF and XLA round the same products and quotients
    op = f"Scatter{name}"
    example = _with_locking(resource_scatter_example(kind))
    note = _SCATTER_NOTE
    if kind == "div":
      example = _complex_nonzero(example)
      note += (" Unlike ResourceScatterDiv, ScatterDiv does not refuse a zero divisor: "
               "float ones give inf/NaN in both (complex divisors are nonzero: Eigen and "
               "XLA differ there).")
    out.append(OpSpec(op, example,
                      build=_ref_op_body(op), skip_dtypes=_INT32_REF,
                      notes=_REF_NOTE.format(op=op) + note,
                      **{**_TF1, "tolerance": tol}))
  for name in ("Add", "Sub", "Update", "Min", "Max"):
    kind = name.lower()
    tol = _with_initial(_sum_tol) if kind in ("add", "sub") else (lambda d, ex: EXACT)
    op = f"ScatterNd{name}"
    out.append(OpSpec(op, _with_locking(resource_scatter_nd_example),
                      build=_ref_op_body(op), skip_dtypes=_INT32_REF,
                      notes=_REF_NOTE.format(op=op) + _SCATTER_NOTE,
                      **{**_TF1, "tolerance": tol}))
  no_ref = {d: r for d, r in _NO_ASSIGN.items() if d in ("float8_e5m2", "float8_e4m3fn")}
  out.append(OpSpec("StridedSliceAssign", _strided_example,
                    build=_ref_op_body("StridedSliceAssign"),
                    skip_dtypes={**_INT32_REF, **no_ref},
                    notes=_REF_NOTE.format(op="StridedSliceAssign") +
                    "begin/end/strides constants of the graph; the value broadcasts.",
                    **_TF1))
  return out


# SparseSegment*Grad ---------------------------------------------------------------------


def _segment_grad_example(dtype):
  @st.composite
  def draw(draw):
    segments = draw(st.integers(0, 4))
    rest = draw(cst.shapes(max_dims=2, max_side=3, max_size=6))
    dim0 = draw(st.integers(0, 5)) if segments else 0
    # At least one index when the output has rows: with none, TF's kernel leaves its
    # output uninitialized (garbage such as 1.9e-06 instead of zeros).
    k = draw(st.integers(1, 6)) if dim0 else (1 if _rarely(draw) else 0)
    idx, seg = draw(cst.index_dtypes()), draw(cst.index_dtypes())
    indices = np.asarray(draw(st.lists(st.integers(0, max(dim0 - 1, 0)), min_size=k,
                                       max_size=k)), D.np_dtype(idx))
    ids = np.asarray(draw(st.lists(st.integers(0, max(segments - 1, 0)), min_size=k,
                                   max_size=k)), D.np_dtype(seg))
    if k and _rarely(draw):  # out of range: TF raises, so does the conversion
      where = draw(st.sampled_from(["indices", "ids"]))
      arr = indices if where == "indices" else ids
      arr[draw(st.integers(0, k - 1))] = draw(st.sampled_from(
          [-1, dim0 if where == "indices" else segments]))
    grad = draw(bounded_values(dtype, (segments,) + rest, k))
    return Example({"grad": grad, "indices": indices, "segment_ids": ids,
                    "output_dim0": np.asarray(dim0, np.int32)})
  return draw()


def _segment_grad_tolerance(dtype: str, ex: Example) -> Tolerance:
  """Sums of up to k (the number of indices) scaled rows in different orders; TF sums
  float16/bfloat16 in float32 (rounding once, as tf2jax does), its scales 1/n and 1/sqrt(n)
  are rounded from double (tf2jax's from float32 math: one more ulp per term)."""
  base = default_tolerance(dtype)
  k = max(len(ex.inputs["indices"]), 1)
  eps = float(D.finfo("float32").eps) if dtype in ("float16", "bfloat16") else _eps(dtype)
  scale = _finite_scale(ex.inputs["grad"])
  return Tolerance(base.rtol, base.atol + 2 * (k * k + 2 * k) * eps * scale)


_SEGMENT_GRAD_NOTE = (
    "output[indices[i]] += grad[segment_ids[i]] * scale, scale 1, 1/n or 1/sqrt(n) for a "
    "segment of n ids. Ids unsorted (TF only checks their range), 1 in 12 examples with an "
    "index or id out of range (TF raises, so does the conversion; with output_dim0 0 TF "
    "checks nothing, nor does the conversion). At least one index when "
    "output_dim0 > 0: TF's kernel leaves the output uninitialized without indices (tf2jax "
    "gives zeros). output_dim0 static. No grad: TF registers none for these kernels.")


# SparseReduceSum / SparseReduceMax --------------------------------------------------------


def _reduce_example(kind: str):
  def example(dtype):
    @st.composite
    def draw(draw):
      dims = list(draw(cst.shapes(min_dims=1, max_dims=4, max_side=3, max_size=24)))
      r = len(dims)
      nnz = draw(st.integers(0, 6))
      idx = draw(_indices(dims, nnz, "int64"))
      if kind == "sum":
        values = draw(bounded_values(dtype, (nnz,), nnz))
      else:  # no NaN: TF's max keeps or drops one depending on its position
        values = draw(cst.arrays(dtype, (nnz,), allow_nan=False))
      axes = draw(st.lists(st.integers(-r, r - 1), max_size=r + 1))
      if _rarely(draw):
        axes.append(draw(st.sampled_from([r, -r - 1])))  # TF rejects it
      axes = np.asarray(axes, np.int32)
      if len(axes) == 1 and draw(st.booleans()):
        axes = axes.reshape(())
      return Example({"input_indices": idx, "input_values": values,
                      "input_shape": np.asarray(dims, np.int64), "reduction_axes": axes},
                     {"keep_dims": draw(st.booleans())})
    return draw()
  return example


def _reduce_build(example):
  """TF's gradient gathers the cotangent at indices // (shape // kept shape): it fails
  for an index out of bounds (even in a reduced dim, which the forward accepts) or a
  0-sized dim; the spec stops the gradient there."""
  tf = _tf()
  dims = example.inputs["input_shape"]
  idx = example.inputs["input_indices"]
  axes = example.inputs["reduction_axes"]
  ok = np.prod(dims) > 0 and np.all((idx >= 0) & (idx < dims))
  attrs = dict(example.attrs)

  def body(indices, values):
    if not ok:
      values = tf.stop_gradient(values)
    return tf.raw_ops.SparseReduceSum(input_indices=indices, input_values=values,
                                      input_shape=tf.constant(dims),
                                      reduction_axes=tf.constant(axes), **attrs)
  return body


def _reduce_tolerance(dtype: str, ex: Example) -> Tolerance:
  values = ex.inputs["input_values"]
  return sum_tolerance(dtype, max(len(values), 1), _finite_scale(values))


# SparseDenseCwise* -------------------------------------------------------------------------


def _cwise_example(op: str):
  def example(dtype):
    @st.composite
    def draw(draw):
      dims = list(draw(cst.shapes(min_dims=1, max_dims=4, max_side=3, max_size=24)))
      r = len(dims)
      k = draw(st.integers(0, r))
      dshape = [d if draw(st.booleans()) else 1 for d in dims[r - k:]]
      if k and _rarely(draw):  # neither the sparse dim nor 1: TF rejects it
        j = draw(st.integers(0, k - 1))
        dshape[j] = dims[r - k + j] + 2
      nnz = draw(st.integers(0, 6))
      idx = draw(_indices(dims, nnz, "int64"))
      if op == "Add":
        values, dense = (draw(cst.arrays(dtype, (nnz,))),
                         draw(cst.arrays(dtype, tuple(dshape))))
      else:
        values = draw(_moderate(dtype, (nnz,)))
        dense = draw(_moderate(dtype, tuple(dshape), nonzero=op == "Div"))
        if op == "Div" and dense.size and _rarely(draw):  # TF rejects a zero divisor
          dense.reshape(-1)[draw(st.integers(0, dense.size - 1))] = 0
      return Example({"sp_indices": idx, "sp_values": values,
                      "sp_shape": np.asarray(dims, np.int64), "dense": dense})
    return draw()
  return example


def _moderate(dtype: str, shape, nonzero: bool = False):
  """Finite values in [-10, 10] (ints: any); divisors of magnitude >= 0.5 (ints:
  nonzero), so that the gradients' x / y**2 stay moderate."""
  if dtype in D.INT:
    values = cst.arrays(dtype, shape)
    one = D.np_dtype(dtype).type(1)
    return values.map(lambda a: np.where(a == 0, one, a).astype(a.dtype)) if nonzero \
        else values
  values = cst.finite_arrays(dtype, shape)
  if nonzero:
    half = np.float64(0.5)
    values = values.map(lambda a: np.where(
        np.abs(a.astype(np.float64)) < half, np.copysign(np.float64(2.0), a.astype(
            np.float64)), a.astype(np.float64)).astype(a.dtype))
  return values


def _cwise_build(op: str):
  def build(example):
    """TF's gradient (Mul, Div) divides sp_shape by the dense shape and gathers the dense
    value at every index (gather_nd, which refuses a scalar): the spec stops it for a
    scalar dense, indices out of bounds or 0-sized dims."""
    tf = _tf()
    dims = example.inputs["sp_shape"]
    idx = example.inputs["sp_indices"]
    ok = (np.prod(dims) > 0 and np.all((idx >= 0) & (idx < dims))
          and example.inputs["dense"].ndim > 0)
    fn = getattr(tf.raw_ops, f"SparseDenseCwise{op}")

    def body(indices, values, shape, dense):
      if not ok:
        values, dense = tf.stop_gradient(values), tf.stop_gradient(dense)
      return fn(sp_indices=indices, sp_values=values, sp_shape=shape, dense=dense)
    return body
  return build


def _cwise_grad_tolerance(dtype: str, ex: Example) -> Tolerance:
  """The dense gradient sums up to nnz terms (broadcast dims) of cotangent (<= 10) times
  a value (<= 10) or value / divisor**2 (<= 40), in different orders; each term a few
  roundings apart (TF's -x / y**2 and JAX's own formula)."""
  base = default_tolerance(dtype)
  n = max(len(ex.inputs["sp_values"]), 1)
  return Tolerance(4 * base.rtol, base.atol + 4 * (n + 2) * _eps(dtype) * 400)


# SparseSoftmax ------------------------------------------------------------------------------


def _softmax_example(dtype):
  @st.composite
  def draw(draw):
    dims = list(draw(cst.shapes(min_dims=2, max_dims=3, min_side=1, max_side=3,
                                max_size=18)))
    if _rarely(draw):
      dims = dims[:1]  # rank 1: TF rejects it
    nnz = draw(st.integers(0, 8))
    idx = draw(_indices(dims, nnz, "int64"))  # 1 in 10 out of bounds: TF accepts it
    if draw(st.integers(0, 3)):  # mostly in TF's canonical (row-major) order
      idx = idx[np.lexsort(idx.T[::-1])] if nnz else idx
    finite = cst.finite_arrays(dtype, (nnz,))
    values = draw(st.one_of(finite, finite, finite, cst.arrays(dtype, (nnz,),
                                                                 allow_nan=False)))
    return Example({"sp_indices": idx, "sp_values": values,
                    "sp_shape": np.asarray(dims, np.int64)})
  return draw()


def _softmax_build(example):
  """TF's gradient pairs the output (in sorted order) with the input's indices and
  densifies by them: the derivative only for sorted, in-bounds indices and finite values;
  the spec stops it otherwise."""
  tf = _tf()
  idx, dims = example.inputs["sp_indices"], example.inputs["sp_shape"]
  values = example.inputs["sp_values"].astype(np.float64)
  ok = (len(dims) >= 2 and np.all((idx >= 0) & (idx < dims)) and np.all(np.isfinite(values))
        and (len(idx) < 2 or np.all(np.lexsort(idx.T[::-1]) == np.arange(len(idx)))))

  def body(indices, values, shape):
    if not ok:
      values = tf.stop_gradient(values)
    return tf.raw_ops.SparseSoftmax(sp_indices=indices, sp_values=values, sp_shape=shape)
  return body


def _softmax_tolerance(dtype: str, ex: Example, grad: bool = False) -> Tolerance:
  """Both compute in the dtype: x - max, exp, a sum of up to nnz terms, 1 / sum and a
  product, each rounded (exp implementations a few ulps apart); results are in [0, 1]."""
  base = default_tolerance(dtype)
  n = len(ex.inputs["sp_values"])
  tol = Tolerance(base.rtol + (n + 4) * _eps(dtype), base.atol)
  if grad:  # out * (g - sum(g * out)): cancellation, cotangents <= 10
    return Tolerance(2 * tol.rtol, base.atol + 2 * (n + 4) * _eps(dtype) * 10)
  return tol


def _sparse_specs() -> list[OpSpec]:
  out = []
  for op, name in [("SparseSegmentSumGrad", "Sum"), ("SparseSegmentMeanGrad", "Mean"),
                   ("SparseSegmentSqrtNGrad", "SqrtN")]:
    out.append(OpSpec(op, _segment_grad_example, static_inputs=("output_dim0",),
                      transforms=NO_GRAD, tolerance=_segment_grad_tolerance,
                      notes=_SEGMENT_GRAD_NOTE))
  reduce_notes = (
      "Indices unsorted and repeated, 1 in 10 out of bounds (TF checks only the output "
      "position of the kept dims and raises there, as the conversion does; groups whose "
      "indices land on one position overwrite each other, the last in sorted order "
      "winning, in both); reduction_axes static, any order, "
      "repeated, negative, empty (no reduction) or a scalar, 1 in 12 out of range (TF "
      "raises); input_shape static. ")
  out += [
      OpSpec("SparseReduceSum", _reduce_example("sum"),
             static_inputs=("input_shape", "reduction_axes"), build=_reduce_build,
             grad_inputs=("input_values",), tolerance=_reduce_tolerance,
             notes=reduce_notes + "Values bounded so that no order of the sums overflows. "
                   "No gradient where TF's fails (indices out of bounds, 0-sized dims)."),
      OpSpec("SparseReduceMax", _reduce_example("max"),
             static_inputs=("input_shape", "reduction_axes"), transforms=NO_GRAD,
             notes=reduce_notes + "Only the values present count (not the implicit zeros); "
                   "a group with none gives 0. No NaN: TF's max keeps or drops one by its "
                   "position. No grad: TF registers none."),
  ]
  cwise_notes = ("Dense shapes of any suffix of sp_shape, each dim equal or 1 (1 in 12 "
                 "neither: TF rejects it); indices unsorted and repeated, 1 in 10 out of "
                 "bounds (TF raises, so does the eager call). ")
  out += [
      OpSpec("SparseDenseCwiseAdd", _cwise_example("Add"), build=_cwise_build("Add"),
             transforms=NO_GRAD,
             notes=cwise_notes + "No grad: TF's gradient raises NotImplementedError."),
      OpSpec("SparseDenseCwiseMul", _cwise_example("Mul"), build=_cwise_build("Mul"),
             grad_inputs=("sp_values", "dense"), grad_tolerance=_cwise_grad_tolerance,
             notes=cwise_notes + "Finite values in [-10, 10] (ints: any)."),
      OpSpec("SparseDenseCwiseDiv", _cwise_example("Div"), build=_cwise_build("Div"),
             grad_inputs=("sp_values", "dense"), grad_tolerance=_cwise_grad_tolerance,
             notes=cwise_notes + "Finite values in [-10, 10], divisors of magnitude >= 0.5 "
                   "(ints: nonzero); 1 in 12 examples with a zero divisor (TF raises when "
                   "an index reads it, so does the conversion when it is known). Integer "
                   "division truncates; INT_MIN / -1 wraps to INT_MIN in TF and XLA."),
      OpSpec("SparseSoftmax", _softmax_example, build=_softmax_build,
             grad_inputs=("sp_values",), tolerance=_softmax_tolerance,
             grad_tolerance=lambda d, ex: _softmax_tolerance(d, ex, True),
             notes="Indices mostly sorted, else unsorted (TF's output follows the sorted "
                   "order), repeated, 1 in 10 out of bounds (TF does not check them); rank "
                   "1 in 1 of 12 (TF rejects it). Values finite in [-10, 10] or any but NaN "
                   "(an infinity makes its group NaN in both). Gradients only for sorted, "
                   "in-bounds indices and finite values (TF's is not the derivative "
                   "otherwise)."),
  ]
  return out


def specs() -> list[OpSpec]:
  return [*_ref_specs(), *_sparse_specs()]
