"""Fast Fourier transforms: FFT, IFFT, RFFT, IRFFT in 1, 2 and 3 dimensions (and the
old BatchFFT* names of FFT and IFFT), and their ND forms (FFTND, ...) over given axes.

The ND ops (which TF runs only on GPU) crop or zero-pad each transformed axis to its
fft_length, as numpy.fft's *fftn do; the real transforms halve the last axis listed.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

from tf2jax_core.lowering import COMPLEX, is_static, lowering

LOWERINGS = []

_REAL_OF = {"complex64": "float32", "complex128": "float64"}


def _complex_fft(op: str, rank: int, inverse: bool, attrs=None) -> None:
  @lowering(op, attrs={"Tcomplex": COMPLEX} if attrs is None else attrs)
  def build(node):
    def run(x):
      if np.ndim(x) < rank:
        raise ValueError(f"{op}: input must have rank >= {rank}, got shape "
                         f"{list(np.shape(x))}")
      axes = tuple(range(-rank, 0))
      if is_static(x):
        fn = np.fft.ifftn if inverse else np.fft.fftn
        return fn(x, axes=axes).astype(x.dtype) if x.size else x.copy()
      if x.size == 0:
        return jnp.asarray(x)
      fn = jnp.fft.ifftn if inverse else jnp.fft.fftn
      return fn(x, axes=axes).astype(x.dtype)
    return run
  LOWERINGS.append(build)


def _fft_lengths(op: str, rank: int, x, fft_length, inverse: bool) -> tuple[int, ...]:
  lengths = tuple(int(n) for n in np.reshape(fft_length, -1))
  if len(lengths) != rank:
    raise ValueError(f"{op}: fft_length must hold {rank} values, got {list(lengths)}")
  if np.ndim(x) < rank:
    raise ValueError(f"{op}: input must have rank >= {rank}, got shape {list(np.shape(x))}")
  if any(n <= 0 for n in lengths):
    raise ValueError(f"{op}: fft_length must be positive, got {list(lengths)}")
  # TF crops the input to fft_length but does not zero-pad it.
  need = list(lengths)
  if inverse:
    need[-1] = lengths[-1] // 2 + 1
  shape = np.shape(x)[-rank:]
  for i, (d, n) in enumerate(zip(shape, need)):
    if d < n:
      raise ValueError(f"{op}: input dimension {np.ndim(x) - rank + i} must have length "
                       f"at least {n} for fft_length {list(lengths)}, got input shape "
                       f"{list(np.shape(x))}")
  return lengths


def _real_fft(op: str, rank: int, inverse: bool) -> None:
  @lowering(op, attrs={"Treal": ("float32", "float64"), "Tcomplex": COMPLEX},
            static_inputs=(1,))
  def build(node):
    treal, tcomplex = (np.dtype(node.attrs.get(k)).name for k in ("Treal", "Tcomplex"))
    if _REAL_OF[tcomplex] != treal:
      raise ValueError(f"{op}: no kernel for Treal={treal} with Tcomplex={tcomplex}")

    def run(x, fft_length):
      lengths = _fft_lengths(op, rank, x, fft_length, inverse)
      axes = tuple(range(-rank, 0))
      # Crop the input to what the transform reads.
      index = [slice(None)] * (np.ndim(x) - rank) + [slice(0, n) for n in lengths]
      if inverse:
        index[-1] = slice(0, lengths[-1] // 2 + 1)
      x = x[tuple(index)]
      out_dtype = treal if inverse else tcomplex
      batch = np.shape(x)[:-rank]
      if is_static(x):
        if int(np.prod(batch)) == 0:
          return np.zeros(batch + _out_tail(lengths, inverse), out_dtype)
        fn = np.fft.irfftn if inverse else np.fft.rfftn
        return fn(x, s=lengths, axes=axes).astype(out_dtype)
      if int(np.prod(batch)) == 0:
        return jnp.zeros(batch + _out_tail(lengths, inverse), out_dtype)
      fn = jnp.fft.irfftn if inverse else jnp.fft.rfftn
      return fn(x, s=lengths, axes=axes).astype(out_dtype)
    return run
  LOWERINGS.append(build)


def _out_tail(lengths, inverse):
  return tuple(lengths) if inverse else tuple(lengths[:-1]) + (lengths[-1] // 2 + 1,)


for _rank, _suffix in ((1, ""), (2, "2D"), (3, "3D")):
  _complex_fft("FFT" + _suffix, _rank, inverse=False)
  _complex_fft("IFFT" + _suffix, _rank, inverse=True)
  _real_fft("RFFT" + _suffix, _rank, inverse=False)
  _real_fft("IRFFT" + _suffix, _rank, inverse=True)
  # The ops of GraphDef versions < 15: complex64 only, no Tcomplex attr.
  _complex_fft("BatchFFT" + _suffix, _rank, inverse=False, attrs={})
  _complex_fft("BatchIFFT" + _suffix, _rank, inverse=True, attrs={})


def _nd_plan(op: str, x, fft_length, axes) -> tuple[list[int], list[int]]:
  """The fft lengths and the (non-negative) axes, checked."""
  lengths = [int(n) for n in np.reshape(fft_length, -1)]
  given = [int(a) for a in np.reshape(axes, -1)]
  rank = np.ndim(x)
  if len(lengths) != len(given) or not given:
    raise ValueError(f"{op}: fft_length {lengths} and axes {given} must be non-empty "
                     "vectors of the same length")
  if any(not -rank <= a < rank for a in given):
    raise ValueError(f"{op}: axes {given} out of range for an input of rank {rank}")
  axes = [a % rank for a in given]
  if len(set(axes)) != len(axes):
    raise ValueError(f"{op}: axes {given} name an axis twice")
  if any(n <= 0 for n in lengths):
    raise ValueError(f"{op}: fft_length must be positive, got {lengths}")
  return lengths, axes


def _resize(m, x, axes, sizes):
  """Crops or zero-pads `x` along `axes` to `sizes`."""
  index, pads = [slice(None)] * np.ndim(x), [(0, 0)] * np.ndim(x)
  for a, n in zip(axes, sizes):
    index[a] = slice(0, n)
    pads[a] = (0, max(0, n - np.shape(x)[a]))
  return m.pad(x[tuple(index)], pads)


def _nd_fft(op: str, kind: str) -> None:
  """kind: "fft", "ifft", "rfft" or "irfft"."""
  real = kind in ("rfft", "irfft")
  attrs = {"Tcomplex": COMPLEX}
  if real:
    attrs["Treal"] = ("float32", "float64")

  @lowering(op, attrs=attrs, static_inputs=(1, 2))
  def build(node):
    tcomplex = np.dtype(node.attrs.get("Tcomplex", "complex64")).name
    out_dtype = tcomplex
    if real:
      treal = np.dtype(node.attrs.get("Treal", "float32")).name
      if _REAL_OF[tcomplex] != treal:
        raise ValueError(f"{op}: no kernel for Treal={treal} with Tcomplex={tcomplex}")
      out_dtype = treal if kind == "irfft" else tcomplex

    def run(x, fft_length, axes):
      lengths, axes = _nd_plan(op, x, fft_length, axes)
      sizes = list(lengths)
      if kind == "irfft":
        sizes[-1] = lengths[-1] // 2 + 1
      m = np if is_static(x) else jnp
      x = _resize(m, x, axes, sizes)
      if kind == "rfft":
        sizes[-1] = lengths[-1] // 2 + 1
      if m is np and x.size == 0:
        shape = list(x.shape)
        for a, n in zip(axes, lengths if kind == "irfft" else sizes):
          shape[a] = n
        return np.zeros(shape, out_dtype)
      fn = getattr(m.fft, kind + "n")
      extra = {"s": lengths} if kind == "irfft" else {}
      return fn(x, axes=axes, **extra).astype(out_dtype)
    return run
  LOWERINGS.append(build)


for _kind in ("fft", "ifft", "rfft", "irfft"):
  _nd_fft(_kind.upper() + "ND", _kind)
