"""CTC: the loss (CTCLoss, CTCLossV2) and decoding (CTCGreedyDecoder, CTCBeamSearchDecoder).

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

CTCBeamSearchDecoder (TF's CPU kernel, blank = the last class) keeps a beam of label
prefixes, each with log P(ending in a blank) and log P(ending in its last label). At each
step the logits are normalized (log-softmax, max subtracted first), every beam entry is
carried on (blank: its old total + the blank's score; label: its old label part, plus
its parent's old total, or the parent's old blank part when the labels repeat, if the
parent is in the beam) and then extended by each non-blank class in label order, visiting
entries from the most to the least probable. A new entry joins when the beam has room or
it beats the least probable entry, which then leaves the beam and is marked inactive (a
later extension can bring it back as a fresh entry). The top paths are the most probable
entries; merge_repeated drops a label equal to the one before it in the path. The
log-sum-exp adds log1p(exp(d)) computed in float32 (for float64 too), as TF's log
probabilities show. The outputs are sparse and value-shaped, as the greedy decoder's.
"""

from __future__ import annotations

import heapq
import itertools

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


def _decoder_inputs(node, inputs, sequence_length):
  """The decoders' inputs as NumPy values, with TF's checks (lengths up to max_time)."""
  what = "the size of the decoded (sparse) outputs"
  x = _concrete(node, inputs, "inputs", what)
  lengths = _concrete(node, sequence_length, "sequence_length", what)
  where = f"{node.op} node {node.path!r}"
  if x.ndim != 3:
    raise ValueError(f"{where}: inputs must be 3-D [max_time, batch, num_classes], got "
                     f"shape {list(x.shape)}")
  max_time, batch, _ = x.shape
  if lengths.shape != (batch,):
    raise ValueError(f"{where}: sequence_length must be a vector of {batch} elements (the "
                     f"batch size), got shape {list(lengths.shape)}")
  if x.size == 0:
    raise ValueError(f"{where}: inputs must not be empty, got shape {list(x.shape)}")
  if (lengths > max_time).any():
    raise ValueError(f"{where}: sequence_length values must be at most {max_time} (the "
                     f"max time), got {lengths.tolist()}")
  return x, lengths


def _sparse_paths(sequences):
  """One decoded path per batch entry as TF's sparse (indices, values, dense shape)."""
  indices = [(b, i) for b, seq in enumerate(sequences) for i in range(len(seq))]
  values = [v for seq in sequences for v in seq]
  longest = max((len(seq) for seq in sequences), default=0)
  return (np.asarray(indices, np.int64).reshape(-1, 2), np.asarray(values, np.int64),
          np.asarray([len(sequences), longest], np.int64))


@lowering("CTCGreedyDecoder", attrs={"T": ("float32", "float64"), "merge_repeated": None,
                                     "blank_index": None})
def ctc_greedy_decoder(node):
  merge = bool(node.attrs.get("merge_repeated", False))
  blank_attr = int(node.attrs.get("blank_index", -1))

  def run(inputs, sequence_length):
    x, lengths = _decoder_inputs(node, inputs, sequence_length)
    max_time, batch, classes = x.shape
    if not -classes <= blank_attr < classes:
      raise ValueError(f"blank_index expected to be between {-classes} and {classes - 1} "
                       f"but was {blank_attr}")
    blank = blank_attr % classes  # negative: counted from the last class
    if lengths.size and lengths.min() < 0:
      raise ValueError(f"{node.op} node {node.path!r}: sequence_length values must be in "
                       f"[0, {max_time}], got {lengths.tolist()}")
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
    return _sparse_paths(sequences) + (log_prob,)
  return run


class _BeamEntry:
  """A label prefix in the beam: its parent, last label and log probabilities (total,
  ending in a blank, ending in its label) before (`old`) and after (`new`) this step."""
  __slots__ = ("parent", "label", "children", "old", "new")

  def __init__(self, parent, label: int, log_zero):
    self.parent, self.label, self.children = parent, label, {}
    self.old = (log_zero,) * 3
    self.new = (log_zero,) * 3

  def labels(self, merge_repeated: bool) -> list[int]:
    out, previous, entry = [], -1, self
    while entry.parent is not None:
      if not merge_repeated or entry.label != previous:
        out.append(entry.label)
      previous = entry.label
      entry = entry.parent
    return out[::-1]


