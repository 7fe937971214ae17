"""TF1 TensorArray ops (TensorArrayV3 and friends: `tf.compat.v1` graphs, or TF2 graphs
traced in TF1 mode), and ToBool.

TF keeps a TensorArray in a resource and threads a dummy float32 "flow" tensor through
the ops that change it, to order them. Here the flow *is* the array: each flow output is
a `TensorArray` value (the stacked elements, a `TensorList` so that `lax` loops and conds
carry it) and the handle is a static `TensorArrayHandle` naming the array. Reads take the
contents from their flow input, writes return new contents, as TensorList ops do.

Gradients (`tf.gradients` through TensorArrays): TensorArrayGradV3 names the gradient
array of a forward one. TF's gradient code passes either the forward array's flow (a
fresh gradient array: zeros) or the flow of earlier gradient writes (their contents), and
sums the gradient flows of one forward flow with AddN; gradient arrays add repeated
writes, so the sum of their contents is what TF's shared resource holds. A graph rewrite
turns AddNs of flows into `_TensorArrayFlowAddN`.

Limits: one stacked buffer holds all elements, so they share one shape (TensorArraySplit
with unequal lengths is refused); a dynamic-size array grows only at indices known at
conversion time; reading an element twice with clear_after_read, or writing it twice,
is not detected.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from tf2jax_core import ConversionError, is_static, lowering
from tf2jax_core.graph import Graph
from tf2jax_controlflow.tensor_lists import TensorList, _merge, _show

FLOW_ADD_N = "_TensorArrayFlowAddN"
_FLOAT32 = np.dtype(np.float32)


@dataclasses.dataclass(frozen=True)
class TensorArrayHandle:
  """A TensorArrayV3 handle: `key` names the array; a gradient array's handle also names
  its forward array (`grad_of`) and the shape its elements prepend (GradWithShape)."""

  key: tuple
  grad_of: tuple | None = None
  prepend: tuple = ()


@jax.tree_util.register_pytree_node_class
@dataclasses.dataclass
class TensorArray(TensorList):
  """The contents of a TensorArray, carried by its flow tensor. `dtype` is the flow's
  dtype (float32, what the converter checks), `element_dtype` the elements'."""

  key: tuple = ()
  element_dtype: np.dtype | None = None
  dynamic_size: bool = False
  aggregate: bool = False  # gradient arrays: repeated writes add up
  identical: bool = False  # identical_element_shapes: the first write fixes the shape
  clear_after_read: bool = True
  # The indices written and read so far (at indices known at conversion time), shared by
  # all the flows of the array as TF's resource is, to fail where TF fails. Not carried
  # through lax loops (None: unknown).
  state: dict | None = dataclasses.field(default=None, compare=False)

  def tree_flatten(self):
    children = () if self.buffer is None else (self.buffer,)
    return children, (self.length, self.element_shape, self.buffer is not None, self.key,
                      self.element_dtype, self.dynamic_size, self.aggregate,
                      self.identical, self.clear_after_read)

  @classmethod
  def tree_unflatten(cls, aux, children):
    length, shape, has_buffer, key, dtype, dynamic, aggregate, identical, clear = aux
    return cls(length=length, dtype=_FLOAT32, element_shape=shape,
               buffer=children[0] if has_buffer else None, key=key, element_dtype=dtype,
               dynamic_size=dynamic, aggregate=aggregate, identical=identical,
               clear_after_read=clear)

  def full_shape(self) -> tuple | None:
    """TF's element shape when fully known: the declared one, or with
    identical_element_shapes the shape of the first write."""
    if self.element_shape is not None and None not in self.element_shape:
      return self.element_shape
    if self.identical and self.buffer is not None:
      return tuple(self.buffer.shape[1:])
    return None

  def known_shape(self) -> tuple | None:
    if self.buffer is not None:
      return tuple(self.buffer.shape[1:])
    if self.element_shape is None or None in self.element_shape:
      return None
    return self.element_shape

  def zeros(self, where: str):
    """The buffer, zeros where nothing was written (the element shape must be known)."""
    if self.buffer is not None:
      return self.buffer
    shape = self.full_shape()
    if shape is None:
      raise ValueError(f"{where}: reading elements never written, whose shape "
                       f"{_show(self.element_shape)} is not fully known")
    return np.zeros((self.length,) + shape, self.element_dtype)

  def resized(self, n: int) -> "TensorArray":
    if n == self.length:
      return self
    buffer = self.buffer
    if buffer is not None:
      pad = np.zeros((n - self.length,) + tuple(buffer.shape[1:]), self.element_dtype)
      buffer = jnp.concatenate([jnp.asarray(buffer), pad]) if not is_static(buffer) else \
          np.concatenate([buffer, pad])
    return dataclasses.replace(self, length=n, buffer=buffer)


