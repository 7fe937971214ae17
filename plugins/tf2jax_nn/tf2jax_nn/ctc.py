"""CTC: the loss (CTCLoss, CTCLossV2) and greedy decoding (CTCGreedyDecoder).

CTCLoss (TF's CPU kernel, blank = the last class): per batch entry the labels are the
sparse values of that row, in order; y is softmax(inputs) over classes, and the loss is
-log p(labels | y) summed over alignments by the alpha-beta recursion in log space (a
repeated label needs a blank between its copies unless ctc_merge_repeated is off, and
then no state but a blank repeats). The gradient output is y minus the posterior of each
class, 0 from the sequence length on, and y where p is 0. CTCLossV2 (cuDNN's; blank 0,
log-probabilities given) is the same recursion on dense labels.

TF's CPU kernel: per batch entry, the arg-max class of each time step below its
sequence length (the first of equal maxima), blanks dropped and, with merge_repeated,
repeats of the previous step's class merged; the log probability is the sum of the
negated maxima, accumulated in T step by step. The outputs are sparse and their size
depends on the values: the op runs when the converted function is called without jit
(or on graph constants) and raises a ConversionError under jit.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from tf2jax_core import lowering
from tf2jax_nn.nms import _concrete


def _sparse_to_dense_labels(indices, values, batch: int):
  """Row b's labels (the values whose index is in row b, in order), padded to N = the
  number of values, and each row's length. Indices are sorted by row (TF checks it)."""
  rows = indices[:, 0].astype(jnp.int32)
  first = jnp.searchsorted(rows, rows, side="left")
  position = jnp.arange(rows.shape[0], dtype=jnp.int32) - first.astype(jnp.int32)
  n = max(int(values.shape[0]), 1)
  dense = jnp.zeros((batch, n), jnp.int32).at[rows, position].set(
      values.astype(jnp.int32), mode="drop")
  lengths = jnp.zeros((batch,), jnp.int32).at[rows].add(1, mode="drop")
  return dense, lengths


def _collapse_repeats(labels, lengths):
  """Consecutive equal labels of each row merged into one."""
  n = labels.shape[1]
  i = jnp.arange(n)
  keep = (i < lengths[:, None]) & jnp.concatenate(
      [jnp.ones_like(labels[:, :1], bool), labels[:, 1:] != labels[:, :-1]], axis=1)
  target = jnp.where(keep, jnp.cumsum(keep, axis=1) - 1, n)
  rows = jnp.broadcast_to(jnp.arange(labels.shape[0])[:, None], labels.shape)
  out = jnp.zeros_like(labels).at[rows, target].set(labels, mode="drop")
  return out, keep.sum(axis=1).astype(lengths.dtype)


