"""Conformance specs of tf2jax-controlflow's TensorList ops (what `tf.TensorArray`
becomes in TF2 graphs).

A TensorList is a variant handle, not a value, so every spec builds a small graph that
puts tensors into a list, applies the op and reads the list back (e.g. FromTensor ->
SetItem -> Stack); `contains` names the list ops each graph holds. Hypothesis draws
element shapes (including empty lists and 0-sized elements), the element shapes the ops
declare (unknown rank, partially and fully known), indices, lengths and the list sizes;
the cases are the element dtypes (TensorListStack: every dtype TF's TensorList kernels
take; the other ops a sample, see SAMPLE_DTYPES). Static sizes and indices (the `extra`
of an example) are constants of the graph; indices that TensorList ops take as tensors
are inputs (traced) where the lowering takes them traced.
A test dependency: only the plugin's `tf2jax_conformance_specs` hook imports this module.
"""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

from tf2jax_conformance import dtypes as D
from tf2jax_conformance import strategies as cst
from tf2jax_conformance.spec import Example, OpSpec

# The element dtypes of TF's CPU TensorList kernels (TensorListStack and the other
# readers), less those no JAX array holds (string, variant, quantized).
LIST_DTYPES = ("bool",) + D.FLOAT + D.COMPLEX + D.INT
# For ops whose kernels accept any dtype (TensorListSetItem, PushBack, Reserve,
# EmptyTensorList): the other dtypes cannot be read back out of a list.
_UNREADABLE = {d: "no TF kernel reads such a list back (TensorListStack, GetItem, Gather "
                  "and Concat are not registered for it)" for d in D.ALL
               if d not in LIST_DTYPES}

# TensorListStack (which makes the zeros of unwritten elements and reads the stacked
# buffer) covers every dtype, TensorListSetItem (which allocates and updates the buffer)
# a sample of every kind; the other list ops move elements without looking at their
# dtype, and cover bool, a 64-bit integer and a float with grad. To keep the ci profile
# cheap.
WIDE_SAMPLE_DTYPES = ("bool", "uint8", "int64", "float16", "bfloat16", "float32",
                      "complex128")
SAMPLE_DTYPES = ("bool", "int64", "float32")


def _sampled_out(sample):
  return {d: "the lowering moves elements whatever their dtype: TensorListStack covers "
             f"every dtype, this op {', '.join(sample)} (to keep the ci profile cheap)"
          for d in LIST_DTYPES if d not in sample}


_SAMPLED_OUT = _sampled_out(SAMPLE_DTYPES)

_GRAD_NOTE = ("grad: through the whole graph (TF's TensorList gradients against JAX's "
              "autodiff of the stacked buffer). ")


def _tf():
  import tensorflow as tf
  return tf


# Strategies ---------------------------------------------------------------------------


def _declared(shape) -> st.SearchStrategy:
  """An element_shape an op may declare for elements of `shape`: -1 (unknown rank), the
  shape, or the shape with some dims unknown (-1)."""
  shape = [int(d) for d in shape]
  options = [st.just(-1), st.just(list(shape))]
  if shape:
    options.append(st.lists(st.booleans(), min_size=len(shape), max_size=len(shape)).map(
        lambda unknown: [-1 if u else d for u, d in zip(unknown, shape)]))
  return st.one_of(*options)


# The first option of a `sampled_from` (and of a `one_of`) is what the first, simplest
# example of a case draws: a list of 3 elements of shape [2], not an empty list.


def _lengths(min_len=0):
  return st.sampled_from([n for n in (3, 1, 2, 4, 0) if n >= min_len])


def _element_shapes(min_dims=0):
  return st.one_of(st.just((2,)), cst.shapes(min_dims=min_dims, max_dims=2, max_side=3))


def _elements(dtype, min_len=0):
  """A tensor whose rows are list elements: [length, *element_shape]."""
  return st.tuples(_lengths(min_len), _element_shapes()).flatmap(
      lambda t: cst.arrays(dtype, (t[0],) + t[1]))


