"""Conformance specs of tf2jax-controlflow's functional control flow: If / StatelessIf,
Case / StatelessCase and While / StatelessWhile (the TensorList ops are in
`tensor_list_specs`, the TF1 control flow in `tf1_specs`).

Each builds the raw op (`tf.raw_ops.If`, ...) with small branch / cond / body functions
(concrete functions of `tf.function(autograph=False)`), so that eager TF runs the op's
own kernel. If covers every predicate dtype (TF's truth rule: non-zero scalars,
non-empty tensors); Case and While every dtype of the values they carry.
A test dependency: only the plugin's `tf2jax_conformance_specs` hook imports this module.
"""

from __future__ import annotations

import numpy as np
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
  from tf2jax_controlflow import tensor_array_specs, tensor_list_specs, tf1_specs
  return (_if_specs() + _case_specs() + _while_specs() + tensor_list_specs.specs()
          + tf1_specs.specs() + tensor_array_specs.specs())


def _if_specs() -> list[OpSpec]:
  common = dict(dtype_attr="Tcond", dtypes=PRED_DTYPES, grad_dtypes=("bool",),
                tf_graph_grad=True,
                grad_inputs=("x", "y"), notes=_NOTES,
                skip_dtypes={d: "TF cannot trace a graph holding it (no TensorProto type)"
                             for d in D.NO_GRAPH_CONSTANT})
  return [
      OpSpec("If", _if_example, build=_if_body("If"), **common),
      OpSpec("StatelessIf", _if_example, build=_if_body("StatelessIf"), **common),
  ]


# Case and While ---------------------------------------------------------------------------
# The values they carry: every dtype TF holds in a graph. Branches and loop bodies compute
# with them where TF has kernels (AddV2 for the numbers, logical ops for bool) and only
# move them around otherwise (float8, float4, int4, int2 have no arithmetic kernels).

_NO_GRAPH = {d: "TF cannot trace a graph holding it (no TensorProto type)"
             for d in D.NO_GRAPH_CONSTANT}


def _combine(dtype):
  """`f(a, b)`: a value computed from two of the carried values."""
  import tensorflow as tf
  if dtype in D.NUMBER:
    return lambda a, b: a + b
  if dtype == "bool":
    return tf.math.logical_xor
  return lambda a, b: a  # no arithmetic kernel: data movement only


def _as_float_outputs(outs, dtype):
  """For the grad cases (float dtypes, whose check takes every output) the integer
  outputs (counters, indices) cast to the case dtype: small counts, exact."""
  import tensorflow as tf
  if dtype not in D.FLOAT:
    return outs
  return [o if o.dtype.is_floating else tf.cast(o, tf.as_dtype(D.np_dtype(dtype)))
          for o in outs]


def _carried(dtype):
  """Two values of `dtype` and one shape."""
  return cst.shapes(max_dims=2, max_side=3).flatmap(
      lambda shape: st.tuples(cst.arrays(dtype, shape), cst.arrays(dtype, shape)))


def _case_example(dtype):
  def more(t):
    x, y, branches = t
    # sampled_from: its first option is what the first (simplest) example draws.
    return st.tuples(st.integers(-2, branches + 1), st.sampled_from([False, True])).map(
        lambda u: Example({"branch_index": np.int32(u[0]), "x": x, "y": y} if not u[1]
                          else {"x": x, "y": y},
                          extra={"branches": branches, "static_index": u[1],
                                 "index": u[0]}))
  return st.tuples(_carried(dtype), st.sampled_from([3, 1, 2, 4])).map(
      lambda t: (t[0][0], t[0][1], t[1])).flatmap(more)


def _case_body(op: str):
  def build(example):
    import tensorflow as tf
    x = example.inputs["x"]
    dtype = D.name_of(x.dtype)
    spec = tf.TensorSpec(x.shape, tf.as_dtype(x.dtype))
    f = _combine(dtype)
    # Branch k returns a different mix of the two values (and the branch number, so
    # that which branch ran is visible whatever the values).
    mixes = [lambda a, b: (f(a, b), b), lambda a, b: (b, a), lambda a, b: (a, f(b, b)),
             lambda a, b: (f(b, a), f(a, a))]
    branches = []
    for k in range(example.extra["branches"]):
      def branch(a, b, k=k):
        return mixes[k](a, b) + (tf.constant(k, tf.int32),)
      branches.append(tf.function(branch, autograph=False).get_concrete_function(spec, spec))
    call = getattr(tf.raw_ops, op)
    tout = [tf.as_dtype(x.dtype), tf.as_dtype(x.dtype), tf.int32]

    def fn(*args):
      if example.extra["static_index"]:
        index, (a, b) = tf.constant(example.extra["index"], tf.int32), args
      else:
        index, a, b = args
      return _as_float_outputs(call(branch_index=index, input=[a, b], Tout=tout,
                                    branches=branches), dtype)
    return fn
  return build


_CASE_NOTES = ("1 to 4 branches, a branch index from -2 to branches + 1 (TF runs the last "
               "branch for an index out of range), traced or a constant of the graph "
               "(the lowering then calls the branch directly); each branch returns its "
               "number besides the values. Values of every dtype: branches add them (logical "
               "xor for bool) where TF has the kernel, else swap them. grad: TF's gradients "
               "taken in a tf.function (its Case gradient needs a graph); the branch "
               "number, cast to the float dtype, is an output too.")


