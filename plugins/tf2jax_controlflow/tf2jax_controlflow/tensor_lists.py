"""TensorList ops (what `tf.TensorArray` becomes in TF2 graphs).

A `TensorList` value holds its elements stacked in one array, so it can travel through
`lax` loops as a pytree. Its length, dtype and element shape are static. The buffer is
allocated at the first write when the element shape is not fully known before, which
`tf.TensorArray`s inside loops rely on (the While lowering finds the shape by tracing the
body once). Unwritten elements read as zeros, as in TF when their shape is known.

`element_shape` is the shape the list *declares* (TF's `element_shape` of the list, what
TensorListElementShape returns), which may be less known than its elements' shapes; the
readers use it, their own element_shape input and the written elements' shape as TF does.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from tf2jax_core import ConversionError, is_static, lowering


@jax.tree_util.register_pytree_node_class
@dataclasses.dataclass
class TensorList:
  length: int
  dtype: np.dtype
  element_shape: tuple | None  # declared; None dims (or None rank) are unknown
  buffer: jax.Array | np.ndarray | None = None  # [length, *element_shape] once known
  max_num: int = -1  # EmptyTensorList's max_num_elements (-1: unlimited)

  def tree_flatten(self):
    children = () if self.buffer is None else (self.buffer,)
    return children, (self.length, self.dtype, self.element_shape, self.buffer is not None,
                      self.max_num)

  @classmethod
  def tree_unflatten(cls, aux, children):
    length, dtype, shape, has_buffer, max_num = aux
    return cls(length, dtype, shape, children[0] if has_buffer else None, max_num)

  def known_shape(self) -> tuple | None:
    """The element shape when fully known, else None."""
    if self.buffer is not None:
      return tuple(self.buffer.shape[1:])
    if self.element_shape is None or None in self.element_shape:
      return None
    return self.element_shape

  def stacked(self, where: str, requested: tuple | None = None):
    """All elements in one array, as TensorListStack reads them: `requested` is the
    reader's element_shape input, merged with the declared one and the elements'."""
    shape = _merge(self.element_shape, requested, where)
    if self.length == 0:  # TF takes the shape from the declared and requested ones only
      if shape is None or None in shape:
        raise ValueError(f"{where}: reading an empty list whose element shape "
                         f"{_show(shape)} is not fully known")
      return np.zeros((0,) + shape, self.dtype)
    if self.buffer is not None:
      _merge(shape, tuple(self.buffer.shape[1:]), where)
      return self.buffer
    if shape is None or None in shape:
      raise ValueError(
          f"{where}: reading a TensorList whose elements were never written and whose "
          f"element shape {_show(shape)} is not fully known")
    return np.zeros((self.length,) + shape, self.dtype)

  def with_buffer(self, buffer) -> "TensorList":
    return dataclasses.replace(self, length=int(buffer.shape[0]), buffer=buffer)


def _show(shape) -> str:
  return "unknown" if shape is None else str([-1 if d is None else d for d in shape])


def _shape_from_tensor(value) -> tuple | None:
  """TF's element_shape input: -1 (unknown rank) or a vector with -1 for unknown dims."""
  value = np.asarray(value)
  if value.ndim == 0:
    if int(value) != -1:
      raise ValueError(f"a scalar element_shape must be -1, got {int(value)}")
    return None
  return tuple(None if int(d) < 0 else int(d) for d in value)


def _merge(a: tuple | None, b: tuple | None, where: str = "") -> tuple | None:
  if a is None:
    return b
  if b is None:
    return a
  if len(a) != len(b) or any(x is not None and y is not None and x != y for x, y in zip(a, b)):
    raise ValueError(f"{where}: element shapes {_show(a)} and {_show(b)} are incompatible")
  return tuple(x if x is not None else y for x, y in zip(a, b))


def _list(node, value) -> TensorList:
  if not isinstance(value, TensorList):
    raise ConversionError(f"{node.op} node {node.path!r} expects a TensorList, got "
                          f"{type(value).__name__}.")
  return value


