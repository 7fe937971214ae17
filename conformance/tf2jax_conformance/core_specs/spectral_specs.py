"""Specs of the core's FFT ops: FFT, IFFT, RFFT, IRFFT in 1, 2 and 3 dimensions and ND.

Complex inputs and outputs go through their real and imaginary parts (`tf.complex`,
`tf.math.real`, `tf.math.imag` around the op), so that gradients are compared too (the
harness differentiates real inputs and outputs). Values are finite and moderate: an
infinity or NaN spreads over a whole transform, in a pattern that depends on the FFT
algorithm. TF crops the input to `fft_length` but never zero-pads it (a longer
`fft_length` is an error), and crashes the process on a `fft_length` of 0, which is
therefore never drawn.

FFTND, IFFTND, RFFTND and IRFFTND have no CPU (nor XLA CPU) kernel in TF: `build` traces
their documented meaning with TF ops (crop or zero-pad each axis to fft_length, then 1-D
FFT, IFFT, RFFT or IRFFT along each axis, the real ones on the last axis listed), and
`rewrite` puts the ND op in its place (`OpSpec.rewrite`).
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
  """Rounding of an FFT: about eps * log2(n) * sum |x| per output, plus 4 n tiny.

  TF flushes subnormal products to zero (FFT of [0, 0, tiny + tiny j] in complex64: TF
  gives 0 at [1], the exact value is -1.6e-38), so each of an output's terms may lose up
  to the smallest normal value."""
  part = _PART.get(dtype, dtype)
  base = default_tolerance(part)
  xs = [np.abs(np.asarray(v, np.float64)) for v in ex.inputs.values()
        if np.asarray(v).dtype.kind == "f"]
  total = sum(float(np.sum(x)) for x in xs)
  n = max(2, *(np.size(x) for x in xs)) if xs else 2
  info = D.finfo(part)
  return Tolerance(rtol=base.rtol, atol=base.atol + 4 * float(info.eps) * (math.log2(n) + 1)
                   * total + 4 * n * float(info.tiny))


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


# ND ops (no CPU kernel in TF: a reference graph of 1-D ops, rewritten) -------------------

_ND_OP = {"fft": "FFTND", "ifft": "IFFTND", "rfft": "RFFTND", "irfft": "IRFFTND"}


def _nd_example(kind: str):
  real_in = kind == "rfft"

  def example(dtype):
    part = dtype if real_in else _PART[dtype]
    tcomplex = _COMPLEX_OF[dtype] if real_in else dtype

    @st.composite
    def draw(draw):
      shape = draw(cst.shapes(min_dims=1, max_dims=4, max_side=3, max_size=24))
      axes = draw(cst.axes(len(shape), min_size=1).filter(bool))
      lengths = [draw(st.integers(1, shape[a] + 2)) for a in axes]
      if real_in:
        inputs = {"input": draw(_values(part, shape))}
      else:
        inputs = {"re": draw(_values(part, shape)), "im": draw(_values(part, shape))}
      attrs = {"Tcomplex": tcomplex}
      if kind in ("rfft", "irfft"):
        attrs["Treal"] = part
      return Example(inputs, attrs, {"fft_length": lengths, "axes": axes})
    return draw()
  return example


def _nd_reference(kind: str, x, lengths, axes):
  """The ND transform of `x` made of TF's 1-D FFT ops."""
  tf = _tf()
  rank = len(x.shape)
  axes = [a % rank for a in axes]
  sizes = list(lengths)
  if kind == "irfft":
    sizes[-1] = lengths[-1] // 2 + 1
  index, pads = [slice(None)] * rank, [[0, 0] for _ in range(rank)]
  for a, n in zip(axes, sizes):
    index[a] = slice(0, n)
    pads[a][1] = max(0, n - x.shape[a])
  x = tf.pad(x[tuple(index)], pads)

  def along(x, a, fn):
    perm = [i for i in range(rank) if i != a] + [a]
    back = [perm.index(i) for i in range(rank)]
    return tf.transpose(fn(tf.transpose(x, perm)), back)

  if kind == "rfft":
    x = along(x, axes[-1], lambda t: tf.signal.rfft(t, [lengths[-1]]))
  one_d = tf.signal.fft if kind in ("fft", "rfft") else tf.signal.ifft
  for a in axes if kind in ("fft", "ifft") else axes[:-1]:
    x = along(x, a, one_d)
  if kind == "irfft":
    x = along(x, axes[-1], lambda t: tf.signal.irfft(t, [lengths[-1]]))
  return x


