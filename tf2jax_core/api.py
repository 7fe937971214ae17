"""The user API: convert a TF function into a JAX function.

`convert(fn, *args)` -> `(jax_fn, params)` with `jax_fn(params, *args, rng=None, **kw)`
returning `(outputs, new_params)`; `convert_functional` drops params for pure functions;
the `_from_restored` variants take a restored SavedModel function without retracing.
"""

from __future__ import annotations

import inspect
import re
from typing import Any, Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np
import tree

from tf2jax_core import config as config_lib
from tf2jax_core import dtypes
from tf2jax_core import plugins
from tf2jax_core.errors import (ConversionError, DtypeMismatchError, InputSpecError,
                                MissingRngError, VariablesNotSupportedError)
from tf2jax_core.graph import Library, parse_tensor_name, read_graph
from tf2jax_core.walker import CallContext, Session, VariableRef, x64_message

VARIABLE_OPS = ("VarHandleOp",)


class Variable(np.ndarray):
  """A parameter value: a NumPy array that also carries `.name` and `.trainable`."""

  def __new__(cls, value, name: str, trainable: bool = True):
    obj = np.asarray(value).view(cls)
    obj.name = name
    obj.trainable = trainable
    return obj

  def __array_finalize__(self, obj):
    self.name = getattr(obj, "name", None)
    self.trainable = getattr(obj, "trainable", True)

  def __reduce__(self):
    return (Variable, (np.asarray(self), self.name, self.trainable))


class AnnotatedFunction:
  """A converted function with the TF function's input and output specs.

  `structured_inputs` is the `(args, kwargs)` tree of `tf.TensorSpec`s it was converted
  for, `structured_outputs` the tree of output specs, `signature` its call signature.
  """

  def __init__(self, fn: Callable, structured_inputs, structured_outputs,
               signature: inspect.Signature, name: str, doc: str | None, converted=None):
    self._fn = fn
    self.structured_inputs = structured_inputs
    self.structured_outputs = structured_outputs
    self.signature = signature
    self.__signature__ = signature
    self.__name__ = name
    self.__qualname__ = name
    self.__doc__ = doc
    self.converted = converted

  def __call__(self, *args, **kwargs):
    return self._fn(*args, **kwargs)

  def __repr__(self) -> str:
    return f"<tf2jax.AnnotatedFunction {self.__name__}{self.signature}>"


def convert(fn, *args, **kwargs) -> tuple[AnnotatedFunction, dict]:
  """Converts `fn` traced with example `args`/`kwargs` (arrays or `tf.TensorSpec`s).

  Returns `(jax_fn, params)`; `jax_fn(params, *args, rng=None, **kwargs)` returns
  `(outputs, new_params)`.
  """
  return _convert(_concrete_function(fn, args, kwargs), functional=False)


def convert_functional(fn, *args, **kwargs) -> AnnotatedFunction:
  """Like `convert` for functions without variables: `jax_fn(*args, rng=None, **kwargs)`."""
  return _convert(_concrete_function(fn, args, kwargs), functional=True)[0]


def convert_from_restored(fn) -> tuple[AnnotatedFunction, dict]:
  """Converts a restored SavedModel function traced exactly once, without retracing."""
  return _convert(_restored_concrete_function(fn), functional=False)


def convert_functional_from_restored(fn) -> AnnotatedFunction:
  """`convert_from_restored` for functions without variables."""
  return _convert(_restored_concrete_function(fn), functional=True)[0]


# Tracing ---------------------------------------------------------------------


def _concrete_function(fn, args, kwargs):
  import tensorflow as tf
  if isinstance(fn, _concrete_function_type()):
    if args or kwargs:
      raise ConversionError("A ConcreteFunction is already traced: pass no example inputs.")
    return fn
  if not hasattr(fn, "get_concrete_function"):
    if not callable(fn):
      raise TypeError(f"convert() takes a tf.function or a callable, got {type(fn).__name__}.")
    fn = tf.function(fn)
  specs_args, specs_kwargs = tree.map_structure(_to_spec, (args, kwargs))
  return fn.get_concrete_function(*specs_args, **specs_kwargs)


def _concrete_function_type():
  from tensorflow.python.eager.polymorphic_function import concrete_function
  return concrete_function.ConcreteFunction


