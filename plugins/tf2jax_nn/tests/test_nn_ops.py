"""tf2jax-nn's activation, convolution, pooling and normalization lowerings against TF.

Every case builds `tf.raw_ops.<Op>` inside a `tf.function`, converts it with
`tf2jax.convert_functional`, and compares the converted function (eager and jitted) with
TensorFlow eager on the same inputs; differentiable ops also compare `jax.vjp` with
`tf.GradientTape`. Which attribute combinations TF's CPU kernels accept depends on
whether TF runs its oneDNN kernels (the repository's conftest turns them off); the tests
ask `tf2jax_nn._common.native` what to expect, and check channels-first layouts against
TF's channels-last kernel on transposed data.
"""

from __future__ import annotations

import contextlib

import jax
import ml_dtypes
import numpy as np
import pytest
import tensorflow as tf

import tf2jax
from tf2jax_nn import _common

r = tf.raw_ops

# |jax - tf| <= TOL * (|tf| + max|tf|) elementwise: relative, with an absolute part that
# scales with the output (sums of products cancel).
TOL = {"float16": 4e-3, "bfloat16": 2e-2, "float32": 3e-6, "float64": 1e-12}


def _np(value):
  return value.numpy() if hasattr(value, "numpy") else np.asarray(value)


def assert_close(got, want, tol: float | None = None, what: str = "output"):
  got, want = np.asarray(got), _np(want)
  assert got.shape == want.shape, f"{what}: shape {got.shape}, TF's is {want.shape}"
  assert got.dtype == want.dtype, f"{what}: dtype {got.dtype}, TF's is {want.dtype}"
  if want.dtype.kind in "iub":
    np.testing.assert_array_equal(got, want, err_msg=what)
    return
  g, w = got.astype(np.float64), want.astype(np.float64)
  np.testing.assert_array_equal(np.isnan(g), np.isnan(w), err_msg=f"{what}: NaN positions")
  inf = np.isinf(w)
  np.testing.assert_array_equal(g[inf], w[inf], err_msg=f"{what}: infinities")
  fin = np.isfinite(w)
  if not fin.any():
    return
  tol = TOL[want.dtype.name] if tol is None else tol
  scale = np.max(np.abs(w[fin]))
  err = np.abs(g[fin] - w[fin])
  with np.errstate(over="ignore"):
    bound = tol * (np.abs(w[fin]) + scale) + 1e-30
  worst = np.argmax(err / bound)
  assert np.all(err <= bound), (
      f"{what}: max error {err[worst]:.3g} at {w[fin][worst]!r} (got {g[fin][worst]!r}), "
      f"bound {bound[worst]:.3g}")


def _x64(args) -> contextlib.AbstractContextManager:
  wide = any(np.asarray(a).dtype.name in ("float64", "int64", "uint64") for a in args)
  return jax.enable_x64(True) if wide else contextlib.nullcontext()


def _flat(x):
  return list(x) if isinstance(x, (list, tuple)) else [x]


def check(fn, *args, tol=None, eager=False, grad=None, grad_outputs=None, grad_tol=None):
  """Converts `fn` (a function of tensors) and compares it, jitted, with TF eager.

  eager: also call the converted function op by op (slower: every op compiles).
  grad: indices of the args to differentiate; grad_outputs: indices of the outputs
  whose cotangents are drawn (default: all floating outputs).
  """
  args = [np.asarray(a) for a in args]
  want = _flat(fn(*[tf.constant(a) for a in args]))
  with _x64(args + [_np(w) for w in want]):
    jax_fn = tf2jax.convert_functional(tf.function(fn, autograph=False), *args)
    got = _flat(jax.jit(jax_fn)(*args))
    assert len(got) == len(want)
    for i, (g, w) in enumerate(zip(got, want)):
      assert_close(g, w, tol, f"output {i}")
    if eager:
      for i, (g, w) in enumerate(zip(_flat(jax_fn(*args)), want)):
        assert_close(g, w, tol, f"eager output {i}")
    if grad:
      _check_grad(fn, jax_fn, args, grad, grad_outputs, grad_tol or tol)
  return got


def _is_float(dtype) -> bool:
  return np.dtype(dtype).kind == "f" or np.dtype(dtype) == ml_dtypes.bfloat16


def _check_grad(fn, jax_fn, args, diff, outs, tol):
  rng = np.random.RandomState(1)
  want = [_np(w) for w in _flat(fn(*[tf.constant(a) for a in args]))]
  outs = [i for i, w in enumerate(want) if _is_float(w.dtype)] if outs is None else outs
  cts = [rng.uniform(-1, 1, want[i].shape).astype(want[i].dtype) for i in outs]
  tensors = [tf.constant(a) for a in args]
  with tf.GradientTape() as tape:
    for i in diff:
      tape.watch(tensors[i])
    result = _flat(fn(*tensors))
  tf_grads = tape.gradient([result[i] for i in outs], [tensors[i] for i in diff],
                           output_gradients=[tf.constant(c) for c in cts])

  def f(*d):
    full = list(args)
    for i, v in zip(diff, d):
      full[i] = v
    res = _flat(jax_fn(*full))
    return [res[i] for i in outs]

  grads = jax.jit(lambda *d: jax.vjp(f, *d)[1](cts))(*[args[i] for i in diff])
  for g, w, i in zip(grads, tf_grads, diff):
    w = np.zeros_like(args[i]) if w is None else w
    assert_close(g, w, tol, f"gradient of input {i}")


def randn(shape, dtype="float32", seed=0, scale=1.0):
  return (np.random.RandomState(seed).standard_normal(shape) * scale).astype(dtype)


def distinct(shape, dtype="float32", seed=0):
  """Values without ties (max pooling gradients are then unambiguous)."""
  n = int(np.prod(shape))
  return (np.random.RandomState(seed).permutation(n).reshape(shape) / max(n, 1) * 8 - 4
          ).astype(dtype)


def refused(fn, *args, attr: str):
  """Conversion fails with UnsupportedOpsError naming the node's attr."""
  with pytest.raises(tf2jax.UnsupportedOpsError) as info:
    tf2jax.convert_functional(tf.function(fn, autograph=False), *args)
  err = info.value
  assert any(b.attr == attr for b in err.bad_attrs), str(err)
  assert f"attr {attr}=" in str(err)
  return err


@pytest.fixture
def onednn(monkeypatch):
  """Lowerings behave as with TF's oneDNN kernels (float32/bfloat16 take NCHW, ...)."""
  monkeypatch.setattr(_common, "onednn_enabled", lambda: True)


def to_first(x):
  return np.moveaxis(x, -1, 1)


def to_last(x):
  return np.moveaxis(np.asarray(x), 1, -1)


# Activations ----------------------------------------------------------------------------

EDGES = np.array([0.0, -0.0, 1e-8, -1e-8, 1e-3, -1e-3, 0.5, -0.5, 1.0, -1.0, 4.9, 5.0,
                  -5.0, 13.0, 14.0, -15.0, 20.0, -20.0, 40.0, -40.0, 100.0, -100.0,
                  np.inf, -np.inf, np.nan])


@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "float32", "float64"])
@pytest.mark.parametrize("op,attrs", [
    ("Elu", {}), ("Selu", {}), ("LeakyRelu", {}), ("LeakyRelu", {"alpha": 2.0}),
    ("LeakyRelu", {"alpha": -0.3}), ("Softplus", {}), ("Softsign", {})])
def test_activations(op, attrs, dtype):
  x = np.concatenate([EDGES, randn(20, seed=3, scale=6)]).astype(dtype)
  fn = lambda t: getattr(r, op)(features=t, **attrs)
  # Gradients are TF's registered ones (e.g. EluGrad from the output), edge values too.
  check(fn, x, grad=[0] if dtype in ("float32", "float64") else None)


