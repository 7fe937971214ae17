"""TF1 SavedModels (tf.compat.v1 builder): a signature converts by name with its variables
as params; values and gradients match a tf.compat.v1.Session run."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import tensorflow as tf

import tf2jax

v1 = tf.compat.v1


pytestmark = pytest.mark.usefixtures("control_flow_v1")  # see conftest.py


def save_v1_model(path, use_resource: bool):
  """A TF1 model with variables, a cond and a while loop, saved with two signatures."""
  graph = tf.Graph()
  with graph.as_default():
    x = v1.placeholder(tf.float32, (None, 4), name="x")
    scale = v1.placeholder(tf.float32, (), name="scale")
    w = v1.get_variable("w", (4, 3), initializer=v1.random_normal_initializer(seed=1),
                        use_resource=use_resource)
    b = v1.get_variable("b", (3,), initializer=v1.constant_initializer(0.5),
                        use_resource=use_resource)
    offset = v1.get_variable("offset", (), initializer=v1.constant_initializer(0.25),
                             trainable=False, use_resource=use_resource)
    pre = tf.matmul(x, w) + b + offset
    h = v1.cond(scale > 1.0, lambda: pre * scale, lambda: pre - scale)
    _, h = v1.while_loop(lambda i, v: i < 3, lambda i, v: (i + 1, tf.tanh(v) * 1.5),
                         [tf.constant(0), h])
    probs = tf.nn.softmax(h, name="probs")
    total = tf.reduce_sum(h, name="total")
    with v1.Session(graph=graph) as sess:
      sess.run(v1.global_variables_initializer())
      builder = v1.saved_model.Builder(str(path))
      sig = v1.saved_model.predict_signature_def({"x": x, "scale": scale},
                                                 {"probs": probs, "total": total})
      only_x = v1.saved_model.predict_signature_def({"x": x}, {"logits": pre * 2.0})
      builder.add_meta_graph_and_variables(
          sess, ["serve"], signature_def_map={"serving_default": sig, "doubled": only_x},
          strip_default_attrs=True)
      builder.save()
      return graph, sess.run({"w": w, "b": b})


def session_run(path, signature, feeds, grad_of=None):
  with tf.Graph().as_default() as g, v1.Session(graph=g) as sess:
    meta = v1.saved_model.loader.load(sess, ["serve"], str(path))
    sig = meta.signature_def[signature]
    feed = {g.get_tensor_by_name(sig.inputs[k].name): v for k, v in feeds.items()}
    fetch = {k: g.get_tensor_by_name(t.name) for k, t in sig.outputs.items()}
    if grad_of is not None:  # d sum(outputs[grad_of]) / d trainable variables
      vars_ = v1.trainable_variables()
      grads = tf.gradients(tf.reduce_sum(fetch[grad_of]), vars_)
      return sess.run(dict(zip([v.op.name for v in vars_], grads)), feed)
    return sess.run(fetch, feed)


@pytest.mark.parametrize("use_resource", [True, False], ids=["resource", "ref"])
def test_tf1_saved_model_signatures(tmp_path, use_resource):
  graph, values = save_v1_model(tmp_path, use_resource)
  ops = {op.type for op in graph.get_operations()}
  assert {"Switch", "Merge", "Enter", "Exit", "NextIteration"} <= ops
  assert ("VarHandleOp" if use_resource else "VariableV2") in ops
  fn, params = tf2jax.convert_v1_saved_model(str(tmp_path))
  assert sorted(params) == ["b", "offset", "w"]
  np.testing.assert_array_equal(params["w"], values["w"])
  assert params["w"].trainable and not params["offset"].trainable
  rng = np.random.default_rng(0)
  jitted = jax.jit(fn)
  for batch, scale in [(2, 0.5), (5, 2.0)]:
    feeds = {"x": rng.normal(size=(batch, 4)).astype(np.float32), "scale": np.float32(scale)}
    want = session_run(tmp_path, "serving_default", feeds)
    got, new_params = jitted(params, **feeds)
    assert sorted(got) == ["probs", "total"]
    for k in want:
      np.testing.assert_allclose(got[k], want[k], rtol=1e-5, atol=1e-6)

  fn2, params2 = tf2jax.convert_v1_saved_model(str(tmp_path), signature="doubled",
                                               tags="serve")
  feeds = {"x": rng.normal(size=(3, 4)).astype(np.float32)}
  np.testing.assert_allclose(fn2(params2, **feeds)[0]["logits"],
                             session_run(tmp_path, "doubled", feeds)["logits"], rtol=1e-5,
                             atol=1e-6)

  # Gradients w.r.t. the trainable variables, against tf.gradients in the session.
  feeds = {"x": rng.normal(size=(3, 4)).astype(np.float32), "scale": np.float32(2.0)}
  want = session_run(tmp_path, "serving_default", feeds, grad_of="total")
  trainable = {k: v for k, v in params.items() if v.trainable}
  got = jax.grad(lambda p: jnp.sum(fn({**params, **p}, **feeds)[0]["total"]))(trainable)
  for k in ("w", "b"):
    np.testing.assert_allclose(got[k], want[k], rtol=1e-4, atol=1e-5)


def test_tf1_saved_model_errors(tmp_path):
  save_v1_model(tmp_path, use_resource=True)
  with pytest.raises(tf2jax.MissingInputError, match=r"no signature 'nope'.*'doubled'"):
    tf2jax.convert_v1_saved_model(str(tmp_path), signature="nope")
  with pytest.raises(tf2jax.MissingInputError, match=r"no MetaGraph with tags \['train'\]"):
    tf2jax.convert_v1_saved_model(str(tmp_path), tags=["train"])
  with pytest.raises(tf2jax.MissingInputError, match="no saved_model.pb"):
    tf2jax.convert_v1_saved_model(str(tmp_path / "missing"))


def test_tf2_saved_model_is_pointed_to_convert_from_restored(tmp_path):
  module = tf.Module()
  module.v = tf.Variable([1.0, 2.0])
  module.f = tf.function(lambda x: x * module.v,
                         input_signature=[tf.TensorSpec((2,), tf.float32)])
  tf.saved_model.save(module, str(tmp_path), signatures=module.f)
  with pytest.raises(tf2jax.MissingInputError, match="convert_from_restored"):
    tf2jax.convert_v1_saved_model(str(tmp_path))
