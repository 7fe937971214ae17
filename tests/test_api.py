"""The user API: structures, variables, calls, checks and clear errors, against TF."""

import inspect

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import tensorflow as tf

import tf2jax
from tf2jax_core import walker


def test_annotated_function_metadata():
  @tf.function
  def forward(x, y, *, scale):
    """Docs."""
    return {"sum": x + y, "parts": [x * scale, None]}

  spec = tf.TensorSpec((None, 3), tf.float32)
  fn = tf2jax.convert_functional(forward, spec, np.zeros((1, 3), np.float32),
                                 scale=np.float32(2))
  assert fn.__name__ == "forward"
  assert "forward" in fn.__doc__
  assert list(fn.signature.parameters) == ["x", "y", "scale", "rng"]
  args, kwargs = fn.structured_inputs
  assert args[0].shape.as_list() == [None, 3] and args[1].shape == (1, 3) and kwargs["scale"].shape == ()
  assert fn.structured_outputs["sum"].shape.as_list() == [None, 3]
  assert fn.structured_outputs["parts"][1] is None

  x = np.arange(6, dtype=np.float32).reshape(2, 3)
  y = np.ones((1, 3), np.float32)
  out = fn(x, y, scale=np.float32(3))
  expected = forward(x, y, scale=np.float32(3))
  np.testing.assert_array_equal(out["sum"], expected["sum"].numpy())
  np.testing.assert_array_equal(out["parts"][0], expected["parts"][0].numpy())
  assert out["parts"][1] is None
  # Positional or keyword, like the TF function.
  np.testing.assert_array_equal(fn(x, y=y, scale=3.0)["sum"], out["sum"])


def test_nested_inputs_and_jit_vmap_jaxpr():
  @tf.function
  def forward(inputs):
    return inputs["a"] * inputs["b"][0] - inputs["b"][1]

  spec = {"a": tf.TensorSpec((4,)), "b": (tf.TensorSpec((4,)), tf.TensorSpec((4,)))}
  fn = tf2jax.convert_functional(forward, spec)
  rng = np.random.default_rng(0)
  inputs = {"a": rng.normal(size=4).astype(np.float32),
            "b": (rng.normal(size=4).astype(np.float32), rng.normal(size=4).astype(np.float32))}
  expected = forward(inputs).numpy()
  np.testing.assert_allclose(jax.jit(fn)(inputs), expected, rtol=1e-6)
  assert "mul" in str(jax.make_jaxpr(fn)(inputs))
  batched = jax.tree.map(lambda v: np.stack([v, 2 * v]), inputs)
  with tf2jax.override_config("strict_shape_check", True):
    out = jax.vmap(fn)(batched)
  np.testing.assert_allclose(out[1], forward(jax.tree.map(lambda v: 2 * v, inputs)).numpy(),
                             rtol=1e-6)
  with pytest.raises(tf2jax.InputSpecError, match="dict"):
    fn([1, 2])


def test_none_batch_dims_under_jit_keep_shapes_static():
  @tf.function
  def forward(x):
    flat = tf.reshape(x, [-1]) * 2.0
    return tf.reshape(flat, tf.shape(x)) + tf.cast(tf.reduce_sum(tf.shape(x)), tf.float32)

  fn = jax.jit(tf2jax.convert_functional(forward, tf.TensorSpec((None, 3))))
  for batch in (1, 8):
    x = np.random.default_rng(batch).normal(size=(batch, 3)).astype(np.float32)
    np.testing.assert_allclose(fn(x), forward(x).numpy(), rtol=1e-6)


def test_wrong_number_of_args_is_clear():
  fn = tf2jax.convert_functional(tf.function(lambda x: x + 1.0), np.zeros(3, np.float32))
  with pytest.raises(tf2jax.InputSpecError, match="too many positional arguments"):
    fn(np.zeros(3, np.float32), np.zeros(3, np.float32))
  with pytest.raises(TypeError, match="missing a required argument: 'x'"):
    fn()
  with pytest.raises(tf2jax.InputSpecError, match="must be an array"):
    fn("hello")


def test_python_scalars_take_the_traced_dtype():
  fn = tf2jax.convert_functional(tf.function(lambda x: x * 2.0), 0.0)
  out = fn(3)
  assert out.dtype == jnp.float32 and float(out) == 6.0