def _new_state() -> dict:
  return {"written": set(), "read": set(), "lost": False}


def _where(node) -> str:
  return f"{node.op} node {node.path!r}"


def _handle(node, handle) -> TensorArrayHandle:
  if not isinstance(handle, TensorArrayHandle):
    raise ConversionError(f"{_where(node)} expects the handle of a TensorArrayV3, got "
                          f"{type(handle).__name__}.")
  return handle


def contents(node, handle, flow) -> TensorArray:
  """The array `handle` names, from its flow input (see the module docstring)."""
  h = _handle(node, handle)
  if isinstance(flow, TensorArray) and flow.key == h.key:
    return flow
  if isinstance(flow, TensorArray) and h.grad_of is not None and flow.key == h.grad_of:
    # A fresh gradient array: zeros of the forward array's size and element shape (TF
    # gives its elements the shapes of the forward elements).
    shape = flow.known_shape()  # () for scalars: test for None, not truth
    shape = flow.element_shape if shape is None else shape
    shape = None if shape is None else h.prepend + tuple(shape)
    return TensorArray(length=flow.length, dtype=_FLOAT32, element_shape=shape,
                       key=h.key, element_dtype=flow.element_dtype, aggregate=True,
                       identical=flow.identical, state=_new_state())
  got = flow.key if isinstance(flow, TensorArray) else type(flow).__name__
  raise ConversionError(f"{_where(node)}: its flow input does not come from the TensorArray "
                        f"its handle names ({h.key} vs {got}); tf2jax reads the array from "
                        "its flow tensor, so the two must belong together.")


def _check_dtype(node, ta: TensorArray, attr: str) -> None:
  want = node.attrs.get(attr)
  if want is not None and np.dtype(want) != ta.element_dtype:
    raise ValueError(f"{_where(node)}: TensorArray dtype is {ta.element_dtype.name} but the "
                     f"op uses {np.dtype(want).name}")


def _check_shape(node, ta: TensorArray, shape: tuple) -> None:
  """Values written must fit the declared shape and the elements already written (one
  stacked buffer holds them all)."""
  _merge(ta.element_shape, shape, _where(node))
  if ta.buffer is not None and tuple(ta.buffer.shape[1:]) != shape:
    raise ConversionError(
        f"{_where(node)} writes an element of shape {list(shape)} into a TensorArray of "
        f"elements of shape {list(ta.buffer.shape[1:])}; tf2jax stacks a TensorArray in one "
        "array, so its elements must share one shape.")


def _grow(node, ta: TensorArray, indices) -> TensorArray:
  """A dynamic-size array grows to hold static indices; traced ones must be inside."""
  if not is_static(indices):
    if ta.dynamic_size:
      raise ConversionError(
          f"{_where(node)} writes a dynamic-size TensorArray at an index computed at run "
          "time; JAX arrays cannot grow at run time. Give the TensorArray a fixed size "
          "(dynamic_size=False) large enough for the writes.")
    return ta
  indices = np.asarray(indices).reshape(-1)
  if np.any(indices < 0):
    raise ValueError(f"{_where(node)}: negative index {indices.min()}")
  top = int(indices.max()) + 1 if indices.size else 0
  if top > ta.length:
    if not ta.dynamic_size:
      raise ValueError(f"{_where(node)}: index {top - 1} out of range for a TensorArray of "
                       f"size {ta.length} that is not dynamic_size")
    return ta.resized(top)
  return ta