def _check_dtype(node, tl: TensorList) -> None:
  want = node.attrs.get("element_dtype")
  if want is not None and np.dtype(want) != tl.dtype:
    raise ConversionError(f"{node.op} node {node.path!r} reads {np.dtype(want).name} "
                          f"elements from a list of {tl.dtype.name}.")


def _check_item(node, tl: TensorList, shape: tuple) -> None:
  """An item written into the list must fit its declared element shape (TF fails too)
  and the shape of the elements already written (one stacked buffer holds them all)."""
  _merge(tl.element_shape, shape, node.path)
  if tl.buffer is not None and tl.length and tuple(tl.buffer.shape[1:]) != shape:
    raise ConversionError(
        f"{node.op} node {node.path!r} writes an element of shape {list(shape)} into a "
        f"list of elements of shape {list(tl.buffer.shape[1:])}; tf2jax stacks a list in "
        "one array, so its elements must share one shape.")


def _index(node, index, length: int):
  if np.ndim(index) != 0:
    raise ValueError(f"the index must be a scalar, got shape {np.shape(index)}")
  if is_static(index):
    i = int(index)
    if not 0 <= i < length:
      raise ValueError(f"index {i} is out of range for a list of {length} elements")
    return i
  return index


_SHAPE_TYPE = ("int32", "int64")


@lowering("TensorListReserve", attrs={"element_dtype": None, "shape_type": _SHAPE_TYPE},
          static_inputs=(0, 1))
def reserve(node):
  dtype = np.dtype(node.attrs["element_dtype"])
  return lambda shape, n: TensorList(int(n), dtype, _shape_from_tensor(shape))


@lowering("EmptyTensorList", attrs={"element_dtype": None, "shape_type": _SHAPE_TYPE},
          static_inputs=(0,))
def empty(node):
  dtype = np.dtype(node.attrs["element_dtype"])
  # A traced max_num_elements (never seen in practice) is not enforced.
  return lambda shape, max_num: TensorList(0, dtype, _shape_from_tensor(shape),
                                           max_num=int(max_num) if is_static(max_num) else -1)


@lowering("TensorListFromTensor", attrs={"element_dtype": None, "shape_type": _SHAPE_TYPE},
          static_inputs=(1,))
def from_tensor(node):
  def run(tensor, shape):
    if np.ndim(tensor) < 1:
      raise ValueError("TensorListFromTensor needs a tensor of rank >= 1")
    declared = _shape_from_tensor(shape)
    _merge(declared, tuple(np.shape(tensor)[1:]), node.path)
    return TensorList(int(np.shape(tensor)[0]), np.dtype(tensor.dtype), declared, tensor)
  return run


@lowering("TensorListGetItem", attrs={"element_dtype": None}, static_inputs=(2,))
def get_item(node):
  strict = not node.config("disable_assert_in_tensor_list_get_item")

  def run(handle, index, shape):
    tl = _list(node, handle)
    _check_dtype(node, tl)
    i = _index(node, index, tl.length)
    requested = _shape_from_tensor(shape)
    if strict:
      known = tl.known_shape()  # () for scalars: test for None, not truth
      _merge(tl.element_shape if known is None else known, requested,
             f"TensorListGetItem {node.path!r}")
    if tl.buffer is None:
      known = _merge(tl.element_shape, requested, node.path)
      if known is None or None in known:
        raise ConversionError(f"TensorListGetItem node {node.path!r}: the item was never "
                              f"written and its shape {_show(known)} is not fully known.")
      return np.zeros(known, tl.dtype)
    if isinstance(i, int):
      return tl.buffer[i]
    return jax.lax.dynamic_index_in_dim(tl.buffer, i, keepdims=False)
  return run


@lowering("TensorListSetItem", attrs={"element_dtype": None,
                                      "resize_if_index_out_of_bounds": None})
