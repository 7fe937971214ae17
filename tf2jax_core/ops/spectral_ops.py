"""Fast Fourier transforms: FFT, IFFT, RFFT, IRFFT in 1, 2 and 3 dimensions."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

from tf2jax_core.lowering import COMPLEX, is_static, lowering

LOWERINGS = []

_REAL_OF = {"complex64": "float32", "complex128": "float64"}


def _complex_fft(op: str, rank: int, inverse: bool) -> None:
  @lowering(op, attrs={"Tcomplex": COMPLEX})
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
