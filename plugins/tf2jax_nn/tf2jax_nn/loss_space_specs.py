"""Conformance specs of tf2jax-nn's losses, top-k, space/depth, patch and data-format ops.

`specs()` returns one `tf2jax_conformance.OpSpec` per op (a test dependency: only the
plugin's `tf2jax_conformance_specs` hook imports this module).

What is left out of the drawn values, and why:
* NaN in TopK, TopKV2 and NthElement inputs: TF's comparator is no ordering with NaN
  (std::partial_sort / nth_element give results that depend on the algorithm).
* NaN and infinities in cross-entropy logits: TF's gradient calls the Softmax kernel,
  whose oneDNN version (float32, bfloat16) gives lane-dependent results for them (see
  specs.py); the forward formula with them is the kernel's (tf2jax_nn.losses).
* Broadcasting in SoftmaxCrossEntropyWithLogits: TF's gradient for a broadcast input has
  the broadcast shape, not the input's (a TF bug); tf2jax supports the broadcast forward.
"""

from __future__ import annotations

import math

import numpy as np
from hypothesis import strategies as st

from tf2jax_conformance import dtypes as D
from tf2jax_conformance import strategies as cst
from tf2jax_conformance.spec import Example, OpSpec, Tolerance, default_tolerance

NO_GRAD = ("jit", "static", "x64", "vmap")


def _tf():
  import tensorflow as tf
  return tf


def _eps(dtype: str) -> float:
  return float(D.finfo(dtype).eps)


def _absmax(*arrays) -> float:
  out = 0.0
  for a in arrays:
    a = np.abs(np.asarray(a).astype(np.float64))
    a = a[np.isfinite(a)]
    out = max(out, float(a.max()) if a.size else 0.0)
  return out


def _rarely(draw, n: int = 10) -> bool:
  """True about once in `n` draws (inputs TF rejects). Not on hypothesis' simplest draw
  (0), which derandomized profiles pick first: most examples must be ones TF accepts."""
  return draw(st.integers(0, n - 1)) == n // 2


def _real(dtype: str, shape, *, nan: bool = True, bound: float | None = None,
          inf: bool = True):
  if dtype in D.INT:
    return cst.arrays(dtype, shape)
  kw = {} if bound is None else dict(min_value=-bound, max_value=bound)
  return cst.arrays(dtype, shape, allow_nan=nan, allow_inf=inf and bound is None, **kw)


# L2Loss -------------------------------------------------------------------------------


def _l2_example(dtype):
  return cst.arrays(dtype, cst.shapes()).map(lambda x: Example({"t": x}))


def _l2_tolerance(dtype, ex):
  """A sum of n non-negative squares: n ulps relative (summation order, and TF's
  half-precision kernels sum in half)."""
  base = default_tolerance(dtype)
  n = max(int(np.size(ex.inputs["t"])), 1)
  return Tolerance(base.rtol + 2 * n * _eps(dtype), base.atol)


# Cross entropies ------------------------------------------------------------------------


def _xent_tolerance(dtype, ex):
  """Per row: a max, C exps, a sum, a log and a sum of C products: C ulps of the
  magnitudes involved (TF's half-precision kernels round every step in half)."""
  f = ex.inputs["features"]
  labels = ex.inputs["labels"]
  c = max(int(np.shape(f)[-1]) if np.ndim(f) else 1, 1)
  scale = (2 * _absmax(f) + math.log(c) + 1)
  if np.asarray(labels).dtype.kind == "f" or D.name_of(np.asarray(labels).dtype) in D.FLOAT:
    scale *= max(1.0, _absmax(labels)) * c
  eps = _eps(dtype)
  base = default_tolerance(dtype)
  return Tolerance(base.rtol + 4 * c * eps, base.atol + 4 * eps * scale)


