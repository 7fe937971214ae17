"""Conformance specs of tf2jax-nn's fake quantization, NMS, CTC and ApproxTopK ops.

`specs()` returns one `tf2jax_conformance.OpSpec` per op (a test dependency: only the
plugin's `tf2jax_conformance_specs` hook imports this module).

What is left out of the drawn values, and why:
* NaN inputs to QuantizeAndDequantize* without range_given: TF's min/max reduction (Eigen)
  gives NaN or ignores it depending on its position in the vector.
* A scalar input to FakeQuantWithMinMaxVarsPerChannel: TF's kernel aborts the process
  (a failed CHECK); tf2jax raises.
* NaN min or max for FakeQuant*: TF casts a NaN zero point to uint16 (undefined in C++).
"""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

from tf2jax_conformance import dtypes as D
from tf2jax_conformance import strategies as cst
from tf2jax_conformance.spec import (Example, OpSpec, Tolerance, default_tolerance,
                                     largest_finite_abs)

NO_GRAD = ("jit", "static", "x64", "vmap")


def _tf():
  import tensorflow as tf
  return tf


def _rarely(draw, n: int = 10) -> bool:
  """True about once in `n` draws (inputs TF rejects), never on the simplest draw."""
  return draw(st.integers(0, n - 1)) == n // 2


def _f32(v: float) -> float:
  return float(np.float32(v))


# Fake quantization --------------------------------------------------------------------


def _fq_range(draw):
  """(min, max) as float32 values: mostly min <= 0 <= max, also ranges not holding 0,
  min == max and, now and then, min > max."""
  kind = draw(st.sampled_from(["zero", "straddle", "straddle", "positive", "negative",
                               "equal", "swapped"]))
  a = draw(st.floats(0.0, 8.0, width=32, allow_subnormal=False))
  b = draw(st.floats(0.125, 8.0, width=32))
  if kind == "zero":
    return 0.0, 0.0
  if kind == "straddle":
    return _f32(-a), _f32(b)
  if kind == "positive":
    return _f32(a), _f32(a + b)
  if kind == "negative":
    return _f32(-a - b), _f32(-a)
  if kind == "equal":
    return _f32(a), _f32(a)
  return _f32(b), _f32(-a)


def _fq_inputs(shape, bound: float | None):
  if bound is None:
    return cst.arrays("float32", shape)
  return cst.arrays("float32", shape, min_value=-bound, max_value=bound, allow_nan=False,
                    allow_inf=False)


def _fq_attrs(draw):
  bits = 1 if _rarely(draw, 12) else draw(st.integers(2, 16))
  return {"num_bits": bits, "narrow_range": draw(st.booleans())}


def _fq_args_example(dtype):
  @st.composite
  def draw(draw):
    mn, mx = _fq_range(draw)
    if mn >= mx and not _rarely(draw, 4):  # TF's kernel rejects min >= max
      mn, mx = _f32(-abs(mx) - 1.0), _f32(abs(mn) + 1.0)
    bound = max(abs(mn), abs(mx)) * 1.5 + 1
    x = draw(_fq_inputs(cst.shapes(), bound if draw(st.booleans()) else None))
    return Example({"inputs": x}, {"min": mn, "max": mx, **_fq_attrs(draw)})
  return draw()


def _fq_vars_example(per_channel: bool):
  def example(dtype):
    @st.composite
    def draw(draw):
      if per_channel:  # a scalar input crashes TF's kernel (see the module doc)
        shape = draw(cst.shapes(min_dims=1, max_dims=3))
        d = shape[-1]
        d_mm = d + 1 if _rarely(draw, 12) else d
        ranges = [_fq_range(draw) for _ in range(d_mm)]
        mn = np.asarray([r[0] for r in ranges], np.float32)
        mx = np.asarray([r[1] for r in ranges], np.float32)
        bound = float(np.max(np.abs(np.concatenate([mn, mx])), initial=0)) * 1.5 + 1
      else:
        shape = draw(cst.shapes())
        lo, hi = _fq_range(draw)
        mn, mx = np.asarray(lo, np.float32), np.asarray(hi, np.float32)
        bound = max(abs(lo), abs(hi)) * 1.5 + 1
      x = draw(_fq_inputs(shape, bound if draw(st.booleans()) else None))
      return Example({"inputs": x, "min": mn, "max": mx}, _fq_attrs(draw))
    return draw()
  return example


