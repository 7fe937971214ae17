"""Conformance specs of tf2jax-controlflow's TF1 control flow: Switch, Merge, Enter, Exit,
NextIteration, LoopCond, _SwitchN, ControlTrigger, the Ref* variants, and the structured
nodes the plugin's graph rewrite makes of them (_Tf1Cond, _Tf1While).

TF2's tf.function only builds functional control flow (If, While), so these specs use
the harness's `tf1_graph` option: `tf.compat.v1.cond` / `while_loop` (control flow v2 off)
or raw `_SwitchN` / `Merge` ops in a tf.compat.v1 Graph, TF's result from a Session run
of its GraphDef, which tf2jax converts with `tf2jax.convert_graph_def` (a frozen model).

_Tf1Cond and _Tf1While are no TF op types: no graph holds them, the rewrite makes them
of Switch/Merge conds and Enter/Exit loop frames. Their specs are the graphs those come
from (`contains` names the TF ops), with the rewrite's harder cases: several outputs,
nested conds and loops, values captured from outside, maximum_iterations.
A test dependency: only the plugin's `tf2jax_conformance_specs` hook imports this module.
"""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

from tf2jax_conformance import dtypes as D
from tf2jax_conformance import strategies as cst
from tf2jax_conformance.spec import Example, OpSpec

# The dtypes TF's CPU kernels of Switch, _SwitchN (and the DEFAULT-device kernels of
# Merge, Enter, Exit, NextIteration) take, less those no JAX array holds.
FRAME_DTYPES = ("bool",) + D.FLOAT + D.COMPLEX + D.INT
# The rewrite moves values into lax.cond / lax.while_loop (the If and While lowerings,
# whose specs cover every dtype) whatever their dtype: Switch and Enter cover a wider
# sample, the other ops bool, int64 and float32, to keep the ci profile cheap.
WIDE_SAMPLE = ("bool", "int64", "bfloat16", "float32", "complex128")
SAMPLE = ("bool", "int64", "float32")


def _sampled_out(sample):
  return {d: "the rewrite hands values of any dtype to the If / While lowerings (whose "
             "specs cover every dtype); this op covers " + ", ".join(sample) + " (to keep "
             "the ci profile cheap)" for d in FRAME_DTYPES if d not in sample}


def _tf():
  import tensorflow as tf
  return tf


def _combine(dtype):
  from tf2jax_controlflow.specs import _combine as combine
  return combine(dtype)


def _as_float_outputs(outs, dtype):
  from tf2jax_controlflow.specs import _as_float_outputs as as_float
  return as_float(list(outs), dtype)


def _carried(dtype):
  """Two values of `dtype` of one shape (first example: shape [2])."""
  return st.one_of(st.just((2,)), cst.shapes(max_dims=2, max_side=3)).flatmap(
      lambda shape: st.tuples(cst.arrays(dtype, shape), cst.arrays(dtype, shape)))


def _inputs(control_name, control, static, x, y):
  """The example's inputs: the control value (predicate, index, limit) is an input
  unless it is a constant of the graph (`static`)."""
  return {"x": x, "y": y} if static else {control_name: control, "x": x, "y": y}


# Conds: tf.compat.v1.cond (Switch / Merge) ---------------------------------------------


def _cond_example(dtype):
  def more(t):
    x, y = t
    return st.tuples(st.booleans(), st.booleans(), st.sampled_from([False, True]),
                     st.sampled_from(["plain", "nested", "constant"])).map(
        lambda u: Example(dict(_inputs("pred", np.bool_(u[0]), u[2], x, y),
                               **({"inner": np.bool_(u[1])} if u[3] == "nested" else {})),
                          extra={"pred": u[0], "static": u[2], "shape": u[3]}))
  return _carried(dtype).flatmap(more)


