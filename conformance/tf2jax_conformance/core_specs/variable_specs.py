"""Specs of asserts and of the variable ops beyond read/assign: resource gathers,
scatters and slice assignment, variable queries and TF1 reference variables.

Variable specs build a tf.Variable (or a VariableV2 inside a tf.function) and return
what the op computed and the variable read after it: converted with `tf2jax.convert`,
the params the converted function returns are compared with TF's variables too.
Out-of-range indices are drawn now and then: TF's CPU kernels raise, and so does the
converted function, whose indices are concrete in the eager call.
"""

from __future__ import annotations

import math

import numpy as np
from hypothesis import strategies as st

from tf2jax_conformance import dtypes as D
from tf2jax_conformance import strategies as cst
from tf2jax_conformance.core_specs.array_manipulation_specs import (
    _nd_indices, _sum_tol, tensor_strided_slice_update_example)
from tf2jax_conformance.core_specs.math_specs import moderate_complex
from tf2jax_conformance.core_specs.structure_specs import (_VAR, _names, _tf, _variable,
                                                            variable_example)
from tf2jax_conformance.spec import EXACT, Example, OpSpec

# Asserts ----------------------------------------------------------------------------


def check_numerics_example(dtype):
  """Mostly finite tensors (TF accepts them), sometimes any (NaN, infinities)."""
  finite = cst.arrays(dtype, cst.shapes(), allow_nan=False, allow_inf=False)
  anything = cst.arrays(dtype, cst.shapes(min_dims=1))
  return st.tuples(st.one_of(finite, finite, anything),
                   st.sampled_from(["", "check {0}"])).map(
      lambda t: Example({"tensor": t[0]}, {"message": t[1]}))


def assert_example(dtype):
  return st.tuples(st.sampled_from([True, False, True]), cst.arrays(dtype, cst.shapes()),
                   st.sampled_from([3, -1, 1])).map(lambda t: Example(
                       {"condition": np.bool_(t[0]), "x": t[1]}, {"summarize": t[2]}))


def _assert_body(example):
  tf = _tf()
  summarize = example.attrs["summarize"]

  def body(condition, x):
    check = tf.raw_ops.Assert(condition=condition, data=[tf.constant("x ="), x],
                              summarize=summarize)
    with tf.control_dependencies([check]):
      return tf.identity(x)
  return body


def print_example(dtype):
  return st.tuples(cst.arrays(dtype, cst.shapes()), st.sampled_from(["stderr", "stdout"])
                   ).map(lambda t: Example({"x": t[0]}, extra={"stream": t[1]}))


def _print_body(example):
  tf = _tf()

  def body(x):
    printed = tf.raw_ops.PrintV2(input=tf.constant("conformance"),
                                 output_stream=example.extra["stream"])
    with tf.control_dependencies([printed]):
      return tf.identity(x)
  return body


# Variable queries ---------------------------------------------------------------------


def _with_initialized(example_fn):
  def example(dtype):
    return st.tuples(example_fn(dtype), st.booleans()).map(lambda t: Example(
        t[0].inputs, extra={**t[0].extra, "assign": t[1]}))
  return example


def _is_initialized_body(example):
  """A tf.Variable (initialized) and a handle made in the function, assigned or not."""
  tf = _tf()
  v = _variable(example)
  name = f"conformance_handle_{next(_names)}"
  value = example.inputs["value"]
  dtype = tf.as_dtype(value.dtype)

  def body(x):
    handle = tf.raw_ops.VarHandleOp(dtype=dtype, shape=value.shape, shared_name=name)
    if example.extra["assign"]:
      tf.raw_ops.AssignVariableOp(resource=handle, value=x)
    # v is read too: a tf.function only captures the variables it reads as such.
    return (tf.raw_ops.VarIsInitializedOp(resource=v.handle),
            tf.raw_ops.VarIsInitializedOp(resource=handle), v.read_value())
  return body


def variable_shape_example(dtype):
  return variable_example("float32").map(lambda ex: Example(ex.inputs, {"out_type": dtype},
                                                            ex.extra))


def _variable_shape_body(example):
  tf = _tf()
  v = _variable(example)
  out_type = tf.as_dtype(example.attrs["out_type"])
  return lambda x: (tf.raw_ops.VariableShape(input=v.handle, out_type=out_type),
                    v.read_value())  # captured as a variable only when read


