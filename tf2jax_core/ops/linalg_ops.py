"""Batched matrix products, Einsum, Cross, SparseMatMul and linear algebra
(decompositions, solves, CholeskyGrad), with the Batch* names older GraphDefs use."""

from __future__ import annotations

import dataclasses
import re

import jax
import jax.numpy as jnp
import ml_dtypes
import numpy as np

from tf2jax_core.lowering import COMPLEX, FLOAT, is_static, lowering, xnp
from tf2jax_core.ops import array_ops as _array_ops

LOWERINGS = []

_LINALG = ("float32", "float64") + COMPLEX
_HALF = (np.dtype(np.float16), np.dtype(ml_dtypes.bfloat16))


def _shape_error(op: str, what: str, *shapes) -> ValueError:
  shown = " and ".join(f"{name} of shape {list(np.shape(v))}" for name, v in shapes)
  return ValueError(f"{op}: {what} ({shown})")


def _adjoint(x, m=None):
  m = m or xnp(x)
  x = m.swapaxes(x, -1, -2)
  return m.conj(x) if m.iscomplexobj(x) else x


def _matmul(x, y, out_dtype):
  """x @ y (batch dims broadcast) in `out_dtype`, without NumPy's or JAX's promotion."""
  out_dtype = np.dtype(out_dtype)
  if is_static(x, y):
    if out_dtype in _HALF:
      return np.matmul(x.astype(np.float32), y.astype(np.float32)).astype(out_dtype)
    return np.matmul(x.astype(out_dtype), y.astype(out_dtype)).astype(out_dtype)
  x, y = jnp.asarray(x).astype(out_dtype), jnp.asarray(y).astype(out_dtype)
  return jnp.matmul(x, y).astype(out_dtype)


def _batch_matmul(node, broadcast: bool):
  op = node.op
  adj_x, adj_y = node.attrs.get("adj_x", False), node.attrs.get("adj_y", False)
  out_dtype = node.attrs.get("Tout", node.attrs.get("T"))

  def run(x, y):
    for name, v in (("x", x), ("y", y)):
      if np.ndim(v) < 2:
        raise _shape_error(op, f"input {name} must have rank >= 2", (name, v))
    if not broadcast:
      if np.ndim(x) != np.ndim(y):
        raise _shape_error(op, "inputs x and y have different ranks", ("x", x), ("y", y))
      if np.shape(x)[:-2] != np.shape(y)[:-2]:
        raise _shape_error(op, "inputs x and y have different batch dimensions",
                           ("x", x), ("y", y))
    else:
      try:
        np.broadcast_shapes(np.shape(x)[:-2], np.shape(y)[:-2])
      except ValueError:
        raise _shape_error(op, "batch dimensions of x and y do not broadcast",
                           ("x", x), ("y", y)) from None
    k_x = np.shape(x)[-2] if adj_x else np.shape(x)[-1]
    k_y = np.shape(y)[-1] if adj_y else np.shape(y)[-2]
    if k_x != k_y:
      raise _shape_error(op, f"contracted dimensions differ ({k_x} vs {k_y}; adj_x="
                         f"{adj_x}, adj_y={adj_y})", ("x", x), ("y", y))
    m = xnp(x, y)
    x = _adjoint(x, m) if adj_x else x
    y = _adjoint(y, m) if adj_y else y
    return _matmul(x, y, out_dtype)
  return run


_BMM_T = FLOAT + COMPLEX + ("int16", "int32", "int64")
_BMM_ATTRS = {"adj_x": None, "adj_y": None, "grad_x": None, "grad_y": None}


@lowering("BatchMatMul", attrs={"T": _BMM_T, **_BMM_ATTRS})
def batch_matmul(node):
  return _batch_matmul(node, broadcast=False)


@lowering("BatchMatMulV2", attrs={"T": _BMM_T, **_BMM_ATTRS})
def batch_matmul_v2(node):
  return _batch_matmul(node, broadcast=True)


# The (Ta, Tb, Tout) combinations of TF's CPU kernels.
_V3_TYPES = {(t, t, t) for t in ("bfloat16", "float32", "float64", "complex64",
                                 "complex128", "int16", "int32", "int64")}
_V3_TYPES |= {(a, b, "int32") for a in ("int8", "uint8") for b in ("int8", "uint8")}
_V3_TYPES |= {("bfloat16", b, "bfloat16") for b in ("int8", "uint8")}
_V3_TYPES |= {(a, "bfloat16", "bfloat16") for a in ("int8", "uint8")}


def _v3_types(node):
  names = tuple(np.dtype(node.attrs.get(k)).name if node.attrs.get(k) is not None else None
                for k in ("Ta", "Tb", "Tout"))
  if names not in _V3_TYPES:
    raise ValueError(f"BatchMatMulV3: no kernel for Ta, Tb, Tout = {names}")


