"""Specs of the core's batched products, Einsum, Cross and linear algebra ops.

Values: products draw every edge value for integers (wrap-around is the same in any
order) and, for floats, NaN, infinities, zeros and finite values small enough that no
partial sum overflows (otherwise the result depends on the order of accumulation, which
is the implementation's). Linear algebra draws well-conditioned matrices, and compares
decompositions through quantities that do not depend on their sign or phase freedom
(reconstructions, absolute values): such specs wrap the op in a small TF function.
"""

from __future__ import annotations

import math

import numpy as np
from hypothesis import strategies as st

from tf2jax_conformance import dtypes as D
from tf2jax_conformance import strategies as cst
from tf2jax_conformance.spec import Example, OpSpec, Tolerance, default_tolerance

_PART = {"complex64": "float32", "complex128": "float64"}


def _eps(dtype: str) -> float:
  return float(D.finfo(_PART.get(dtype, dtype)).eps)


def _product_bound(dtype: str) -> float:
  """Finite magnitudes whose products and short sums stay far from overflow."""
  return {"float16": 8.0, "bfloat16": 1e4}.get(_PART.get(dtype, dtype), 1e6)


def product_values(dtype: str, shape) -> st.SearchStrategy[np.ndarray]:
  if dtype in D.COMPLEX:
    part = st.one_of(st.just(0.0), st.floats(1e-3, 1e6), st.floats(-1e6, -1e-3))
    npd = D.np_dtype(dtype)
    n = math.prod(shape)
    return st.lists(st.tuples(part, part), min_size=n, max_size=n).map(
        lambda zs: np.array([complex(a, b) for a, b in zs], npd).reshape(shape))
  if dtype in D.INT or dtype in D.FLOAT:
    if dtype in D.INT:
      return cst.arrays(dtype, shape)
    b = _product_bound(dtype)
    return cst.arrays(dtype, shape, min_value=-b, max_value=b)
  raise ValueError(dtype)


def _abs_max_product(a, b) -> float:
  """max |a| @ |b| over the finite parts (the scale of the rounding error of a @ b)."""
  a = np.abs(np.asarray(a).astype(np.complex128))
  b = np.abs(np.asarray(b).astype(np.complex128))
  a, b = np.where(np.isfinite(a), a, 0), np.where(np.isfinite(b), b, 0)
  if a.size == 0 or b.size == 0:
    return 0.0
  prod = np.matmul(a, b)
  return float(np.max(prod)) if prod.size else 0.0


def _sum_bound(dtype: str, k: int, scale: float) -> Tolerance:
  base = default_tolerance(dtype)
  if dtype in D.INT or dtype not in D.FLOAT + D.COMPLEX:
    return base
  return Tolerance(rtol=base.rtol, atol=base.atol + 2 * (k + 1) * _eps(dtype) * scale)


# BatchMatMul, BatchMatMulV2, BatchMatMulV3 -----------------------------------------------


def _bmm_example(version: int):
  def example(dtype):
    if version == 1:
      batch = cst.shapes(max_dims=2, max_side=3).map(lambda s: (s, s))
    else:
      batch = cst.broadcastable_shapes(2, max_dims=3, max_side=3)

    def for_draw(t):
      (bx, by), (m, k, n), adj_x, adj_y, tb = t
      sx = bx + ((k, m) if adj_x else (m, k))
      sy = by + ((n, k) if adj_y else (k, n))
      attrs = {"adj_x": adj_x, "adj_y": adj_y}
      if version == 3:
        attrs.update(Tout=_V3_OUT[(dtype, tb)])  # Ta and Tb are the inputs' dtypes
      return st.tuples(product_values(dtype, sx), product_values(tb, sy)).map(
          lambda xy: Example({"x": xy[0], "y": xy[1]}, attrs))
    tbs = [b for (a, b) in _V3_OUT if a == dtype] if version == 3 else [dtype]
    return st.tuples(batch, st.tuples(*[st.integers(0, 4)] * 3), st.booleans(),
                     st.booleans(), st.sampled_from(tbs)).flatmap(for_draw)
  return example


_V3_OUT = {(t, t): t for t in ("bfloat16", "float32", "float64", "complex64", "complex128",
                               "int16", "int32", "int64")}
_V3_OUT.update({(a, b): "int32" for a in ("int8", "uint8") for b in ("int8", "uint8")})
_V3_OUT.update({("bfloat16", "int8"): "bfloat16", ("bfloat16", "uint8"): "bfloat16",
                ("int8", "bfloat16"): "bfloat16", ("uint8", "bfloat16"): "bfloat16"})


def _bmm_tolerance(dtype: str, ex: Example) -> Tolerance:
  x, y = np.asarray(ex.inputs["x"]), np.asarray(ex.inputs["y"])
  x = np.swapaxes(x, -1, -2) if ex.attrs.get("adj_x") else x
  y = np.swapaxes(y, -1, -2) if ex.attrs.get("adj_y") else y
  out = ex.attrs.get("Tout", dtype)
  return _sum_bound(out, x.shape[-1], _abs_max_product(x, y))


