"""The user API: convert a TF function into a JAX function.

`convert(fn, *args)` -> `(jax_fn, params)` with `jax_fn(params, *args, rng=None, **kw)`
returning `(outputs, new_params)`; `convert_functional` drops params for pure functions;
the `_from_restored` variants take a restored SavedModel function without retracing.
"""

from __future__ import annotations

import dataclasses
import inspect
import os
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
                                InvalidGraphError, MissingInputError, MissingRngError,
                                VariablesNotSupportedError)
from tf2jax_core.graph import Library, infer_output_dtypes, parse_tensor_name, read_graph
from tf2jax_core.walker import CallContext, Session, VariableRef, x64_message

VARIABLE_OPS = ("VarHandleOp", "VariableV2")


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


def convert_graph_def(graph_def, inputs: Sequence[str],
                      outputs: Sequence[str] | str) -> AnnotatedFunction:
  """Converts a frozen GraphDef: a `GraphDef` proto, its bytes, or a `.pb`/`.pbtxt` path.

  `inputs` names the placeholders that become the positional arguments, in order
  ("x" or "x:0"); `outputs` names the tensors to return ("probs:0"): a list returns a
  list, one name returns one array. Only the nodes the outputs depend on are converted.
  """
  return _build(_source_of_graph_def(graph_def, inputs, outputs), functional=True)[0]


def convert_v1_saved_model(path, signature: str = "serving_default",
                           tags: Sequence[str] = ("serve",)) -> tuple[AnnotatedFunction, dict]:
  """Converts a signature of a TF1 SavedModel (`tf.compat.v1.saved_model` builder or
  `simple_save`) -> `(jax_fn, params)`.

  `jax_fn(params, **inputs, rng=None)` takes the signature's inputs by key and returns
  `(outputs, new_params)`, outputs a dict by key. `params` holds the variables the
  outputs depend on, read from the SavedModel's checkpoint.
  """
  import tensorflow as tf
  from tensorflow.core.protobuf import saved_model_pb2
  from google.protobuf import message
  what = f"TF1 SavedModel {str(path)!r}"
  tags = [tags] if isinstance(tags, str) else list(tags)
  pb = os.path.join(path, "saved_model.pb")
  if not os.path.isfile(pb):
    raise MissingInputError(f"{what}: no saved_model.pb in that directory.")
  proto = saved_model_pb2.SavedModel()
  try:
    with open(pb, "rb") as f:
      proto.ParseFromString(f.read())
  except message.DecodeError as e:
    raise InvalidGraphError(f"{what}: saved_model.pb is not readable: {e}") from None
  metas = [m for m in proto.meta_graphs if set(m.meta_info_def.tags) == set(tags)]
  if not metas:
    found = [sorted(m.meta_info_def.tags) for m in proto.meta_graphs]
    raise MissingInputError(f"{what}: no MetaGraph with tags {sorted(tags)}; it has {found}.")
  meta = metas[0]
  if signature not in meta.signature_def:
    raise MissingInputError(f"{what}: no signature {signature!r}; it has "
                            f"{sorted(meta.signature_def)}.")
  sig = meta.signature_def[signature]
  in_keys, out_keys = sorted(sig.inputs), sorted(sig.outputs)  # TF's flat (sorted) order
  src = _source_of_graph_def(meta.graph_def, [sig.inputs[k].name for k in in_keys],
                             [sig.outputs[k].name for k in out_keys])
  specs = dict(zip(in_keys, src.sig_args))
  names = [n.name for n in src.graph_def.node if n.op in VARIABLE_OPS]
  values = {}
  if names:
    reader = tf.train.load_checkpoint(os.path.join(path, "variables", "variables"))
    trainable = _v1_trainable_names(meta)
    for node in (n for n in src.graph_def.node if n.op in VARIABLE_OPS):
      key = _variable_key(node)
      if not reader.has_tensor(key):
        raise MissingInputError(f"{what}: variable {key!r} (node {node.name!r}) is not in "
                                "its checkpoint. A TF2 SavedModel keeps variables by object "
                                "path: convert it with tf.saved_model.load and "
                                "tf2jax.convert_from_restored.")
      values[key] = Variable(reader.get_tensor(key), key, key in trainable)
  src = dataclasses.replace(
      src, name=f"{os.path.basename(os.path.normpath(path))}/{signature}", what=what,
      structure=dict(zip(out_keys, src.out_specs)), sig_args=(), sig_kwargs=specs,
      arg_names=[])
  fn, _ = _build(src, functional=False)
  return fn, values