def test_variables_assign_then_read_follow_control_dependencies():
  v = tf.Variable(np.float32(1.0), name="counter")

  @tf.function
  def step(x):
    before = v.read_value()
    v.assign_add(x)
    after = v.read_value()
    v.assign(after * 10.0)
    return before, after

  jax_fn, params = tf2jax.convert(step, np.float32(0))
  assert list(params) == ["counter"] and params["counter"].name == "counter"
  (before, after), new_params = jax_fn(params, np.float32(2.0))
  tf_before, tf_after = step(np.float32(2.0))
  assert float(before) == float(tf_before) == 1.0
  assert float(after) == float(tf_after) == 3.0
  assert float(new_params["counter"]) == float(v.numpy()) == 30.0
  assert float(params["counter"]) == 1.0  # inputs are not mutated
  (_, after2), _ = jax.jit(jax_fn)(new_params, np.float32(1.0))
  assert float(after2) == 31.0


def test_repeated_variable_names_get_suffixes():
  a = tf.Variable(np.ones(2, np.float32), name="w")
  b = tf.Variable(np.full(2, 2.0, np.float32), name="w")
  c = tf.Variable(np.full(2, 3.0, np.float32), name="w")
  fn, params = tf2jax.convert(tf.function(lambda x: x * a + b - c), np.zeros(2, np.float32))
  assert sorted(params) == ["w", "w_1", "w_2"]
  assert sorted(float(p[0]) for p in params.values()) == [1.0, 2.0, 3.0]
  np.testing.assert_array_equal(fn(params, np.ones(2, np.float32))[0], [0.0, 0.0])


def test_convert_functional_refuses_variables():
  v = tf.Variable(1.0, name="w")
  with pytest.raises(tf2jax.VariablesNotSupportedError, match="tf2jax.convert"):
    tf2jax.convert_functional(tf.function(lambda x: x * v), 1.0)


def test_nested_function_converted_once(monkeypatch):
  @tf.function
  def inner(x):
    return tf.sin(x) * 2.0

  @tf.function
  def outer(x):
    return inner(x) + inner(x * 3.0)

  compiled = []
  original = walker.Session.function

  def counting(self, name):
    if name not in self.functions:
      compiled.append(name)
    return original(self, name)

  monkeypatch.setattr(walker.Session, "function", counting)
  fn = tf2jax.convert_functional(outer, np.zeros(4, np.float32))
  assert len(compiled) == len(set(compiled)) and len(compiled) >= 1
  x = np.linspace(-1, 1, 4).astype(np.float32)
  np.testing.assert_allclose(jax.jit(fn)(x), outer(x).numpy(), rtol=1e-6)


def test_int64_without_x64_fails_clearly_and_works_with_it():
  @tf.function
  def forward(x):
    return x * tf.constant(3, tf.int64)

  fn = tf2jax.convert_functional(forward, np.zeros(3, np.int64))
  with pytest.raises(tf2jax.DtypeMismatchError, match="jax_enable_x64"):
    fn(np.arange(3, dtype=np.int64))
  with jax.enable_x64(True):
    out = fn(np.arange(3, dtype=np.int64) + 2**40)
    assert out.dtype == np.int64
    np.testing.assert_array_equal(out, forward(np.arange(3, dtype=np.int64) + 2**40).numpy())


def test_float64_keeps_its_dtype_with_x64():
  fn = tf2jax.convert_functional(tf.function(lambda x: tf.exp(x)), np.zeros(2, np.float64))
  with jax.enable_x64(True):
    x = np.array([0.1, 700.0])
    out = fn(x)
    assert out.dtype == np.float64
    np.testing.assert_allclose(out, np.exp(x), rtol=1e-15)


def test_convert_inside_tf_tracing():
  v = tf.Variable(np.float32(2.0))
  inner = tf.function(lambda x: x * v)
  seen = {}

  @tf.function
  def outer(x):
    with pytest.raises(ValueError, match="skip_variables_evaluation_inside_tf_tracing"):
      tf2jax.convert(inner, np.float32(1))
    with tf2jax.override_config("skip_variables_evaluation_inside_tf_tracing", True):
      seen["fn"], seen["params"] = tf2jax.convert(inner, np.float32(1))
    return x

  outer(np.float32(1))
  assert seen["params"] == {}
  fn = seen["fn"]
  names = [n for n in fn.converted.steps if n.node.op == "Placeholder"]
  assert names
  out, _ = fn({"Variable": np.float32(5.0)}, np.float32(3.0))
  assert float(out) == 15.0