_BMM_NOTES = ("floats: NaN, infinities and finite values bounded so that no partial sum "
              "overflows (the order of accumulation is the implementation's); complex: "
              "finite parts, 0 or magnitudes in [1e-3, 1e6].")

def _bmm_specs() -> list[OpSpec]:
  return [
      OpSpec("BatchMatMul", _bmm_example(1), tolerance=_bmm_tolerance,
             grad_tolerance=_bmm_tolerance, notes=_BMM_NOTES),
      OpSpec("BatchMatMulV2", _bmm_example(2), tolerance=_bmm_tolerance,
             grad_tolerance=_bmm_tolerance, notes=_BMM_NOTES),
      OpSpec("BatchMatMulV3", _bmm_example(3), dtype_attr="Ta", tolerance=_bmm_tolerance,
             grad_tolerance=_bmm_tolerance, grad_dtypes=("float32", "float64"),
             notes=_BMM_NOTES + " Tb and Tout are drawn among TF's CPU kernels for Ta. "
                   "No grad for bfloat16: TF's gradient of bfloat16 x int8/uint8 builds a "
                   "MatMul of mixed dtypes and raises."),
  ]


# Einsum ----------------------------------------------------------------------------------


@st.composite
def _einsum_case(draw, dtype):
  n_ops = draw(st.integers(1, 2), label="operands")
  labels = draw(st.lists(st.sampled_from("abcdef"), min_size=0, max_size=4, unique=True),
                label="labels")
  sizes = {c: draw(st.integers(0, 3), label=f"size {c}") for c in labels}
  ellipsis = draw(st.booleans(), label="ellipsis")
  if ellipsis:
    batch = draw(cst.broadcastable_shapes(n_ops, max_dims=2, max_side=3), label="batch")
  terms, shapes = [], []
  for i in range(n_ops):
    term = draw(st.lists(st.sampled_from(labels), max_size=4), label=f"term {i}") \
        if labels else []
    if ellipsis:
      pos = draw(st.integers(0, len(term)), label=f"ellipsis at {i}")
      term = term[:pos] + ["..."] + term[pos:]
    shape = []
    for t in term:
      shape.extend(batch[i] if t == "..." else [sizes[t]])
    terms.append(term)
    shapes.append(tuple(shape))
  used = list(dict.fromkeys(t for term in terms for t in term if t != "..."))
  out = draw(st.permutations(used), label="output order")
  out = out[:draw(st.integers(0, len(out)), label="output labels")]
  if ellipsis:
    pos = draw(st.integers(0, len(out)), label="output ellipsis at")
    out = list(out[:pos]) + ["..."] + list(out[pos:])
  equation = ",".join("".join(t) for t in terms) + "->" + "".join(out)
  values = [draw(product_values(dtype, s), label=f"inputs[{i}]") for i, s in enumerate(shapes)]
  return Example({"inputs": values}, {"equation": equation})


def _einsum_tolerance(dtype: str, ex: Example) -> Tolerance:
  xs = [np.abs(np.asarray(x).astype(np.complex128)) for x in ex.inputs["inputs"]]
  xs = [np.where(np.isfinite(x), x, 0) for x in xs]
  eq = ex.attrs["equation"]
  scale = float(np.max(np.einsum(eq, *xs), initial=0.0))
  lhs = eq.split("->")[0]
  terms = "".join(lhs.split(",")).replace("...", "")
  # The number of terms summed: every label left out of the output, repeated ones too.
  n = sum(1 for _ in terms) + 1
  return _sum_bound(dtype, n * 4, scale)


def _einsum_spec() -> OpSpec:
  return OpSpec("Einsum", _einsum_case, tolerance=_einsum_tolerance,
                grad_tolerance=_einsum_tolerance,
                notes="1 or 2 operands (TF's kernel takes no more), ellipses with "
                      "broadcasting, repeated labels in inputs (diagonals), outer products "
                      "and reductions; outputs never repeat a label. " + _BMM_NOTES)


# Cross -----------------------------------------------------------------------------------


def _cross_example(dtype):
  shape = cst.shapes(max_dims=2, max_side=3).map(lambda s: s + (3,))
  if dtype in D.FLOAT:
    b = math.sqrt(float(D.finfo(dtype).max)) / 4
    vals = lambda s: cst.arrays(dtype, s, min_value=-b, max_value=b)  # noqa: E731
  else:
    vals = lambda s: cst.arrays(dtype, s)  # noqa: E731
  return shape.flatmap(lambda s: st.tuples(vals(s), vals(s))).map(
      lambda ab: Example({"a": ab[0], "b": ab[1]}))


def _cross_tolerance(dtype: str, ex: Example) -> Tolerance:
  base = default_tolerance(dtype)
  if dtype not in D.FLOAT:
    return base
  a, b = (np.abs(np.asarray(ex.inputs[k]).astype(np.float64)) for k in "ab")
  prod = np.where(np.isfinite(a), a, 0)[..., :, None] * np.where(np.isfinite(b), b, 0)[
      ..., None, :]
  scale = float(np.max(prod, initial=0.0))
  return Tolerance(rtol=base.rtol, atol=base.atol + 4 * _eps(dtype) * scale)


