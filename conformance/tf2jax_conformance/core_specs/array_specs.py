"""Specs of the core's shape ops: Shape and Reshape."""

from __future__ import annotations

import math

import numpy as np
from hypothesis import strategies as st

from tf2jax_conformance import dtypes as D
from tf2jax_conformance import strategies as cst
from tf2jax_conformance.spec import Example, OpSpec

_ANY = "TF's kernel accepts any dtype"


def shape_example(dtype):
  return st.tuples(cst.arrays(dtype, cst.shapes()), cst.index_dtypes()).map(
      lambda t: Example({"input": t[0]}, {"out_type": t[1]}))


def _factors(n: int) -> list[int]:
  out, p = [], 2
  while n > 1 and p * p <= n:
    while n % p == 0:
      out.append(p)
      n //= p
    p += 1
  if n > 1:
    out.append(n)
  return out


def target_shapes(size: int) -> st.SearchStrategy[list[int]]:
  """Shapes with `size` elements, possibly with one -1 (inferred) dimension."""
  if size == 0:
    return st.lists(st.integers(0, 3), min_size=1, max_size=4).filter(lambda s: 0 in s)
  factors = _factors(size)

  def place(rank):
    if rank == 0:
      return st.just([]) if size == 1 else st.nothing()
    return st.lists(st.integers(0, rank - 1), min_size=len(factors),
                    max_size=len(factors)).flatmap(lambda bins: st.integers(-1, rank - 1).map(
                        lambda unknown: _shape(rank, factors, bins, unknown)))
  return st.integers(0, 4).flatmap(place)


def _shape(rank, factors, bins, unknown):
  dims = [1] * rank
  for f, b in zip(factors, bins):
    dims[b] *= f
  if unknown >= 0:
    dims[unknown] = -1
  return dims


def reshape_example(dtype):
  def for_input(x):
    return st.tuples(target_shapes(x.size), cst.index_dtypes()).map(
        lambda t: Example({"tensor": x, "shape": np.asarray(t[0], D.np_dtype(t[1]))}))
  return cst.arrays(dtype, cst.shapes()).flatmap(for_input)


SPECS = [
    OpSpec("Shape", shape_example, dtypes=D.ALL,
           transforms=("jit", "static", "x64", "vmap"),
           notes="Its output is static (NumPy) even under jit."),
    OpSpec("Reshape", reshape_example, dtypes=D.ALL, static_inputs=("shape",)),
]

assert math  # used by type checkers of reshape strategies