def _variable_key(node) -> str:
  """The checkpoint key (and param name) of a TF1 variable node."""
  shared = node.attr["shared_name"].s.decode() if "shared_name" in node.attr else ""
  return shared if node.op == "VarHandleOp" and shared else node.name


def _v1_trainable_names(meta) -> set:
  from tensorflow.core.framework import variable_pb2
  names = set()
  collection = meta.collection_def.get("trainable_variables")
  for raw in (collection.bytes_list.value if collection is not None else ()):
    var = variable_pb2.VariableDef()
    var.ParseFromString(raw)
    names.add(var.variable_name.split(":")[0])
  return names


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


@dataclasses.dataclass
class _Source:
  """What a conversion needs, read from a ConcreteFunction or a frozen GraphDef."""

  name: str
  what: str
  graph_def: Any
  placeholders: list[str]  # user inputs first, then captured ones
  captured: list  # feeds of the captured placeholders (VariableRefs, constants)
  variables: list  # (param name, tf.Variable)
  out_refs: list[tuple[str, int]]
  flat_outputs: list  # leaves of `structure`: tensors/specs or Python constants
  out_leaf_is_tensor: list[bool]
  out_specs: list
  structure: Any
  sig_args: tuple
  sig_kwargs: dict
  arg_names: list[str]
  tf_validate: Any = None  # an external GraphDef to import into TF, refusing what TF refuses
  cf: Any = None  # the ConcreteFunction, when converting one


def _source_of_function(cf, functional: bool, names: dict | None = None) -> _Source:
  import tensorflow as tf
  name = _display_name(cf)
  what = f"TF function {name!r}"
  placeholders = [t.op.name for t in cf.inputs]
  num_user = len(placeholders) - len(cf.captured_inputs)
  captured, variables = _captures(cf, placeholders[num_user:], functional, names)
  # Structured outputs hold graph tensors (traced functions) or TensorSpecs (restored
  # ones); either way they line up with `cf.outputs`.
  flat_outputs = tree.flatten(cf.structured_outputs)
  out_leaf_is_tensor = [isinstance(leaf, (tf.Tensor, tf.TensorSpec)) for leaf in flat_outputs]
  for leaf in flat_outputs:
    if isinstance(leaf, (tf.TypeSpec, tf.__internal__.CompositeTensor)) and not isinstance(
        leaf, tf.TensorSpec):
      raise ConversionError(f"{what}: composite outputs ({type(leaf).__name__}) are not "
                            "supported; return plain tensors.")
  # TF appends intermediates to `cf.outputs` once a gradient of the function was taken,
  # so graph tensors are read from the structured outputs when they are tensors.
  n_tensors = sum(out_leaf_is_tensor)
  if all(isinstance(leaf, tf.Tensor) for leaf, t in zip(flat_outputs, out_leaf_is_tensor) if t):
    out_tensors = [leaf for leaf, t in zip(flat_outputs, out_leaf_is_tensor) if t]
  elif n_tensors <= len(cf.outputs):
    out_tensors = list(cf.outputs[:n_tensors])
  else:
    raise ConversionError(f"{what}: {len(cf.outputs)} output tensors do not match its "
                          f"structured outputs {cf.structured_outputs}.")
  tensors = iter(out_tensors)
  out_specs = [tf.TensorSpec(next(tensors).shape, leaf.dtype) if is_tensor else leaf
               for is_tensor, leaf in zip(out_leaf_is_tensor, flat_outputs)]
  sig_args, sig_kwargs = cf.structured_input_signature
  ftype = getattr(cf, "function_type", None)
  params = list(ftype.parameters) if ftype is not None else []
  if len(params) == len(sig_args) + len(sig_kwargs):
    arg_names = params[:len(sig_args)]
  else:
    arg_names = [f"arg{i}" for i in range(len(sig_args))]
  return _Source(name, what, cf.graph.as_graph_def(), placeholders, captured, variables,
                 [parse_tensor_name(t.name) for t in out_tensors], flat_outputs,
                 out_leaf_is_tensor, out_specs, cf.structured_outputs, tuple(sig_args),
                 dict(sig_kwargs), arg_names, cf=cf)


