"""Malformed graphs get typed errors naming the fault, where TensorFlow refuses them too."""

import resource
import time

import numpy as np
import pytest
import tensorflow as tf
from google.protobuf import text_format
from tensorflow.core.framework import graph_pb2

import tf2jax

F32 = tf.float32.as_datatype_enum


def graph(text: str) -> graph_pb2.GraphDef:
  return text_format.Parse(text, graph_pb2.GraphDef())


def placeholder(name="x", dtype="DT_FLOAT"):
  return (f'node {{ name: "{name}" op: "Placeholder" attr {{ key: "dtype" value {{ type: {dtype} }} }}'
          ' attr { key: "shape" value { shape { dim { size: 3 } } } } }')


def unary(name, op, inp, dtype="DT_FLOAT"):
  return (f'node {{ name: "{name}" op: "{op}" input: "{inp}" '
          f'attr {{ key: "T" value {{ type: {dtype} }} }} }}')


def binary(name, op, a, b, dtype="DT_FLOAT"):
  return (f'node {{ name: "{name}" op: "{op}" input: "{a}" input: "{b}" '
          f'attr {{ key: "T" value {{ type: {dtype} }} }} }}')


def tf_refuses(graph_def, output="out:0") -> bool:
  """Whether TF refuses to import or run the graph (the ground truth for leniency)."""
  try:
    with tf.Graph().as_default():
      tf.graph_util.import_graph_def(graph_def, name="")
      with tf.compat.v1.Session() as sess:
        sess.run(output, {"x:0": np.ones(3, np.float32)})
    return False
  except Exception:
    return True