def _nd_build(kind: str):
  def build(example):
    tf = _tf()
    lengths, axes = example.extra["fft_length"], example.extra["axes"]

    def run(x):
      x = tf.identity(x, name="nd_in")
      return tf.identity(_nd_reference(kind, x, lengths, axes), name="nd_out")
    if kind == "rfft":
      return lambda x: (lambda y: (tf.math.real(y), tf.math.imag(y)))(run(x))
    if kind == "irfft":
      return lambda re, im: run(tf.complex(re, im))
    return lambda re, im: (lambda y: (tf.math.real(y), tf.math.imag(y)))(
        run(tf.complex(re, im)))
  return build


def _nd_rewrite(kind: str):
  def rewrite(graph_def, example):
    """nd_out reads the ND op of nd_in in place of the reference graph."""
    tf = _tf()
    for name in ("fft_length", "axes"):
      const = graph_def.node.add(name=f"nd_{name}", op="Const")
      const.attr["dtype"].type = tf.int32.as_datatype_enum
      const.attr["value"].tensor.CopyFrom(
          tf.make_tensor_proto(np.asarray(example.extra[name], np.int32)))
    node = graph_def.node.add(name="nd_op", op=_ND_OP[kind],
                              input=["nd_in", "nd_fft_length", "nd_axes"])
    for attr, value in example.attrs.items():
      node.attr[attr].type = tf.as_dtype(value).as_datatype_enum
    next(n for n in graph_def.node if n.name == "nd_out").input[0] = "nd_op"
  return rewrite


def _nd_bound(grad: bool):
  def bound(dtype: str, ex: Example) -> Tolerance:
    """As `_fft_bound` over the padded transform (`_fft_grad_bound` for gradients)."""
    base = _fft_grad_bound(dtype, ex) if grad else _fft_bound(dtype, ex)
    part = _PART.get(dtype, dtype)
    n = max([np.size(v) for v in ex.inputs.values()] + [2])
    padded = n * math.prod(ex.extra["fft_length"])  # a generous bound on the sizes
    eps = float(D.finfo(part).eps)
    scale = 20 * padded if grad else sum(
        float(np.sum(np.abs(np.asarray(v, np.float64)))) for v in ex.inputs.values())
    return Tolerance(rtol=base.rtol,
                     atol=base.atol + 4 * eps * (math.log2(padded) + 1) * scale)
  return bound


_ND_NOTE = ("TF has no CPU kernel for it: the reference is the same transform made of "
            "TF's 1-D FFT ops (crop or zero-pad each axis to fft_length, transform each "
            "axis; the real transforms halve the last axis listed), rewritten into the ND "
            "op. Axes drawn negative and unsorted, fft_length from 1 to 2 past the input "
            "length (cropping and zero-padding). Values finite in [-100, 100], complex ones "
            "through their parts.")


def _nd_specs() -> list[OpSpec]:
  out = []
  for kind, kernel_op, attr in (("fft", "FFT", "Tcomplex"), ("ifft", "IFFT", "Tcomplex"),
                                ("rfft", "RFFT", "Treal"), ("irfft", "IRFFT", "Tcomplex")):
    grad_dtypes = ("float32", "float64") if kind == "rfft" else ("complex64", "complex128")
    out.append(OpSpec(_ND_OP[kind], _nd_example(kind), dtype_attr=attr, kernel_op=kernel_op,
                      build=_nd_build(kind), rewrite=_nd_rewrite(kind),
                      grad_dtypes=grad_dtypes, tolerance=_nd_bound(False),
                      grad_tolerance=_nd_bound(True),
                      notes=_ND_NOTE + f" Dtypes: those of {kernel_op}'s CPU kernel."))
  return out


def specs() -> list[OpSpec]:
  out = _nd_specs()
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
