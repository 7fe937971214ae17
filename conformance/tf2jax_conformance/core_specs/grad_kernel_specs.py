"""Specs of TF's gradient kernels of unary ops: SigmoidGrad, TanhGrad, SqrtGrad,
RsqrtGrad, ReciprocalGrad and InvGrad (inputs y = the forward output, dy)."""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

from tf2jax_conformance import dtypes as D
from tf2jax_conformance import strategies as cst
from tf2jax_conformance.core_specs.math_specs import moderate_complex, nonzero_cotangents
from tf2jax_conformance.spec import Example, OpSpec

_REAL = ("float16", "bfloat16", "float32", "float64")


def _y_dy(dtype, nonzero_complex_y=False):
  """y and dy of one shape (TF's kernels require equal shapes)."""
  if dtype in D.COMPLEX:
    def y(s):
      v = moderate_complex(dtype, s, 50.0)
      return v.map(lambda a: np.where(a == 0, np.ones_like(a), a)) if nonzero_complex_y else v
    return cst.shapes().flatmap(lambda s: st.tuples(
        y(s), moderate_complex(dtype, s, 50.0))).map(
            lambda t: Example({"y": t[0], "dy": t[1]}))
  bound = dict(min_value=-1e15, max_value=1e15)
  return cst.shapes().flatmap(lambda s: st.tuples(
      cst.arrays(dtype, s, **bound), cst.arrays(dtype, s, **bound))).map(
          lambda t: Example({"y": t[0], "dy": t[1]}))


_NOTES = ("Real values: NaN, -0.0, subnormals and finite values up to 1e15 (products of "
          "larger ones overflow or not depending on the order of the multiplications, which "
          "differs between TF's kernels, XLA and the JVP); complex parts 0 or of magnitude in "
          "[1e-3, 50]. Gradients (the second derivative) are checked "
          "for real dtypes only: TF's registered gradients of these ops do not conjugate "
          "complex inputs consistently.")


_ZERO_CT = (" Cotangents are nonzero: TF's second derivative w.r.t. dy is the kernel "
            "itself, 0 for a 0 cotangent even where y is 0 or inf; tf2jax's is linear in "
            "it (0 * inf = NaN there), as for Sqrt and Rsqrt.")


def specs() -> list[OpSpec]:
  grad = dict(grad_dtypes=("float32", "float64"))
  out = [OpSpec(op, _y_dy, notes=_NOTES, **grad) for op in ("SigmoidGrad", "TanhGrad")]
  out += [OpSpec(op, _y_dy, cotangents=nonzero_cotangents, notes=_NOTES + _ZERO_CT, **grad)
          for op in ("RsqrtGrad", "ReciprocalGrad", "InvGrad")]
  out.append(OpSpec("SqrtGrad", lambda dtype: _y_dy(dtype, nonzero_complex_y=True),
                    cotangents=nonzero_cotangents,
                    notes=_NOTES + _ZERO_CT + " Complex y is nonzero: TF gives NaN+NaNj for "
                                              "z / 0, XLA and NumPy infinities.", **grad))
  return out