def _ctc(log_y, labels, lengths, seq_len, blank: int, merge_repeated: bool):
  """(log p, posterior per class) of each batch entry; log_y is [T, B, C]."""
  max_time, batch, classes = log_y.shape
  n = labels.shape[1]
  states = 2 * n + 1
  s = jnp.arange(states)
  ext = jnp.where(s % 2 == 0, blank, labels[:, jnp.minimum(s // 2, n - 1)])  # [B, S]
  used = s[None, :] < (2 * lengths[:, None] + 1)
  neg_inf = jnp.asarray(-np.inf, log_y.dtype)
  stay = jnp.broadcast_to(merge_repeated | (ext == blank), ext.shape)
  # Skipping a blank: between different labels, and (without merging) between repeats.
  skip = (s[None, :] > 1) & ((ext != jnp.roll(ext, 2, axis=1))
                             | ((not merge_repeated) & (s[None, :] % 2 == 1)))
  emit = jnp.take_along_axis(log_y, jnp.broadcast_to(ext[None], (max_time,) + ext.shape),
                             axis=2)  # [T, B, S]
  emit = jnp.where(used[None], emit, neg_inf)

  def shift(v, k):
    return jnp.concatenate([jnp.full(v.shape[:-1] + (k,), neg_inf, v.dtype), v[..., :-k]],
                           axis=-1)

  alpha0 = jnp.where(s[None, :] < 2, emit[0], neg_inf)

  def forward(prev, t):
    incoming = jnp.logaddexp(jnp.where(stay, prev, neg_inf), shift(prev, 1))
    incoming = jnp.logaddexp(incoming, jnp.where(skip, shift(prev, 2), neg_inf))
    return emit[t] + incoming, emit[t] + incoming

  _, alphas = jax.lax.scan(forward, alpha0, jnp.arange(1, max_time))
  alphas = jnp.concatenate([alpha0[None], alphas], axis=0)  # [T, B, S]

  last = 2 * lengths[:, None] + 1
  beta_end = jnp.where((s[None, :] == last - 1) | (s[None, :] == last - 2), 0.0,
                       neg_inf).astype(log_y.dtype)
  skip_next = jnp.concatenate([skip[:, 2:], jnp.zeros_like(skip[:, :2])], axis=1)

  def unshift(v, k):
    return jnp.concatenate([v[..., k:], jnp.full(v.shape[:-1] + (k,), neg_inf, v.dtype)],
                           axis=-1)

  def backward(nxt, t):
    # beta_t(s) = sum over s' reachable from s of y_{t+1}(s') beta_{t+1}(s').
    w = emit[t + 1] + nxt
    beta = jnp.logaddexp(jnp.where(stay, w, neg_inf), unshift(w, 1))
    beta = jnp.logaddexp(beta, jnp.where(skip_next, unshift(w, 2), neg_inf))
    beta = jnp.where((t >= seq_len - 1)[:, None], beta_end, beta)
    return beta, beta

  _, betas = jax.lax.scan(backward, beta_end, jnp.arange(max_time - 1), reverse=True)
  betas = jnp.concatenate([betas, beta_end[None]], axis=0)  # [T, B, S]
  log_p = jax.nn.logsumexp(alphas[0] + betas[0], axis=1)
  log_p = jnp.where(jnp.isnan(log_p), neg_inf, log_p)
  post = jnp.exp(alphas + betas - log_p[None, :, None])
  post = jnp.where(jnp.isfinite(log_p)[None, :, None] & used[None], post, 0)
  by_class = jnp.einsum("tbs,bsc->tbc", post, jax.nn.one_hot(ext, classes, dtype=post.dtype))
  return log_p, by_class


def _check_ctc_values(node, indices, values, seq_len, classes: int, max_time: int,
                      batch: int, ignore_longer: bool, blank: int):
  """TF's CPU kernel's checks, on the values known (not traced). Labels equal to the blank
  or above are not checked by TF (undefined behaviour there, crashes seen): refused."""
  low, high = (1, classes) if blank == 0 else (0, classes - 1)
  where = f"{node.op} node {node.path!r}"
  if seq_len is not None:
    if (seq_len < 0).any() or (seq_len > max_time).any():
      raise ValueError(f"{where}: sequence_length values must be in [0, {max_time}] (the "
                       f"max time), got {seq_len.tolist()}")
  if indices is None:
    return
  rows = indices[:, 0]
  if indices.size and ((rows < 0).any() or (rows >= batch).any()):
    raise ValueError(f"{where}: labels_indices rows must be in [0, {batch}), got "
                     f"{sorted(set(rows.tolist()))}")
  order = [tuple(r) for r in indices.tolist()]
  if any(a >= b for a, b in zip(order, order[1:])):
    raise ValueError(f"{where}: labels_indices must be sorted and unique (row-major), as "
                     "TF requires")
  counts = np.bincount(rows, minlength=batch) if indices.size else np.zeros(batch, int)
  if (counts == 0).any():
    raise ValueError(f"{where}: every batch entry needs at least one label; rows "
                     f"{np.flatnonzero(counts == 0).tolist()} have none")
  if values is None:
    return
  if (values < low).any() or (values >= high).any():
    raise ValueError(f"{where}: labels must be in [{low}, {high}) (class {blank} is the "
                     f"blank), got {sorted(set(values.tolist()))}")
  if seq_len is None or ignore_longer:
    return
  short = np.flatnonzero(counts > seq_len)  # before collapsing repeats, as TF
  if short.size:
    b = int(short[0])
    raise ValueError(f"{where}: not enough time for batch entry {b}'s labels (required: "
                     f"{int(counts[b])}, available: {int(seq_len[b])}); set "
                     "ignore_longer_outputs_than_inputs to give such entries a loss of 0")


def _ctc_loss_and_grad(log_y, y, labels, lengths, seq_len, blank, merge_repeated,
                       ignore_longer, collapse):
  max_time = log_y.shape[0]
  given_lengths = lengths  # TF's "not enough time" test counts repeats
  if collapse:
    labels, lengths = _collapse_repeats(labels, lengths)
  log_p, by_class = _ctc(log_y, labels, lengths, seq_len, blank, merge_repeated)
  grad = y - by_class
  live = jnp.arange(max_time)[:, None] < seq_len[None, :]
  grad = jnp.where(live[..., None], grad, 0)
  loss = -log_p
  if ignore_longer:
    skip = given_lengths > seq_len
    loss = jnp.where(skip, 0, loss)
    grad = jnp.where(skip[None, :, None], 0, grad)
  return loss.astype(y.dtype), grad.astype(y.dtype)


def _with_gradient_output(fn):
  """fn(x, *rest) -> (loss, grad) whose VJP w.r.t. x is g_loss * grad, as TF's
  registered gradient (the gradient output itself gets none)."""
  @jax.custom_vjp
  def f(x, *rest):
    return fn(x, *rest)

  def fwd(x, *rest):
    loss, grad = fn(x, *rest)
    return (loss, grad), (grad, rest)

  def bwd(res, cts):
    grad, rest = res
    return (cts[0][None, :, None] * grad,) + tuple(None for _ in rest)

  f.defvjp(fwd, bwd)
  return f


_CTC_ATTRS = {"preprocess_collapse_repeated": None, "ctc_merge_repeated": None,
              "ignore_longer_outputs_than_inputs": None}


@lowering("CTCLoss", attrs={"T": ("float32", "float64"), **_CTC_ATTRS})
def ctc_loss(node):
  return _ctc_loss_lowering(node, blank_first=False)


@lowering("CTCLossV2", attrs=_CTC_ATTRS)
def ctc_loss_v2(node):
  return _ctc_loss_lowering(node, blank_first=True)


def _ctc_loss_lowering(node, blank_first: bool):
  collapse = bool(node.attrs.get("preprocess_collapse_repeated", False))
  merge = bool(node.attrs.get("ctc_merge_repeated", True))
  ignore_longer = bool(node.attrs.get("ignore_longer_outputs_than_inputs", False))

  blank_of = lambda classes: 0 if blank_first else classes - 1

  def body(x, indices, values, seq_len):
    _, batch, classes = x.shape
    labels, lengths = _sparse_to_dense_labels(indices, values, batch)
    y = jax.nn.softmax(x, axis=2)
    return _ctc_loss_and_grad(jnp.log(y), y, labels, lengths, seq_len.astype(jnp.int32),
                              blank_of(classes), merge, ignore_longer, collapse)
  loss_and_grad = _with_gradient_output(body)

  def run(inputs, labels_indices, labels_values, sequence_length):
    if np.ndim(inputs) != 3:
      raise ValueError(f"{node.op} node {node.path!r}: inputs must be 3-D [max_time, "
                       f"batch, num_classes], got shape {list(np.shape(inputs))}")
    max_time, batch, classes = np.shape(inputs)
    if max_time == 0 or batch == 0:
      raise ValueError(f"{node.op} node {node.path!r}: max time and batch size must not be "
                       f"0, got inputs of shape {list(np.shape(inputs))}")
    if np.shape(sequence_length) != (batch,):
      raise ValueError(f"{node.op} node {node.path!r}: sequence_length must be a vector of "
                       f"{batch} (the batch size) elements, got shape "
                       f"{list(np.shape(sequence_length))}")
    known = lambda v: None if isinstance(v, jax.core.Tracer) else np.asarray(v)
    _check_ctc_values(node, known(labels_indices), known(labels_values),
                      known(sequence_length), classes, max_time, batch, ignore_longer,
                      blank_of(classes))
    return loss_and_grad(jnp.asarray(inputs), jnp.asarray(labels_indices),
                         jnp.asarray(labels_values), jnp.asarray(sequence_length))
  return run


@lowering("CTCGreedyDecoder", attrs={"T": ("float32", "float64"), "merge_repeated": None,
                                     "blank_index": None})
def ctc_greedy_decoder(node):
  merge = bool(node.attrs.get("merge_repeated", False))
  blank_attr = int(node.attrs.get("blank_index", -1))

  def run(inputs, sequence_length):
    what = "the size of the decoded (sparse) output"
    x = _concrete(node, inputs, "inputs", what)
    lengths = _concrete(node, sequence_length, "sequence_length", what)
    if x.ndim != 3:
      raise ValueError(f"inputs must be 3-D, got shape {list(x.shape)}")
    max_time, batch, classes = x.shape
    if lengths.shape != (batch,):
      raise ValueError(f"sequence_length must be a vector of {batch} elements, got shape "
                       f"{list(lengths.shape)}")
    if x.size == 0:
      raise ValueError(f"inputs must not be empty, got shape {list(x.shape)}")
    if not -classes <= blank_attr < classes:
      raise ValueError(f"blank_index expected to be between {-classes} and {classes - 1} "
                       f"but was {blank_attr}")
    blank = blank_attr % classes  # negative: counted from the last class
    if lengths.size and (lengths.max() > max_time or lengths.min() < 0):
      raise ValueError(f"sequence_length values must be in [0, {max_time}]")
    t = x.dtype.type
    log_prob = np.zeros((batch, 1), x.dtype)
    sequences = []
    for b in range(batch):
      seq, prev, total = [], -1, t(0)
      for step in range(int(lengths[b])):
        row = x[step, b]
        best = 0
        for c in range(1, classes):  # the first maximum; NaN never wins after class 0
          if row[c] > row[best]:
            best = c
        total = t(total + -row[best])
        if best != blank and not (merge and best == prev):
          seq.append(best)
        prev = best
      log_prob[b, 0] = total
      sequences.append(seq)
    indices = [(b, i) for b, seq in enumerate(sequences) for i in range(len(seq))]
    values = [v for seq in sequences for v in seq]
    longest = max((len(s) for s in sequences), default=0)
    return (np.asarray(indices, np.int64).reshape(-1, 2), np.asarray(values, np.int64),
            np.asarray([batch, longest], np.int64), log_prob)
  return run