def set_item(node):
  resize = node.attrs.get("resize_if_index_out_of_bounds", False)

  def run(handle, index, item):
    tl = _list(node, handle)
    _check_dtype(node, tl)
    _check_item(node, tl, tuple(np.shape(item)))
    if resize:  # a dynamic-size TensorArray: grows to hold a static index
      if not is_static(index):
        raise ConversionError(
            f"TensorListSetItem node {node.path!r} writes a dynamic-size TensorArray at a "
            "traced index; JAX arrays cannot grow at run time. Give the TensorArray a "
            "fixed size.")
      if int(index) >= tl.length:
        tl = resize_list(tl, int(index) + 1)
    i = _index(node, index, tl.length)
    buffer = tl.buffer if tl.buffer is not None else \
        jnp.zeros((tl.length,) + tuple(np.shape(item)), tl.dtype)
    if isinstance(i, int):
      buffer = jnp.asarray(buffer).at[i].set(item)
    else:
      buffer = jax.lax.dynamic_update_index_in_dim(jnp.asarray(buffer), item, i, 0)
    return tl.with_buffer(buffer)
  return run


@lowering("TensorListStack", attrs={"element_dtype": None, "num_elements": None},
          static_inputs=(1,))
def stack(node):
  expected = node.attrs.get("num_elements", -1)

  def run(handle, shape):
    tl = _list(node, handle)
    _check_dtype(node, tl)
    if expected != -1 and expected != tl.length:
      raise ValueError(f"the list has {tl.length} elements, the op expects {expected}")
    return tl.stacked(f"TensorListStack node {node.path!r}", _shape_from_tensor(shape))
  return run


@lowering("TensorListGather", attrs={"element_dtype": None}, static_inputs=(2,))
def gather(node):
  def run(handle, indices, shape):
    tl = _list(node, handle)
    _check_dtype(node, tl)
    where = f"TensorListGather node {node.path!r}"
    requested = _shape_from_tensor(shape)
    if np.size(indices) == 0:  # TF takes the shape from the declared and requested ones
      return TensorList(0, tl.dtype, tl.element_shape).stacked(where, requested).reshape(
          tuple(np.shape(indices)) + (*_merge(tl.element_shape, requested),))
    stacked = tl.stacked(where, requested)
    if is_static(indices) and np.any((indices < 0) | (indices >= tl.length)):
      raise ValueError(f"indices {indices} out of range for {tl.length} elements")
    return (np if is_static(stacked, indices) else jnp).take(stacked, indices, axis=0)
  return run


@lowering("TensorListLength")
def length(node):
  return lambda handle: np.asarray(_list(node, handle).length, np.int32)


@lowering("TensorListElementShape", attrs={"shape_type": _SHAPE_TYPE})
def element_shape(node):
  out = np.dtype(node.attrs["shape_type"])

  def run(handle):
    shape = _list(node, handle).element_shape  # the declared shape, as TF returns it
    if shape is None:
      return np.asarray(-1, out)
    return np.asarray([-1 if d is None else d for d in shape], out)
  return run


@lowering("TensorListPushBack", attrs={"element_dtype": None})
def push_back(node):
  def run(handle, item):
    tl = _list(node, handle)
    _check_dtype(node, tl)
    if tl.max_num != -1 and tl.length >= tl.max_num:
      raise ValueError(f"pushing onto a full list ({tl.length} elements, max_num_elements "
                       f"{tl.max_num})")
    item_shape = tuple(np.shape(item))
    _check_item(node, tl, item_shape)
    if tl.length == 0:
      old = np.zeros((0,) + item_shape, tl.dtype)
    else:
      old = tl.stacked(node.path, item_shape)
    m = np if is_static(old, item) else jnp
    buffer = m.concatenate([old, m.asarray(item, tl.dtype)[None]], axis=0)
    return tl.with_buffer(buffer)
  return run


@lowering("TensorListPopBack", attrs={"element_dtype": None}, static_inputs=(1,))
def pop_back(node):
  def run(handle, shape):
    tl = _list(node, handle)
    _check_dtype(node, tl)
    if tl.length == 0:
      raise ValueError("cannot pop from an empty list")
    stacked = tl.stacked(node.path, _shape_from_tensor(shape))
    return tl.with_buffer(stacked[:-1]), stacked[-1]
  return run


