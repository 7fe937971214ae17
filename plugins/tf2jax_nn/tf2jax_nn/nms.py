"""Non-max suppression: NonMaxSuppression, NonMaxSuppressionV2, V3, V4, V5,
NonMaxSuppressionWithOverlaps (the given overlaps instead of IOUs) and
CombinedNonMaxSuppression (per batch entry and class; fixed output size, so it also runs
under jit).

TF's CPU kernel's greedy algorithm, step by step: candidates with a score above
score_threshold are taken by descending score (equal scores: the lower index first); a
candidate is dropped when its IOU (computed in float32) with an already selected box
exceeds iou_threshold. V5 with soft_nms_sigma > 0 decays scores by
exp(-0.5 * iou^2 / sigma) instead and re-queues the candidate (soft-NMS).

The number of selected boxes depends on the values: the ops run when the converted
function is called without jit (or on graph constants). Under jit they raise a
ConversionError, except NonMaxSuppressionV4 with pad_to_max_output_size (and a constant
max_output_size), whose output size is bounded: it runs as a JAX loop over the boxes in
score order (hard NMS gives the same selection as TF's priority queue).
"""

from __future__ import annotations

import heapq

import jax
import jax.numpy as jnp
import numpy as np

from tf2jax_core import ConversionError, is_static, lowering


def _concrete(node, value, what: str, result: str = "the number of selected boxes"):
  """The values of an input the output's size depends on, or a clear error under jit."""
  if is_static(value):
    return np.asarray(value)
  if isinstance(value, jax.core.Tracer):
    hint = (" NonMaxSuppressionV4 with pad_to_max_output_size=True and a constant "
            "max_output_size has a fixed output size and works under jit."
            if node.op.startswith("NonMaxSuppressionV") else "")
    raise ConversionError(
        f"{node.op} node {node.path!r}: {result} depends on the values "
        f"of {what}, which are traced here (under jax.jit, vmap or another "
        f"transformation). Call the converted function without jit, or make these values "
        "constants of the graph." + hint)
  return np.asarray(value)


def _iou(boxes, i: int, j: int) -> np.float32:
  f = np.float32
  bi, bj = boxes[i].astype(f), boxes[j].astype(f)
  ymin_i, ymax_i = min(bi[0], bi[2]), max(bi[0], bi[2])
  xmin_i, xmax_i = min(bi[1], bi[3]), max(bi[1], bi[3])
  ymin_j, ymax_j = min(bj[0], bj[2]), max(bj[0], bj[2])
  xmin_j, xmax_j = min(bj[1], bj[3]), max(bj[1], bj[3])
  area_i = (ymax_i - ymin_i) * (xmax_i - xmin_i)
  area_j = (ymax_j - ymin_j) * (xmax_j - xmin_j)
  if area_i <= 0 or area_j <= 0:
    return f(0)
  inter = (max(min(ymax_i, ymax_j) - max(ymin_i, ymin_j), f(0))
           * max(min(xmax_i, xmax_j) - max(xmin_i, xmin_j), f(0)))
  return inter / (area_i + area_j - inter)


def _greedy(boxes, scores, max_out: int, iou_thr, score_thr, sigma, overlaps=None):
  """(selected indices, their (decayed) scores), as TF's DoNonMaxSuppressionOp."""
  t = scores.dtype.type
  iou_thr, score_thr, sigma = t(iou_thr), t(score_thr), t(sigma)
  soft = sigma > 0
  scale = t(-0.5) / sigma if soft else t(0)
  heap = [(-scores[i], i, 0) for i in range(scores.size) if scores[i] > score_thr]
  heapq.heapify(heap)  # by descending score, then ascending index
  selected, selected_scores = [], []
  with np.errstate(all="ignore"):
    while len(selected) < max_out and heap:
      neg, idx, begin = heapq.heappop(heap)
      original = score = t(-neg)
      hard = False
      for j in range(len(selected) - 1, begin - 1, -1):
        sim = t(_iou(boxes, idx, selected[j]) if overlaps is None
                else overlaps[idx, selected[j]])
        weight = t(np.exp(scale * sim * sim))
        score = t(score * (weight if soft or sim <= iou_thr else t(0)))
        if not soft and sim > iou_thr:
          hard = True
          break
        if score <= score_thr:
          break
      if hard:
        continue
      if score == original:
        selected.append(idx)
        selected_scores.append(score)
      elif score > score_thr:
        heapq.heappush(heap, (-score, idx, len(selected)))
  return selected, selected_scores


