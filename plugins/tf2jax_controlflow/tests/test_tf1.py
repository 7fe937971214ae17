"""TF1 control flow (Switch/Merge/Enter/Exit/NextIteration/LoopCond) against TensorFlow.

Graphs are built with `tf.compat.v1` and control flow v2 off, written to a `.pb`,
converted with `tf2jax.convert_graph_def` and compared with a `tf.compat.v1.Session` run,
eagerly and under `jax.jit`, for inputs that take every branch.
"""

import types

import jax
import numpy as np
import pytest
import tensorflow as tf
from hypothesis import HealthCheck, given, settings, strategies as st

import tf2jax
from tf2jax_core import hookimpl, lowering

v1 = tf.compat.v1


pytestmark = pytest.mark.usefixtures("control_flow_v1")  # see conftest.py


@pytest.fixture
def logical_and():
  """`maximum_iterations` needs LogicalAnd; lend it when no installed plugin has it."""
  from tf2jax_core.plugins import manager
  if "LogicalAnd" in manager().op_table():
    yield
    return

  @lowering("LogicalAnd")
  def logical_and_(node):
    return lambda x, y: x & y

  module = types.ModuleType("tf1-test-logical-and")
  module.TF2JAX_PLUGIN_API = 1
  module.tf2jax_register_ops = hookimpl(lambda registry: registry.add(logical_and_))
  tf2jax.register_plugin(module, name="tf1-test-logical-and", version="0")
  try:
    yield
  finally:
    tf2jax.unregister_plugin("tf1-test-logical-and")


def check(tmp_path, build, feeds, rtol=1e-6, jaxpr_has=(), text=False):
  """build() makes placeholders and outputs in the default graph and returns
  (placeholders, outputs); every feed (a tuple of inputs) is compared with TF.
  `jaxpr_has`: primitives the jitted function must use (traced control flow)."""
  with tf.Graph().as_default() as g:
    placeholders, outputs = build()
  graph_def = g.as_graph_def()
  if text:
    path = tmp_path / "graph.pbtxt"
    path.write_text(str(graph_def))
  else:
    path = tmp_path / "graph.pb"
    path.write_bytes(graph_def.SerializeToString())
  ops = {n.op for n in graph_def.node}
  fn = tf2jax.convert_graph_def(str(path), [p.name for p in placeholders],
                                [o.name for o in outputs])
  jitted = jax.jit(fn)
  jaxpr = str(jax.make_jaxpr(fn)(*feeds[0]))
  for primitive in jaxpr_has:
    assert f"{primitive}[" in jaxpr, (primitive, jaxpr)
  with v1.Session(graph=g) as sess:
    for feed in feeds:
      want = sess.run(outputs, dict(zip(placeholders, feed)))
      for got in (fn(*feed), jitted(*feed)):
        assert len(got) == len(want)
        for a, b in zip(got, want):
          assert np.asarray(a).dtype == b.dtype
          np.testing.assert_allclose(np.asarray(a), b, rtol=rtol)
  return ops


X = np.array([0.5, -1.0, 2.0], np.float32)


def x_placeholder():
  return v1.placeholder(tf.float32, [3], name="x")


def test_cond(tmp_path):
  def build():
    x = x_placeholder()
    p = v1.placeholder(tf.bool, [], name="p")
    return [x, p], [v1.cond(p, lambda: x * 2.0, lambda: x + 1.0)]
  ops = check(tmp_path, build, [(X, True), (X, False)], jaxpr_has=["cond"])
  assert {"Switch", "Merge"} <= ops


def test_cond_from_pbtxt(tmp_path):
  def build():
    x = x_placeholder()
    return [x], [v1.cond(tf.reduce_sum(x) > 1.0, lambda: tf.sin(x), lambda: x - 1.0)]
  check(tmp_path, build, [(X,), (-X,)], text=True)


def test_cond_on_a_computed_predicate_with_several_outputs(tmp_path):
  def build():
    x = x_placeholder()
    y = v1.placeholder(tf.float32, [3], name="y")
    a, b = v1.cond(tf.reduce_sum(x) > 0.0, lambda: (x * y, tf.sin(x)),
                   lambda: (x - y, tf.cos(y)))
    return [x, y], [a, b, a + b]
  check(tmp_path, build, [(X, X + 1), (-X, X), (X * 0, X)])


