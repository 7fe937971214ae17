"""XlaReduceWindow graphs in the shape jax2tf gives cumsum/cumprod/cummax/cummin: lowered
to the cumulative op under `infer_cumulative_reduction_from_jax2tf`, to reduce_window
without it; the values are TF's either way."""

import jax
import numpy as np
import pytest
import tensorflow as tf
from tensorflow.compiler.tf2xla.ops import gen_xla_ops

import tf2jax

FLAG = "infer_cumulative_reduction_from_jax2tf"
REDUCERS = {"cumsum": tf.add, "cumprod": tf.multiply, "cummax": tf.maximum,
            "cummin": tf.minimum}


def identity(name, dtype):
  t = dtype.as_numpy_dtype
  low, high = (-np.inf, np.inf) if dtype.is_floating else (np.iinfo(t).min, np.iinfo(t).max)
  return np.asarray({"cumsum": 0, "cumprod": 1, "cummax": low, "cummin": high}[name], t)


def window_fn(name, dtype, shape, axis, reverse, strides=None, init=None):
  """x -> XlaReduceWindow(x) as jax2tf builds a cumulative reduction along `axis`."""
  rank = len(shape)
  n = shape[axis]
  window = [n if d == axis else 1 for d in range(rank)]
  pads = [([0, n - 1] if reverse else [n - 1, 0]) if d == axis else [0, 0]
          for d in range(rank)]
  spec = tf.TensorSpec([], dtype)
  op = REDUCERS[name]
  reducer = tf.function(lambda a, b: op(a, b), input_signature=[spec, spec],
                        autograph=False).get_concrete_function()
  init = identity(name, dtype) if init is None else np.asarray(init, dtype.as_numpy_dtype)

  def fn(x):
    return gen_xla_ops.xla_reduce_window(
        x, tf.constant(init), window, strides or [1] * rank, [1] * rank, [1] * rank, pads,
        reducer)
  return fn


def convert(fn, shape, dtype):
  return tf2jax.convert_functional(tf.function(fn), tf.TensorSpec(shape, dtype))


def primitives(jax_fn, x):
  return {str(e.primitive) for e in jax.make_jaxpr(jax_fn)(x).jaxpr.eqns}


def inputs(dtype, shape):
  rng = np.random.default_rng(0)
  if dtype.is_floating:
    return rng.uniform(-2, 2, shape).astype(dtype.as_numpy_dtype)
  return rng.integers(-5, 6, shape).astype(dtype.as_numpy_dtype)


@pytest.mark.parametrize("name", sorted(REDUCERS))
@pytest.mark.parametrize("dtype", [tf.float32, tf.int32])
@pytest.mark.parametrize("axis,reverse", [(0, False), (1, True), (2, False)])
def test_flag_chooses_the_lowering_and_values_match_tf(name, dtype, axis, reverse):
  shape = (3, 4, 5)
  fn = window_fn(name, dtype, shape, axis, reverse)
  x = inputs(dtype, shape)
  want = tf.function(fn, jit_compile=True)(tf.constant(x)).numpy()
  on = convert(fn, shape, dtype)
  with tf2jax.override_config(FLAG, False):
    off = convert(fn, shape, dtype)
  for jax_fn in (on, off, jax.jit(on), jax.jit(off)):
    np.testing.assert_allclose(np.asarray(jax_fn(x)), want, rtol=1e-5, atol=1e-5)
  assert name in primitives(on, x)
  assert not any(p.startswith("reduce_window") for p in primitives(on, x))
  assert name not in primitives(off, x)
  assert any(p.startswith("reduce_window") for p in primitives(off, x))


def test_cumsum_lowering_is_differentiable_and_batchable():
  fn = window_fn("cumsum", tf.float32, (6,), 0, False)
  jax_fn = convert(fn, (6,), tf.float32)
  grad = jax.grad(lambda v: (jax_fn(v) * np.arange(6.0)).sum())(np.ones(6, np.float32))
  np.testing.assert_allclose(grad, np.cumsum(np.arange(6.0)[::-1])[::-1])
  xs = inputs(tf.float32, (2, 6))
  np.testing.assert_allclose(jax.vmap(jax_fn)(xs), np.cumsum(xs, axis=1), rtol=1e-6)


@pytest.mark.parametrize("change", ["strides", "init"])
def test_other_windows_are_not_cumulative(change):
  shape = (4, 5)
  kwargs = {"strides": [1, 2]} if change == "strides" else {"init": 3.0}
  fn = window_fn("cumsum", tf.float32, shape, 1, False, **kwargs)
  x = inputs(tf.float32, shape)
  want = tf.function(fn, jit_compile=True)(tf.constant(x)).numpy()
  jax_fn = convert(fn, shape, tf.float32)
  np.testing.assert_allclose(np.asarray(jax_fn(x)), want, rtol=1e-5, atol=1e-5)
  assert "cumsum" not in primitives(jax_fn, x)