def _xent_example(dtype):
  @st.composite
  def draw(draw):
    b = draw(st.integers(0, 4))
    c = draw(st.integers(0, 5))
    f = draw(_real(dtype, (b, c), nan=False, bound=30.0))
    labels = draw(cst.arrays(dtype, (b, c), min_value=-1.0, max_value=2.0, allow_nan=False,
                             allow_inf=False, allow_subnormal=False))
    if b and c and draw(st.booleans()):  # proper distributions too
      w = np.abs(labels.astype(np.float64)) + 1e-3
      labels = (w / w.sum(-1, keepdims=True)).astype(labels.dtype)
    return Example({"features": f, "labels": labels})
  return draw()


def _sparse_example(dtype):
  @st.composite
  def draw(draw):
    b = draw(st.integers(0, 4))
    # No class at all is rejected by TF (and by tf2jax): drawn now and then.
    c = 0 if _rarely(draw, 8) else draw(st.integers(1, 5))
    f = draw(_real(dtype, (b, c), nan=False, bound=30.0))
    ltype = draw(st.sampled_from(["int32", "int64"]))
    const = draw(st.booleans())
    # Labels out of range make TF's CPU kernel fail: only where they are graph constants,
    # which tf2jax checks when the function runs or is traced (call-time labels cannot
    # raise under jit).
    lo, hi = (-2, c + 1) if const and draw(st.booleans()) else (0, c - 1)
    if hi < lo:
      labels = np.zeros((b,), D.np_dtype(ltype))
    else:
      labels = draw(cst.arrays(ltype, (b,), min_value=lo, max_value=hi, edges=False))
    return Example({"features": f, "labels": labels}, {"Tlabels": ltype},
                   {"const_labels": const})
  return draw()


def _sparse_build(ex):
  tf = _tf()
  const = ex.extra.get("const_labels", False)
  labels_value = ex.inputs["labels"]

  def fn(features, labels):
    if const:
      labels = tf.constant(labels_value)
    return tf.raw_ops.SparseSoftmaxCrossEntropyWithLogits(features=features, labels=labels)
  return fn


# Top k ----------------------------------------------------------------------------------


def _top_k_example(v2: bool):
  def example(dtype):
    @st.composite
    def draw(draw):
      # TF's gradient fails for k = 0 (a Range with delta k): float cases (whose
      # gradients are checked) draw k >= 1.
      low = 1 if dtype in D.FLOAT else 0
      shape = draw(cst.shapes(min_dims=1, max_dims=3).filter(lambda s: s[-1] >= low))
      x = draw(_real(dtype, shape, nan=False))
      # k up to one more than the last axis: TF rejects k > columns.
      k = draw(st.integers(low, shape[-1] + (1 if _rarely(draw, 6) else 0)))
      attrs = {"sorted": draw(st.booleans())}
      inputs = {"input": x}
      if v2:
        kt = draw(st.sampled_from(["int32", "int64", "int16"]))
        inputs["k"] = np.asarray(k, D.np_dtype(kt))
        attrs["Tk"] = kt
        # TF's gradient fails for index_type other than int32 (it adds int32 offsets to
        # the indices): float cases keep int32.
        attrs["index_type"] = ("int32" if dtype in D.FLOAT
                               else draw(st.sampled_from(["int32", "int64", "int16"])))
      else:
        attrs["k"] = k
      return Example(inputs, attrs)
    return draw()
  return example


def _top_k_build(v2: bool):
  """The op, its indices cast to the values' dtype for float inputs (gradients need
  float outputs; the indices are small, so exact). With sorted=False TF's order is
  unspecified: both results are put in index order."""
  def build(ex):
    tf = _tf()
    attrs = dict(ex.attrs)
    for name in ("Tk", "index_type", "k"):
      attrs.pop(name, None)
    if v2:
      attrs["index_type"] = tf.as_dtype(ex.attrs["index_type"])
      k_value = ex.inputs["k"]
    else:
      k_value = np.int32(ex.attrs["k"])

    def fn(x):
      # TopK (v1) has no kernel TF can run (its kernels constrain an index_type attr the
      # op lacks): TopKV2 stands in and `_top_k_rewrite` turns it into TopK.
      values, indices = tf.raw_ops.TopKV2(input=x, k=tf.constant(k_value), **attrs)
      if not ex.attrs["sorted"]:
        order = tf.argsort(tf.cast(indices, tf.int32), axis=-1, stable=True)
        values = tf.gather(values, order, batch_dims=len(values.shape) - 1)
        indices = tf.gather(indices, order, batch_dims=len(indices.shape) - 1)
      if x.dtype.is_floating:
        indices = tf.cast(indices, x.dtype)
      return values, indices
    return fn
  return build