def _cross_grad_tolerance(dtype: str, ex: Example) -> Tolerance:
  """The gradients are b x g and g x a (TF's _CrossGrad): the same FMA contraction, on
  products of an input and a cotangent (at most COTANGENT_MAX)."""
  base = default_tolerance(dtype)
  if dtype not in D.FLOAT:
    return base
  x = np.abs(np.concatenate([np.asarray(ex.inputs[k]).astype(np.float64).ravel() for k in "ab"]))
  scale = cst.COTANGENT_MAX * float(np.max(np.where(np.isfinite(x), x, 0), initial=0.0))
  return Tolerance(rtol=2 * base.rtol, atol=base.atol + 4 * _eps(dtype) * scale)


def _cross_spec() -> OpSpec:
  return OpSpec("Cross", _cross_example, tolerance=_cross_tolerance,
                grad_tolerance=_cross_grad_tolerance,
                notes="floats bounded by sqrt(max)/4 so that no product overflows (TF rounds "
                      "each half-precision product, XLA may compute them in float32); value "
                      "and gradient tolerances allow XLA's FMA contraction of a product "
                      "difference (README Limitations).")


def specs() -> list[OpSpec]:
  return [*_bmm_specs(), _einsum_spec(), _cross_spec(), *_linalg_specs()]


# Linear algebra --------------------------------------------------------------------------


def _tf():
  import tensorflow as tf
  return tf


_LINALG_NOTE = ("well-conditioned inputs (condition number below ~10); decompositions "
                "compared through sign- and phase-invariant quantities computed in the "
                "same TF function (reconstructions, absolute values).")


_DOMINANT_NOTE = (" The TF function makes the matrix's diagonal 2 sum_j |x_ij| + 1 (the "
                  "row's other entries), so vmap's rolled batch rows are well-conditioned "
                  "too.")


_SIMILAR_NOTE = (
    "the op's input is P diag(w) P^-1 with P = x + diag(2 sum_j |x_ij| + 1) in the TF "
    "function (x in [-1, 1], vmap's rolled rows too) and eigenvalues w 1, 1.5, 2, ... "
    "(plus imaginary parts in [-1, 1] for complex dtypes): separated, in the right "
    "half-plane. TF's (Eigen's) Schur-based square root and logarithm are wrong or "
    "inaccurate for nearly defective blocks and (nearly) equal eigenvalues, where "
    "tf2jax's are not: float64 sqrtm [[2, -1e-30], [0.5, 2]] (TF: residual 0.5), sqrtm "
    "of 4 I plus a nilpotent part (TF 4.4e-12 off), complex128 logm [[2, 0], [0.5j, "
    "2 + 6e-8j]] (TF 1.3% off at [1, 0]).")


def _linalg_tol(n_factor: float = 64.0):
  """rtol and atol of n_factor * (n + 1) ulps: LAPACK (XLA) and Eigen (TF) round
  differently, and a well-conditioned problem amplifies that by at most ~10."""
  def tol(dtype: str, ex: Example) -> Tolerance:
    sizes = [max(np.shape(v)[-2:] or (1,)) for v in ex.inputs.values()
             if isinstance(v, np.ndarray) and v.ndim >= 2]
    n = max(sizes + [1])
    eps = _eps(dtype)
    return Tolerance(rtol=n_factor * (n + 1) * eps, atol=n_factor * (n + 1) * eps)
  return tol


def _grad_tol(n_factor: float = 64.0):
  base = _linalg_tol(n_factor)

  def tol(dtype: str, ex: Example) -> Tolerance:
    t = base(dtype, ex)
    return Tolerance(rtol=4 * t.rtol, atol=40 * t.atol)  # cotangents are up to 10
  return tol


def _batches(max_dims: int = 2):
  return cst.shapes(max_dims=max_dims, max_side=2, max_size=4)


def _unitary(rng: np.random.Generator, n: int, complex_: bool) -> np.ndarray:
  a = rng.standard_normal((n, n))
  if complex_:
    a = a + 1j * rng.standard_normal((n, n))
  q, _ = np.linalg.qr(a) if n else (np.zeros((0, 0)), None)
  return q


def _spectral_matrices(dtype: str, batch, m: int, n: int, values: str = "positive"):
  """U diag(s) V^H with random unitary U, V (seeded from hypothesis) and well-separated
  s: singular values in [1, 2.5] (`positive`), or signed eigenvalues for Hermitian
  matrices (`hermitian`, m == n, V = U)."""
  npd = D.np_dtype(dtype)
  cplx = dtype in D.COMPLEX

  def build(seed):
    rng = np.random.default_rng(seed)
    out = np.zeros(tuple(batch) + (m, n), np.complex128 if cplx else np.float64)
    for idx in np.ndindex(*batch):
      k = min(m, n)
      s = 1.0 + 1.5 * np.arange(k) / max(k - 1, 1)
      s = rng.permutation(s)
      if values == "hermitian":
        s = s * rng.choice([-1.0, 1.0], size=k)
        u = _unitary(rng, n, cplx)
        out[idx] = (u * s) @ u.conj().T
      else:
        u, v = _unitary(rng, m, cplx), _unitary(rng, n, cplx)
        d = np.zeros((m, n))
        d[np.arange(k), np.arange(k)] = s
        out[idx] = u @ d @ v.conj().T
    return out.astype(npd)
  return st.integers(0, 2**32 - 1).map(build)