@lowering("BatchMatMulV3", attrs={"Ta": None, "Tb": None, "Tout": None, **_BMM_ATTRS})
def batch_matmul_v3(node):
  _v3_types(node)
  return _batch_matmul(node, broadcast=True)


# Einsum --------------------------------------------------------------------------------

_LABELS = re.compile(r"^(?:[A-Za-z]|\.\.\.)*$")


def _parse_equation(equation: str, n: int):
  eq = equation.replace(" ", "")
  if eq.count("->") != 1:
    raise ValueError(f"Einsum: expecting exactly one '->' in equation {equation!r}")
  lhs, out = eq.split("->")
  terms = lhs.split(",")
  if len(terms) not in (1, 2):
    raise ValueError(f"Einsum: expecting 1 or 2 input subscripts in {equation!r}")
  if len(terms) != n:
    raise ValueError(f"Einsum: equation {equation!r} has {len(terms)} input subscripts "
                     f"but the node has {n} inputs")
  for t in terms + [out]:
    if not _LABELS.match(t) or t.count("...") > 1:
      raise ValueError(f"Einsum: invalid subscripts {t!r} in {equation!r}")
  labels_out = out.replace("...", "")
  if len(set(labels_out)) != len(labels_out):
    raise ValueError(f"Einsum: output subscripts {out!r} repeat a label (not lowered)")
  known = set("".join(terms).replace("...", ""))
  if set(labels_out) - known:
    raise ValueError(f"Einsum: output labels {sorted(set(labels_out) - known)} appear in "
                     f"no input of {equation!r}")
  return terms, out


@lowering("Einsum", attrs={"T": FLOAT + COMPLEX + ("int32", "int64"), "N": None,
                           "equation": None})
def einsum(node):
  equation = node.attrs["equation"]
  if isinstance(equation, bytes):
    equation = equation.decode()
  terms, _ = _parse_equation(equation, node.attrs.get("N", len(node.inputs)))

  def run(*xs):
    sizes = {}
    for i, (t, x) in enumerate(zip(terms, xs)):
      named = len(t.replace("...", ""))
      if ("..." in t and np.ndim(x) < named) or ("..." not in t and np.ndim(x) != named):
        raise _shape_error("Einsum", f"input {i} has the wrong rank for subscripts {t!r}",
                           (f"inputs[{i}]", x))
      shape = np.shape(x)
      labels = list(t.split("...")[0]) + ["."] * (np.ndim(x) - named) + (
          list(t.split("...")[1]) if "..." in t else [])
      for label, d in zip(labels, shape):
        if label != "." and sizes.setdefault(label, d) != d:
          raise _shape_error("Einsum", f"label {label!r} has sizes {sizes[label]} and {d}",
                             *[(f"inputs[{j}]", v) for j, v in enumerate(xs)])
    dtype = xs[0].dtype
    if is_static(*xs):
      work = [x.astype(np.float32) if x.dtype in _HALF else x for x in xs]
      return np.asarray(np.einsum(equation, *work)).astype(dtype)
    return jnp.einsum(equation, *xs).astype(dtype)
  return run


@lowering("Cross", attrs={"T": FLOAT + ("int8", "int16", "int32", "int64", "uint8",
                                         "uint16", "uint32", "uint64")})
def cross(node):
  def run(a, b):
    if np.shape(a) != np.shape(b):
      raise _shape_error("Cross", "inputs a and b must have the same shape", ("a", a),
                         ("b", b))
    if np.ndim(a) < 1 or np.shape(a)[-1] != 3:
      raise _shape_error("Cross", "the last dimension must be 3", ("a", a))
    m = xnp(a, b)
    a0, a1, a2 = (a[..., i] for i in range(3))
    b0, b1, b2 = (b[..., i] for i in range(3))
    return m.stack([a1 * b2 - a2 * b1, a2 * b0 - a0 * b2, a0 * b1 - a1 * b0],
                   axis=-1).astype(a.dtype)
  return run


# Linear algebra ------------------------------------------------------------------------
# The Batch* ops (GraphDef versions < 13) are the same kernels under their old names.
# Decompositions run through jax.numpy even on static inputs (NumPy's LAPACK results may
# pick other signs than JAX's; one implementation keeps a graph consistent).


def _square(op: str, name: str, x):
  if np.ndim(x) < 2 or np.shape(x)[-1] != np.shape(x)[-2]:
    raise _shape_error(op, f"input {name} must be a batch of square matrices", (name, x))


def _in_work_dtype(x):
  """float16 matrices are factored in float32 (LAPACK has no half precision)."""
  x = jnp.asarray(x)
  return x.astype(jnp.float32) if x.dtype in _HALF else x


