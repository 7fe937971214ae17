"""TF2 functional control flow: If / StatelessIf, Case / StatelessCase, While /
StatelessWhile.

Static predicates, branch indices and trip counts are decided at trace time, so the
result stays static and differentiable. Traced ones become `lax.cond`, `lax.switch` and
`lax.fori_loop` (when the trip count can be computed from static loop variables, which
keeps reverse-mode gradients) or `lax.while_loop`. Params are threaded through every
branch and loop body, so assignments inside them reach `new_params`; resource handles
are closed over.
"""

from __future__ import annotations

import dataclasses
from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from tf2jax_core import ConversionError, is_static, lowering
from tf2jax_controlflow.tensor_lists import TensorList

# Python-unrolled iterations allowed when computing a static trip count.
MAX_SIMULATED_ITERATIONS = 100_000

_IF_ATTRS = {"Tcond": None, "Tin": None, "Tout": None, "then_branch": None,
             "else_branch": None, "output_shapes": None}
_CASE_ATTRS = {"Tin": None, "Tout": None, "branches": None, "output_shapes": None}
_WHILE_ATTRS = {"T": None, "cond": None, "body": None, "output_shapes": None,
                "parallel_iterations": None}


def _truth(value):
  """TF's truth value of a predicate: a scalar is true when non-zero, any other tensor
  when it is not empty (known from its static shape)."""
  if np.ndim(value) != 0:
    return np.bool_(np.size(value) > 0)
  return value if value.dtype == np.bool_ else value != 0


def _is_array(value) -> bool:
  """Values that travel through lax control flow (arrays and TensorLists)."""
  return isinstance(value, (np.ndarray, np.generic, jax.Array, TensorList))


class _Threaded:
  """Runs library functions inside lax control flow with params threaded through.

  Only arrays travel as operands; other values (variable handles) are closed over.
  """

  def __init__(self, ctx, args: Sequence):
    self.ctx = ctx
    self.args = list(args)
    self.arrays = [i for i, a in enumerate(args) if _is_array(a)]

  def operands(self, args: Sequence | None = None):
    args = self.args if args is None else args
    return dict(self.ctx.params), [args[i] for i in self.arrays]

  def full(self, arrays) -> list:
    full = list(self.args)
    for i, x in zip(self.arrays, arrays):
      full[i] = x
    return full

  def call(self, function, operands, outputs=None):
    params, arrays = operands
    self.ctx.params.clear()
    self.ctx.params.update(params)
    outs = self.ctx.call(function, self.full(arrays), outputs)
    return outs, dict(self.ctx.params)

  def finish(self, params) -> None:
    self.ctx.params.clear()
    self.ctx.params.update(params)


@lowering("If", "StatelessIf", attrs=_IF_ATTRS, needs_context=True)
def if_(node):
  return cond_runner(node.function(node.attrs["then_branch"].name),
                     node.function(node.attrs["else_branch"].name))


def cond_runner(then_fn, else_fn):
  """`run(ctx, pred, *args)` calling one of two compiled graphs (also used by TF1 conds)."""

  def run(ctx, pred, *args):
    pred = _truth(pred)
    if is_static(pred):
      return ctx.call(then_fn if bool(pred) else else_fn, args)
    t = _Threaded(ctx, args)
    outs, params = jax.lax.cond(pred, lambda ops: t.call(then_fn, ops),
                                lambda ops: t.call(else_fn, ops), t.operands())
    t.finish(params)
    return outs
  return run


@lowering("Case", "StatelessCase", attrs=_CASE_ATTRS, needs_context=True)
def case(node):
  return case_runner([node.function(f.name) for f in node.attrs["branches"]])


def case_runner(branches):
  """`run(ctx, index, *args)` calling one of compiled graphs (also used by TF1 conds on
  a _SwitchN)."""
  n = len(branches)

  def run(ctx, index, *args):
    if np.ndim(index) != 0:
      raise ValueError(f"the branch index must be a scalar, got shape {np.shape(index)}")
    if is_static(index):  # TF runs the last branch for an out-of-range index
      i = int(index)
      return ctx.call(branches[i if 0 <= i < n else n - 1], args)
    index = jnp.where((index < 0) | (index >= n), n - 1, index).astype(jnp.int32)
    t = _Threaded(ctx, args)
    fns = [lambda ops, f=f: t.call(f, ops) for f in branches]
    outs, params = jax.lax.switch(index, fns, t.operands())
    t.finish(params)
    return outs
  return run


