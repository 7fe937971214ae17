"""Keras recurrent layers (While + TensorLists), from Keras 3 and from tf_keras (Keras 2):
values and gradients against TF."""

import jax
import jax.numpy as jnp
import keras
import numpy as np
import pytest
import tensorflow as tf
import tf_keras

import tf2jax


def build(kind, library=keras):
  """A small recurrent model from Keras 3 or tf_keras (they share these layer names)."""
  library.utils.set_random_seed(0)
  layers = {
      "lstm_gru": [library.layers.LSTM(4, return_sequences=True), library.layers.GRU(3)],
      "simple_rnn": [library.layers.SimpleRNN(5)],
      "bidirectional": [library.layers.Bidirectional(library.layers.LSTM(3))],
      "masked": [library.layers.Masking(0.0), library.layers.LSTM(4)],
  }[kind]
  return library.Sequential([library.Input((6, 3))] + layers + [library.layers.Dense(2)])


@pytest.mark.parametrize("library", ["keras3", "tf_keras"])
@pytest.mark.parametrize("kind", ["lstm_gru", "simple_rnn", "bidirectional", "masked"])
def test_keras_rnn_matches_tf_for_several_batch_sizes(kind, library):
  model = build(kind, {"keras3": keras, "tf_keras": tf_keras}[library])

  @tf.function
  def forward(x):
    return model(x)

  try:
    fn, params = tf2jax.convert(forward, tf.TensorSpec((None, 6, 3), tf.float32))
  except tf2jax.UnsupportedOpsError as e:
    pytest.fail(f"{kind}: {e}")
  jitted = jax.jit(fn)
  rng = np.random.default_rng(1)
  for batch in (1, 4):
    x = rng.normal(size=(batch, 6, 3)).astype(np.float32)
    if kind == "masked":
      x[:, 4:] = 0.0  # padded steps
    np.testing.assert_allclose(jitted(params, x)[0], forward(x).numpy(), rtol=1e-5, atol=1e-6)

  with tf.GradientTape() as tape:
    loss = tf.reduce_sum(tf.square(forward(x)))
  tf_grads = tape.gradient(loss, model.trainable_variables)
  grads = jax.grad(lambda p: jnp.sum(jnp.square(fn(p, x)[0])))(params)
  for var, g in zip(model.trainable_variables, tf_grads):
    name = (var.value if library == "keras3" else var).name[:-2]
    np.testing.assert_allclose(grads[name], g.numpy(), rtol=1e-4, atol=1e-6)


def test_greedy_decoding_until_end_token():
  vocab, hidden, end_token, max_len = 7, 5, 0, 12
  rng = np.random.default_rng(3)
  embed = tf.constant(rng.normal(size=(vocab, hidden)).astype(np.float32))
  w = tf.constant(rng.normal(size=(hidden, hidden)).astype(np.float32) * 0.8)
  out_w = tf.constant(rng.normal(size=(hidden, vocab)).astype(np.float32))

  @tf.function
  def decode(state):
    tokens = tf.TensorArray(tf.int32, size=max_len, element_shape=[])

    def cond(step, state, token, tokens):
      return tf.logical_and(step < max_len, tf.not_equal(token, end_token))

    def body(step, state, token, tokens):
      state = tf.tanh(tf.matmul(state, w) + tf.gather(embed, token)[None])
      token = tf.argmax(tf.matmul(state, out_w)[0], output_type=tf.int32)
      return step + 1, state, token, tokens.write(step, token)

    step, _, _, tokens = tf.while_loop(cond, body, (0, state, tf.constant(1), tokens))
    return tokens.stack(), step

  fn = jax.jit(tf2jax.convert_functional(decode, tf.TensorSpec((1, hidden), tf.float32)))
  lengths = set()
  for seed in range(6):
    state = np.random.default_rng(seed).normal(size=(1, hidden)).astype(np.float32)
    tokens, steps = fn(state)
    tf_tokens, tf_steps = decode(state)
    np.testing.assert_array_equal(tokens, tf_tokens.numpy())
    assert int(steps) == int(tf_steps)
    lengths.add(int(steps))
  assert len(lengths) > 1, "the trip count must depend on the data"
