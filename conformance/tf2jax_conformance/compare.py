"""Comparing tf2jax's results with TensorFlow's.

Same structure, same shape, exactly the same dtype; integers and bools equal; floats
within tolerance with NaN in the same places and infinities of the same sign (complex
numbers part by part).
"""

from __future__ import annotations

import numpy as np
import tree

from tf2jax_conformance import dtypes as D
from tf2jax_conformance.spec import Tolerance


class Mismatch(AssertionError):
  """tf2jax's result differs from TensorFlow's."""


def to_numpy(value) -> np.ndarray:
  """A TF tensor, JAX array or NumPy value as a NumPy array (keeping its dtype)."""
  if hasattr(value, "numpy") and callable(value.numpy):
    value = value.numpy()
  return np.asarray(value)


def assert_same(got, want, tol, what: str = "output") -> None:
  """Raises `Mismatch` unless `got` (tf2jax) matches `want` (TF) leaf by leaf.

  `tol`: a `Tolerance`, or `tol(dtype_name) -> Tolerance` chosen by each output's dtype.
  """
  try:
    tree.assert_same_structure(got, want, check_types=False)
  except (ValueError, TypeError) as e:
    raise Mismatch(f"{what}: structure differs: tf2jax gave {_structure(got)}, TF gave "
                   f"{_structure(want)} ({e})") from None
  flat_got, flat_want = tree.flatten(got), tree.flatten(want)
  for i, (g, w) in enumerate(zip(flat_got, flat_want)):
    name = what if len(flat_want) == 1 else f"{what}[{i}]"
    assert_array_same(g, w, tol, name)


def _structure(x) -> str:
  return repr(tree.map_structure(lambda v: f"{D.name_of(np.asarray(v).dtype)}"
                                 f"{list(np.shape(v))}", x))


def assert_array_same(got, want, tol, what: str = "output") -> None:
  if got is None or want is None:
    if got is not want:
      raise Mismatch(f"{what}: tf2jax gave {got!r}, TF gave {want!r}")
    return
  g, w = to_numpy(got), to_numpy(want)
  if g.shape != w.shape:
    raise Mismatch(f"{what}: shape {g.shape} != TF's {w.shape}")
  if g.dtype != w.dtype:
    raise Mismatch(f"{what}: dtype {D.name_of(g.dtype)} != TF's {D.name_of(w.dtype)}")
  if g.size == 0:
    return
  name = D.name_of(w.dtype)
  if not isinstance(tol, Tolerance):
    tol = tol(name)
  if name == "bool" or name in D.INT or name in D.NARROW_INT:
    if name != "bool" and tol.ints:  # a spec's explicit integer tolerance
      gi, wi = g.astype(np.float64), w.astype(np.float64)
      bad = np.abs(gi - wi) > tol.atol + tol.rtol * np.abs(wi)
      if np.any(bad):
        raise Mismatch(_describe(what, g, w, bad, f"values differ beyond {tol}"))
      return
    bad = g != w
    if np.any(bad):
      raise Mismatch(_describe(what, g, w, bad, "exact"))
    return
  if name in D.COMPLEX:
    # NaN and infinities part by part; finite values within tolerance of |TF's value|.
    f_re = _check_special(g.real, w.real, f"{what} (real part)", g, w, tol)
    f_im = _check_special(g.imag, w.imag, f"{what} (imaginary part)", g, w, tol)
    _check_close(g.astype(np.complex128), w.astype(np.complex128), f_re & f_im, tol, what)
    return
  finite = _check_special(g, w, what, g, w, tol)
  _check_close(g.astype(np.float64), w.astype(np.float64), finite, tol, what)


def _check_special(g, w, what: str, g_full, w_full, tol: Tolerance) -> np.ndarray:
  """NaN in the same places, infinities in the same places with the same signs. Except
  at the overflow edge: an infinity against a finite value of its sign within the
  tolerance of the dtype's largest value (4 / tiny is inf, and TF's approximate
  reciprocal makes it the largest float32)."""
  g64 = g.astype(np.float64)
  w64 = w.astype(np.float64)
  g_nan, w_nan = np.isnan(g64), np.isnan(w64)
  if np.any(g_nan != w_nan):
    raise Mismatch(_describe(what, g_full, w_full, g_nan != w_nan, "NaN in other places"))
  g_inf, w_inf = np.isinf(g64), np.isinf(w64)
  top = float(D.finfo(D.name_of(g.dtype)).max) * (1 - max(tol.rtol, float(
      D.finfo(D.name_of(g.dtype)).eps)))
  edge = (g_inf != w_inf) & (np.sign(g64) == np.sign(w64)) & \
      (np.minimum(np.abs(g64), np.abs(w64)) >= top)
  bad_inf = ((g_inf != w_inf) & ~edge) | (g_inf & w_inf & (np.sign(g64) != np.sign(w64)))
  if np.any(bad_inf):
    raise Mismatch(_describe(what, g_full, w_full, bad_inf,
                             "infinities differ (place or sign)"))
  return ~(w_nan | w_inf | edge)


def _check_close(g, w, finite, tol: Tolerance, what: str) -> None:
  with np.errstate(over="ignore", invalid="ignore"):
    err = np.abs(g - w)
    allowed = tol.atol + (tol.rtol * np.abs(w) if tol.rtol else 0.0)
  bad = finite & ~((g == w) | (err <= allowed))
  if np.any(bad):
    worst = float(np.max(np.where(bad, err, 0)))
    raise Mismatch(_describe(what, g, w, bad,
                             f"values differ beyond {tol} (max abs error {worst:.6g})"))


def _describe(what: str, g, w, bad, how: str, limit: int = 5) -> str:
  idx = np.argwhere(np.asarray(bad).reshape(np.shape(w)) if np.ndim(w) else
                    np.asarray(bad).reshape(()))
  n = int(np.sum(bad))
  lines = [f"{what}: {how} at {n} of {w.size} element(s):"]
  for pos in idx[:limit]:
    pos = tuple(int(p) for p in pos)
    gv, wv = (g[pos], w[pos]) if pos else (g[()], w[()])
    lines.append(f"  at {list(pos)}: tf2jax {_fmt(gv)}, TF {_fmt(wv)}")
  if n > limit:
    lines.append(f"  ... and {n - limit} more")
  return "\n".join(lines)


def _fmt(v) -> str:
  v = np.asarray(v)
  name = D.name_of(v.dtype)
  if name in D.COMPLEX:
    return repr(v.astype(np.complex128).item())
  if D.is_float(name):
    return repr(v.astype(np.float64).item())
  if name in D.NARROW_INT:
    return repr(int(v.astype(np.int64)))
  return repr(v.item())