@lowering("While", "StatelessWhile", attrs=_WHILE_ATTRS, needs_context=True)
def while_(node):
  return while_runner(node, node.function(node.attrs["cond"].name),
                      node.function(node.attrs["body"].name), len(node.attrs["T"]))


def while_runner(node, cond, body, num: int):
  """`run(ctx, *loop_vars)` looping compiled `cond` (one output) and `body` (`num`
  outputs) over `num` loop variables (also used by TF1 loops)."""
  if len(body.outputs) != num or len(cond.outputs) != 1:
    raise ConversionError(f"{node.op} node {node.path!r}: its body returns {len(body.outputs)} "
                          f"values for {num} loop variables, its cond {len(cond.outputs)}.")
  # The loop variables the predicate depends on, closed under the body: when they are
  # all static, the trip count is computed at trace time.
  counting = set(cond.input_dependencies([0]))
  while True:
    grown = counting | body.input_dependencies(sorted(counting))
    if grown == counting:
      break
    counting = grown
  counting = sorted(counting)

  def trip_count(ctx, args) -> tuple[int, list] | None:
    values = list(args)
    if not all(is_static(values[i]) for i in counting):
      return None
    for count in range(MAX_SIMULATED_ITERATIONS + 1):
      pred = _truth(ctx.call(cond, values, [0])[0])
      if not is_static(pred):
        return None
      if not bool(pred):
        return count, values
      new = ctx.call(body, values, counting)
      if not all(is_static(v) for v in new):
        return None
      for i, v in zip(counting, new):
        values[i] = v
    return None

  def describe(value) -> str:
    if isinstance(value, TensorList):
      inner = "unallocated" if value.buffer is None else describe(value.buffer)
      return f"TensorList({value.length} x {inner})"
    return f"{np.dtype(value.dtype).name}{list(np.shape(value))}"

  def check_invariant(indices, before, after) -> None:
    for k, a, b in zip(indices, before, after):
      leaves_a, tree_a = jax.tree_util.tree_flatten(a)
      leaves_b, tree_b = jax.tree_util.tree_flatten(b)
      if tree_a != tree_b or any(
          np.shape(x) != np.shape(y) or np.dtype(x.dtype) != np.dtype(y.dtype)
          for x, y in zip(leaves_a, leaves_b)):
        raise ConversionError(
            f"{node.op} node {node.path!r}: loop variable {k} changes from {describe(a)} to "
            f"{describe(b)} across iterations (TF shape_invariants); JAX loops need fixed "
            "shapes and dtypes.")

  def allocate_lists(t, operands):
    """Gives TensorLists first written inside the body their buffer before the loop."""
    params, arrays = operands
    if not any(isinstance(a, TensorList) and a.buffer is None for a in arrays):
      return operands
    _, shapes = jax.eval_shape(lambda ops: raw_body(t, ops), operands)
    t.finish(params)
    filled = []
    for a, s in zip(arrays, shapes):
      if isinstance(a, TensorList) and a.buffer is None and isinstance(s, TensorList) \
          and s.buffer is not None:
        a = dataclasses.replace(a, buffer=jnp.zeros(s.buffer.shape, s.buffer.dtype))
      filled.append(a)
    return params, filled

  def raw_body(t, operands):
    outs, new_params = t.call(body, operands)
    return new_params, [outs[i] for i in t.arrays]

  def run(ctx, *args):
    if len(args) != num:
      raise ValueError(f"While takes {num} loop variables, got {len(args)}")
    t = _Threaded(ctx, args)
    known = trip_count(ctx, args)

    def body_fn(operands):
      new_params, new_arrays = raw_body(t, operands)
      check_invariant(t.arrays, operands[1], new_arrays)
      new_arrays = jax.tree.map(lambda x, a: jnp.asarray(x, a.dtype), new_arrays,
                                operands[1])
      return new_params, new_arrays

    start = allocate_lists(t, t.operands())
    if known is not None:
      count, final_static = known
      if count == 0:
        return list(args)
      params, arrays = jax.lax.fori_loop(0, count, lambda _, ops: body_fn(ops), start)
      outs = t.full(arrays)
      for i in counting:  # their values are known: keep them static
        outs[i] = final_static[i]
    else:
      def cond_fn(operands):
        outs, _ = t.call(cond, operands, [0])
        return _truth(outs[0])

      params, arrays = jax.lax.while_loop(cond_fn, body_fn, start)
      outs = t.full(arrays)
    t.finish(params)
    return outs
  return run