@lowering("MatrixDeterminant", "BatchMatrixDeterminant", attrs={"T": _LINALG})
def matrix_determinant(node):
  def run(x):
    _square(node.op, "input", x)
    if np.shape(x)[-1] == 0:
      return jnp.ones(np.shape(x)[:-2], x.dtype)
    return jnp.linalg.det(jnp.asarray(x)).astype(x.dtype)
  return run


@lowering("LogMatrixDeterminant", attrs={"T": _LINALG})
def log_matrix_determinant(node):
  def run(x):
    _square("LogMatrixDeterminant", "input", x)
    if np.shape(x)[-1] == 0:
      batch = np.shape(x)[:-2]
      return jnp.ones(batch, x.dtype), jnp.zeros(batch, x.dtype)
    sign, logabs = jnp.linalg.slogdet(jnp.asarray(x))
    return sign.astype(x.dtype), logabs.astype(x.dtype)
  return run


@lowering("MatrixInverse", "BatchMatrixInverse",
          attrs={"T": ("float16",) + _LINALG, "adjoint": None})
def matrix_inverse(node):
  adjoint = node.attrs.get("adjoint", False)

  def run(x):
    _square(node.op, "input", x)
    a = _in_work_dtype(x)
    if adjoint:
      a = _adjoint(a, jnp)
    return jnp.linalg.inv(a).astype(x.dtype)
  return run


@lowering("MatrixSolve", "BatchMatrixSolve", attrs={"T": _LINALG, "adjoint": None})
def matrix_solve(node):
  adjoint = node.attrs.get("adjoint", False)

  def run(a, b):
    _square(node.op, "matrix", a)
    if np.ndim(b) != np.ndim(a) or np.shape(b)[:-2] != np.shape(a)[:-2] or \
        np.shape(b)[-2] != np.shape(a)[-1]:
      raise _shape_error(node.op, "matrix and rhs do not match", ("matrix", a),
                         ("rhs", b))
    a = _adjoint(jnp.asarray(a), jnp) if adjoint else jnp.asarray(a)
    return jnp.linalg.solve(a, jnp.asarray(b)).astype(a.dtype)
  return run


def _broadcast_batch(op, a, b, names=("matrix", "rhs")):
  try:
    batch = np.broadcast_shapes(np.shape(a)[:-2], np.shape(b)[:-2])
  except ValueError:
    raise _shape_error(op, "batch dimensions do not broadcast", (names[0], a),
                       (names[1], b)) from None
  a = jnp.broadcast_to(a, batch + np.shape(a)[-2:])
  b = jnp.broadcast_to(b, batch + np.shape(b)[-2:])
  return a, b


@lowering("MatrixTriangularSolve", "BatchMatrixTriangularSolve",
          attrs={"T": _LINALG, "lower": None, "adjoint": None})
def matrix_triangular_solve(node):
  lower, adjoint = node.attrs.get("lower", True), node.attrs.get("adjoint", False)

  def run(a, b):
    _square(node.op, "matrix", a)
    if np.ndim(b) < 2 or np.shape(b)[-2] != np.shape(a)[-1]:
      raise _shape_error(node.op, "matrix and rhs do not match", ("matrix", a), ("rhs", b))
    a, b = _broadcast_batch(node.op, a, b)
    return jax.lax.linalg.triangular_solve(
        a, b, left_side=True, lower=lower, transpose_a=adjoint,
        conjugate_a=adjoint and jnp.iscomplexobj(a)).astype(a.dtype)
  return run


def _hermitian_from_lower(x):
  """The Hermitian matrix whose lower triangle is x's (what TF's kernels read), with
  gradients flowing as through (x + x^H) / 2 (TF's gradients are Hermitian)."""
  x = jnp.asarray(x)
  low = jnp.tril(x)
  diag = jnp.diagonal(x, axis1=-2, axis2=-1)
  diag = diag.real.astype(x.dtype) if jnp.iscomplexobj(x) else diag
  herm = low + _adjoint(jnp.tril(x, -1), jnp)
  herm = herm - jnp.tril(jnp.triu(herm)) + jnp.einsum("...i,ij->...ij", diag,
                                                       jnp.eye(x.shape[-1], dtype=x.dtype))
  sym = (x + _adjoint(x, jnp)) / 2
  return sym + jax.lax.stop_gradient(herm - sym)


@lowering("Cholesky", "BatchCholesky", attrs={"T": _LINALG})
def cholesky(node):
  def run(x):
    _square(node.op, "input", x)
    a = _hermitian_from_lower(x)
    return jax.lax.linalg.cholesky(a, symmetrize_input=False).astype(a.dtype)
  return run


@jax.custom_vjp
def _lower_triangle_grad(x):
  """Identity whose gradient g becomes tril(g + g^H) with the diagonal halved: TF's
  SelfAdjointEigV2 gradient (the op reads the lower triangle only)."""
  return x


