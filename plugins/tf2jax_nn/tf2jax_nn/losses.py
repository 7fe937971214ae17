"""Losses and top-k: L2Loss, SoftmaxCrossEntropyWithLogits,
SparseSoftmaxCrossEntropyWithLogits, TopK, TopKV2, ApproxTopK, InTopK, InTopKV2,
NthElement.

Semantics follow TF's CPU kernels:

* The cross entropies use the kernels' formula: with s = logits - max(logits),
  loss = sum(labels * (log(sum(exp(s))) - s)) and backprop = exp(s) / sum(exp(s)) - labels
  (so a NaN anywhere in a row makes the whole row NaN, and a label of 0 against a logit of
  -inf gives a NaN loss: 0 * inf). float16/bfloat16 compute in float32 and round once.
* Their gradients are TF's registered ones, not the exact derivative: the features get
  grad_loss * backprop (which assumes labels summing to 1) plus the softmax Jacobian
  applied to grad_backprop; the dense labels get grad_loss * -log_softmax(logits) and
  nothing from grad_backprop (TF leaves that term out).
* SoftmaxCrossEntropyWithLogits broadcasts features and labels to a common 2-D shape like
  TF (TF's gradient for a broadcast input has the broadcast shape, which JAX cannot
  return: tf2jax reduces it to the input's shape).
* SparseSoftmaxCrossEntropyWithLogits: TF's CPU kernel rejects labels outside
  [0, num_classes). tf2jax raises too when the labels are known at conversion time
  (graph constants): the error comes when the converted function is first called or
  traced, since lowerings see values only then. For labels computed at call time
  nothing can be raised under jit, and the rows with such a label get NaN loss and
  backprop (what TF's GPU kernel does).
* TopK/TopKV2 order equal values by index (the lower index first) and treat -0.0 and 0.0
  as equal, like TF's comparator. With sorted=False TF's order of the k results is
  unspecified (its heap's order); tf2jax returns them sorted. TF's comparator is not an
  ordering with NaN (its results with NaN depend on the algorithm); tf2jax sorts NaN
  as the largest value.
* ApproxTopK is exact on CPU (TF's CPU kernel is TopK's; XLA's CPU fallback sorts):
  tf2jax returns the exact top (is_max_k) or bottom k along reduction_dimension, ties by
  index, sorted. recall_target and reduction_input_size_override change nothing there.
  With aggregate_to_topk=False the CPU kernel returns k results (XLA may return more:
  its size is implementation defined); tf2jax returns k.
* InTopK/InTopKV2: a row holding a prediction that is not finite (NaN or +-inf,
  wherever it is), or whose target is outside [0, num_classes), gives False; otherwise the
  target is in the top k when fewer than k predictions are strictly greater (ties count
  as in the top k).
* NthElement is a sort along the last axis; its gradient is TF's: the output's gradient
  split evenly between the elements equal to the output.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from tf2jax_core import FLOAT, REAL, is_static, lowering, xnp

_INDEX = ("int16", "int32", "int64")


def _work_dtype(dtype):
  dtype = np.dtype(dtype)
  return np.dtype("float32") if dtype.name in ("float16", "bfloat16") else dtype


def _shape(x) -> tuple[int, ...]:
  return tuple(int(d) for d in np.shape(x))


# L2Loss -----------------------------------------------------------------------------


@lowering("L2Loss", attrs={"T": FLOAT})
def l2_loss(node):
  def run(t):
    m = xnp(t)
    work = _work_dtype(t.dtype)
    # TF squares and halves in T (a float16 square may overflow), then sums.
    with np.errstate(over="ignore"):
      half_squares = ((t * t) * np.asarray(0.5, t.dtype)).astype(work)
      return m.sum(half_squares).astype(t.dtype)
  return run


# Softmax cross entropies -------------------------------------------------------------


def _xent_forward(m, features, onehot_or_labels, sparse: bool):
  """(loss, backprop) in the work dtype; `onehot_or_labels` is dense labels, or for
  `sparse` a one-hot of the labels (NaN rows for labels out of range)."""
  shifted = features - m.max(features, axis=-1, keepdims=True)
  e = m.exp(shifted)
  total = m.sum(e, axis=-1, keepdims=True)
  log_total = m.log(total)
  labels = onehot_or_labels
  if sparse:
    # Only the label's class counts: other classes give 0 whatever their value.
    picked = m.sum(m.where(labels > 0, shifted, m.zeros_like(shifted)), axis=-1,
                   keepdims=True)
    bad = m.isnan(labels).any(axis=-1, keepdims=True)
    loss = m.where(bad, np.asarray(np.nan, features.dtype), log_total - picked)[..., 0]
  else:
    loss = m.sum(labels * (log_total - shifted), axis=-1)
  backprop = e / total - labels
  return loss, backprop


def _softmax_np(x):
  s = x - np.max(x, axis=-1, keepdims=True)
  e = np.exp(s)
  return e / np.sum(e, axis=-1, keepdims=True)


@jax.custom_jvp
def _xent(features, labels):
  return _xent_forward(jnp, features, labels, False)


@_xent.defjvp
def _xent_jvp(primals, tangents):
  features, labels = primals
  tf_, tl = tangents
  loss, backprop = _xent(features, labels)
  sm = jax.nn.softmax(features, axis=-1)
  t_loss = jnp.sum(backprop * tf_, axis=-1)
  t_loss = t_loss - jnp.sum(jax.nn.log_softmax(features, axis=-1) * tl, axis=-1)
  t_bp = (tf_ - jnp.sum(tf_ * sm, axis=-1, keepdims=True)) * sm
  return (loss, backprop), (t_loss, t_bp)


@jax.custom_jvp
def _sparse_xent(features, onehot):
  return _xent_forward(jnp, features, onehot, True)


@_sparse_xent.defjvp
def _sparse_xent_jvp(primals, tangents):
  features, onehot = primals
  tf_, _ = tangents
  loss, backprop = _sparse_xent(features, onehot)
  sm = jax.nn.softmax(features, axis=-1)
  t_loss = jnp.sum(backprop * tf_, axis=-1)
  t_bp = (tf_ - jnp.sum(tf_ * sm, axis=-1, keepdims=True)) * sm
  return (loss, backprop), (t_loss, t_bp)


@lowering("SoftmaxCrossEntropyWithLogits", attrs={"T": FLOAT})
def softmax_cross_entropy(node):
  def run(features, labels):
    fs, ls = _shape(features), _shape(labels)
    try:
      shape = np.broadcast_shapes(fs, ls)
    except ValueError:
      shape = None
    if shape is None or len(shape) != 2:
      raise ValueError(f"features (input 0, shape {list(fs)}) and labels (input 1, shape "
                       f"{list(ls)}) must be 2-D or broadcast to a 2-D shape")
    m = xnp(features, labels)
    dtype = np.dtype(features.dtype)
    if 0 in shape:  # no class: a loss of 0 (an empty sum) per row
      return m.zeros(shape[:1], dtype), m.zeros(shape, dtype)
    work = _work_dtype(dtype)
    f = m.broadcast_to(features.astype(work), shape)
    lab = m.broadcast_to(labels.astype(work), shape)
    if is_static(features, labels):
      with np.errstate(all="ignore"):  # overflow, inf - inf: as in TF
        loss, backprop = _xent_forward(np, f, lab, False)
    else:
      loss, backprop = _xent(jnp.asarray(f), jnp.asarray(lab))
    return loss.astype(dtype), backprop.astype(dtype)
  return run


@lowering("SparseSoftmaxCrossEntropyWithLogits", attrs={"T": FLOAT, "Tlabels": _INDEX})
def sparse_softmax_cross_entropy(node):
  def run(features, labels):
    fs, ls = _shape(features), _shape(labels)
    if len(fs) != 2:
      raise ValueError(f"features (input 0) must be 2-D, got shape {list(fs)}")
    if len(ls) != 1:
      raise ValueError(f"labels (input 1) must be 1-D, got shape {list(ls)}")
    if fs[0] != ls[0]:
      raise ValueError(f"features (input 0, shape {list(fs)}) and labels (input 1, shape "
                       f"{list(ls)}) must have the same batch size")
    classes = fs[1]
    if classes == 0:
      raise ValueError(f"features (input 0) must have at least one class, got shape "
                       f"{list(fs)}")
    if is_static(labels):
      bad = (labels < 0) | (labels >= classes)
      if bad.any():
        where = int(np.argmax(bad))
        raise ValueError(f"labels (input 1, shape {list(ls)}) hold {labels[where]} at "
                         f"[{where}], outside the valid range [0, {classes}); TF's CPU "
                         "kernel rejects it")
    m = xnp(features, labels)
    dtype = np.dtype(features.dtype)
    if fs[0] == 0:
      return m.zeros((0,), dtype), m.zeros(fs, dtype)
    work = _work_dtype(dtype)
    f = features.astype(work)
    lab = labels[:, None]
    classes_iota = np.arange(classes)[None, :]
    onehot = (lab == classes_iota).astype(work)
    valid = ((lab >= 0) & (lab < classes))
    onehot = m.where(valid, onehot, np.asarray(np.nan, work))
    if is_static(features, labels):
      with np.errstate(all="ignore"):  # overflow, inf - inf: as in TF
        loss, backprop = _xent_forward(np, f, onehot, True)
    else:
      loss, backprop = _sparse_xent(jnp.asarray(f), jnp.asarray(onehot))
    return loss.astype(dtype), backprop.astype(dtype)
  return run


# Top k --------------------------------------------------------------------------------


def _descending_order(x):
  """Indices that sort the last axis in descending order, ties by index (stable)."""
  m = xnp(x)
  dtype = np.dtype(x.dtype)
  if dtype.kind in "iu":
    key = ~x  # order-reversing without overflow, signed and unsigned
  else:
    key = -(x + np.zeros((), dtype))  # -0.0 + 0.0 = 0.0: zeros compare equal
    key = m.where(m.isnan(x), np.asarray(-np.inf, dtype), key)
  if m is np:
    return np.argsort(key, axis=-1, kind="stable")
  return jnp.argsort(key, axis=-1, stable=True)


def _top_k(node, x, k: int):
  xs = _shape(x)
  if len(xs) < 1:
    raise ValueError(f"input (input 0) must be at least 1-D, got shape {list(xs)}")
  if k < 0:
    raise ValueError(f"k must be non-negative, got {k}")
  if xs[-1] < k:
    raise ValueError(f"input (input 0, shape {list(xs)}) must have at least k = {k} "
                     "columns")
  index_type = np.dtype(node.attrs.get("index_type", np.dtype("int32")))
  m = xnp(x)
  if k == 0 or 0 in xs:
    return m.zeros(xs[:-1] + (k,), x.dtype), m.zeros(xs[:-1] + (k,), index_type)
  idx = _descending_order(x)[..., :k]
  values = m.take_along_axis(x, idx, axis=-1)
  return values, idx.astype(index_type)


@lowering("TopK", attrs={"T": REAL, "k": None, "sorted": None})
def top_k(node):
  k = int(node.attrs["k"])
  return lambda x: _top_k(node, x, k)


@lowering("TopKV2", attrs={"T": REAL, "Tk": _INDEX, "index_type": _INDEX, "sorted": None},
          static_inputs=(1,))
def top_k_v2(node):
  def run(x, k):
    if np.ndim(k) != 0:
      raise ValueError(f"k (input 1) must be a scalar, got shape {list(np.shape(k))}")
    return _top_k(node, x, int(k))
  return run


@lowering("ApproxTopK", attrs={"T": FLOAT, "k": None, "reduction_dimension": None,
                               "recall_target": None, "is_max_k": None,
                               "reduction_input_size_override": None,
                               "aggregate_to_topk": None})
def approx_top_k(node):
  k = int(node.attrs["k"])
  dim = int(node.attrs.get("reduction_dimension", -1))
  is_max = bool(node.attrs.get("is_max_k", True))

  def run(x):
    rank = len(_shape(x))
    if not -rank <= dim < rank:
      raise ValueError(f"reduction_dimension {dim} is out of range for input (input 0) of "
                       f"rank {rank}")
    m = xnp(x)
    moved = m.moveaxis(x, dim, -1)
    if not is_max:  # the bottom k: the top k of the order-reversed values
      moved = -moved
    values, idx = _top_k(node, moved, k)
    values = values if is_max else -values
    return m.moveaxis(values, -1, dim), m.moveaxis(idx, -1, dim).astype(np.int32)
  return run


def _in_top_k(predictions, targets, k):
  ps, ts = _shape(predictions), _shape(targets)
  if len(ps) != 2:
    raise ValueError(f"predictions (input 0) must be 2-D, got shape {list(ps)}")
  if len(ts) != 1:
    raise ValueError(f"targets (input 1) must be 1-D, got shape {list(ts)}")
  if ps[0] != ts[0]:
    raise ValueError(f"predictions (input 0, shape {list(ps)}) and targets (input 1, "
                     f"shape {list(ts)}) must have the same batch size")
  if np.ndim(k) != 0:
    raise ValueError(f"k (input 2) must be a scalar, got shape {list(np.shape(k))}")
  m = xnp(predictions, targets, k)
  classes = ps[1]
  if classes == 0:
    return m.zeros(ts, bool)
  valid = (targets >= 0) & (targets < classes)
  safe = m.where(valid, targets, m.zeros_like(targets)).astype(np.int32)
  target_pred = m.take_along_axis(predictions, safe[:, None], axis=-1)
  above = m.sum((predictions > target_pred).astype(np.int64 if m is np else jnp.int32),
                axis=-1)
  finite = m.all(m.isfinite(predictions), axis=-1)
  return valid & finite & (above < k)


@lowering("InTopK", attrs={"T": ("int32", "int64"), "k": None})
def in_top_k(node):
  k = int(node.attrs["k"])
  return lambda predictions, targets: _in_top_k(predictions, targets, np.asarray(k))


@lowering("InTopKV2", attrs={"T": ("int32", "int64")})
def in_top_k_v2(node):
  return _in_top_k


# NthElement ---------------------------------------------------------------------------


@functools.partial(jax.custom_jvp, nondiff_argnums=(2,))
def _nth(x, n, reverse):
  s = jnp.sort(x, axis=-1)
  last = x.shape[-1] - 1
  pos = last - n if reverse else n
  return jnp.take(s, pos, axis=-1)


@_nth.defjvp
def _nth_jvp(reverse, primals, tangents):
  x, n = primals
  t = tangents[0]
  y = _nth(x, n, reverse)
  hit = (x == y[..., None]).astype(x.dtype)
  share = hit / jnp.sum(hit, axis=-1, keepdims=True)
  return y, jnp.sum(share * t, axis=-1)


@lowering("NthElement", attrs={"T": REAL, "reverse": None})
def nth_element(node):
  reverse = bool(node.attrs.get("reverse", False))

  def run(x, n):
    xs = _shape(x)
    if len(xs) < 1:
      raise ValueError(f"input (input 0) must be at least 1-D, got shape {list(xs)}")
    if np.ndim(n) != 0:
      raise ValueError(f"n (input 1) must be a scalar, got shape {list(np.shape(n))}")
    if xs[-1] == 0 or (is_static(n) and not 0 <= int(n) < xs[-1]):
      shown = int(n) if is_static(n) else "n"
      raise ValueError(f"n (input 1) = {shown} must be in [0, {xs[-1]}), the size of the "
                       f"last dimension of input (input 0, shape {list(xs)})")
    if is_static(x, n):
      s = np.sort(x, axis=-1)
      return s[..., xs[-1] - 1 - int(n) if reverse else int(n)]
    if 0 in xs:
      return jnp.zeros(xs[:-1], x.dtype)
    # A call-time n outside [0, size) cannot raise under jit: it is clamped.
    pos = jnp.clip(jnp.asarray(n, jnp.int32), 0, xs[-1] - 1)
    if np.dtype(x.dtype).kind in "iu":
      s = jnp.sort(x, axis=-1)
      return jnp.take(s, xs[-1] - 1 - pos if reverse else pos, axis=-1)
    return _nth(x, pos, reverse)
  return run
