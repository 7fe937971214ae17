"""Conformance specs of XlaIf, XlaWhile, XlaRngBitGenerator, XlaSelfAdjointEig and XlaSvd.

The reference is `tf.function(jit_compile=True)` (these ops run only through XLA) and the
dtypes are those of TF's XLA_CPU_JIT kernels. TF registers no gradient for any of them.
A test dependency: only the plugin's `tf2jax_conformance_specs` hook imports this module.
"""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

from tf2jax_conformance import dtypes as D
from tf2jax_conformance import strategies as cst
from tf2jax_conformance.core_specs.linalg_specs import (_abs2, _batches, _linalg_tol,
                                                        _spectral_matrices)
from tf2jax_conformance.spec import Example, OpSpec, Tolerance

_XLA = dict(kernel_device="XLA_CPU_JIT", tf_jit_compile=True,
            transforms=("jit", "static", "x64", "vmap"))
_NO_GRAD = "No grad: TF registers no gradient for it. "


def _gen():
  from tensorflow.compiler.tf2xla.ops import gen_xla_ops
  return gen_xla_ops


# XlaIf / XlaWhile ---------------------------------------------------------------------
# The values they carry: a sample of every kind. lax.cond / lax.while_loop carry any
# dtype alike (the controlflow plugin's If spec covers every dtype in lax.cond).
_SAMPLE = ("bool", "uint8", "int64", "float16", "bfloat16", "float32", "complex128")


def _sampled_out(op: str) -> dict[str, str]:
  why = (f"{op} carries values of any dtype alike; this spec covers "
         f"{', '.join(_SAMPLE)} (to keep the ci profile cheap)")
  kernel = D.kernel_dtypes(op, "Tin" if op == "XlaIf" else "T", "XLA_CPU_JIT")
  out = {d: why for d in kernel if d not in _SAMPLE and d not in D.NOT_IN_JAX}
  out.update({d: "TF cannot trace a graph holding it (no TensorProto type)"
              for d in D.NO_GRAPH_CONSTANT})
  return out


def _combine(dtype):
  import tensorflow as tf
  if dtype == "bool":
    return tf.math.logical_xor
  return lambda a, b: a + b


def _carried(dtype):
  return cst.shapes(max_dims=2, max_side=3).flatmap(
      lambda shape: st.tuples(cst.arrays(dtype, shape), cst.arrays(dtype, shape)))


# The predicate: a scalar bool, or (TF's XLA compile and tf2jax refuse them) a bool of
# shape [1] or an int32 scalar. sampled_from: the first option is the simplest example's.
_PREDS = (("bool", ()), ("bool", ()), ("bool", ()), ("bool", (1,)), ("int32", ()))


def _if_example(dtype):
  def more(t):
    (x, y), (pdtype, pshape) = t
    return cst.arrays(pdtype, pshape).map(
        lambda c: Example({"cond": c, "x": x, "y": y}))
  return st.tuples(_carried(dtype), st.sampled_from(_PREDS)).flatmap(more)


def _if_body(example):
  import tensorflow as tf
  from tensorflow.core.framework import attr_value_pb2
  x = example.inputs["x"]
  dtype = D.name_of(x.dtype)
  spec = tf.TensorSpec(x.shape, tf.as_dtype(x.dtype))
  f = _combine(dtype)
  then_cf = tf.function(lambda a, b: (f(a, b), b, tf.constant(1, tf.int32)),
                        autograph=False).get_concrete_function(spec, spec)
  else_cf = tf.function(lambda a, b: (b, a, tf.constant(0, tf.int32)),
                        autograph=False).get_concrete_function(spec, spec)
  tout = [tf.as_dtype(x.dtype), tf.as_dtype(x.dtype), tf.int32]

  def fn(cond, a, b):
    outs = _gen().xla_if(cond, [a, b], then_cf, else_cf, tout)
    # TF's XLA kernel for XlaIf reads an `output_shapes` attr its op def lacks (without
    # it TF fails: "No attr named 'output_shapes' in NodeDef"): set it on the node.
    shapes = attr_value_pb2.AttrValue.ListValue(shape=[o.shape.as_proto() for o in outs])
    op = outs[0].op
    # pylint: disable-next=protected-access
    op._set_attr("output_shapes", attr_value_pb2.AttrValue(list=shapes))
    return outs
  return fn