def _lower_triangle_fwd(x):
  return x, None


def _lower_triangle_bwd(_, g):
  g = jnp.tril(g + _adjoint(g, jnp))
  eye = jnp.eye(g.shape[-1], dtype=bool)
  return (jnp.where(eye, g / 2, g),)


_lower_triangle_grad.defvjp(_lower_triangle_fwd, _lower_triangle_bwd)


@lowering("SelfAdjointEigV2", "BatchSelfAdjointEigV2",
          attrs={"T": _LINALG, "compute_v": None})
def self_adjoint_eig(node):
  compute_v = node.attrs.get("compute_v", True)

  def run(x):
    _square(node.op, "input", x)
    a = _hermitian_from_lower(x if is_static(x) else _lower_triangle_grad(x))
    if not compute_v:
      e = jnp.linalg.eigvalsh(a, UPLO="L")
      return e.astype(a.dtype), jnp.zeros((), a.dtype)
    e, v = jnp.linalg.eigh(a, UPLO="L", symmetrize_input=False)
    return e.astype(a.dtype), v.astype(a.dtype)
  return run


@lowering("SelfAdjointEig", attrs={"T": ("float32", "float64")})
def self_adjoint_eig_v1(node):
  """The op of GraphDef versions < 11: eigenvalues in row 0, eigenvectors below."""
  def run(x):
    _square("SelfAdjointEig", "input", x)
    a = _hermitian_from_lower(x if is_static(x) else _lower_triangle_grad(x))
    e, v = jnp.linalg.eigh(a, UPLO="L", symmetrize_input=False)
    return jnp.concatenate([e[..., None, :], v], axis=-2).astype(a.dtype)
  return run


_EIG_TOUT = {"float32": "complex64", "complex64": "complex64", "float64": "complex128",
             "complex128": "complex128"}


@jax.custom_jvp
def _eig(x):
  return jnp.linalg.eig(x)


@_eig.defjvp
def _eig_jvp(primals, tangents):
  """JAX differentiates eigenvalues only: eigenvectors of unit norm as TF's gradient
  takes them (dv_j = sum_i v_i c_ij / (w_j - w_i), c = V^-1 dA V, minus the part that
  changes the norm), for distinct eigenvalues."""
  (x,), (dx,) = primals, tangents
  w, v = _eig(x)
  c = jnp.linalg.solve(v, dx.astype(w.dtype) @ v)
  eye = jnp.eye(x.shape[-1], dtype=bool)
  gap = w[..., None, :] - w[..., :, None]
  f = jnp.where(eye, 0, 1 / jnp.where(eye, 1, gap))
  dv = v @ (f * c)
  dv = dv - v * jnp.real(jnp.sum(jnp.conj(v) * dv, axis=-2, keepdims=True))
  return (w, v), (jnp.diagonal(c, axis1=-2, axis2=-1), dv)


@lowering("Eig", attrs={"T": _LINALG, "Tout": COMPLEX, "compute_v": None})
def eig(node):
  compute_v = node.attrs.get("compute_v", True)
  t, tout = (np.dtype(node.attrs[k]).name for k in ("T", "Tout"))
  if _EIG_TOUT[t] != tout:
    raise ValueError(f"Eig: no kernel for T={t}, Tout={tout} (Tout must be "
                     f"{_EIG_TOUT[t]})")

  def run(x):
    _square("Eig", "input", x)
    x = jnp.asarray(x)
    if not compute_v:
      return jnp.linalg.eigvals(x).astype(tout), jnp.zeros((), tout)
    w, v = _eig(x)
    return w.astype(tout), v.astype(tout)
  return run


@lowering("Qr", attrs={"T": ("float16",) + _LINALG, "full_matrices": None})
def qr(node):
  full = node.attrs.get("full_matrices", False)

  def run(x):
    if np.ndim(x) < 2:
      raise _shape_error("Qr", "input must have rank >= 2", ("input", x))
    a = _in_work_dtype(x)
    m, n = a.shape[-2:]
    if full and m > n:  # (JAX raises too, except for n = 0)
      a = _gradient_raises(a, "TF defines no gradient for Qr with full_matrices=True and "
                              f"more rows ({m}) than columns ({n})")
    if m < n:  # Householder QR of the leading square block; R's other columns are Q^H A
      q, r = jnp.linalg.qr(a[..., :m], mode="complete")
      r = jnp.concatenate([r, _adjoint(q, jnp) @ a[..., m:]], axis=-1)
    else:
      q, r = jnp.linalg.qr(a, mode="complete" if full else "reduced")
    return q.astype(x.dtype), r.astype(x.dtype)
  return run


def _gradient_raises(x, message: str):
  """x, whose derivative raises NotImplementedError(message): for the cases where TF's
  gradient function raises."""
  @jax.custom_jvp
  def same(x):
    return x

  @same.defjvp
  def _(primals, tangents):
    raise NotImplementedError(message)
  return same(x)


