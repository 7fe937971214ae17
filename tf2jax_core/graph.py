"""Reading a GraphDef and its function library into plain Python objects.

Attributes are decoded once, here, so lowerings see Python values: ints, floats,
strings, NumPy dtypes, shapes as tuples (None for unknown dims, None for unknown rank),
NumPy arrays for tensors and `FuncRef`s for function attributes.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Iterable

import numpy as np

from tf2jax_core import dtypes
from tf2jax_core.lowering import static_limit
from tf2jax_core.errors import (ConversionError, InvalidGraphError, MissingInputError,
                                SizeLimitError)


@dataclasses.dataclass(frozen=True)
class FuncRef:
  """A function attribute: the library function's name and the call's attrs."""

  name: str
  attrs: dict[str, Any]


@dataclasses.dataclass
class Node:
  """One node of a graph with decoded attributes.

  `graph` is the name of the function the node belongs to ("" for the main graph).
  `output_dtypes` is filled when the graph is compiled, from TF's op definitions.
  """

  name: str
  op: str
  inputs: list[tuple[str, int]]
  control_inputs: list[str]
  attrs: dict[str, Any]
  graph: str = ""
  device: str = ""
  output_dtypes: tuple | None = None
  _resolver: Any = dataclasses.field(default=None, repr=False, compare=False)

  @property
  def path(self) -> str:
    return f"{self.graph}/{self.name}" if self.graph else self.name

  def function(self, name: str):
    """The compiled library function `name`, for call and control-flow lowerings."""
    return self._resolver.function(name)

  def compile_subgraph(self, graph: "Graph"):
    """Compiles a sub-graph this node carries (e.g. in an attr set by a graph rewrite,
    as the controlflow plugin does for TF1 loops and conds) like a library function:
    `graph.inputs` name its Placeholder nodes, fed in order; `graph.outputs` are
    returned. The conversion's graph rewrites run on it first; ops it lacks are
    reported with the rest. Run the result with `ctx.call(compiled, args)`."""
    session = self._resolver
    session.rewrite(graph)
    return session.compile_graph(graph, graph.inputs, graph.outputs, graph.output_dtypes)

  def config(self, name: str):
    """A config flag's value at conversion time."""
    from tf2jax_core.config import get_config
    return get_config(name)


@dataclasses.dataclass
class Graph:
  """Nodes in file order; for a library function also its inputs and outputs."""

  name: str
  nodes: dict[str, Node]
  inputs: list[str] = dataclasses.field(default_factory=list)
  input_dtypes: list = dataclasses.field(default_factory=list)
  outputs: list[tuple[str, int]] = dataclasses.field(default_factory=list)
  output_dtypes: list = dataclasses.field(default_factory=list)


def parse_tensor_name(name: str) -> tuple[str, int]:
  """'node:1' -> ('node', 1); 'node' -> ('node', 0)."""
  node, sep, port = name.rpartition(":")
  if sep and port.isdigit():
    return node, int(port)
  return name, 0


def decode_shape(proto, where: str = "") -> tuple | None:
  if proto.unknown_rank:
    return None
  bad = [d.size for d in proto.dim if d.size < -1]
  if bad:
    raise InvalidGraphError(f"Shape with dimension {bad[0]} (only -1 may be negative)"
                            f"{' in ' + where if where else ''}.")
  return tuple(None if d.size < 0 else int(d.size) for d in proto.dim)


def _decode_str(b: bytes) -> str | bytes:
  try:
    return b.decode("utf-8")
  except UnicodeDecodeError:
    return b


_VALUE_FIELDS = ("half_val", "float_val", "double_val", "int_val", "string_val", "scomplex_val",
                 "int64_val", "bool_val", "dcomplex_val", "uint32_val", "uint64_val")


def decode_tensor(proto, where: str = "") -> np.ndarray:
  """A TensorProto as a NumPy array, refusing malformed or oversized ones before decoding."""
  from tensorflow.python.framework import tensor_util  # TF's own decoder knows every layout.
  at = f" in {where}" if where else ""
  dtype = dtypes.from_enum(proto.dtype, where)
  shape = decode_shape(proto.tensor_shape, where)
  if shape is None or None in shape:
    raise InvalidGraphError(f"Tensor of unknown shape {shape}{at}.")
  count = int(np.prod(shape, dtype=object))
  itemsize = dtype.itemsize if isinstance(dtype, np.dtype) and dtype != object else 1
  limit = static_limit()
  if count * itemsize > limit:
    raise SizeLimitError(
        f"Tensor of shape {list(shape)} ({count * itemsize:,} bytes){at} is larger than "
        f"max_static_value_bytes ({limit:,}); raise it with "
        "tf2jax.update_config('max_static_value_bytes', n) if this is intended.")
  if proto.tensor_content:
    if isinstance(dtype, np.dtype) and len(proto.tensor_content) != count * itemsize:
      raise InvalidGraphError(
          f"Tensor content of {len(proto.tensor_content)} bytes does not match its shape "
          f"{list(shape)} of {dtypes.name(dtype)} ({count * itemsize} bytes){at}.")
  else:  # TF uses the first `count` values when a proto holds more.
    per = 2 if dtype in (np.complex64, np.complex128) else 1
    extra = [f for f in _VALUE_FIELDS if len(getattr(proto, f)) > count * per]
    if extra:
      proto = type(proto).FromString(proto.SerializeToString())
      for f in extra:
        del getattr(proto, f)[count * per:]
  value = tensor_util.MakeNdarray(proto)
  if isinstance(dtype, np.dtype) and value.dtype != dtype and dtype != object:
    value = value.astype(dtype)
  return np.asarray(value)