def _to_spec(x):
  import tensorflow as tf
  if isinstance(x, (tf.TensorSpec, tf.TypeSpec)) or x is None or isinstance(x, (bool, str)):
    return x
  if isinstance(x, (int, float, complex)):
    return tf.TensorSpec((), tf.convert_to_tensor(x).dtype)
  if hasattr(x, "shape") and hasattr(x, "dtype"):
    dtype = tf.as_dtype(np.dtype(x.dtype)) if not isinstance(x, tf.Tensor) else x.dtype
    return tf.TensorSpec(tuple(x.shape), dtype)
  return tf.TensorSpec.from_tensor(tf.convert_to_tensor(x))


def _restored_concrete_function(fn):
  if isinstance(fn, _concrete_function_type()):
    return fn
  concrete = list(getattr(fn, "concrete_functions", None) or [])
  if not concrete and hasattr(fn, "_list_all_concrete_functions_for_serialization"):
    concrete = list(fn._list_all_concrete_functions_for_serialization())
  if len(concrete) != 1:
    sigs = "; ".join(str(c.structured_input_signature) for c in concrete) or "none"
    raise ConversionError(
        f"convert_from_restored needs a function traced exactly once; this one has "
        f"{len(concrete)} traced signature(s) ({sigs}). Use tf2jax.convert(fn, *example_args)"
        " to pick one.")
  return concrete[0]


# Conversion ------------------------------------------------------------------


def _convert(cf, functional: bool) -> tuple[AnnotatedFunction, dict]:
  import tensorflow as tf
  name = _display_name(cf)
  what = f"TF function {name!r}"
  graph_def = cf.graph.as_graph_def()
  manager = plugins.manager()
  table = manager.op_table()
  library = Library.from_graph_def(graph_def)
  session = Session(table, library, manager.graph_rewrites(), what)
  graph = read_graph(graph_def)
  session.rewrite(graph)

  placeholders = [t.op.name for t in cf.inputs]
  num_captured = len(cf.captured_inputs)
  user_placeholders = placeholders[:len(placeholders) - num_captured]
  captured, variables = _captures(cf, placeholders[len(user_placeholders):], functional)

  # Structured outputs hold graph tensors (traced functions) or TensorSpecs (restored
  # ones); either way they line up with `cf.outputs`.
  flat_outputs = tree.flatten(cf.structured_outputs)
  out_leaf_is_tensor = [isinstance(leaf, (tf.Tensor, tf.TensorSpec)) for leaf in flat_outputs]
  for leaf in flat_outputs:
    if isinstance(leaf, (tf.TypeSpec, tf.__internal__.CompositeTensor)) and not isinstance(
        leaf, tf.TensorSpec):
      raise ConversionError(f"{what}: composite outputs ({type(leaf).__name__}) are not "
                            "supported; return plain tensors.")
  if sum(out_leaf_is_tensor) != len(cf.outputs):
    raise ConversionError(f"{what}: {len(cf.outputs)} output tensors do not match its "
                          f"structured outputs {cf.structured_outputs}.")
  out_refs = [parse_tensor_name(t.name) for t in cf.outputs]
  tensors = iter(cf.outputs)
  out_specs = [tf.TensorSpec(next(tensors).shape, leaf.dtype) if is_tensor else leaf
               for is_tensor, leaf in zip(out_leaf_is_tensor, flat_outputs)]
  compiled = session.compile_graph(graph, placeholders, out_refs)
  session.raise_if_unsupported(manager.install_hint)

  variable_nodes = [n for g in [graph] + [library.graph(f) for f in session.functions]
                    for n in g.nodes.values() if n.op in VARIABLE_OPS]
  if functional and (variables or variable_nodes):
    names = [v[0] for v in variables] + [n.path for n in variable_nodes]
    raise VariablesNotSupportedError(
        f"{what} uses variables ({', '.join(names[:5])}), so convert_functional cannot "
        "drop its params: use tf2jax.convert, which returns (jax_fn, params).")

  params = _read_params(what, variables)
  sig_args, sig_kwargs = cf.structured_input_signature
  binder = _InputBinder(what, cf, sig_args, sig_kwargs, len(user_placeholders))
  random_nodes = list(session.random_nodes)
  structure = cf.structured_outputs

  def run(params: dict, args, kwargs, rng):
    flat_inputs = binder.bind(args, kwargs)
    if random_nodes and rng is None:
      listed = ", ".join(f"{n.op} ({n.path!r})" for n in random_nodes[:5])
      raise MissingRngError(
          f"{what} uses random ops: {listed}. Call it with a PRNG key, e.g. "
          "jax_fn(..., rng=jax.random.PRNGKey(0)).")
    ctx = CallContext(dict(params), rng)
    outs = compiled.run(ctx, list(flat_inputs) + captured)
    flat, it = [], iter(outs)
    for is_tensor, leaf in zip(out_leaf_is_tensor, flat_outputs):
      flat.append(_as_output(next(it), what) if is_tensor else leaf)
    return tree.unflatten_as(structure, flat), ctx.params

  doc = f"JAX version of {what}, converted by tf2jax."
  in_specs = (sig_args, sig_kwargs)
  out_struct = tree.unflatten_as(structure, out_specs) if flat_outputs else structure
  if functional:
    def jax_fn(*args, rng=None, **kwargs):
      return run({}, args, kwargs, rng)[0]
    sig = binder.signature(with_params=False)
    params = {}
  else:
    def jax_fn(params, *args, rng=None, **kwargs):
      return run(params, args, kwargs, rng)
    sig = binder.signature(with_params=True)
  fn = AnnotatedFunction(jax_fn, in_specs, out_struct, sig, name, doc, converted=compiled)
  return fn, params