# Case and While carry values of any dtype into lax.switch / lax.while_loop, as If does
# into lax.cond (whose spec covers every dtype): they cover a sample of every kind (bool,
# unsigned, 64-bit, float16, ml_dtypes floats, complex, float8, int4), their Stateless
# twins, which share their lowerings, a smaller one; to keep the ci profile cheap.
_WIDE_SAMPLE = ("bool", "uint8", "int64", "float16", "bfloat16", "float32", "complex128",
                "float8_e4m3fn", "int4")
_SAMPLE = ("bool", "int64", "float32")


def _sampled_out(sample, why) -> dict[str, str]:
  out = {d: f"{why}: this op covers {', '.join(sample)} (to keep the ci profile cheap)"
         for d in PRED_DTYPES if d not in sample}
  return {**out, **_NO_GRAPH}


def _case_specs() -> list[OpSpec]:
  common = dict(dtype_attr="Tin", tf_graph_grad=True, grad_inputs=("x", "y"),
                notes=_CASE_NOTES)
  why = "lax.switch carries values of any dtype (If's spec covers every dtype in lax.cond)"
  return [OpSpec("Case", _case_example, build=_case_body("Case"), dtypes=_WIDE_SAMPLE,
                 skip_dtypes=_sampled_out(_WIDE_SAMPLE, why), **common),
          OpSpec("StatelessCase", _case_example, build=_case_body("StatelessCase"),
                 dtypes=_SAMPLE, skip_dtypes=_sampled_out(_SAMPLE, "the lowering is "
                                                         "Case's"), **common)]


def _while_example(dtype):
  def more(t):
    x, y = t
    # sampled_from: its first option is what the first (simplest) example draws.
    return st.tuples(st.sampled_from([3, 0, 1, 2, 4, -1]), st.sampled_from([True, False]),
                     st.integers(0, 255)).map(
        lambda u: Example({"n": np.int32(u[0]), "x": x, "y": y} if not u[1]
                          else {"x": x, "y": y},
                          extra={"n": u[0], "static_n": u[1], "k": u[2]}))
  return _carried(dtype).flatmap(more)


def _while_body(op: str):
  def build(example):
    import tensorflow as tf
    x = example.inputs["x"]
    dtype = D.name_of(x.dtype)
    spec = tf.TensorSpec(x.shape, tf.as_dtype(x.dtype))
    i_spec, k_spec = tf.TensorSpec([], tf.int32), tf.TensorSpec([], tf.uint8)
    f = _combine(dtype)

    # Loop variables: a counter, its limit (invariant), a uint8 that changes (and wraps)
    # every iteration, and the two values (x, y) -> (y, f(x, y)).
    def cond(i, n, k, a, b):
      return i < n

    def body(i, n, k, a, b):
      return i + 1, n, k * 3 + 1, b, f(a, b)

    specs = (i_spec, i_spec, k_spec, spec, spec)
    cond_cf = tf.function(cond, autograph=False).get_concrete_function(*specs)
    body_cf = tf.function(body, autograph=False).get_concrete_function(*specs)
    call = getattr(tf.raw_ops, op)
    static_n = example.extra["static_n"]

    def fn(*args):
      if static_n:
        n, (a, b) = tf.constant(example.extra["n"], tf.int32), args
      else:
        n, a, b = args
        if dtype in D.FLOAT:
          # JAX cannot reverse-differentiate a loop whose trip count is only known at
          # run time (lax.while_loop): the grad cases check that path forward only.
          a, b = tf.stop_gradient(a), tf.stop_gradient(b)
      k = tf.constant(example.extra["k"], tf.uint8)
      outs = call(input=[tf.constant(0, tf.int32), n, k, a, b], cond=cond_cf,
                  body=body_cf)
      return _as_float_outputs(outs, dtype)
    return fn
  return build


_WHILE_NOTES = ("Loop variables of several dtypes: an int32 counter and its limit, a uint8 "
                "changed (wrapping) every iteration, and two values of the case dtype, (x, y) -> "
                "(y, x + y) (logical xor for bool; for dtypes without an AddV2 kernel "
                "(float8, float4, int4, int2) (y, x)). -1 to 4 iterations; the limit "
                "traced (lax.while_loop) or a constant of the graph (the lowering counts "
                "the iterations at trace time: lax.fori_loop, which JAX can reverse-"
                "differentiate). grad: TF's gradients taken in a tf.function (its While "
                "gradient needs a graph), through loops of constant trip count; with a "
                "traced limit the values go through StopGradient first, since JAX cannot "
                "reverse-differentiate lax.while_loop (tf2jax's documented limitation).")


def _while_specs() -> list[OpSpec]:
  common = dict(dtype_attr="T", tf_graph_grad=True, grad_inputs=("x", "y"),
                notes=_WHILE_NOTES)
  why = ("lax.while_loop / fori_loop carry values of any dtype (If's spec covers every "
         "dtype in lax.cond)")
  return [OpSpec("While", _while_example, build=_while_body("While"), dtypes=_WIDE_SAMPLE,
                 skip_dtypes=_sampled_out(_WIDE_SAMPLE, why), **common),
          OpSpec("StatelessWhile", _while_example, build=_while_body("StatelessWhile"),
                 dtypes=_SAMPLE, skip_dtypes=_sampled_out(_SAMPLE, "the lowering is "
                                                          "While's"), **common)]