# Conv2D --------------------------------------------------------------------------------

CONV2D_CASES = [
    # input shape, filter shape, strides, padding, dilations, explicit
    ((2, 7, 6, 3), (3, 3, 3, 4), (1, 1), "SAME", (1, 1), None),
    ((1, 7, 6, 3), (3, 2, 3, 4), (2, 2), "SAME", (1, 1), None),
    ((1, 8, 7, 2), (2, 3, 2, 3), (2, 3), "VALID", (1, 1), None),
    ((1, 9, 9, 2), (3, 3, 2, 2), (1, 1), "SAME", (2, 3), None),
    ((1, 9, 8, 2), (2, 2, 2, 3), (2, 1), "VALID", (2, 2), None),
    ((1, 6, 6, 2), (3, 3, 2, 3), (2, 2), "EXPLICIT", (1, 1), ((1, 2), (0, 3))),
    ((2, 5, 5, 4), (3, 3, 2, 6), (1, 1), "SAME", (1, 1), None),  # 2 groups
    ((1, 3, 3, 1), (3, 3, 1, 2), (1, 1), "VALID", (1, 1), None),
    ((0, 4, 4, 2), (2, 2, 2, 3), (1, 1), "SAME", (1, 1), None),  # empty batch
    # 1x1 filters: unpadded ones lower to a matmul (_pointwise_conv)
    ((2, 7, 6, 3), (1, 1, 3, 5), (1, 1), "SAME", (1, 1), None),
    ((1, 8, 7, 4), (1, 1, 4, 2), (2, 3), "VALID", (1, 1), None),
    ((1, 7, 7, 2), (1, 1, 2, 3), (3, 2), "SAME", (2, 2), None),
    ((1, 5, 5, 2), (1, 1, 2, 3), (2, 1), "EXPLICIT", (1, 1), ((1, 0), (0, 2))),
    ((1, 5, 5, 4), (1, 1, 2, 6), (1, 1), "VALID", (1, 1), None),  # 2 groups
]


def _conv_attrs(strides, padding, dilations, explicit, nchw=False):
  def full(v):
    return [1, 1] + list(v) if nchw else [1] + list(v) + [1]
  attrs = {"strides": full(strides), "padding": padding, "dilations": full(dilations)}
  if explicit is not None:
    spatial = [p for pair in explicit for p in pair]
    attrs["explicit_paddings"] = [0, 0, 0, 0] + spatial if nchw else [0, 0] + spatial + [0, 0]
  return attrs


@pytest.mark.parametrize("case", CONV2D_CASES, ids=lambda c: f"{c[0]}-{c[1]}-{c[3]}")
def test_conv2d(case):
  xs, ws, strides, padding, dilations, explicit = case
  attrs = _conv_attrs(strides, padding, dilations, explicit)
  fn = lambda x, w: r.Conv2D(input=x, filter=w, **attrs)
  if xs[0] == 0 and _common.native("float32"):
    # TF's oneDNN Conv2D returns its input for an empty batch; TF's shape for it is that
    # of a batch of one with the batch dimension emptied.
    one = fn(tf.constant(randn((1, *xs[1:]))), tf.constant(randn(ws, seed=1)))
    got = tf2jax.convert_functional(tf.function(fn, autograph=False), randn(xs),
                                    randn(ws, seed=1))(randn(xs), randn(ws, seed=1))
    assert got.shape == (0, *one.shape[1:]) and got.dtype == np.float32
    return
  # TF's Eigen kernels have no gradients of dilated or grouped convolutions.
  plain = dilations == (1, 1) and xs[3] == ws[2]
  check(fn, randn(xs), randn(ws, seed=1), grad=[0, 1] if plain or _common.native("float32")
        else None, grad_tol=1e-5)


@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "float64", "int32"])
def test_conv2d_dtypes(dtype):
  attrs = _conv_attrs((2, 1), "SAME", (1, 2), None)
  fn = lambda x, w: r.Conv2D(input=x, filter=w, **attrs)
  if dtype == "int32":
    x, w = (np.random.RandomState(s).randint(-50, 50, shp).astype(dtype)
            for s, shp in [(0, (2, 6, 5, 3)), (1, (3, 2, 3, 4))])
  else:
    x, w = randn((2, 6, 5, 3), dtype), randn((3, 2, 3, 4), dtype, 1)
  check(fn, x, w, tol={"float16": 1e-2, "bfloat16": 3e-2}.get(dtype))


@pytest.mark.parametrize("op,nd,dtype", [  # TF's Conv3D has no int32 kernel
    ("Conv2D", 2, "float16"), ("Conv2D", 2, "bfloat16"), ("Conv2D", 2, "int32"),
    ("Conv3D", 3, "float16"), ("Conv3D", 3, "bfloat16")])
def test_pointwise_conv_dtypes(op, nd, dtype):
  strides = [1, 2] + [1] * (nd - 1) + [1]
  fn = lambda x, w: getattr(r, op)(input=x, filter=w, strides=strides, padding="SAME")
  xs, ws = (2,) + (5,) * nd + (3,), (1,) * nd + (3, 4)
  if dtype == "int32":
    x, w = (np.random.RandomState(s).randint(-50, 50, shp).astype(dtype)
            for s, shp in [(0, xs), (1, ws)])
  else:
    x, w = randn(xs, dtype), randn(ws, dtype, 1)
  check(fn, x, w, tol={"float16": 1e-2, "bfloat16": 3e-2}.get(dtype))


def test_float64_grouped_convolutions_keep_nan_in_its_group():
  """XLA's CPU backend leaks NaN across the groups of float64 grouped convolutions (which
  vmap creates from any batched convolution); the lowering avoids them for float64."""
  x, w = randn((2, 5, 5, 4), "float64"), randn((3, 3, 2, 1), "float64", 1)
  x[0, 2, 2, 0] = np.nan
  fn = lambda x, w: r.DepthwiseConv2dNative(input=x, filter=w, strides=[1] * 4,
                                            padding="SAME")
  check(fn, x, w[:, :, :1].repeat(4, axis=2))
  conv = lambda x, w: r.Conv2D(input=x, filter=w, strides=[1, 2, 2, 1], padding="SAME")
  xs, ws = np.stack([x, x[::-1]]), np.stack([randn((3, 3, 4, 2), "float64", s) for s in (2, 3)])
  with jax.enable_x64(True):
    jax_fn = tf2jax.convert_functional(tf.function(conv), xs[0], ws[0])
    got = jax.jit(jax.vmap(jax_fn))(xs, ws)
  for i in range(2):
    assert_close(got[i], conv(xs[i], ws[i]))


def test_conv2d_nchw_is_refused_where_tf_refuses_it():
  attrs = _conv_attrs((1, 1), "SAME", (1, 1), None, nchw=True)
  fn = lambda x, w: r.Conv2D(input=x, filter=w, data_format="NCHW", **attrs)
  args = randn((1, 2, 5, 5)), randn((3, 3, 2, 2), seed=1)
  if _common.native("float32"):
    check(fn, *args)
  else:
    err = refused(fn, *args, attr="data_format")
    assert "Conv2D" in str(err) and "NCHW" in str(err)
  # float64 has no oneDNN kernel: TF refuses NCHW whatever the build.
  err = refused(fn, *[a.astype(np.float64) for a in args], attr="data_format")
  assert "float64" in str(err) or "oneDNN" in str(err)


