"""Conformance specs of tf2jax-controlflow's TF1 TensorArray ops (TensorArrayV3 and its
readers and writers, TensorArrayGradV3 / GradWithShape, and the `_TensorArrayFlowAddN`
the plugin's rewrite makes of AddNs of flows), ToBool and the TensorList ops
TensorListConcatLists and TensorListPushBackBatch.

A TensorArray is a resource with a float32 flow tensor, so every spec builds a small
tf.compat.v1 graph (the harness's `tf1_graph`: a Session run of its GraphDef is TF's
result, `tf.gradients` TF's gradients) from `tf.raw_ops`: it puts the rows of an input
into an array, applies the op and reads the array back. Hypothesis draws the element
shapes, the shapes the array and the readers declare (unknown rank, partly and fully
known), identical_element_shapes, clear_after_read, dynamic_size, sizes, indices (static
ones are constants of the graph, traced ones inputs). Cases TF rejects (reading an
element never written whose shape is not fully known, reading twice with
clear_after_read, indices out of range) are drawn too where tf2jax can tell them at
conversion time. The gradient ops' specs return `tf.gradients` of a forward graph: the
gradient graph is what is converted.
A test dependency: only the plugin's `tf2jax_conformance_specs` hook imports this module.
"""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

from tf2jax_conformance import dtypes as D
from tf2jax_conformance import strategies as cst
from tf2jax_conformance.spec import Example, OpSpec
from tf2jax_controlflow.tensor_list_specs import (LIST_DTYPES, _declared, _element_shapes,
                                                  _elements, _lengths)

# The element dtypes of TF's CPU TensorArray kernels (Read, Write, Gather, Scatter, ...),
# less those no JAX array holds.
ARRAY_DTYPES = LIST_DTYPES
SAMPLE = ("bool", "int64", "float32")
WIDE_SAMPLE = ("bool", "uint8", "int64", "float16", "bfloat16", "float32", "complex128")
_NO_KERNEL = {d: "no TF kernel reads or writes a TensorArray of it (TensorArrayReadV3, "
                 "WriteV3, GatherV3 are not registered for it)" for d in D.ALL
              if d not in ARRAY_DTYPES}


def _sampled_out(sample):
  return {d: "the lowering moves elements whatever their dtype: TensorArrayV3 covers every "
             "dtype, this op " + ", ".join(sample) +
             " (to keep the ci profile cheap)" for d in ARRAY_DTYPES if d not in sample}


def _tf():
  import tensorflow as tf
  return tf


def _tf_dtype(dtype):
  return _tf().as_dtype(D.np_dtype(dtype))


def _shape(es):
  """A drawn declared shape (-1: unknown rank, -1 dims: unknown) as a TensorShape."""
  tf = _tf()
  return tf.TensorShape(None if es == -1 else [None if d == -1 else d for d in es])


def _fully(es) -> bool:
  return es != -1 and -1 not in es


# Building blocks (inside the TF1 graph) -------------------------------------------------


def _array(dtype, size, es=-1, dynamic=False, clear=True, identical=False):
  tf = _tf()
  return tf.raw_ops.TensorArrayV3(size=tf.constant(size, tf.int32), dtype=_tf_dtype(dtype),
                                  element_shape=_shape(es), dynamic_size=dynamic,
                                  clear_after_read=clear, identical_element_shapes=identical)


def _scatter(handle, flow, indices, x):
  tf = _tf()
  return tf.raw_ops.TensorArrayScatterV3(handle=handle, indices=tf.constant(indices, tf.int32),
                                         value=x, flow_in=flow)


def _gather(handle, flow, dtype, indices, es=-1):
  tf = _tf()
  if not hasattr(indices, "dtype"):
    indices = tf.constant(indices, tf.int32, shape=[len(indices)])
  return tf.raw_ops.TensorArrayGatherV3(handle=handle, indices=indices, flow_in=flow,
                                        dtype=_tf_dtype(dtype), element_shape=_shape(es))


