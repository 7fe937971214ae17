"""Specs of the core's FFT ops: FFT, IFFT, RFFT, IRFFT in 1, 2 and 3 dimensions.

Complex inputs and outputs go through their real and imaginary parts (`tf.complex`,
`tf.math.real`, `tf.math.imag` around the op), so that gradients are compared too (the
harness differentiates real inputs and outputs). Values are finite and moderate: an
infinity or NaN spreads over a whole transform, in a pattern that depends on the FFT
algorithm. TF crops the input to `fft_length` but never zero-pads it (a longer
`fft_length` is an error), and crashes the process on a `fft_length` of 0, which is
therefore never drawn.
"""

from __future__ import annotations

import math

import numpy as np
from hypothesis import strategies as st

from tf2jax_conformance import dtypes as D
from tf2jax_conformance import strategies as cst
from tf2jax_conformance.spec import Example, OpSpec, Tolerance, default_tolerance

_PART = {"complex64": "float32", "complex128": "float64"}
_COMPLEX_OF = {v: k for k, v in _PART.items()}
_BOUND = 100.0


def _tf():
  import tensorflow as tf
  return tf


def _shape(rank: int, real_inverse: bool = False):
  """(batch + transformed dims); transformed dims are >= 1 when fft_length is drawn."""
  def full(t):
    batch, inner = t
    return tuple(batch) + tuple(inner)
  low = 1 if real_inverse is not None else 0
  return st.tuples(cst.shapes(max_dims=2, max_side=2, max_size=4),
                   st.lists(st.integers(low, 5 if rank == 1 else 3), min_size=rank,
                            max_size=rank)).map(full)


def _values(dtype: str, shape):
  return cst.finite_arrays(dtype, shape, bound=_BOUND)


def _fft_bound(dtype: str, ex: Example) -> Tolerance:
  """Rounding of an FFT: about eps * log2(n) * sum |x| per output."""
  part = _PART.get(dtype, dtype)
  base = default_tolerance(part)
  xs = [np.abs(np.asarray(v, np.float64)) for v in ex.inputs.values()
        if np.asarray(v).dtype.kind == "f"]
  total = sum(float(np.sum(x)) for x in xs)
  n = max(2, *(np.size(x) for x in xs)) if xs else 2
  eps = float(D.finfo(part).eps)
  return Tolerance(rtol=base.rtol, atol=base.atol + 4 * eps * (math.log2(n) + 1) * total)


def _fft_grad_bound(dtype: str, ex: Example) -> Tolerance:
  """As `_fft_bound`, with the cotangents' scale (at most 10 each) in place of |x|."""
  base = _fft_bound(dtype, ex)
  part = _PART.get(dtype, dtype)
  n = max([np.size(v) for v in ex.inputs.values()] + [2])
  eps = float(D.finfo(part).eps)
  return Tolerance(rtol=2 * base.rtol,
                   atol=2 * base.atol + 4 * eps * (math.log2(n) + 1) * 20 * n)


def _complex_example(rank: int):
  def example(dtype):
    part = _PART[dtype]
    return _shape(rank, None).flatmap(lambda s: st.tuples(_values(part, s), _values(part, s))
                                      ).map(lambda ri: Example({"re": ri[0], "im": ri[1]}))
  return example


def _complex_build(op: str):
  def build(example):
    tf = _tf()
    fn = getattr(tf.raw_ops, op)

    def body(re, im):
      y = fn(input=tf.complex(re, im))
      return tf.math.real(y), tf.math.imag(y)
    return body
  return build


def _lengths(shape, rank: int, inverse: bool):
  inner = shape[len(shape) - rank:]
  parts = []
  for i, d in enumerate(inner):
    hi = 2 * d - 1 if inverse and i == rank - 1 else d
    parts.append(st.integers(1, max(hi, 1)))
  return st.tuples(*parts).map(lambda t: np.array(t, np.int32))