def _complete(q, extra):
  """[q, extra] for orthonormal columns `extra` completing q: `extra` moves with q's
  derivative (d extra = -q dq^H extra, keeping it orthogonal), as in TF's Svd gradient."""
  q0, extra = jax.lax.stop_gradient(q), jax.lax.stop_gradient(extra)
  extra = extra - q0 @ (_adjoint(q - q0, jnp) @ extra)
  return jnp.concatenate([q, extra], axis=-1)


@lowering("Svd", "BatchSvd", attrs={"T": _LINALG, "compute_uv": None,
                                   "full_matrices": None})
def svd(node):
  compute_uv = node.attrs.get("compute_uv", True)
  full = node.attrs.get("full_matrices", False)

  def run(x):
    if np.ndim(x) < 2:
      raise _shape_error(node.op, "input must have rank >= 2", ("input", x))
    x = jnp.asarray(x)
    m, n = x.shape[-2:]
    if not compute_uv:
      s = jnp.linalg.svd(x, compute_uv=False)
      # TF leaves u and v as uninitialised scalars.
      return s.astype(x.dtype), jnp.zeros((), x.dtype), jnp.zeros((), x.dtype)
    if full and abs(m - n) > 1:  # neither JAX nor TF defines a gradient here
      u, s, vh = jnp.linalg.svd(x, full_matrices=True)
      return s.astype(x.dtype), u.astype(x.dtype), _adjoint(vh, jnp).astype(x.dtype)
    # The reduced SVD (differentiable), completed to the full one by at most one column.
    u, s, vh = jnp.linalg.svd(x, full_matrices=False)
    v = _adjoint(vh, jnp)
    if full and m != n:
      uf, _, vhf = jnp.linalg.svd(jax.lax.stop_gradient(x), full_matrices=True)
      if m > n:
        u = _complete(u, uf[..., n:])
      else:
        v = _complete(v, _adjoint(vhf, jnp)[..., m:])
    return s.astype(x.dtype), u.astype(x.dtype), v.astype(x.dtype)
  return run


@lowering("MatrixSolveLs", "BatchMatrixSolveLs", attrs={"T": _LINALG, "fast": None})
def matrix_solve_ls(node):
  def run(a, b, l2):
    if np.ndim(a) < 2 or np.ndim(b) != np.ndim(a) or np.shape(a)[:-2] != np.shape(b)[:-2] \
        or np.shape(a)[-2] != np.shape(b)[-2]:
      raise _shape_error(node.op, "matrix and rhs do not match", ("matrix", a), ("rhs", b))
    a, b = jnp.asarray(a), jnp.asarray(b)
    m, n = a.shape[-2:]
    lam = jnp.asarray(l2).astype(a.dtype)
    ah = _adjoint(a, jnp)
    if m >= n:
      gram = ah @ a + lam * jnp.eye(n, dtype=a.dtype)
      return jnp.linalg.solve(gram, ah @ b).astype(a.dtype)
    gram = a @ ah + lam * jnp.eye(m, dtype=a.dtype)
    return (ah @ jnp.linalg.solve(gram, b)).astype(a.dtype)
  return run


def _lu_modulus_pivots(a):
  """Partial-pivoting LU that picks the pivot of largest modulus, as Eigen (TF) does:
  LAPACK's complex getrf (jax.lax.linalg.lu) compares |re| + |im| instead."""
  n = a.shape[-1]
  idx = jnp.arange(n)

  def step(k, carry):
    a, perm = carry
    col = jnp.where(idx >= k, jnp.abs(a[..., :, k]), -1)
    p = jnp.argmax(col, axis=-1)[..., None]  # the first largest, as Eigen's maxCoeff
    rows = jnp.where(idx == k, p, jnp.where(idx == p, k, idx))
    a = jnp.take_along_axis(a, rows[..., None], axis=-2)
    perm = jnp.take_along_axis(perm, rows, axis=-1)
    pivot = a[..., k, k][..., None]
    below = idx > k
    l = jnp.where(below, a[..., :, k] / jnp.where(pivot == 0, 1, pivot), 0)
    right = jnp.where(idx > k, a[..., k, :], 0)
    a = a - l[..., :, None] * right[..., None, :]
    a = a.at[..., :, k].set(jnp.where(below, l, a[..., :, k]))
    return a, perm
  perm = jnp.broadcast_to(idx, a.shape[:-1])
  return jax.lax.fori_loop(0, n, step, (a, perm))