def _size(handle, flow):
  return _tf().raw_ops.TensorArraySizeV3(handle=handle, flow_in=flow)


def _as_output(values, ints, dtype):
  """For the float dtypes (the grad cases, whose check takes every output) the integer
  output cast to the values' dtype (small counts: exact)."""
  if dtype in D.FLOAT:
    return values, _tf().cast(ints, values.dtype)
  return values, ints


# TensorArrayV3 and WriteV3: rows written one by one at constant indices ----------------


def _array_example(dtype):
  def more(x):
    n = x.shape[0]
    return st.fixed_dictionaries({
        "size": st.integers(n, n + 2), "es": _declared(x.shape[1:]),
        "identical": st.booleans(), "dynamic": st.booleans(), "clear": st.booleans(),
        "initial": st.integers(0, n),
    }).flatmap(lambda e: st.permutations(range(e["size"])).map(
        lambda p: Example({"tensor": x}, extra=dict(e, at=list(p[:n])))))
  return _elements(dtype).flatmap(more)


def _array_build(example):
  tf = _tf()
  e, dtype = example.extra, D.name_of(example.inputs["tensor"].dtype)

  def fn(x):
    # dynamic: starts smaller and grows with the writes.
    size = min(e["initial"], e["size"]) if e["dynamic"] else e["size"]
    handle, flow = _array(dtype, size, e["es"], e["dynamic"], e["clear"], e["identical"])
    for row, i in enumerate(e["at"]):
      flow = tf.raw_ops.TensorArrayWriteV3(handle=handle, index=i, value=x[row],
                                           flow_in=flow)
    final = max([size] + [i + 1 for i in e["at"]])
    return _as_output(_gather(handle, flow, dtype, list(range(final))),
                      _size(handle, flow), dtype)
  return fn


def _write_example(dtype):
  def more(x):
    n = x.shape[0]
    item = cst.arrays(dtype, x.shape[1:])
    es = st.one_of(st.just(list(x.shape[1:])), _declared(x.shape[1:]))
    grow = st.tuples(item, st.integers(n, n + 2), es).map(
        lambda t: Example({"tensor": x, "value": t[0]}, extra={"grow_to": t[1], "es": t[2]}))
    if n == 0:
      return grow
    inside = st.tuples(item, st.integers(0, n - 1), es).map(
        lambda t: Example({"tensor": x, "value": t[0], "index": np.int32(t[1])},
                          extra={"es": t[2]}))
    return st.one_of(inside, grow)
  # No empty array: TF's gradient of a write growing one from size 0 is Unimplemented.
  return _elements(dtype, min_len=1).flatmap(more)


def _write_build(example):
  tf = _tf()
  e, dtype = example.extra, D.name_of(example.inputs["tensor"].dtype)
  n = example.inputs["tensor"].shape[0]
  grow_to = e.get("grow_to")

  def fn(x, item, *i):
    # identical_element_shapes: the elements not written read as zeros.
    if grow_to is None:  # a traced index inside the array, the other rows around it
      handle, flow = _array(dtype, n, e["es"], identical=True)
      flow = tf.raw_ops.TensorArrayWriteV3(handle=handle, index=i[0], value=item,
                                           flow_in=flow)
      final = n
    else:  # a constant index at or past the end of a dynamic-size array: it grows
      handle, flow = _array(dtype, n, e["es"], dynamic=True, identical=True)
      flow = _scatter(handle, flow, list(range(n)), x)
      flow = tf.raw_ops.TensorArrayWriteV3(handle=handle, index=grow_to, value=item,
                                           flow_in=flow)
      final = grow_to + 1
    return _as_output(_gather(handle, flow, dtype, list(range(final))),
                      _size(handle, flow), dtype)
  return fn


# ReadV3 and GatherV3: traced indices ---------------------------------------------------