def _cond_build(example):
  tf = _tf()
  v1 = tf.compat.v1
  e = example.extra
  dtype = D.name_of(example.inputs["x"].dtype)
  f = _combine(dtype)

  def fn(*args):
    if e["static"]:
      pred, args = tf.constant(e["pred"]), list(args)
    else:
      pred, *args = args
    x, y = args[0], args[1]
    if e["shape"] == "nested":  # a cond inside the true branch, on another predicate
      inner = args[2]
      then = lambda: v1.cond(inner, lambda: (f(x, y), y), lambda: (x, x))  # noqa: E731
    elif e["shape"] == "constant":  # a constant made in the branch (pinned to its pivot)
      zeros = np.zeros(x.shape, x.dtype.as_numpy_dtype)
      then = lambda: (f(x, y), tf.constant(zeros))  # noqa: E731
    else:
      then = lambda: (f(x, y), y)  # noqa: E731
    a, b = v1.cond(pred, then, lambda: (y, x))
    return _as_float_outputs([a, b], dtype)
  return fn


# Loops: tf.compat.v1.while_loop (Enter / Merge / Switch / LoopCond / NextIteration / Exit)


def _loop_example(dtype):
  def more(t):
    x, y = t
    return st.tuples(st.sampled_from([3, 0, 1, 2, 4, -1]), st.sampled_from([True, False]),
                     st.integers(0, 255)).map(
        lambda u: Example(_inputs("n", np.int32(u[0]), u[1], x, y),
                          extra={"n": u[0], "static": u[1], "k": u[2]}))
  return _carried(dtype).flatmap(more)


def _loop_build(example):
  tf = _tf()
  v1 = tf.compat.v1
  e = example.extra
  dtype = D.name_of(example.inputs["x"].dtype)
  f = _combine(dtype)

  def fn(*args):
    if e["static"]:
      n, (x, y) = tf.constant(e["n"], tf.int32), args
    else:
      n, x, y = args
      if dtype in D.FLOAT:
        # JAX cannot reverse-differentiate a loop whose trip count is only known at run
        # time (lax.while_loop): the grad cases check that path forward only.
        x, y = tf.stop_gradient(x), tf.stop_gradient(y)
    k = tf.constant(e["k"], tf.uint8)
    # Loop variables of several dtypes: an int32 counter, a uint8 changed (and wrapping)
    # every iteration, the two values (x, y) -> (y, f(x, y)); the limit n is captured
    # (an invariant Enter).
    i, k, a, b = v1.while_loop(lambda i, k, a, b: i < n,
                               lambda i, k, a, b: (i + 1, k * 3 + 1, b, f(a, b)),
                               [tf.constant(0), k, x, y])
    return _as_float_outputs([a, b, i, k], dtype)
  return fn


# _SwitchN (TF's lowering of Case) ---------------------------------------------------------


def _switch_n_example(dtype):
  def more(t):
    x, y, ways = t
    return st.tuples(st.integers(-2, ways + 1), st.sampled_from([False, True])).map(
        lambda u: Example(_inputs("output_index", np.int32(u[0]), u[1], x, y),
                          extra={"ways": ways, "index": u[0], "static": u[1]}))
  return st.tuples(_carried(dtype), st.sampled_from([3, 2, 4])).map(
      lambda t: (t[0][0], t[0][1], t[1])).flatmap(more)


def _switch_n_build(example):
  tf = _tf()
  e = example.extra
  dtype = D.name_of(example.inputs["x"].dtype)
  f = _combine(dtype)
  ways = e["ways"]
  mixes = [lambda a, b: (f(a, b), b), lambda a, b: (b, a), lambda a, b: (a, f(b, b)),
           lambda a, b: (f(b, a), f(a, a))]

  def fn(*args):
    if e["static"]:
      index, (x, y) = tf.constant(e["index"], tf.int32), args
    else:
      index, x, y = args
    graph = tf.compat.v1.get_default_graph()

    def switch(value, name):
      return graph.create_op(
          "_SwitchN", [value, index], [value.dtype] * ways, name=name,
          attrs={"num_outs": tf.compat.v1.AttrValue(i=ways),
                 "T": tf.compat.v1.AttrValue(type=value.dtype.as_datatype_enum)}).outputs
    xs, ys = switch(x, "switch_x"), switch(y, "switch_y")
    branches = [mixes[k](xs[k], ys[k]) for k in range(ways)]
    a, a_index = tf.raw_ops.Merge(inputs=[br[0] for br in branches])
    b, _ = tf.raw_ops.Merge(inputs=[br[1] for br in branches])
    return _as_float_outputs([a, b, a_index], dtype)
  return fn


