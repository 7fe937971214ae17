"""Specs of the core's legacy ops: the Batch* names of linear algebra, array and FFT ops
(GraphDef versions < 13 to 15), TileGrad, and the kernels IgammaGradA, CholeskyGrad,
SparseMatMul and Print.

TF no longer runs the Batch* ops nor TileGrad (eager and tf.function refuse an op removed
at an older GraphDef version; BatchFFT* have no kernel left, and TileGrad's kernel
constrains an attr, Tmultiples, that its op does not have, so it never runs). Their
kernels are the current ops' kernels under the old names: `build` traces the current op
(the stand-in) and `rewrite` turns the traced graph into the one old TF versions wrote
(see OpSpec.rewrite). TF registers no gradient for these old names: the stand-in's
gradient is compared.
"""

from __future__ import annotations

import math

import numpy as np
from hypothesis import strategies as st

from tf2jax_conformance import dtypes as D
from tf2jax_conformance import strategies as cst
from tf2jax_conformance.core_specs import array_manipulation_specs as am
from tf2jax_conformance.core_specs import linalg_specs as la
from tf2jax_conformance.core_specs import spectral_specs as sp
from tf2jax_conformance.core_specs.special_specs import _igamma_example, _igamma_tolerance
from tf2jax_conformance.spec import (Example, OpSpec, Tolerance, default_tolerance,
                                     largest_finite_abs)

_NO_GRAD = ("jit", "static", "x64", "vmap")
_STAND_IN = ("TF no longer runs it (removed at GraphDef version {v}); its kernel is "
             "{op}'s, which is the reference (traced, then renamed). TF registers no "
             "gradient for the old name: {op}'s gradient is compared. ")


def _tf():
  import tensorflow as tf
  return tf


def _rename(stand_in: str, op: str, drop=(), producer: int = 10):
  """Every `stand_in` node becomes `op` (attrs in `drop` removed)."""
  def rewrite(graph_def, example):
    del example
    for node in graph_def.node:
      if node.op == stand_in:
        node.op = op
        for attr in drop:
          del node.attr[attr]
    graph_def.versions.producer = producer
  return rewrite


def _raw_build(stand_in: str, static=()):
  """`tf.raw_ops.<stand_in>` with the example's inputs and attrs."""
  from tf2jax_conformance.harness import raw_op_body
  return lambda example: raw_op_body(OpSpec(stand_in, None, static_inputs=static), example)


def _legacy(op: str, stand_in: str, example, *, removed: int, build=None, drop=(),
            notes: str = "", **kw) -> OpSpec:
  kw.setdefault("tolerance", la._linalg_tol())
  kw.setdefault("grad_tolerance", la._grad_tol())
  return OpSpec(op, example, build=build or _raw_build(stand_in, kw.get("static_inputs", ())),
                rewrite=_rename(stand_in, op, drop, producer=removed - 1),
                notes=_STAND_IN.format(v=removed, op=stand_in) + notes, **kw)


# Batch* array ops (removed at version 14) ---------------------------------------------


def _band_part_int64(dtype):
  """MatrixBandPart's examples with int64 bands (BatchMatrixBandPart has no Tindex)."""
  return am.band_part_example(dtype).map(lambda e: Example(
      {**e.inputs, "num_lower": e.inputs["num_lower"].astype(np.int64),
       "num_upper": e.inputs["num_upper"].astype(np.int64)}, e.attrs, e.extra))


def _array_specs() -> list[OpSpec]:
  exact = dict(tolerance=am._EXACT, grad_tolerance=None)
  return [
      _legacy("BatchMatrixBandPart", "MatrixBandPart", _band_part_int64, removed=14,
              drop=("Tindex",), **exact),
      _legacy("BatchMatrixDiag", "MatrixDiag", am.matrix_diag_example, removed=14, **exact),
      _legacy("BatchMatrixDiagPart", "MatrixDiagPart", am.matrix_diag_part_example,
              removed=14, **exact),
      _legacy("BatchMatrixSetDiag", "MatrixSetDiag", am.matrix_set_diag_example,
              removed=14, **exact),
  ]


# Batch* linear algebra (removed at version 13) ----------------------------------------