def _read_example(dtype):
  def more(x):
    n = x.shape[0]
    return st.fixed_dictionaries({
        "size": st.integers(n, n + 2), "es": _declared(x.shape[1:]),
        "identical": st.booleans(), "twice": st.booleans(), "clear": st.booleans(),
    }).flatmap(lambda e: st.tuples(st.permutations(range(e["size"])),
                                   st.integers(0, e["size"] - 1)).map(
        lambda p: Example({"tensor": x, "index": np.int32(p[1])},
                          extra=dict(e, at=list(p[0][:n])))))
  return _elements(dtype, min_len=1).flatmap(more)


def _read_build(example):
  tf = _tf()
  e, dtype = example.extra, D.name_of(example.inputs["tensor"].dtype)
  # A traced index may hit an element never written: its shape must be known then
  # (TF fails otherwise, which a traced index cannot tell).
  identical = e["identical"] or (e["size"] > example.inputs["tensor"].shape[0]
                                 and not _fully(e["es"]))

  def fn(x, i):
    handle, flow = _array(dtype, e["size"], e["es"], clear=e["clear"], identical=identical)
    flow = _scatter(handle, flow, e["at"], x)
    read = tf.raw_ops.TensorArrayReadV3(handle=handle, index=i, flow_in=flow,
                                        dtype=_tf_dtype(dtype))
    if e["twice"]:  # a constant index read twice: TF fails with clear_after_read
      first = tf.raw_ops.TensorArrayReadV3(handle=handle, index=e["at"][0], flow_in=flow,
                                           dtype=_tf_dtype(dtype))
      with tf.control_dependencies([first]):
        again = tf.raw_ops.TensorArrayReadV3(handle=handle, index=e["at"][0],
                                             flow_in=flow, dtype=_tf_dtype(dtype))
      return read, first, again
    return read
  return fn


def _gather_example(dtype):
  def more(x):
    n = x.shape[0]
    distinct = st.integers(0, n).flatmap(
        lambda k: st.permutations(range(n)).map(lambda p: np.asarray(p[:k], np.int32)))
    if dtype in D.FLOAT:  # grad cases: distinct (TF's gradient adds repeats as JAX does,
      indices = distinct  # but a repeat needs clear_after_read off)
    else:
      indices = st.one_of(distinct, cst.valid_indices(n, st.tuples(st.integers(0, 4))))
    return st.tuples(indices, _declared(x.shape[1:]), _declared(x.shape[1:]),
                     st.booleans()).map(
        lambda t: Example({"tensor": x, "indices": t[0].astype(np.int32)},
                          extra={"es": t[1], "read_es": t[2], "split": t[3]}))
  return _elements(dtype).flatmap(more)


def _gather_build(example):
  tf = _tf()
  e, dtype = example.extra, D.name_of(example.inputs["tensor"].dtype)
  x_shape = list(example.inputs["tensor"].shape)
  repeats = len(set(example.inputs["indices"].tolist())) < example.inputs["indices"].size
  read_es = e["read_es"] if example.inputs["indices"].size else x_shape[1:]

  def fn(x, idx):
    handle, flow = _array(dtype, x_shape[0], e["es"], clear=not repeats)
    if e["split"] and len(x_shape) > 1:  # elements of rank >= 1 from TensorArraySplitV3
      flow = tf.raw_ops.TensorArraySplitV3(
          handle=handle, value=tf.reshape(x, [-1] + x_shape[2:]), flow_in=flow,
          lengths=tf.constant([x_shape[1]] * x_shape[0], tf.int64))
    else:
      flow = _scatter(handle, flow, list(range(x_shape[0])), x)
    return _gather(handle, flow, dtype, idx, read_es)
  return fn


# ScatterV3, SplitV3, ConcatV3 ------------------------------------------------------------