def _top_k_rewrite(graph_def, example):
  """TopKV2 (k a Const, index_type int32) -> TopK with attr k."""
  for node in graph_def.node:
    if node.op == "TopKV2":
      node.op = "TopK"
      del node.input[1]
      del node.attr["Tk"]
      del node.attr["index_type"]
      node.attr["k"].i = int(example.attrs["k"])
  graph_def.versions.producer = 6  # TopK was removed at GraphDef version 7


_TOPK_NOTES = ("k >= 1 and index_type int32 for float inputs: TF's gradient fails for k = 0 "
               "and for other index types (checked on integer inputs). No NaN inputs: "
               "TF's comparator is no ordering with NaN. With sorted=False TF's order is unspecified, so both outputs are compared in index order. "
               "For float inputs the indices are compared cast to the input dtype (the "
               "gradient check needs float outputs); their dtype is checked on integer "
               "inputs.")


def _in_top_k_example(v2: bool):
  def example(dtype):
    @st.composite
    def draw(draw):
      b = draw(st.integers(0, 4))
      c = draw(st.integers(0, 5))
      p = draw(cst.arrays("float32", (b, c)))
      if c and b and draw(st.booleans()):  # ties
        with np.errstate(all="ignore"):
          p = np.round(p.astype(np.float64)).astype(np.float32) % 3
      targets = draw(cst.arrays(dtype, (b,), min_value=-1, max_value=c, edges=False))
      k = draw(st.integers(-1, c + 1))
      inputs = {"predictions": p, "targets": targets}
      attrs = {}
      if v2:
        inputs["k"] = np.asarray(k, D.np_dtype(dtype))
      else:
        attrs["k"] = k
      return Example(inputs, attrs)
    return draw()
  return example


def _nth_example(dtype):
  @st.composite
  def draw(draw):
    shape = draw(cst.shapes(min_dims=1, max_dims=3, min_side=0))
    if shape[-1] == 0:
      shape = shape[:-1] + (1,)
    x = draw(_real(dtype, shape, nan=False))
    if x.size and draw(st.booleans()):  # ties
      x = x.reshape(-1)[np.asarray(draw(st.lists(st.integers(0, x.size - 1),
                                                   min_size=x.size, max_size=x.size)))]
      x = x.reshape(shape)
    n = draw(st.integers(0, shape[-1] - 1))
    return Example({"input": x, "n": np.asarray(n, np.int32)},
                   {"reverse": draw(st.booleans())})
  return draw()


def _loss_topk_specs():
  return [
      OpSpec("L2Loss", _l2_example, tolerance=_l2_tolerance),
      OpSpec("SoftmaxCrossEntropyWithLogits", _xent_example, tolerance=_xent_tolerance,
             notes="No NaN or infinite logits (TF's gradient runs the Softmax kernel, "
                   "lane-dependent with them under oneDNN) and no broadcasting (TF's "
                   "gradient of a broadcast input has the broadcast shape). Gradients are "
                   "TF's: grad_loss * backprop for the features (labels assumed to sum to "
                   "1) and nothing from grad_backprop for the labels."),
      OpSpec("SparseSoftmaxCrossEntropyWithLogits", _sparse_example, build=_sparse_build,
             tolerance=_xent_tolerance,
             notes="Labels out of range only as graph constants (TF's CPU kernel raises; "
                   "tf2jax raises for constant labels when the function is called or traced; "
                   "call-time labels out of range give NaN rows). No NaN or infinite logits (see "
                   "SoftmaxCrossEntropyWithLogits)."),
      OpSpec("TopK", _top_k_example(False), build=_top_k_build(False),
             rewrite=_top_k_rewrite,
             notes="TF cannot run TopK (its CPU kernels constrain an index_type attr the op "
                   "lacks): TopKV2 is the reference, its graph rewritten into TopK. "
                   + _TOPK_NOTES),
      OpSpec("TopKV2", _top_k_example(True), build=_top_k_build(True), static_inputs=("k",),
             notes=_TOPK_NOTES),
      OpSpec("InTopK", _in_top_k_example(False), transforms=NO_GRAD),
      OpSpec("InTopKV2", _in_top_k_example(True), transforms=NO_GRAD),
      OpSpec("NthElement", _nth_example,
             notes="No NaN inputs: TF's std::nth_element is no ordering with NaN. n is a "
                   "call-time input here (valid values only: a call-time n cannot raise "
                   "under jit and is clamped); the static check covers the constant path."),
  ]