def _load_graph_def(graph_def):
  from google.protobuf import message, text_format
  from tensorflow.core.framework import graph_pb2
  if isinstance(graph_def, graph_pb2.GraphDef):
    return graph_def, "GraphDef"
  label = "GraphDef"
  if isinstance(graph_def, (str, os.PathLike)):
    label = str(graph_def)
    with open(graph_def, "rb") as f:
      data = f.read()
    text = label.endswith((".pbtxt", ".txt"))
  elif isinstance(graph_def, bytes):
    data, text = graph_def, False
  else:
    raise TypeError("convert_graph_def takes a GraphDef, its serialized bytes or a path, got "
                    f"{type(graph_def).__name__}.")
  proto = graph_pb2.GraphDef()
  try:
    if text:
      text_format.Parse(data.decode("utf-8"), proto)
    else:
      proto.ParseFromString(data)
  except (message.DecodeError, text_format.ParseError, UnicodeDecodeError) as e:
    raise InvalidGraphError(f"{label} is not a readable GraphDef: {e}") from None
  return proto, label


def _source_of_graph_def(graph_def, inputs, outputs) -> _Source:
  import tensorflow as tf
  from tensorflow.core.framework import graph_pb2
  proto, label = _load_graph_def(graph_def)
  what = f"GraphDef {label!r}"
  single = isinstance(outputs, str)
  out_names = [outputs] if single else list(outputs)
  in_names = [parse_tensor_name(n)[0] for n in inputs]
  nodes = {n.name: n for n in proto.node}
  for name in in_names:
    if name not in nodes or nodes[name].op not in ("Placeholder", "PlaceholderWithDefault"):
      found = nodes[name].op if name in nodes else "no such node"
      raise MissingInputError(f"{what}: input {name!r} must name a Placeholder ({found}).")
  out_refs = [parse_tensor_name(n) for n in out_names]
  for name, _ in out_refs:
    if name not in nodes:
      raise MissingInputError(f"{what}: output {name!r} names no node of the graph.")
  # Keep what the outputs depend on (TF1 graphs carry unused placeholders and savers).
  keep, stack = set(), [n for n, _ in out_refs]
  while stack:
    name = stack.pop()
    if name in keep or name in in_names:
      keep.add(name)
      continue
    keep.add(name)
    if name not in nodes:
      continue  # reported by the validation pass with the node that names it
    stack.extend(i.lstrip("^").rsplit(":", 1)[0] if ":" in i else i.lstrip("^")
                 for i in nodes[name].input)
  pruned = graph_pb2.GraphDef()
  pruned.versions.CopyFrom(proto.versions)
  pruned.library.CopyFrom(proto.library)
  pruned.node.extend(n for n in proto.node if n.name in keep | set(in_names))
  graph = read_graph(pruned)
  library = Library.from_graph_def(pruned)
  specs = []
  for name in in_names:
    attrs = graph.nodes[name].attrs
    dtype = attrs.get("dtype")
    if not isinstance(dtype, np.dtype) or dtype == object:
      raise InvalidGraphError(f"{what}: input placeholder {name!r} has no numeric dtype attr "
                              f"(dtype={dtype!r}).")
    specs.append(tf.TensorSpec(attrs.get("shape"), tf.as_dtype(dtype), name=name))
  out_specs = []
  for name, port in out_refs:
    dtypes_ = infer_output_dtypes(graph.nodes[name], library) or ()
    dtype = dtypes_[port] if port < len(dtypes_) else None
    out_specs.append(tf.TensorSpec(None, tf.as_dtype(dtype)) if isinstance(dtype, np.dtype)
                     else None)
  arg_names = [re.sub(r"\W", "_", n) for n in in_names]
  structure = out_specs[0] if single else list(out_specs)
  return _Source(label, what, pruned, in_names, [], [], out_refs, list(out_specs),
                 [True] * len(out_refs), out_specs, structure, tuple(specs), {}, arg_names,
                 tf_validate=proto)