def _display_name(cf) -> str:
  name = getattr(cf, "name", "function")
  name = name.decode() if isinstance(name, bytes) else str(name)
  match = re.fullmatch(r"__inference_(.+?)_\d+", name)
  return match.group(1) if match else name


def _captures(cf, placeholders: Sequence[str], functional: bool):
  """Feeds for captured placeholders, and the captured variables as (name, var)."""
  import tensorflow as tf
  by_handle = {id(v.handle): v for v in cf.variables}
  feeds, variables, used = [], [], {}
  for placeholder, captured in zip(placeholders, cf.captured_inputs):
    if captured.dtype == tf.resource:
      var = by_handle.get(id(captured))
      if var is None:
        raise ConversionError(
            f"Captured resource {placeholder!r} is not a tf.Variable (e.g. a lookup table "
            "or iterator); such resources are not supported.")
      base = var.name[:-2] if var.name.endswith(":0") else var.name
      count = used.get(base, 0)
      used[base] = count + 1
      name = base if count == 0 else f"{base}_{count}"
      variables.append((name, var))
      feeds.append(VariableRef(name))
    elif hasattr(captured, "numpy") and not tf.inside_function():
      feeds.append(np.asarray(captured.numpy()))
    else:
      raise ConversionError(
          f"Captured tensor {placeholder!r} cannot be read while TensorFlow is tracing; "
          "call tf2jax.convert outside tf.function.")
  return feeds, variables


def _read_params(what: str, variables) -> dict:
  import tensorflow as tf
  if not variables:
    return {}
  if tf.inside_function():
    if config_lib.get_config("skip_variables_evaluation_inside_tf_tracing"):
      return {}
    raise ConversionError(
        f"{what} has variables, whose values cannot be read while TensorFlow is tracing. "
        "Convert outside tf.function, or set skip_variables_evaluation_inside_tf_tracing "
        "and pass params at call time.")
  return {name: Variable(var.numpy(), name, bool(var.trainable)) for name, var in variables}


def _as_output(value, what: str):
  if isinstance(value, np.ndarray) and value.dtype != object:
    out = jnp.asarray(value)
    if dtypes.truncated_without_x64(value.dtype, out.dtype):
      raise DtypeMismatchError(x64_message(f"{what} returns a {value.dtype} value", out.dtype))
    return out
  return value