def _destroy_body(example):
  tf = _tf()
  name = f"conformance_handle_{next(_names)}"
  value = example.inputs["value"]
  dtype = tf.as_dtype(value.dtype)

  def body(x):
    handle = tf.raw_ops.VarHandleOp(dtype=dtype, shape=value.shape, shared_name=name)
    tf.raw_ops.AssignVariableOp(resource=handle, value=x)
    read = tf.raw_ops.ReadVariableOp(resource=handle, dtype=dtype)
    with tf.control_dependencies([read]):
      gone = tf.raw_ops.DestroyResourceOp(resource=handle, ignore_lookup_error=False)
    with tf.control_dependencies([gone]):
      return tf.identity(read)
  return body


# Gathers ------------------------------------------------------------------------------


def _indices(dim, shape, index, bad):
  """Indices into a dim of size `dim` >= 1, out of range (both sides) when `bad`."""
  lo, hi = (-1, dim) if bad else (0, dim - 1)
  return cst.arrays(index, shape, min_value=lo, max_value=hi, edges=False)


def resource_gather_example(dtype):
  def for_shape(shape):
    def build(t):
      b, extra, index, bad = t
      ishape = shape[:b] + tuple(extra)
      return st.tuples(cst.arrays(dtype, shape), _indices(shape[b], ishape, index, bad)).map(
          lambda vi: Example({"indices": vi[1]}, {"batch_dims": b}, {"initial": vi[0]}))
    return st.tuples(st.integers(0, min(1, len(shape) - 1)),
                     st.lists(st.integers(0, 3), max_size=2), cst.index_dtypes(),
                     st.sampled_from([False, False, False, True])).flatmap(build)
  return cst.shapes(min_dims=1, max_dims=3, min_side=1, max_side=4).flatmap(for_shape)


def _gather_body(op):
  def build(example):
    tf = _tf()
    v = _variable(example)
    attrs = dict(example.attrs)
    return lambda indices: (getattr(tf.raw_ops, op)(resource=v.handle, indices=indices,
                                                    dtype=v.dtype, **attrs), v.read_value())
  return build


def resource_gather_nd_example(dtype):
  def for_shape(shape):
    return st.tuples(st.integers(1, len(shape)), cst.shapes(min_dims=1, max_dims=2, max_side=3),
                     cst.index_dtypes(), st.sampled_from([False, False, True])).flatmap(
        lambda t: st.tuples(cst.arrays(dtype, shape),
                            _nd_indices(shape, t[0], t[1], t[2], bad=t[3])).map(
            lambda vi: Example({"indices": vi[1]}, extra={"initial": vi[0]})))
  return cst.shapes(min_dims=1, max_dims=3, min_side=1, max_side=4).flatmap(for_shape)


# Scatters -----------------------------------------------------------------------------


def _divisors(dtype):
  """Integer divisors: not 0 (TF refuses it) nor -1 (INT_MIN / -1 traps in TF's kernel)."""
  return st.sampled_from([1, 2, 3] + ([-2, -3] if dtype in D.SIGNED_INT else []))


def _values(dtype, shape, kind=""):
  """No subnormals: TF's CPU kernels may flush them (max/min of bfloat16 did), and the
  harness cannot flush a variable's value as it does inputs. Complex values of mul/div
  are finite and moderate, as for the Mul and RealDiv specs (math_specs.py)."""
  if kind in ("mul", "div") and dtype in D.COMPLEX:
    return moderate_complex(dtype, shape, 50.0)
  return cst.arrays(dtype, shape, allow_subnormal=False)


def _updates(dtype, shape, kind):
  """Updates; ResourceScatterDiv's are mostly nonzero (TF refuses a 0)."""
  if kind != "div":
    return _values(dtype, shape, kind)
  if dtype in D.INT:
    size = math.prod(shape)
    return st.lists(_divisors(dtype), min_size=size, max_size=size).map(
        lambda xs: np.asarray(xs, dtype=D.np_dtype(dtype)).reshape(shape))
  one = D.np_dtype(dtype).type(1)
  nonzero = _values(dtype, shape, kind).map(lambda a: np.where(a == 0, one, a))
  return st.one_of(nonzero, nonzero, _values(dtype, shape, kind))


def resource_scatter_example(kind):
  """var[n, ...], indices of any shape (repeats included), updates of
  indices.shape + var.shape[1:] or a scalar."""
  def example(dtype):
    def for_shape(shape):
      def build(t):
        ishape, index, bad, scalar = t
        ushape = () if scalar else tuple(ishape) + shape[1:]
        return st.tuples(_values(dtype, shape, kind), _indices(shape[0], ishape, index, bad),
                         _updates(dtype, ushape, kind)).map(lambda viu: Example(
                             {"indices": viu[1], "updates": viu[2]},
                             extra={"initial": viu[0]}))
      return st.tuples(cst.shapes(max_dims=2, max_side=4), cst.index_dtypes(),
                       st.sampled_from([False, False, False, True]),
                       st.sampled_from([False, False, True])).flatmap(build)
    return cst.shapes(min_dims=1, max_dims=3, min_side=1, max_side=4).flatmap(for_shape)
  return example