def _sum_grad_tolerance(dtype, ex):
  """min and max get sums of the gradients over the input: n ulps of the largest
  cotangent (summation order)."""
  n = max(int(np.size(ex.inputs["inputs"])), 1)
  eps = float(D.finfo("float32").eps)
  return Tolerance(4 * eps, 2 * n * eps * 10)


_FQ_NOTES = ("num_bits 1 (rejected by TF and tf2jax) is drawn now and then. No NaN min or "
             "max (TF casts a NaN zero point to uint16, undefined behaviour).")


# QuantizeAndDequantize ----------------------------------------------------------------


def _qdq_range(draw, dtype):
  width = 32 if dtype == "float32" else 64
  lo = draw(st.floats(-8, 0.0, width=width, allow_subnormal=False))
  hi = draw(st.floats(0.0, 8, width=width, allow_subnormal=False))
  kind = draw(st.sampled_from(["straddle", "straddle", "positive", "negative"]))
  if kind == "positive":
    return -lo, hi - lo
  if kind == "negative":
    return lo - hi, lo
  return lo, hi


def _qdq_example(version: int):
  def example(dtype):
    @st.composite
    def draw(draw):
      shape = draw(cst.shapes(max_dims=3))
      attrs = {"signed_input": draw(st.booleans()), "narrow_range": draw(st.booleans())}
      range_given = draw(st.booleans())
      attrs["range_given"] = range_given
      per_channel = bool(shape) and draw(st.booleans())
      axis = draw(st.integers(0, len(shape) - 1)) if per_channel else -1
      if _rarely(draw, 12):
        # Rejected by TF (V3 aborts the process on -rank <= axis < -1: only rank for it).
        axis = len(shape) if version == 3 else draw(st.sampled_from([-2, len(shape)]))
      attrs["axis"] = axis
      bits = 0 if _rarely(draw, 12) else draw(st.sampled_from([1, 2, 3, 4, 8, 16, 24]))
      if version != 3:
        attrs["num_bits"] = bits
        attrs["round_mode"] = draw(st.sampled_from(["HALF_TO_EVEN", "HALF_UP"]))
      const = False
      d = shape[axis] if 0 <= axis < len(shape) else None
      dt = D.np_dtype(dtype)
      if range_given:
        # Per-channel range_given: V2 and V4 always reject it (drawn now and then only).
        if d is not None and version != 3 and not _rarely(draw, 4):
          attrs["axis"] = d = -1
        lo, hi = [], []
        for _ in range(1 if d is None or d < 0 else d):
          a, b = _qdq_range(draw, dtype)
          lo.append(a)
          hi.append(b)
        lo, hi = np.asarray(lo, dt), np.asarray(hi, dt)
        if d is None or d < 0:
          lo, hi = lo.reshape(()), hi.reshape(())
          if _rarely(draw, 8):  # min > max: TF rejects it (checked with constants)
            lo, hi, const = hi + 1, lo, True
        x = draw(cst.arrays(dtype, shape))
      else:
        n = d if d is not None and d >= 0 else None
        lo = np.full((n,) if n is not None else (), -1.0, dt)
        hi = np.full((n,) if n is not None else (), 1.0, dt)
        x = draw(cst.arrays(dtype, shape, allow_nan=False))
      mn, mx = lo, hi
      inputs = {"input": x, "input_min": mn, "input_max": mx}
      if version == 3:
        inputs["num_bits"] = np.asarray(bits, np.int32)
      return Example(inputs, attrs, {"const_range": const})
    return draw()
  return example


def _qdq_build(version: int):
  def build(ex):
    tf = _tf()
    op = getattr(tf.raw_ops, f"QuantizeAndDequantizeV{version}")
    const = ex.extra.get("const_range", False)
    mn_value, mx_value = ex.inputs["input_min"], ex.inputs["input_max"]
    num_bits = ex.inputs.get("num_bits")

    def fn(x, mn, mx):
      if const:
        mn, mx = tf.constant(mn_value), tf.constant(mx_value)
      kw = {"num_bits": tf.constant(num_bits)} if version == 3 else {}
      return op(input=x, input_min=mn, input_max=mx, **kw, **ex.attrs)
    return fn
  return build