def _linalg_specs() -> list[OpSpec]:
  adjoint = {"adjoint": st.booleans()}
  return [
      _legacy("BatchCholesky", "Cholesky", la._cholesky_example, removed=13,
              build=la._cholesky_build,
              notes="Input x x^H + n I in the lower triangle, x in the strict upper one "
                    "(see the Cholesky spec)."),
      _legacy("BatchMatrixDeterminant", "MatrixDeterminant", la._det_example, removed=13,
              notes=la._LINALG_NOTE),
      _legacy("BatchMatrixInverse", "MatrixInverse",
              lambda d: la._square_example(d, adjoint), removed=13, notes=la._LINALG_NOTE),
      _legacy("BatchMatrixSolve", "MatrixSolve",
              lambda d: la._square_example(d, adjoint, rhs=True), removed=13,
              notes=la._LINALG_NOTE),
      _legacy("BatchMatrixSolveLs", "MatrixSolveLs", la._lstsq_example, removed=13,
              static_inputs=("l2_regularizer",), notes=la._LINALG_NOTE),
      _legacy("BatchMatrixTriangularSolve", "MatrixTriangularSolve", la._trisolve_example,
              removed=13,
              notes=la._LINALG_NOTE + " The kernel (MatrixTriangularSolve's) broadcasts "
                    "batch dimensions; the triangle it does not read holds other values."),
      _legacy("BatchSelfAdjointEigV2", "SelfAdjointEigV2", la._eig_example, removed=13,
              build=la._eig_build,
              notes=la._LINALG_NOTE + " Eigenvectors compared through |v|^2."),
      _legacy("BatchSvd", "Svd", la._svd_example, removed=13, build=la._svd_build,
              notes=la._LINALG_NOTE + " Outputs compared as in the Svd spec: s, "
                    "U diag(s) V^H, |U|^2 and |V|^2."),
  ]


# BatchFFT* (removed at version 15; no kernel left) ------------------------------------


def _fft_specs() -> list[OpSpec]:
  out = []
  for rank, suffix in ((1, ""), (2, "2D"), (3, "3D")):
    for kind in ("FFT", "IFFT"):
      stand_in = kind + suffix
      out.append(_legacy(
          "Batch" + stand_in, stand_in, sp._complex_example(rank), removed=15,
          build=sp._complex_build(stand_in), drop=("Tcomplex",), dtype_attr=None,
          dtypes=("complex64",), grad_dtypes=("complex64",), tolerance=sp._fft_bound,
          grad_tolerance=sp._fft_grad_bound,
          notes="The old op is complex64 only, without a Tcomplex attr. " + sp._NOTE))
  return out


# TileGrad (removed at version 3) --------------------------------------------------------

# The dtypes of TF's TileGrad kernel (its Compute handles these; TF cannot run it at all).
_TILE_GRAD = ("float16", "bfloat16", "float32", "float64", "complex64", "complex128",
              "int16", "int32", "int64")


def _tile_grad_example(dtype):
  def for_draw(t):
    tile, reps = t
    shape = tuple(d * r for d, r in zip(tile, reps))
    bound = None
    if dtype in D.FLOAT or dtype in D.COMPLEX:
      # No partial sum of up to 27 tiles may overflow (its rounding is TF's).
      part = {"complex64": "float32", "complex128": "float64"}.get(dtype, dtype)
      bound = float(D.finfo(part).max) / 64
    kw = {} if bound is None else {"min_value": -bound, "max_value": bound}
    return cst.arrays(dtype, shape, **kw).map(lambda x: Example(
        {"input": x, "multiples": np.asarray(reps, np.int32)}))
  return cst.shapes(max_dims=3, max_side=2, max_size=8).flatmap(lambda tile: st.tuples(
      st.just(tile), st.lists(st.integers(1, 3), min_size=len(tile), max_size=len(tile)))
  ).flatmap(for_draw)