def _square_example(dtype, attrs=None, rhs: bool = False, n_max: int = 4):
  attrs = attrs or {}

  def for_draw(t):
    batch, n, k, drawn = t
    parts = [cst.well_conditioned_matrices(dtype, n, batch)]
    if rhs:
      parts.append(cst.finite_arrays(dtype, tuple(batch) + (n, k), bound=10.0))
    names = ["matrix", "rhs"] if rhs else ["input"]
    return st.tuples(*parts).map(lambda vs: Example(dict(zip(names, vs)), dict(drawn)))
  drawn = st.fixed_dictionaries({k: v for k, v in attrs.items()})
  return st.tuples(_batches(), st.integers(0, n_max), st.integers(0, 3), drawn).flatmap(
      for_draw)


def _det_example(dtype):
  return _square_example(dtype)


def _dominant_build(op: str, matrix: str):
  """`build` for `op` whose input `matrix` gets its diagonal replaced by 2 sum |x_ij| + 1
  over the row's other entries in the TF function: strictly diagonally dominant
  (condition number below ~3) for any x, so vmap's rolled batch rows stay in the domain
  (a rolled row can be singular to working precision: TF flushes subnormal pivots to
  zero, LAPACK does not)."""
  def build(example):
    tf = _tf()
    names = list(example.inputs)
    attrs = dict(example.attrs)

    def body(*tensors):
      kwargs = dict(zip(names, tensors))
      x = kwargs[matrix]
      if x.shape[-1]:
        off = tf.linalg.set_diag(x, tf.zeros_like(tf.linalg.diag_part(x)))
        diag = 2 * tf.reduce_sum(tf.abs(off), -1) + 1
        kwargs[matrix] = tf.linalg.set_diag(off, tf.cast(diag, x.dtype))
      return getattr(tf.raw_ops, op)(**kwargs, **attrs)
    return body
  return build


