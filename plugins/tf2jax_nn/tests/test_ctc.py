"""CTC loss the way models use it: `tf.nn.ctc_loss` with sparse labels (the CTCLoss op),
its labels passed as function inputs, so that under jit the label indices are traced
(the conformance spec keeps them constant), and its gradient through `tf.GradientTape`.
"""

from __future__ import annotations

import jax
import numpy as np
import pytest
import tensorflow as tf

import tf2jax

BATCH, TIME, CLASSES = 4, 12, 6
N_LABELS = 10  # sparse label entries, split over the batch


def _labels(rng):
  lengths = rng.multinomial(N_LABELS - BATCH, [1 / BATCH] * BATCH) + 1  # >= 1 per row
  indices = np.asarray([(b, i) for b in range(BATCH) for i in range(lengths[b])], np.int64)
  values = rng.integers(0, CLASSES - 1, N_LABELS).astype(np.int32)
  values[1] = values[0]  # a repeat
  return indices, values


def _loss_fn(merge_repeated):
  def loss(logits, indices, values, logit_length):
    labels = tf.SparseTensor(indices, values, [BATCH, TIME])
    per_example = tf.compat.v1.nn.ctc_loss(labels, logits, logit_length, time_major=False,
                                           ctc_merge_repeated=merge_repeated)
    return tf.reduce_sum(per_example * tf.range(1.0, BATCH + 1.0))
  return loss


@pytest.mark.parametrize("merge_repeated", [True, False])
def test_ctc_loss_traced_labels_jit_and_grad(merge_repeated):
  rng = np.random.default_rng(3)
  logits = rng.normal(size=(BATCH, TIME, CLASSES)).astype(np.float32) * 2
  indices, values = _labels(rng)
  logit_length = np.asarray([TIME, TIME - 1, 7, TIME], np.int32)
  loss = _loss_fn(merge_repeated)

  args = [tf.constant(logits), tf.constant(indices), tf.constant(values),
          tf.constant(logit_length)]
  with tf.GradientTape() as tape:
    tape.watch(args[0])
    want = loss(*args)
  want_grad = tape.gradient(want, args[0]).numpy()
  want = want.numpy()

  tf_fn = tf.function(loss, autograph=False)
  with jax.enable_x64(True):  # the sparse indices are int64
    jax_fn = tf2jax.convert_functional(tf_fn, logits, indices, values, logit_length)
    assert "CTCLoss" in {n.op for n in tf_fn.get_concrete_function(
        *args).graph.as_graph_def().node}
    jitted = jax.jit(jax_fn)
    np.testing.assert_allclose(jax_fn(logits, indices, values, logit_length), want,
                               rtol=2e-6)
    np.testing.assert_allclose(jitted(logits, indices, values, logit_length), want,
                               rtol=2e-6)
    grad = jax.jit(jax.grad(jax_fn))(logits, indices, values, logit_length)
    # y - posterior cancels: an absolute part of a few float32 ulps of the largest entry.
    np.testing.assert_allclose(grad, want_grad, rtol=1e-5,
                               atol=4e-6 * np.abs(want_grad).max())
    # Other labels through the same compiled function: the indices are not baked in.
    indices2, values2 = _labels(np.random.default_rng(4))
    want2 = loss(tf.constant(logits), tf.constant(indices2), tf.constant(values2),
                 tf.constant(logit_length)).numpy()
    np.testing.assert_allclose(jitted(logits, indices2, values2, logit_length), want2,
                               rtol=2e-6)


def test_ctc_loss_errors_name_the_problem():
  x = np.zeros((3, 1, 4), np.float32)

  @tf.function(autograph=False)
  def fn(x, indices, values, seq_len):
    return tf.raw_ops.CTCLoss(inputs=x, labels_indices=indices, labels_values=values,
                              sequence_length=seq_len)

  def check(indices, values, seq_len, match=None):
    args = (x, np.asarray(indices, np.int64), np.asarray(values, np.int32),
            np.asarray(seq_len, np.int32))
    jax_fn = tf2jax.convert_functional(fn, *args)
    if match is None:
      np.testing.assert_allclose(jax_fn(*args)[0], fn(*args)[0].numpy(), rtol=1e-6)
    else:
      with pytest.raises(tf.errors.InvalidArgumentError):
        fn(*args)
      with pytest.raises(ValueError, match=match):
        jax_fn(*args)

  with jax.enable_x64(True):
    check([[0, 0]], [1], [3])
    check([[0, 0], [0, 1]], [1, 2], [1], "not enough time for batch entry 0's labels")
    check([[0, 0]], [1], [4], r"sequence_length values must be in \[0, 3\]")
    check([[0, 1], [0, 0]], [1, 2], [3], "must be sorted")
    check(np.zeros((0, 2)), [], [3], "needs at least one label")
  # Labels equal to the blank: TF does not check them (its kernel reads out of bounds).
  with jax.enable_x64(True):
    args = (x, np.asarray([[0, 0]], np.int64), np.asarray([3], np.int32),
            np.asarray([3], np.int32))
    with pytest.raises(ValueError, match=r"labels must be in \[0, 3\) \(class 3 is the"):
      tf2jax.convert_functional(fn, *args)(*args)


def test_ctc_beam_search_decoder_as_models_use_it():
  """`tf.nn.ctc_beam_search_decoder` (beam 100, 3 paths) on a batch of 4 with lengths
  set per entry: the decoded sparse tensors and log probabilities match TF eagerly; under
  jit the op names itself (its outputs' sizes depend on the values); NaN logits raise."""
  rng = np.random.default_rng(7)
  logits = (rng.normal(size=(TIME, BATCH, CLASSES)) * 3).astype(np.float32)
  lengths = np.asarray([TIME, 7, 1, 4], np.int32)

  @tf.function(autograph=False)
  def decode(logits, lengths):
    paths, log_prob = tf.nn.ctc_beam_search_decoder(logits, lengths, beam_width=100,
                                                    top_paths=3)
    return [tf.sparse.to_dense(p, default_value=-1) for p in paths], log_prob

  want_paths, want_log_prob = decode(logits, lengths)
  with jax.enable_x64(True):
    jax_fn = tf2jax.convert_functional(decode, logits, lengths)
    got_paths, got_log_prob = jax_fn(logits, lengths)
    for got, want in zip(got_paths, want_paths):
      np.testing.assert_array_equal(got, want.numpy())
    np.testing.assert_allclose(got_log_prob, want_log_prob.numpy(), rtol=1e-5, atol=1e-5)
    assert len({tuple(np.asarray(p[0])) for p in got_paths}) == 3  # three distinct paths
    with pytest.raises(tf2jax.ConversionError, match="CTCBeamSearchDecoder node"):
      jax.jit(jax_fn)(logits, lengths)
    nan_logits = logits.copy()
    nan_logits[2, 1, 0] = np.nan
    with pytest.raises(ValueError, match="batch entry 1's beam has a nan log probability"):
      jax_fn(nan_logits, lengths)