# Space <-> batch / depth ------------------------------------------------------------


def _idx_type(draw):
  return draw(st.sampled_from(["int32", "int64"]))


def _small_values(dtype, shape):
  return cst.arrays(dtype, shape)


@st.composite
def _blocks(draw, m_dims: int, to_batch: bool):
  """block shape, paddings or crops, and spatial sizes (valid nearly always)."""
  block = [draw(st.integers(1, 3)) for _ in range(m_dims)]
  pairs, sizes = [], []
  for b in block:
    lo, hi = draw(st.integers(0, 2)), draw(st.integers(0, 2))
    if to_batch:
      n = draw(st.integers(0, 2)) * b - lo - hi
      while n < 0:
        n += b
    else:
      n = draw(st.integers(0 if lo + hi == 0 else 1, 3))
      while n * b < lo + hi:
        n += 1
    pairs.append([lo, hi])
    sizes.append(n)
  if _rarely(draw):  # something TF rejects
    kind = draw(st.sampled_from(["size", "negative", "zero_block"]))
    if kind == "size" and sizes:
      sizes[0] += 1
    elif kind == "negative" and pairs:
      pairs[0][0] = -1
    elif block:
      block[0] = 0
  return block, pairs, sizes


def _space_batch_example(to_batch: bool, nd: bool):
  def example(dtype):
    @st.composite
    def draw(draw):
      m_dims = draw(st.integers(1, 2)) if nd else 2
      if nd:
        block, pairs, sizes = draw(_blocks(m_dims, to_batch))
      else:
        b = 1 if _rarely(draw) else draw(st.integers(2, 3))
        block, pairs, sizes = draw(_blocks(2, to_batch))
        # re-derive with one block size for both dimensions
        block = [b, b]
        sizes = [max(0, s) for s in sizes]
        for i in range(2):
          total = (sizes[i] + sum(pairs[i])) if to_batch else sizes[i] * b
          if to_batch and total % b:
            sizes[i] += b - total % b
          if not to_batch and sum(pairs[i]) > total:
            sizes[i] += 1
      rest = [draw(st.integers(1, 2))] if (not nd or draw(st.booleans())) else []
      batch = draw(st.integers(1, 2))
      if not to_batch:
        prod = int(np.prod(block)) if min(block) > 0 else 1
        batch *= prod
        if _rarely(draw):
          batch += 1
      shape = (batch, *sizes, *rest)
      if math.prod(shape) > 96:
        shape = (batch, *[min(s, 2) for s in sizes], *rest)
      x = draw(_small_values(dtype, shape))
      pair_name = "paddings" if to_batch else "crops"
      pair_type = _idx_type(draw)
      inputs = {"input": x}
      attrs = {}
      if nd:
        block_type = _idx_type(draw)
        inputs["block_shape"] = np.asarray(block, D.np_dtype(block_type))
        inputs[pair_name] = np.asarray(pairs, D.np_dtype(pair_type)).reshape(m_dims, 2)
      else:
        inputs[pair_name] = np.asarray(pairs, D.np_dtype(pair_type))
        attrs["block_size"] = block[0]
      return Example(inputs, attrs)
    return draw()
  return example


