"""XlaSort and XlaKeyValueSort: ascending sorts along the last dimension.

XLA's comparator for them is a total order on floats: -0.0 before 0.0, NaNs (by bit
pattern) after +inf and negative NaNs before -inf. jax.lax.sort treats -0.0 and 0.0 as
equal, so floats are sorted by an integer key with XLA's total order (their bits, with
the magnitude bits of negative numbers flipped).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from tf2jax_core import lowering
from tf2jax_core.errors import ConversionError
from tf2jax_core.lowering import is_static

_INT_OF_SIZE = {1: jnp.int8, 2: jnp.int16, 4: jnp.int32, 8: jnp.int64}


def _key(x):
  x = jnp.asarray(x)
  if not jnp.issubdtype(x.dtype, jnp.floating):
    return x
  itype = _INT_OF_SIZE[x.dtype.itemsize]
  bits = jax.lax.bitcast_convert_type(x, itype)
  flip = jnp.asarray(np.iinfo(itype).max, itype)
  return jnp.where(bits < 0, bits ^ flip, bits)


def _sort(node, operands):
  """Sorts `operands` along the last dim by the first one; returns them all."""
  first = jnp.asarray(operands[0])
  if first.ndim == 0 and len(operands) > 1:  # TF's XlaKeyValueSort returns scalars as is
    return [jnp.asarray(o) for o in operands]
  if first.ndim == 0:  # TF's XlaSort refuses them
    raise ValueError(f"{node.op} node {node.path!r}: input {node.inputs[0][0]!r} is a "
                     "scalar (shape []); XLA sorts along the last dimension, which it "
                     "lacks.")
  out = jax.lax.sort((_key(first),) + tuple(jnp.asarray(o) for o in operands),
                     dimension=first.ndim - 1, is_stable=True, num_keys=1)
  return list(out[1:])


@lowering("XlaSort", attrs={"T": None})
def sort(node):
  return lambda x: _sort(node, [x])[0]


@lowering("XlaKeyValueSort", attrs={"K": None, "V": None})
def key_value_sort(node):
  def run(keys, values):
    if np.shape(keys) != np.shape(values):
      raise ValueError(f"{node.op} node {node.path!r}: keys (shape {list(np.shape(keys))}) "
                       f"and values (shape {list(np.shape(values))}) must have the same "
                       "shape.")
    return _sort(node, [keys, values])
  return run


# XlaVariadicSort: the comparator is a library function of 2N scalars (lhs_0, rhs_0,
# lhs_1, rhs_1, ...). jax.lax.sort takes no comparator, so tf2jax recognizes the
# comparators that order by one operand: Less/Greater of that operand's lhs and rhs
# (through Identity nodes), i.e. an ascending or descending sort by it.

_PASS_THROUGH = ("Identity", "Snapshot", "StopGradient")


def _comparator_order(node):
  """(operand index, descending) of the node's comparator, or raises."""
  ref = node.attrs["comparator"]
  where = f"{node.op} node {node.path!r}"
  unsupported = ConversionError(
      f"{where}: attr 'comparator' (function {ref.name!r}) is not a comparator tf2jax "
      "recognizes: it supports Less or Greater of one operand's lhs and rhs arguments "
      "(an ascending or descending sort by that operand).")
  compiled = node.function(ref.name)
  if len(compiled.outputs) != 1:
    raise unsupported
  steps = compiled.steps

  def follow(index, port):
    while steps[index].node.op in _PASS_THROUGH:
      index, port = steps[index].args[0]
    return index, port

  index, _ = follow(*compiled.outputs[0])
  step = steps[index]
  if step.node.op not in ("Less", "Greater") or len(step.args) != 2:
    raise unsupported
  args = []
  for a in step.args:
    i, _ = follow(*a)
    if i not in compiled.input_steps:
      raise unsupported
    args.append(compiled.input_steps.index(i))
  a, b = args
  if a // 2 != b // 2 or a == b:
    raise unsupported
  descending = (a > b) == (step.node.op == "Less")
  return a // 2, descending


def _descending_key(x):
  x = jnp.asarray(x)
  if jnp.issubdtype(x.dtype, jnp.floating):
    return -x
  return ~x  # reverses the order of signed and unsigned ints, and of bools


@lowering("XlaVariadicSort", attrs={"T": None, "comparator": None, "is_stable": None})
def variadic_sort(node):
  operand, descending = _comparator_order(node)
  where = f"{node.op} node {node.path!r}"

  def run(*args):
    *xs, dimension = args
    if not is_static(dimension):
      raise ConversionError(f"{where}: input 'dimension' must be known at conversion time.")
    shapes = [tuple(np.shape(x)) for x in xs]
    if len(set(shapes)) != 1:
      raise ConversionError(f"{where}: the inputs must have one shape, got {shapes}.")
    rank = len(shapes[0])
    dim = int(np.reshape(dimension, -1)[0]) if np.size(dimension) == 1 else None
    if dim is None or not 0 <= dim < rank:
      raise ConversionError(f"{where}: input 'dimension' {np.asarray(dimension).tolist()} is "
                            f"not a dimension of the inputs (shape {list(shapes[0])}).")
    key = jnp.asarray(xs[operand])
    if descending:
      key = _descending_key(key)
    out = jax.lax.sort((key,) + tuple(jnp.asarray(x) for x in xs), dimension=dim,
                       is_stable=True, num_keys=1)
    return list(out[1:])
  return run
