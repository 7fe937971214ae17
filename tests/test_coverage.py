"""`tf2jax-coverage` as a subprocess on real models written by the tests."""

import json
import os
import pathlib
import shutil
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

from tf2jax_core import coverage

BIN = pathlib.Path(sys.executable).parent / "tf2jax-coverage"


def run(*args, **env_vars):
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", **env_vars)
  proc = subprocess.run([str(BIN), *map(str, args)], capture_output=True, text=True,
                        timeout=300, env=env)
  return proc.returncode, proc.stdout, proc.stderr


def save_keras(model, input_shape, path):
  module = tf.Module()
  module.model = model
  module.f = tf.function(lambda x: model(x), input_signature=[tf.TensorSpec(input_shape)])
  tf.saved_model.save(module, str(path), signatures={"serving_default": module.f})
  return path


@pytest.fixture(scope="module")
def models(tmp_path_factory):
  root = tmp_path_factory.mktemp("models")
  keras.utils.set_random_seed(0)
  cnn = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Conv2D(4, 3, activation="relu"),
                          keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(2)])
  lstm = keras.Sequential([keras.Input((5, 3)), keras.layers.LSTM(4), keras.layers.Dense(1)])
  mlp = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, activation="relu"),
                          keras.layers.Softmax()])
  paths = {
      "cnn": save_keras(cnn, (None, 8, 8, 3), root / "cnn"),
      "lstm": save_keras(lstm, (None, 5, 3), root / "lstm"),
      "mlp": save_keras(mlp, (None, 4), root / "mlp"),
  }

  # A TF1 graph with Switch/Merge, frozen to a binary and a text GraphDef.
  from tensorflow.python.ops import control_flow_util
  old = control_flow_util.ENABLE_CONTROL_FLOW_V2
  control_flow_util.ENABLE_CONTROL_FLOW_V2 = False
  try:
    with tf.Graph().as_default() as graph:
      x = tf.compat.v1.placeholder(tf.float32, [3], name="x")
      tf.compat.v1.cond(tf.reduce_sum(x) > 0, lambda: x * 2.0, lambda: x - 1.0, name="out")
  finally:
    control_flow_util.ENABLE_CONTROL_FLOW_V2 = old
  graph_def = graph.as_graph_def()
  assert {"Switch", "Merge"} <= {n.op for n in graph_def.node}
  paths["tf1_pb"] = root / "tf1.pb"
  paths["tf1_pb"].write_bytes(graph_def.SerializeToString())
  paths["tf1_pbtxt"] = root / "tf1.pbtxt"
  paths["tf1_pbtxt"].write_text(str(graph_def))

  # An op no plugin provides (string ops), next to supported ones.
  module = tf.Module()
  module.f = tf.function(lambda x: tf.strings.length(tf.strings.as_string(x * 2.0)),
                         input_signature=[tf.TensorSpec((None,))])
  tf.saved_model.save(module, str(root / "strings"), signatures={"serving_default": module.f})
  paths["strings"] = root / "strings"

  # A model that fails when run (reads a missing file, asserts false) and whose
  # variables are gone: coverage must still report it, since it never runs anything.
  module = tf.Module()
  module.v = tf.Variable(1.0)
  module.f = tf.function(
      lambda x: x * module.v + tf.strings.to_number(tf.io.read_file("/nonexistent/file")),
      input_signature=[tf.TensorSpec(())])
  tf.saved_model.save(module, str(root / "hostile"), signatures={"serving_default": module.f})
  shutil.rmtree(root / "hostile" / "variables")
  paths["hostile"] = root / "hostile"

  corrupt = (paths["mlp"] / "saved_model.pb").read_bytes()
  (root / "corrupt").mkdir()
  (root / "corrupt" / "saved_model.pb").write_bytes(corrupt[: len(corrupt) // 3])
  paths["corrupt"] = root / "corrupt"
  paths["garbage_pb"] = root / "garbage.pb"
  paths["garbage_pb"].write_bytes(b"\xff\xfe this is not a protobuf \x00\x01")
  (root / "empty_dir").mkdir()
  paths["empty_dir"] = root / "empty_dir"
  paths["empty_pb"] = root / "empty.pb"
  paths["empty_pb"].write_bytes(b"")
  return paths


def test_supported_model_exits_0_with_table(models):
  code, out, err = run(models["mlp"])
  assert code == 0, err
  assert "SavedModel" in out and "serving_default" in out
  lines = {line.split()[0]: line for line in out.splitlines()[2:-1] if line.strip()}
  assert "tf2jax-nn 0.1.0" in lines["Relu"] and "tf2jax-nn 0.1.0" in lines["Softmax"]
  assert "supported" in lines["MatMul"] and "tf2jax 0.4.0" in lines["MatMul"]
  assert "StatefulPartitionedCall" in lines


def test_keras_cnn_json_schema_and_install_hint(models, monkeypatch):
  code, out, _ = run(models["cnn"], "--json")
  assert code == 0, "every op of a small Keras CNN is lowered"
  assert {r["op"]: r for r in json.loads(out)["ops"]}["Conv2D"]["provider"]["name"] == \
      "tf2jax-nn"
  # Without the nn plugin loaded, its ops are unsupported, with what to do.
  code, out, _ = run(models["cnn"], "--json", TF2JAX_PLUGINS="random")
  assert code == 1
  report = json.loads(out)
  assert report["schema"] == "tf2jax-coverage/1" and report["supported"] is False
  ops = {r["op"]: r for r in report["ops"]}
  for record in report["ops"]:
    assert set(record) >= {"op", "count", "status", "provider", "install", "nodes"}
    assert record["status"] in ("supported", "unsupported", "attribute-unsupported")
    assert record["count"] == len(record["nodes"])
  conv = ops["Conv2D"]
  assert conv["status"] == "unsupported" and conv["provider"] is None
  assert conv["nodes"] and all("/" in n for n in conv["nodes"])  # inside library functions
  assert ops["MatMul"]["provider"] == {"name": "tf2jax", "version": "0.4.0"}
  # The hint names the plugin: tf2jax-nn is installed here, so it says it is not loaded.
  assert "tf2jax-nn" in conv["hint"] and "not loaded" in conv["hint"]
  # Where the plugin is not installed, the exact install command is given.
  monkeypatch.setenv("TF2JAX_PLUGINS", "random")
  monkeypatch.setattr("tf2jax_core.plugins._installed", lambda dist: False)
  from tf2jax_core import plugins
  plugins.manager().reload()
  try:
    record = {r.op: r for r in coverage.coverage(str(models["cnn"])).ops}["Conv2D"]
    assert record.install == "pip install tf2jax[nn]"
  finally:
    monkeypatch.undo()
    plugins.manager().reload()


def test_keras_lstm_walks_loop_bodies(models):
  report = coverage.coverage(str(models["lstm"]))
  ops = {r.op: r for r in report.ops}
  assert "While" in ops or "StatelessWhile" in ops
  assert any(op in ops for op in ("MatMul", "BiasAdd"))
  body_nodes = [n for r in report.ops for n in r.nodes if "while_body" in n]
  assert body_nodes, "the loop body function is walked"
  assert report.functions >= 3


def test_tf1_switch_merge_graphs_binary_and_text(models):
  for key in ("tf1_pb", "tf1_pbtxt"):
    code, out, _ = run(models[key], "--json")
    assert code == 0
    ops = {r["op"]: r for r in json.loads(out)["ops"]}
    assert ops["Switch"]["provider"]["name"] == "tf2jax-controlflow"
    assert ops["Merge"]["status"] == "supported"
    assert ops["Placeholder"]["status"] == "supported"
  code, out, _ = run(models["tf1_pb"], "--json", TF2JAX_PLUGINS="nn")
  assert code == 1
  ops = {r["op"]: r for r in json.loads(out)["ops"]}
  assert ops["Switch"]["status"] == "unsupported"
  assert "tf2jax-controlflow" in ops["Merge"]["hint"]


def test_op_nobody_provides_and_markdown(models):
  code, out, _ = run(models["strings"], "--markdown")
  assert code == 1
  assert "| AsString |" in out and "no known plugin provides it" in out
  assert out.startswith("# Coverage of")


def test_nothing_is_executed(models):
  code, out, err = run(models["hostile"], "--json")
  assert code == 1, err  # ReadFile / StringToNumber are unsupported, and that is all
  ops = {r["op"]: r for r in json.loads(out)["ops"]}
  assert ops["ReadFile"]["status"] == "unsupported"
  assert ops["ReadVariableOp"]["status"] == "supported"


def test_signature_filter(models):
  code, out, _ = run(models["mlp"], "--signature", "serving_default", "--json")
  assert code == 0 and json.loads(out)["signatures"] == ["serving_default"]
  code, _, err = run(models["mlp"], "--signature", "nope")
  assert code == 2 and "no signature 'nope'" in err


@pytest.mark.parametrize("key,message", [
    ("corrupt", "not a readable SavedModel"),
    ("garbage_pb", "not a readable GraphDef"),
    ("empty_dir", "without saved_model.pb"),
    ("empty_pb", "the graph is empty"),
])
def test_bad_input_exits_2_with_one_line(models, key, message):
  code, out, err = run(models[key])
  assert code == 2 and out == ""
  assert message in err and "Traceback" not in err
  assert len(err.strip().splitlines()) == 1


def test_missing_path_and_bad_usage(tmp_path):
  code, _, err = run(tmp_path / "nothing-here")
  assert code == 2 and "no such file" in err
  code, _, _ = run()
  assert code == 2


def test_attribute_unsupported_is_reported_by_node(tmp_path):
  from tensorflow.core.framework import graph_pb2
  graph = graph_pb2.GraphDef()
  node = graph.node.add(name="bias", op="BiasAdd")
  node.attr["T"].type = tf.float32.as_datatype_enum
  node.attr["data_format"].s = b"NCDHW"
  ok = graph.node.add(name="relu", op="Relu")
  ok.attr["T"].type = tf.float32.as_datatype_enum
  path = tmp_path / "g.pb"
  path.write_bytes(graph.SerializeToString())
  report = coverage.coverage(str(path))
  records = {r.op: r for r in report.ops}
  assert records["BiasAdd"].status == "attribute-unsupported"
  problem = records["BiasAdd"].attribute_problems[0]
  assert problem["node"] == "bias" and problem["attr"] == "data_format"
  assert problem["value"] == "NCDHW"
  assert records["Relu"].status == "supported"
  assert not report.supported