@pytest.mark.parametrize("case", CONV2D_CASES[:6], ids=lambda c: f"{c[0]}-{c[3]}")
def test_conv2d_nchw_matches_nhwc(case, onednn):
  xs, ws, strides, padding, dilations, explicit = case
  x, w = randn(xs), randn(ws, seed=1)
  attrs = _conv_attrs(strides, padding, dilations, explicit)
  want = r.Conv2D(input=x, filter=w, **attrs).numpy()
  first = _conv_attrs(strides, padding, dilations, explicit, nchw=True)
  g = tf.Graph()
  with g.as_default():  # TF cannot run it without oneDNN, but it can trace it
    fn = tf.function(lambda a, b: r.Conv2D(input=a, filter=b, data_format="NCHW", **first))
  jax_fn = tf2jax.convert_functional(fn, to_first(x), w)
  assert_close(to_last(jax.jit(jax_fn)(to_first(x), w)), want)


def test_conv2d_refuses_batch_strides_and_channel_dilations():
  x, w = randn((1, 4, 4, 2)), randn((2, 2, 2, 2))
  g = tf.Graph()
  with g.as_default():
    bad_stride = tf.function(lambda a, b: r.Conv2D(input=a, filter=b, strides=[2, 1, 1, 1],
                                                   padding="SAME"))
    bad_dilation = tf.function(lambda a, b: r.Conv2D(
        input=a, filter=b, strides=[1, 1, 1, 1], padding="SAME", dilations=[1, 1, 1, 2]))
  for fn, attr in [(bad_stride, "strides"), (bad_dilation, "dilations")]:
    with pytest.raises(tf2jax.UnsupportedOpsError, match=f"Conv2D.*attr {attr}="):
      tf2jax.convert_functional(fn, x, w)


def test_conv2d_negative_output_size_is_an_error():
  fn = lambda x, w: r.Conv2D(input=x, filter=w, strides=[1, 1, 1, 1], padding="VALID")
  g = tf.Graph()
  with g.as_default():
    tf_fn = tf.function(fn)
  jax_fn = tf2jax.convert_functional(tf_fn, tf.TensorSpec((1, None, None, 1)),
                                     tf.TensorSpec((None, 1, 1, 1)))
  with pytest.raises(tf2jax.NodeExecutionError, match="output size would be negative"):
    jax_fn(randn((1, 3, 3, 1)), randn((5, 1, 1, 1)))


# Conv3D, Conv ----------------------------------------------------------------------------


@pytest.mark.parametrize("strides,padding", [((1, 1, 1), "VALID"), ((2, 1, 2), "SAME")])
def test_conv3d(strides, padding):
  fn = lambda x, w: r.Conv3D(input=x, filter=w, strides=[1, *strides, 1], padding=padding)
  check(fn, randn((2, 5, 4, 6, 2)), randn((2, 3, 2, 2, 3), seed=1), grad=[0, 1],
        grad_tol=1e-5)


def test_conv3d_float16_and_dilations():
  fn = lambda x, w: r.Conv3D(input=x, filter=w, strides=[1] * 5, padding="SAME")
  check(fn, randn((1, 4, 4, 4, 2), "float16"), randn((2, 2, 2, 2, 3), "float16", 1), tol=1e-2)
  dil = lambda x, w: r.Conv3D(input=x, filter=w, strides=[1] * 5, padding="VALID",
                              dilations=[1, 2, 1, 2, 1])
  args = randn((1, 5, 4, 5, 2)), randn((2, 2, 2, 2, 3), seed=1)
  if _common.native("float32"):
    check(dil, *args)
  else:
    refused(dil, *args, attr="dilations")


@pytest.mark.parametrize("xs,ws,batch_dims,padding", [
    ((2, 3, 6, 5, 2), (3, 2, 2, 4), 2, "SAME"),
    ((2, 6, 5, 2), (3, 2, 2, 4), 1, "EXPLICIT"),
    ((2, 4, 5, 4, 2), (2, 2, 2, 2, 3), 1, "VALID"),
])
def test_conv_nd(xs, ws, batch_dims, padding):
  nd = len(ws) - 2
  attrs = {"strides": [1] * (nd + 2), "padding": padding, "batch_dims": batch_dims}
  if padding == "EXPLICIT":
    attrs["explicit_paddings"] = [0, 0, 1, 2, 2, 0, 0, 0]
  fn = lambda x, w: r.Conv(input=x, filter=w, **attrs)
  check(fn, randn(xs), randn(ws, seed=1))  # TF registers no gradient for Conv


def test_conv_refuses_channels_first_and_groups():
  x, w = randn((1, 2, 4, 4)), randn((2, 2, 2, 2))
  g = tf.Graph()
  with g.as_default():
    first = tf.function(lambda a, b: r.Conv(input=a, filter=b, strides=[1] * 4,
                                            padding="SAME", data_format="CHANNELS_FIRST"))
    grouped = tf.function(lambda a, b: r.Conv(input=a, filter=b, strides=[1] * 4,
                                              padding="SAME", groups=2))
  with pytest.raises(tf2jax.UnsupportedOpsError, match="attr data_format='CHANNELS_FIRST'"):
    tf2jax.convert_functional(first, x, w)
  with pytest.raises(tf2jax.UnsupportedOpsError, match="attr groups=2"):
    tf2jax.convert_functional(grouped, np.zeros((1, 4, 4, 4), np.float32), w)


@pytest.mark.parametrize("op", ["Conv3D", "Conv", "MaxPool3D", "AvgPool3D", "FusedPadConv2D",
                                "FusedResizeAndPadConv2D"])
def test_same_padding_with_strides_beyond_the_window(op):
  """TF's Eigen kernels start SAME windows inside the input when the stride exceeds the
  window by 2 or more (Eigen's padding is then negative); oneDNN's do not."""
  x3, w3 = randn((1, 7, 5, 6, 2)), randn((1, 2, 1, 2, 3), seed=1)
  x2, w2 = randn((1, 7, 6, 2)), randn((1, 2, 2, 3), seed=1)
  s3, k3 = [1, 4, 4, 3, 1], [1, 1, 2, 1, 1]
  fns = {
      "Conv3D": (lambda x, w: r.Conv3D(input=x, filter=w, strides=s3, padding="SAME"), x3, w3),
      "Conv": (lambda x, w: r.Conv(input=x, filter=w, strides=s3, padding="SAME"), x3, w3),
      "MaxPool3D": (lambda x: r.MaxPool3D(input=x, ksize=k3, strides=s3, padding="SAME"), x3),
      "AvgPool3D": (lambda x: r.AvgPool3D(input=x, ksize=k3, strides=s3, padding="SAME"), x3),
      "FusedPadConv2D": (lambda x, w: r.FusedPadConv2D(
          input=x, paddings=tf.zeros((4, 2), tf.int32), filter=w, mode="REFLECT",
          strides=[1, 4, 5, 1], padding="SAME"), x2, w2),
      "FusedResizeAndPadConv2D": (lambda x, w: r.FusedResizeAndPadConv2D(
          input=x, size=tf.constant([9, 6]), paddings=tf.zeros((4, 2), tf.int32), filter=w,
          mode="REFLECT", strides=[1, 5, 4, 1], padding="SAME"), x2, w2),
  }
  fn, *args = fns[op]
  check(fn, *args, tol=1e-5)


# Depthwise ---------------------------------------------------------------------------------


@pytest.mark.parametrize("xs,ws,strides,padding,explicit", [
    ((2, 7, 6, 3), (3, 3, 3, 1), (1, 1), "SAME", None),
    ((1, 7, 8, 2), (2, 3, 2, 3), (2, 2), "VALID", None),
    ((1, 6, 6, 2), (3, 3, 2, 2), (2, 2), "SAME", None),
    ((1, 5, 5, 2), (3, 2, 2, 2), (1, 1), "EXPLICIT", ((1, 1), (2, 0))),
])
def test_depthwise_conv2d(xs, ws, strides, padding, explicit):
  attrs = _conv_attrs(strides, padding, (1, 1), explicit)
  fn = lambda x, w: r.DepthwiseConv2dNative(input=x, filter=w, **attrs)
  check(fn, randn(xs), randn(ws, seed=1), grad=[0, 1], grad_tol=1e-5)


