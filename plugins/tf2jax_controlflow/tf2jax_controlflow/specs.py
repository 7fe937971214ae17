"""Conformance specs of tf2jax-controlflow's If and StatelessIf.

Each builds `tf.raw_ops.If` / `StatelessIf` with two small branch functions; the cases
cover every predicate dtype (TF's truth rule: non-zero scalars, non-empty tensors).
A test dependency: only the plugin's `tf2jax_conformance_specs` hook imports this module.
"""

from __future__ import annotations

from hypothesis import strategies as st

from tf2jax_conformance import dtypes as D
from tf2jax_conformance import strategies as cst
from tf2jax_conformance.spec import Example, OpSpec

# Predicates of every dtype TF holds in a graph (float8 *fnuz: TF cannot trace them).
PRED_DTYPES = tuple(d for d in D.ALL if d not in D.NO_GRAPH_CONSTANT)
# The dtypes of the scalar predicates TF's If kernel takes; a scalar of another dtype makes
# TF abort the process (a Check failure in IfOp::ComputeAsync), so those dtypes are
# covered with non-scalar predicates only (TF: true when non-empty).
SCALAR_PRED_DTYPES = ("bool", "float32", "float64", "int8", "int16", "int32", "int64",
                      "uint8")


def _if_example(dtype):
  if dtype == "bool":
    pred_shapes = st.just(())  # the grad case: TF's If gradient needs a scalar predicate
  elif dtype in SCALAR_PRED_DTYPES:
    pred_shapes = st.one_of(st.just(()), cst.shapes(max_dims=2, max_side=2))
  else:
    pred_shapes = cst.shapes(min_dims=1, max_dims=2, max_side=2)

  def for_shape(shape):
    return st.tuples(
        cst.arrays(dtype, pred_shapes),
        cst.arrays("float32", shape), cst.arrays("float32", shape)).map(
            lambda t: Example({"cond": t[0], "x": t[1], "y": t[2]}))
  return cst.shapes(max_dims=2).flatmap(for_shape)


def _if_body(op: str):
  def build(example):
    import tensorflow as tf
    x = example.inputs["x"]
    spec = tf.TensorSpec(x.shape, tf.float32)

    @tf.function(autograph=False)
    def then_branch(a, b):
      return tf.sin(a) * 2.0, a * b

    @tf.function(autograph=False)
    def else_branch(a, b):
      return a - b, tf.exp(b)

    then_cf = then_branch.get_concrete_function(spec, spec)
    else_cf = else_branch.get_concrete_function(spec, spec)
    call = getattr(tf.raw_ops, op)
    return lambda cond, a, b: call(cond=cond, input=[a, b], Tout=[tf.float32, tf.float32],
                                   then_branch=then_cf, else_branch=else_cf)
  return build


_NOTES = ("Predicates of every dtype, scalar and not (TF: non-zero scalars and non-empty "
          "tensors are true); scalar predicates only of the dtypes TF's If kernel takes "
          "(others abort TF). Both branches compute float32 values. grad: scalar bool "
          "predicates only (TF's If gradient builds a Switch that refuses other predicates), "
          "TF's gradients taken in a tf.function (its If gradient needs a graph).")


def specs() -> list[OpSpec]:
  common = dict(dtype_attr="Tcond", dtypes=PRED_DTYPES, grad_dtypes=("bool",),
                tf_graph_grad=True,
                grad_inputs=("x", "y"), notes=_NOTES,
                skip_dtypes={d: "TF cannot trace a graph holding it (no TensorProto type)"
                             for d in D.NO_GRAPH_CONSTANT})
  return [
      OpSpec("If", _if_example, build=_if_body("If"), **common),
      OpSpec("StatelessIf", _if_example, build=_if_body("StatelessIf"), **common),
  ]