@lowering("TensorListScatter", "TensorListScatterV2",
          attrs={"element_dtype": None, "shape_type": _SHAPE_TYPE}, static_inputs=(1, 2, 3))
def scatter(node):
  def run(tensor, indices, shape, num_elements=None):
    indices = np.asarray(indices).reshape(-1)
    if np.any(indices < 0):
      raise ValueError(f"negative indices {indices}")
    n = int(indices.max()) + 1 if indices.size else 0
    if num_elements is not None and int(num_elements) != -1:
      if int(num_elements) < n:
        raise ValueError(f"num_elements {int(num_elements)} < max index + 1 ({n})")
      n = int(num_elements)
    element = _shape_from_tensor(shape)
    _merge(element, tuple(np.shape(tensor)[1:]), node.path)
    m = np if is_static(tensor) else jnp
    buffer = m.zeros((n,) + tuple(np.shape(tensor)[1:]), tensor.dtype)
    buffer = buffer.at[indices].set(tensor) if m is jnp else _np_set(buffer, indices, tensor)
    return TensorList(n, np.dtype(tensor.dtype), element, buffer)
  return run


def _np_set(buffer, indices, values):
  buffer = buffer.copy()
  buffer[indices] = values
  return buffer


@lowering("TensorListScatterIntoExistingList", attrs={"element_dtype": None},
          static_inputs=(2,))
def scatter_into(node):
  def run(handle, tensor, indices):
    tl = _list(node, handle)
    indices = np.asarray(indices).reshape(-1)
    if np.any((indices < 0) | (indices >= tl.length)):
      raise ValueError(f"indices {indices} out of range for {tl.length} elements")
    if tl.buffer is None:
      buffer = jnp.zeros((tl.length,) + tuple(np.shape(tensor)[1:]), tl.dtype)
    else:
      buffer = jnp.asarray(tl.buffer)
    return tl.with_buffer(buffer.at[indices].set(tensor))
  return run


def resize_list(tl: TensorList, n: int) -> TensorList:
  if n < 0:
    raise ValueError(f"negative size {n}")
  if tl.buffer is None:
    return dataclasses.replace(tl, length=n)
  buffer = tl.buffer[:n]
  if n > tl.length:
    m = np if is_static(buffer) else jnp
    pad = m.zeros((n - tl.length,) + tuple(buffer.shape[1:]), tl.dtype)
    buffer = m.concatenate([buffer, pad], axis=0)
  return tl.with_buffer(buffer)


@lowering("TensorListResize", static_inputs=(1,))
def resize(node):
  return lambda handle, size: resize_list(_list(node, handle), int(size))


@lowering("TensorListConcat", "TensorListConcatV2",
          attrs={"element_dtype": None, "element_shape": None, "shape_type": _SHAPE_TYPE},
          static_inputs=(1, 2))
def concat(node):
  v2 = node.op == "TensorListConcatV2"
  attr_shape = node.attrs.get("element_shape")

  def run(handle, shape=None, leading_dims=None):
    tl = _list(node, handle)
    _check_dtype(node, tl)
    where = f"{node.op} node {node.path!r}"
    requested = _shape_from_tensor(shape) if v2 else _attr_shape(attr_shape)
    merged = _merge(tl.element_shape, requested, where)
    if merged is not None and len(merged) == 0:
      raise ValueError(f"{where}: concatenating scalars (elements need rank >= 1)")
    leading = [] if leading_dims is None else [int(d) for d in np.reshape(leading_dims, -1)]
    if tl.length == 0:  # TF: every dim but the first must be known
      if merged is None or None in merged[1:]:
        raise ValueError(f"{where}: concatenating an empty list whose element shape "
                         f"{_show(merged)} is not known past its first dim")
      return np.zeros((0,) + merged[1:], tl.dtype), np.zeros((0,), np.int64)
    if tl.buffer is None:  # nothing written: TF makes zeros of the known shapes
      if not v2:
        raise ValueError(f"{where}: TensorListConcat (v1) refuses unwritten elements")
      rest = None if merged is None else merged[1:]
      if rest is None or None in rest:
        raise ValueError(f"{where}: unwritten elements of unknown shape {_show(merged)}")
      if leading:  # TF prefers them to the element shape's first dim
        if len(leading) != tl.length:
          raise ValueError(f"{where}: {len(leading)} leading_dims for {tl.length} elements")
        lengths = np.asarray(leading, np.int64)
      elif merged[0] is not None:
        lengths = np.full((tl.length,), merged[0], np.int64)
      else:
        raise ValueError(f"{where}: unwritten elements of unknown length")
      return np.zeros((int(lengths.sum()),) + rest, tl.dtype), lengths
    stacked = tl.stacked(where, merged)
    if stacked.ndim < 2:
      raise ValueError(f"{where}: concatenating scalars (elements need rank >= 1)")
    if leading and any(d != stacked.shape[1] for d in leading):
      # TF gives unwritten elements the leading_dims' lengths; the stacked buffer cannot
      # tell written elements from unwritten ones.
      raise ConversionError(f"{where}: leading_dims {leading} for a list written in part "
                            f"(its elements have {stacked.shape[1]} rows); tf2jax cannot "
                            "tell written from unwritten elements.")
    lengths = np.full((tl.length,), stacked.shape[1], np.int64)
    rows = tl.length * int(stacked.shape[1])
    return stacked.reshape((rows,) + tuple(stacked.shape[2:])), lengths
  return run