def _scatter_example(dtype):
  def more(x):
    n = x.shape[0]
    return st.fixed_dictionaries({
        "indices": st.permutations(range(n + 3)).map(lambda p: list(p[:n])),
        "es": _declared(x.shape[1:]), "dynamic": st.booleans(), "extra": st.integers(0, 2),
    }).map(lambda e: Example({"tensor": x}, extra=e))
  # No empty value: TF's gradient of scattering nothing is Unimplemented.
  return _elements(dtype, min_len=1).flatmap(more)


def _scatter_build(example):
  e, dtype = example.extra, D.name_of(example.inputs["tensor"].dtype)
  top = max(e["indices"], default=-1) + 1

  def fn(x):
    size = 0 if e["dynamic"] else top + e["extra"]
    # identical_element_shapes: the gaps read as zeros.
    handle, flow = _array(dtype, size, e["es"], dynamic=e["dynamic"], identical=True)
    flow = _scatter(handle, flow, e["indices"], x)
    final = max(size, top)
    return _as_output(_gather(handle, flow, dtype, list(range(final))),
                      _size(handle, flow), dtype)
  return fn


def _split_example(dtype):
  def more(t):
    pieces, size, rest = t
    return st.tuples(cst.arrays(dtype, (pieces * size,) + rest), _declared((size,) + rest),
                     st.sampled_from(["fixed", "dynamic", "wrong_size"])).map(
        lambda u: Example({"value": u[0]}, extra={"pieces": pieces, "es": u[1],
                                                  "size": u[2]}))
  return st.tuples(st.sampled_from([2, 0, 1, 3]), st.sampled_from([2, 0, 1, 3]),
                   cst.shapes(max_dims=1, max_side=3)).flatmap(more)


def _split_build(example):
  tf = _tf()
  e, dtype = example.extra, D.name_of(example.inputs["value"].dtype)
  p = e["pieces"]
  piece = example.inputs["value"].shape[0] // p if p else 0

  def fn(v):
    size = {"fixed": p, "dynamic": max(p - 1, 0), "wrong_size": p + 1}[e["size"]]
    handle, flow = _array(dtype, size, e["es"], dynamic=e["size"] == "dynamic")
    flow = tf.raw_ops.TensorArraySplitV3(handle=handle, value=v, flow_in=flow,
                                         lengths=tf.constant([piece] * p, tf.int64))
    # the pieces have `piece` rows: a fully known element_shape for the empty gathers
    es = [piece] + list(example.inputs["value"].shape[1:])
    return _as_output(_gather(handle, flow, dtype, list(range(max(size, p))), es),
                      _size(handle, flow), dtype)
  return fn


def _concat_example(dtype):
  def more(x):
    return st.fixed_dictionaries({
        "es": _declared(x.shape[1:]), "rest": _declared(x.shape[2:]),
        "source": st.sampled_from(["scatter", "split", "unwritten"]),
    }).map(lambda e: Example({"tensor": x}, extra=e))
  return st.tuples(_lengths(), _element_shapes(min_dims=1)).flatmap(
      lambda t: cst.arrays(dtype, (t[0],) + t[1])).flatmap(more)


def _concat_build(example):
  tf = _tf()
  e, dtype = example.extra, D.name_of(example.inputs["tensor"].dtype)
  x_shape = list(example.inputs["tensor"].shape)

  def fn(x):
    n = x_shape[0]
    handle, flow = _array(dtype, n, e["es"])
    if e["source"] == "scatter":
      flow = _scatter(handle, flow, list(range(n)), x)
    elif e["source"] == "split":
      flow = tf.raw_ops.TensorArraySplitV3(
          handle=handle, value=tf.reshape(x, [-1] + x_shape[2:]), flow_in=flow,
          lengths=tf.constant([x_shape[1]] * n, tf.int64))
    else:  # row 0 only: the others read as zeros when the element shape is declared
      if n:
        flow = tf.raw_ops.TensorArrayWriteV3(handle=handle, index=0, value=x[0],
                                             flow_in=flow)
    values, lengths = tf.raw_ops.TensorArrayConcatV3(
        handle=handle, flow_in=flow, dtype=_tf_dtype(dtype),
        element_shape_except0=_shape(e["rest"]))
    return _as_output(values, lengths, dtype)
  return fn


