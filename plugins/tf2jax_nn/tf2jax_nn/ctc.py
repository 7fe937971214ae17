"""CTC decoding: CTCGreedyDecoder.

TF's CPU kernel: per batch entry, the arg-max class of each time step below its
sequence length (the first of equal maxima), blanks dropped and, with merge_repeated,
repeats of the previous step's class merged; the log probability is the sum of the
negated maxima, accumulated in T step by step. The outputs are sparse and their size
depends on the values: the op runs when the converted function is called without jit
(or on graph constants) and raises a ConversionError under jit.
"""

from __future__ import annotations

import numpy as np

from tf2jax_core import lowering
from tf2jax_nn.nms import _concrete


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