def decode_attr(value, where: str = "") -> Any:
  kind = value.WhichOneof("value")
  if kind == "s":
    return _decode_str(value.s)
  if kind == "i":
    return int(value.i)
  if kind == "f":
    return float(value.f)
  if kind == "b":
    return bool(value.b)
  if kind == "type":
    return dtypes.from_enum(value.type, where)
  if kind == "shape":
    return decode_shape(value.shape, where)
  if kind == "tensor":
    return decode_tensor(value.tensor, where)
  if kind == "func":
    return FuncRef(value.func.name,
                   {k: decode_attr(v, where) for k, v in value.func.attr.items()})
  if kind == "placeholder":
    return value.placeholder
  if kind == "list":
    lst = value.list
    for field in ("s", "i", "f", "b", "type", "shape", "tensor", "func"):
      items = getattr(lst, field)
      if len(items):
        if field == "s":
          return [_decode_str(x) for x in items]
        if field == "type":
          return [dtypes.from_enum(x, where) for x in items]
        if field == "shape":
          return [decode_shape(x, where) for x in items]
        if field == "tensor":
          return [decode_tensor(x, where) for x in items]
        if field == "func":
          return [FuncRef(x.name, {k: decode_attr(v, where) for k, v in x.attr.items()})
                  for x in items]
        return [type(items[0])(x) for x in items]
    return []
  return None


def read_node(proto, graph_name: str = "") -> Node:
  inputs, control = [], []
  for name in proto.input:
    if name.startswith("^"):
      control.append(name[1:])
    else:
      inputs.append(parse_tensor_name(name))
  where = f"node {proto.name!r} ({proto.op})"
  attrs = {}
  for key, value in proto.attr.items():
    if key == "_class":  # colocation hints only
      continue
    try:
      attrs[key] = decode_attr(value, f"{where}, attr {key!r}")
    except ConversionError:
      raise
    except Exception as e:  # a corrupt tensor or shape
      raise InvalidGraphError(f"Cannot read attr {key!r} of {where}: {e}") from e
  return Node(proto.name, proto.op, inputs, control, attrs, graph_name, proto.device)


def read_graph(graph_def, name: str = "") -> Graph:
  nodes: dict[str, Node] = {}
  for proto in graph_def.node:
    if proto.name in nodes:
      raise InvalidGraphError(
          f"Duplicate node name {proto.name!r} in graph {name or '(main)'}.")
    nodes[proto.name] = read_node(proto, name)
  return Graph(name, nodes)


def referenced_functions(node: Node) -> Iterable[str]:
  """Names of library functions a node's attributes refer to."""
  for value in node.attrs.values():
    if isinstance(value, FuncRef):
      yield value.name
    elif isinstance(value, list):
      for v in value:
        if isinstance(v, FuncRef):
          yield v.name