def _tf_import_check(what: str, graph_def) -> None:
  """TF's own import (op definitions, attrs, shape functions) as the last validator."""
  import tensorflow as tf
  try:
    with tf.Graph().as_default():
      tf.graph_util.import_graph_def(graph_def, name="")
  except Exception as e:
    raise InvalidGraphError(f"{what}: TensorFlow refuses the graph: "
                            f"{type(e).__name__}: {str(e)[:500]}") from None


def _convert(cf, functional: bool) -> tuple[AnnotatedFunction, dict]:
  return _build(_source_of_function(cf, functional), functional)


def _build(src: _Source, functional: bool) -> tuple[AnnotatedFunction, dict]:
  what = src.what
  manager = plugins.manager()
  table = manager.op_table()
  library = Library.from_graph_def(src.graph_def)
  session = Session(table, library, manager.graph_rewrites(), what)
  graph = read_graph(src.graph_def)
  session.rewrite(graph)
  compiled = session.compile_graph(graph, src.placeholders, src.out_refs)
  if src.tf_validate is not None:
    _tf_import_check(what, src.tf_validate)
  session.raise_if_unsupported(manager.install_hint)

  variable_nodes = [n for g in [graph] + [library.graph(f) for f in session.functions]
                    for n in g.nodes.values() if n.op in VARIABLE_OPS]
  if functional and (src.variables or variable_nodes):
    names = [v[0] for v in src.variables] + [n.path for n in variable_nodes]
    raise VariablesNotSupportedError(
        f"{what} uses variables ({', '.join(names[:5])}), so convert_functional cannot "
        "drop its params: use tf2jax.convert, which returns (jax_fn, params).")

  params = _read_params(what, src.variables)
  binder = _InputBinder(what, src.arg_names, src.sig_args, src.sig_kwargs,
                        len(src.placeholders) - len(src.captured))
  random_nodes = list(session.random_nodes)
  captured = list(src.captured)
  flat_outputs, out_leaf_is_tensor, structure = (src.flat_outputs, src.out_leaf_is_tensor,
                                                 src.structure)

  def evaluate(params: dict, flat_inputs: list, rng):
    ctx = CallContext(dict(params), rng)
    outs = compiled.run(ctx, list(flat_inputs) + captured)
    return outs, ctx.params

  custom = [n.path for g in [graph] + [library.graph(f) for f in session.functions]
            for n in g.nodes.values() if n.op == "IdentityN" and n.attrs.get("_gradient_op_type")]
  if custom and config_lib.get_config("convert_custom_gradient"):
    if src.cf is None:
      raise ConversionError(
          f"{what} has custom gradients (IdentityN {custom[0]!r}) but no TF function to "
          "derive them from; convert with tf2jax.override_config('convert_custom_gradient', "
          "False) to use plain autodiff.")
    if random_nodes:
      raise ConversionError(
          f"{what} combines custom gradients ({custom[0]!r}) with random ops "
          f"({random_nodes[0].path!r}), which the custom-gradient conversion does not "
          "support; set convert_custom_gradient to False to use plain autodiff.")
    evaluate = _with_tf_gradient(src, binder, evaluate)

  def run(params: dict, args, kwargs, rng):
    flat_inputs = binder.bind(args, kwargs)
    if random_nodes and rng is None:
      listed = ", ".join(f"{n.op} ({n.path!r})" for n in random_nodes[:5])
      raise MissingRngError(
          f"{what} uses random ops: {listed}. Call it with a PRNG key, e.g. "
          "jax_fn(..., rng=jax.random.PRNGKey(0)).")
    outs, new_params = evaluate(params, flat_inputs, rng)
    flat, it = [], iter(outs)
    for is_tensor, leaf in zip(out_leaf_is_tensor, flat_outputs):
      flat.append(_as_output(next(it), what) if is_tensor else leaf)
    return tree.unflatten_as(structure, flat), new_params

  doc = f"JAX version of {what}, converted by tf2jax."
  in_specs = (src.sig_args, src.sig_kwargs)
  out_struct = tree.unflatten_as(structure, src.out_specs) if flat_outputs else structure
  if functional:
    def jax_fn(*args, rng=None, **kwargs):
      return run({}, args, kwargs, rng)[0]
    sig = binder.signature(with_params=False)
    params = {}
  else:
    def jax_fn(params, *args, rng=None, **kwargs):
      return run(params, args, kwargs, rng)
    sig = binder.signature(with_params=True)
  fn = AnnotatedFunction(jax_fn, in_specs, out_struct, sig, src.name, doc,
                         converted=compiled)
  return fn, params


