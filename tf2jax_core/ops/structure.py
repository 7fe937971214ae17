"""Graph structure: constants, identities, gradients barriers, calls and variables."""

from __future__ import annotations

import logging

import jax
import ml_dtypes
import numpy as np

from tf2jax_core.errors import ConversionError, MissingInputError
from tf2jax_core.lowering import is_static, lowering
from tf2jax_core.walker import VariableRef

_CALL_ATTRS = {"f": None, "Tin": None, "Tout": None, "config": None, "config_proto": None,
               "executor_type": None}


@lowering("Placeholder", attrs={"dtype": None, "shape": None})
def placeholder(node):
  raise MissingInputError(
      f"Placeholder {node.path!r} is not an input of the converted function, so nothing "
      "can feed it.")


@lowering("PlaceholderWithDefault", attrs={"dtype": None, "shape": None})
def placeholder_with_default(node):
  return lambda x: x


@lowering("Const", attrs={"value": None, "dtype": None})
def const(node):
  value = node.attrs["value"]
  to_bf16 = ((value.dtype == np.float32 and node.config("force_const_float32_to_bfloat16"))
             or (value.dtype == np.float64 and node.config("force_const_float64_to_bfloat16")))
  if to_bf16:
    value = value.astype(ml_dtypes.bfloat16)
    node.output_dtypes = (value.dtype,)
  return lambda: value


@lowering("Identity", "Snapshot", attrs={"T": None})
def identity(node):
  return lambda x: x


@lowering("IdentityN", attrs={"T": None})
def identity_n(node):
  # A `_gradient_op_type` attr marks a custom gradient: the converter then takes the
  # function's backward pass from TF (see api._with_tf_gradient).
  return lambda *xs: list(xs)


@lowering("EnsureShape", attrs={"T": None, "shape": None})
def ensure_shape(node):
  """Shapes are static in JAX: checked when the function is traced (or called op by op),
  with TF's message; the value passes through."""
  expected = node.attrs["shape"]

  def run(x):
    shape = tuple(np.shape(x))
    if expected is not None and (len(expected) != len(shape) or any(
        e is not None and e != d for e, d in zip(expected, shape))):
      want = [-1 if e is None else e for e in expected]
      raise ValueError(f"EnsureShape node {node.path!r}: shape of tensor {list(shape)} is not "
                       f"compatible with expected shape {want}.")
    return x
  return run


@lowering("NoOp")
def no_op(node):
  return lambda *_: None


@lowering("StopGradient", attrs={"T": None})
def stop_gradient(node):
  return lambda x: x if is_static(x) else jax.lax.stop_gradient(x)


@lowering("PreventGradient", attrs={"T": None, "message": None})
def prevent_gradient(node):
  message = node.attrs.get("message", "")
  strict = node.config("raise_on_prevent_gradient")
  where = f"PreventGradient node {node.path!r}"

  @jax.custom_vjp
  def prevent(x):
    return x

  def fwd(x):
    return x, None

  def bwd(_, g):
    if strict:
      raise LookupError(
          f"Gradient explicitly disabled by {where}: {message!r}. Set "
          "tf2jax.override_config('raise_on_prevent_gradient', False) when converting to "
          "differentiate anyway.")
    logging.warning("Differentiating through %s (%r).", where, message)
    return (g,)

  prevent.defvjp(fwd, bwd)
  return lambda x: x if is_static(x) else prevent(x)


@lowering("PartitionedCall", "StatefulPartitionedCall", attrs=_CALL_ATTRS,
          needs_context=True)
def partitioned_call(node):
  function = node.function(node.attrs["f"].name)
  return lambda ctx, *args: ctx.call(function, args)


# Variables: resource handles evaluate to VariableRefs naming entries of params.

def _ref(node, value) -> VariableRef:
  if not isinstance(value, VariableRef):
    raise ConversionError(
        f"{node.op} node {node.path!r} expects a variable handle, got {type(value).__name__}.")
  return value


def _param(ctx, node, ref: VariableRef):
  if ref.name not in ctx.params:
    raise ConversionError(
        f"{node.op} node {node.path!r} reads variable {ref.name!r}, which params lack "
        f"(params have {sorted(ctx.params)[:10]}). Pass the params returned by convert().")
  return ctx.params[ref.name]


@lowering("VarHandleOp", attrs={"container": None, "shared_name": None, "dtype": None,
                                "shape": None, "allowed_devices": None, "debug_name": None})
def var_handle(node):
  ref = VariableRef(node.attrs.get("shared_name") or node.name)
  return lambda: ref


@lowering("ReadVariableOp", attrs={"dtype": None}, needs_context=True)
def read_variable(node):
  def run(ctx, handle):
    value = _param(ctx, node, _ref(node, handle))
    return jax.numpy.asarray(value) if isinstance(value, np.ndarray) else value
  return run


@lowering("AssignVariableOp", attrs={"dtype": None, "validate_shape": None},
          needs_context=True)
def assign_variable(node):
  def run(ctx, handle, value):
    ctx.params[_ref(node, handle).name] = value
  return run


@lowering("AssignAddVariableOp", "AssignSubVariableOp", attrs={"dtype": None},
          needs_context=True)
def assign_update_variable(node):
  sign = 1 if node.op == "AssignAddVariableOp" else -1

  def run(ctx, handle, value):
    ref = _ref(node, handle)
    old = jax.numpy.asarray(_param(ctx, node, ref))
    ctx.params[ref.name] = old + value if sign > 0 else old - value
  return run