def test_cond_pass_through_and_constant_branches(tmp_path):
  def build():
    x = x_placeholder()
    y = v1.placeholder(tf.float32, [3], name="y")
    p = v1.placeholder(tf.bool, [], name="p")
    through = v1.cond(p, lambda: x, lambda: y)
    consts = v1.cond(p, lambda: tf.constant(7.0), lambda: tf.constant(-3.0))
    return [x, y, p], [through, consts, through * consts]
  check(tmp_path, build, [(X, X * 3, True), (X, X * 3, False)])


def test_conds_sharing_a_predicate_feed_one_another(tmp_path):
  # The `is_training` pattern: several conds on one placeholder, each reading the last.
  def build():
    x = x_placeholder()
    training = v1.placeholder(tf.bool, [], name="training")
    a = v1.cond(training, lambda: x * 2.0, lambda: x + 1.0)
    b = v1.cond(training, lambda: a * 3.0, lambda: tf.sin(a))
    c = v1.cond(training, lambda: x - 1.0, lambda: tf.cos(x))  # independent of a and b
    d = v1.cond(training, lambda: b + c, lambda: b - c)
    return [x, training], [a, d]
  check(tmp_path, build, [(X, True), (X, False)])


def test_nested_cond(tmp_path):
  def build():
    x = x_placeholder()
    p = v1.placeholder(tf.bool, [], name="p")
    q = v1.placeholder(tf.bool, [], name="q")
    out = v1.cond(p, lambda: v1.cond(q, lambda: x * 2.0, lambda: tf.sin(x)),
                  lambda: v1.cond(q, lambda: tf.constant([1.0, 2.0, 3.0]), lambda: x - 5.0))
    return [x, p, q], [out]
  check(tmp_path, build, [(X, p, q) for p in (True, False) for q in (True, False)])


def test_case(tmp_path):
  def build():
    x = x_placeholder()
    k = v1.placeholder(tf.int32, [], name="k")
    out = v1.case([(k < 1, lambda: x * 2.0), (k < 2, lambda: x + 1.0)],
                  default=lambda: tf.sin(x))
    return [x, k], [out]
  check(tmp_path, build, [(X, np.int32(k)) for k in range(3)])


def test_while_loop(tmp_path):
  def build():
    x = x_placeholder()
    n = v1.placeholder(tf.int32, [], name="n")
    i, acc = v1.while_loop(lambda i, acc: i < n, lambda i, acc: (i + 1, acc * x + 1.0),
                           [tf.constant(0), tf.ones([3])])
    return [x, n], [i, acc]
  ops = check(tmp_path, build, [(X, np.int32(k)) for k in (0, 1, 4)], jaxpr_has=["while"])
  assert {"Enter", "Exit", "NextIteration", "LoopCond"} <= ops


def test_while_with_static_trip_count_and_data_dependent_stop(tmp_path):
  def build():
    x = x_placeholder()
    _, acc = v1.while_loop(lambda i, a: i < 3, lambda i, a: (i + 1, a * x), [0, tf.ones([3])])
    grown = v1.while_loop(lambda v: tf.reduce_sum(v) < 100.0, lambda v: v * 2.0, [x + 10.0])
    return [x], [acc, grown]
  check(tmp_path, build, [(X,), (X * 4,)])


def test_while_with_maximum_iterations(tmp_path, logical_and):
  def build():
    x = x_placeholder()
    n = v1.placeholder(tf.int32, [], name="n")
    i, acc = v1.while_loop(lambda i, a: i < n, lambda i, a: [i + 1, a + x], [0, x],
                           maximum_iterations=4)
    return [x, n], [i, acc]
  check(tmp_path, build, [(X, np.int32(k)) for k in (0, 2, 9)])