def _with_tf_gradient(src: _Source, binder: "_InputBinder", evaluate):
  """Wraps `evaluate` in a `jax.custom_vjp` whose backward pass is TF's own gradient.

  The graph has custom gradients (`@tf.custom_gradient`, jax2tf's serialized VJPs), so TF
  traces the VJP of the whole function (a `tf.GradientTape` over it, which applies the
  custom gradients), tf2jax converts that, and the result becomes the backward pass.
  """
  import tensorflow as tf
  cf = src.cf
  in_specs = [spec for _, spec in binder.leaves]
  tensor_outs = [spec for spec, t in zip(src.out_specs, src.out_leaf_is_tensor) if t]
  float_in = [i for i, s in enumerate(in_specs) if s.dtype.is_floating or s.dtype.is_complex]
  float_out = [k for k, t in enumerate(tensor_outs) if t.dtype.is_floating or t.dtype.is_complex]
  variables = [v for _, v in src.variables]
  names = {id(v): name for name, v in src.variables}
  structure = (src.sig_args, src.sig_kwargs)
  leaves = tree.flatten(structure)
  is_spec = [isinstance(leaf, tf.TensorSpec) for leaf in leaves]
  n_in = len(in_specs)

  def vjp(*flat):
    xs, cts = list(flat[:n_in]), list(flat[n_in:])
    it = iter(xs)
    args, kwargs = tree.unflatten_as(structure, [next(it) if spec else leaf
                                                 for spec, leaf in zip(is_spec, leaves)])
    with tf.GradientTape(watch_accessed_variables=False) as tape:
      for i in float_in:
        tape.watch(xs[i])
      for v in variables:
        tape.watch(v)
      outs = [t for t in tf.nest.flatten(cf(*args, **kwargs)) if isinstance(t, tf.Tensor)]
    grads = tape.gradient([outs[k] for k in float_out], [xs[i] for i in float_in] + variables,
                          output_gradients=cts,
                          unconnected_gradients=tf.UnconnectedGradients.ZERO)
    return list(grads)

  ct_specs = [tf.TensorSpec(tensor_outs[k].shape, tensor_outs[k].dtype) for k in float_out]
  vjp_cf = tf.function(vjp).get_concrete_function(*in_specs, *ct_specs)
  with config_lib.override_config("convert_custom_gradient", False):
    vjp_fn, _ = _build(_source_of_function(vjp_cf, False, names), functional=False)
  var_names = [names[id(v)] for v in variables]

  @jax.custom_vjp
  def differentiable(params, xs):
    return evaluate(params, xs, None)

  def fwd(params, xs):
    return evaluate(params, xs, None), (params, xs)

  def bwd(residuals, cts):
    params, xs = residuals
    out_cts, _ = cts  # cotangents of new_params are not propagated
    grads, _ = vjp_fn(params, *xs, *[out_cts[k] for k in float_out])
    grads = list(grads)
    x_grads = [_zero_cotangent(x) for x in xs]
    for i in float_in:
      x_grads[i] = jnp.asarray(grads.pop(0), jnp.result_type(xs[i]))
    p_grads = {k: _zero_cotangent(v) for k, v in params.items()}
    for name, g in zip(var_names, grads):
      if name in p_grads:
        p_grads[name] = jnp.asarray(g, jnp.result_type(params[name]))
    return p_grads, x_grads

  differentiable.defvjp(fwd, bwd)

  def run(params, flat_inputs, rng):
    del rng  # refused above for graphs with random ops
    params = {k: jnp.asarray(v) for k, v in params.items()}
    outs, new_params = differentiable(params, [jnp.asarray(x) for x in flat_inputs])
    return list(outs), dict(new_params)
  return run