def _while_example(dtype):
  def more(t):
    x, y = t
    return st.tuples(st.sampled_from([3, 0, 1, 2, 4, -1]), st.booleans(),
                     st.integers(0, 255)).map(
        lambda u: Example({"n": np.int32(u[0]), "x": x, "y": y} if not u[1]
                          else {"x": x, "y": y},
                          extra={"n": u[0], "static_n": u[1], "k": u[2]}))
  return _carried(dtype).flatmap(more)


def _while_body(example):
  import tensorflow as tf
  x = example.inputs["x"]
  spec = tf.TensorSpec(x.shape, tf.as_dtype(x.dtype))
  i_spec, k_spec = tf.TensorSpec([], tf.int32), tf.TensorSpec([], tf.uint8)
  f = _combine(D.name_of(x.dtype))
  specs = (i_spec, i_spec, k_spec, spec, spec)
  cond_cf = tf.function(lambda i, n, k, a, b: i < n,
                        autograph=False).get_concrete_function(*specs)
  body_cf = tf.function(lambda i, n, k, a, b: (i + 1, n, k * 3 + 1, b, f(a, b)),
                        autograph=False).get_concrete_function(*specs)
  e = example.extra

  def fn(*args):
    if e["static_n"]:
      n, (a, b) = tf.constant(e["n"], tf.int32), args
    else:
      n, a, b = args
    k = tf.constant(e["k"], tf.uint8)
    return _gen().xla_while([tf.constant(0, tf.int32), n, k, a, b], cond_cf, body_cf)
  return fn


_IF_NOTES = (_NO_GRAD + "A scalar bool predicate, traced (lax.cond) or a constant "
             "(static: the branch is called directly); some examples use a [1] bool or an "
             "int32 predicate, which TF's XLA compile refuses, as tf2jax does. Branches "
             "return (x + y, y, 1) and (y, x, 0) (logical xor for bool).")
_WHILE_NOTES = (_NO_GRAD + "Loop variables: an int32 counter and its limit, a uint8 "
                "changed (wrapping) every iteration, and two values of the case dtype, "
                "(x, y) -> (y, x + y) (logical xor for bool); -1 to 4 iterations, the limit "
                "traced (lax.while_loop) or a constant (static: the loop runs at trace "
                "time).")


# XlaRngBitGenerator -------------------------------------------------------------------
# (algorithm, state size): Philox (1) and auto-select (3) take a key and a 64- or
# 128-bit counter, ThreeFry (2) a key and a 64-bit counter. The last options are states
# TF's XLA compile refuses (as tf2jax does).
_RNG_CONFIGS = ((1, 3), (1, 2), (2, 2), (3, 3), (3, 2), (1, 3), (2, 3), (1, 4))


def _rng_example(dtype):
  def build(t):
    (alg, size), shape, index_dtype = t
    return cst.arrays("uint64", (size,)).map(lambda s: Example(
        {"algorithm": np.int32(alg), "initial_state": s,
         "shape": np.asarray(shape, D.np_dtype(index_dtype)).reshape(len(shape))},
        {"dtype": dtype}))
  return st.tuples(st.sampled_from(_RNG_CONFIGS), cst.shapes(max_dims=3, max_side=5),
                   cst.index_dtypes()).flatmap(build)


def _rng_body(example):
  import tensorflow as tf
  alg = tf.constant(example.inputs["algorithm"])
  shape = tf.constant(example.inputs["shape"])
  dtype = tf.as_dtype(example.attrs["dtype"])
  return lambda s: list(_gen().xla_rng_bit_generator(alg, s, shape, dtype=dtype))


_RNG_NOTES = (_NO_GRAD + "Bits compared exactly with TF's, and the new state: Philox (1), "
              "ThreeFry (2) and auto-select (3, Philox on CPU) on u64[2] states and "
              "Philox / auto-select on u64[3] states (128-bit counter), any values "
              "(counter carries included), shapes of up to 3 dims (empty ones too); some "
              "examples hold states TF's XLA compile refuses (ThreeFry on u64[3], u64[4]), "
              "as tf2jax does.")