def _linalg_specs() -> list[OpSpec]:
  specs = [
      OpSpec("MatrixDeterminant", _det_example, tolerance=_linalg_tol(),
             build=_dominant_build("MatrixDeterminant", "input"),
             grad_tolerance=_grad_tol(), notes=_LINALG_NOTE + _DOMINANT_NOTE),
      OpSpec("LogMatrixDeterminant", _det_example, tolerance=_linalg_tol(),
             build=_dominant_build("LogMatrixDeterminant", "input"),
             grad_tolerance=_grad_tol(), notes=_LINALG_NOTE + _DOMINANT_NOTE),
      OpSpec("MatrixInverse", lambda d: _square_example(d, {"adjoint": st.booleans()}),
             build=_dominant_build("MatrixInverse", "input"),
             tolerance=_linalg_tol(), grad_tolerance=_grad_tol(),
             notes=_LINALG_NOTE + _DOMINANT_NOTE),
      OpSpec("MatrixSolve", lambda d: _square_example(d, {"adjoint": st.booleans()},
                                                       rhs=True),
             build=_dominant_build("MatrixSolve", "matrix"),
             tolerance=_linalg_tol(), grad_tolerance=_grad_tol(),
             notes=_LINALG_NOTE + _DOMINANT_NOTE),
      OpSpec("MatrixTriangularSolve", _trisolve_example, tolerance=_linalg_tol(),
             build=_dominant_build("MatrixTriangularSolve", "matrix"),
             grad_tolerance=_grad_tol(),
             notes=_LINALG_NOTE + " The triangle TF does not read holds other values; "
                   "batch dimensions broadcast." + _DOMINANT_NOTE),
      OpSpec("Cholesky", _cholesky_example, build=_cholesky_build, tolerance=_linalg_tol(),
             grad_tolerance=_grad_tol(),
             notes="the op's input is x x^H + n I (x in [-1, 1], eigenvalues in [n, 2n]) in "
                   "the lower triangle and x in the strict upper one, which TF does not "
                   "read: any x, rolled vmap batches too, gives a positive definite "
                   "matrix (TF's results are garbage for others)."),
      OpSpec("SelfAdjointEigV2", _eig_example, build=_eig_build, tolerance=_linalg_tol(),
             grad_tolerance=_grad_tol(),
             notes=_LINALG_NOTE + " Hermitian matrices with eigenvalues of magnitude in "
                   "[1, 2.5], at least 0.37 apart; eigenvectors compared through "
                   "|v|^2 (sign/phase free)."),
      OpSpec("Qr", _qr_example, build=_qr_build, tolerance=_linalg_tol(),
             skip_dtypes={"float16": "TF factors float16 matrices in float16 (Eigen), "
                                     "tf2jax in float32: the tolerance this needs is not "
                                     "established yet"},
             grad_tolerance=_grad_tol(),
             notes=_LINALG_NOTE + " Outputs compared: Q R, |R|, |Q| on the first min(m, n) "
                   "columns and Q Q^H."),
      OpSpec("Svd", _svd_example, build=_svd_build, tolerance=_linalg_tol(),
             grad_tolerance=_grad_tol(),
             notes=_LINALG_NOTE + " Singular values in [1, 2.5], at least 0.37 apart; "
                   "outputs compared: s, U diag(s) V^H, |U| and |V| on the first "
                   "min(m, n) columns, all columns with full_matrices and |m - n| = 1 "
                   "(the completing column is unique up to phase). Neither TF nor tf2jax "
                   "differentiates full_matrices with |m - n| > 1."),
      OpSpec("MatrixSolveLs", _lstsq_example, static_inputs=("l2_regularizer",),
             tolerance=_linalg_tol(), grad_tolerance=_grad_tol(), notes=_LINALG_NOTE),
      OpSpec("Lu", _lu_example, tolerance=_linalg_tol(),
             transforms=("jit", "static", "x64", "vmap"),
             notes=_LINALG_NOTE + " LU factors and permutations compared directly (both "
                   "sides pivot on the largest modulus); generic random values, so that no "
                   "two pivot candidates tie up to rounding. TF defines no gradient for "
                   "it."),
      OpSpec("BandedTriangularSolve", _banded_example, build=_banded_build,
             tolerance=_linalg_tol(), grad_tolerance=_grad_tol(),
             notes=_LINALG_NOTE + " Bands in [-1, 1], 2 num_bands + 1 added to the "
                   "diagonal band in the TF function (dominant in vmap's rolled rows "
                   "too). One band only with batch shapes that differ: TF's "
                   "gradient has the wrong shape for one band otherwise (a TF bug)."),
      OpSpec("TridiagonalMatMul", _tridiag_matmul_example, tolerance=_linalg_tol(),
             grad_tolerance=_grad_tol(), notes="finite values in [-10, 10]."),
      OpSpec("TridiagonalSolve", _tridiag_solve_example, build=_tridiag_solve_build,
             tolerance=_linalg_tol(), grad_tolerance=_grad_tol(),
             notes="diagonals with parts in [-1, 1], plus 5 on the main one in the TF "
                   "function (diagonally dominant for any values, vmap's rolled batches "
                   "too); rhs in [-10, 10]."),
      OpSpec("MatrixSquareRoot", _similar_example, build=_similar_build("MatrixSquareRoot"),
             tolerance=_linalg_tol(), grad_tolerance=_grad_tol(),
             static_inputs=("eigenvalues",), notes=_SIMILAR_NOTE),
      OpSpec("MatrixLogarithm", _similar_example, build=_similar_build("MatrixLogarithm"),
             tolerance=_linalg_tol(), static_inputs=("eigenvalues",),
             transforms=("jit", "static", "x64", "vmap"),
             notes=_SIMILAR_NOTE + " TF defines no gradient for it."),
  ]
  specs += [
      OpSpec("SelfAdjointEig", _eig_example, build=_eig_v1_build, rewrite=_eig_v1_rewrite,
             tolerance=_linalg_tol(), grad_tolerance=_grad_tol(),
             notes=_STAND_IN + "SelfAdjointEigV2, whose eigenvalues and eigenvectors are "
                   "concatenated as the old op returned them. " + _LINALG_NOTE
                   + " Hermitian matrices with eigenvalues of magnitude in [1, 2.5], at "
                   "least 0.37 apart; eigenvectors compared through their squares (sign "
                   "free). TF never had a gradient for it: the stand-in's is compared."),
      OpSpec("MatrixExponential", _expm_example, build=_expm_build, rewrite=_expm_rewrite,
             tolerance=_linalg_tol(), grad_tolerance=_grad_tol(),
             notes=_STAND_IN + "tf.linalg.expm (a composition of TF ops: Pade "
                   "approximant, scaling and squaring). Finite values in [-1, 1]."),
      OpSpec("Eig", _nonsym_eig_example, build=_nonsym_eig_build, tolerance=_eig_tol,
             grad_tolerance=_grad_tol(), static_inputs=("eigenvalues",),
             notes="the op's input is P diag(w) P^-1 with P = x + diag(2 sum_j |x_ij| + 1) "
                   "in the TF function (condition number below ~3 for any x in [-1, 1], "
                   "vmap's rolled batches too) and eigenvalues w at least 0.5 apart (real "
                   "for real dtypes). Compared "
                   "without the order, phase and scale freedom: the power sums "
                   "sum_j w_j^k (k = 1..n) and |V|^2 Vandermonde(w) (row i, column k: "
                   "sum_j |V_ij|^2 w_j^k, k = 0..n-1), real and imaginary parts apart; "
                   "atol scaled by the size of their terms (n max(1, |w|)^n)."),
  ]
  return specs