def test_nested_while(tmp_path):
  def build():
    x = x_placeholder()
    n = v1.placeholder(tf.int32, [], name="n")

    def outer_body(i, acc):
      # The inner loop reads an outer loop variable (i) and an outside value (x).
      _, inner = v1.while_loop(lambda j, a: j < i, lambda j, a: (j + 1, a + x), [0, acc])
      return i + 1, inner * 0.5
    i, acc = v1.while_loop(lambda i, acc: i < n, outer_body, [0, tf.zeros([3])])
    return [x, n], [i, acc]
  check(tmp_path, build, [(X, np.int32(k)) for k in (0, 1, 3)])


def test_cond_inside_while(tmp_path):
  def build():
    x = x_placeholder()
    n = v1.placeholder(tf.int32, [], name="n")

    def body(i, a):
      a = v1.cond(tf.reduce_sum(a) > 0.0, lambda: a * -2.0, lambda: a + 3.0)
      return [i + 1, a]
    _, out = v1.while_loop(lambda i, a: i < n, body, [tf.constant(0), x])
    return [x, n], [out]
  check(tmp_path, build, [(X, np.int32(k)) for k in (0, 1, 2, 5)],
        jaxpr_has=["while", "cond"])


def test_while_inside_cond(tmp_path):
  def build():
    x = x_placeholder()
    p = v1.placeholder(tf.bool, [], name="p")
    n = v1.placeholder(tf.int32, [], name="n")

    def looped():
      return v1.while_loop(lambda i, a: i < n, lambda i, a: (i + 1, a * 1.5), [0, x])[1]
    out = v1.cond(p, looped, lambda: tf.cos(x))
    return [x, p, n], [out]
  check(tmp_path, build, [(X, p, np.int32(k)) for p in (True, False) for k in (0, 3)])


def test_cond_in_while_in_while_in_cond(tmp_path):
  def build():
    x = x_placeholder()
    p = v1.placeholder(tf.bool, [], name="p")

    def outer():
      def body(i, a):
        step = lambda j, b: (j + 1, v1.cond(tf.reduce_sum(b) > 1.0, lambda: b * 0.5,
                                            lambda: b + x))
        return i + 1, v1.while_loop(lambda j, b: j < i, step, [0, a])[1]
      return v1.while_loop(lambda i, a: i < 3, body, [0, x])[1]
    return [x, p], [v1.cond(p, outer, lambda: x)]
  check(tmp_path, build, [(X, True), (X, False), (X * 5, True)])


def test_matmul_rnn_like_loop(tmp_path):
  w = np.array([[0.5, -0.2, 0.1], [0.3, 0.4, -0.6], [0.0, 0.2, 0.9]], np.float32)

  def build():
    x = v1.placeholder(tf.float32, [1, 3], name="x")
    n = v1.placeholder(tf.int32, [], name="n")
    wt = tf.constant(w)
    _, h = v1.while_loop(lambda i, h: i < n,
                         lambda i, h: (i + 1, tf.sin(tf.matmul(h, wt) + x)),
                         [0, tf.zeros([1, 3])])
    return [x, n], [h]
  check(tmp_path, build, [(X[None], np.int32(k)) for k in (0, 3, 7)], rtol=1e-5)


def test_gradients_through_cond_and_static_loop(tmp_path):
  with tf.Graph().as_default() as g:
    x = x_placeholder()
    p = v1.placeholder(tf.bool, [], name="p")
    y = v1.cond(p, lambda: x * x, lambda: tf.sin(x))
    _, z = v1.while_loop(lambda i, a: i < 3, lambda i, a: (i + 1, a * y), [0, tf.ones([3])])
    loss = tf.reduce_sum(z)
    grad, = tf.gradients(loss, [x])
  path = tmp_path / "graph.pb"
  path.write_bytes(g.as_graph_def().SerializeToString())
  fn = tf2jax.convert_graph_def(str(path), ["x", "p"], loss.name)
  with v1.Session(graph=g) as sess:
    for pred in (True, False):
      want = sess.run(grad, {x: X, p: pred})
      got = jax.jit(jax.grad(fn))(X, pred)
      np.testing.assert_allclose(got, want, rtol=1e-5)


