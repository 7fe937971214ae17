"""The config-option and graph-rewrite hooks, through a plugin registered in code."""

import types

import numpy as np
import pytest
import tensorflow as tf

import tf2jax
from tf2jax_core import Option, hookimpl


def make_plugin(name, **hooks):
  module = types.ModuleType(name)
  module.TF2JAX_PLUGIN_API = 1
  for hook, fn in hooks.items():
    setattr(module, hook, hookimpl(fn))
  return module


@pytest.fixture
def registered():
  names = []

  def register(module, name):
    names.append(name)
    tf2jax.register_plugin(module, name=name, version="9.9")

  yield register
  for name in names:
    tf2jax.unregister_plugin(name)


def test_plugin_option_is_a_config_flag(registered):
  registered(make_plugin("opts", tf2jax_config_options=lambda: [
      Option("acme_fast_math", False, "Use the fast path.")]), "opts")
  assert tf2jax.get_config("acme_fast_math") is False
  with tf2jax.override_config("acme_fast_math", True):
    assert tf2jax.get_config("acme_fast_math") is True
  assert tf2jax.config.options()["acme_fast_math"].provider == "opts"


def test_option_clash_fails_only_that_plugin(registered):
  registered(make_plugin("clash", tf2jax_config_options=lambda: [
      Option("strict_shape_check", False, "Redefined.")]), "clash")
  info = {i.name: i for i in tf2jax.plugins()}
  assert info["clash"].status == "failed" and "strict_shape_check" in info["clash"].error
  assert info["tf2jax-nn"].status == "loaded"
  assert tf2jax.get_config("strict_shape_check") is True


def test_graph_rewrite_edits_graph_before_lowering(registered):
  def sin_to_cos(graph):
    for node in graph.nodes.values():
      if node.op == "Sin":
        node.op = "Cos"

  @tf.function
  def forward(x):
    return tf.sin(x) * 2.0

  x = np.linspace(-2, 2, 5).astype(np.float32)
  plain = tf2jax.convert_functional(forward, x)
  np.testing.assert_allclose(plain(x), forward(x).numpy(), rtol=1e-6)
  registered(make_plugin("rewrites", tf2jax_graph_rewrites=lambda: [sin_to_cos]), "rewrites")
  rewritten = tf2jax.convert_functional(forward, x)
  np.testing.assert_allclose(rewritten(x), 2 * np.cos(x), rtol=1e-6)
