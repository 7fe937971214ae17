"""A graph fuzzer: mutated real graphs give TF's result or a typed error, nothing else.

Each example mutates a frozen GraphDef (op types, dropped nodes, rewired inputs, corrupt
attrs and dtypes, huge shapes, self-calling functions), reports it with tf2jax-coverage,
converts and runs it, and imports and runs it in TensorFlow. The outcome must be one of:
- both run: same shape, dtype and values;
- the converter raises a typed `tf2jax.ConversionError` with a message: where TF accepts
  the graph, only for reasons TF does not have (an op not lowered yet, 64-bit types
  without x64, an input that must be static, the size limit);
- never another exception type, a hang or a memory blow-up; and never a result for a
  graph TF refuses.
TF2JAX_FUZZ_EXAMPLES (default 60) sets the examples per base graph; TF2JAX_FUZZ_SEED
picks another (fixed) sequence than CI's.
"""

import contextlib
import io
import json
import os
import resource
import signal
import tempfile

import numpy as np
import pytest
import tensorflow as tf
from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st

import tf2jax
from tf2jax_core import coverage

EXAMPLES = int(os.environ.get("TF2JAX_FUZZ_EXAMPLES", "60"))
SEED = os.environ.get("TF2JAX_FUZZ_SEED")
X = np.linspace(-2, 2, 6, dtype=np.float32).reshape(2, 3)
OPS = ["Sin", "Cos", "Relu", "Softmax", "Identity", "AddV2", "Mul", "MatMul", "BiasAdd",
       "Sum", "Reshape", "Shape", "Const", "Placeholder", "NoOp", "Conv2D", "NoSuchOp",
       "PartitionedCall", "Cast", "Exp", "Neg"]
DTYPES = [0, 1, 2, 3, 9, 10, 14, 19, 20, 21, 27, 99, 101]
DIMS = [-7, -1, 0, 1, 2, 3, 2**31, 2**40]
ACCEPTED_WHEN_TF_RUNS = (tf2jax.UnsupportedOpsError, tf2jax.DtypeMismatchError,
                         tf2jax.StaticInputError, tf2jax.SizeLimitError)


def base_graphs():
  with tf.Graph().as_default() as mlp:
    x = tf.compat.v1.placeholder(tf.float32, [2, 3], name="x")
    w = tf.constant(np.arange(12, dtype=np.float32).reshape(3, 4) / 12 - 0.4)
    h = tf.nn.relu(tf.nn.bias_add(tf.matmul(x, w), tf.constant([0.1, -0.2, 0.3, 0.0])))
    h = tf.reshape(tf.sin(h) * 2.0, tf.shape(h))
    tf.identity(tf.nn.softmax(h) + tf.reduce_sum(h, axis=[1], keepdims=True), name="out")

  @tf.function
  def inner(a):
    return tf.cos(a) * 3.0

  @tf.function
  def outer(a):
    return tf.exp(-tf.abs(inner(a))) + inner(a * 2.0)

  return {"mlp": mlp.as_graph_def(),
          "calls": outer.get_concrete_function(tf.TensorSpec([2, 3], name="x"))
                        .graph.as_graph_def()}


BASES = base_graphs()
OUTPUT = {"mlp": "out:0", "calls": "Identity:0"}