def test_depthwise_conv2d_nchw_and_dilations(onednn):
  x, w = randn((1, 7, 7, 3)), randn((3, 2, 3, 2), seed=1)
  want = r.DepthwiseConv2dNative(input=x, filter=w, strides=[1, 2, 2, 1], padding="SAME"
                                 ).numpy()
  g = tf.Graph()
  with g.as_default():
    fn = tf.function(lambda a, b: r.DepthwiseConv2dNative(
        input=a, filter=b, strides=[1, 1, 2, 2], padding="SAME", data_format="NCHW"))
    dil = tf.function(lambda a, b: r.DepthwiseConv2dNative(
        input=a, filter=b, strides=[1, 1, 1, 1], padding="VALID", dilations=[1, 2, 2, 1]))
  assert_close(to_last(tf2jax.convert_functional(fn, to_first(x), w)(to_first(x), w)), want)
  # A dilated depthwise convolution is a dilated grouped Conv2D.
  got = tf2jax.convert_functional(dil, x, w)(x, w)
  want = r.Conv2D(input=x, filter=np.reshape(w, (3, 2, 1, 6)), strides=[1] * 4,
                  padding="VALID", dilations=[1, 2, 2, 1])
  assert_close(got, want)


def test_depthwise_dilations_and_unequal_strides_refused_without_onednn_kernel():
  fn = lambda x, w: r.DepthwiseConv2dNative(input=x, filter=w, strides=[1] * 4,
                                            padding="VALID", dilations=[1, 2, 2, 1])
  args = randn((1, 5, 5, 2), "float64"), randn((2, 2, 2, 1), "float64")
  refused(fn, *args, attr="dilations")
  fn = lambda x, w: r.DepthwiseConv2dNative(input=x, filter=w, strides=[1, 2, 1, 1],
                                            padding="VALID")
  refused(fn, *args, attr="strides")


# Input gradients -----------------------------------------------------------------------------


@pytest.mark.parametrize("in_shape,ws,strides,padding,explicit", [
    ((2, 6, 5, 3), (3, 3, 3, 4), (1, 1), "SAME", None),
    ((1, 7, 8, 2), (3, 2, 2, 3), (2, 2), "SAME", None),
    ((1, 8, 7, 2), (2, 3, 2, 3), (3, 2), "VALID", None),  # leftover rows and columns
    ((1, 5, 6, 2), (3, 3, 2, 2), (2, 1), "EXPLICIT", ((1, 2), (0, 1))),
])
def test_conv2d_backprop_input(in_shape, ws, strides, padding, explicit):
  attrs = _conv_attrs(strides, padding, (1, 1), explicit)
  x, w = randn(in_shape), randn(ws, seed=1)
  dy = randn(r.Conv2D(input=x, filter=w, **attrs).shape, seed=2)
  sizes = np.asarray(in_shape, np.int32)
  fn = lambda w, dy: r.Conv2DBackpropInput(input_sizes=tf.constant(sizes), filter=w,
                                           out_backprop=dy, **attrs)
  check(fn, w, dy, grad=[0, 1], grad_tol=1e-5)
  # ... which is the gradient of Conv2D (what Keras' Conv2DTranspose builds on).
  xt = tf.constant(x)
  with tf.GradientTape() as tape:
    tape.watch(xt)
    y = r.Conv2D(input=xt, filter=w, **attrs)
  assert_close(check(fn, w, dy)[0], tape.gradient(y, xt, output_gradients=dy))


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_grouped_conv2d_backprop_input_is_the_gradient_of_grouped_conv2d(dtype, onednn):
  """TF's Eigen kernels have no grouped input gradient; check it against jax.vjp of the
  converted grouped Conv2D (itself checked against TF above)."""
  x, w = randn((2, 7, 6, 6), dtype), randn((3, 2, 2, 9), dtype, 1)
  attrs = {"strides": [1, 2, 2, 1], "padding": "SAME"}
  dy = randn(r.Conv2D(input=x, filter=w, **attrs).shape, dtype, 2)
  g = tf.Graph()
  with g.as_default():
    fwd = tf.function(lambda a, b: r.Conv2D(input=a, filter=b, **attrs))
    bwd = tf.function(lambda b, c: r.Conv2DBackpropInput(
        input_sizes=tf.constant([2, 7, 6, 6]), filter=b, out_backprop=c, **attrs))
  with _x64([x]):
    conv = tf2jax.convert_functional(fwd, x, w)
    want = jax.vjp(lambda a: conv(a, w), x)[1](dy)[0]
    got = jax.jit(tf2jax.convert_functional(bwd, w, dy))(w, dy)
  assert_close(got, np.asarray(want), 1e-5 if dtype == "float32" else 2e-2)


def test_conv2d_backprop_input_int32_and_spatial_sizes():
  w = np.random.RandomState(0).randint(-9, 9, (2, 3, 2, 3)).astype(np.int32)
  dy = np.random.RandomState(1).randint(-9, 9, (2, 3, 3, 3)).astype(np.int32)
  fn = lambda w, dy: r.Conv2DBackpropInput(input_sizes=tf.constant([2, 6, 5, 2]), filter=w,
                                           out_backprop=dy, strides=[1, 2, 2, 1],
                                           padding="SAME")
  check(fn, w, dy)
  fn2 = lambda w, dy: r.Conv2DBackpropInput(input_sizes=tf.constant([6, 5]), filter=w,
                                            out_backprop=dy, strides=[1, 2, 2, 1],
                                            padding="SAME")
  check(fn2, w, dy)


def test_conv2d_transpose_keras_style():
  """tf.nn.conv2d_transpose (Keras Conv2DTranspose) with output padding via input_sizes."""
  w, dy = randn((3, 3, 4, 2), seed=1), randn((2, 4, 4, 2), seed=2)
  fn = lambda w, dy: tf.nn.conv2d_transpose(dy, w, output_shape=[2, 8, 8, 4], strides=2,
                                            padding="SAME")
  check(fn, w, dy, grad=[0, 1], grad_tol=1e-5)


def test_conv3d_and_depthwise_backprop_input():
  x, w = randn((1, 5, 6, 4, 2)), randn((2, 3, 2, 2, 3), seed=1)
  attrs = {"strides": [1, 2, 1, 2, 1], "padding": "SAME"}
  dy = randn(r.Conv3D(input=x, filter=w, **attrs).shape, seed=2)
  fn = lambda w, dy: r.Conv3DBackpropInputV2(input_sizes=tf.constant([1, 5, 6, 4, 2]),
                                             filter=w, out_backprop=dy, **attrs)
  check(fn, w, dy, grad=[0, 1], grad_tol=1e-5)
  x, w = randn((2, 6, 7, 3)), randn((3, 2, 3, 2), seed=1)
  attrs = {"strides": [1, 2, 2, 1], "padding": "VALID"}
  dy = randn(r.DepthwiseConv2dNative(input=x, filter=w, **attrs).shape, seed=2)
  fn = lambda w, dy: r.DepthwiseConv2dNativeBackpropInput(
      input_sizes=tf.constant([2, 6, 7, 3]), filter=w, out_backprop=dy, **attrs)
  check(fn, w, dy, grad=[0, 1], grad_tol=1e-5)
  check(fn, w.astype(np.float64), dy.astype(np.float64), grad=[0, 1])  # grouped, float64