def _qdq_tolerance(dtype, ex):
  """Exact steps in the input's dtype; a step can differ only by XLA fusing a multiply
  with the rounding's add (never seen): the default few ulps."""
  return default_tolerance(dtype)


_QDQ_NOTES = ("No NaN inputs without range_given (TF's min/max reduction handles NaN by "
              "position). A per-channel range_given (V2 and V4 always reject it: "
              "'input_min must be a scalar'; V3 takes it), min > max (as graph constants), num_bits 0 and invalid axes "
              "are drawn now and then.")


def _quant_specs():
  return [
      OpSpec("FakeQuantWithMinMaxArgs", _fq_args_example, dtype_attr=None,
             dtypes=("float32",), notes=_FQ_NOTES + " min >= max (rejected) now and then."),
      OpSpec("FakeQuantWithMinMaxVars", _fq_vars_example(False), dtype_attr=None,
             dtypes=("float32",), grad_tolerance=_sum_grad_tolerance, notes=_FQ_NOTES),
      OpSpec("FakeQuantWithMinMaxVarsPerChannel", _fq_vars_example(True), dtype_attr=None,
             dtypes=("float32",), grad_tolerance=_sum_grad_tolerance,
             notes=_FQ_NOTES + " Never a scalar input (TF's kernel aborts the process)."),
      OpSpec("QuantizeAndDequantizeV2", _qdq_example(2), build=_qdq_build(2),
             tolerance=_qdq_tolerance, notes=_QDQ_NOTES),
      OpSpec("QuantizeAndDequantizeV3", _qdq_example(3), build=_qdq_build(3),
             static_inputs=("num_bits",), tolerance=_qdq_tolerance, notes=_QDQ_NOTES),
      OpSpec("QuantizeAndDequantizeV4", _qdq_example(4), build=_qdq_build(4),
             tolerance=_qdq_tolerance, notes=_QDQ_NOTES),
  ]


# ApproxTopK -------------------------------------------------------------------------


def _cpu_kernel_attrs(attrs) -> bool:
  """TF's CPU kernel takes only reduction_dimension -1 and is_max_k True."""
  return attrs["reduction_dimension"] == -1 and attrs["is_max_k"]