@st.composite
def mutations(draw, base):
  graph_def = type(BASES[base])()
  graph_def.CopyFrom(BASES[base])
  nodes = list(graph_def.node)
  done = []
  for _ in range(draw(st.integers(1, 3), label="mutations")):
    kind = draw(st.sampled_from(["op", "drop", "rewire", "dtype", "dim", "const", "attr",
                                 "self_call"]), label="kind")
    node = draw(st.sampled_from(list(graph_def.node)), label="node") if graph_def.node \
        else None
    if node is None:
      break
    if kind == "op":
      node.op = draw(st.sampled_from(OPS), label="new op")
    elif kind == "drop":
      graph_def.node.remove(node)
    elif kind == "rewire" and node.input:
      k = draw(st.integers(0, len(node.input) - 1), label="input")
      src = draw(st.sampled_from([n.name for n in nodes] + ["ghost"]), label="src")
      port = draw(st.sampled_from(["", ":1", ":2"]), label="port")
      node.input[k] = ("^" if draw(st.booleans(), label="control") else "") + src + port
    elif kind == "dtype":
      keys = [k for k, v in node.attr.items() if v.WhichOneof("value") == "type"]
      if keys:
        node.attr[draw(st.sampled_from(keys), label="attr")].type = draw(
            st.sampled_from(DTYPES), label="dtype")
    elif kind == "dim" and "shape" in node.attr and node.attr["shape"].shape.dim:
      node.attr["shape"].shape.dim[0].size = draw(st.sampled_from(DIMS), label="dim")
    elif kind == "const" and "value" in node.attr:
      shape = node.attr["value"].tensor.tensor_shape
      del shape.dim[:]
      for d in draw(st.lists(st.sampled_from(DIMS[2:]), max_size=3), label="const dims"):
        shape.dim.add().size = d
    elif kind == "attr" and node.attr:
      del node.attr[draw(st.sampled_from(sorted(node.attr)), label="attr")]
    elif kind == "self_call" and graph_def.library.function:
      fn = graph_def.library.function[0]
      for n in fn.node_def:
        if "f" in n.attr:
          n.attr["f"].func.name = fn.signature.name
    done.append(kind)
  return graph_def


class Timeout(Exception):
  pass


def _alarm(*_):
  raise Timeout()


def run_tf(graph_def, output):
  try:
    with tf.Graph().as_default():
      tf.graph_util.import_graph_def(graph_def, name="")
      with tf.compat.v1.Session() as sess:
        return sess.run(output, {"x:0": X}), None
  except Exception as e:  # TF's refusal, of whatever type
    return None, e


def check_coverage(graph_def):
  """tf2jax-coverage reads the same protobuf: exit 0, 1 or 2, never an exception."""
  with tempfile.TemporaryDirectory() as tmp:
    path = os.path.join(tmp, "g.pb")
    with open(path, "wb") as f:
      f.write(graph_def.SerializeToString())
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
      code = coverage.main([path, "--json"])
  assert code in (0, 1, 2)
  if code == 2:
    assert len(err.getvalue().strip().splitlines()) == 1
  else:
    assert json.loads(out.getvalue())["schema"] == coverage.SCHEMA


def check(graph_def, output):
  signal.signal(signal.SIGALRM, _alarm)
  signal.alarm(20)
  try:
    check_coverage(graph_def)
    try:
      got = np.asarray(tf2jax.convert_graph_def(graph_def, ["x"], output)(X))
      ours = None
    except tf2jax.ConversionError as e:
      got, ours = None, e
      assert str(e).strip(), "typed error without a message"
  finally:
    signal.alarm(0)
  if isinstance(ours, tf2jax.SizeLimitError):
    return "size-limit"  # TF would allocate it: not run
  expected, theirs = run_tf(graph_def, output)
  if ours is None and theirs is None:
    assert got.shape == expected.shape and got.dtype == expected.dtype
    np.testing.assert_allclose(got, expected, rtol=2e-5, atol=1e-6, equal_nan=True)
    return "match"
  if ours is None:
    raise AssertionError(f"converted a graph TF refuses ({type(theirs).__name__}: "
                         f"{str(theirs)[:300]})")
  if theirs is None:
    assert isinstance(ours, ACCEPTED_WHEN_TF_RUNS), (
        f"refused a graph TF runs: {type(ours).__name__}: {ours}")
    return "unsupported"
  return "both-refuse"


@pytest.mark.parametrize("base", sorted(BASES))
def test_base_graphs_match_tf(base):
  assert check(BASES[base], OUTPUT[base]) == "match"


@pytest.mark.parametrize("base", sorted(BASES))
def test_mutated_graphs(base):
  before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
  outcomes = []

  @settings(max_examples=EXAMPLES, deadline=None, derandomize=SEED is None, database=None,
            suppress_health_check=list(HealthCheck))
  @given(mutations(base))
  def fuzz(graph_def):
    outcomes.append(check(graph_def, OUTPUT[base]))

  if SEED is not None:
    fuzz = seed(int(SEED))(fuzz)
  fuzz()
  grown = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
  print(f"{base}: {len(outcomes)} cases: "
        + ", ".join(f"{k} {outcomes.count(k)}" for k in sorted(set(outcomes))))
  assert grown < 2_000_000, f"peak memory grew by {grown} KiB"