def test_conv2d_backprop_input_v2_uses_the_input_shape(onednn):
  """No TF CPU kernel exists for the V2 op; it must equal V1 with the input's shape."""
  x, w, dy = randn((1, 6, 5, 2)), randn((3, 3, 2, 3), seed=1), randn((1, 3, 3, 3), seed=2)
  attrs = {"strides": [1, 2, 2, 1], "padding": "SAME"}
  want = r.Conv2DBackpropInput(input_sizes=[1, 6, 5, 2], filter=w, out_backprop=dy, **attrs)
  g = tf.Graph()
  with g.as_default():
    fn = tf.function(lambda a, b, c: r.Conv2DBackpropInputV2(input=a, filter=b,
                                                             out_backprop=c, **attrs))
  assert_close(tf2jax.convert_functional(fn, x, w, dy)(x, w, dy), want)


# Dilation2D, fused convolutions ------------------------------------------------------------


@pytest.mark.parametrize("dtype", ["float32", "int32"])
@pytest.mark.parametrize("strides,rates,padding", [
    ((1, 1), (1, 1), "SAME"), ((2, 1), (1, 2), "VALID"), ((2, 2), (2, 1), "SAME")])
def test_dilation2d(dtype, strides, rates, padding):
  if dtype == "int32":
    x = np.random.RandomState(0).randint(-20, 20, (2, 6, 7, 3)).astype(dtype)
    f = np.random.RandomState(1).randint(-5, 5, (2, 3, 3)).astype(dtype)
  else:
    x, f = distinct((2, 6, 7, 3)), randn((2, 3, 3), seed=1)
    x[0, 0, :2, 0] = [np.nan, -np.inf]
  fn = lambda x, f: r.Dilation2D(input=x, filter=f, strides=[1, *strides, 1],
                                 rates=[1, *rates, 1], padding=padding)
  check(fn, x, f)
  if dtype == "float32":
    check(fn, distinct((2, 6, 7, 3)), randn((2, 3, 3), seed=1), grad=[0, 1])


@pytest.mark.parametrize("mode", ["REFLECT", "SYMMETRIC"])
def test_fused_pad_conv2d(mode):
  pads = tf.constant([[0, 0], [1, 2], [2, 1], [0, 0]])
  fn = lambda x, w: r.FusedPadConv2D(input=x, paddings=pads, filter=w, mode=mode,
                                     strides=[1, 2, 1, 1], padding="SAME")
  # Batch 1: TF's CPU kernel gives wrong results for the batch elements after the first
  # (they do not match MirrorPad + Conv2D); the lowering computes MirrorPad + Conv2D.
  check(fn, randn((1, 5, 4, 3)), randn((3, 2, 3, 4), seed=1))  # TF has no gradient for it


@pytest.mark.parametrize("align_corners", [False, True])
@pytest.mark.parametrize("size", [(7, 5), (3, 9)])
def test_fused_resize_and_pad_conv2d(size, align_corners):
  pads = tf.constant([[0, 0], [1, 1], [0, 2], [0, 0]])
  fn = lambda x, w: r.FusedResizeAndPadConv2D(
      input=x, size=tf.constant(size), paddings=pads, filter=w, mode="REFLECT",
      resize_align_corners=align_corners, strides=[1, 1, 2, 1], padding="VALID")
  check(fn, randn((1, 4, 6, 3)), randn((2, 2, 3, 2), seed=1), tol=1e-5)  # batch 1: see above


# Pooling ----------------------------------------------------------------------------------

POOL_CASES = [  # input shape, ksize, strides, padding
    ((2, 6, 7, 3), (2, 2), (2, 2), "VALID"),
    ((2, 7, 6, 2), (3, 3), (2, 2), "SAME"),
    ((1, 5, 5, 2), (3, 2), (1, 2), "SAME"),
    ((1, 6, 5, 1), (1, 3), (3, 1), "VALID"),
    ((1, 3, 3, 2), (3, 3), (1, 1), "SAME"),
]


def _pool_attrs(ksize, strides, padding):
  return {"ksize": [1, *ksize, 1], "strides": [1, *strides, 1], "padding": padding}


@pytest.mark.parametrize("case", POOL_CASES, ids=lambda c: f"{c[0]}-{c[1]}-{c[2]}-{c[3]}")
def test_max_pool(case):
  xs, ksize, strides, padding = case
  fn = lambda x: r.MaxPool(input=x, **_pool_attrs(ksize, strides, padding))
  check(fn, distinct(xs), grad=[0])


@pytest.mark.parametrize("case", POOL_CASES, ids=lambda c: f"{c[0]}-{c[1]}-{c[2]}-{c[3]}")
def test_avg_pool(case):
  """SAME windows divide by the number of valid elements."""
  xs, ksize, strides, padding = case
  fn = lambda x: r.AvgPool(value=x, **_pool_attrs(ksize, strides, padding))
  check(fn, randn(xs), grad=[0])


def _nan_windows(dtype):
  x = np.array([np.nan, 1, 1, np.nan, np.nan, np.nan, -np.inf, -np.inf, 3, -2], np.float64)
  return x.reshape(1, 1, 10, 1).astype(dtype)


@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "float32", "float64"])
def test_max_pool_nan_and_infinite_windows(dtype):
  """TF ignores NaN, and an all -inf window gives the lowest finite value."""
  attrs = _pool_attrs((1, 2), (1, 2), "VALID")
  check(lambda x: r.MaxPool(input=x, **attrs), _nan_windows(dtype))
  check(lambda x: r.MaxPool(input=x, ksize=[1, 1, 2, 1], strides=[1, 1, 2, 1],
                            padding="EXPLICIT", explicit_paddings=[0, 0, 0, 0, 1, 1, 0, 0]),
        _nan_windows(dtype))
  check(lambda x: r.MaxPoolV2(input=x, ksize=attrs["ksize"], strides=attrs["strides"],
                              padding="VALID"), _nan_windows(dtype))
  check(lambda x: r.AvgPool(value=x, **attrs), _nan_windows(dtype))


@pytest.mark.parametrize("dtype", ["int8", "uint8", "int16", "int32", "int64", "uint16"])
def test_max_pool_integers(dtype):
  info = np.iinfo(dtype)
  x = np.random.RandomState(0).randint(info.min, info.max, (2, 5, 6, 2), dtype=np.int64)
  x[0, 0, 0, 0], x[0, 1, 1, 1] = info.min, info.max
  fn = lambda x: r.MaxPool(input=x, **_pool_attrs((2, 3), (2, 2), "SAME"))
  check(fn, x.astype(dtype))


@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "float64"])
def test_pool_float_dtypes(dtype):
  x = randn((2, 5, 6, 3), dtype)
  check(lambda x: r.MaxPool(input=x, **_pool_attrs((2, 2), (2, 1), "SAME")), x)
  check(lambda x: r.AvgPool(value=x, **_pool_attrs((3, 2), (2, 2), "SAME")), x)


def test_max_pool_explicit_padding_and_depth_pooling():
  fn = lambda x: r.MaxPool(input=x, ksize=[1, 3, 2, 1], strides=[1, 2, 1, 1],
                           padding="EXPLICIT", explicit_paddings=[0, 0, 2, 1, 0, 1, 0, 0])
  check(fn, distinct((2, 5, 4, 3)), grad=[0])
  depth = lambda x: r.MaxPool(input=x, ksize=[1, 1, 1, 2], strides=[1, 1, 1, 2],
                              padding="VALID")
  x = distinct((2, 3, 4, 6))
  x[0, 0, 0] = [np.nan, 1.0, 1.0, np.nan, np.nan, np.nan]
  x[0, 0, 1, :4] = -np.inf
  check(depth, x)
  depth3 = lambda x: r.MaxPool(input=x, ksize=[1, 1, 1, 3], strides=[1, 1, 1, 3],
                               padding="VALID")
  x = np.array([np.nan, 1, 2, 1, np.nan, 2, 1, 2, np.nan], np.float32).reshape(1, 1, 1, 9)
  check(depth3, x)