CASES = {
    "missing node": (placeholder() + unary("out", "Sin", "nope"),
                     tf2jax.MissingInputError, r"Sin node 'out' has input 'nope'"),
    "missing port": (placeholder() + unary("out", "Sin", "x:3"),
                     tf2jax.MissingInputError, r"reads output 3 of 'x'"),
    "duplicate name": (placeholder() + placeholder() + unary("out", "Sin", "x"),
                       tf2jax.InvalidGraphError, r"Duplicate node name 'x'"),
    "cycle": (placeholder() + binary("a", "AddV2", "x", "out") + unary("out", "Sin", "a"),
              tf2jax.GraphCycleError, r"cycle"),
    "control cycle": (placeholder() + unary("a", "Sin", "x").replace("} }\n", "} }")[:-1]
                      + ' input: "^out" }' + unary("out", "Cos", "a"),
                      tf2jax.GraphCycleError, r"cycle"),
    "missing required attr": (placeholder() + 'node { name: "out" op: "Sin" input: "x" }',
                              tf2jax.InvalidGraphError, r"Sin node 'out' lacks the required "
                              r"attr 'T'"),
    "wrong arity": (placeholder() + unary("out", "AddV2", "x"),
                    tf2jax.InvalidGraphError, r"AddV2 node 'out' has 1 data inputs.*2"),
    "input dtype": (placeholder(dtype="DT_INT32") + unary("out", "Sin", "x"),
                    tf2jax.InvalidGraphError, r"input 0 \(x:0\) is int32, but the op "
                    r"expects float32"),
    "invalid dtype enum": (placeholder() + unary("out", "Sin", "x", dtype="99"),
                           tf2jax.ConversionError, r"Invalid TensorFlow DataType enum 99"),
    "ref dtype": (placeholder() + unary("out", "Sin", "x", dtype="DT_FLOAT_REF"),
                  tf2jax.ConversionError, r"Reference dtype"),
    "negative dim": ('node { name: "x" op: "Placeholder" attr { key: "dtype" value { type: '
                     'DT_FLOAT } } attr { key: "shape" value { shape { dim { size: -7 } } } } }'
                     + unary("out", "Sin", "x"),
                     tf2jax.InvalidGraphError, r"dimension -7"),
    "const content vs shape": (
        placeholder() + 'node { name: "c" op: "Const" attr { key: "dtype" value { type: '
        'DT_FLOAT } } attr { key: "value" value { tensor { dtype: DT_FLOAT tensor_shape { '
        'dim { size: 3 } } tensor_content: "\\000\\000\\000\\000\\000" } } } }'
        + binary("out", "AddV2", "x", "c"),
        tf2jax.InvalidGraphError, r"5 bytes does not match its shape \[3\]"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_malformed_graph_gets_typed_error(case):
  text, error, message = CASES[case]
  graph_def = graph(text)
  with pytest.raises(error, match=message):
    tf2jax.convert_graph_def(graph_def, ["x"], "out:0")
  assert tf_refuses(graph_def), "TensorFlow accepts this graph: the converter must too"


def test_const_with_extra_values_uses_the_first_like_tf():
  text = (placeholder() + 'node { name: "c" op: "Const" attr { key: "dtype" value { type: '
          'DT_FLOAT } } attr { key: "value" value { tensor { dtype: DT_FLOAT tensor_shape { '
          'dim { size: 3 } } float_val: [1, 2, 3, 4] } } } }' + binary("out", "AddV2", "x", "c"))
  graph_def = graph(text)
  with tf.Graph().as_default():
    tf.graph_util.import_graph_def(graph_def, name="")
    with tf.compat.v1.Session() as sess:
      expected = sess.run("out:0", {"x:0": np.ones(3, np.float32)})
  got = tf2jax.convert_graph_def(graph_def, ["x"], "out:0")(np.ones(3, np.float32))
  np.testing.assert_array_equal(got, expected)


def test_huge_constant_is_refused_without_allocating():
  # A 10^12-element splat: TF would try to allocate 4 TB.
  text = (placeholder() + 'node { name: "c" op: "Const" attr { key: "dtype" value { type: '
          'DT_FLOAT } } attr { key: "value" value { tensor { dtype: DT_FLOAT tensor_shape { '
          'dim { size: 1000000 } dim { size: 1000000 } } float_val: 1 } } } }'
          + binary("out", "AddV2", "x", "c"))
  before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
  start = time.perf_counter()
  with pytest.raises(tf2jax.SizeLimitError, match=r"shape \[1000000, 1000000\].*"
                     r"max_static_value_bytes"):
    tf2jax.convert_graph_def(graph(text), ["x"], "out:0")
  assert time.perf_counter() - start < 5
  assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 200_000  # KiB


def test_size_limit_is_configurable():
  values = np.arange(1000, dtype=np.float32)

  @tf.function
  def forward(x):
    return x + tf.constant(values)

  with tf2jax.override_config("max_static_value_bytes", 1000):
    with pytest.raises(tf2jax.SizeLimitError, match="4,000 bytes"):
      tf2jax.convert_functional(forward, values)
  np.testing.assert_array_equal(tf2jax.convert_functional(forward, values)(values), 2 * values)


def recursive_library(direct: bool) -> graph_pb2.GraphDef:
  call = ('node_def {{ name: "call" op: "PartitionedCall" input: "a" '
          'attr {{ key: "Tin" value {{ list {{ type: DT_FLOAT }} }} }} '
          'attr {{ key: "Tout" value {{ list {{ type: DT_FLOAT }} }} }} '
          'attr {{ key: "f" value {{ func {{ name: "{callee}" }} }} }} }}')
  fn = ('function {{ signature {{ name: "{name}" input_arg {{ name: "a" type: DT_FLOAT }} '
        'output_arg {{ name: "r" type: DT_FLOAT }} }} ' + call + ' ret {{ key: "r" value: '
        '"call:output:0" }} }}')
  lib = fn.format(name="f", callee="f") if direct else (
      fn.format(name="f", callee="g") + fn.format(name="g", callee="f"))
  return graph(placeholder() + 'node { name: "out" op: "PartitionedCall" input: "x" '
               'attr { key: "Tin" value { list { type: DT_FLOAT } } } '
               'attr { key: "Tout" value { list { type: DT_FLOAT } } } '
               'attr { key: "f" value { func { name: "f" } } } } library { ' + lib + " }")


@pytest.mark.parametrize("direct", [True, False])
def test_recursive_functions_are_detected_while_reading(direct):
  with pytest.raises(tf2jax.RecursiveFunctionError, match="calls itself"):
    tf2jax.convert_graph_def(recursive_library(direct), ["x"], "out:0")


def test_call_to_missing_function():
  graph_def = recursive_library(True)
  del graph_def.library.function[:]
  with pytest.raises(tf2jax.MissingInputError, match="calls function 'f'"):
    tf2jax.convert_graph_def(graph_def, ["x"], "out:0")
  assert tf_refuses(graph_def)


def test_graph_def_entry_point_matches_a_tf1_session(tmp_path):
  with tf.Graph().as_default() as g:
    x = tf.compat.v1.placeholder(tf.float32, [None, 3], name="x")
    tf.compat.v1.placeholder(tf.float32, [2], name="unused")
    w = tf.constant(np.arange(6, dtype=np.float32).reshape(3, 2) / 6)
    tf.nn.softmax(tf.nn.relu(tf.matmul(x, w) - 0.5), name="probs")
  graph_def = g.as_graph_def()
  path = tmp_path / "frozen.pb"
  path.write_bytes(graph_def.SerializeToString())
  (tmp_path / "frozen.pbtxt").write_text(str(graph_def))
  value = np.random.default_rng(0).normal(size=(4, 3)).astype(np.float32)
  with tf.compat.v1.Session(graph=g) as sess:
    expected = sess.run("probs:0", {"x:0": value})
  for source in (graph_def, path, str(tmp_path / "frozen.pbtxt"), path.read_bytes()):
    fn = tf2jax.convert_graph_def(source, ["x:0"], "probs:0")
    np.testing.assert_allclose(fn(value), expected, rtol=1e-6)
  fn = tf2jax.convert_graph_def(graph_def, ["x"], ["probs:0", "x:0"])
  probs, same = fn(value)
  np.testing.assert_allclose(probs, expected, rtol=1e-6)
  np.testing.assert_array_equal(same, value)
  with pytest.raises(tf2jax.MissingInputError, match="must name a Placeholder"):
    tf2jax.convert_graph_def(graph_def, ["probs"], "probs:0")
  with pytest.raises(tf2jax.InvalidGraphError, match="not a readable GraphDef"):
    tf2jax.convert_graph_def(b"\xff\xff\xff garbage", ["x"], "probs:0")