def _padded_nms(boxes, scores, max_out: int, iou_thr, score_thr):
  """V4 with padding, in JAX: (indices padded with 0 to max_out, number valid)."""
  n = scores.shape[0]
  t = scores.dtype
  if n == 0 or max_out == 0:
    return jnp.zeros((max_out,), jnp.int32), jnp.zeros((), jnp.int32)
  order = jnp.argsort(-scores, stable=True)  # descending, equal scores by index
  s = scores[order]
  b = boxes[order].astype(jnp.float32)
  ymin, ymax = jnp.minimum(b[:, 0], b[:, 2]), jnp.maximum(b[:, 0], b[:, 2])
  xmin, xmax = jnp.minimum(b[:, 1], b[:, 3]), jnp.maximum(b[:, 1], b[:, 3])
  area = (ymax - ymin) * (xmax - xmin)
  h = jnp.maximum(jnp.minimum(ymax[:, None], ymax[None]) - jnp.maximum(ymin[:, None], ymin[None]),
                  0)
  w = jnp.maximum(jnp.minimum(xmax[:, None], xmax[None]) - jnp.maximum(xmin[:, None], xmin[None]),
                  0)
  inter = h * w
  union = area[:, None] + area[None] - inter
  bad = (area[:, None] <= 0) | (area[None] <= 0)
  iou = jnp.where(bad, 0, inter / jnp.where(bad, 1, union)).astype(t)
  over = iou > jnp.asarray(iou_thr).astype(t)
  ok = s > jnp.asarray(score_thr).astype(t)

  def body(k, state):
    keep, count = state
    take = ok[k] & (count < max_out) & ~jnp.any(keep & over[k])
    return keep.at[k].set(take), count + take.astype(jnp.int32)

  keep, count = jax.lax.fori_loop(0, n, body, (jnp.zeros(n, bool), jnp.zeros((), jnp.int32)))
  pos = jnp.nonzero(keep, size=max_out, fill_value=0)[0]
  idx = jnp.where(jnp.arange(max_out) < count, order[pos], 0).astype(jnp.int32)
  return idx, count