def _tile_grad_build(example):
  """The sum of the tiles with TF ops (what replaced TileGrad), between tg_in and tg_out."""
  tf = _tf()
  reps = [int(r) for r in example.inputs["multiples"]]

  def body(x):
    x = tf.identity(x, name="tg_in")
    split = [v for d, r in zip(x.shape, reps) for v in (r, d // r)]
    y = tf.reduce_sum(tf.reshape(x, split), axis=list(range(0, 2 * len(reps), 2)))
    return tf.identity(y, name="tg_out")
  return body


def _tile_grad_rewrite(graph_def, example):
  tf = _tf()
  const = graph_def.node.add(name="tg_multiples", op="Const")
  const.attr["dtype"].type = tf.int32.as_datatype_enum
  const.attr["value"].tensor.CopyFrom(tf.make_tensor_proto(example.inputs["multiples"]))
  node = graph_def.node.add(name="tg", op="TileGrad", input=["tg_in", "tg_multiples"])
  node.attr["T"].type = la._node(graph_def, "tg_in").attr["T"].type
  la._node(graph_def, "tg_out").input[0] = "tg"
  graph_def.versions.producer = 2


def _tile_grad_tolerance(dtype, ex):
  """A sum of k = prod(multiples) tiles in any order: (k - 1) eps sum|x_i| <= (k - 1) k
  eps max|x| absolute (eps of the dtype: TF may accumulate half precision in it)."""
  base = default_tolerance(dtype)
  if dtype not in D.FLOAT + D.COMPLEX:
    return base
  k = math.prod(int(r) for r in ex.inputs["multiples"])
  scale = largest_finite_abs(ex.inputs["input"])
  return Tolerance(base.rtol, base.atol + (k - 1) * k * la._eps(dtype) * scale)


def _tile_grad_spec() -> OpSpec:
  return OpSpec(
      "TileGrad", _tile_grad_example, dtypes=_TILE_GRAD, static_inputs=("multiples",),
      skip_dtypes={d: "TF's TileGrad kernel is registered for any T but its Compute handles "
                      "only " + ", ".join(_TILE_GRAD) for d in D.ALL
                   if d not in _TILE_GRAD and d not in D.NOT_IN_JAX},
      build=_tile_grad_build, rewrite=_tile_grad_rewrite, tolerance=_tile_grad_tolerance,
      grad_tolerance=am._grad_sum_tol(lambda ex: 1),
      notes="TF cannot run it: removed at GraphDef version 3, and its kernel constrains "
            "an attr (Tmultiples) the op does not have. Reference: reshape to "
            "[m0, d0, m1, d1, ...] and reduce_sum over the m axes (what replaced it), "
            "rewritten into TileGrad; dtypes: those its kernel's Compute handles. Finite "
            "values bounded by max/64 (no partial sum of up to 27 tiles overflows), NaN "
            "drawn. TF never had a gradient for it: the stand-in's is compared.")


# IgammaGradA, CholeskyGrad, SparseMatMul, Print ----------------------------------------


def _igamma_grad_a_spec() -> OpSpec:
  return OpSpec(
      "IgammaGradA", _igamma_example, tolerance=_igamma_tolerance, transforms=_NO_GRAD,
      notes="Igamma's examples and tolerance (see special_specs._igamma_tolerance): "
            "pairs with 0.5 < x / a < 2 above 1e3 are scaled down to 1e3, where TF's and "
            "XLA's IgammaGradA agree within 139 eps (6e7 eps apart at 1e4). Inputs "
            "broadcast. No grad: TF registers no gradient for it.")


def _cholesky_grad_example(dtype):
  def for_draw(t):
    batch, n = t
    shape = tuple(batch) + (n, n)
    return st.tuples(cst.finite_arrays(dtype, shape, bound=1.0),
                     cst.finite_arrays(dtype, shape, bound=10.0)).map(
        lambda v: Example({"l": v[0], "grad": v[1]}))
  return st.tuples(la._batches(), st.integers(0, 4)).flatmap(for_draw)


def _cholesky_grad_build(example):
  """l: (2 + diag(x)) on the diagonal (in [1, 3]), the strict lower triangle of x / n
  below it (condition number below ~10 for any x, vmap's rolled batches too) and x above
  it, which TF does not read."""
  tf = _tf()
  n = example.inputs["l"].shape[-1]

  def body(x, grad):
    diag = tf.linalg.band_part(x, 0, 0)
    lower = (tf.linalg.band_part(x, -1, 0) - diag) / max(n, 1)
    upper = tf.linalg.band_part(x, 0, -1) - diag
    l = diag + 2 * tf.eye(n, dtype=x.dtype) + lower + upper
    return tf.raw_ops.CholeskyGrad(l=l, grad=grad)
  return body


def _cholesky_grad_spec() -> OpSpec:
  return OpSpec(
      "CholeskyGrad", _cholesky_grad_example, build=_cholesky_grad_build,
      tolerance=la._linalg_tol(), transforms=_NO_GRAD,
      notes="l lower triangular with diagonal in [1, 3] and the rest in [-1/n, 1/n] "
            "(well-conditioned), other values above the diagonal (TF reads the lower "
            "triangles of l and grad only); grad in [-10, 10]. Two triangular solves: "
            "the linear algebra tolerance. No grad: TF registers no gradient for it.")


def _sparse_matmul_example(ta):
  def for_draw(t):
    (m, k, n), tb, tr_a, tr_b, a_sp, b_sp = t
    sa = (k, m) if tr_a else (m, k)
    sb = (n, k) if tr_b else (k, n)
    if a_sp or b_sp:  # see the notes: gradients through the zero-skipping path differ
      va = cst.finite_arrays(ta, sa, bound=la._product_bound(ta))
      vb = cst.finite_arrays(tb, sb, bound=la._product_bound(tb))
    else:
      va, vb = la.product_values(ta, sa), la.product_values(tb, sb)
    attrs = {"transpose_a": tr_a, "transpose_b": tr_b, "a_is_sparse": a_sp,
             "b_is_sparse": b_sp}  # Ta and Tb are the inputs' dtypes
    return st.tuples(va, vb).map(lambda v: Example({"a": v[0], "b": v[1]}, attrs))
  return st.tuples(st.tuples(*[st.integers(0, 4)] * 3),
                   st.sampled_from(["float32", "bfloat16"]), st.booleans(), st.booleans(),
                   st.booleans(), st.booleans()).flatmap(for_draw)


def _sparse_sizes(ex):
  a, b = np.asarray(ex.inputs["a"]), np.asarray(ex.inputs["b"])
  a = a.T if ex.attrs["transpose_a"] else a
  b = b.T if ex.attrs["transpose_b"] else b
  return a, b


def _sparse_matmul_tolerance(dtype, ex):
  """A float32 sum of k products in any order (bfloat16 inputs are exact in float32)."""
  a, b = _sparse_sizes(ex)
  return la._sum_bound("float32", a.shape[1], la._abs_max_product(a, b))


def _sparse_matmul_grad_tolerance(dtype, ex):
  """Gradients are g b^T and a^T g (|g| <= 10): float32 sums of n and m terms, rounded
  to bfloat16 (2 eps relative) where an input is bfloat16."""
  a, b = _sparse_sizes(ex)
  m, n = a.shape[0], b.shape[1]
  fa = np.where(np.isfinite(a), np.abs(a.astype(np.float64)), 0)
  fb = np.where(np.isfinite(b), np.abs(b.astype(np.float64)), 0)
  scale = 10 * max(n * float(fb.max(initial=0)), m * float(fa.max(initial=0)))
  eps32 = la._eps("float32")
  half = "bfloat16" in (D.name_of(a.dtype), D.name_of(b.dtype))
  rtol = 2 * la._eps("bfloat16") if half else 16 * eps32
  return Tolerance(rtol, 2 * (max(m, n) + 1) * eps32 * scale + (rtol * scale if half
                                                                   else 0.0))


def _sparse_matmul_spec() -> OpSpec:
  return OpSpec(
      "SparseMatMul", _sparse_matmul_example, dtype_attr="Ta",
      tolerance=_sparse_matmul_tolerance, grad_tolerance=_sparse_matmul_grad_tolerance,
      notes="Tb drawn among float32 and bfloat16 (TF's CPU kernels take every pair); "
            "the output is float32. TF's sparse algorithm (a_is_sparse, or b_is_sparse "
            "alone) skips the zeros of the sparse operand: [[0, 1]] @ [[inf], [2]] is 2 "
            "with a_is_sparse, NaN without; tf2jax does the same (checked by hand on "
            "values among 0, -0, 1, -2, +-inf, NaN). With a sparse hint the spec draws "
            "finite values only: tf2jax's gradients there are those of the dense "
            "product. Without hints: " + la._BMM_NOTES)


def _print_example(dtype):
  return st.tuples(
      cst.arrays(dtype, cst.shapes(max_size=16)),
      st.lists(cst.arrays(dtype, cst.shapes(max_dims=2, max_side=3)), max_size=2),
      st.sampled_from(["", "x: "]), st.sampled_from([-1, 0, 1]), st.sampled_from([0, 3]),
  ).map(lambda t: Example({"input": t[0], "data": t[1]},
                          {"message": t[2], "first_n": t[3], "summarize": t[4]}))


def _print_spec() -> OpSpec:
  return OpSpec(
      "Print", _print_example, dtypes=D.ALL,
      notes="Every dtype, as Identity (TF's kernel prints float8, float4 and int4 values "
            "too). The output is the input; data (0 to 2 tensors of the input's dtype) is only "
            "printed. The converted function prints nothing (printing is a side effect "
            "JAX does not order; as for PrintV2).")


def specs() -> list[OpSpec]:
  return [*_array_specs(), *_linalg_specs(), *_fft_specs(), _tile_grad_spec(),
          _igamma_grad_a_spec(), _cholesky_grad_spec(), _sparse_matmul_spec(),
          _print_spec()]
