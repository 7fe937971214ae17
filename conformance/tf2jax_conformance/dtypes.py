"""Dtype names, groups and TensorFlow's kernel registry.

Dtypes are handled by their TF names ("float32", "bfloat16", "int4", ...); `np_dtype`
turns a name into the NumPy dtype (ml_dtypes for bfloat16, float8 and int4).
"""

from __future__ import annotations

import functools

import ml_dtypes
import numpy as np

BOOL = ("bool",)
SIGNED_INT = ("int8", "int16", "int32", "int64")
UNSIGNED_INT = ("uint8", "uint16", "uint32", "uint64")
INT = SIGNED_INT + UNSIGNED_INT
FLOAT = ("float16", "bfloat16", "float32", "float64")
COMPLEX = ("complex64", "complex128")
FLOAT8 = ("float8_e5m2", "float8_e4m3fn", "float8_e4m3fnuz", "float8_e4m3b11fnuz",
          "float8_e5m2fnuz")
NARROW_INT = ("int4", "uint4", "int2", "uint2")
FLOAT4 = ("float4_e2m1fn",)
NUMBER = FLOAT + COMPLEX + INT
REAL = FLOAT + INT
# Every dtype a TF tensor, a NumPy array and a JAX array can all hold.
ALL = BOOL + NUMBER + FLOAT8 + FLOAT4 + NARROW_INT

# Dtypes TF holds in eager tensors but cannot write into a graph's constants (TensorProto
# has no such element type), so graphs cannot bake them in.
NO_GRAPH_CONSTANT = ("float8_e4m3fnuz", "float8_e4m3b11fnuz", "float8_e5m2fnuz")

# TF dtypes that no JAX array can hold: a spec never needs to give a reason for these.
NOT_IN_JAX = {
    "string": "JAX has no string dtype",
    "resource": "a resource handle is not a value (variables are covered by their own specs)",
    "variant": "a variant (TensorList, dataset, ...) is not a value JAX can hold",
    "qint8": "JAX has no quantized dtypes",
    "quint8": "JAX has no quantized dtypes",
    "qint16": "JAX has no quantized dtypes",
    "quint16": "JAX has no quantized dtypes",
    "qint32": "JAX has no quantized dtypes",
}

_ML_DTYPES = set(FLOAT8 + NARROW_INT + FLOAT4 + ("bfloat16",))


def np_dtype(name: str) -> np.dtype:
  """The NumPy dtype of a TF dtype name."""
  if name in _ML_DTYPES:
    return np.dtype(getattr(ml_dtypes, name))
  return np.dtype(name)


def name_of(dtype) -> str:
  """The TF name of a NumPy/TF/JAX dtype."""
  if hasattr(dtype, "as_numpy_dtype") and hasattr(dtype, "is_floating"):  # tf.DType
    return dtype.name
  return np.dtype(dtype).name


def is_64bit(name: str) -> bool:
  return name in ("int64", "uint64", "float64", "complex128")


def is_float(name: str) -> bool:
  return name in FLOAT or name in FLOAT8 or name in FLOAT4


def is_inexact(name: str) -> bool:
  return is_float(name) or name in COMPLEX


def finfo(name: str):
  return ml_dtypes.finfo(np_dtype(name))


def iinfo(name: str):
  return ml_dtypes.iinfo(np_dtype(name))


def _tf_name(enum: int) -> str:
  from tensorflow.python.framework import dtypes as tf_dtypes
  try:
    return tf_dtypes.as_dtype(enum).name
  except Exception:
    return f"enum{enum}"


@functools.lru_cache(maxsize=None)
def kernel_dtypes(op: str, attr: str, device: str = "CPU") -> frozenset[str] | None:
  """The dtypes TF's `device` kernels of `op` accept for type attr `attr`.

  Read from `tensorflow.python.framework.kernels.get_registered_kernels_for_op`, and
  limited to what the op's definition allows (a kernel registered for more is unusable).
  None when some kernel does not constrain `attr` (it accepts any dtype); an empty set
  when `op` has no kernel on `device`.
  """
  from tensorflow.python.framework import kernels, op_def_registry
  if device.startswith("XLA_"):
    _load_xla_kernels()
  op_def = op_def_registry.get(op)
  allowed = None  # what the op's definition allows (kernels may exist for more)
  for a in (op_def.attr if op_def is not None else ()):
    if a.name == attr and a.HasField("allowed_values") and len(a.allowed_values.list.type):
      allowed = {_tf_name(t) for t in a.allowed_values.list.type}
  found: set[str] = set()
  any_kernel = False
  for kernel in kernels.get_registered_kernels_for_op(op).kernel:
    if kernel.device_type != device:
      continue
    any_kernel = True
    constraint = [c for c in kernel.constraint if c.name == attr]
    if not constraint:
      return None if allowed is None else frozenset(allowed)
    for c in constraint:
      found.update(_tf_name(t) for t in c.allowed_values.list.type)
  if allowed is not None:
    found &= allowed
  return frozenset(found) if any_kernel else frozenset()


@functools.lru_cache(maxsize=None)
def _load_xla_kernels() -> None:
  """TF registers its XLA_* kernels when XLA first compiles something."""
  import tensorflow as tf
  tf.function(lambda x: x + 1, jit_compile=True)(tf.constant(1.0))