# The structured nodes of the rewrite ------------------------------------------------------


def _tf1_cond_example(dtype):
  def more(t):
    x, y = t
    return st.tuples(st.booleans(), st.booleans(),
                     st.sampled_from(["nested", "in_loop", "shared_pred"])).map(
        lambda u: Example({"p": np.bool_(u[0]), "q": np.bool_(u[1]), "x": x, "y": y},
                          extra={"shape": u[2]}))
  return _carried(dtype).flatmap(more)


def _tf1_cond_build(example):
  tf = _tf()
  v1 = tf.compat.v1
  e = example.extra
  dtype = D.name_of(example.inputs["x"].dtype)
  f = _combine(dtype)

  def fn(p, q, x, y):
    if e["shape"] == "nested":
      # Three outputs, one passed through, one computed in both branches; a cond in
      # each branch on the other predicate, one of them reading an outer value.
      a, b, c = v1.cond(
          p, lambda: (f(x, y),) + tuple(v1.cond(q, lambda: (y, x), lambda: (x, f(y, y)))),
          lambda: (y,) + tuple(v1.cond(q, lambda: (f(y, x), y), lambda: (x, x))))
      outs = [a, b, c]
    elif e["shape"] == "in_loop":  # a cond inside a loop body, on a loop value
      def body(i, a, b):
        a2, b2 = v1.cond(tf.math.logical_xor(p, i < 1), lambda: (f(a, b), a),
                         lambda: (b, a))
        return i + 1, a2, b2
      outs = list(v1.while_loop(lambda i, a, b: i < 3, body, [tf.constant(0), x, y]))
    else:  # two conds on one predicate, the second reading the first's result
      a, b = v1.cond(p, lambda: (f(x, y), y), lambda: (y, x))
      c = v1.cond(p, lambda: f(a, b), lambda: a)
      d = v1.cond(q, lambda: c, lambda: b)
      outs = [a, b, c, d]
    return _as_float_outputs(outs, dtype)
  return fn


def _tf1_while_example(dtype):
  def more(t):
    x, y = t
    return st.tuples(st.integers(0, 4), st.integers(0, 3),
                     st.sampled_from(["nested_loop", "max_iterations", "cond_in_body"]),
                     st.sampled_from([True, False])).map(
        lambda u: Example(_inputs("n", np.int32(u[0]), u[3], x, y),
                          extra={"n": u[0], "m": u[1], "shape": u[2], "static": u[3]}))
  return _carried(dtype).flatmap(more)


def _tf1_while_build(example):
  tf = _tf()
  v1 = tf.compat.v1
  e = example.extra
  dtype = D.name_of(example.inputs["x"].dtype)
  f = _combine(dtype)

  def fn(*args):
    if e["static"]:
      n, (x, y) = tf.constant(e["n"], tf.int32), args
    else:
      n, x, y = args
    if dtype in D.FLOAT and (not e["static"] or e["shape"] == "nested_loop"):
      # See _loop_build: the limit is traced, or (nested_loop) the inner loop's limit
      # reads the outer counter, a traced value inside the outer loop.
      x, y = tf.stop_gradient(x), tf.stop_gradient(y)
    zero = tf.constant(0)
    if e["shape"] == "nested_loop":
      # An inner loop of m iterations in the body, reading the outer counter and a
      # value captured from outside both loops.
      def body(i, a, b):
        _, a2, b2 = v1.while_loop(lambda j, c, d: j < i + e["m"],
                                  lambda j, c, d: (j + 1, d, f(c, y)), [zero, a, b])
        return i + 1, a2, b2
      outs = list(v1.while_loop(lambda i, a, b: i < n, body, [zero, x, y]))
    elif e["shape"] == "max_iterations":  # the limit and maximum_iterations m
      outs = list(v1.while_loop(lambda i, a, b: i < n,
                                lambda i, a, b: (i + 1, b, f(a, b)), [zero, x, y],
                                maximum_iterations=e["m"]))
    else:  # a cond in the body on the counter
      def body(i, a, b):
        a2, b2 = v1.cond(i < 2, lambda: (f(a, b), a), lambda: (b, x))
        return i + 1, a2, b2
      outs = list(v1.while_loop(lambda i, a, b: i < n, body, [zero, x, y]))
    return _as_float_outputs(outs, dtype)
  return fn