def test_switch_n_conds_of_lowered_case(tmp_path):
  """_SwitchN (TF's lowering of Case) with the Merges closing it: any index, also out of
  range (the last branch), and the Merge's value_index."""
  def build():
    g = tf.compat.v1.get_default_graph()
    x = x_placeholder()
    k = v1.placeholder(tf.int32, [], name="k")
    switched = g.create_op("_SwitchN", [x, k], [tf.float32] * 3, name="switch_n",
                           attrs={"num_outs": tf.compat.v1.AttrValue(i=3),
                                  "T": tf.compat.v1.AttrValue(
                                      type=tf.float32.as_datatype_enum)}).outputs
    out, index = tf.raw_ops.Merge(inputs=[switched[0] * 2.0, tf.sin(switched[1]),
                                          switched[2] + 1.0])
    return [x, k], [out, index]
  ops = check(tmp_path, build, [(X, np.int32(k)) for k in (-1, 0, 1, 2, 3)],
              jaxpr_has=["cond"])
  assert "_SwitchN" in ops


def test_switch_output_outside_any_merge_is_refused(tmp_path):
  from tensorflow.python.ops import control_flow_ops
  with tf.Graph().as_default() as g:
    x = x_placeholder()
    p = v1.placeholder(tf.bool, [], name="p")
    _, taken = control_flow_ops.switch(x, p)
    out = taken * 2.0
  with pytest.raises(tf2jax.ConversionError, match="Switch node .* no Merge"):
    tf2jax.convert_graph_def(g.as_graph_def(), ["x", "p"], out.name)


_PROPERTY = {}


def property_graph(tmp_path):
  """Converted once: a loop of n steps whose body branches on the data, under a cond."""
  if not _PROPERTY:
    with tf.Graph().as_default() as g:
      x = v1.placeholder(tf.float32, [None], name="x")
      n = v1.placeholder(tf.int32, [], name="n")
      p = v1.placeholder(tf.bool, [], name="p")

      def body(i, a):
        a = v1.cond(tf.reduce_sum(a) > 0.0, lambda: a * -1.5 + 0.25, lambda: tf.sin(a) + 1.0)
        return [i + 1, a]

      def looped():
        return v1.while_loop(lambda i, a: i < n, body, [0, x])
      i, out = v1.cond(p, looped, lambda: [n, tf.cos(x)])
    path = tmp_path / "property.pb"
    path.write_bytes(g.as_graph_def().SerializeToString())
    fn = tf2jax.convert_graph_def(str(path), ["x", "n", "p"], [i.name, out.name])
    _PROPERTY.update(graph=g, feeds=(x, n, p), outputs=[i, out], fn=jax.jit(fn))
  return _PROPERTY


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(n=st.integers(0, 8), p=st.booleans(),
       x=st.lists(st.floats(-3, 3, width=32), min_size=1, max_size=4))
def test_loop_counts_predicates_and_shapes_drawn_by_hypothesis(tmp_path, n, p, x):
  prop = property_graph(tmp_path)
  feed = (np.array(x, np.float32), np.int32(n), p)
  with v1.Session(graph=prop["graph"]) as sess:
    want = sess.run(prop["outputs"], dict(zip(prop["feeds"], feed)))
  got = prop["fn"](*feed)
  for a, b in zip(got, want):
    np.testing.assert_allclose(np.asarray(a), b, rtol=1e-5, atol=1e-6)


def test_tf1_ops_are_registered():
  from tf2jax_core.plugins import manager
  table = manager().op_table()
  for op in ("Switch", "RefSwitch", "Merge", "RefMerge", "Enter", "RefEnter", "Exit",
             "RefExit", "NextIteration", "RefNextIteration", "LoopCond", "ControlTrigger"):
    assert op in table, op


def test_non_tf1_cycle_is_still_reported(tmp_path):
  from tensorflow.core.framework import graph_pb2
  g = graph_pb2.GraphDef()
  a = g.node.add(name="a", op="Identity", input=["b"])
  b = g.node.add(name="b", op="Identity", input=["a"])
  for n in (a, b):
    n.attr["T"].type = tf.float32.as_datatype_enum
  with pytest.raises(tf2jax.GraphCycleError):
    tf2jax.convert_graph_def(g, [], ["a:0"])