def _nms(node, version: int):
  pad = bool(node.attrs.get("pad_to_max_output_size", False))

  def run(boxes, scores, max_output_size, *rest):
    traced = any(isinstance(v, jax.core.Tracer) for v in (boxes, scores) + rest)
    if version == 4 and pad and traced and is_static(max_output_size):
      for name, v in (("iou_threshold", rest[0]), ("score_threshold", rest[1]),
                      ("max_output_size", max_output_size)):
        if np.ndim(v) != 0:
          raise ValueError(f"{name} must be 0-D, got shape {list(np.shape(v))}")
      if is_static(rest[0]) and not 0 <= float(rest[0]) <= 1:
        raise ValueError("iou_threshold must be in [0, 1]")
      bs, ss = tuple(np.shape(boxes)), tuple(np.shape(scores))
      if len(bs) != 2 or bs[1] != 4 or ss != bs[:1]:
        raise ValueError(f"boxes must be [num_boxes, 4] and scores [num_boxes], got "
                         f"{list(bs)} and {list(ss)}")
      return list(_padded_nms(jnp.asarray(boxes), jnp.asarray(scores),
                              max(int(max_output_size), 0), rest[0], rest[1]))
    b = _concrete(node, boxes, "boxes")
    s = _concrete(node, scores, "scores")
    n = _concrete(node, max_output_size, "max_output_size")
    if version == 1:
      iou, score_thr, sigma = node.attrs.get("iou_threshold", 0.5), -np.inf, 0.0
    else:
      iou = _concrete(node, rest[0], "iou_threshold")
      score_thr = _concrete(node, rest[1], "score_threshold") if version >= 3 else -np.inf
      sigma = _concrete(node, rest[2], "soft_nms_sigma") if version == 5 else 0.0
      for name, v in (("iou_threshold", iou), ("score_threshold", score_thr),
                      ("soft_nms_sigma", sigma)):
        if np.ndim(v) != 0:
          raise ValueError(f"{name} must be 0-D, got shape {list(np.shape(v))}")
    if np.ndim(n) != 0:
      raise ValueError(f"max_output_size must be 0-D, got shape {list(np.shape(n))}")
    if not 0 <= float(iou) <= 1:
      raise ValueError("iou_threshold must be in [0, 1]")
    if version == 5 and float(sigma) < 0:
      raise ValueError("soft_nms_sigma must be non-negative")
    if b.ndim != 2 or b.shape[1] != 4:
      raise ValueError(f"boxes must be 2-D with 4 columns, got shape {list(b.shape)}")
    if s.ndim != 1 or s.shape[0] != b.shape[0]:
      raise ValueError(f"scores must be 1-D with {b.shape[0]} elements (one per box), got "
                       f"shape {list(s.shape)}")
    max_out = int(n)
    if max_out < 0 and version < 4:
      raise ValueError("max_output_size must be non-negative")
    sel, sel_scores = _greedy(b, s, max(max_out, 0), iou, score_thr, sigma)
    valid = len(sel)
    size = max(max_out, 0) if pad else valid
    idx = np.zeros(size, np.int32)
    idx[:valid] = sel
    if version < 4:
      return idx
    outs = [idx]
    if version == 5:
      sc = np.zeros(size, s.dtype)
      sc[:valid] = sel_scores
      outs.append(sc)
    outs.append(np.asarray(valid, np.int32))
    return outs
  return run


_T = ("float16", "float32")


@lowering("NonMaxSuppression", attrs={"iou_threshold": None})
def nms_v1(node):
  return _nms(node, 1)


@lowering("NonMaxSuppressionV2", attrs={"T": _T, "T_threshold": _T})
def nms_v2(node):
  return _nms(node, 2)


@lowering("NonMaxSuppressionV3", attrs={"T": _T, "T_threshold": _T})
def nms_v3(node):
  return _nms(node, 3)


@lowering("NonMaxSuppressionV4", attrs={"T": _T, "T_threshold": _T,
                                        "pad_to_max_output_size": None})
def nms_v4(node):
  return _nms(node, 4)


@lowering("NonMaxSuppressionV5", attrs={"T": _T, "pad_to_max_output_size": None})
def nms_v5(node):
  return _nms(node, 5)


@lowering("NonMaxSuppressionWithOverlaps")
def nms_with_overlaps(node):
  def run(overlaps, scores, max_output_size, overlap_threshold, score_threshold):
    o = _concrete(node, overlaps, "overlaps")
    s = _concrete(node, scores, "scores")
    n = _concrete(node, max_output_size, "max_output_size")
    thr = _concrete(node, overlap_threshold, "overlap_threshold")
    score_thr = _concrete(node, score_threshold, "score_threshold")
    for name, v in (("max_output_size", n), ("overlap_threshold", thr),
                    ("score_threshold", score_thr)):
      if np.ndim(v) != 0:
        raise ValueError(f"{name} must be 0-D, got shape {list(np.shape(v))}")
    if o.ndim != 2 or o.shape[0] != o.shape[1]:
      raise ValueError(f"overlaps must be a square matrix, got shape {list(o.shape)}")
    if s.ndim != 1 or s.shape[0] != o.shape[0]:
      raise ValueError(f"scores must be 1-D with {o.shape[0]} elements, got shape "
                       f"{list(s.shape)}")
    if int(n) < 0:
      raise ValueError("max_output_size must be non-negative")
    sel, _ = _greedy(None, s, int(n), thr, score_thr, 0.0, overlaps=o)
    return np.asarray(sel, np.int32)
  return run


