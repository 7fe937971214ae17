"""TF1 TensorArrays (TensorArrayV3 and friends) against TensorFlow: tf.compat.v1 graphs
with control flow v2 off, written to a `.pb`, converted with `tf2jax.convert_graph_def`
and compared with a `tf.compat.v1.Session` run, eagerly and under `jax.jit`; gradient
graphs (`tf.gradients` through TensorArrays) are converted and compared too.
"""

import jax
import numpy as np
import pytest
import tensorflow as tf
from hypothesis import HealthCheck, given, settings, strategies as st

import tf2jax
from tf2jax_core import ConversionError

v1 = tf.compat.v1


pytestmark = pytest.mark.usefixtures("control_flow_v1")  # see conftest.py


def convert(tmp_path, build):
  """build() makes placeholders and outputs in a new graph: (graph, placeholders,
  outputs, converted function)."""
  with tf.Graph().as_default() as g:
    placeholders, outputs = build()
  path = tmp_path / "graph.pb"
  path.write_bytes(g.as_graph_def().SerializeToString())
  fn = tf2jax.convert_graph_def(str(path), [p.name for p in placeholders],
                                [o.name for o in outputs])
  return g, placeholders, outputs, fn


def check(tmp_path, build, feeds, rtol=1e-5):
  g, placeholders, outputs, fn = convert(tmp_path, build)
  jitted = jax.jit(fn)
  with v1.Session(graph=g) as sess:
    for feed in feeds:
      want = sess.run(outputs, dict(zip(placeholders, feed)))
      for got in (fn(*feed), jitted(*feed)):
        assert len(got) == len(want)
        for a, b in zip(got, want):
          assert np.asarray(a).dtype == b.dtype
          np.testing.assert_allclose(np.asarray(a), b, rtol=rtol, atol=1e-6)
  return {n.op for n in g.as_graph_def().node}


SETTINGS = settings(max_examples=6, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.function_scoped_fixture])


@SETTINGS
@given(steps=st.integers(1, 5), width=st.integers(0, 3), limit_fed=st.booleans())
def test_while_loop_reads_and_writes(tmp_path, steps, width, limit_fed):
  """An RNN-like loop: the input unstacked into one array, read at the counter, the
  states written into another (its flow is a loop variable), stacked."""
  x = (np.arange(steps * width, dtype=np.float32).reshape(steps, width) / 5 - 0.3)

  def build():
    xs = v1.placeholder(tf.float32, [steps, width], name="x")
    n = v1.placeholder(tf.int32, [], name="n") if limit_fed else tf.constant(steps)
    inputs = tf.TensorArray(tf.float32, size=steps).unstack(xs)
    out = tf.TensorArray(tf.float32, size=steps)

    def body(i, h, out):
      h = tf.tanh(h * 0.5 + inputs.read(i))
      return i + 1, h, out.write(i, h)

    _, h, out = v1.while_loop(lambda i, *_: i < n, body,
                              (tf.constant(0), tf.zeros([width]), out))
    return ([xs, n] if limit_fed else [xs]), [out.stack(), h, out.size()]

  feed = (x, np.int32(steps)) if limit_fed else (x,)
  ops = check(tmp_path, build, [feed])
  assert {"TensorArrayV3", "TensorArrayReadV3", "TensorArrayWriteV3",
          "TensorArrayGatherV3", "TensorArrayScatterV3", "Enter"} <= ops


def test_while_loop_element_shape_unknown_until_first_write(tmp_path):
  def build():
    x = v1.placeholder(tf.float32, [3], name="x")
    out = tf.TensorArray(tf.float32, size=4, element_shape=tf.TensorShape(None),
                         clear_after_read=False)

    def body(i, out):
      return i + 1, out.write(i, x * tf.cast(i, tf.float32))

    _, out = v1.while_loop(lambda i, _: i < 4, body, (tf.constant(0), out))
    return [x], [out.stack(), out.concat()]
  check(tmp_path, build, [(np.array([0.5, -1.0, 2.0], np.float32),)])


def test_dynamic_size_and_split_concat(tmp_path):
  def build():
    x = v1.placeholder(tf.float32, [6], name="x")
    ta = tf.TensorArray(tf.float32, size=0, dynamic_size=True, clear_after_read=False)
    ta = ta.write(0, x[:2]).write(3, x[2:4] * 2.0)
    parts = tf.TensorArray(tf.float32, size=3).split(x, [2, 2, 2])
    return [x], [ta.stack(), ta.size(), ta.read(3), parts.concat()]
  check(tmp_path, build, [(np.arange(6, dtype=np.float32),)])


@SETTINGS
@given(rows=st.integers(1, 4), width=st.integers(1, 3),
       reads=st.lists(st.integers(0, 3), min_size=1, max_size=5))