def resource_scatter_nd_example(dtype):
  def for_shape(shape):
    def build(t):
      depth, outer, index, bad = t
      return st.tuples(_values(dtype, shape), _nd_indices(shape, depth, outer, index, bad),
                       _values(dtype, tuple(outer) + shape[depth:])).map(
          lambda viu: Example({"indices": viu[1], "updates": viu[2]},
                              extra={"initial": viu[0]}))
    return st.tuples(st.integers(1, len(shape)), cst.shapes(min_dims=1, max_dims=2, max_side=4),
                     cst.index_dtypes(), st.sampled_from([False, False, False, True])
                     ).flatmap(build)
  return cst.shapes(min_dims=1, max_dims=3, min_side=1, max_side=4).flatmap(for_shape)


def _scatter_body(op, resource="resource"):
  def build(example):
    tf = _tf()
    v = _variable(example)

    def body(indices, updates):
      getattr(tf.raw_ops, op)(**{resource: v.handle}, indices=indices, updates=updates)
      return v.read_value()
    return body
  return build


def _strided_example(dtype):
  return tensor_strided_slice_update_example(dtype).map(lambda ex: Example(
      {"value": ex.inputs["value"]}, ex.attrs,
      {"initial": ex.inputs["input"],
       **{k: ex.inputs[k] for k in ("begin", "end", "strides")}}))


def _strided_body(example):
  tf = _tf()
  v = _variable(example)
  spec = {k: tf.constant(example.extra[k]) for k in ("begin", "end", "strides")}

  def body(value):
    tf.raw_ops.ResourceStridedSliceAssign(ref=v.handle, value=value, **spec, **example.attrs)
    return v.read_value()
  return body


def _with_initial(tol):
  """A tolerance function that also counts the variable's initial value."""
  return lambda dtype, ex: tol(dtype, Example({**ex.inputs, "initial": ex.extra["initial"]}))


# TF1 reference variables ---------------------------------------------------------------


def _ref_body(op):
  """VariableV2 in a tf.function (TF runs it there; not eagerly): Assign the initial
  value, then `op` x, then read the variable back (control dependencies order them)."""
  def build(example):
    tf = _tf()
    init = example.extra["initial"]
    dtype = tf.as_dtype(init.dtype)
    name = f"conformance_ref_{next(_names)}"

    @tf.function(autograph=False)
    def body(x):
      v = tf.raw_ops.VariableV2(shape=init.shape, dtype=dtype, shared_name=name)
      first = tf.raw_ops.Assign(ref=v, value=tf.constant(init))
      with tf.control_dependencies([first]):
        out = getattr(tf.raw_ops, op)(ref=v, value=x)
      with tf.control_dependencies([out]):
        read = tf.identity(v)
      return tf.identity(out), read
    return body
  return build


def _assign_dtypes(op):
  return tuple(d for d in D.kernel_dtypes(op, "T") if d not in D.NOT_IN_JAX)


_NO_ASSIGN = {d: "TF has no Assign kernel for it on CPU, so no ref variable can hold one"
              for d in D.ALL if d not in _assign_dtypes("Assign")}
# A TF bug: an int32 ref in a tf.function fails when run ("has a HOST_MEMORY int32 output
# but does not have (TFT_SHAPE_TENSOR) full type information"). tests/test_tf1_variables.py
# checks int32 ref variables in a TF1 graph run by a Session.
_INT32_REF = {"int32": "TF cannot run an int32 ref variable in a tf.function (InternalError: "
                       "HOST_MEMORY int32 output without full type information); "
                       "tests/test_tf1_variables.py covers it in a TF1 graph"}
_TF1 = dict(variables=True, transforms=("jit", "x64"), tolerance=lambda d, ex: EXACT)
_SCATTER_NOTE = ("Repeated indices: add/sub/mul/div/min/max combine every update, in order "
                 "(mul and div one by one, as TF's CPU kernel: exact, integer division "
                 "truncates); update keeps the last one, which is TF's CPU order. Integer "
                 "divisors are nonzero and not -1 (TF's kernel traps on them). Complex "
                 "values of mul/div are finite, parts 0 or of magnitude in [1e-3, 50] "
                 "(Eigen and XLA differ at special values, see math_specs.py).")
_UNSUPPORTED = ("TF's CPU kernel is registered for it but refuses it when run "
                "(\"Unsupported data type\")")


