"""Conformance specs of tf2jax-random's stateful RandomUniform and RandomStandardNormal.

Stateful random ops draw from the converted function's `rng` key, not from TF's bits, so
their specs compare shape and dtype with TF and test the samples (pooled over keys until
there are at least 2000) against the exact distribution with a Kolmogorov-Smirnov test.
A test dependency: only the plugin's `tf2jax_conformance_specs` hook imports this module.
"""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

from tf2jax_conformance import dtypes as D
from tf2jax_conformance import strategies as cst
from tf2jax_conformance.spec import Example, OpSpec

# Reject when the KS p-value is below this: a correct sampler fails one check in a million.
KS_P_VALUE = 1e-6


def _shape_example(dtype):
  def build(t):
    shape, index_dtype, seed, seed2 = t
    return Example({"shape": np.asarray(shape, D.np_dtype(index_dtype))},
                   {"dtype": dtype, "seed": seed, "seed2": seed2})
  shapes = st.one_of(cst.shapes(max_dims=3, max_side=5),  # 0-sized and scalar outputs
                     cst.shapes(min_dims=1, max_dims=2, min_side=20, max_side=60,
                                max_size=4000))
  return st.tuples(shapes, cst.index_dtypes(), st.integers(0, 2**31 - 1),
                   st.integers(0, 2**31 - 1)).map(build)


def _ks(samples: np.ndarray, cdf: str) -> str | None:
  from scipy import stats
  x = samples.astype(np.float64)
  result = stats.kstest(x, cdf)
  if result.pvalue < KS_P_VALUE:
    return (f"Kolmogorov-Smirnov against {cdf}: D={result.statistic:.4g}, "
            f"p={result.pvalue:.3g} < {KS_P_VALUE:g} ({x.size} samples)")
  return None


def _uniform(samples: np.ndarray, dtype: str) -> str | None:
  x = samples.astype(np.float64)
  outside = (x < 0) | (x >= 1) | ~np.isfinite(x)
  if np.any(outside):
    return f"{int(outside.sum())} samples outside [0, 1), e.g. {x[outside][:3]}"
  return _ks(x, "uniform")


def _normal(samples: np.ndarray, dtype: str) -> str | None:
  x = samples.astype(np.float64)
  if not np.all(np.isfinite(x)):
    return "non-finite samples"
  return _ks(x, "norm")


_NOTES = ("Values come from JAX's key, not TF's: shape and dtype are compared with TF, the "
          "samples (>= 2000, pooled over keys) pass a Kolmogorov-Smirnov test against the "
          f"exact distribution at p >= {KS_P_VALUE:g}.")


def specs() -> list[OpSpec]:
  common = dict(dtype_attr="dtype", static_inputs=("shape",), rng=True, transforms=("jit",),
                notes=_NOTES)
  return [
      OpSpec("RandomUniform", _shape_example, statistical=_uniform, **common),
      OpSpec("RandomStandardNormal", _shape_example, statistical=_normal, **common),
  ]