# XlaSelfAdjointEig / XlaSvd -----------------------------------------------------------


def _epsilons(dtype):
  """Jacobi tolerances at which TF's XLA converges to about the dtype's precision (the
  eigen/singular vectors' error is about epsilon / gap, so epsilon is near the dtype's
  eps or below)."""
  if dtype in ("float64", "complex128"):
    return st.sampled_from([1e-15, 1e-16, 1e-17])
  if dtype in ("float16", "bfloat16"):
    return st.sampled_from([1e-3, 1e-4, 1e-5])
  return st.sampled_from([1e-7, 1e-8, 1e-9])


def _jacobi(dtype):
  return st.tuples(st.integers(10, 100), _epsilons(dtype))


def _tol(dtype, example):
  # 16-bit floats: TF's Jacobi runs in them (errors of a few ulps times n), tf2jax in
  # float32 then rounds; the core's 64 ulps per size would accept almost anything.
  return _linalg_tol(8.0 if dtype in ("float16", "bfloat16") else 64.0)(dtype, example)


def _eig_tol(dtype, example):
  if dtype in ("float64", "complex128"):
    # TF's XLA Jacobi gives 64-bit eigenvectors to about 1e-8 only: |v|^2 off LAPACK's by
    # up to 3.1e-9 (float64) and 4.7e-9 (complex128) over 60 random Hermitian matrices of
    # size 1 to 4 each, whatever max_iter and epsilon (its eigenvalues and Rayleigh
    # quotients are exact to 2e-15; its float64 SVD is exact to 1e-14).
    return Tolerance(rtol=1e-7, atol=1e-7)
  return _tol(dtype, example)


def _eig_example(dtype):
  def for_draw(t):
    batch, n, lower, (max_iter, eps) = t
    shape = tuple(batch) + (n, n)

    def junk(pair):  # the triangle TF does not read holds other values
      a, other = pair
      keep = np.tril(np.ones((n, n), bool)) if lower else np.triu(np.ones((n, n), bool))
      return Example({"a": np.where(keep, a, other)},
                     {"lower": lower, "max_iter": max_iter, "epsilon": eps})
    return st.tuples(_spectral_matrices(dtype, batch, n, n, "hermitian"),
                     cst.finite_arrays(dtype, shape, bound=10.0)).map(junk)
  return st.tuples(_batches(), st.integers(0, 4), st.booleans(), _jacobi(dtype)).flatmap(
      for_draw)


def _eig_body(example):
  import tensorflow as tf
  at = example.attrs

  def body(x):
    w, v = _gen().xla_self_adjoint_eig(x, at["lower"], at["max_iter"], at["epsilon"])
    if not x.dtype.is_complex:
      return w, _abs2(tf, v), tf.matmul(v * tf.expand_dims(w, -2), v, adjoint_b=True)
    # TF bug: for complex inputs XLA's real eigenvalues are read as complex numbers (w
    # holds [w0 + w1 j, w2 + w3 j, garbage]): compare v only, and the eigenvalues it gives
    # (the diagonal of V^H A V, A Hermitian from the triangle read).
    tri = tf.linalg.band_part(x, -1, 0) if at["lower"] else tf.linalg.band_part(x, 0, -1)
    herm = tri + tf.linalg.adjoint(tri) - tf.linalg.diag(tf.linalg.diag_part(tri))
    rayleigh = tf.math.real(tf.linalg.diag_part(tf.matmul(tf.matmul(v, herm,
                                                                    adjoint_a=True), v)))
    return _abs2(tf, v), rayleigh
  return body


def _svd_example(dtype):
  def for_draw(t):
    batch, m, n, (max_iter, eps), precision = t
    return _spectral_matrices(dtype, batch, m, n).map(
        lambda a: Example({"a": a}, {"max_iter": max_iter, "epsilon": eps},
                          extra={"precision": precision}))
  return st.tuples(_batches(), st.integers(1, 4), st.integers(1, 4), _jacobi(dtype),
                   st.one_of(st.just(None), st.lists(st.sampled_from([0, 1, 2]),
                                                     min_size=2, max_size=2))).flatmap(
      for_draw)