def test_gradients_through_stacked_tensor_arrays(tmp_path, rows, width, reads):
  """tf.gradients through an unstacked array read (some rows more than once), written
  into a second one, stacked and concatenated: the gradient graph (TensorArrayGradV3,
  AddN of flows) is converted, its result compared with TF's and with jax.grad."""
  reads = [r % rows for r in reads]
  x = np.linspace(-1.0, 1.5, rows * width, dtype=np.float32).reshape(rows, width)

  def forward(xs):
    ta = tf.TensorArray(tf.float32, size=rows, clear_after_read=False).unstack(xs)
    out = tf.TensorArray(tf.float32, size=len(reads), clear_after_read=False)
    for j, i in enumerate(reads):
      out = out.write(j, tf.sin(ta.read(i)) * float(j + 1))
    return tf.reduce_sum(tf.square(out.stack())) + tf.reduce_sum(out.concat())

  def build():
    xs = v1.placeholder(tf.float32, [rows, width], name="x")
    loss = forward(xs)
    grad, = tf.gradients(loss, [xs])
    return [xs], [loss, grad]

  ops = check(tmp_path, build, [(x,)])
  assert "TensorArrayGradV3" in ops
  if len(set(reads)) < len(reads):
    assert "AddN" in ops

  def loss_only():  # jax.grad of the converted forward graph agrees too
    xs = v1.placeholder(tf.float32, [rows, width], name="x")
    return [xs], [forward(xs)]
  g, placeholders, outputs, fn = convert(tmp_path, loss_only)
  _, _, _, both = convert(tmp_path, build)
  np.testing.assert_allclose(jax.grad(lambda a: fn(a)[0])(x), both(x)[1], rtol=1e-5)


def test_gradients_through_a_loop_written_array_converted_forward(tmp_path):
  """jax.grad of a converted TF1 loop that writes a TensorArray, against tf.gradients
  (TF1 loop gradient graphs use StackV2 accumulators, which tf2jax does not lower: the
  forward graph is converted and differentiated by JAX)."""
  x = np.array([[0.5, -0.2], [0.1, 0.3], [-0.4, 0.8]], np.float32)
  with tf.Graph().as_default() as g:
    xs = v1.placeholder(tf.float32, [3, 2], name="x")
    inputs = tf.TensorArray(tf.float32, size=3).unstack(xs)
    out = tf.TensorArray(tf.float32, size=3)
    def body(i, h, o):
      h = tf.sin(h + inputs.read(i))
      return i + 1, h, o.write(i, h)

    _, _, out = v1.while_loop(lambda i, *_: i < 3, body,
                              (tf.constant(0), tf.zeros([2]), out))
    loss = tf.reduce_sum(out.stack() * tf.constant([[1.0], [2.0], [3.0]]))
    grad, = tf.gradients(loss, [xs])
  path = tmp_path / "graph.pb"
  path.write_bytes(g.as_graph_def().SerializeToString())
  fn = tf2jax.convert_graph_def(str(path), ["x"], loss.name)
  with v1.Session(graph=g) as sess:
    want = sess.run(grad, {xs: x})
  np.testing.assert_allclose(jax.jit(jax.grad(fn))(x), want, rtol=1e-5)


def test_tf_errors_are_raised(tmp_path):
  """Reading an element twice with clear_after_read, and reading one never written whose
  shape is not known, fail in TF and in the converted function."""
  def build():
    x = v1.placeholder(tf.float32, [2], name="x")
    ta = tf.TensorArray(tf.float32, size=2).write(0, x)
    return [x], [ta.stack(), ta.concat()]
  g, placeholders, outputs, fn = convert(tmp_path, build)
  with v1.Session(graph=g) as sess, pytest.raises(tf.errors.InvalidArgumentError):
    sess.run(outputs, {placeholders[0]: np.ones(2, np.float32)})
  with pytest.raises(Exception, match="twice"):
    fn(np.ones(2, np.float32))

  def build_unknown():
    x = v1.placeholder(tf.float32, [2], name="x")
    h, f = tf.raw_ops.TensorArrayV3(size=2, dtype=tf.float32)
    f = tf.raw_ops.TensorArrayWriteV3(handle=h, index=0, value=x, flow_in=f)
    return [x], [tf.raw_ops.TensorArrayReadV3(handle=h, index=1, flow_in=f,
                                              dtype=tf.float32)]
  g, placeholders, outputs, fn = convert(tmp_path, build_unknown)
  with v1.Session(graph=g) as sess, pytest.raises(tf.errors.InvalidArgumentError):
    sess.run(outputs, {placeholders[0]: np.ones(2, np.float32)})
  with pytest.raises(Exception, match="never written"):
    fn(np.ones(2, np.float32))


def test_dynamic_size_written_at_a_traced_index_is_refused(tmp_path):
  def build():
    x = v1.placeholder(tf.float32, [3], name="x")
    n = v1.placeholder(tf.int32, [], name="n")
    out = tf.TensorArray(tf.float32, size=0, dynamic_size=True)
    _, out = v1.while_loop(lambda i, _: i < n, lambda i, o: (i + 1, o.write(i, x)),
                           (tf.constant(0), out))
    return [x, n], [out.stack()]
  with pytest.raises(ConversionError, match="dynamic-size"):
    _, _, _, fn = convert(tmp_path, build)
    fn(np.ones(3, np.float32), np.int32(2))


def test_tf2_graph_in_tf1_mode_raw_ops():
  """A tf.function of raw TensorArray ops (TF2, no loops) converts too."""
  @tf.function(autograph=False)
  def forward(x):
    h, f = tf.raw_ops.TensorArrayV3(size=3, dtype=tf.float32, identical_element_shapes=True)
    f = tf.raw_ops.TensorArrayScatterV3(handle=h, indices=[2, 0], value=x, flow_in=f)
    return tf.raw_ops.TensorArrayGatherV3(handle=h, indices=[0, 1, 2], flow_in=f,
                                          dtype=tf.float32)

  x = np.array([[1.0, 2.0], [3.0, 4.0]], np.float32)
  fn = tf2jax.convert_functional(forward, x)
  np.testing.assert_array_equal(fn(x), forward(x).numpy())