def test_max_pool_refusals():
  x = randn((1, 4, 4, 2))
  g = tf.Graph()
  with g.as_default():
    big_pad = tf.function(lambda a: r.MaxPool(input=a, ksize=[1, 2, 2, 1], strides=[1] * 4,
                                              padding="EXPLICIT",
                                              explicit_paddings=[0, 0, 2, 0, 0, 0, 0, 0]))
    v2_nchw = tf.function(lambda a: r.MaxPoolV2(input=a, ksize=[1, 1, 2, 2],
                                                strides=[1, 1, 2, 2], padding="VALID",
                                                data_format="NCHW"))
    batch = tf.function(lambda a: r.MaxPool(input=a, ksize=[2, 1, 1, 1], strides=[1] * 4,
                                            padding="VALID"))
    avg_depth = tf.function(lambda a: r.AvgPool(value=a, ksize=[1, 1, 1, 2],
                                                strides=[1, 1, 1, 2], padding="VALID"))
  for fn, attr in [(big_pad, "explicit_paddings"), (v2_nchw, "data_format"),
                   (batch, "ksize"), (avg_depth, "ksize")]:
    with pytest.raises(tf2jax.UnsupportedOpsError, match=f"attr {attr}="):
      tf2jax.convert_functional(fn, x)


def test_pool_nchw(onednn):
  x = distinct((2, 7, 6, 3))
  attrs = _pool_attrs((3, 2), (2, 2), "SAME")
  first = {"ksize": [1, 1, 3, 2], "strides": [1, 1, 2, 2], "padding": "SAME",
           "data_format": "NCHW"}
  g = tf.Graph()
  with g.as_default():
    mp = tf.function(lambda a: r.MaxPool(input=a, **first))
    ap = tf.function(lambda a: r.AvgPool(value=a, **first))
  assert_close(to_last(tf2jax.convert_functional(mp, to_first(x))(to_first(x))),
               r.MaxPool(input=x, **attrs))
  assert_close(to_last(tf2jax.convert_functional(ap, to_first(x))(to_first(x))),
               r.AvgPool(value=x, **attrs))


def test_pool_nchw_refused_without_onednn():
  x = to_first(randn((1, 4, 4, 2), "float64"))
  fn = lambda a: r.MaxPool(input=a, ksize=[1, 1, 2, 2], strides=[1, 1, 2, 2],
                           padding="VALID", data_format="NCHW")
  err = refused(fn, x, attr="data_format")
  assert "MaxPool" in str(err)


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
@pytest.mark.parametrize("padding", ["VALID", "SAME"])
def test_pool3d(dtype, padding):
  x = distinct((2, 4, 5, 6, 2), dtype)
  attrs = {"ksize": [1, 2, 3, 2, 1], "strides": [1, 2, 1, 2, 1], "padding": padding}
  check(lambda x: r.MaxPool3D(input=x, **attrs), x, grad=[0] if dtype == "float32" else None)
  check(lambda x: r.AvgPool3D(input=x, **attrs), x, grad=[0] if dtype == "float32" else None)


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_max_pool3d_nan_windows(dtype):
  x = _nan_windows(dtype).reshape(1, 1, 1, 10, 1)
  if not _common.native(dtype):
    # TF's Eigen MaxPool3D: NaN results depend on vectorisation; -inf windows stay -inf.
    x = np.where(np.isnan(x), np.asarray(0.5, x.dtype), x)
  check(lambda x: r.MaxPool3D(input=x, ksize=[1, 1, 1, 2, 1], strides=[1, 1, 1, 2, 1],
                              padding="VALID"), x)


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_avg_pool3d_lowest_values(dtype):
  """TF's Eigen AvgPool3D leaves out elements equal to the lowest value (0 / 0 for a
  window of only those); its oneDNN kernel averages them."""
  low = float(ml_dtypes.finfo(dtype).min)
  x = np.array([low, 1, low, low, 2, 3, low, 5], np.float64).reshape(1, 1, 1, 8, 1)
  check(lambda x: r.AvgPool3D(input=x, ksize=[1, 1, 1, 2, 1], strides=[1, 1, 1, 2, 1],
                              padding="VALID"), x.astype(dtype))


def test_max_pool_with_argmax_refuses_empty_inputs_like_tf():
  fn = lambda x: r.MaxPoolWithArgmax(input=x, ksize=[1, 1, 1, 1], strides=[1, 1, 1, 1],
                                     padding="SAME", Targmax=tf.int32)
  with pytest.raises(tf.errors.InvalidArgumentError):
    fn(np.zeros((0, 2, 2, 1), np.float32))
  jax_fn = tf2jax.convert_functional(tf.function(fn), np.zeros((0, 2, 2, 1), np.float32))
  with pytest.raises(tf2jax.NodeExecutionError, match="must not be empty"):
    jax_fn(np.zeros((0, 2, 2, 1), np.float32))


@pytest.mark.parametrize("include_batch", [False, True])
@pytest.mark.parametrize("padding", ["VALID", "SAME"])
def test_max_pool_with_argmax(include_batch, padding):
  x = np.random.RandomState(0).randint(0, 4, (2, 5, 6, 3)).astype(np.float32)  # many ties
  x[0, 0, :4, 0] = [np.nan, 1, 2, np.nan]
  x[1, :2, :2, 1] = -np.inf
  fn = lambda x: r.MaxPoolWithArgmax(input=x, ksize=[1, 2, 3, 1], strides=[1, 2, 2, 1],
                                     padding=padding, Targmax=tf.int32,
                                     include_batch_in_index=include_batch)
  check(fn, x)
  # TF's gradient kernel (MaxPoolGradWithArgmax) takes int64 indices only.
  fn64 = lambda x: r.MaxPoolWithArgmax(input=x, ksize=[1, 2, 3, 1], strides=[1, 2, 2, 1],
                                       padding=padding, include_batch_in_index=include_batch)
  check(fn64, distinct((2, 5, 6, 3)), grad=[0], grad_outputs=[0])


def test_max_pool_with_argmax_int64_and_integers():
  fn = lambda x: r.MaxPoolWithArgmax(input=x, ksize=[1, 2, 2, 1], strides=[1, 1, 1, 1],
                                     padding="SAME")
  check(fn, np.random.RandomState(0).randint(-9, 9, (1, 4, 3, 2)).astype(np.int16))


# Normalization ------------------------------------------------------------------------------


def _bn_inputs(shape, channels, dtype="float32", seed=0):
  rs = np.random.RandomState(seed)
  x = (rs.standard_normal(shape) * 2 + 1).astype(dtype)
  scale, offset = rs.uniform(0.5, 2, channels), rs.uniform(-1, 1, channels)
  mean, var = rs.uniform(-1, 1, channels), rs.uniform(0.5, 2, channels)
  return [x] + [v.astype(np.float32) for v in (scale, offset, mean, var)]


BN_CASES = [  # op, dtype, data_format, is_training, exponential_avg_factor
    ("FusedBatchNormV3", "float32", "NHWC", True, 1.0),
    ("FusedBatchNormV3", "float32", "NHWC", True, 0.25),
    ("FusedBatchNormV3", "float32", "NHWC", False, 1.0),
    ("FusedBatchNormV3", "float32", "NCHW", True, 0.5),
    ("FusedBatchNormV3", "float32", "NCHW", False, 1.0),
    ("FusedBatchNormV3", "float16", "NHWC", True, 0.1),
    ("FusedBatchNormV3", "bfloat16", "NHWC", False, 1.0),
    ("FusedBatchNormV3", "float32", "NDHWC", True, 1.0),
    ("FusedBatchNormV3", "float16", "NCDHW", False, 1.0),
    ("FusedBatchNormV2", "bfloat16", "NHWC", True, 1.0),
    ("FusedBatchNorm", "float32", "NCHW", True, 0.3),
]