def _crops(shape, length, inverse: bool) -> bool:
  """Whether the op crops its input (TF's gradients of RFFT* and IRFFT* then fail or
  have the wrong shape: the spec stops gradients there and checks them elsewhere)."""
  need = [int(n) for n in length]
  if inverse:
    need[-1] = need[-1] // 2 + 1
  return tuple(shape[len(shape) - len(need):]) != tuple(need)


def _rfft_example(rank: int):
  def example(dtype):
    def for_shape(s):
      return st.tuples(_values(dtype, s), _lengths(s, rank, False)).map(
          lambda t: Example({"input": t[0], "fft_length": t[1]},
                            {"Treal": dtype, "Tcomplex": _COMPLEX_OF[dtype]}))
    return _shape(rank, False).flatmap(for_shape)
  return example


def _rfft_build(op: str):
  def build(example):
    tf = _tf()
    fn = getattr(tf.raw_ops, op)
    length = example.inputs["fft_length"]
    tcomplex = tf.as_dtype(example.attrs["Tcomplex"])

    crop = _crops(example.inputs["input"].shape, length, False)

    def body(x):
      x = tf.stop_gradient(x) if crop else x  # TF's gradient breaks on cropped inputs
      y = fn(input=x, fft_length=tf.constant(length), Tcomplex=tcomplex)
      return tf.math.real(y), tf.math.imag(y)
    return body
  return build


def _irfft_example(rank: int):
  def example(dtype):
    part = _PART[dtype]

    def for_shape(s):
      return st.tuples(_values(part, s), _values(part, s), _lengths(s, rank, True)).map(
          lambda t: Example({"re": t[0], "im": t[1], "fft_length": t[2]},
                            {"Treal": part, "Tcomplex": dtype}))
    return _shape(rank, True).flatmap(for_shape)
  return example


def _irfft_build(op: str):
  def build(example):
    tf = _tf()
    fn = getattr(tf.raw_ops, op)
    length = example.inputs["fft_length"]
    treal = tf.as_dtype(example.attrs["Treal"])

    crop = _crops(example.inputs["re"].shape, length, True)

    def body(re, im):
      x = tf.complex(re, im)
      x = tf.stop_gradient(x) if crop else x  # TF's gradient breaks on cropped inputs
      return fn(input=x, fft_length=tf.constant(length), Treal=treal)
    return body
  return build


_NOTE = ("Gradients are compared where fft_length does not crop the input (TF's "
         "gradients raise or have the wrong shape there: the spec stops the gradient). "
         "finite values in [-100, 100]; complex values through their parts (tf.complex, "
         "real, imag) so that gradients are compared; fft_length drawn from 1 to the input "
         "length (TF refuses longer ones and crashes on 0).")


def specs() -> list[OpSpec]:
  out = []
  for rank, suffix in ((1, ""), (2, "2D"), (3, "3D")):
    for op in ("FFT", "IFFT"):
      out.append(OpSpec(op + suffix, _complex_example(rank), dtype_attr="Tcomplex",
                        build=_complex_build(op + suffix),
                        grad_dtypes=("complex64", "complex128"),
                        tolerance=_fft_bound, grad_tolerance=_fft_grad_bound, notes=_NOTE))
    # TF registers no gradient for RFFT3D and IRFFT3D.
    real = ("jit", "static", "x64", "vmap") + (("grad",) if rank < 3 else ())
    out.append(OpSpec("RFFT" + suffix, _rfft_example(rank), dtype_attr="Treal",
                      transforms=real,
                      static_inputs=("fft_length",), build=_rfft_build("RFFT" + suffix),
                      tolerance=_fft_bound, grad_tolerance=_fft_grad_bound, notes=_NOTE))
    out.append(OpSpec("IRFFT" + suffix, _irfft_example(rank), dtype_attr="Tcomplex",
                      transforms=real,
                      static_inputs=("fft_length",), build=_irfft_build("IRFFT" + suffix),
                      grad_dtypes=("complex64", "complex128"),
                      tolerance=_fft_bound, grad_tolerance=_fft_grad_bound, notes=_NOTE))
  return out