# ControlTrigger and the Ref* ops ---------------------------------------------------------


def _trigger_example(dtype):
  return cst.arrays(dtype, cst.shapes(max_dims=2, max_side=3)).map(
      lambda x: Example({"x": x}))


def _trigger_build(example):
  tf = _tf()
  from tensorflow.python.ops import control_flow_ops

  def fn(x):
    trigger = control_flow_ops.control_trigger(name="trigger")
    with tf.control_dependencies([trigger]):
      return tf.identity(x) * 2.0
  return fn


def _ref_example(dtype):
  return st.tuples(cst.arrays(dtype, (2,)), st.booleans()).map(
      lambda t: Example({"x": t[0], "p": np.bool_(t[1])}))


def _ref_build(example):
  tf = _tf()
  v1 = tf.compat.v1

  def fn(x, p):
    # A ref variable (VariableV2): as a loop variable it makes RefEnter, RefMerge,
    # RefSwitch, RefNextIteration and RefExit.
    v = v1.Variable(np.array([1.0, 3.0], np.float32), use_resource=False, name="v")
    ref = v._ref()  # pylint: disable=protected-access
    _, r, a = v1.while_loop(lambda i, r, a: i < 2, lambda i, r, a: (i + 1, r, a + r),
                            [tf.constant(0), ref, x])
    return a + tf.identity(r), v1.cond(p, lambda: ref * 2.0, lambda: x)
  return fn


# The spec list ----------------------------------------------------------------------------

_COND_NOTES = ("tf.compat.v1.cond of two values of the case dtype (added, xor-ed or moved "
               "around), the predicate an input or a constant of the graph; plain, a cond "
               "nested in a branch, or a branch returning a constant. grad: tf.gradients "
               "in the TF1 graph.")
_LOOP_NOTES = ("tf.compat.v1.while_loop carrying an int32 counter, a uint8 and two values "
               "of the case dtype; -1 to 4 iterations, the limit an input (lax.while_loop) "
               "or a constant of the graph (a static trip count: lax.fori_loop). grad: "
               "tf.gradients in the TF1 graph, through loops of constant trip count; with a "
               "traced limit the values go through StopGradient first, since JAX cannot "
               "reverse-differentiate lax.while_loop (tf2jax's documented limitation).")
_SWITCH_N_NOTES = ("What TF's lowering of Case makes: _SwitchN of 2 to 4 outputs on an "
                   "int32 index from -2 to outputs + 1 (out of range: the last output), a "
                   "branch per output and Merges of as many inputs, whose value_index is an "
                   "output too. No grad: TF registers no gradient for _SwitchN.")
_TF1_COND_NOTES = ("Made by the rewrite of Switch/Merge conds (no TF op type). Graphs: a "
                   "cond with three outputs and a cond in each branch; a cond in a loop "
                   "body; conds sharing a predicate, one reading another's result.")
_TF1_WHILE_NOTES = ("Made by the rewrite of TF1 loop frames (no TF op type). Graphs: a loop "
                    "nesting a loop whose trip count reads the outer counter and that reads "
                    "a value captured from outside both; maximum_iterations; a cond in the "
                    "body reading a captured value. The limit traced or constant, as in the "
                    "Enter spec; grad through the loops of constant trip count (not the "
                    "nested loops: the inner limit reads the outer counter, traced inside "
                    "the outer loop, so the inner loop is a lax.while_loop).")