def _trisolve_example(dtype):
  def for_draw(t):
    (ba, bb), n, k, lower, adjoint = t
    return st.tuples(cst.well_conditioned_matrices(dtype, n, ba),
                     cst.finite_arrays(dtype, tuple(bb) + (n, k), bound=10.0)).map(
        lambda v: Example({"matrix": v[0], "rhs": v[1]}, {"lower": lower,
                                                           "adjoint": adjoint}))
  return st.tuples(cst.broadcastable_shapes(2, max_dims=2, max_side=2), st.integers(0, 4),
                   st.integers(0, 3), st.booleans(), st.booleans()).flatmap(for_draw)


def _cholesky_example(dtype):
  def for_draw(t):
    batch, n = t
    return cst.finite_arrays(dtype, tuple(batch) + (n, n), bound=1.0).map(
        lambda x: Example({"input": x}))
  return st.tuples(_batches(), st.integers(0, 4)).flatmap(for_draw)


def _cholesky_build(example):
  """Cholesky of x x^H + n I (Hermitian, eigenvalues in [n, 2n]) in the lower triangle
  and x in the strict upper one, which TF does not read. Any x gives such a matrix, so
  the rolled vmap batches stay positive definite (TF gives garbage otherwise)."""
  tf = _tf()
  n = example.inputs["input"].shape[-1]

  def body(x):
    eye = tf.eye(n, dtype=x.dtype)
    spd = tf.matmul(x, x, adjoint_b=True) + n * eye
    upper = tf.linalg.band_part(x, 0, -1) - tf.linalg.band_part(x, 0, 0)
    return tf.raw_ops.Cholesky(input=tf.linalg.band_part(spd, -1, 0) + upper)
  return body


def _eig_example(dtype):
  def for_draw(t):
    batch, n, compute_v = t
    return _spectral_matrices(dtype, batch, n, n, "hermitian").map(
        lambda a: Example({"input": a}, {"compute_v": compute_v}))
  return st.tuples(_batches(), st.integers(0, 4), st.booleans()).flatmap(for_draw)


def _abs2(tf, v):
  """|v|^2 elementwise, real (sign and phase free)."""
  if v.dtype.is_complex:
    return tf.math.real(v * tf.math.conj(v))
  return v * v


def _eig_build(example):
  tf = _tf()
  compute_v = example.attrs["compute_v"]

  def body(x):
    e, v = tf.raw_ops.SelfAdjointEigV2(input=x, compute_v=compute_v)
    if not compute_v:
      return e
    return e, _abs2(tf, v)
  return body


def _qr_example(dtype):
  work = "float32" if dtype == "float16" else dtype

  def for_draw(t):
    batch, m, n, full = t
    return _spectral_matrices(work, batch, m, n).map(
        lambda a: Example({"input": a.astype(D.np_dtype(dtype))}, {"full_matrices": full}))
  return st.tuples(_batches(), st.integers(0, 4), st.integers(0, 4), st.booleans()).flatmap(
      for_draw)


def _qr_build(example):
  tf = _tf()
  full = example.attrs["full_matrices"]

  def body(x):
    q, r = tf.raw_ops.Qr(input=x, full_matrices=full)
    k = min(x.shape[-2], x.shape[-1])
    return (tf.matmul(q, r), tf.abs(r), tf.abs(q[..., :k]),
            tf.matmul(q, q, adjoint_b=True))
  return body


def _svd_example(dtype):
  def for_draw(t):
    batch, m, n, uv, full = t
    return _spectral_matrices(dtype, batch, m, n).map(
        lambda a: Example({"input": a}, {"compute_uv": uv, "full_matrices": full}))
  return st.tuples(_batches(), st.integers(0, 4), st.integers(0, 4), st.booleans(),
                   st.booleans()).flatmap(for_draw)


def _svd_build(example):
  tf = _tf()
  uv, full = example.attrs["compute_uv"], example.attrs["full_matrices"]

  def body(x):
    s, u, v = tf.raw_ops.Svd(input=x, compute_uv=uv, full_matrices=full)
    if not uv:
      return s
    m, n = x.shape[-2], x.shape[-1]
    k = min(m, n)
    us = u[..., :k] * tf.expand_dims(s, -2)
    # With full_matrices and |m - n| = 1 the completing column is unique up to phase.
    j = max(m, n) if full and abs(m - n) <= 1 else k
    return s, tf.matmul(us, v[..., :k], adjoint_b=True), _abs2(tf, u[..., :j]), \
        _abs2(tf, v[..., :j])
  return body


def _lstsq_example(dtype):
  def for_draw(t):
    batch, m, n, k, l2 = t
    return st.tuples(_spectral_matrices(dtype, batch, m, n),
                     cst.finite_arrays(dtype, tuple(batch) + (m, k), bound=10.0)).map(
        lambda v: Example({"matrix": v[0], "rhs": v[1], "l2_regularizer": np.float64(l2)},
                          {"fast": True}))
  return st.tuples(_batches(), st.integers(1, 4), st.integers(1, 4), st.integers(0, 3),
                   st.sampled_from([0.0, 0.5])).flatmap(for_draw)


