"""TF1 reference variables (VariableV2, Assign, AssignAdd, AssignSub) in tf.compat.v1
graphs, against a tf.compat.v1.Session.

A VariableV2 is the param named after its node (its TF1 name and checkpoint key):
`tf2jax.convert_v1_saved_model` reads them from the SavedModel's checkpoint, and the
Assign* updates come back in new_params. `tf2jax.convert_graph_def` takes no params, so
it refuses graphs holding variables (freeze them first).
"""

import jax
import numpy as np
import pytest
import tensorflow as tf

import tf2jax
from tf2jax_core.errors import ConversionError, VariablesNotSupportedError

v1 = tf.compat.v1
X = np.array([[1.5, -2.0, 3.0], [0.25, 4.0, -1.0]], np.float32)
Y = np.array([[0.5, 1.0, 2.0], [3.0, -0.5, 1.0]], np.float32)
V0 = np.arange(6, dtype=np.float32).reshape(2, 3)
W0 = np.array([7, -3], np.int32)  # int32 refs: what a tf.function cannot run
U0 = np.full((2, 3), -1.0, np.float32)


def save_model(path):
  """Signatures: "updates" (v += x, v -= y, v read back after both, an AssignAdd's output
  used, w replaced), "assign_first" (u = x, u += y, u read back) and "bad_shape"
  (v += z of any shape)."""
  graph = tf.Graph()
  with graph.as_default():
    x = v1.placeholder(tf.float32, [2, 3], name="x")
    y = v1.placeholder(tf.float32, [2, 3], name="y")
    z = v1.placeholder(tf.float32, None, name="z")
    v = v1.Variable(V0, use_resource=False, name="v")
    w = v1.Variable(W0, use_resource=False, name="w")
    u = v1.Variable(U0, use_resource=False, name="u")
    assert v.dtype.name == "float32_ref" and w.dtype.name == "int32_ref"
    added = v1.assign_add(v, x)
    # An Assign's output is a ref in TF: what reads it runs before the next update.
    doubled = added * 2.0
    with tf.control_dependencies([added, doubled]):
      subtracted = v1.assign_sub(v, y)
    with tf.control_dependencies([subtracted]):
      read = tf.identity(v.read_value())
    replaced = v1.assign(w, tf.cast(tf.reduce_sum(x, axis=1), tf.int32) + W0)
    updates = {"read": read, "doubled": doubled, "w": tf.identity(replaced)}
    # What reads an Assign's output runs before the next update: TF's Identity of a ref
    # shares the variable's buffer, which the AssignAdd then changes in place.
    first = v1.assign(u, x) * 1.0
    with tf.control_dependencies([first]):
      second = v1.assign_add(u, y)
    with tf.control_dependencies([second]):
      read_u = tf.identity(u.read_value())
    assign_first = {"first": first, "read": read_u}
    bad_shape = {"out": tf.identity(v1.assign_add(v, z))}
    with v1.Session(graph=graph) as sess:
      sess.run(v1.global_variables_initializer())
      sig = v1.saved_model.predict_signature_def
      builder = v1.saved_model.Builder(str(path))
      builder.add_meta_graph_and_variables(sess, ["serve"], signature_def_map={
          "updates": sig({"x": x, "y": y}, updates),
          "assign_first": sig({"x": x, "y": y}, assign_first),
          "bad_shape": sig({"z": z}, bad_shape)})
      builder.save()
  return graph


def session_run(path, signature, feeds, variables=()):
  """The signature's outputs, and the variables' values after the run."""
  with tf.Graph().as_default() as g, v1.Session(graph=g) as sess:
    meta = v1.saved_model.loader.load(sess, ["serve"], str(path))
    sig = meta.signature_def[signature]
    feed = {g.get_tensor_by_name(sig.inputs[k].name): v for k, v in feeds.items()}
    fetch = {k: g.get_tensor_by_name(t.name) for k, t in sig.outputs.items()}
    out = sess.run(fetch, feed)
    return out, {name: sess.run(f"{name}:0") for name in variables}


def test_tf1_ref_variable_updates(tmp_path):
  graph = save_model(tmp_path)
  ops = {op.type for op in graph.get_operations()}
  assert {"VariableV2", "Assign", "AssignAdd", "AssignSub"} <= ops
  fn, params = tf2jax.convert_v1_saved_model(str(tmp_path), signature="updates")
  assert sorted(params) == ["v", "w"]
  np.testing.assert_array_equal(params["v"], V0)
  feeds = {"x": X, "y": Y}
  want, want_vars = session_run(tmp_path, "updates", feeds, ["v", "w"])
  np.testing.assert_array_equal(want["read"], V0 + X - Y)  # the read saw both updates
  for f in (fn, jax.jit(fn)):
    got, new_params = f(params, **feeds)
    for k in want:
      np.testing.assert_array_equal(got[k], want[k])
      assert got[k].dtype == want[k].dtype
    for name, value in want_vars.items():
      np.testing.assert_array_equal(new_params[name], value)


def test_tf1_assign_gives_a_value_without_params(tmp_path):
  save_model(tmp_path)
  fn, params = tf2jax.convert_v1_saved_model(str(tmp_path), signature="assign_first")
  assert sorted(params) == ["u"]
  want, want_vars = session_run(tmp_path, "assign_first", {"x": X, "y": Y}, ["u"])
  got, new_params = fn({}, x=X, y=Y)  # u is assigned before it is read
  for k in want:
    np.testing.assert_array_equal(got[k], want[k])
  np.testing.assert_array_equal(new_params["u"], want_vars["u"])


def test_tf1_variable_errors(tmp_path):
  save_model(tmp_path)
  fn, params = tf2jax.convert_v1_saved_model(str(tmp_path), signature="updates")
  with pytest.raises(ConversionError, match="AssignAdd node .* TF1 variable 'v' .* params"):
    fn({"w": params["w"]}, x=X, y=Y)
  # Shapes must match, as in TF.
  fn, params = tf2jax.convert_v1_saved_model(str(tmp_path), signature="bad_shape")
  ones = np.ones(3, np.float32)
  with pytest.raises(tf.errors.InvalidArgumentError):
    session_run(tmp_path, "bad_shape", {"z": ones})
  with pytest.raises(ValueError, match="same size"):
    fn(params, z=ones)
  np.testing.assert_array_equal(fn(params, z=X)[0]["out"], V0 + X)
  # A GraphDef has no params: convert_graph_def refuses its variables.
  graph = tf.Graph()
  with graph.as_default():
    x = v1.placeholder(tf.float32, [2, 3], name="x")
    out = v1.assign_add(v1.Variable(V0, use_resource=False, name="v"), x)
  with pytest.raises(VariablesNotSupportedError, match="uses variables"):
    tf2jax.convert_graph_def(graph.as_graph_def(), ["x"], out.name)