class Library:
  """A function library: FunctionDefs read into `Graph`s on first use."""

  def __init__(self, function_defs: Iterable = ()):
    self._defs = {}
    self._graphs: dict[str, Graph] = {}
    self.gradients: dict[str, str] = {}  # op type (e.g. "CustomGradient-123") -> function
    for f in function_defs:
      self._defs[f.signature.name] = f

  @classmethod
  def from_graph_def(cls, graph_def) -> "Library":
    lib = cls(graph_def.library.function)
    for g in graph_def.library.registered_gradients:
      lib.gradients[g.registered_op_type] = g.gradient_func
    for g in graph_def.library.gradient:
      lib.gradients[g.function_name] = g.gradient_func
    return lib

  def __contains__(self, name: str) -> bool:
    return name in self._defs

  def names(self) -> list[str]:
    return list(self._defs)

  def function_def(self, name: str):
    return self._defs[name]

  def graph(self, name: str, rewrite: Callable[[Graph], None] | None = None) -> Graph:
    if name in self._graphs:
      return self._graphs[name]
    if name not in self._defs:
      raise MissingInputError(f"The graph calls function {name!r}, which its library lacks.")
    graph = self._read_function(self._defs[name])
    if rewrite is not None:
      rewrite(graph)
    self._graphs[name] = graph
    return graph

  def _read_function(self, fdef) -> Graph:
    """A FunctionDef as a Graph: `node:out_arg:i` inputs become flat `node:port`s."""
    from tensorflow.python.framework import op_def_registry
    fname = fdef.signature.name
    nodes: dict[str, Node] = {}
    for i, arg in enumerate(fdef.signature.input_arg):
      attrs = {"dtype": _arg_dtype(arg, {})}
      shapes = fdef.arg_attr[i].attr.get("_output_shapes") if i in fdef.arg_attr else None
      if shapes is not None and len(shapes.list.shape) == 1:
        attrs["shape"] = decode_shape(shapes.list.shape[0], f"argument {arg.name!r}")
      nodes[arg.name] = Node(arg.name, "Placeholder", [], [], attrs, fname)
    flat: dict[str, tuple[str, int]] = {}
    protos = list(fdef.node_def)
    for proto in protos:
      if proto.name in nodes:
        raise InvalidGraphError(f"Duplicate node name {proto.name!r} in function {fname!r}.")
      node = read_node(proto, fname)
      nodes[proto.name] = node
      if proto.op in self._defs:
        sig = self._defs[proto.op].signature
        counts = [(a.name, 1) for a in sig.output_arg]
      else:
        op_def = op_def_registry.get(proto.op)
        if op_def is None:
          continue  # an op TF does not know: it has no lowering either, and is reported
        defaults = {a.name: decode_attr(a.default_value) for a in op_def.attr
                    if a.HasField("default_value")}
        counts = _output_arg_counts(op_def.output_arg, node.attrs, defaults)
      port = 0
      for arg_name, n in counts:
        for k in range(n or 0):
          flat[f"{proto.name}:{arg_name}:{k}"] = (proto.name, port + k)
        port += n or 0

    def resolve(ref: str, where: str) -> tuple[str, int]:
      if ref in nodes and nodes[ref].op == "Placeholder" and ref in inputs:
        return ref, 0
      if ref in flat:
        return flat[ref]
      raise MissingInputError(f"{where} has input {ref!r}, which function {fname!r} lacks.")

    inputs = {arg.name for arg in fdef.signature.input_arg}
    for proto in protos:
      node = nodes[proto.name]
      where = f"{node.op} node {node.path!r}"
      node.inputs = [resolve(ref, where) for ref in proto.input if not ref.startswith("^")]
      node.control_inputs = [ref[1:] for ref in proto.input if ref.startswith("^")]
    graph = Graph(fname, nodes)
    graph.inputs = [arg.name for arg in fdef.signature.input_arg]
    graph.input_dtypes = [_arg_dtype(arg, {}) for arg in fdef.signature.input_arg]
    for arg in fdef.signature.output_arg:
      if arg.name not in fdef.ret:
        raise MissingInputError(f"Function {fname!r} does not return its output {arg.name!r}.")
      graph.outputs.append(resolve(fdef.ret[arg.name], f"output {arg.name!r} of {fname!r}"))
      graph.output_dtypes.append(_arg_dtype(arg, {}))
    return graph


def _output_arg_counts(op_def_outputs, attrs: dict, defaults: dict) -> list[tuple[str, int]]:
  counts = []
  for arg in op_def_outputs:
    if arg.number_attr:
      n = attrs.get(arg.number_attr, defaults.get(arg.number_attr))
    elif arg.type_list_attr:
      n = attrs.get(arg.type_list_attr, defaults.get(arg.type_list_attr))
      n = len(n) if isinstance(n, list) else None
    else:
      n = 1
    counts.append((arg.name, n))
  return counts


def _arg_dtype(arg, attrs):
  if arg.type:
    return dtypes.from_enum(arg.type)
  if arg.type_attr and arg.type_attr in attrs:
    return attrs[arg.type_attr]
  return None


def infer_output_dtypes(node: Node, library: Library) -> tuple | None:
  """TF's output dtypes of a node from its OpDef and attrs; None when unknowable."""
  if node.op in library:
    return tuple(library.graph(node.op).output_dtypes)
  from tensorflow.python.framework import op_def_registry
  op_def = op_def_registry.get(node.op)
  if op_def is None:
    return None
  defaults = {a.name: a.default_value for a in op_def.attr if a.HasField("default_value")}

  def attr(name):
    if name in node.attrs:
      return node.attrs[name]
    if name in defaults:
      return decode_attr(defaults[name])
    raise InvalidGraphError(
        f"{node.op} node {node.path!r} lacks the required attr {name!r}.")

  out = []
  for arg in op_def.output_arg:
    if arg.type_list_attr:
      out.extend(attr(arg.type_list_attr))
      continue
    dtype = dtypes.from_enum(arg.type) if arg.type else attr(arg.type_attr)
    count = attr(arg.number_attr) if arg.number_attr else 1
    out.extend([dtype] * count)
  return tuple(out)