@pytest.mark.parametrize("case", BN_CASES, ids=lambda c: "-".join(map(str, c)))
def test_fused_batch_norm(case):
  op, dtype, fmt, training, factor = case
  shape = {"NHWC": (3, 4, 5, 2), "NCHW": (3, 2, 4, 5), "NDHWC": (2, 3, 2, 4, 2),
           "NCDHW": (2, 2, 3, 2, 4)}[fmt]
  args = _bn_inputs(shape, 2, dtype)

  def fn(x, scale, offset, mean, var):
    outs = getattr(r, op)(x=x, scale=scale, offset=offset, mean=mean, variance=var,
                          epsilon=1e-3, exponential_avg_factor=factor, data_format=fmt,
                          is_training=training)
    # TF's Eigen kernel leaves the reserve spaces uninitialised in inference mode.
    return list(outs[:5]) if training else list(outs[:3])

  tol = {"float16": 5e-3, "bfloat16": 3e-2, "float32": 1e-5}[dtype]
  check(fn, *args, tol=tol, grad=[0, 1, 2, 3, 4] if dtype == "float32" else None,
        grad_tol=1e-4)


def test_fused_batch_norm_v3_reserve_space_3_and_edge_sizes():
  for shape in [(1, 1, 1, 2), (2, 3, 3, 2)]:
    args = _bn_inputs(shape, 2)
    fn = lambda *a: r.FusedBatchNormV3(x=a[0], scale=a[1], offset=a[2], mean=a[3],
                                       variance=a[4], epsilon=1e-3, is_training=True)
    check(fn, *args, tol=1e-5)
  # Empty mean and variance are fine in training mode with a factor of 1.
  x, scale, offset, _, _ = _bn_inputs((2, 3, 3, 2), 2)
  empty = np.zeros(0, np.float32)
  fn = lambda *a: r.FusedBatchNormV3(x=a[0], scale=a[1], offset=a[2], mean=a[3],
                                     variance=a[4], is_training=True)
  check(fn, x, scale, offset, empty, empty, tol=1e-5)


def test_batch_norm_with_global_normalization_from_an_old_graph():
  """The op was removed in GraphDef version 9; a graph of producer 8 still runs in TF."""
  rs = np.random.RandomState(0)
  t = rs.standard_normal((2, 3, 3, 4)).astype(np.float32)
  m, beta = rs.standard_normal(4).astype(np.float32), rs.standard_normal(4).astype(np.float32)
  v, gamma = rs.uniform(0.5, 2, 4).astype(np.float32), rs.uniform(0.5, 2, 4).astype(np.float32)
  for scale_after in (True, False):
    gd = tf.compat.v1.GraphDef()
    gd.versions.producer = 8
    for name, value in [("t", t), ("m", m), ("v", v), ("beta", beta), ("gamma", gamma)]:
      node = gd.node.add(name=name, op="Const")
      node.attr["dtype"].type = tf.float32.as_datatype_enum
      node.attr["value"].tensor.CopyFrom(tf.make_tensor_proto(value))
    node = gd.node.add(name="bn", op="BatchNormWithGlobalNormalization",
                       input=["t", "m", "v", "beta", "gamma"])
    node.attr["T"].type = tf.float32.as_datatype_enum
    node.attr["variance_epsilon"].f = 1e-3
    node.attr["scale_after_normalization"].b = scale_after
    fn = tf2jax.convert_graph_def(gd, inputs=[], outputs=["bn:0"])
    got = _flat(fn())[0]
    want = (t - m) / np.sqrt(v + 1e-3) * (gamma if scale_after else 1) + beta
    assert_close(got, want.astype(np.float32), 1e-5)


@pytest.mark.parametrize("dtype,attrs", [
    ("float32", {}), ("float32", {"depth_radius": 2, "bias": 2.0, "alpha": 0.5, "beta": 0.75}),
    ("float32", {"depth_radius": 1, "beta": 1.0}), ("float16", {"depth_radius": 3})])
def test_lrn(dtype, attrs):
  x = randn((2, 3, 4, 9), dtype)
  fn = lambda x: r.LRN(input=x, **attrs)
  check(fn, x, grad=[0] if dtype == "float32" else None, tol=5e-3 if dtype == "float16" else 1e-5)


# Models and variables ------------------------------------------------------------------------


def test_fused_batch_norm_training_updates_moving_statistics():
  """Keras 2's fused BatchNormalization: FusedBatchNormV3 in training mode, whose batch
  statistics (with exponential_avg_factor = 1 - momentum) are assigned to variables."""
  rs = np.random.RandomState(0)

  class BN(tf.Module):
    def __init__(self):
      self.gamma = tf.Variable(rs.uniform(0.5, 2, 3).astype(np.float32), name="gamma")
      self.beta = tf.Variable(rs.uniform(-1, 1, 3).astype(np.float32), name="beta")
      self.moving_mean = tf.Variable(np.zeros(3, np.float32), name="moving_mean")
      self.moving_var = tf.Variable(np.ones(3, np.float32), name="moving_var")

    @tf.function(autograph=False)
    def __call__(self, x, training):
      y, mean, var, *_ = r.FusedBatchNormV3(
          x=x, scale=self.gamma, offset=self.beta, mean=self.moving_mean,
          variance=self.moving_var, epsilon=1e-3, exponential_avg_factor=0.01,
          is_training=training)
      if training:
        self.moving_mean.assign(mean)
        self.moving_var.assign(var)
      return y

  x = (rs.standard_normal((4, 5, 5, 3)) * 3 + 2).astype(np.float32)
  for training in (False, True):
    bn = BN()
    fn, params = tf2jax.convert(lambda x: bn(x, training), x)
    y, new_params = jax.jit(fn)(params, x)
    want = bn(tf.constant(x), training)
    assert_close(y, want, 1e-5)
    for v in bn.variables:
      name = v.name[:-2]
      assert_close(new_params[name], v.numpy(), 1e-6, name)
    if training:
      assert not np.allclose(new_params["moving_mean"], 0)


def _core_ops_missing(*ops):
  from tf2jax_core.plugins import manager
  table = manager().op_table()
  return [op for op in ops if op not in table]


@contextlib.contextmanager
def _stand_in_core_ops(ops):
  """Registers minimal lowerings of core ops the model needs if the core lacks them
  (Squeeze, SquaredDifference: another module's work); nothing if the core has them."""
  from tf2jax_core import NUMBER, hookimpl, lowering, xnp
  missing = _core_ops_missing(*ops)
  if not missing:
    yield
    return

  class StandIns:
    TF2JAX_PLUGIN_API = 1

    @staticmethod
    @hookimpl
    def tf2jax_register_ops(registry):
      if "Squeeze" in missing:
        @lowering("Squeeze", attrs={"T": None, "squeeze_dims": None})
        def squeeze(node):
          dims = tuple(node.attrs.get("squeeze_dims") or ())

          def run(x):
            axes = dims or tuple(i for i, d in enumerate(np.shape(x)) if d == 1)
            return xnp(x).squeeze(x, axis=tuple(a % np.ndim(x) for a in axes))
          return run
        registry.add(squeeze)
      if "SquaredDifference" in missing:
        @lowering("SquaredDifference", attrs={"T": NUMBER})
        def squared_difference(node):
          return lambda x, y: xnp(x, y).square(x - y)
        registry.add(squared_difference)

  tf2jax.register_plugin(StandIns, name="nn-test-stand-ins")
  try:
    yield
  finally:
    tf2jax.unregister_plugin("nn-test-stand-ins")