class _InputBinder:
  """Binds a call's args/kwargs to the traced input specs and checks them."""

  def __init__(self, what, cf, sig_args, sig_kwargs, num_placeholders: int):
    self.what = what
    self.sig_args = tuple(sig_args)
    self.sig_kwargs = dict(sig_kwargs)
    names = []
    ftype = getattr(cf, "function_type", None)
    params = list(ftype.parameters) if ftype is not None else []
    if len(params) == len(self.sig_args) + len(self.sig_kwargs):
      names = params[:len(self.sig_args)]
    else:
      names = [f"arg{i}" for i in range(len(self.sig_args))]
    self.names = [n for n in names]
    self._sig = inspect.Signature(
        [inspect.Parameter(n, inspect.Parameter.POSITIONAL_OR_KEYWORD) for n in self.names]
        + [inspect.Parameter(k, inspect.Parameter.KEYWORD_ONLY) for k in self.sig_kwargs])
    self.leaves = []  # (path, spec) of every TensorSpec leaf, in TF's flat order
    self._flatten_top(None, self.leaves, check=False)
    if len(self.leaves) != num_placeholders:
      raise ConversionError(
          f"{what}: its {len(self.leaves)} input specs do not match its "
          f"{num_placeholders} placeholders (composite inputs such as RaggedTensor are not "
          "supported).")

  def signature(self, with_params: bool) -> inspect.Signature:
    params = list(self._sig.parameters.values())
    first = [inspect.Parameter("params", inspect.Parameter.POSITIONAL_ONLY)] if with_params \
        else []
    rng = inspect.Parameter("rng", inspect.Parameter.KEYWORD_ONLY, default=None)
    return inspect.Signature(first + params + [rng])

  def bind(self, args, kwargs) -> list:
    try:
      bound = self._sig.bind(*args, **kwargs)
    except TypeError as e:
      raise InputSpecError(f"{self.what}: {e}; it takes {self._sig}.") from None
    out = []
    self._flatten_top(bound.arguments, out, check=True)
    return out

  def _flatten_top(self, arguments, out, check: bool) -> None:
    # TF's flat order: positional args, then keyword-only args by sorted name.
    for name, spec in zip(self.names, self.sig_args):
      self._flatten(spec, arguments[name] if check else None, name, out, check)
    for name in sorted(self.sig_kwargs):
      self._flatten(self.sig_kwargs[name], arguments[name] if check else None, name, out,
                    check)

  def _flatten(self, spec, value, path, out, check: bool) -> None:
    import tensorflow as tf
    if isinstance(spec, tf.TensorSpec):
      out.append(self._input(spec, value, path) if check else (path, spec))
      return
    if isinstance(spec, dict):
      if check and (not isinstance(value, dict) or set(value) != set(spec)):
        raise InputSpecError(f"{self.what}: input {path or 'args'} must be a dict with keys "
                             f"{sorted(spec)}, got {_describe(value)}.")
      for k in sorted(spec):
        self._flatten(spec[k], value[k] if check else None, f"{path}[{k!r}]", out, check)
      return
    if isinstance(spec, (tuple, list)):
      if check and (not isinstance(value, (tuple, list)) or len(value) != len(spec)):
        raise InputSpecError(f"{self.what}: input {path or 'args'} must be a sequence of "
                             f"{len(spec)}, got {_describe(value)}.")
      for i, s in enumerate(spec):
        self._flatten(s, value[i] if check else None, f"{path}[{i}]", out, check)
      return
    if check and not _same_constant(spec, value):
      raise InputSpecError(f"{self.what}: input {path} was traced as the constant {spec!r}; "
                           f"got {value!r}. Convert again for another value.")

  def _input(self, spec, value, name):
    want_dtype = np.dtype(spec.dtype.as_numpy_dtype)
    if isinstance(value, (bool, int, float, complex, list)):
      value = np.asarray(value, dtype=want_dtype)
    elif not hasattr(value, "shape") or not hasattr(value, "dtype"):
      raise InputSpecError(f"{self.what}: input {name!r} must be an array, got "
                           f"{type(value).__name__}.")
    shape = tuple(value.shape)
    want = spec.shape
    if config_lib.get_config("strict_shape_check") and not _compatible(shape, want):
      raise InputSpecError(
          f"{self.what}: input {name!r} has shape {shape}, but the function was converted "
          f"for shape {tuple(want.as_list()) if want.rank is not None else 'any'}. Call it "
          "with a compatible shape, convert with a tf.TensorSpec with None dims, or "
          "disable the check with tf2jax.override_config('strict_shape_check', False).")
    if config_lib.get_config("strict_dtype_check") and np.dtype(value.dtype) != want_dtype:
      raise InputSpecError(
          f"{self.what}: input {name!r} has dtype {np.dtype(value.dtype).name}, but the "
          f"function was converted for {want_dtype.name} (strict_dtype_check is on).")
    if isinstance(value, np.ndarray):
      converted = jnp.asarray(value)
      if dtypes.truncated_without_x64(np.dtype(value.dtype), converted.dtype):
        raise DtypeMismatchError(x64_message(
            f"{self.what}: input {name!r} is {np.dtype(value.dtype).name}", converted.dtype))
      value = converted
    return value


def _compatible(shape: tuple, want) -> bool:
  if want.rank is None:
    return True
  dims = want.as_list()
  return len(shape) == len(dims) and all(w is None or w == s for s, w in zip(shape, dims))


def _same_constant(spec, value) -> bool:
  try:
    return bool(spec == value)
  except Exception:
    return spec is value


def _describe(value) -> str:
  return type(value).__name__