# SizeV3 and CloseV3 -------------------------------------------------------------------


def _size_example(dtype):
  def more(x):
    return st.tuples(st.integers(0, 3), st.booleans()).map(
        lambda t: Example({"tensor": x}, extra={"initial": t[0], "dynamic": t[1]}))
  return st.sampled_from(ARRAY_DTYPES).flatmap(_elements).flatmap(more)


def _size_build(example):
  e = example.extra
  dtype = D.name_of(example.inputs["tensor"].dtype)
  n = example.inputs["tensor"].shape[0]

  def fn(x):
    size = e["initial"] if e["dynamic"] else max(e["initial"], n)
    handle, flow = _array(dtype, size, dynamic=e["dynamic"])
    sizes = [_size(handle, flow)]
    flow = _scatter(handle, flow, list(range(n)), x)
    return sizes + [_size(handle, flow)]
  return fn


def _close_example(dtype):
  return _elements(dtype).map(lambda x: Example({"tensor": x}))


def _close_build(example):
  tf = _tf()
  dtype = D.name_of(example.inputs["tensor"].dtype)
  shape = list(example.inputs["tensor"].shape)

  def fn(x):
    handle, flow = _array(dtype, shape[0], shape[1:])
    flow = _scatter(handle, flow, list(range(shape[0])), x)
    values = _gather(handle, flow, dtype, list(range(shape[0])))
    with tf.control_dependencies([values]):
      close = tf.raw_ops.TensorArrayCloseV3(handle=handle)
    with tf.control_dependencies([close]):
      return tf.identity(values)
  return fn


# Gradients: tf.gradients through TensorArrays, converted ---------------------------------


def _grad_example(dtype):
  def more(x):
    n = x.shape[0]
    reads = st.lists(st.integers(0, n - 1), min_size=1, max_size=4)
    return st.tuples(reads, _declared(x.shape[1:])).flatmap(
        lambda t: st.tuples(cst.cotangents(dtype, (len(t[0]),) + x.shape[1:]),
                            cst.cotangents(dtype, x.shape)).map(
            lambda c: Example({"tensor": x, "ct": c[0], "ct_stack": c[1]},
                              extra={"reads": t[0], "es": t[1]})))
  return _elements(dtype, min_len=1).flatmap(more)


def _grad_build(example):
  """Forward: x scattered into an array, some rows read (repeats: AddN of the gradient
  flows), the reads written into a second array, stacked (and concatenated); plus x
  stacked back. Outputs: the forward values and `tf.gradients` of them."""
  tf = _tf()
  e, dtype = example.extra, D.name_of(example.inputs["tensor"].dtype)
  x_shape = list(example.inputs["tensor"].shape)

  def fn(x, ct, ct_stack):
    n, k = x_shape[0], len(e["reads"])
    handle, flow = _array(dtype, n, e["es"], clear=False)
    flow = _scatter(handle, flow, list(range(n)), x)
    out, out_flow = _array(dtype, k, e["es"], identical=True)
    for j, i in enumerate(e["reads"]):
      value = tf.raw_ops.TensorArrayReadV3(handle=handle, index=i, flow_in=flow,
                                           dtype=_tf_dtype(dtype))
      out_flow = tf.raw_ops.TensorArrayWriteV3(handle=out, index=j, value=value * value,
                                               flow_in=out_flow)
    stacked = _gather(out, out_flow, dtype, list(range(k)))
    back = _gather(handle, flow, dtype, list(range(n)))
    grads = tf.gradients([stacked, back], [x], grad_ys=[ct, ct_stack])
    return [stacked, back] + [g if g is not None else tf.zeros_like(x) for g in grads]
  return fn