def test_keras_sequential_model_inference_and_training():
  import keras  # a dependency of tensorflow
  keras.utils.set_random_seed(0)
  model = keras.Sequential([
      keras.Input((12, 12, 3)),
      keras.layers.Conv2D(6, 3, padding="same"),
      keras.layers.DepthwiseConv2D(3, strides=2),
      keras.layers.BatchNormalization(momentum=0.9),
      keras.layers.ReLU(),
      keras.layers.MaxPooling2D(2, padding="same"),
      keras.layers.AveragePooling2D(2, strides=1, padding="same"),
      keras.layers.GlobalAveragePooling2D(),
      keras.layers.Dense(4),
  ])
  bn = model.layers[2]
  bn.moving_mean.assign(np.linspace(-1, 1, 6).astype(np.float32))
  bn.moving_variance.assign(np.linspace(0.5, 2, 6).astype(np.float32))
  x = np.random.RandomState(0).standard_normal((2, 12, 12, 3)).astype(np.float32) * 2 + 0.5

  infer = tf.function(lambda x: model(x, training=False), autograph=False)
  train = tf.function(lambda x: model(x, training=True), autograph=False)
  # Keras 3 reshapes conv biases with Squeeze and computes batch moments with
  # SquaredDifference: core ops, stood in for here while the core lacks them.
  with _stand_in_core_ops(["Squeeze", "SquaredDifference"]):
    fn, params = tf2jax.convert(infer, tf.TensorSpec((None, 12, 12, 3)))
    y, new_params = jax.jit(fn)(params, x)
    assert_close(y, infer(x), 1e-5)
    for batch in (1, 3):
      xb = np.resize(x, (batch, 12, 12, 3))
      assert_close(jax.jit(fn)(params, xb)[0], infer(xb), 1e-5)

    # jax.grad of a loss with respect to the params, against tf.GradientTape.
    grads = jax.jit(jax.grad(lambda p: jax.numpy.sum(fn(p, x)[0] ** 2)))(params)
    with tf.GradientTape() as tape:
      loss = tf.reduce_sum(infer(x) ** 2)
    tf_grads = tape.gradient(loss, model.trainable_variables)
    for v, g in zip(model.trainable_variables, tf_grads):
      assert_close(grads[v.path], g, 1e-4, f"gradient of {v.path}")

    fn, params = tf2jax.convert(train, x)
    y, new_params = jax.jit(fn)(params, x)
  want = train(x)  # updates the moving statistics
  assert_close(y, want, 1e-4)
  moving = [k for k in new_params if "moving" in k]
  assert len(moving) == 2, sorted(new_params)
  for key in moving:
    tf_var = bn.moving_mean if "mean" in key else bn.moving_variance
    assert_close(new_params[key], tf_var.numpy(), 1e-5, key)
    assert not np.allclose(new_params[key], params[key])


# Gradient kernels of activations and normalization: errors (values are in the conformance
# specs, tf2jax_nn/activation_norm_grad_specs.py).


@pytest.mark.parametrize("op", ["ReluGrad", "Relu6Grad", "LeakyReluGrad", "EluGrad",
                                "SeluGrad", "SoftplusGrad", "SoftsignGrad"])
def test_activation_grads_refuse_different_shapes_like_tf(op):
  second = "outputs" if op in ("EluGrad", "SeluGrad") else "features"
  fn = lambda g, x: getattr(r, op)(**{"gradients": g, second: x})
  g, x = np.ones((2, 3), np.float32), np.ones((3,), np.float32)
  with pytest.raises(tf.errors.InvalidArgumentError):
    fn(g, x)
  # TF's shape inference refuses the graph with these shapes: trace with unknown ones.
  unknown = tf.TensorSpec(None, tf.float32)
  jax_fn = tf2jax.convert_functional(tf.function(fn), unknown, unknown)
  with pytest.raises(tf2jax.NodeExecutionError, match="must have the same shape"):
    jax_fn(g, x)


def _bn_grad(x_shape, depth, fmt="NHWC", training=True, scale_size=None):
  fn = lambda dy, x, s, m, v: r.FusedBatchNormGradV3(
      y_backprop=dy, x=x, scale=s, reserve_space_1=m, reserve_space_2=v,
      reserve_space_3=np.zeros((0,), np.float32), epsilon=1e-3, data_format=fmt,
      is_training=training)
  x = np.linspace(-1, 1, int(np.prod(x_shape)), dtype=np.float32).reshape(x_shape)
  vec = np.ones((depth,), np.float32)
  s = np.ones((scale_size or depth,), np.float32)
  return fn, (x, x, s, vec, vec)


def test_fused_batch_norm_grad_refuses_bad_shapes_like_tf():
  fn, args = _bn_grad((1, 2, 2, 3), 3, scale_size=2)
  with pytest.raises(tf.errors.InvalidArgumentError):
    fn(*args)
  specs = [tf.TensorSpec(None, tf.float32)] * len(args)  # TF's shape inference refuses it
  jax_fn = tf2jax.convert_functional(tf.function(fn), *specs)
  with pytest.raises(tf2jax.NodeExecutionError, match="scale must be a vector of the 3"):
    jax_fn(*args)


def test_fused_batch_norm_grad_inference_channels_first_needs_onednn():
  """TF's Eigen kernel computes is_training=false gradients only for channels-last data;
  oneDNN's (float32, 4-D) takes NCHW too."""
  fn, args = _bn_grad((1, 3, 2, 2), 3, fmt="NCHW", training=False)
  jax_fn = tf2jax.convert_functional(tf.function(fn), *args)
  if _common.native("float32"):
    for got, want in zip(jax_fn(*args), fn(*args)):
      assert_close(got, want)
    return
  with pytest.raises(tf.errors.InvalidArgumentError):
    fn(*args)
  with pytest.raises(tf2jax.NodeExecutionError, match="channels-last"):
    jax_fn(*args)


def test_lrn_grad_refuses_negative_depth_radius():
  fn = lambda g, x, y: r.LRNGrad(input_grads=g, input_image=x, output_image=y,
                                 depth_radius=-1)
  a = np.ones((1, 1, 1, 3), np.float32)
  with pytest.raises(tf.errors.InvalidArgumentError):
    fn(a, a, a)
  with pytest.raises(tf2jax.UnsupportedOpsError, match="depth_radius"):
    tf2jax.convert_functional(tf.function(fn), a, a, a)


@pytest.mark.parametrize("direction,layers", [("bidirectional", 1), ("unidirectional", 2)])
def test_cudnn_rnn_refuses_layouts_not_verified(direction, layers):
  """Only one layer and one direction of CudnnRNN's params buffer are known for sure:
  the others are refused (TF has no CPU kernel to compare with)."""
  dirs = 2 if direction == "bidirectional" else 1
  x = np.zeros((3, 2, 4), np.float32)
  h = np.zeros((layers * dirs, 2, 5), np.float32)
  from tf2jax_nn.recurrent import cudnn_params_size
  params = np.zeros((cudnn_params_size("gru", layers, dirs, 4, 5),), np.float32)

  @tf.function
  def fn(x, h, weights):
    return tf.raw_ops.CudnnRNN(input=x, input_h=h, input_c=h, params=weights,
                               rnn_mode="gru", direction=direction)[0]

  with pytest.raises(tf2jax.UnsupportedOpsError, match="not verified"):
    jax_fn, jax_params = tf2jax.convert(fn, x, h, params)
    jax_fn(jax_params, x, h, params)  # the layer count is known when shapes are