def specs() -> list[OpSpec]:
  out = [
      OpSpec("CheckNumerics", check_numerics_example,
             notes="NaN or infinities raise, in TF and in the conversion (known values)."),
      OpSpec("CheckNumericsV2", check_numerics_example,
             notes="NaN or infinities raise, in TF and in the conversion (known values)."),
      OpSpec("Assert", assert_example, dtype_attr=None,
             dtypes=("bool", "int32", "float32", "bfloat16"), build=_assert_body,
             notes="A failing condition raises in TF and in the conversion (known values); "
                   "traced ones are dropped unless enable_checkify_for_asserts is on. "
                   "The cases name the data's dtype."),
      OpSpec("PrintV2", print_example, dtype_attr=None, dtypes=("float32",),
             build=_print_body, notes="Prints nothing in the conversion."),
      OpSpec("GuaranteeConst", lambda d: cst.arrays(d, cst.shapes()).map(
          lambda x: Example({"input": x})), dtypes=D.ALL,
             transforms=("jit", "static", "x64", "vmap"),
             notes="No grad: TF registers no gradient for GuaranteeConst."),
      OpSpec("VarIsInitializedOp", _with_initialized(variable_example), dtype_attr=None,
             dtypes=("float32", "int64", "bool"), build=_is_initialized_body,
             notes="A tf.Variable and a handle made in the function, assigned or not. The "
                   "cases name the variables' dtype.", **_VAR),
      OpSpec("VariableShape", variable_shape_example, dtype_attr="out_type",
             build=_variable_shape_body, **_VAR),
      OpSpec("DestroyResourceOp", variable_example, dtype_attr=None, dtypes=("float32",),
             build=_destroy_body, notes="A no-op in the conversion.", **_VAR),
      OpSpec("ResourceGather", resource_gather_example, dtype_attr="dtype",
             build=_gather_body("ResourceGather"), notes=(
                 "batch_dims 0 or 1. With batch_dims, an index outside [0, dim) reads a "
                 "neighbouring batch's row while the flat index is in range, as TF's "
                 "kernel does."), **_VAR),
      OpSpec("ResourceGatherNd", resource_gather_nd_example, dtype_attr="dtype",
             build=_gather_body("ResourceGatherNd"), **_VAR),
      OpSpec("ResourceStridedSliceAssign", _strided_example, build=_strided_body,
             skip_dtypes={d: _UNSUPPORTED for d in ("float8_e5m2", "float8_e4m3fn")},
             notes="begin/end/strides constants of the graph; the value broadcasts.",
             **_VAR),
  ]
  for name in ("Add", "Sub", "Mul", "Div", "Min", "Max", "Update"):
    kind = name.lower()
    tol = _with_initial(_sum_tol) if kind in ("add", "sub") else (lambda d, ex: EXACT)
    if kind in ("mul", "div"):
      tol = None
    out.append(OpSpec(f"ResourceScatter{name}", resource_scatter_example(kind),
                      dtype_attr="dtype", build=_scatter_body(f"ResourceScatter{name}"),
                      notes=_SCATTER_NOTE, **{**_VAR, "tolerance": tol}))
  for name in ("Add", "Sub", "Update", "Min", "Max"):
    kind = name.lower()
    tol = _with_initial(_sum_tol) if kind in ("add", "sub") else (lambda d, ex: EXACT)
    out.append(OpSpec(f"ResourceScatterNd{name}", resource_scatter_nd_example,
                      build=_scatter_body(f"ResourceScatterNd{name}", "ref"),
                      notes=_SCATTER_NOTE, **{**_VAR, "tolerance": tol}))
  ref_notes = ("A VariableV2 in a tf.function (TF runs it there), given its initial value "
               "by an Assign, then {op} x, then read back through an Identity ordered "
               "after it.")
  out += [
      OpSpec("VariableV2", variable_example, dtype_attr="dtype",
             dtypes=tuple(d for d in _assign_dtypes("Assign") if d != "int32"),
             skip_dtypes={**_NO_ASSIGN, **_INT32_REF},
             build=_ref_body("Assign"), notes=ref_notes.format(op="Assign"), **_TF1),
      OpSpec("Assign", variable_example, build=_ref_body("Assign"),
             skip_dtypes=_INT32_REF,
             contains=("Assign", "VariableV2"), notes=ref_notes.format(op="Assign"), **_TF1),
      OpSpec("AssignAdd", variable_example, build=_ref_body("AssignAdd"),
             skip_dtypes=_INT32_REF,
             notes=ref_notes.format(op="AssignAdd"), **_TF1),
      OpSpec("AssignSub", variable_example, build=_ref_body("AssignSub"),
             skip_dtypes=_INT32_REF,
             notes=ref_notes.format(op="AssignSub"), **_TF1),
  ]
  return out