def test_config_api():
  assert tf2jax.get_config("strict_shape_check") is True
  assert tf2jax.config.get_config("resize_bilinear_precision") == "highest"
  with pytest.raises(ValueError, match="Known options:.*strict_dtype_check"):
    tf2jax.get_config("no_such_flag")
  with pytest.raises(ValueError, match="takes a bool"):
    tf2jax.update_config("strict_shape_check", "yes")
  with pytest.raises(ValueError, match="one of"):
    tf2jax.update_config("resize_bilinear_precision", "low")
  with tf2jax.override_config("strict_dtype_check", True):
    assert tf2jax.get_config("strict_dtype_check") is True
  assert tf2jax.get_config("strict_dtype_check") is False
  tf2jax.update_config("strict_dtype_check", True)
  try:
    assert tf2jax.get_config("strict_dtype_check") is True
  finally:
    tf2jax.update_config("strict_dtype_check", False)


def test_unknown_op_error_lists_every_op_with_nodes():
  # String ops: JAX has no string dtype, so no plugin lowers them.
  @tf.function
  def forward(x):
    text = tf.strings.as_string(x)
    return tf.strings.length(text) + tf.strings.length(tf.strings.as_string(x * 2.0))

  with pytest.raises(tf2jax.UnsupportedOpsError) as info:
    tf2jax.convert_functional(forward, np.zeros(3, np.float32))
  missing = {m.op: m for m in info.value.missing}
  assert set(missing) == {"AsString", "StringLength"}
  assert len(missing["AsString"].nodes) == 2
  assert "no known plugin provides it" in missing["AsString"].hint
  assert "AsString" in str(info.value) and "StringLength" in str(info.value)


def test_unsupported_attr_value_is_refused_at_conversion():
  @tf.function
  def forward(x):
    return tf.nn.bias_add(x, tf.constant([1.0, -2.0]), data_format="NCHW")

  # Supported: the lowering declares NCHW.
  fn = tf2jax.convert_functional(forward, np.zeros((1, 2, 3, 3), np.float32))
  x = np.random.default_rng(0).normal(size=(1, 2, 3, 3)).astype(np.float32)
  np.testing.assert_allclose(fn(x), forward(x).numpy())

  @tf.function
  def int_round(x):
    return tf.raw_ops.Round(x=x)  # Round's lowering leaves out int32 (TF's kernel gives 0)

  with pytest.raises(tf2jax.UnsupportedOpsError, match=r"attr T=.*int32.*supported values"):
    tf2jax.convert_functional(int_round, np.zeros(3, np.int32))


def test_signature_of_convert_has_params_first():
  fn, _ = tf2jax.convert(tf.function(lambda x: x), np.zeros(2, np.float32))
  params = list(fn.signature.parameters.values())
  assert params[0].name == "params" and params[-1].name == "rng"
  assert params[-1].kind == inspect.Parameter.KEYWORD_ONLY


def test_custom_gradient_matches_tf_and_plain_autodiff_when_off():
  @tf.function
  @tf.custom_gradient
  def forward(x):
    e = tf.exp(x)

    def grad(dy):
      return dy * tf.sin(x) + e  # deliberately not the true gradient

    return tf.reduce_sum(e), grad

  x = np.linspace(-1, 1, 4).astype(np.float32)
  fn = tf2jax.convert_functional(forward, np.zeros_like(x))
  np.testing.assert_allclose(fn(x), forward(x).numpy(), rtol=1e-6)
  with tf.GradientTape() as tape:
    tx = tf.constant(x)
    tape.watch(tx)
    y = forward(tx)
  expected = tape.gradient(y, tx).numpy()
  np.testing.assert_allclose(expected, np.sin(x) + np.exp(x), rtol=1e-6)  # TF's custom one
  np.testing.assert_allclose(jax.grad(fn)(x), expected, rtol=1e-6)
  np.testing.assert_allclose(jax.jit(jax.grad(fn))(x), expected, rtol=1e-6)
  with tf2jax.override_config("convert_custom_gradient", False):
    plain = tf2jax.convert_functional(forward, np.zeros_like(x))
  np.testing.assert_allclose(jax.grad(plain)(x), np.exp(x), rtol=1e-6)