def _depth_example(to_space: bool):
  def example(dtype):
    @st.composite
    def draw(draw):
      b = 1 if _rarely(draw) else draw(st.integers(2, 3))
      n, h, w = (draw(st.integers(0, 2)) for _ in range(3))
      c = draw(st.integers(1, 2))
      if to_space:
        shape = (n, h, w, c * b * b + (1 if _rarely(draw) else 0))
      else:
        shape = (n, h * b + (1 if _rarely(draw) else 0), w * b, c)
      x = draw(cst.arrays(dtype, shape))
      fmt = "NHWC" if not _rarely(draw, 8) else draw(st.sampled_from(["NCHW",
                                                                          "NCHW_VECT_C"]))
      return Example({"input": x}, {"block_size": b, "data_format": fmt})
    return draw()
  return example


# Patches ----------------------------------------------------------------------------


def _patch_example(nd: int):
  def example(dtype):
    @st.composite
    def draw(draw):
      k = [draw(st.integers(1, 3)) for _ in range(nd)]
      s = [draw(st.integers(1, 3)) for _ in range(nd)]
      r = [draw(st.integers(1, 2)) for _ in range(nd)] if nd == 2 else [1] * nd
      padding = draw(st.sampled_from(["SAME", "VALID"]))
      # TF's gradients fail on empty inputs or outputs (UnsortedSegmentSum /
      # SparseTensorDenseMatMul shape errors): float cases (gradients checked) draw none.
      grad = dtype in D.FLOAT
      top = 5 if nd == 2 else 3
      sizes = [draw(st.integers((kk - 1) * rr + 1 if grad else 0, max(top, (kk - 1) * rr + 1)))
               for kk, rr in zip(k, r)]
      shape = (draw(st.integers(1 if grad else 0, 2)), *sizes, draw(st.integers(1, 2)))
      if math.prod(shape) > 64:
        shape = (1, *sizes, 1)
      x = draw(cst.arrays(dtype, shape))
      attrs = {"ksizes": [1, *k, 1], "strides": [1, *s, 1], "padding": padding}
      if nd == 2:
        attrs["rates"] = [1, *r, 1]
        return Example({"images": x}, attrs)
      return Example({"input": x}, attrs)
    return draw()
  return example


# Data formats -----------------------------------------------------------------------


@st.composite
def _formats(draw):
  base = draw(st.sampled_from(["NHWC", "NDHWC"]))
  src = "".join(draw(st.permutations(base)))
  dst = "".join(draw(st.permutations(base)))
  if _rarely(draw, 12):  # not a permutation: TF rejects it
    dst = dst[:-1] + "X"
  return src, dst


def _dim_map_example(dtype):
  @st.composite
  def draw(draw):
    src, dst = draw(_formats())
    n = len(src)
    small = st.integers(-2 * n - 1, 2 * n + 1)
    if draw(st.booleans()):
      x = draw(cst.arrays(dtype, cst.shapes(max_dims=2)))
    else:
      shape = draw(cst.shapes(max_dims=2))
      x = np.asarray(draw(st.lists(small, min_size=math.prod(shape),
                                   max_size=math.prod(shape))),
                     D.np_dtype(dtype)).reshape(shape)
    return Example({"x": x}, {"src_format": src, "dst_format": dst})
  return draw()


def _vec_permute_example(dtype):
  @st.composite
  def draw(draw):
    src, dst = draw(_formats())
    n = len(src)
    rows = draw(st.sampled_from([n, n - 2, n - 2, n]))
    if _rarely(draw, 12):
      rows += 1  # TF rejects it
    shape = (rows, 2) if draw(st.booleans()) else (rows,)
    x = draw(cst.arrays(dtype, shape))
    return Example({"x": x}, {"src_format": src, "dst_format": dst})
  return draw()


