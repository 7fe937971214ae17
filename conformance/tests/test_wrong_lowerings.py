"""The harness must be able to fail: deliberately wrong lowerings, registered in code with
override=True, are each caught by the matching first-party spec.

(FloorMod with C-style signs, the issue's first example, has no lowering yet to break.)
"""

import types

import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import Phase, settings

import tf2jax
from tf2jax_conformance import cases, profiles, run_cases
from tf2jax_core import FLOAT, NUMBER, REAL, hookimpl, is_static, lowering, xnp

# Enough derandomized examples to meet each bug; no shrinking (only detection matters).
SETTINGS = settings(profiles.settings("ci"), max_examples=60,
                    phases=[Phase.explicit, Phase.generate])


def _plugin(name: str, *lowerings):
  module = types.ModuleType(name)
  module.TF2JAX_PLUGIN_API = 1

  @hookimpl
  def tf2jax_register_ops(registry):
    for low in lowerings:
      registry.add(low, override=True)
  module.tf2jax_register_ops = tf2jax_register_ops
  return module


def _run_with(plugin, op: str, dtypes):
  name = plugin.__name__
  tf2jax.register_plugin(plugin, name=name)
  try:
    from tf2jax_core.plugins import manager
    assert manager().op_table().get(op).provider.name == name
    return run_cases(cases(ops=[op], dtypes=dtypes), SETTINGS)
  finally:
    tf2jax.unregister_plugin(name)


def _assert_caught(results, *words):
  failed = [r for r in results if r.status == "fail"]
  assert failed, "the wrong lowering passed every case: " + ", ".join(
      f"{r.op}[{r.dtype}]" for r in results)
  text = "\n".join(r.error or "" for r in failed)
  assert any(w in text for w in words), text
  assert all(r.failing_example for r in failed), "no minimal failing example recorded"


def test_relu6_without_upper_clamp():
  @lowering("Relu6", attrs={"T": REAL})
  def relu6(node):
    return lambda x: xnp(x).maximum(x, np.zeros((), x.dtype))
  results = _run_with(_plugin("bad-relu6", relu6), "Relu6", ["float32", "int32"])
  assert all(r.status == "fail" for r in results)
  _assert_caught(results, "values differ", "exact")


def test_softmax_on_the_wrong_axis():
  @lowering("Softmax", attrs={"T": FLOAT})
  def softmax(node):
    def run(x):
      if np.size(x) == 0:
        return x
      m = xnp(x)
      e = m.exp(x - m.max(x, axis=0, keepdims=True))
      return e / m.sum(e, axis=0, keepdims=True)
    return run
  _assert_caught(_run_with(_plugin("bad-softmax", softmax), "Softmax", ["float32"]),
                 "values differ", "NaN")


def test_int32_op_returning_int64():
  # The walker raises DtypeMismatchError for it (with x64 on, or on the NumPy path); the
  # harness counts that as a failure.
  @lowering("AddV2", attrs={"T": NUMBER})
  def add(node):
    return lambda x, y: xnp(x, y).add(x, y).astype("int64")
  results = _run_with(_plugin("bad-add", add), "AddV2", ["int32"])
  _assert_caught(results, "DtypeMismatchError", "dtype int64")


def test_maximum_ignoring_nan():
  @lowering("Maximum", attrs={"T": REAL})
  def maximum(node):
    return lambda x, y: np.fmax(x, y) if is_static(x, y) else jnp.fmax(x, y)
  # Caught on the values (NaN where TF has one) or on the gradient at a NaN input.
  _assert_caught(_run_with(_plugin("bad-maximum", maximum), "Maximum", ["float32"]), "NaN",
                 "gradient")


def test_sum_ignoring_keep_dims():
  @lowering("Sum", attrs={"T": NUMBER, "Tidx": ("int32", "int64"), "keep_dims": None},
            static_inputs=(1,))
  def reduce_sum(node):
    def run(x, axes):
      axes = tuple(int(a) % max(np.ndim(x), 1) for a in np.reshape(axes, -1))
      return xnp(x).sum(x, axis=axes, dtype=x.dtype)
    return run
  _assert_caught(_run_with(_plugin("bad-sum", reduce_sum), "Sum", ["float32"]), "shape")


@pytest.mark.parametrize("op", ["Relu6", "Maximum"])
def test_the_right_lowerings_pass_the_same_runs(op):
  results = run_cases(cases(ops=[op], dtypes=["float32"]), SETTINGS)
  assert all(r.status == "pass" for r in results), [r.error for r in results]