def _shape_type():
  return st.sampled_from(["int32", "int64"])


# Building blocks (inside the traced function) -----------------------------------------


def _shape(es, shape_type="int32"):
  tf = _tf()
  return tf.constant(es, tf.as_dtype(shape_type))


def _stack(handle, dtype, es=-1, num=-1):
  tf = _tf()
  return tf.raw_ops.TensorListStack(input_handle=handle, element_shape=_shape(es),
                                    element_dtype=tf.as_dtype(D.np_dtype(dtype)),
                                    num_elements=num)


def _from_tensor(x, es=-1, shape_type="int32"):
  tf = _tf()
  return tf.raw_ops.TensorListFromTensor(tensor=x, element_shape=_shape(es, shape_type))


def _reserve(es, n, dtype, shape_type="int32"):
  tf = _tf()
  return tf.raw_ops.TensorListReserve(element_shape=_shape(es, shape_type),
                                      num_elements=tf.constant(n, tf.int32),
                                      element_dtype=tf.as_dtype(D.np_dtype(dtype)))


def _tf_dtype(dtype):
  return _tf().as_dtype(D.np_dtype(dtype))


def _as_output(values, ints, dtype):
  """`(values, ints)`; for the float dtypes (the grad cases, whose check takes every
  output) the integer output cast to the values' dtype (small counts: exact)."""
  if dtype in D.FLOAT:
    return values, _tf().cast(ints, values.dtype)
  return values, ints


def _with_length(values, handle, dtype):
  return _as_output(values, _tf().raw_ops.TensorListLength(input_handle=handle), dtype)


# Specs ----------------------------------------------------------------------------------
# Each `_x_example(dtype)` draws an Example; each `_x_build(example)` returns the function
# of the example's (non-static) inputs.


def _from_tensor_example(dtype):
  def more(x):
    return st.fixed_dictionaries({
        "es": _declared(x.shape[1:]), "read_es": _declared(x.shape[1:]),
        "shape_type": _shape_type()}).map(lambda e: Example({"tensor": x}, extra=e))
  return _elements(dtype).flatmap(more)


def _from_tensor_build(example):
  e, dtype = example.extra, D.name_of(example.inputs["tensor"].dtype)
  return lambda x: _stack(_from_tensor(x, e["es"], e["shape_type"]), dtype, e["read_es"])


def _stack_example(dtype):
  def more(x):
    n = x.shape[0]
    return st.fixed_dictionaries({
        "source": st.sampled_from(["from_tensor", "reserve"]),
        # Reserve: the list has `size` elements, the rows of x are written at `at`.
        "size": st.integers(n, n + 2),
        "es": _declared(x.shape[1:]), "read_es": _declared(x.shape[1:]),
        "num_elements": st.sampled_from(["-1", "length", "length+1"]),
    }).flatmap(lambda e: st.permutations(range(e["size"])).map(
        lambda p: Example({"tensor": x}, extra=dict(e, at=sorted(p[:n])))))
  return _elements(dtype).flatmap(more)


def _stack_build(example):
  tf = _tf()
  e, dtype = example.extra, D.name_of(example.inputs["tensor"].dtype)

  def fn(x):
    if e["source"] == "from_tensor":
      handle, n = _from_tensor(x, e["es"]), x.shape[0]
    else:
      handle, n = _reserve(e["es"], e["size"], dtype), e["size"]
      for row, i in enumerate(e["at"]):
        handle = tf.raw_ops.TensorListSetItem(input_handle=handle, index=i, item=x[row])
    num = {"-1": -1, "length": n, "length+1": n + 1}[e["num_elements"]]
    return _stack(handle, dtype, e["read_es"], num)
  return fn