_PATCH_NOTES = ("No empty inputs or outputs for float dtypes: TF's gradients of the patch "
                "ops fail on them (checked for the other dtypes).")


def _space_specs():
  nd_statics = ("block_shape",)
  return [
      OpSpec("SpaceToBatchND", _space_batch_example(True, True),
             static_inputs=nd_statics + ("paddings",)),
      OpSpec("BatchToSpaceND", _space_batch_example(False, True),
             static_inputs=nd_statics + ("crops",)),
      OpSpec("SpaceToBatch", _space_batch_example(True, False), static_inputs=("paddings",)),
      OpSpec("BatchToSpace", _space_batch_example(False, False), static_inputs=("crops",)),
      OpSpec("DepthToSpace", _depth_example(True),
             notes="data_format NCHW / NCHW_VECT_C are drawn now and then: TF's CPU kernels "
                   "reject them, tf2jax refuses them at conversion."),
      OpSpec("SpaceToDepth", _depth_example(False),
             notes="data_format NCHW / NCHW_VECT_C are drawn now and then: TF's CPU kernels "
                   "reject them, tf2jax refuses them at conversion."),
      OpSpec("ExtractImagePatches", _patch_example(2), notes=_PATCH_NOTES),
      OpSpec("ExtractVolumePatches", _patch_example(3), notes=_PATCH_NOTES),
      OpSpec("DataFormatDimMap", _dim_map_example, transforms=NO_GRAD),
      OpSpec("DataFormatVecPermute", _vec_permute_example, transforms=NO_GRAD),
  ]


# Resize -----------------------------------------------------------------------------


def _resize_example(dtype):
  @st.composite
  def draw(draw):
    shape = (draw(st.integers(0, 2)), draw(st.integers(1, 4)), draw(st.integers(1, 4)),
             draw(st.integers(1, 2)))
    x = draw(cst.arrays(dtype, shape))
    size = np.asarray([draw(st.integers(1, 7)), draw(st.integers(1, 7))], np.int32)
    align = draw(st.booleans())
    # Both flags together are rejected by TF: drawn now and then.
    half = draw(st.booleans()) if (not align or _rarely(draw, 8)) else False
    return Example({"images": x, "size": size},
                   {"align_corners": align, "half_pixel_centers": half})
  return draw()


def _bilinear_tolerance(dtype, ex):
  """The output is float32 whatever the input: lerps of float32 values, a few float32 ulps
  of the largest neighbour (XLA may fuse a multiply-add)."""
  eps = _eps("float32")
  return Tolerance(4 * eps, float(D.finfo("float32").tiny)
                   + 8 * eps * _absmax(np.asarray(ex.inputs["images"]).astype(np.float64)))


def _bilinear_grad_tolerance(dtype, ex):
  """Each input pixel sums the gradients of the outputs it feeds, with weights in [0, 1]
  computed in float32 (also for float64 images: TF's ResizeBilinearGrad takes float32
  gradients and float32 weights)."""
  h, w = np.shape(ex.inputs["images"])[1:3]
  oh, ow = (int(v) for v in ex.inputs["size"])
  terms = (-(-oh // h) + 1) * (-(-ow // w) + 1) * 4
  eps = max(_eps(dtype), _eps("float32"))
  base = default_tolerance(dtype)
  return Tolerance(base.rtol + 4 * terms * eps, base.atol + 10 * terms * eps)


def _resize_specs():
  notes = ("size is a graph constant (it decides the output shape); align_corners with "
           "half_pixel_centers (TF rejects it) is drawn now and then.")
  return [
      OpSpec("ResizeNearestNeighbor", _resize_example, static_inputs=("size",),
             notes=notes),
      OpSpec("ResizeBilinear", _resize_example, static_inputs=("size",),
             tolerance=_bilinear_tolerance, grad_tolerance=_bilinear_grad_tolerance,
             notes=notes + " The output is float32 for every input dtype."),
  ]


def specs() -> list[OpSpec]:
  return _loss_topk_specs() + _space_specs() + _resize_specs()