def _svd_body(example):
  import tensorflow as tf
  from tensorflow.compiler.xla import xla_data_pb2
  at = example.attrs
  precision = xla_data_pb2.PrecisionConfig(
      operand_precision=example.extra["precision"] or []).SerializeToString()

  def body(x):
    s, u, v = _gen().xla_svd(x, at["max_iter"], at["epsilon"], precision)
    k = min(x.shape[-2], x.shape[-1])
    us = u[..., :k] * tf.expand_dims(s, -2)
    return (s, tf.matmul(us, v[..., :k], adjoint_b=True), _abs2(tf, u[..., :k]),
            _abs2(tf, v[..., :k]), tf.matmul(u, u, adjoint_b=True),
            tf.matmul(v, v, adjoint_b=True))
  return body


_LINALG_NOTES = (
    _NO_GRAD + "Well-conditioned inputs: {what} of magnitude in [1, 2.5], at least 0.37 "
    "apart; max_iter in [10, 100] and epsilon near the dtype's eps or below, where "
    "TF's Jacobi converges (tf2jax ignores both: it computes the converged "
    "decomposition, LAPACK in float32 for 16-bit floats). Sign / phase free "
    "comparisons in the same TF function: {compared}. Tolerance: 64 ulps per matrix "
    "size (8 for 16-bit floats).")
# Note: epsilon must stay above 0: TF's XLA SVD returns NaN for epsilon <= 0, and zeros
# for some matrices at epsilon 1e-30 in float32.


def specs() -> list[OpSpec]:
  eig_skip = {d: "TF's XLA compile refuses it (XLA decomposes floating point and complex "
                 "matrices only); tf2jax refuses it too" for d in
              ("int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64")}
  return [
      OpSpec("XlaIf", _if_example, build=_if_body, dtype_attr="Tin", dtypes=_SAMPLE,
             skip_dtypes=_sampled_out("XlaIf"), notes=_IF_NOTES, **_XLA),
      OpSpec("XlaWhile", _while_example, build=_while_body, dtype_attr="T",
             dtypes=_SAMPLE, skip_dtypes=_sampled_out("XlaWhile"), notes=_WHILE_NOTES,
             **_XLA),
      OpSpec("XlaRngBitGenerator", _rng_example, build=_rng_body, dtype_attr="dtype",
             static_inputs=("algorithm", "shape"), notes=_RNG_NOTES, **_XLA),
      OpSpec("XlaSelfAdjointEig", _eig_example, build=_eig_body, skip_dtypes=eig_skip,
             tolerance=_eig_tol, notes=_LINALG_NOTES.format(
                 what="Hermitian matrices with eigenvalues",
                 compared="w (ascending, as XLA sorts them), |v|^2 and V diag(w) V^H; for "
                 "complex inputs (TF bug: w holds XLA's real eigenvalues read as complex "
                 "numbers, and garbage) |v|^2 and the diagonal of V^H A V") + " lower "
                 "drawn; the triangle TF does not read holds other values. float64 and "
                 "complex128: tolerance 1e-7, as TF's XLA Jacobi gives their eigenvectors "
                 "to about 1e-8 only (|v|^2 off LAPACK's by up to 5e-9).", **_XLA),
      OpSpec("XlaSvd", _svd_example, build=_svd_body, tolerance=_tol,
             skip_dtypes={"float16": "TF bug: TF's XLA SVD returns wrong float16 singular "
                                     "values (e.g. [1.337, 1.5e-05, 0, 0] for [2.5, 2, 1.5, "
                                     "1])"},
             notes=_LINALG_NOTES.format(
                 what="singular values",
                 compared="s (descending), U diag(s) V^H, |U|^2 and |V|^2 on the first "
                 "min(m, n) columns, U U^H and V V^H (U and V are square)") + " Matrices "
                 "of 1 to 4 rows and columns (TF's XLA refuses empty ones, as tf2jax "
                 "does); precision_config drawn.", **_XLA),
  ]