def _grad_shape_example(dtype):
  def more(x):
    n = x.shape[0]
    return st.tuples(st.sampled_from([[], [2], [1, 3]]),
                     st.lists(st.integers(0, n - 1), min_size=1, max_size=4)).flatmap(
        lambda t: cst.arrays(dtype, (len(t[1]),) + tuple(t[0]) + x.shape[1:]).map(
            lambda u: Example({"tensor": x, "updates": u},
                              extra={"prepend": t[0], "at": t[1]})))
  return _elements(dtype, min_len=1).flatmap(more)


def _grad_shape_build(example):
  """The gradient array of shape [*prepend, *element_shape] (what pfor makes), written
  with TensorArrayScatterV3 (repeated indices add up) and gathered."""
  tf = _tf()
  e, dtype = example.extra, D.name_of(example.inputs["tensor"].dtype)
  n = example.inputs["tensor"].shape[0]

  def fn(x, u):
    handle, flow = _array(dtype, n)
    flow = _scatter(handle, flow, list(range(n)), x)
    g, g_flow = tf.raw_ops.TensorArrayGradWithShape(
        handle=handle, flow_in=flow, shape_to_prepend=tf.constant(e["prepend"], tf.int32,
                                                                  shape=[len(e["prepend"])]),
        source="gradients")
    g_flow = tf.raw_ops.TensorArrayScatterV3(handle=g, indices=tf.constant(e["at"], tf.int32),
                                             value=u, flow_in=g_flow)
    return _gather(g, g_flow, dtype, list(range(n)))
  return fn


# ToBool ----------------------------------------------------------------------------------

# The scalar dtypes TF's ToBool takes (other scalars: InvalidArgument).
SCALAR_BOOL_DTYPES = ("bool", "float32", "float64", "int8", "int16", "int32", "int64",
                      "uint8")


def _to_bool_example(dtype):
  if dtype in SCALAR_BOOL_DTYPES:
    shapes = st.one_of(st.just(()), cst.shapes(max_dims=2, max_side=2))
  else:  # a scalar: TF fails; drawn sometimes, never alone
    shapes = st.one_of(cst.shapes(min_dims=1, max_dims=2, max_side=2), st.just(()))
  return cst.arrays(dtype, shapes).map(lambda x: Example({"input": x}))


# TensorListConcatLists ------------------------------------------------------------------


def _concat_lists_example(dtype):
  def more(t):
    n, m, shape = t
    return st.tuples(cst.arrays(dtype, (n,) + shape), cst.arrays(dtype, (m,) + shape),
                     _declared(shape), _declared(shape)).map(
        lambda u: Example({"a": u[0], "b": u[1]}, extra={"es_a": u[2], "es_b": u[3]}))
  return st.tuples(_lengths(), _lengths(), _element_shapes()).flatmap(more)


def _concat_lists_build(example):
  tf = _tf()
  e, dtype = example.extra, D.name_of(example.inputs["a"].dtype)
  shape = list(example.inputs["a"].shape[1:])

  def lst(x, es):
    return tf.raw_ops.TensorListFromTensor(tensor=x, element_shape=tf.constant(es, tf.int32))

  def fn(a, b):
    joined = tf.raw_ops.TensorListConcatLists(input_a=lst(a, e["es_a"]),
                                              input_b=lst(b, e["es_b"]),
                                              element_dtype=_tf_dtype(dtype))
    return tf.raw_ops.TensorListStack(input_handle=joined, element_shape=shape,
                                      element_dtype=_tf_dtype(dtype))
  return fn


def _push_back_batch_example(dtype):
  def more(t):
    n, length, shape = t
    return st.tuples(cst.arrays(dtype, (n, length) + shape), cst.arrays(dtype, (n,) + shape)
                     ).map(lambda u: Example({"lists": u[0], "tensor": u[1]}))
  return st.tuples(st.integers(1, 3), _lengths(), _element_shapes()).flatmap(more)


