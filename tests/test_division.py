"""Integer division and modulo by zero, against TF: an error when a result element
divides by 0, none when the broadcast result is empty."""

import numpy as np
import pytest
import tensorflow as tf

import tf2jax

OPS = ["Div", "FloorDiv", "FloorMod", "TruncateDiv", "TruncateMod", "Mod"]
EMPTY = [(np.zeros((0,), np.int32), np.int32(0)), (np.int32(5), np.zeros((0,), np.int32)),
         (np.zeros((2, 0), np.int32), np.array([[0], [1]], np.int32))]


def _fn(op):
  return tf.function(lambda x, y: getattr(tf.raw_ops, op)(x=x, y=y))


@pytest.mark.parametrize("op", OPS)
@pytest.mark.parametrize("x,y", EMPTY)
def test_empty_result_does_not_divide(op, x, y):
  want = _fn(op)(x, y).numpy()
  got = np.asarray(tf2jax.convert_functional(_fn(op), x, y)(x, y))
  assert got.shape == want.shape and got.dtype == want.dtype


@pytest.mark.parametrize("op", OPS)
def test_zero_divisor_raises(op):
  x, y = np.array([7, -7], np.int32), np.int32(0)
  with pytest.raises(tf.errors.OpError):  # TruncateDiv/Mod: an InternalError
    _fn(op)(x, y)
  with pytest.raises(Exception, match="Integer division by zero"):
    tf2jax.convert_functional(_fn(op), x, y)(x, y)
