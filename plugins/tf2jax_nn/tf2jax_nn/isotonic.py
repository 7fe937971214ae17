"""IsotonicRegression: a non-increasing least-squares fit along the last axis.

TF's CPU kernel solves each row (the last axis; a scalar is one row of one value) with
the pool-adjacent-violators algorithm, in the output dtype: every value starts a block
(its sum and its count); while the block before the last has a mean strictly smaller
than the last's, the two merge (their sums added). Each value's output is its block's
mean (sum / count) and `segments` numbers the blocks of its row from 0. Equal
neighbours stay separate blocks, and a NaN mean never merges (the comparison is false).
The output dtype is float32 for int8/int16, float64 for int32/int64, otherwise the
input's (TF registers no other pairs).

TF's gradient replaces each cotangent by its block's mean. (TF's Python gradient is
only right for rank-2 inputs: for other ranks it returns another shape or mixes rows;
tf2jax gives the block means at every rank.)
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from tf2jax_core import is_static, lowering
from tf2jax_nn._common import refuse

_OUTPUT_DTYPES = {"int8": "float32", "int16": "float32", "int32": "float64",
                  "int64": "float64", "float16": "float16", "bfloat16": "bfloat16",
                  "float32": "float32", "float64": "float64"}


def _pav_np(rows):
  """PAV on each row of a [B, n] NumPy array (already in the output dtype)."""
  out = np.empty_like(rows)
  seg = np.zeros(rows.shape, np.int32)
  t = rows.dtype.type
  for r, row in enumerate(rows):
    sums, counts = [], []
    for v in row:
      sums.append(v)
      counts.append(1)
      while len(sums) > 1 and sums[-2] / t(counts[-2]) < sums[-1] / t(counts[-1]):
        sums[-2] = t(sums[-2] + sums[-1])
        counts[-2] += counts[-1]
        sums.pop()
        counts.pop()
    i = 0
    for k, (s, c) in enumerate(zip(sums, counts)):
      out[r, i:i + c] = s / t(c)
      seg[r, i:i + c] = k
      i += c
  return out, seg


def _pav_row(row):
  """PAV on one row (a JAX array in the output dtype): (fit, segments)."""
  n = row.shape[0]
  dtype = row.dtype
  mean = lambda sums, counts, k: sums[k] / counts[k].astype(dtype)

  def violated(state):
    sums, counts, top = state
    return (top > 1) & (mean(sums, counts, top - 2) < mean(sums, counts, top - 1))

  def merge(state):
    sums, counts, top = state
    sums = sums.at[top - 2].set(sums[top - 2] + sums[top - 1])
    counts = counts.at[top - 2].add(counts[top - 1]).at[top - 1].set(0)
    return sums, counts, top - 1

  def push(i, state):
    sums, counts, top = state
    state = (sums.at[top].set(row[i]), counts.at[top].set(1), top + 1)
    return jax.lax.while_loop(violated, merge, state)

  init = (jnp.zeros((n,), dtype), jnp.zeros((n,), jnp.int32), jnp.int32(0))
  sums, counts, _ = jax.lax.fori_loop(0, n, push, init)
  ends = jnp.cumsum(counts)
  seg = jnp.searchsorted(ends, jnp.arange(n, dtype=ends.dtype), side="right")
  seg = seg.astype(jnp.int32)
  return sums[seg] / counts[seg].astype(dtype), seg


def _block_mean(t, seg):
  """Each value of t replaced by the mean of its block (linear in t)."""
  n = seg.shape[-1]
  member = (seg[..., :, None] == jnp.arange(n)).astype(t.dtype)  # [..., value, block]
  sums = jnp.einsum("...j,...jk->...k", t, member)
  counts = member.sum(axis=-2)
  return jnp.einsum("...jk,...k->...j", member, sums / jnp.maximum(counts, 1))


@jax.custom_jvp
def _isotonic(x):
  n = x.shape[-1]
  rows = x.reshape(-1, n)
  y, seg = jax.vmap(_pav_row)(rows)
  return y.reshape(x.shape), seg.reshape(x.shape)


@_isotonic.defjvp
def _isotonic_jvp(primals, tangents):
  (x,), (t,) = primals, tangents
  y, seg = _isotonic(x)
  return (y, seg), (_block_mean(t, seg), np.zeros(seg.shape, jax.dtypes.float0))


@lowering("IsotonicRegression", attrs={"T": tuple(_OUTPUT_DTYPES),
                                       "output_dtype": ("float16", "bfloat16", "float32",
                                                        "float64")})
def isotonic_regression(node):
  t = np.dtype(node.attrs["T"]).name
  out = np.dtype(node.attrs.get("output_dtype", np.float32))
  if _OUTPUT_DTYPES[t] != out.name:
    refuse(node, "output_dtype", f"TF's CPU kernel for T={t} produces "
           f"{_OUTPUT_DTYPES[t]} only", out.name)

  def run(x):
    shape = tuple(np.shape(x))
    if 0 in shape:
      return (np.zeros(shape, out), np.zeros(shape, np.int32))
    if is_static(x):
      n = shape[-1] if shape else 1
      with np.errstate(all="ignore"):
        y, seg = _pav_np(np.asarray(x).astype(out).reshape(-1, n))
      return y.reshape(shape), seg.reshape(shape)
    x = jnp.asarray(x).astype(out)
    if not shape:
      y, seg = _isotonic(x.reshape(1))
      return y.reshape(()), seg.reshape(())
    return _isotonic(x)
  return run