@lowering("CombinedNonMaxSuppression", attrs={"pad_per_class": None, "clip_boxes": None})
def combined_nms(node):
  """Hard NMS per batch entry and class (`_padded_nms`), then the selections of all
  classes by descending score, the first max_total_size kept (fewer with pad_per_class).
  TF orders equal scores unspecifiedly (a priority queue, then std::sort)."""
  pad_per_class = bool(node.attrs.get("pad_per_class", False))
  clip = bool(node.attrs.get("clip_boxes", True))

  def run(boxes, scores, max_output_size_per_class, max_total_size, iou_threshold,
          score_threshold):
    where = f"{node.op} node {node.path!r}"
    sizes = []
    for name, v in (("max_output_size_per_class", max_output_size_per_class),
                    ("max_total_size", max_total_size)):
      if not is_static(v):
        raise ConversionError(f"{where}: the output size depends on {name}, which is traced "
                              "here; make it a constant of the graph")
      if np.ndim(v) != 0:
        raise ValueError(f"{where}: {name} must be 0-D, got shape {list(np.shape(v))}")
      sizes.append(int(v))
    per_class, total = sizes
    if per_class <= 0:
      raise ValueError(f"{where}: max_output_size_per_class must be > 0, got {per_class}")
    if total <= 0:
      raise ValueError(f"{where}: max_total_size must be > 0, got {total}")
    for name, v in (("iou_threshold", iou_threshold), ("score_threshold", score_threshold)):
      if np.ndim(v) != 0:
        raise ValueError(f"{where}: {name} must be 0-D, got shape {list(np.shape(v))}")
    if is_static(iou_threshold) and not 0 <= float(iou_threshold) <= 1:
      raise ValueError(f"{where}: iou_threshold must be in [0, 1], got {float(iou_threshold)}")
    bs, ss = tuple(np.shape(boxes)), tuple(np.shape(scores))
    if len(ss) != 3 or len(bs) != 4 or bs[3] != 4 or bs[:2] != ss[:2] or bs[2] not in (1, ss[2]):
      raise ValueError(f"{where}: boxes must be [batch, num_boxes, q, 4] with q 1 or "
                       f"num_classes, and scores [batch, num_boxes, num_classes]; got "
                       f"{list(bs)} and {list(ss)}")
    batch, _, classes = ss
    keep = min(total, per_class * classes) if pad_per_class else total
    boxes, scores = jnp.asarray(boxes, jnp.float32), jnp.asarray(scores, jnp.float32)
    by_class = jnp.moveaxis(jnp.broadcast_to(boxes, bs[:2] + (classes, 4)), 2, 1)

    def one_class(b, s):
      if s.shape[0] == 0:
        return jnp.zeros((per_class, 4), b.dtype), jnp.full((per_class,), -jnp.inf, s.dtype)
      idx, count = _padded_nms(b, s, per_class, iou_threshold, score_threshold)
      live = jnp.arange(per_class) < count
      return b[idx], jnp.where(live, s[idx], -jnp.inf)

    sel_boxes, sel_scores = jax.vmap(jax.vmap(one_class))(by_class,
                                                          jnp.moveaxis(scores, 2, 1))
    sel_boxes = sel_boxes.reshape(batch, classes * per_class, 4)
    sel_scores = sel_scores.reshape(batch, classes * per_class)
    sel_classes = jnp.broadcast_to(jnp.repeat(jnp.arange(classes), per_class),
                                   sel_scores.shape)
    order = jnp.argsort(-sel_scores, axis=1, stable=True)
    pad = max(keep - classes * per_class, 0)
    order = jnp.pad(order, ((0, 0), (0, pad)))[:, :keep]
    out_scores = jnp.pad(jnp.take_along_axis(sel_scores, order[:, :keep - pad], axis=1),
                         ((0, 0), (0, pad)), constant_values=-jnp.inf)
    live = out_scores > -jnp.inf
    out_boxes = jnp.take_along_axis(sel_boxes, order[..., None], axis=1)
    if clip:
      out_boxes = jnp.clip(out_boxes, 0.0, 1.0)
    out_classes = jnp.take_along_axis(sel_classes, order, axis=1).astype(jnp.float32)
    return [jnp.where(live[..., None], out_boxes, 0), jnp.where(live, out_scores, 0),
            jnp.where(live, out_classes, 0), live.sum(axis=1).astype(jnp.int32)]
  return run