def _lu_example(dtype):
  """Diagonally dominant matrices of generic values (seeded from hypothesis): the pivots
  depend on comparisons of computed magnitudes, which rounding decides where they tie
  (hypothesis's round values tie often, in vmap's rolled batches too)."""
  cplx = dtype in D.COMPLEX

  def build(t):
    batch, n, idx, seed = t
    rng = np.random.default_rng(seed)
    a = rng.uniform(-1, 1, tuple(batch) + (n, n))
    if cplx:
      a = a + 1j * rng.uniform(-1, 1, a.shape)
    a = a + np.eye(n) * (2 * np.abs(a).sum(-1, keepdims=True) + 1)
    return Example({"input": a.astype(D.np_dtype(dtype))}, {"output_idx_type": idx})
  return st.tuples(_batches(), st.integers(0, 4), st.sampled_from(["int32", "int64"]),
                   st.integers(0, 2**32 - 1)).map(build)


def _banded_example(dtype):
  def for_draw(t):
    (ba, bb), n, num, k, lower, adjoint = t
    num = min(num, max(n, 1))
    if num == 1 and tuple(ba) == tuple(bb):
      # TF's gradient has shape [..., n] instead of [..., 1, n] for one band unless it
      # unbroadcasts (matrix_diag_part with k=(0, 0) drops the band axis): a TF bug.
      ba = (1,) + tuple(ba)
    return st.tuples(cst.finite_arrays(dtype, tuple(ba) + (num, n), bound=1.0),
                     cst.finite_arrays(dtype, tuple(bb) + (n, k), bound=10.0)).map(
        lambda v: Example({"matrix": v[0], "rhs": v[1]},
                          {"lower": lower, "adjoint": adjoint}))
  return st.tuples(cst.broadcastable_shapes(2, max_dims=2, max_side=2), st.integers(1, 4),
                   st.integers(1, 3), st.integers(0, 3), st.booleans(), st.booleans()
                   ).flatmap(for_draw)


def _banded_build(example):
  """BandedTriangularSolve with 2 num_bands + 1 added to the diagonal band (the top row
  when lower, else the bottom one) in the TF function: bands in [-1, 1] then give a
  dominant diagonal, in vmap's rolled batch rows too."""
  tf = _tf()
  attrs = dict(example.attrs)

  def body(matrix, rhs):
    num = matrix.shape[-2]
    row = 0 if attrs["lower"] else num - 1
    shift = np.zeros((num, 1), matrix.dtype.as_numpy_dtype)
    shift[row] = 2 * num + 1
    return tf.raw_ops.BandedTriangularSolve(matrix=matrix + shift, rhs=rhs, **attrs)
  return body


def _tridiag_matmul_example(dtype):
  def for_draw(t):
    batch, n, k = t
    d = tuple(batch) + (1, n)
    return st.tuples(*[cst.finite_arrays(dtype, d, bound=10.0)] * 3,
                     cst.finite_arrays(dtype, tuple(batch) + (n, k), bound=10.0)).map(
        lambda v: Example({"superdiag": v[0], "maindiag": v[1], "subdiag": v[2],
                           "rhs": v[3]}))
  return st.tuples(_batches(), st.integers(0, 4), st.integers(0, 3)).flatmap(for_draw)


def _tridiag_solve_example(dtype):
  def for_draw(t):
    batch, n, k, pivot = t
    return st.tuples(cst.finite_arrays(dtype, tuple(batch) + (3, n), bound=1.0),
                     cst.finite_arrays(dtype, tuple(batch) + (n, k), bound=10.0)).map(
        lambda v: Example({"diagonals": v[0], "rhs": v[1]}, {"partial_pivoting": pivot}))
  return st.tuples(_batches(), st.integers(1, 4), st.integers(1, 3), st.booleans()
                   ).flatmap(for_draw)


def _tridiag_solve_build(example):
  """The drawn diagonals (parts in [-1, 1]) plus 5 on the main one: diagonally dominant
  for any values, rolled vmap batches too (TF gives NaN for singular systems)."""
  tf = _tf()
  pivot = example.attrs["partial_pivoting"]

  def body(diags, rhs):
    shift = tf.constant([[0.0], [5.0], [0.0]], diags.dtype)
    return tf.raw_ops.TridiagonalSolve(diagonals=diags + shift, rhs=rhs,
                                       partial_pivoting=pivot)
  return body


# Ops TF no longer runs: TF runs an equivalent graph (the stand-in), which is then
# rewritten into the graph old TF versions wrote (see OpSpec.rewrite).

_STAND_IN = "TF no longer runs it (removed from GraphDef versions); reference: "


def _node(graph_def, name):
  return next(n for n in graph_def.node if n.name == name)


def _splice(graph_def, op: str, prefix: str, producer: int):
  """A node `op` reading `<prefix>_in` replaces what feeds `<prefix>_out`."""
  node = graph_def.node.add(name=prefix, op=op, input=[f"{prefix}_in"])
  node.attr["T"].type = _node(graph_def, f"{prefix}_in").attr["T"].type
  _node(graph_def, f"{prefix}_out").input[0] = prefix
  graph_def.versions.producer = producer
  return node


