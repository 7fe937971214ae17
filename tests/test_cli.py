"""The `tf2jax check` main job, on the built-in example and on a user SavedModel."""

import numpy as np
import tensorflow as tf

from tf2jax_core import cli


def test_check_builtin_example(capsys):
  assert cli.main(["check", "--runs", "2"]) == 0
  out = capsys.readouterr().out
  assert "OK: converted outputs match TensorFlow" in out
  assert "output probabilities: float32[8, 10]" in out
  assert "speed ratio" in out


def test_check_user_saved_model(tmp_path, capsys):
  module = tf.Module()
  module.w = tf.Variable(np.arange(6, dtype=np.float32).reshape(3, 2))
  module.f = tf.function(lambda x: tf.nn.softmax(tf.matmul(x, module.w)),
                         input_signature=[tf.TensorSpec((None, 3), tf.float32)])
  tf.saved_model.save(module, str(tmp_path), signatures={"scores": module.f})
  assert cli.main(["check", str(tmp_path), "--batch", "3", "--runs", "2"]) == 0
  out = capsys.readouterr().out
  assert "signature: scores" in out and "float32[3, 2]" in out


def test_check_bad_path(tmp_path, capsys):
  assert cli.main(["check", str(tmp_path)]) == 2
  assert "not a SavedModel directory" in capsys.readouterr().err
  module = tf.Module()
  module.f = tf.function(lambda x: x, input_signature=[tf.TensorSpec((2,), tf.float32)])
  tf.saved_model.save(module, str(tmp_path / "m"), signatures={"f": module.f})
  assert cli.main(["check", str(tmp_path / "m"), "--signature", "nope"]) == 2
  assert "no signature 'nope'" in capsys.readouterr().err


def test_plugins_command(capsys):
  assert cli.main(["plugins"]) == 0
  out = capsys.readouterr().out
  for name in ("tf2jax 0.4.0", "tf2jax-nn 0.1.0", "tf2jax-random 0.1.0",
               "tf2jax-controlflow 0.1.0", "tf2jax-xla 0.1.0"):
    assert name in out