def _get_item_example(dtype):
  def more(x):
    n = x.shape[0]
    return st.tuples(st.integers(0, n - 1), _declared(x.shape[1:]),
                     _declared(x.shape[1:]), st.booleans()).map(
        lambda t: Example({"tensor": x, "index": np.int32(t[0])},
                          extra={"es": t[1], "read_es": t[2], "unwritten": t[3]}))
  return _elements(dtype, min_len=1).flatmap(more)


def _get_item_build(example):
  tf = _tf()
  e, dtype = example.extra, D.name_of(example.inputs["tensor"].dtype)

  def fn(x, i):
    if e["unwritten"]:  # only element 0 is written: others read as zeros
      handle = _reserve(e["es"], x.shape[0], dtype)
      handle = tf.raw_ops.TensorListSetItem(input_handle=handle, index=0, item=x[0])
    else:
      handle = _from_tensor(x, e["es"])
    return tf.raw_ops.TensorListGetItem(input_handle=handle, index=i,
                                        element_shape=_shape(e["read_es"]),
                                        element_dtype=_tf_dtype(dtype))
  return fn


def _set_item_example(dtype):
  def more(x):
    n = x.shape[0]
    item = cst.arrays(dtype, x.shape[1:])
    grow = st.tuples(item, st.integers(n, n + 2)).map(
        lambda t: Example({"tensor": x, "item": t[0]}, extra={"grow_to": t[1]}))
    if n == 0:
      return grow
    inside = st.tuples(item, st.integers(0, n - 1)).map(
        lambda t: Example({"tensor": x, "item": t[0], "index": np.int32(t[1])}))
    return st.one_of(inside, grow)
  return _elements(dtype).flatmap(more)


def _set_item_build(example):
  tf = _tf()
  dtype = D.name_of(example.inputs["tensor"].dtype)
  shape = list(example.inputs["tensor"].shape[1:])
  grow_to = example.extra.get("grow_to")

  def fn(x, item, *i):
    handle = _from_tensor(x, -1)
    if grow_to is None:  # a traced index inside the list
      handle = tf.raw_ops.TensorListSetItem(input_handle=handle, index=i[0], item=item)
    else:  # a constant index at or past the end: the list grows (dynamic TensorArrays)
      handle = tf.raw_ops.TensorListSetItem(input_handle=handle, index=grow_to, item=item,
                                            resize_if_index_out_of_bounds=True)
    return _stack(handle, dtype, shape)
  return fn


def _gather_example(dtype):
  def more(x):
    n = x.shape[0]
    if dtype in D.FLOAT:  # grad cases: TF's gradient scatters without summing repeats
      indices = st.integers(0, n).flatmap(
          lambda k: st.permutations(range(n)).map(lambda p: np.asarray(p[:k], np.int32)))
    else:
      indices = cst.valid_indices(n, st.tuples(st.integers(0, 4)))
    return st.tuples(indices,
                     _declared(x.shape[1:]), _declared(x.shape[1:])).map(
        lambda t: Example({"tensor": x, "indices": t[0].astype(np.int32)},
                          extra={"es": t[1], "read_es": t[2]}))
  return _elements(dtype).flatmap(more)


def _gather_build(example):
  tf = _tf()
  e, dtype = example.extra, D.name_of(example.inputs["tensor"].dtype)
  shape = list(example.inputs["tensor"].shape[1:])
  return lambda x, idx: tf.raw_ops.TensorListGather(
      input_handle=_from_tensor(x, e["es"]), indices=idx,
      element_shape=_shape(e["read_es"] if x.shape[0] else shape),
      element_dtype=_tf_dtype(dtype))


def _scatter_example(v2: bool):
  def example(dtype):
    def more(x):
      n = x.shape[0]
      extra = {"indices": st.permutations(range(n + 3)).map(lambda p: list(p[:n])),
               "es": _declared(x.shape[1:]), "shape_type": _shape_type()}
      if v2:
        extra["num_elements"] = st.sampled_from(["-1", "max+1", "max+3", "max"])
      return st.fixed_dictionaries(extra).map(lambda e: Example({"tensor": x}, extra=e))
    return _elements(dtype).flatmap(more)
  return example