def _eig_v1_build(example):
  tf = _tf()

  def body(x):
    e, v = tf.raw_ops.SelfAdjointEigV2(input=tf.identity(x, name="sae_in"), compute_v=True)
    out = tf.identity(tf.concat([tf.expand_dims(e, -2), v], axis=-2), name="sae_out")
    return out[..., 0, :], tf.square(out[..., 1:, :])
  return body


def _eig_v1_rewrite(graph_def, example):
  del example
  _splice(graph_def, "SelfAdjointEig", "sae", producer=10)


def _expm_example(dtype):
  def for_draw(t):
    batch, n = t
    return cst.finite_arrays(dtype, tuple(batch) + (n, n), bound=1.0).map(
        lambda a: Example({"input": a}))
  return st.tuples(_batches(), st.integers(0, 4)).flatmap(for_draw)


def _expm_build(example):
  tf = _tf()
  return lambda x: tf.identity(tf.linalg.expm(tf.identity(x, name="expm_in")),
                               name="expm_out")


def _expm_rewrite(graph_def, example):
  del example
  _splice(graph_def, "MatrixExponential", "expm", producer=26)


def _similar_example(dtype, attrs=None):
  """`input`: generic values in [-1, 1] (seeded from hypothesis); `eigenvalues` (static,
  flat): 1, 1.5, 2, ... permuted per matrix, plus imaginary parts in [-1, 1] for complex
  dtypes. The TF function builds the op's input from them (`_similar`)."""
  cplx = dtype in D.COMPLEX

  def build(t):
    batch, n, seed, drawn = t
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1, 1, tuple(batch) + (n, n))
    if cplx:
      x = x + 1j * rng.uniform(-1, 1, x.shape)
    w = 1.0 + 0.5 * np.arange(n)
    w = np.array([rng.permutation(w) for _ in np.ndindex(*batch)]).reshape(-1)
    if cplx:
      w = w + 1j * rng.uniform(-1, 1, w.shape)
    npd = D.np_dtype(dtype)
    return Example({"input": x.astype(npd), "eigenvalues": w.astype(npd)}, dict(drawn))
  return st.tuples(_batches(), st.integers(0, 4), st.integers(0, 2**32 - 1),
                   st.fixed_dictionaries(attrs or {})).map(build)


def _nonsym_eig_example(dtype):
  tout = "complex64" if D.finfo(_PART.get(dtype, dtype)).bits == 32 else "complex128"
  return _similar_example(dtype, {"Tout": st.just(tout), "compute_v": st.booleans()})


def _similar(tf, x, eigenvalues):
  """P diag(w) P^-1 with P = x made diagonally dominant (condition number below ~3), for
  any x: vmap's rolled rows too. Eigenvalues at least 0.5 apart, real parts >= 1."""
  n = x.shape[-1]
  if not n:
    return x
  eye = tf.eye(n, dtype=x.dtype)
  p = x + eye * tf.cast(2 * tf.reduce_sum(tf.abs(x), -1, keepdims=True) + 1, x.dtype)
  w = tf.reshape(tf.constant(eigenvalues), x.shape[:-1])
  return tf.matmul(p * w[..., None, :], tf.linalg.inv(p))


def _similar_build(op):
  def build(example):
    tf = _tf()
    return lambda x: getattr(tf.raw_ops, op)(
        input=_similar(tf, x, example.inputs["eigenvalues"]))
  return build


def _eig_tol(dtype: str, ex: Example) -> Tolerance:
  """`_linalg_tol`, its atol scaled by the terms of the compared sums: w_j^k and
  |V_ij|^2 w_j^k (k <= n) are at most max(1, |w|)^n each, n of them per sum, and the
  sums cancel (a power sum of 0.9 from terms near 50)."""
  base = _linalg_tol()(dtype, ex)
  w = np.abs(np.asarray(ex.inputs["eigenvalues"]).astype(np.complex128))
  n = np.shape(ex.inputs["input"])[-1]
  scale = n * max(1.0, float(np.max(w, initial=0.0))) ** n
  return Tolerance(rtol=base.rtol, atol=base.atol * max(scale, 1.0))


def _nonsym_eig_build(example):
  tf = _tf()
  tout = example.attrs["Tout"]
  compute_v = example.attrs["compute_v"]

  def body(x):
    n = x.shape[-1]
    x = _similar(tf, x, example.inputs["eigenvalues"])
    w, v = tf.raw_ops.Eig(input=x, Tout=tf.as_dtype(tout), compute_v=compute_v)
    powers = [tf.ones_like(w)]
    for _ in range(n):
      powers.append(powers[-1] * w)
    vander = tf.stack(powers, axis=-1)  # [..., n, n + 1]: w_j^k
    sums = tf.reduce_sum(vander[..., 1:], axis=-2)
    outs = [sums]
    if compute_v:
      outs.append(tf.matmul(tf.cast(_abs2(tf, v), w.dtype), vander[..., :n]))
    return [part for o in outs for part in (tf.math.real(o), tf.math.imag(o))]
  return body
