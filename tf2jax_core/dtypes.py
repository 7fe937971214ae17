"""TensorFlow DataType enums as NumPy dtypes (bfloat16 and float8 via ml_dtypes)."""

from __future__ import annotations

import ml_dtypes
import numpy as np

from tf2jax_core.errors import ConversionError

RESOURCE = "resource"
VARIANT = "variant"

# DataType enum values, from tensorflow/core/framework/types.proto.
_BY_ENUM: dict[int, np.dtype | str] = {
    1: np.dtype(np.float32),
    2: np.dtype(np.float64),
    3: np.dtype(np.int32),
    4: np.dtype(np.uint8),
    5: np.dtype(np.int16),
    6: np.dtype(np.int8),
    7: np.dtype(object),  # string
    8: np.dtype(np.complex64),
    9: np.dtype(np.int64),
    10: np.dtype(np.bool_),
    14: np.dtype(ml_dtypes.bfloat16),
    17: np.dtype(np.uint16),
    18: np.dtype(np.complex128),
    19: np.dtype(np.float16),
    20: RESOURCE,
    21: VARIANT,
    22: np.dtype(np.uint32),
    23: np.dtype(np.uint64),
    24: np.dtype(ml_dtypes.float8_e5m2),
    25: np.dtype(ml_dtypes.float8_e4m3fn),
    26: np.dtype(ml_dtypes.float8_e4m3fnuz),
    27: np.dtype(ml_dtypes.float8_e4m3b11fnuz),
    28: np.dtype(ml_dtypes.float8_e5m2fnuz),
    29: np.dtype(ml_dtypes.int4),
    30: np.dtype(ml_dtypes.uint4),
    31: np.dtype(ml_dtypes.int2),
    32: np.dtype(ml_dtypes.uint2),
    33: np.dtype(ml_dtypes.float4_e2m1fn),
}
_QUANTIZED = {11: "qint8", 12: "quint8", 13: "qint32", 15: "qint16", 16: "quint16"}
# Quantized values are held as the integers of their width and sign (qint8 -> int8, ...):
# only the ops made for them (QuantizeV2, Dequantize, ...) give them a meaning.
_QUANTIZED_AS = {11: np.dtype(np.int8), 12: np.dtype(np.uint8), 13: np.dtype(np.int32),
                 15: np.dtype(np.int16), 16: np.dtype(np.uint16)}
_ENUM_BY_DTYPE = {v: k for k, v in _BY_ENUM.items() if isinstance(v, np.dtype)}


def from_enum(enum: int, where: str = "") -> np.dtype | str:
  """The dtype of a TF DataType enum (a quantized one as its integer dtype); a typed
  error for ref or invalid ones."""
  dtype = _BY_ENUM.get(enum, _QUANTIZED_AS.get(enum))
  if dtype is not None:
    return dtype
  at = f" ({where})" if where else ""
  if 100 < enum < 200 and (enum - 100) in _BY_ENUM:
    raise ConversionError(
        f"Reference dtype {enum}{at}: TF1 reference variables are not supported; "
        "re-export the model with resource variables (TF2) or freeze the graph.")
  raise ConversionError(f"Invalid TensorFlow DataType enum {enum}{at}.")


def to_enum(dtype) -> int:
  return _ENUM_BY_DTYPE[np.dtype(dtype)]


def is_64bit(dtype) -> bool:
  """Whether JAX needs x64 mode for this dtype."""
  if not isinstance(dtype, np.dtype):
    return False
  return (dtype.kind in "iuf" and dtype.itemsize == 8) or dtype == np.complex128


_TRUNCATED = {"int64": "int32", "uint64": "uint32", "float64": "float32",
              "complex128": "complex64"}


def truncated_without_x64(want, got) -> bool:
  """Whether `got` is what JAX without x64 makes of the 64-bit dtype `want`."""
  import jax
  return (not jax.config.jax_enable_x64 and isinstance(want, np.dtype)
          and _TRUNCATED.get(want.name) == np.dtype(got).name)


def name(dtype) -> str:
  return dtype if isinstance(dtype, str) else np.dtype(dtype).name