def _scatter_build(v2: bool):
  def build(example):
    tf = _tf()
    e, dtype = example.extra, D.name_of(example.inputs["tensor"].dtype)
    shape = list(example.inputs["tensor"].shape[1:])
    top = max(e["indices"], default=-1) + 1

    def fn(x):
      idx = tf.constant(e["indices"], tf.int32)
      es = _shape(e["es"], e["shape_type"])
      if v2:
        num = {"-1": -1, "max+1": top, "max+3": top + 2, "max": top - 1}[e["num_elements"]]
        handle = tf.raw_ops.TensorListScatterV2(tensor=x, indices=idx, element_shape=es,
                                                num_elements=num)
      else:
        handle = tf.raw_ops.TensorListScatter(tensor=x, indices=idx, element_shape=es)
      return _with_length(_stack(handle, dtype, shape), handle, dtype)
    return fn
  return build


def _scatter_into_example(dtype):
  def more(x):
    n = x.shape[0]
    return st.tuples(st.integers(0, n), st.booleans()).flatmap(
        lambda t: st.tuples(cst.arrays(dtype, (t[0],) + x.shape[1:]),
                            st.permutations(range(n))).map(
            lambda u: Example({"tensor": x, "updates": u[0]},
                              extra={"indices": list(u[1][:t[0]]), "unwritten": t[1]})))
  return _elements(dtype).flatmap(more)


def _scatter_into_build(example):
  tf = _tf()
  e, dtype = example.extra, D.name_of(example.inputs["tensor"].dtype)
  shape = list(example.inputs["tensor"].shape[1:])

  def fn(x, u):
    if e["unwritten"]:
      handle = _reserve(shape, x.shape[0], dtype)
    else:
      handle = _from_tensor(x, -1)
    handle = tf.raw_ops.TensorListScatterIntoExistingList(
        input_handle=handle, tensor=u, indices=tf.constant(e["indices"], tf.int32))
    return _stack(handle, dtype, shape)
  return fn


def _push_back_example(dtype):
  def more(t):
    x, u = t
    return st.fixed_dictionaries({
        "source": st.sampled_from(["empty", "from_tensor"]),
        "es": _declared(x.shape[1:]),
        "max_num": st.sampled_from(["-1", "enough", "too_few"]),
    }).map(lambda e: Example({"tensor": x, "items": u}, extra=e))

  def pair(x):
    return st.integers(1, 3).flatmap(
        lambda k: cst.arrays(dtype, (k,) + x.shape[1:])).map(lambda u: (x, u))
  return _elements(dtype).flatmap(pair).flatmap(more)


def _push_back_build(example):
  tf = _tf()
  e, dtype = example.extra, D.name_of(example.inputs["tensor"].dtype)
  shape = list(example.inputs["tensor"].shape[1:])
  k = example.inputs["items"].shape[0]

  def fn(x, u):
    if e["source"] == "empty":
      total = k
      max_num = {"-1": -1, "enough": total, "too_few": total - 1}[e["max_num"]]
      handle = tf.raw_ops.EmptyTensorList(
          element_shape=_shape(e["es"]), max_num_elements=tf.constant(max_num, tf.int32),
          element_dtype=_tf_dtype(dtype))
    else:
      handle = _from_tensor(x, e["es"])
    for j in range(k):
      handle = tf.raw_ops.TensorListPushBack(input_handle=handle, tensor=u[j])
    return _stack(handle, dtype, shape)
  return fn


def _pop_back_example(dtype):
  def more(x):
    n = x.shape[0]
    return st.tuples(st.integers(1, max(n, 1)), _declared(x.shape[1:]),
                     _declared(x.shape[1:])).map(
        lambda t: Example({"tensor": x}, extra={"pops": t[0], "es": t[1], "read_es": t[2]}))
  return _elements(dtype).flatmap(more)