def _beam_search(node, x, beam_width: int, top_paths: int, merge_repeated: bool, batch: int):
  """TF's beam search over x [time, classes] (one batch entry's steps): the top paths'
  labels and log probabilities. Ties between equally probable entries are broken in
  visiting order (TF's follow its heap's internal order)."""
  t = x.dtype.type
  log_zero = t(-np.inf)

  def log_sum_exp(a, b):
    if a == log_zero:
      return b
    if b == log_zero:
      return a
    hi, lo = (a, b) if a > b else (b, a)
    return t(hi + t(np.log1p(np.exp(np.float32(lo - hi)))))

  blank = x.shape[1] - 1
  root = _BeamEntry(None, -1, log_zero)
  root.new = (t(0), t(0), log_zero)
  # The beam: a min-heap of (total, arrival, entry). Totals do not change while an entry
  # is in it, and only the least probable entry ever leaves, so a heap suffices; arrival
  # order breaks ties.
  arrivals = itertools.count()
  leaves = [(root.new[0], next(arrivals), root)]

  def by_probability(heap):
    return [e for _, _, e in sorted(heap, key=lambda item: (-item[0], item[1]))]

  for step, row in enumerate(x):
    scores = row - row.max()
    scores = scores - t(np.log(np.exp(scores).sum(dtype=x.dtype)))
    branches = by_probability(leaves)
    leaves = []
    for b in branches:
      b.old = b.new
    for b in branches:  # carry each entry on to this step
      label_part = b.new[2]
      if b.parent is not None:
        if b.parent.new[0] != log_zero:
          parent = b.parent.old
          label_part = log_sum_exp(label_part, parent[1] if b.label == b.parent.label
                                   else parent[0])
        label_part = t(label_part + scores[b.label])
      blank_part = t(b.old[0] + scores[blank])
      b.new = (log_sum_exp(blank_part, label_part), blank_part, label_part)
      if not np.isfinite(b.new[0]):
        raise ValueError(
            f"{node.op} node {node.path!r}: batch entry {batch}'s beam has a "
            f"{b.new[0]} log probability at time step {step} (NaN or infinite logits, or "
            "a -inf blank logit). TF's beam order then depends on its heap's internals, "
            "which tf2jax does not reproduce; use a large negative number instead of -inf.")
      heapq.heappush(leaves, (b.new[0], next(arrivals), b))

    def joins(total):
      return total > log_zero and (len(leaves) < beam_width or total > leaves[0][0])

    for b in branches:  # extend each entry by every non-blank class, in label order
      if not joins(b.old[0]):  # no extension can beat the least probable entry
        continue
      extended = scores[:blank] + b.old[0]
      if b.label >= 0:  # a repeat of b's label follows a blank
        extended[b.label] = scores[b.label] + b.old[1]
      # The least probable total only grows while extending: only these can join. The
      # children made before are visited too (TF resets those out of the beam).
      floor = leaves[0][0] if len(leaves) == beam_width else log_zero
      hopeful = set(np.flatnonzero(extended > floor).tolist())
      for label in sorted(hopeful.union(b.children)):
        child = b.children.get(label)
        if child is not None and child.new[0] != log_zero:  # in the beam already
          continue
        label_part = extended[label]
        if label in hopeful and joins(label_part):
          if child is None:
            child = b.children[label] = _BeamEntry(b, label, log_zero)
          child.new = (label_part, log_zero, label_part)
          if len(leaves) == beam_width:
            heapq.heappop(leaves)[2].new = (log_zero,) * 3
          heapq.heappush(leaves, (label_part, next(arrivals), child))
        elif child is not None:  # out of the beam: not extended later in this step
          child.old = child.new = (log_zero,) * 3
  if top_paths > len(leaves):
    raise ValueError(f"{node.op} node {node.path!r}: less leaves in the beam search than "
                     f"requested: batch entry {batch} has {len(leaves)} paths, top_paths is "
                     f"{top_paths}")
  best = by_probability(leaves)[:top_paths]
  return [e.labels(merge_repeated) for e in best], [e.new[0] for e in best]


@lowering("CTCBeamSearchDecoder", attrs={"T": ("float32", "float64"), "beam_width": None,
                                         "top_paths": None, "merge_repeated": None})
def ctc_beam_search_decoder(node):
  beam_width = int(node.attrs["beam_width"])
  top_paths = int(node.attrs["top_paths"])
  merge = bool(node.attrs.get("merge_repeated", True))

  def run(inputs, sequence_length):
    x, lengths = _decoder_inputs(node, inputs, sequence_length)
    batch = x.shape[1]
    if top_paths > beam_width:
      raise ValueError(f"{node.op} node {node.path!r}: top_paths={top_paths} asks for more paths than the "
                       f"beam_width={beam_width}")
    paths = [[] for _ in range(top_paths)]
    log_prob = np.zeros((batch, top_paths), x.dtype)
    for b in range(batch):  # a negative length decodes no step, as TF
      labels, scores = _beam_search(node, x[:max(int(lengths[b]), 0), b], beam_width,
                                    top_paths, merge, b)
      for p in range(top_paths):
        paths[p].append(labels[p])
      log_prob[b] = scores
    indices, values, shapes = zip(*(_sparse_paths(rows) for rows in paths))
    return list(indices) + list(values) + list(shapes) + [log_prob]
  return run