def _approx_top_k_example(dtype):
  @st.composite
  def draw(draw):
    shape = draw(cst.shapes(min_dims=1, max_dims=3).filter(lambda s: s[-1] >= 1))
    x = draw(cst.arrays(dtype, shape, allow_nan=False))
    rank = len(shape)
    attrs = {"is_max_k": draw(st.booleans()),
             "reduction_dimension": draw(st.sampled_from([-1, -1] + list(range(-rank, rank))))}
    if _cpu_kernel_attrs(attrs):
      attrs["aggregate_to_topk"] = draw(st.booleans())
      attrs["recall_target"] = draw(st.sampled_from([0.95, 0.5, 1.0]))
    else:  # XLA's kernel: recall_target in (0, 1], aggregate_to_topk (see the notes)
      attrs["recall_target"] = draw(st.sampled_from([0.95, 0.5, 1.0]))
      # XLA breaks ties differently for k = 1 (its arg-max reduction takes the last
      # index): distinct values only.
      perm = np.asarray(draw(st.permutations(range(x.size))), np.float64)
      scale = draw(st.sampled_from([0.5, 1.0, -3.0]))
      x = ((perm - x.size // 2) * scale).astype(x.dtype).reshape(shape)
    attrs["reduction_input_size_override"] = draw(st.sampled_from([-1, 100]))
    size = shape[attrs["reduction_dimension"]]
    # k = 0 makes TF's gradient fail (a Range with delta 0): float cases draw k >= 1, and
    # now and then more than the dimension holds (rejected).
    attrs["k"] = draw(st.integers(min(1, size), size + (1 if _rarely(draw, 6) else 0)))
    return Example({"input": x}, attrs)
  return draw()


def _approx_top_k_build(ex):
  """The op, its int32 indices cast to the input's dtype (the gradient check needs float
  outputs; the indices are small, so exact)."""
  tf = _tf()

  def op(x):
    return tf.raw_ops.ApproxTopK(input=x, **ex.attrs)
  if not _cpu_kernel_attrs(ex.attrs):
    op = tf.function(op, jit_compile=True, autograph=False)

  def fn(x):
    values, indices = op(x)
    assert indices.dtype == tf.int32
    return values, tf.cast(indices, x.dtype)
  return fn


def _approx_specs():
  return [OpSpec("ApproxTopK", _approx_top_k_example, build=_approx_top_k_build,
                 notes="TF's CPU kernel (TopK's) takes reduction_dimension -1 and is_max_k "
                       "True only: other attrs are compared with TF's XLA kernel (exact on "
                       "CPU), with aggregate_to_topk True (XLA then returns an "
                       "implementation-defined number of results, the CPU kernel k) and "
                       "distinct values (XLA's k = 1 takes the last of equal values). The "
                       "indices are compared cast to the input's dtype (the gradient check "
                       "needs float outputs). No NaN inputs (TopK's comparator is no ordering with NaN).")]


# NMS ----------------------------------------------------------------------------------

VALUE_SHAPED = ("static",)  # output size depends on values: eager and static only


def _nms_example(version: int):
  def example(dtype):
    @st.composite
    def draw(draw):
      n = draw(st.integers(0, 8))
      dt = D.np_dtype(dtype)
      # Boxes on a coarse grid: many overlaps, some empty or flipped boxes.
      corners = draw(st.lists(st.integers(0, 6), min_size=4 * n, max_size=4 * n))
      boxes = (np.asarray(corners, np.float64).reshape(n, 4) * 0.5).astype(dt)
      # Scores with ties (TF takes the lower index first).
      scores = (np.asarray(draw(st.lists(st.integers(0, 5), min_size=n, max_size=n)),
                           np.float64) * 0.25).astype(dt)
      inputs = {"boxes": boxes, "scores": scores,
                "max_output_size": np.asarray(draw(st.integers(0, n + 1)), np.int32)}
      attrs = {}
      iou = draw(st.sampled_from([0.0, 0.3, 0.5, 0.7, 1.0]))
      if _rarely(draw, 12):
        iou = 1.5  # rejected by TF
      tt = dtype
      if version == 1:
        attrs["iou_threshold"] = iou
      else:
        inputs["iou_threshold"] = np.asarray(iou, D.np_dtype(tt))
      if version >= 3:
        inputs["score_threshold"] = np.asarray(
            draw(st.sampled_from([-np.inf, 0.0, 0.25, 0.5])), D.np_dtype(tt))
      if version == 5:
        inputs["soft_nms_sigma"] = np.asarray(draw(st.sampled_from([0.0, 0.0, 0.5, 1.0])),
                                              dt)
      if version == 4:
        attrs["pad_to_max_output_size"] = True
      if version == 5:
        attrs["pad_to_max_output_size"] = draw(st.booleans())
      return Example(inputs, attrs)
    return draw()
  return example


_VALUE_SHAPED_NOTE = ("The number of selected boxes depends on the values: checked eagerly "
                      "and with every input constant; under jit the lowering raises a "
                      "ConversionError naming the op. ")
_BOXES_NOTE = ("Boxes on a coarse grid (many overlaps, empty and flipped boxes) and scores "
               "with ties.")
_NMS_NOTES = _VALUE_SHAPED_NOTE + _BOXES_NOTE


def _overlaps_example(dtype):
  @st.composite
  def draw(draw):
    n = draw(st.integers(0, 8))
    o = np.asarray(draw(st.lists(st.integers(0, 4), min_size=n * n, max_size=n * n)),
                   np.float64).reshape(n, n) * 0.25
    scores = np.asarray(draw(st.lists(st.integers(0, 5), min_size=n, max_size=n)),
                        np.float64) * 0.25
    return Example({"overlaps": o.astype(np.float32), "scores": scores.astype(np.float32),
                    "max_output_size": np.asarray(draw(st.integers(0, n + 1)), np.int32),
                    "overlap_threshold": np.asarray(draw(st.sampled_from([0.0, 0.5, 1.0])),
                                                    np.float32),
                    "score_threshold": np.asarray(draw(st.sampled_from([-np.inf, 0.25])),
                                                  np.float32)})
  return draw()


def _combined_nms_example(dtype):
  @st.composite
  def draw(draw):
    b, n, c = draw(st.integers(1, 2)), draw(st.integers(0, 6)), draw(st.integers(1, 3))
    q = draw(st.sampled_from([1, c]))
    seed = draw(st.integers(0, 2**31))
    rng = np.random.default_rng(seed)
    # Coordinates around [0, 1] (clip_boxes clips to it), some boxes reversed or flat.
    boxes = rng.uniform(-0.2, 1.2, (b, n, q, 4))
    if n and _rarely(draw, 4):
      boxes[..., 2] = boxes[..., 0]
    # Distinct scores: TF orders equal ones unspecifiedly.
    scores = rng.permutation(np.linspace(0.01, 0.99, b * n * c)).reshape(b, n, c)
    per_class = draw(st.integers(0, 4) if _rarely(draw, 10) else st.integers(1, 4))
    return Example({
        "boxes": boxes.astype(np.float32), "scores": scores.astype(np.float32),
        "max_output_size_per_class": np.asarray(per_class, np.int32),
        "max_total_size": np.asarray(draw(st.integers(1, 8)), np.int32),
        "iou_threshold": np.asarray(draw(st.sampled_from([0.0, 0.3, 0.5, 0.7, 1.0])),
                                    np.float32),
        "score_threshold": np.asarray(draw(st.sampled_from([-1.0, 0.2, 0.5, 0.9])),
                                      np.float32)},
        {"pad_per_class": draw(st.booleans()), "clip_boxes": draw(st.booleans())})
  return draw()


def _nms_specs():
  out = [OpSpec("NonMaxSuppression", _nms_example(1), dtype_attr=None, dtypes=("float32",),
                transforms=VALUE_SHAPED, notes=_NMS_NOTES),
         OpSpec("NonMaxSuppressionWithOverlaps", _overlaps_example, dtype_attr=None,
                dtypes=("float32",), transforms=VALUE_SHAPED,
                notes=_VALUE_SHAPED_NOTE + "Asymmetric overlaps on a coarse grid, scores "
                      "with ties.")]
  for v in (2, 3, 5):
    out.append(OpSpec(f"NonMaxSuppressionV{v}", _nms_example(v), transforms=VALUE_SHAPED,
                      notes=_NMS_NOTES))
  out.append(OpSpec("NonMaxSuppressionV4", _nms_example(4), static_inputs=("max_output_size",),
                    transforms=("jit", "static", "x64", "vmap"),
                    notes="pad_to_max_output_size=True (a size-bounded output: checked under "
                          "jit and vmap too; max_output_size a graph constant). Without "
                          "padding it is V3's code. " + _BOXES_NOTE))
  out.append(OpSpec("CombinedNonMaxSuppression", _combined_nms_example, dtype_attr=None,
                    dtypes=("float32",),
                    static_inputs=("max_output_size_per_class", "max_total_size"),
                    transforms=NO_GRAD, notes=(
                        "Output sizes are constants of the graph (they set the output "
                        "shapes; traced ones raise a ConversionError). Distinct scores: "
                        "TF orders equal scores unspecifiedly (a priority queue, then "
                        "std::sort). TF defines no gradient for it.")))
  return out


# CTC ----------------------------------------------------------------------------------


def _ctc_greedy_example(dtype):
  @st.composite
  def draw(draw):
    t, b, c = draw(st.integers(1, 5)), draw(st.integers(1, 3)), draw(st.integers(1, 4))
    if _rarely(draw, 10):  # empty inputs: rejected by TF
      t = 0
    # Coarse values: ties between classes (TF takes the first maximum).
    x = (np.asarray(draw(st.lists(st.integers(-4, 4), min_size=t * b * c,
                                  max_size=t * b * c)), np.float64).reshape(t, b, c) * 0.75)
    x = x.astype(D.np_dtype(dtype))
    hi = t + (1 if _rarely(draw, 10) else 0)  # longer than max_time: rejected
    lengths = np.asarray(draw(st.lists(st.integers(0, hi), min_size=b, max_size=b)), np.int32)
    blank = draw(st.sampled_from([-1, -1, 0, c - 1, -c]))
    if _rarely(draw, 12):
      blank = draw(st.sampled_from([c, -c - 1]))  # rejected by TF
    return Example({"inputs": x, "sequence_length": lengths},
                   {"merge_repeated": draw(st.booleans()), "blank_index": blank})
  return draw()


def _ctc_beam_example(dtype):
  """Continuous logits (from a drawn seed): TF breaks ties between equally probable
  paths in its heap's order, which tf2jax does not reproduce. -inf logits of non-blank
  classes now and then (a class ruled out at a step)."""
  @st.composite
  def draw(draw):
    t, b, c = draw(st.integers(1, 8)), draw(st.integers(1, 3)), draw(st.integers(1, 6))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    x = rng.normal(size=(t, b, c)) * draw(st.sampled_from([0.5, 2.0, 6.0]))
    if c > 1 and _rarely(draw, 4):
      x[..., :-1][rng.random((t, b, c - 1)) < 0.3] = -np.inf
    if _rarely(draw, 12):  # empty inputs: rejected by TF
      x = x[:0]
      t = 0
    # Negative lengths decode nothing; longer than max_time is rejected.
    lo, hi = (-1 if _rarely(draw, 8) else 0), t + (1 if _rarely(draw, 12) else 0)
    lengths = np.asarray(draw(st.lists(st.integers(lo, hi), min_size=b, max_size=b)), np.int32)
    beam_width = draw(st.integers(1, 6))
    # More top paths than the beam width, or than the beam holds: rejected by TF.
    top_paths = draw(st.integers(1, beam_width + (1 if _rarely(draw, 12) else 0)))
    return Example({"inputs": x.astype(D.np_dtype(dtype)), "sequence_length": lengths},
                   {"beam_width": beam_width, "top_paths": top_paths,
                    "merge_repeated": draw(st.booleans())})
  return draw()


def _ctc_beam_tolerance(dtype, ex):
  """Log probabilities: float32's rtol and (4 + 4 T) float32 eps of the largest |logit|
  absolute, for float64 too (TF's log-sum-exp rounds its log1p(exp(.)) term to float32)."""
  del dtype
  scale = 1.0 + largest_finite_abs(ex.inputs["inputs"])
  eps = float(D.finfo("float32").eps)
  return Tolerance(default_tolerance("float32").rtol,
                   (4 + 4 * np.shape(ex.inputs["inputs"])[0]) * eps * scale)


def _ctc_loss_example(dtype):
  @st.composite
  def draw(draw):
    t, b, c = draw(st.integers(1, 6)), draw(st.integers(1, 3)), draw(st.integers(2, 5))
    scale = draw(st.sampled_from([1.0, 3.0, 3.0, 60.0]))  # 60: softmax underflows to 0
    x = np.asarray(draw(st.lists(st.floats(-1, 1), min_size=t * b * c, max_size=t * b * c)),
                   np.float64).reshape(t, b, c) * scale
    lengths = np.asarray(draw(st.lists(st.integers(0, t), min_size=b, max_size=b)), np.int32)
    collapse, merge, ignore = (draw(st.booleans()) for _ in range(3))
    indices, values = [], []
    for row in range(b):
      # Mostly labels that fit the row's time (TF raises otherwise, unless ignored), with
      # repeats (few classes); at least one label per row (TF raises otherwise).
      fits = max(1, int(lengths[row]))
      n = draw(st.integers(1, fits + 2 if ignore or _rarely(draw, 8) else fits))
      for i in range(n):
        indices.append((row, i))
        values.append(draw(st.integers(0, c - 2)))
    return Example({"inputs": x.astype(D.np_dtype(dtype)),
                    "labels_indices": np.asarray(indices, np.int64).reshape(-1, 2),
                    "labels_values": np.asarray(values, np.int32),
                    "sequence_length": lengths},
                   {"preprocess_collapse_repeated": collapse, "ctc_merge_repeated": merge,
                    "ignore_longer_outputs_than_inputs": ignore})
  return draw()


def _ctc_v2_example(dtype):
  # CTCLossV2's blank is class 0: CTCLoss's labels, one class up.
  return _ctc_loss_example(dtype).map(lambda ex: Example(
      {**ex.inputs, "labels_values": ex.inputs["labels_values"] + 1}, ex.attrs))


def _ctc_v2_build(ex):
  """The reference: CTCLoss with class 0 moved last (its blank) and the labels one down;
  the gradient's classes moved back. `_ctc_v2_rewrite` makes it CTCLossV2."""
  tf = _tf()

  def body(x, values, lengths):
    x = tf.identity(x, name="ctc_in")
    values = tf.identity(values, name="ctc_values")
    lengths = tf.identity(lengths, name="ctc_lengths")
    indices = tf.identity(ex.inputs["labels_indices"], name="ctc_indices")
    loss, grad = tf.raw_ops.CTCLoss(
        inputs=tf.concat([x[..., 1:], x[..., :1]], axis=-1), labels_indices=indices,
        labels_values=values - 1, sequence_length=lengths, **ex.attrs)
    return (tf.identity(loss, name="ctc_loss_out"),
            tf.identity(tf.concat([grad[..., -1:], grad[..., :-1]], axis=-1),
                        name="ctc_grad_out"))
  return body


def _ctc_v2_rewrite(graph_def, ex):
  node = graph_def.node.add(name="ctc_v2", op="CTCLossV2", input=[
      "ctc_in", "ctc_indices", "ctc_values", "ctc_lengths"])
  for attr, value in ex.attrs.items():
    node.attr[attr].b = bool(value)
  for n in graph_def.node:
    if n.name == "ctc_loss_out":
      n.input[0] = "ctc_v2"
    elif n.name == "ctc_grad_out":
      n.input[0] = "ctc_v2:1"


def _ctc_tolerance(dtype, ex):
  """float32's default rtol (TF computes float64 in float32 too) and (8 + 2 T max|inputs|)
  float32 eps absolute: the gradient y - posterior cancels (both are probabilities), and
  the posterior exp(alpha + beta - log p) carries the rounding of sums over T
  log-probabilities (float32, T = 6, logits up to 60: TF and tf2jax 55 eps apart)."""
  del dtype
  spread = 2 * np.shape(ex.inputs["inputs"])[0] * largest_finite_abs(ex.inputs["inputs"])
  base = default_tolerance("float32")
  return Tolerance(base.rtol, (8 + spread) * float(D.finfo("float32").eps))


def _ctc_specs():
  return [OpSpec("CTCLoss", _ctc_loss_example, static_inputs=("labels_indices",),
                 grad_inputs=("inputs",),
                 tolerance=_ctc_tolerance, notes=(
                     "Tolerance: float32's rtol and (8 + 2 T max|inputs|) float32 eps "
                     "absolute (the gradient y - posterior cancels, and the posterior "
                     "carries sums over T log-probabilities), for float64 too: TF's "
                     "float64 kernel computes in float32 (its loss for p = 1/2 is "
                     "0.693147178655291, "
                     "log 2 is 0.6931471805599453), tf2jax in float64. "
                     "labels_indices are graph constants (so vmap keeps them valid; traced "
                     "indices are tested in tests/test_ctc.py). Labels are below the "
                     "blank (TF does not check that; equal or above, its kernel reads out "
                     "of bounds, and tf2jax raises). Under jit, TF's value checks cannot "
                     "raise: too-long labels give an infinite loss.")),
          OpSpec("CTCLossV2", _ctc_v2_example, dtype_attr=None, dtypes=("float32",),
                 static_inputs=("labels_indices",), grad_inputs=("inputs",),
                 build=_ctc_v2_build, rewrite=_ctc_v2_rewrite, tolerance=_ctc_tolerance,
                 notes=(
                     "TF has no CPU kernel for it (cuDNN's CTC loss: blank class 0); "
                     "reference: CTCLoss with class 0 moved last and the labels one down, "
                     "rewritten into CTCLossV2. As CTCLoss otherwise.")),
          OpSpec("CTCGreedyDecoder", _ctc_greedy_example, transforms=VALUE_SHAPED,
                 notes="Sparse outputs whose size depends on the values: checked eagerly and "
                       "with every input constant; under jit the lowering raises a "
                       "ConversionError naming the op. Coarse values (ties between classes)."),
          OpSpec("CTCBeamSearchDecoder", _ctc_beam_example, transforms=VALUE_SHAPED,
                 tolerance=_ctc_beam_tolerance, notes=(
                     "Sparse outputs whose size depends on the values, as CTCGreedyDecoder. "
                     "Continuous logits: TF orders equally probable paths (exact ties, "
                     "e.g. integer logits) as its heap happens to, which tf2jax does not "
                     "reproduce (it keeps visiting order). NaN or +inf logits and -inf "
                     "blank logits give beam entries an infinite or NaN log probability; "
                     "TF's order then depends on its heap internals, and tf2jax raises "
                     "(not drawn). -inf logits of other classes are drawn. Tolerance of "
                     "the log probabilities: float32's (TF rounds part of its float64 "
                     "log-sum-exp to float32)."))]


def specs():
  return _quant_specs() + _approx_specs() + _nms_specs() + _ctc_specs()