def _zero_cotangent(x):
  dtype = jnp.result_type(x)
  if jnp.issubdtype(dtype, jnp.inexact):
    return jnp.zeros(np.shape(x), dtype)
  return np.zeros(np.shape(x), jax.dtypes.float0)


def _display_name(cf) -> str:
  name = getattr(cf, "name", "function")
  name = name.decode() if isinstance(name, bytes) else str(name)
  match = re.fullmatch(r"__inference_(.+?)_\d+", name)
  return match.group(1) if match else name


def _captures(cf, placeholders: Sequence[str], functional: bool, names: dict | None = None):
  """Feeds for captured placeholders, and the captured variables as (name, var).

  `names` (id(variable) -> param name) reuses the names of another conversion.
  """
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
      if names is not None and id(var) in names:
        name = names[id(var)]
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

  def __init__(self, what, names, sig_args, sig_kwargs, num_placeholders: int):
    self.what = what
    self.sig_args = tuple(sig_args)
    self.sig_kwargs = dict(sig_kwargs)
    self.names = list(names)
    # Python constants TF traced (such as a `name=None` default) become defaults: the
    # trailing positional ones and every keyword-only one.
    positional, optional = [], True
    for name, spec in reversed(list(zip(self.names, self.sig_args))):
      optional = optional and not _has_tensors(spec)
      positional.insert(0, inspect.Parameter(
          name, inspect.Parameter.POSITIONAL_OR_KEYWORD,
          default=spec if optional else inspect.Parameter.empty))
    self._sig = inspect.Signature(positional + [
        inspect.Parameter(k, inspect.Parameter.KEYWORD_ONLY,
                          default=inspect.Parameter.empty if _has_tensors(v) else v)
        for k, v in self.sig_kwargs.items()])
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
    bound.apply_defaults()
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
    if isinstance(value, (list, tuple)):  # nested Python lists, of tracers under jit
      leaves = jax.tree_util.tree_leaves(value)
      if any(isinstance(v, jax.core.Tracer) for v in leaves):
        value = jnp.asarray(value, dtype=want_dtype)
      else:
        value = _from_python(value, want_dtype, self.what, name)
    elif isinstance(value, (bool, int, float, complex)):
      value = _from_python(value, want_dtype, self.what, name)
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


def _has_tensors(spec) -> bool:
  import tensorflow as tf
  return any(isinstance(leaf, tf.TensorSpec) for leaf in tf.nest.flatten(spec))


def _from_python(value, dtype: np.dtype, what: str, name: str) -> np.ndarray:
  """A Python value as TF converts it: refused when the conversion would lose it."""
  kinds = {np.asarray(v).dtype.kind for v in jax.tree_util.tree_leaves(value)}
  order = "biufc"
  if any(order.index(k) > order.index(dtype.kind) for k in kinds if k in order) or \
      (dtype.kind != "b" and "b" in kinds) or (dtype.kind == "b" and kinds - {"b"}):
    raise InputSpecError(f"{what}: input {name!r}: {value!r} cannot be converted to "
                         f"{dtype.name} without loss (TF refuses it too).")
  try:
    return np.asarray(value, dtype=dtype)
  except (OverflowError, ValueError) as e:
    raise InputSpecError(f"{what}: input {name!r}: {value!r} does not fit {dtype.name}: "
                         f"{e}") from None


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