def _pop_back_build(example):
  tf = _tf()
  e, dtype = example.extra, D.name_of(example.inputs["tensor"].dtype)
  shape = list(example.inputs["tensor"].shape[1:])

  def fn(x):
    handle, items = _from_tensor(x, e["es"]), []
    for _ in range(e["pops"]):
      handle, item = tf.raw_ops.TensorListPopBack(
          input_handle=handle, element_shape=_shape(e["read_es"]),
          element_dtype=_tf_dtype(dtype))
      items.append(item)
    return [_stack(handle, dtype, shape)] + items
  return fn


def _concat_example(v2: bool):
  def example(dtype):
    def more(x):
      n = x.shape[0]

      def with_split(p):  # the elements: rows of x (p = 1) or p pieces of n // p rows
        element = x.shape[1:] if p == 1 else (n // p,) + x.shape[1:]
        extra = {"es": _declared(element), "split": st.just(p)}
        if v2:
          extra["shape_type"] = _shape_type()
          extra["unwritten"] = st.booleans()
        return st.fixed_dictionaries(extra).map(lambda e: Example({"tensor": x}, extra=e))
      return st.sampled_from([p for p in (1, 2, 3) if n % p == 0]).flatmap(with_split)
    # Elements of rank >= 1: the rows of x, or equal pieces of x (TensorListSplit).
    return st.tuples(_lengths(), _element_shapes(min_dims=1)).flatmap(
        lambda t: cst.arrays(dtype, (t[0],) + t[1])).flatmap(more)
  return example


def _concat_build(v2: bool):
  def build(example):
    tf = _tf()
    e, dtype = example.extra, D.name_of(example.inputs["tensor"].dtype)
    x_shape = list(example.inputs["tensor"].shape)

    def fn(x):
      unwritten = v2 and e["unwritten"] and e["split"] == 1
      if unwritten:  # never written: the elements' shapes come from leading_dims
        handle = _reserve([-1] + x_shape[2:], x_shape[0], dtype)
      elif e["split"] == 1:
        handle = _from_tensor(x, -1)
      else:
        p = e["split"]
        handle = tf.raw_ops.TensorListSplit(
            tensor=x, element_shape=_shape(-1),
            lengths=tf.constant([x_shape[0] // p] * p, tf.int64))
      if v2:
        leading = [x_shape[1]] * x_shape[0] if unwritten else []
        values, lengths = tf.raw_ops.TensorListConcatV2(
            input_handle=handle, element_shape=_shape(e["es"], e["shape_type"]),
            leading_dims=tf.constant(leading, tf.int64), element_dtype=_tf_dtype(dtype))
      else:
        es = None if e["es"] == -1 else [None if d == -1 else d for d in e["es"]]
        values, lengths = tf.raw_ops.TensorListConcat(
            input_handle=handle, element_dtype=_tf_dtype(dtype),
            element_shape=tf.TensorShape(es))
      return _as_output(values, lengths, dtype)
    return fn
  return build


def _split_example(dtype):
  def more(t):
    pieces, size, rest = t
    return st.tuples(cst.arrays(dtype, (pieces * size,) + rest),
                     _declared((size,) + rest), _shape_type()).map(
        lambda u: Example({"tensor": u[0]}, extra={"pieces": pieces, "es": u[1],
                                                   "shape_type": u[2]}))
  return st.tuples(st.sampled_from([2, 0, 1, 3]), st.sampled_from([2, 0, 1, 3]),
                   cst.shapes(max_dims=1, max_side=3)).flatmap(more)


def _split_build(example):
  tf = _tf()
  e, dtype = example.extra, D.name_of(example.inputs["tensor"].dtype)
  x_shape = list(example.inputs["tensor"].shape)
  p = e["pieces"]
  size = x_shape[0] // p if p else 0

  def fn(x):
    handle = tf.raw_ops.TensorListSplit(
        tensor=x, element_shape=_shape(e["es"], e["shape_type"]),
        lengths=tf.constant([size] * p, tf.int64))
    return _with_length(_stack(handle, dtype, [size] + x_shape[1:]), handle, dtype)
  return fn


def _resize_example(dtype):
  def more(x):
    return st.tuples(st.integers(0, x.shape[0] + 2), _declared(x.shape[1:])).map(
        lambda t: Example({"tensor": x}, extra={"size": t[0], "es": t[1]}))
  return _elements(dtype).flatmap(more)


def _resize_build(example):
  tf = _tf()
  e, dtype = example.extra, D.name_of(example.inputs["tensor"].dtype)
  shape = list(example.inputs["tensor"].shape[1:])

  def fn(x):
    handle = tf.raw_ops.TensorListResize(input_handle=_from_tensor(x, e["es"]),
                                         size=tf.constant(e["size"], tf.int32))
    return _stack(handle, dtype, shape)
  return fn


_SOURCES = ("from_tensor", "reserve", "empty_push", "split")


def _list_of(source, x, es, dtype, shape_type="int32"):
  """A list of the rows of x made by `source` (reserve: unwritten)."""
  tf = _tf()
  if source == "from_tensor":
    return _from_tensor(x, es, shape_type)
  if source == "reserve":
    return _reserve(es, x.shape[0], dtype, shape_type)
  if source == "empty_push":
    handle = tf.raw_ops.EmptyTensorList(element_shape=_shape(es, shape_type),
                                        max_num_elements=tf.constant(-1, tf.int32),
                                        element_dtype=_tf_dtype(dtype))
    for j in range(x.shape[0]):
      handle = tf.raw_ops.TensorListPushBack(input_handle=handle, tensor=x[j])
    return handle
  return tf.raw_ops.TensorListSplit(tensor=tf.reshape(x, [-1] + list(x.shape[2:])),
                                    element_shape=_shape(es, shape_type),
                                    lengths=tf.constant([x.shape[1]] * x.shape[0], tf.int64))


def _length_example(dtype):
  def more(x):
    return st.tuples(st.sampled_from(_SOURCES), _declared(x.shape[1:])).map(
        lambda t: Example({"tensor": x}, extra={"source": t[0], "es": t[1]}))
  return st.sampled_from(LIST_DTYPES).flatmap(_elements).flatmap(more)


def _length_build(example):
  tf = _tf()
  e = example.extra
  dtype = D.name_of(example.inputs["tensor"].dtype)
  source = e["source"] if (e["source"] != "split" or example.inputs["tensor"].ndim >= 2) \
      else "from_tensor"
  return lambda x: tf.raw_ops.TensorListLength(
      input_handle=_list_of(source, x, e["es"] if source != "split" else -1, dtype))


def _element_shape_example(shape_type):
  def more(x):
    return st.tuples(st.sampled_from(_SOURCES), _declared(x.shape[1:]),
                     _shape_type()).map(
        lambda t: Example({"tensor": x}, attrs={"shape_type": shape_type},
                          extra={"source": t[0], "es": t[1], "list_shape_type": t[2]}))
  return st.sampled_from(LIST_DTYPES).flatmap(_elements).flatmap(more)


def _element_shape_build(example):
  tf = _tf()
  e = example.extra
  dtype = D.name_of(example.inputs["tensor"].dtype)
  source = e["source"] if (e["source"] != "split" or example.inputs["tensor"].ndim >= 2) \
      else "from_tensor"
  es = e["es"] if source != "split" else -1
  out_type = _tf_dtype(example.attrs["shape_type"])
  return lambda x: tf.raw_ops.TensorListElementShape(
      input_handle=_list_of(source, x, es, dtype, e["list_shape_type"]), shape_type=out_type)


def _reserve_example(dtype):
  def more(x):
    n = x.shape[0]
    return st.fixed_dictionaries({
        "size": st.integers(n, n + 2), "es": _declared(x.shape[1:]),
        "read_es": _declared(x.shape[1:]), "shape_type": _shape_type(),
    }).flatmap(lambda e: st.permutations(range(e["size"])).map(
        lambda p: Example({"tensor": x}, extra=dict(e, at=list(p[:n])))))
  return _elements(dtype).flatmap(more)


def _reserve_build(example):
  tf = _tf()
  e, dtype = example.extra, D.name_of(example.inputs["tensor"].dtype)

  def fn(x):
    handle = _reserve(e["es"], e["size"], dtype, e["shape_type"])
    for row, i in enumerate(e["at"]):
      handle = tf.raw_ops.TensorListSetItem(input_handle=handle, index=i, item=x[row])
    return _stack(handle, dtype, e["read_es"])
  return fn


def _empty_example(dtype):
  def more(x):
    return st.tuples(_declared(x.shape[1:]), _declared(x.shape[1:]), _shape_type(),
                     st.sampled_from(["-1", "enough", "too_few"])).map(
        lambda t: Example({"tensor": x}, extra={"es": t[0], "read_es": t[1],
                                                "shape_type": t[2], "max_num": t[3]}))
  return _elements(dtype).flatmap(more)


def _empty_build(example):
  tf = _tf()
  e, dtype = example.extra, D.name_of(example.inputs["tensor"].dtype)

  def fn(x):
    n = x.shape[0]
    max_num = {"-1": -1, "enough": n, "too_few": n - 1}[e["max_num"]]
    handle = tf.raw_ops.EmptyTensorList(
        element_shape=_shape(e["es"], e["shape_type"]),
        max_num_elements=tf.constant(max_num, tf.int32), element_dtype=_tf_dtype(dtype))
    for j in range(n):
      handle = tf.raw_ops.TensorListPushBack(input_handle=handle, tensor=x[j])
    return _stack(handle, dtype, e["read_es"])
  return fn


# The spec list --------------------------------------------------------------------------


def _spec(op, example, build, contains, notes="", **kw):
  kw.setdefault("dtype_attr", "element_dtype")
  return OpSpec(op, example, build=build, contains=contains, notes=notes, **kw)


def specs() -> list[OpSpec]:
  wide = dict(dtypes=WIDE_SAMPLE_DTYPES,
              skip_dtypes={**_UNREADABLE, **_sampled_out(WIDE_SAMPLE_DTYPES)})
  sample = dict(dtypes=SAMPLE_DTYPES, skip_dtypes=_SAMPLED_OUT)
  sample_any = dict(dtypes=SAMPLE_DTYPES, skip_dtypes={**_UNREADABLE, **_SAMPLED_OUT})
  no_grad = ("jit", "static", "x64", "vmap")
  return [
      _spec("TensorListFromTensor", _from_tensor_example, _from_tensor_build,
            ("TensorListFromTensor", "TensorListStack"),
            _GRAD_NOTE + "Read back with TensorListStack; declared and read element "
            "shapes drawn independently (empty lists of unknown element shape: TF fails).",
            **sample),
      _spec("TensorListStack", _stack_example, _stack_build, ("TensorListStack",),
            _GRAD_NOTE + "Lists from TensorListFromTensor, or TensorListReserve with some "
            "elements written (unwritten ones stack as zeros when their shape is known); "
            "num_elements -1, right or wrong (TF fails)."),
      _spec("TensorListGetItem", _get_item_example, _get_item_build,
            ("TensorListGetItem",),
            _GRAD_NOTE + "A traced index inside the list (out-of-range indices: TF fails, "
            "a traced index in JAX cannot); unwritten elements read as zeros.", **sample),
      _spec("TensorListSetItem", _set_item_example, _set_item_build,
            ("TensorListSetItem", "TensorListStack"),
            _GRAD_NOTE + "A traced index inside the list, or a constant index at or past "
            "its end with resize_if_index_out_of_bounds (a dynamic-size TensorArray).",
            **wide),
      _spec("TensorListGather", _gather_example, _gather_build, ("TensorListGather",),
            _GRAD_NOTE + "Traced indices inside the list, repeated or not; distinct in the "
            "grad cases (float dtypes): TF's gradient (a TensorListScatter of the "
            "cotangents) keeps one cotangent of a repeated index instead of their sum, "
            "where JAX's gradient is the sum.", **sample),
      _spec("TensorListScatter", _scatter_example(False), _scatter_build(False),
            ("TensorListScatter",),
            _GRAD_NOTE + "Distinct constant indices with gaps (TF leaves the order of "
            "writes to one index undefined); gaps read as zeros.", **sample),
      _spec("TensorListScatterV2", _scatter_example(True), _scatter_build(True),
            ("TensorListScatterV2",),
            _GRAD_NOTE + "As TensorListScatter, num_elements -1, enough, more, or too few "
            "(TF fails).", **sample),
      _spec("TensorListScatterIntoExistingList", _scatter_into_example,
            _scatter_into_build, ("TensorListScatterIntoExistingList",),
            _GRAD_NOTE + "Distinct constant indices inside the list, into a written or a "
            "reserved list.", **sample),
      _spec("TensorListPushBack", _push_back_example, _push_back_build,
            ("TensorListPushBack",),
            _GRAD_NOTE + "Onto an EmptyTensorList (max_num_elements unlimited, enough or "
            "too few: TF fails) or a list from a tensor.", **sample_any),
      _spec("TensorListPopBack", _pop_back_example, _pop_back_build,
            ("TensorListPopBack",),
            _GRAD_NOTE + "1 to length pops (one from an empty list: TF fails).", **sample),
      _spec("TensorListConcat", _concat_example(False), _concat_build(False),
            ("TensorListConcat",),
            _GRAD_NOTE + "Lists from TensorListFromTensor or TensorListSplit (equal "
            "pieces: tf2jax stacks a list in one array, so it refuses pieces of different "
            "lengths).", **sample),
      _spec("TensorListConcatV2", _concat_example(True), _concat_build(True),
            ("TensorListConcatV2",),
            _GRAD_NOTE + "As TensorListConcat, and lists never written, whose element "
            "lengths come from leading_dims.", **sample),
      _spec("TensorListSplit", _split_example, _split_build, ("TensorListSplit",),
            _GRAD_NOTE + "Equal lengths (tf2jax stacks a list in one array: it refuses "
            "pieces of different lengths with a ConversionError).", **sample),
      _spec("TensorListResize", _resize_example, _resize_build, ("TensorListResize",),
            _GRAD_NOTE + "Shrinking and growing (new elements read as zeros). The op has "
            "no dtype attr: the cases name the element dtype.",
            dtype_attr=None, dtypes=("bool", "float32", "int64", "complex64")),
      _spec("TensorListLength", _length_example, _length_build, ("TensorListLength",),
            "Lists from TensorListFromTensor, TensorListReserve, EmptyTensorList and "
            "TensorListPushBack, TensorListSplit; element dtypes drawn. The op has no "
            "dtype attr: the case names its output.",
            dtype_attr=None, dtypes=("int32",), transforms=no_grad),
      _spec("TensorListElementShape", _element_shape_example, _element_shape_build,
            ("TensorListElementShape",),
            "The element shape the list declares (unknown rank: -1, unknown dims: -1), "
            "whatever its elements' shapes; lists from every source, element dtypes drawn.",
            dtype_attr="shape_type", transforms=no_grad),
      _spec("TensorListReserve", _reserve_example, _reserve_build,
            ("TensorListReserve",),
            _GRAD_NOTE + "Constant sizes (tf2jax needs them static), some elements written "
            "(unwritten ones stack as zeros when their shape is known or inferred).",
            **sample_any),
      _spec("EmptyTensorList", _empty_example, _empty_build,
            ("EmptyTensorList",),
            _GRAD_NOTE + "Filled by TensorListPushBack; max_num_elements unlimited, enough "
            "or too few (TF fails).", **sample_any),
  ]