def _push_back_batch_build(example):
  """n lists (TensorListFromTensor of the rows of `lists`) packed into a variant vector,
  TensorListPushBackBatch'ed with the rows of `tensor`, unpacked and stacked back."""
  tf = _tf()
  dtype = _tf_dtype(D.name_of(example.inputs["tensor"].dtype))
  n = example.inputs["lists"].shape[0]
  shape = list(example.inputs["tensor"].shape[1:])

  def fn(lists, tensor):
    handles = tf.stack([tf.raw_ops.TensorListFromTensor(tensor=lists[i], element_shape=shape)
                        for i in range(n)])
    pushed = tf.raw_ops.TensorListPushBackBatch(input_handles=handles, tensor=tensor)
    return [tf.raw_ops.TensorListStack(input_handle=h, element_shape=shape,
                                       element_dtype=dtype) for h in tf.unstack(pushed)]
  return fn


# The spec list --------------------------------------------------------------------------

_NOTES = ("A tf.compat.v1 graph of raw TensorArray ops (a Session run is TF's result, "
          "tf.gradients TF's gradient). ")


def specs() -> list[OpSpec]:
  from tf2jax_controlflow.specs import PRED_DTYPES
  tf1 = dict(tf1_graph=True)
  every = dict(dtypes=ARRAY_DTYPES, skip_dtypes=_NO_KERNEL)
  sample = dict(dtypes=SAMPLE, skip_dtypes=_sampled_out(SAMPLE))
  wide = dict(dtypes=WIDE_SAMPLE, skip_dtypes=_sampled_out(WIDE_SAMPLE))
  no_grad = ("jit", "static", "x64", "vmap")
  return [
      OpSpec("TensorArrayV3", _array_example, build=_array_build, dtype_attr="dtype",
             contains=("TensorArrayV3", "TensorArrayGatherV3"),
             notes=_NOTES + "Rows written one by one at constant indices, some elements "
             "left unwritten (zeros when the element shape is fully known, declared or "
             "with identical_element_shapes fixed by the first write; TF fails "
             "otherwise), dynamic_size arrays growing from a smaller size.",
             **tf1, **every),
      OpSpec("TensorArrayWriteV3", _write_example, build=_write_build, dtype_attr="T",
             notes=_NOTES + "A traced index inside the array, or a constant one at or past "
             "the end of a dynamic_size array.", **tf1, **wide),
      OpSpec("TensorArrayReadV3", _read_example, build=_read_build, dtype_attr="dtype",
             notes=_NOTES + "A traced index, written or not; a constant index read twice "
             "(TF fails with clear_after_read).", **tf1, **sample),
      OpSpec("TensorArrayGatherV3", _gather_example, build=_gather_build,
             dtype_attr="dtype", notes=_NOTES + "Traced indices, repeated (with "
             "clear_after_read off) or not, none (the element_shape attr gives the "
             "shape); elements from TensorArrayScatterV3 or SplitV3.", **tf1, **wide),
      OpSpec("TensorArrayScatterV3", _scatter_example, build=_scatter_build,
             dtype_attr="T", notes=_NOTES + "Distinct constant indices with gaps (zeros), "
             "into a fixed-size array or a dynamic_size one of size 0.", **tf1, **sample),
      OpSpec("TensorArraySplitV3", _split_example, build=_split_build, dtype_attr="T",
             notes=_NOTES + "Equal lengths (tf2jax stacks an array in one buffer: unequal "
             "ones are refused with a ConversionError); sizes right, wrong (TF fails) or "
             "smaller with dynamic_size.", **tf1, **sample),
      OpSpec("TensorArrayConcatV3", _concat_example, build=_concat_build,
             dtype_attr="dtype", notes=_NOTES + "Elements from TensorArrayScatterV3, "
             "SplitV3 or only the first written (the others zeros when the declared shape "
             "is fully known, else TF fails); empty arrays (element_shape_except0 gives "
             "the shape).", **tf1, **sample),
      OpSpec("TensorArraySizeV3", _size_example, build=_size_build, dtype_attr=None,
             dtypes=("int32",), transforms=no_grad,
             notes=_NOTES + "Before and after a scatter, fixed and dynamic_size arrays; "
             "element dtypes drawn. The op has no dtype attr: the case names its output.",
             **tf1),
      OpSpec("TensorArrayCloseV3", _close_example, build=_close_build, dtype_attr=None,
             dtypes=("float32", "int64"),
             notes=_NOTES + "Closed after a gather (a control dependency of the output). "
             "The op has no dtype attr: the cases name the element dtype.", **tf1),
      OpSpec("TensorArrayGradV3", _grad_example, build=_grad_build, dtype_attr=None,
             dtypes=D.FLOAT, transforms=no_grad,
             contains=("TensorArrayGradV3", "AddN"),
             notes=_NOTES + "The graph of tf.gradients through a TensorArray scattered, "
             "read (rows read more than once: AddN of the gradient flows) and stacked, "
             "into a second one written and stacked, is converted and compared. The op "
             "has no dtype attr: the cases name the element dtype.", **tf1),
      OpSpec("_TensorArrayFlowAddN", _grad_example, build=_grad_build, dtype_attr=None,
             dtypes=("float32",), transforms=no_grad,
             contains=("TensorArrayGradV3", "AddN"),
             notes="No TF op: the plugin's rewrite makes it of AddNs of TensorArray flows "
             "(TF's sum of gradient flows); the graph is TensorArrayGradV3's.", **tf1),
      OpSpec("TensorArrayGradWithShape", _grad_shape_example, build=_grad_shape_build,
             dtype_attr=None, dtypes=("float32", "int64", "bool"), transforms=no_grad,
             notes=_NOTES + "The gradient array of a TensorArray with shapes [], [2] or "
             "[1, 3] prepended to its elements, scattered into (repeated indices add up) "
             "and gathered. The op has no dtype attr: the cases name the element dtype.",
             **tf1),
      OpSpec("ToBool", _to_bool_example, dtypes=PRED_DTYPES, transforms=no_grad,
             skip_dtypes={d: "TF cannot trace a graph holding it (no TensorProto type)"
                          for d in D.NO_GRAPH_CONSTANT},
             notes="TF's truth value: a scalar of the dtypes TF takes is true when not zero "
             "(a scalar of another dtype: TF fails), any other tensor when not empty."),
      *[OpSpec(op, _push_back_batch_example, build=_push_back_batch_build,
               dtype_attr="element_dtype" if op == "TensorListPushBackBatch" else None,
               transforms=no_grad, contains=("TensorListPushBackBatch", "Pack", "Unpack"),
               notes=("" if op == "TensorListPushBackBatch" else "No TF op: the plugin's "
                      "rewrite makes it of Pack/Unpack of TensorList handles. ")
               + "1 to 3 lists from TensorListFromTensor packed into a variant vector, "
               "pushed back with the rows of a tensor, unpacked and stacked. No grad: TF "
               "declares the op not differentiable.",
               **(sample if op == "TensorListPushBackBatch" else {"dtypes": ("float32",)}))
        for op in ("TensorListPushBackBatch", "_VariantPack", "_VariantUnpack")],
      OpSpec("TensorListConcatLists", _concat_lists_example, build=_concat_lists_build,
             dtype_attr="element_dtype", transforms=no_grad,
             contains=("TensorListConcatLists",),
             notes="Two lists (scalar handles) from TensorListFromTensor, declared element "
             "shapes drawn independently, read back with TensorListStack. No grad: TF "
             "declares the op not differentiable.",
             dtypes=SAMPLE, skip_dtypes={
                 **{d: "no TF kernel reads such a list back" for d in D.ALL
                    if d not in LIST_DTYPES},
                 **{d: "the lowering concatenates the stacked elements whatever their "
                    "dtype; this op covers " + ", ".join(SAMPLE) + " (to keep the ci "
                    "profile cheap)" for d in LIST_DTYPES if d not in SAMPLE}}),
  ]
