"""Graph structure: constants, identities, gradients barriers, asserts, calls and
variables (resource handles; more variable ops in variable_ops.py)."""

from __future__ import annotations

import dataclasses
import logging

import jax
import jax.numpy as jnp
import ml_dtypes
import numpy as np

from tf2jax_core.errors import ConversionError, MissingInputError
from tf2jax_core.lowering import FLOAT, is_static, lowering
from tf2jax_core.ops.array_ops import _known
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


@lowering("Identity", "Snapshot", attrs={"T": None}, needs_context=True)
def identity(node):
  # An Identity of a TF1 reference variable reads it (`v/read`, `v.read_value()`): now,
  # so after the Assigns its control inputs order before it.
  return lambda ctx, x: read_ref(ctx, node, x) if isinstance(x, RefVariable) else x


@lowering("GuaranteeConst", attrs={"T": None})
def guarantee_const(node):
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


# Asserts. TF raises when one fails; XLA has no runtime errors. So a check whose values
# are known (static, or concrete outside jit) raises now, with TF's message; a traced
# one becomes a jax.experimental.checkify check with the enable_checkify_for_asserts
# flag (run the function under checkify.checkify to see it fail), and is dropped
# otherwise.


def _check(node, checkify_on: bool, ok, message: str, args=(), limit: int = -1) -> None:
  """Fails like TF when `ok` is known to be False; checkify or nothing when traced.
  `message` is a str.format pattern of `args` (tensors)."""
  known = _known(ok)
  if known is not None:
    if not bool(np.all(known)):
      raise ValueError(message.format(*[_summary(_known(a), limit) for a in args]))
  elif checkify_on:
    from jax.experimental import checkify
    checkify.check(jnp.all(ok), f"{node.op} node {node.path!r}: {message}", *args)


def _item(v) -> str:
  if isinstance(v, (bytes, str)):
    return v.decode(errors="replace") if isinstance(v, bytes) else v
  text = str(v)
  return text[:-2] if text.endswith(".0") else text


def _summary(x, limit: int) -> str:
  """A tensor as TF's Assert prints it: nested brackets, the first `limit` values."""
  if x is None:
    return "<traced>"
  flat = np.ravel(x)
  items = [_item(v) for v in flat[:flat.size if limit < 0 else limit]]
  if len(items) < flat.size:
    return "[" + " ".join(items) + "...]"
  for d in reversed(np.shape(x)):
    items = [" ".join(items[k:k + d]) for k in range(0, len(items), d)] if d else [""]
    items = ["[" + i + "]" for i in items]
  return items[0] if np.ndim(x) else "[" + items[0] + "]"


def _is_string(x) -> bool:
  return isinstance(x, np.ndarray) and x.dtype == object


@lowering("CheckNumerics", "CheckNumericsV2", attrs={"T": FLOAT, "message": None})
def check_numerics(node):
  message = node.attrs.get("message", "").replace("{", "{{").replace("}", "}}")
  v2 = node.op == "CheckNumericsV2"
  checkify_on = node.config("enable_checkify_for_asserts")

  def run(x):
    known = _known(x)
    if known is None:
      _check(node, checkify_on, jnp.isfinite(x), f"{message} : Tensor had NaN or Inf values")
      return x
    known = known.astype(np.float64)
    nan, neg, pos = np.isnan(known).any(), (known == -np.inf).any(), (known == np.inf).any()
    found = ((["-Inf"] if neg else []) + (["+Inf"] if pos else []) if v2 else
             (["Inf"] if neg or pos else [])) + (["NaN"] if nan else [])
    if found:
      what = (", ".join(found[:-1]) + ", and " + found[-1] if len(found) == 3 else
              " and ".join(found))
      raise ValueError(f"{message} : Tensor had {what} values")
    return x
  return run


@lowering("Assert", attrs={"T": None, "summarize": None})
def assert_(node):
  summarize = node.attrs.get("summarize", 3)
  checkify_on = node.config("enable_checkify_for_asserts")

  def run(condition, *data):
    if np.shape(condition):
      raise ValueError(f"In[0] should be a scalar: {list(np.shape(condition))}")
    # Strings (static) go into the message; tensors are its format arguments.
    shown = [_summary(d, summarize).replace("{", "{{").replace("}", "}}") if _is_string(d)
             else "{}" for d in data]
    _check(node, checkify_on, condition, "assertion failed: " + " ".join(shown),
           [d for d in data if not _is_string(d)], summarize)
  return run


@lowering("PrintV2", attrs={"output_stream": None, "end": None})
def print_v2(node):
  # Printing is a side effect JAX does not order with the rest; the converted function
  # prints nothing (its input is the formatted string, usually made by StringFormat).
  return lambda _: None


@lowering("Print", attrs={"T": None, "U": None, "message": None, "first_n": None,
                         "summarize": None})
def print_v1(node):
  # TF1's Print: its output is its input; printing `message` and the data to stderr is a
  # side effect that, as for PrintV2, the converted function leaves out.
  return lambda x, *data: x


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


@dataclasses.dataclass(frozen=True)
class RefVariable(VariableRef):
  """The value of a TF1 reference variable (VariableV2): read when a node uses it."""


def _param(ctx, node, ref: VariableRef):
  if ref.name not in ctx.params:
    if isinstance(ref, RefVariable):
      raise ConversionError(
          f"{node.op} node {node.path!r} reads TF1 variable {ref.name!r} before any Assign "
          f"gives it a value, and params lack it (params have {sorted(ctx.params)[:10]}). "
          "Pass its value in params, named after its VariableV2 node (tf2jax.convert "
          "returns jax_fn(params, ...)), or freeze the graph.")
    raise ConversionError(
        f"{node.op} node {node.path!r} reads variable {ref.name!r}, which params lack "
        f"(params have {sorted(ctx.params)[:10]}). Pass the params returned by convert().")
  return ctx.params[ref.name]


def read_ref(ctx, node, ref: VariableRef):
  """The current value of a variable, as a JAX array (never a static constant)."""
  value = _param(ctx, node, ref)
  return jnp.asarray(value) if isinstance(value, np.ndarray) else value


@lowering("VarHandleOp", attrs={"container": None, "shared_name": None, "dtype": None,
                                "shape": None, "allowed_devices": None, "debug_name": None})
def var_handle(node):
  ref = VariableRef(node.attrs.get("shared_name") or node.name)
  return lambda: ref


@lowering("ReadVariableOp", attrs={"dtype": None}, needs_context=True)
def read_variable(node):
  return lambda ctx, handle: read_ref(ctx, node, _ref(node, handle))


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