@lowering("Lu", attrs={"T": _LINALG, "output_idx_type": ("int32", "int64")})
def lu(node):
  idx = node.attrs.get("output_idx_type", np.dtype("int32"))

  def run(x):
    _square("Lu", "input", x)
    x = jnp.asarray(x)
    if x.shape[-1] == 0:
      return x, jnp.zeros(x.shape[:-1], idx)
    if jnp.iscomplexobj(x):
      lu_, perm = _lu_modulus_pivots(x)
    else:
      lu_, _, perm = jax.lax.linalg.lu(x)
    return lu_.astype(x.dtype), perm.astype(idx)
  return run


def _band_to_dense(bands, lower: bool):
  """TF's band storage: row k of `bands` holds the k-th sub- (lower) or the (K - k)-th
  super-diagonal (upper), indexed by the row of the dense matrix."""
  num, n = bands.shape[-2:]
  rows = jnp.arange(n)[:, None]
  cols = jnp.arange(n)[None, :]
  offset = rows - cols if lower else cols - rows  # which diagonal each element is on
  band_row = offset if lower else (num - 1) - offset
  valid = (offset >= 0) & (offset < num)
  gathered = bands[..., jnp.clip(band_row, 0, num - 1), jnp.broadcast_to(rows, (n, n))]
  return jnp.where(valid, gathered, jnp.zeros((), bands.dtype))


@lowering("BandedTriangularSolve", attrs={"T": _LINALG, "lower": None, "adjoint": None})
def banded_triangular_solve(node):
  lower, adjoint = node.attrs.get("lower", True), node.attrs.get("adjoint", False)

  def run(bands, b):
    if np.ndim(bands) < 2 or np.ndim(b) < 2 or np.shape(bands)[-1] != np.shape(b)[-2] \
        or np.shape(bands)[-2] > max(np.shape(bands)[-1], 1) or np.shape(bands)[-2] < 1:
      raise _shape_error("BandedTriangularSolve", "matrix (bands) and rhs do not match",
                         ("matrix", bands), ("rhs", b))
    if np.size(bands) == 0 or np.size(b) == 0:
      raise _shape_error("BandedTriangularSolve", "TF's kernel rejects an empty matrix or "
                         "rhs", ("matrix", bands), ("rhs", b))
    a = _band_to_dense(jnp.asarray(bands), lower)
    a, b = _broadcast_batch("BandedTriangularSolve", a, b)
    return jax.lax.linalg.triangular_solve(
        a, b, left_side=True, lower=lower, transpose_a=adjoint,
        conjugate_a=adjoint and jnp.iscomplexobj(a)).astype(a.dtype)
  return run


@lowering("TridiagonalMatMul", attrs={"T": _LINALG})
def tridiagonal_matmul(node):
  def run(sup, main, sub, rhs):
    n = np.shape(rhs)[-2] if np.ndim(rhs) >= 2 else -1
    for name, d in (("superdiag", sup), ("maindiag", main), ("subdiag", sub)):
      if np.ndim(d) < 2 or np.shape(d)[-2] != 1 or np.shape(d)[-1] != n:
        raise _shape_error("TridiagonalMatMul", f"{name} must have shape [..., 1, M] with "
                           "M the rows of rhs", (name, d), ("rhs", rhs))
    m = xnp(sup, main, sub, rhs)
    u = m.swapaxes(sup, -1, -2)
    d = m.swapaxes(main, -1, -2)
    lo = m.swapaxes(sub, -1, -2)
    zero = m.zeros_like(rhs[..., :1, :])
    up = m.concatenate([rhs[..., 1:, :], zero], axis=-2)
    down = m.concatenate([zero, rhs[..., :-1, :]], axis=-2)
    out = d * rhs + u * up + lo * down
    return out.astype(rhs.dtype)
  return run


@lowering("TridiagonalSolve", attrs={"T": _LINALG, "partial_pivoting": None,
                                     "perturb_singular": (False,)})
def tridiagonal_solve(node):
  def run(diags, rhs):
    if np.ndim(diags) < 2 or np.shape(diags)[-2] != 3 or np.ndim(rhs) < 2 or \
        np.shape(rhs)[-2] != np.shape(diags)[-1]:
      raise _shape_error("TridiagonalSolve", "diagonals must have shape [..., 3, M] and rhs "
                         "[..., M, K]", ("diagonals", diags), ("rhs", rhs))
    diags, rhs = jnp.asarray(diags), jnp.asarray(rhs)
    n = diags.shape[-1]
    sup, main, sub = diags[..., 0, :], diags[..., 1, :], diags[..., 2, :]
    eye = jnp.eye(n, dtype=diags.dtype)
    a = (main[..., :, None] * eye + sup[..., :, None] * jnp.eye(n, k=1, dtype=diags.dtype)
         + sub[..., :, None] * jnp.eye(n, k=-1, dtype=diags.dtype))
    a, rhs = _broadcast_batch("TridiagonalSolve", a, rhs, ("diagonals", "rhs"))
    return jnp.linalg.solve(a, rhs).astype(diags.dtype)
  return run