def _write(node, ta: TensorArray, indices, values, one: bool) -> TensorArray:
  """Writes `values` (one element, or one per index) at `indices`."""
  if np.size(indices) == 0:  # nothing written: the shape stays unknown
    return ta
  shape = tuple(np.shape(values)) if one else tuple(np.shape(values)[1:])
  _check_shape(node, ta, shape)
  ta = _grow(node, ta, indices)
  _mark_written(node, ta, indices)
  add = ta.aggregate and ta.element_dtype != np.bool_
  if ta.aggregate and not add and is_static(indices) and \
      len(set(np.asarray(indices).reshape(-1).tolist())) < np.size(indices):
    raise ValueError(f"{_where(node)}: writing an index twice needs an aggregation, "
                     "which TF does not do for bool")
  buffer = jnp.asarray(ta.buffer if ta.buffer is not None else
                       np.zeros((ta.length,) + shape, ta.element_dtype))
  values = jnp.asarray(values, ta.element_dtype)
  at = buffer.at[indices]
  buffer = at.add(values) if add else at.set(values)
  return dataclasses.replace(ta, buffer=buffer)


def _check_index(node, ta: TensorArray, index) -> None:
  if np.ndim(index) != 0:
    raise ValueError(f"{_where(node)}: the index must be a scalar")
  if is_static(index) and not 0 <= int(index) < ta.length:
    raise ValueError(f"{_where(node)}: index {int(index)} out of range for a TensorArray "
                     f"of size {ta.length}")


def _mark_written(node, ta: TensorArray, indices) -> None:
  """TF fails on writing an element twice or after reading it (but gradient arrays add
  repeated writes)."""
  state = ta.state
  if state is None or ta.aggregate:
    return
  if not is_static(indices):
    state["lost"] = True  # which ones: unknown
    return
  for i in np.asarray(indices).reshape(-1).tolist():
    if i in state["read"]:
      raise ValueError(f"{_where(node)}: could not write to index {i} because it has "
                       "already been read")
    if i in state["written"]:
      raise ValueError(f"{_where(node)}: could not write to index {i} because it has "
                       "already been written to")
    state["written"].add(i)


def _mark_read(node, ta: TensorArray, indices) -> None:
  """TF fails on reading an element never written whose shape is not fully known, and
  with clear_after_read on reading an element twice."""
  state = ta.state
  if state is None or not is_static(indices) or state["lost"]:
    return
  for i in np.asarray(indices).reshape(-1).tolist():
    if i not in state["written"] and ta.full_shape() is None:
      raise ValueError(f"{_where(node)}: could not read index {i}: it was never written "
                       f"and the element shape {_show(ta.element_shape)} is not fully "
                       "defined")
    if ta.clear_after_read and i in state["read"]:
      raise ValueError(f"{_where(node)}: could not read index {i} twice because it was "
                       "cleared after a previous read (clear_after_read)")
    state["read"].add(i)


# The ops ------------------------------------------------------------------------------


@lowering("TensorArrayV3", attrs={"dtype": None, "element_shape": None,
                                  "dynamic_size": None, "clear_after_read": None,
                                  "identical_element_shapes": None,
                                  "tensor_array_name": None}, static_inputs=(0,))
def tensor_array(node):
  dtype = np.dtype(node.attrs["dtype"])
  shape = node.attrs.get("element_shape")
  dynamic = bool(node.attrs.get("dynamic_size", False))
  clear = bool(node.attrs.get("clear_after_read", True))
  identical = bool(node.attrs.get("identical_element_shapes", False))

  def run(size):
    if np.ndim(size) != 0 or int(size) < 0:
      raise ValueError(f"{_where(node)}: the size must be a non-negative scalar, got {size}")
    key = (node.path,)
    flow = TensorArray(length=int(size), dtype=_FLOAT32,
                       element_shape=None if shape is None else tuple(shape), key=key,
                       element_dtype=dtype, dynamic_size=dynamic, identical=identical,
                       clear_after_read=clear, state=_new_state())
    return TensorArrayHandle(key), flow
  return run


@lowering("TensorArrayWriteV3", attrs={"T": None})
def write(node):
  def run(handle, index, value, flow):
    ta = contents(node, handle, flow)
    _check_dtype(node, ta, "T")
    if np.ndim(index) != 0:
      raise ValueError(f"{_where(node)}: the index must be a scalar")
    return _write(node, ta, index, value, one=True)
  return run


@lowering("TensorArrayReadV3", attrs={"dtype": None})
def read(node):
  def run(handle, index, flow):
    ta = contents(node, handle, flow)
    _check_dtype(node, ta, "dtype")
    _check_index(node, ta, index)
    _mark_read(node, ta, index)
    if ta.buffer is None:
      return ta.zeros(_where(node))[0]
    if is_static(index):
      return ta.buffer[int(index)]
    return jax.lax.dynamic_index_in_dim(ta.buffer, index, keepdims=False)
  return run


