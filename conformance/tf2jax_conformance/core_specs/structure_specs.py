"""Specs of graph structure: placeholders, constants, identities, gradient barriers,
function calls and variables. Most build a small tf.function containing the op."""

from __future__ import annotations

import itertools

from hypothesis import strategies as st

from tf2jax_conformance import dtypes as D
from tf2jax_conformance import strategies as cst
from tf2jax_conformance.spec import EXACT, Example, OpSpec

_names = itertools.count()


def _tf():
  import tensorflow as tf
  return tf


def _tf_dtype(name):
  return _tf().as_dtype(D.np_dtype(name))


def input_example(name: str = "input"):
  def example(dtype):
    return cst.arrays(dtype, cst.shapes()).map(lambda x: Example({name: x}))
  return example


# Placeholders and constants ---------------------------------------------------------


def _identity_body(example):
  return lambda x: _tf().identity(x)


def placeholder_with_default_example(dtype):
  def for_input(x):
    dims = st.lists(st.booleans(), min_size=x.ndim, max_size=x.ndim).map(
        lambda known: [d if k else None for d, k in zip(x.shape, known)])
    shape = st.one_of(dims, st.just(None))  # None: unknown rank
    return shape.map(lambda s: Example({"input": x}, extra={"shape": s}))
  return cst.arrays(dtype, cst.shapes()).flatmap(for_input)


def _placeholder_with_default_body(example):
  tf = _tf()
  shape = tf.TensorShape(example.extra["shape"])
  return lambda x: tf.raw_ops.PlaceholderWithDefault(input=x, shape=shape)


def ensure_shape_example(dtype):
  """An expected shape compatible with the input (dims kept or unknown), or now and then
  not (a dim changed, or a rank added). No unknown rank: TF's shape function rejects it
  when the op is traced into a graph."""
  def for_input(x):
    dims = st.lists(st.booleans(), min_size=x.ndim, max_size=x.ndim).map(
        lambda known: [d if k else None for d, k in zip(x.shape, known)])
    wrong = st.one_of(
        st.just(list(x.shape) + [1]),
        st.integers(0, max(x.ndim - 1, 0)).map(
            lambda i: [d + 1 if j == i else d for j, d in enumerate(x.shape)] or [2]))
    shape = st.one_of(dims, dims, dims, wrong)
    return shape.map(lambda s: Example({"input": x}, extra={"shape": s}))
  return cst.arrays(dtype, cst.shapes()).flatmap(for_input)


def _ensure_shape_body(example):
  tf = _tf()
  shape = tf.TensorShape(example.extra["shape"])
  return lambda x: tf.raw_ops.EnsureShape(input=x, shape=shape)


def const_example(dtype):
  return cst.arrays(dtype, cst.shapes()).map(lambda v: Example({}, extra={"value": v}))


def _const_body(example):
  value = example.extra["value"]
  return lambda: _tf().constant(value)


def identity_n_example(dtype):
  return st.lists(cst.arrays(dtype, cst.shapes()), min_size=1, max_size=3).map(
      lambda xs: Example({"input": xs}))


def prevent_gradient_example(dtype):
  return st.tuples(cst.arrays(dtype, cst.shapes()), st.sampled_from(["", "no grad here"])).map(
      lambda t: Example({"input": t[0]}, {"message": t[1]}))


def _no_op_body(example):
  tf = _tf()

  def body(x):
    with tf.control_dependencies([tf.raw_ops.NoOp()]):
      return tf.identity(x)
  return body


# Calls ------------------------------------------------------------------------------


def call_example(dtype):
  return st.tuples(cst.arrays(dtype, cst.shapes()), cst.arrays(dtype, cst.shapes())).map(
      lambda xy: Example({"args": list(xy)}))


def _callee(example):
  tf = _tf()
  x, y = example.inputs["args"]

  @tf.function(autograph=False)
  def callee(a, b):
    return tf.reshape(b, [-1]), tf.identity(a)
  return callee.get_concrete_function(tf.TensorSpec(x.shape, tf.as_dtype(x.dtype)),
                                      tf.TensorSpec(y.shape, tf.as_dtype(y.dtype)))


def _partitioned_call_body(example):
  # Calling a concrete function traces to PartitionedCall, and TF differentiates it.
  concrete = _callee(example)
  return lambda a, b: concrete(a, b)


def _stateful_partitioned_call_body(example):
  tf = _tf()
  concrete = _callee(example)
  x, y = example.inputs["args"]
  tout = [tf.as_dtype(y.dtype), tf.as_dtype(x.dtype)]
  return lambda a, b: tf.raw_ops.StatefulPartitionedCall(args=[a, b], Tout=tout, f=concrete)


# Variables --------------------------------------------------------------------------