@lowering("MatrixExponential", attrs={"T": _LINALG})
def matrix_exponential(node):
  """The op of GraphDef versions < 27 (tf.linalg.expm is a composition since)."""
  def run(x):
    _square("MatrixExponential", "input", x)
    x = jnp.asarray(x)
    if x.shape[-1] == 0:
      return x
    return jax.scipy.linalg.expm(x).astype(x.dtype)
  return run


def _sqrtm(a, iterations: int = 30):
  """Principal square root by the Denman-Beavers iteration: differentiable, and exact to
  rounding after ~30 steps for matrices with no eigenvalue on the closed negative axis
  that are not close to singular."""
  y, z = a, jnp.broadcast_to(jnp.eye(a.shape[-1], dtype=a.dtype), a.shape)
  for _ in range(iterations):
    y, z = (y + jnp.linalg.inv(z)) / 2, (z + jnp.linalg.inv(y)) / 2
  return y


@lowering("MatrixSquareRoot", attrs={"T": _LINALG})
def matrix_square_root(node):
  def run(x):
    _square("MatrixSquareRoot", "input", x)
    x = jnp.asarray(x)
    if x.shape[-1] == 0:
      return x
    return _sqrtm(x).astype(x.dtype)
  return run


@lowering("MatrixLogarithm", attrs={"T": COMPLEX})
def matrix_logarithm(node):
  def run(x):
    _square("MatrixLogarithm", "input", x)
    x = jnp.asarray(x)
    if x.shape[-1] == 0:
      return x
    # TF defines none; without this, JAX's error would speak of a while_loop.
    x = _gradient_raises(x, "TF defines no gradient for MatrixLogarithm")
    return _logm(x).astype(x.dtype)
  return run


def _sqrt_triangular(t):
  """Principal square root of upper-triangular t (Bjorck-Hammarling): the diagonal's
  scalar roots, then superdiagonal k from U_ij (U_ii + U_jj) = T_ij - sum U_il U_lj
  (the sum is (U U)_ij while U holds the superdiagonals below k)."""
  n = t.shape[-1]
  d = jnp.sqrt(jnp.diagonal(t, axis1=-2, axis2=-1))
  rows, cols = jnp.indices((n, n))
  u = jnp.where(rows == cols, d[..., :, None], jnp.zeros((), t.dtype))
  denom = d[..., :, None] + d[..., None, :]

  def superdiagonal(k, u):
    band = cols - rows == k
    return u + jnp.where(band, (t - u @ u) / jnp.where(band, denom, 1), 0)
  return jax.lax.fori_loop(1, n, superdiagonal, u)


def _logm(a, max_roots: int = 64, terms: int = 12):
  """Principal logarithm by a complex Schur form A = Q T Q^H and inverse scaling and
  squaring of T (defective matrices included, which an eigendecomposition gets wrong):
  square roots B = T^(1/2^k) until ||B - I||_F <= 1/4 for the whole batch, then
  log B = 2 atanh(Z), Z = (B - I)(B + I)^-1 (||Z|| <= 1/7), by `terms` terms of its
  series; log T = 2^k log B, with log of T's diagonal on its diagonal."""
  t, q = jax.lax.linalg.schur(a)
  n = a.shape[-1]
  eye = jnp.broadcast_to(jnp.eye(n, dtype=a.dtype), a.shape)

  def far(state):
    b, k = state
    return (k < max_roots) & jnp.any(jnp.linalg.norm(b - eye, axis=(-2, -1)) > 0.25)

  b, k = jax.lax.while_loop(far, lambda s: (_sqrt_triangular(s[0]), s[1] + 1), (t, 0))
  z = jnp.linalg.solve(b + eye, b - eye)  # (B + I)^-1 and B - I commute
  z2, term, total = z @ z, z, z
  for j in range(1, terms):
    term = term @ z2
    total = total + term / (2 * j + 1)
  log_t = total * (2.0 * 2.0 ** k).astype(total.real.dtype)
  diag = jnp.log(jnp.diagonal(t, axis1=-2, axis2=-1))
  log_t = jnp.where(jnp.eye(n, dtype=bool), diag[..., None, :], log_t)
  return q @ log_t @ _adjoint(q, jnp)