@lowering("TensorArrayGatherV3", attrs={"dtype": None, "element_shape": None})
def gather(node):
  attr_shape = node.attrs.get("element_shape")

  def run(handle, indices, flow):
    ta = contents(node, handle, flow)
    _check_dtype(node, ta, "dtype")
    where = _where(node)
    if np.ndim(indices) != 1:
      raise ValueError(f"{where}: indices must be a vector")
    declared = _merge(ta.element_shape, None if attr_shape is None else tuple(attr_shape),
                      where)
    if is_static(indices) and np.any((indices < 0) | (indices >= ta.length)):
      raise ValueError(f"{where}: indices {indices} out of range for size {ta.length}")
    if np.size(indices) == 0:  # TF takes the shape from the op's attr only
      if attr_shape is None or None in attr_shape:
        raise ValueError(f"{where}: gathering no element needs a fully defined "
                         f"element_shape attr, got {_show(attr_shape)}")
      return np.zeros((0,) + tuple(attr_shape), ta.element_dtype)
    buffer = ta.zeros(where)
    _merge(declared, tuple(buffer.shape[1:]), where)
    _mark_read(node, ta, indices)
    return (np if is_static(buffer, indices) else jnp).take(buffer, indices, axis=0)
  return run


@lowering("TensorArrayScatterV3", attrs={"T": None})
def scatter(node):
  def run(handle, indices, value, flow):
    ta = contents(node, handle, flow)
    _check_dtype(node, ta, "T")
    if np.ndim(indices) != 1 or np.ndim(value) < 1 or \
        np.shape(value)[0] != np.shape(indices)[0]:
      raise ValueError(f"{_where(node)}: expected a vector of indices and one value row "
                       f"per index, got {np.shape(indices)} and {np.shape(value)}")
    return _write(node, ta, indices, value, one=False)
  return run


@lowering("TensorArrayConcatV3", attrs={"dtype": None, "element_shape_except0": None})
def concat(node):
  rest_attr = node.attrs.get("element_shape_except0")

  def run(handle, flow):
    ta = contents(node, handle, flow)
    _check_dtype(node, ta, "dtype")
    where = _where(node)
    if ta.length == 0:  # TF takes the shape from the op's attr only
      if rest_attr is None or None in rest_attr:
        raise ValueError(f"{where}: concatenating an empty TensorArray needs a fully "
                         f"defined element_shape_except0, got {_show(rest_attr)}")
      return np.zeros((0,) + tuple(rest_attr), ta.element_dtype), np.zeros((0,), np.int64)
    buffer = ta.zeros(where)
    if buffer.ndim < 2:
      raise ValueError(f"{where}: concatenating scalars (elements need rank >= 1)")
    if rest_attr is not None:
      _merge(tuple(rest_attr), tuple(buffer.shape[2:]), where)
    _mark_read(node, ta, np.arange(ta.length))
    rows = ta.length * int(buffer.shape[1])
    lengths = np.full((ta.length,), buffer.shape[1], np.int64)
    return buffer.reshape((rows,) + tuple(buffer.shape[2:])), lengths
  return run


@lowering("TensorArraySplitV3", attrs={"T": None}, static_inputs=(2,))
def split(node):
  def run(handle, value, lengths, flow):
    ta = contents(node, handle, flow)
    _check_dtype(node, ta, "T")
    where = _where(node)
    lengths = np.asarray(lengths)
    if lengths.ndim != 1 or np.ndim(value) < 1:
      raise ValueError(f"{where}: expected a vector of lengths and a value of rank >= 1")
    if np.any(lengths < 0) or int(lengths.sum()) != np.shape(value)[0]:
      raise ValueError(f"{where}: lengths {lengths.tolist()} do not add up to "
                       f"{np.shape(value)[0]}")
    n = lengths.size
    if n != ta.length and not (ta.dynamic_size and n > ta.length):
      raise ValueError(f"{where}: {n} lengths for a TensorArray of size {ta.length}")
    if len(set(lengths.tolist())) > 1:
      raise ConversionError(f"{where}: pieces of different lengths {lengths.tolist()} "
                            "cannot be stacked in one array (tf2jax's TensorArrays hold "
                            "elements of one shape).")
    piece = int(lengths[0]) if n else 0
    values = jnp.reshape(value, (n, piece) + tuple(np.shape(value)[1:]))
    return _write(node, ta, np.arange(n), values, one=False)
  return run