_REF_NOTES = ("Ref ops only exist in graphs of reference variables (VariableV2), which no "
              "tf2jax plugin lowers; TF 2.21 freezes such a graph into one whose Ref ops "
              "read constants, which TF itself refuses to import. So no graph tf2jax can "
              "convert holds a Ref op: the spec checks that such a frozen graph (a "
              "while_loop carrying a ref variable and a cond reading it) is refused, as TF "
              "refuses it. Nothing is computed.")


def specs() -> list[OpSpec]:
  frame = dict(tf1_graph=True, kernel_device="DEFAULT", dtypes=SAMPLE,
               skip_dtypes=_sampled_out(SAMPLE))
  cond_ops, loop_ops = ("Switch", "Merge"), ("Enter", "Merge", "Switch", "LoopCond",
                                             "NextIteration", "Exit")
  common = dict(tf1_graph=True, dtype_attr=None)
  ref_ops = ("RefEnter", "RefMerge", "RefSwitch", "RefNextIteration", "RefExit")
  out = [
      OpSpec("Switch", _cond_example, build=_cond_build, contains=cond_ops,
             notes=_COND_NOTES, tf1_graph=True, dtypes=WIDE_SAMPLE,
             skip_dtypes=_sampled_out(WIDE_SAMPLE)),
      OpSpec("Merge", _cond_example, build=_cond_build, contains=cond_ops,
             notes=_COND_NOTES, **frame),
      OpSpec("_SwitchN", _switch_n_example, build=_switch_n_build,
             contains=("_SwitchN", "Merge"), notes=_SWITCH_N_NOTES, tf1_graph=True,
             dtypes=SAMPLE, skip_dtypes=_sampled_out(SAMPLE),
             transforms=("jit", "static", "x64", "vmap")),
      OpSpec("Enter", _loop_example, build=_loop_build, contains=loop_ops,
             notes=_LOOP_NOTES, grad_inputs=("x", "y"), tf1_graph=True,
             kernel_device="DEFAULT", dtypes=WIDE_SAMPLE,
             skip_dtypes=_sampled_out(WIDE_SAMPLE)),
  ]
  out += [OpSpec(op, _loop_example, build=_loop_build, contains=loop_ops,
                 notes=_LOOP_NOTES, grad_inputs=("x", "y"), **frame)
          for op in ("Exit", "NextIteration")]
  out += [
      OpSpec("LoopCond", _loop_example, build=_loop_build, contains=loop_ops,
             notes=_LOOP_NOTES + " LoopCond has no dtype attr: the cases name the values' "
             "dtype.", grad_inputs=("x", "y"), dtypes=("bool", "int64", "float32"),
             **common),
      OpSpec("_Tf1Cond", _tf1_cond_example, build=_tf1_cond_build, contains=cond_ops,
             notes=_TF1_COND_NOTES + " The cases name the values' dtype.",
             grad_inputs=("x", "y"), dtypes=("bool", "int32", "float32", "complex128"),
             **common),
      OpSpec("_Tf1While", _tf1_while_example, build=_tf1_while_build, contains=loop_ops,
             notes=_TF1_WHILE_NOTES + " The cases name the values' dtype.",
             grad_inputs=("x", "y"), dtypes=("bool", "int32", "float32", "complex128"),
             **common),
      OpSpec("ControlTrigger", _trigger_example, build=_trigger_build,
             contains=("ControlTrigger",), notes="A ControlTrigger as a control input of "
             "the output. No dtype attr: the case names the data's dtype.",
             dtypes=("float32",), **common),
  ]
  out += [OpSpec(op, _ref_example, build=_ref_build, contains=ref_ops, notes=_REF_NOTES,
                 tf_rejects_all=True,
                 dtypes=("float32",), transforms=(), **common) for op in ref_ops]
  return out