def _attr_shape(shape) -> tuple | None:
  """A decoded shape attr (None: unknown rank) as a partial shape."""
  return None if shape is None else tuple(shape)


@lowering("TensorListConcatLists", attrs={"element_dtype": None})
def concat_lists(node):
  """Two lists joined; scalar handles only (a batch of lists is no TensorList)."""
  def run(a, b):
    a, b = _list(node, a), _list(node, b)
    _check_dtype(node, a)
    _check_dtype(node, b)
    where = f"TensorListConcatLists node {node.path!r}"
    if a.element_shape != b.element_shape:  # TF: identical, not just compatible
      raise ValueError(f"{where}: the lists' element shapes {_show(a.element_shape)} and "
                       f"{_show(b.element_shape)} are not identical")
    if a.length == 0 or b.length == 0:  # nothing to stack: the other list as it is
      keep = b if a.length == 0 else a
      return dataclasses.replace(keep, element_shape=a.element_shape, max_num=-1)
    if a.buffer is None and b.buffer is None:
      return TensorList(a.length + b.length, a.dtype, a.element_shape)
    elements = tuple((a.buffer if a.buffer is not None else b.buffer).shape[1:])
    parts = [x.stacked(where, elements) for x in (a, b)]
    if tuple(parts[0].shape[1:]) != tuple(parts[1].shape[1:]):
      raise ConversionError(f"{where}: lists of elements of shapes "
                            f"{list(parts[0].shape[1:])} and {list(parts[1].shape[1:])}; "
                            "tf2jax stacks a list in one array, so its elements must share "
                            "one shape.")
    m = np if is_static(*parts) else jnp
    return TensorList(a.length + b.length, a.dtype, a.element_shape,
                      m.concatenate(parts, axis=0))
  return run


@lowering("TensorListSplit", attrs={"element_dtype": None, "shape_type": _SHAPE_TYPE},
          static_inputs=(1, 2))
def split(node):
  def run(tensor, shape, lengths):
    lengths = np.asarray(lengths).reshape(-1)
    if lengths.sum() != np.shape(tensor)[0]:
      raise ValueError(f"lengths {lengths} do not add up to {np.shape(tensor)[0]}")
    if len(set(lengths.tolist())) > 1:
      raise ConversionError(f"TensorListSplit node {node.path!r}: pieces of different "
                            f"lengths {lengths.tolist()} cannot be stacked in one array.")
    n = len(lengths)
    size = int(lengths[0]) if n else 0
    buffer = tensor.reshape((n, size) + tuple(np.shape(tensor)[1:]))
    element = _shape_from_tensor(shape)
    _merge(element, (size,) + tuple(np.shape(tensor)[1:]), node.path)
    return TensorList(n, np.dtype(tensor.dtype), element, buffer)
  return run