def variable_example(dtype):
  def for_shape(shape):
    return st.tuples(cst.arrays(dtype, shape), cst.arrays(dtype, shape)).map(
        lambda t: Example({"value": t[1]}, extra={"initial": t[0]}))
  return cst.shapes().flatmap(for_shape)


def _variable(example):
  init = example.extra["initial"]
  return _tf().Variable(init, name=f"conformance_var_{next(_names)}")


def _read_body(example):
  v = _variable(example)
  return lambda x: (v.read_value(), x)


def _assign_body(method: str):
  def build(example):
    v = _variable(example)

    def body(x):
      getattr(v, method)(x, read_value=False)
      return v.read_value()
    return body
  return build


def _var_handle_body(example):
  tf = _tf()
  name = f"conformance_handle_{next(_names)}"
  value = example.inputs["value"]

  def body(x):
    handle = tf.raw_ops.VarHandleOp(dtype=tf.as_dtype(value.dtype), shape=value.shape,
                                    shared_name=name)
    tf.raw_ops.AssignVariableOp(resource=handle, value=x)
    return tf.raw_ops.ReadVariableOp(resource=handle, dtype=tf.as_dtype(value.dtype))
  return body


_NO_CONST = {d: "TF cannot put it in a graph: TensorProto has no such element type"
             for d in D.NO_GRAPH_CONSTANT}
CONST_DTYPES = tuple(d for d in D.ALL if d not in _NO_CONST)
_NO_VARIABLE = ("TF has no AssignVariableOp kernel for it on CPU, so no variable can hold "
                "one")
_FNUZ = {d: _NO_VARIABLE for d in ("float8_e4m3fnuz", "float8_e4m3b11fnuz",
                                   "float8_e5m2fnuz")}
VARIABLE_DTYPES = tuple(d for d in D.ALL if d not in _FNUZ)
_VAR = dict(variables=True, transforms=("jit", "x64"), tolerance=lambda d, ex: EXACT)

SPECS = [
    OpSpec("Placeholder", input_example(), dtype_attr="dtype", dtypes=D.ALL,
           build=_identity_body),
    OpSpec("PlaceholderWithDefault", placeholder_with_default_example, dtype_attr="dtype",
           dtypes=D.ALL, build=_placeholder_with_default_body),
    OpSpec("EnsureShape", ensure_shape_example, dtypes=D.ALL, build=_ensure_shape_body,
           notes="Compatible expected shapes (known and unknown dims) pass the "
                 "value through; incompatible ones raise in TF and in the conversion."),
    OpSpec("Const", const_example, dtype_attr="dtype", dtypes=CONST_DTYPES,
           skip_dtypes=_NO_CONST, build=_const_body, transforms=("jit", "x64")),
    OpSpec("Identity", input_example(), dtypes=D.ALL),
    OpSpec("Snapshot", input_example(), transforms=("jit", "static", "x64", "vmap"),
           notes="No grad: TF registers no gradient for Snapshot."),
    OpSpec("IdentityN", identity_n_example, kernel_device="DEFAULT", dtypes=D.ALL),
    OpSpec("StopGradient", input_example(), dtypes=D.ALL),
    OpSpec("PreventGradient", prevent_gradient_example, dtypes=D.ALL,
           notes="grad: TF raises LookupError, so must the converted function."),
    OpSpec("NoOp", input_example("x"), dtype_attr=None, dtypes=("float32",),
           build=_no_op_body),
    OpSpec("PartitionedCall", call_example, dtype_attr="Tin", dtypes=D.ALL,
           build=_partitioned_call_body),
    OpSpec("StatefulPartitionedCall", call_example, dtype_attr="Tin", dtypes=D.ALL,
           build=_stateful_partitioned_call_body, transforms=("jit", "static", "x64", "vmap"),
           notes="No grad: TF has no gradient for a StatefulPartitionedCall op run eagerly "
                 "(the PartitionedCall spec checks gradients through calls)."),
    OpSpec("ReadVariableOp", variable_example, dtype_attr="dtype", dtypes=VARIABLE_DTYPES,
           skip_dtypes=_FNUZ, build=_read_body, **_VAR),
    OpSpec("AssignVariableOp", variable_example, dtype_attr="dtype", dtypes=VARIABLE_DTYPES,
           build=_assign_body("assign"), **_VAR),
    OpSpec("AssignAddVariableOp", variable_example, dtype_attr="dtype",
           build=_assign_body("assign_add"), **_VAR),
    OpSpec("AssignSubVariableOp", variable_example, dtype_attr="dtype",
           build=_assign_body("assign_sub"), **_VAR),
    OpSpec("VarHandleOp", variable_example, dtype_attr="dtype", dtypes=VARIABLE_DTYPES,
           skip_dtypes=_FNUZ, build=_var_handle_body, **_VAR),
]
