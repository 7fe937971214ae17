"""Conformance specs of the nn plugin's image transforms (ImageProjectiveTransformV2/V3).

Transforms are the 8-parameter projective maps Keras' augmentation layers build
(rotations, shifts, zooms, shears), small perspective terms and arbitrary ones, sometimes
making the projection 0 on a pixel; every interpolation and fill mode; output sizes
smaller, equal to and larger than the input, and 0 (which TF rejects).
"""

from __future__ import annotations

import math

import numpy as np
from hypothesis import strategies as st

from tf2jax_conformance import Example, OpSpec, Tolerance
from tf2jax_conformance import dtypes as D
from tf2jax_conformance import strategies as cst

_NO_GRAD = ("jit", "static", "x64", "vmap")


def _rotation(angle, h, w):
  """Keras RandomRotation's transform: a rotation about the image centre."""
  c, s = math.cos(angle), math.sin(angle)
  x_off = ((w - 1) - (c * (w - 1) - s * (h - 1))) / 2.0
  y_off = ((h - 1) - (s * (w - 1) + c * (h - 1))) / 2.0
  return [c, -s, x_off, s, c, y_off, 0.0, 0.0]


def _transforms(h, w):
  finite = st.floats(-3.0, 3.0, width=32)
  return st.one_of(
      st.floats(-math.pi, math.pi).map(lambda a: _rotation(a, h, w)),
      st.tuples(st.floats(-4, 4), st.floats(-4, 4)).map(
          lambda d: [1.0, 0.0, d[0], 0.0, 1.0, d[1], 0.0, 0.0]),
      st.tuples(st.floats(0.3, 3.0), st.floats(0.3, 3.0), st.floats(-1, 1)).map(
          lambda z: [z[0], z[2], 0.0, 0.0, z[1], 0.0, 0.0, 0.0]),
      st.tuples(st.floats(-0.2, 0.2), st.floats(-0.2, 0.2)).map(
          lambda p: [1.0, 0.0, 0.5, 0.0, 1.0, -0.5, p[0], p[1]]),
      st.just([1.0, 0.0, 0.0, 0.0, 1.0, 0.0, -1.0, 0.0]),  # projection 0 at x = 1
      st.lists(finite, min_size=8, max_size=8))


def _values(dtype, shape):
  if dtype == "uint8":
    return cst.arrays(dtype, shape)
  if dtype in ("int32", "int64"):
    return st.lists(st.integers(-1000, 1000), min_size=math.prod(shape),
                    max_size=math.prod(shape)).map(
        lambda xs: np.array(xs, D.np_dtype(dtype)).reshape(shape))
  # Finite floats: TF's blend of NaN or inf neighbours is NaN on both sides, but an
  # infinite neighbour with weight 0 gives NaN where a read-out fill gives 0.
  return st.lists(st.floats(-100, 100, width=16), min_size=math.prod(shape),
                  max_size=math.prod(shape)).map(
      lambda xs: np.array(xs, np.float64).astype(D.np_dtype(dtype)).reshape(shape))


def _example(v3: bool):
  def example(dtype):
    @st.composite
    def draw(draw):
      b, h, w, c = (draw(st.integers(1, 3)), draw(st.integers(1, 6)), draw(st.integers(1, 6)),
                    draw(st.integers(1, 2)))
      images = draw(_values(dtype, (b, h, w, c)))
      rows = 1 if draw(st.booleans()) else b
      transforms = np.array([draw(_transforms(h, w)) for _ in range(rows)], np.float32)
      side = st.one_of(st.integers(1, 7), st.just(0))  # 0: TF rejects it
      out_shape = np.array([draw(side), draw(side)], np.int32)
      attrs = {"interpolation": draw(st.sampled_from(["NEAREST", "BILINEAR"])),
               "fill_mode": draw(st.sampled_from(["CONSTANT", "REFLECT", "WRAP", "NEAREST"]))}
      inputs = {"images": images, "transforms": transforms, "output_shape": out_shape}
      if v3:
        fills = [0.0, 1.0, 7.5, 255.0] if dtype == "uint8" else [0.0, -2.5, 1.0, 100.0]
        inputs["fill_value"] = np.array(draw(st.sampled_from(fills)), np.float32)
      return Example(inputs, attrs)
    return draw()
  return example


def _tolerance(dtype, example):
  # Bilinear blends are float32 whichever the image dtype (TF's kernel too).
  if dtype in ("float64", "float32"):
    return Tolerance(rtol=1e-5, atol=1e-4)
  if dtype == "float16":
    return Tolerance(rtol=2e-3, atol=1e-2)
  if dtype == "bfloat16":
    return Tolerance(rtol=1e-2, atol=1e-1)
  if example.attrs.get("interpolation") == "BILINEAR":
    return Tolerance(rtol=0, atol=1, ints=True)  # see _NOTES: XLA's FMA contraction
  return Tolerance(rtol=0, atol=0)


_NOTES = ("No grad: TF's registered gradient is not the VJP of the bilinear interpolation "
          "(it transforms dy with the inverted matrix), while JAX differentiates the "
          "interpolation exactly, so they differ by design. Floats within float32 rounding "
          "(blends are float32). Integers: NEAREST exact; BILINEAR within 1, because under "
          "jit XLA may contract the blend's multiply-adds into FMAs (TF's build has none), "
          "so a blend within a float32 ulp of an integer truncates to the one below.")


def specs() -> list[OpSpec]:
  common = dict(dtype_attr="dtype", static_inputs=("output_shape",), transforms=_NO_GRAD,
                tolerance=_tolerance, notes=_NOTES)
  return [
      OpSpec("ImageProjectiveTransformV2", _example(False), **common),
      OpSpec("ImageProjectiveTransformV3", _example(True), **common),
  ]