@lowering("CholeskyGrad", attrs={"T": ("float32", "float64")})
def cholesky_grad(node):
  """The kernel of TF1's Cholesky gradient (Murray, arXiv:1602.07527): from L = chol(A)
  and dL (lower triangles read), dA = sym(L^-H Phi(L^H dL) L^-1), where Phi keeps the
  lower triangle with its diagonal halved and sym(X) = (X + X^H) / 2."""
  def run(l, grad):
    _square(node.op, "l", l)
    if np.shape(grad) != np.shape(l):
      raise _shape_error(node.op, "l and grad must have the same shape", ("l", l),
                         ("grad", grad))
    l, g = jnp.tril(jnp.asarray(l)), jnp.tril(jnp.asarray(grad))
    n = l.shape[-1]
    if n == 0:
      return l
    middle = jnp.tril(_adjoint(l, jnp) @ g)
    middle = middle * jnp.where(jnp.eye(n, dtype=bool), 0.5, 1.0).astype(l.dtype)
    x = jax.lax.linalg.triangular_solve(l, middle, left_side=True, lower=True,
                                        transpose_a=True)  # L^-H middle
    x = jax.lax.linalg.triangular_solve(l, x, left_side=False, lower=True)  # ... L^-1
    return ((x + _adjoint(x, jnp)) / 2).astype(l.dtype)
  return run


@lowering("SparseMatMul", attrs={"Ta": ("float32", "bfloat16"), "Tb": ("float32", "bfloat16"),
                                 "transpose_a": None, "transpose_b": None,
                                 "a_is_sparse": None, "b_is_sparse": None})
def sparse_matmul(node):
  """a @ b in float32 for 2-D float32 or bfloat16 inputs. The sparsity flags are hints,
  but TF's sparse algorithm skips the zeros of the sparse operand (a when a_is_sparse,
  else b when b_is_sparse): 0 times inf or NaN adds 0 there, not NaN."""
  ta, tb = node.attrs.get("transpose_a", False), node.attrs.get("transpose_b", False)
  skip = "a" if node.attrs.get("a_is_sparse", False) else (
      "b" if node.attrs.get("b_is_sparse", False) else None)

  def run(a, b):
    for name, v in (("a", a), ("b", b)):
      if np.ndim(v) != 2:
        raise _shape_error(node.op, f"input {name} must be a matrix", (name, v))
    m = xnp(a, b)
    a = m.swapaxes(a, 0, 1) if ta else a
    b = m.swapaxes(b, 0, 1) if tb else b
    if np.shape(a)[1] != np.shape(b)[0]:
      raise _shape_error(node.op, f"matrix sizes do not match (transpose_a={ta}, "
                         f"transpose_b={tb})", ("a", a), ("b", b))
    if skip is None:
      return _matmul(a, b, np.float32)
    return _skip_zeros_matmul(m, m.asarray(a).astype(np.float32),
                              m.asarray(b).astype(np.float32), skip == "a")
  return run


def _skip_zeros_matmul(m, a, b, skip_a: bool):
  """sum_k where(s_k != 0, a_ik b_kj, 0), s the sparse operand: the finite products
  through a matmul; the inf and NaN products counted by matmuls of indicators."""
  f32 = np.float32
  ind = lambda c: c.astype(f32)  # noqa: E731
  fin_a, fin_b = m.isfinite(a), m.isfinite(b)
  out = _matmul(m.where(fin_a, a, 0), m.where(fin_b, b, 0), f32)
  if is_static(a, b) and fin_a.all() and fin_b.all():
    return out
  nz_a, nz_b = (a != 0, m.ones_like(b, bool)) if skip_a else (m.ones_like(a, bool), b != 0)
  nan = (ind(m.isnan(a) & nz_a) @ ind(nz_b) + ind(nz_a) @ ind(m.isnan(b) & nz_b)
         + ind(m.isinf(a) & nz_a) @ ind((b == 0) & nz_b)
         + ind((a == 0) & nz_a) @ ind(m.isinf(b) & nz_b))
  pos = (ind(a == np.inf) @ ind(b > 0) + ind(a == -np.inf) @ ind(b < 0)
         + ind(fin_a & (a > 0)) @ ind(b == np.inf) + ind(fin_a & (a < 0)) @ ind(b == -np.inf))
  neg = (ind(a == np.inf) @ ind(b < 0) + ind(a == -np.inf) @ ind(b > 0)
         + ind(fin_a & (a > 0)) @ ind(b == -np.inf) + ind(fin_a & (a < 0)) @ ind(b == np.inf))
  out = m.where(pos > 0, f32(np.inf), m.where(neg > 0, f32(-np.inf), out))
  return m.where((nan > 0) | ((pos > 0) & (neg > 0)), f32(np.nan), out)


# Old names of array ops (GraphDef versions < 14): the same kernels and inputs (their
# num_lower and num_upper are int64, MatrixBandPart's Tindex).
for _old, _new in (("BatchMatrixBandPart", _array_ops.matrix_band_part),
                   ("BatchMatrixDiag", _array_ops.matrix_diag),
                   ("BatchMatrixDiagPart", _array_ops.matrix_diag_part),
                   ("BatchMatrixSetDiag", _array_ops.matrix_set_diag)):
  LOWERINGS.append(dataclasses.replace(_new, op_types=(_old,)))
del _old, _new  # a Lowering left at the top level would register twice