@lowering("TensorArraySizeV3")
def size(node):
  return lambda handle, flow: np.asarray(contents(node, handle, flow).length, np.int32)


@lowering("TensorArrayCloseV3")
def close(node):
  def run(handle):
    _handle(node, handle)
    return None
  return run


@lowering("TensorArrayGradV3", "TensorArrayGradWithShape", attrs={"source": None})
def grad(node):
  source = node.attrs.get("source", "")
  with_shape = node.op == "TensorArrayGradWithShape"

  def run(handle, flow, prepend=None):
    h = _handle(node, handle)
    if with_shape:
      if not is_static(prepend) or np.ndim(prepend) != 1:
        raise ConversionError(f"{_where(node)}: shape_to_prepend must be a vector known "
                              "at conversion time.")
      extra = tuple(int(d) for d in prepend)
    else:
      extra = ()
    g = TensorArrayHandle(h.key + (("grad", source, extra),), grad_of=h.key, prepend=extra)
    return g, flow  # the flow: the forward array's or earlier gradient writes'
  return run


@lowering(FLOW_ADD_N, attrs={"T": None, "N": None})
def flow_add_n(node):
  """TF's sum of the gradient flows of one forward flow: the sum of the contents."""
  def run(*flows):
    if not all(isinstance(f, TensorArray) for f in flows) or \
        len({f.key for f in flows}) != 1:
      raise ConversionError(f"{_where(node)} adds flows of different TensorArrays.")
    out = flows[0]
    for f in flows[1:]:
      if f.length != out.length:
        raise ValueError(f"{_where(node)}: gradient arrays of sizes {out.length} and "
                         f"{f.length}")
      if f.buffer is None:
        continue
      if out.buffer is None:
        out = dataclasses.replace(out, buffer=f.buffer)
      else:
        out = dataclasses.replace(out, buffer=jnp.asarray(out.buffer) + f.buffer)
    return [out]  # no OpDef: the converter does not know it has one output
  return run


# The graph rewrite: AddN of flows ----------------------------------------------------

_FLOW_PORT = {"TensorArrayV3": 1, "TensorArrayGradV3": 1, "TensorArrayGradWithShape": 1,
              "TensorArrayWriteV3": 0, "TensorArrayScatterV3": 0, "TensorArraySplitV3": 0,
              FLOW_ADD_N: 0}


def rewrite(graph: Graph) -> None:
  """AddN nodes that sum TensorArray flows (TF's gradient aggregation) become
  `_TensorArrayFlowAddN` nodes."""
  nodes = graph.nodes
  if not any(n.op in _FLOW_PORT for n in nodes.values()):
    return
  memo: dict[tuple[str, int], bool] = {}

  def is_flow(t) -> bool:
    if t in memo:
      return memo[t]
    memo[t] = False  # cycles (TF1 loops) end here
    node = nodes.get(t[0])
    result = False
    if node is not None:
      if node.op in _FLOW_PORT:
        result = t[1] == _FLOW_PORT[node.op]
      elif node.op in ("Identity", "Snapshot") and node.inputs:
        result = is_flow(node.inputs[0])
      elif node.op == "AddN" and node.inputs:
        result = all(is_flow(i) for i in node.inputs)
    memo[t] = result
    return result

  for name, node in list(nodes.items()):
    if node.op == "AddN" and is_flow((name, 0)):
      nodes[name] = dataclasses.replace(node, op=FLOW_ADD_N, output_dtypes=None)


# ToBool --------------------------------------------------------------------------------

# The scalar dtypes TF's ToBool takes (any other scalar: InvalidArgument); string is no
# JAX dtype.
_SCALAR_DTYPES = ("bool", "float32", "float64", "int8", "int16", "int32", "int64", "uint8")


@lowering("ToBool", attrs={"T": None})
def to_bool(node):
  dtype = np.dtype(node.attrs["T"])

  def run(x):
    if np.ndim(x) != 0:  # TF: true when not empty
      return np.asarray(np.size(x) > 0)
    if dtype.name not in _SCALAR_DTYPES:
      raise ValueError(f"{_where(node)}: {dtype.name} cannot be converted to a boolean")
    if dtype == np.bool_:
      return x
    return x != 0
  return run