def test_custom_gradient_with_variables_and_an_int_input():
  w = tf.Variable(np.array([0.5, -2.0, 1.5], np.float32), name="w")

  @tf.custom_gradient
  def clip_grad(v):
    def grad(dy):
      return tf.clip_by_value(dy, -0.1, 0.1)
    return tf.identity(v), grad

  @tf.function
  def forward(x, k):
    return tf.reduce_sum(clip_grad(x * w) * 3.0) + tf.cast(k, tf.float32)

  x = np.array([1.0, 2.0, 3.0], np.float32)
  fn, params = tf2jax.convert(forward, x, np.int32(0))
  with tf.GradientTape() as tape:
    tx = tf.constant(x)
    tape.watch(tx)
    y = forward(tx, np.int32(2))
  gx, gw = tape.gradient(y, [tx, w])
  loss = lambda p, v: fn(p, v, np.int32(2))[0]
  jgp, jgx = jax.grad(loss, argnums=(0, 1))(params, x)
  np.testing.assert_allclose(jgx, gx.numpy(), rtol=1e-6)
  np.testing.assert_allclose(jgp["w"], gw.numpy(), rtol=1e-6)
  assert float(loss(params, x)) == pytest.approx(float(y))


@pytest.mark.parametrize("value", [
    [[1.0, 2.0, 3.0]],  # a Python list, as TF accepts
    np.zeros((0, 3), np.float32),  # a 0-sized batch
    np.array([[np.nan, np.inf, -np.inf]], np.float32),
], ids=["list", "empty-batch", "nan-inf"])
def test_call_time_inputs_same_eager_and_jit(value):
  @tf.function
  def forward(x):
    return tf.nn.relu(x) * 2.0 + tf.reduce_sum(x, axis=[1], keepdims=True)

  fn = tf2jax.convert_functional(forward, tf.TensorSpec((None, 3), tf.float32))
  expected = forward(tf.constant(value, tf.float32)).numpy()
  eager, jitted = fn(value), jax.jit(fn)(value)
  for got in (eager, jitted):
    assert got.dtype == expected.dtype and got.shape == expected.shape
    np.testing.assert_array_equal(np.isnan(got), np.isnan(expected))
    np.testing.assert_allclose(got, expected, rtol=1e-6)


def test_python_scalar_where_tf_would_refuse_it():
  fn = tf2jax.convert_functional(tf.function(lambda x: x + 1), np.zeros((), np.int32))
  assert fn(3).dtype == jnp.int32 and int(fn(3)) == 4
  with pytest.raises((tf2jax.InputSpecError, ValueError, TypeError)):
    fn(2.5)  # TF: a float is not convertible to int32 without loss
  with pytest.raises(tf2jax.InputSpecError, match="does not fit int32"):
    fn(2**40)


def test_python_constants_traced_from_defaults_stay_optional():
  def fn(x, name=None, *, scale=2.0):
    return tf.math.sin(x, name=name) * scale

  x = np.linspace(-1, 1, 3).astype(np.float32)
  jax_fn = tf2jax.convert_functional(tf.function(fn), x)  # traced with the defaults
  assert str(jax_fn.signature) == "(x, name=None, *, scale=2.0, rng=None)"
  want = fn(tf.constant(x)).numpy()
  np.testing.assert_allclose(jax_fn(x), want, rtol=1e-6)
  np.testing.assert_allclose(jax_fn(x, None, scale=2.0), want, rtol=1e-6)
  with pytest.raises(tf2jax.InputSpecError, match="traced as the constant 2.0"):
    jax_fn(x, scale=3.0)
  # A tf.math function straight from TF's API has such a `name=None`.
  zeta = tf2jax.convert_functional(tf.function(tf.math.zeta), x + 3, x + 2)
  np.testing.assert_allclose(zeta(x + 3, x + 2), tf.math.zeta(x + 3, x + 2).numpy(),
                             rtol=1e-6)
