"""TF2 functional conditionals: If / StatelessIf.

A static predicate picks the branch at trace time; a traced one becomes `lax.cond`,
with the params threaded through both branches so assignments inside them work.
"""

from __future__ import annotations

import jax
import numpy as np

from tf2jax_core import is_static, lowering

_IF_ATTRS = {"Tcond": None, "Tin": None, "Tout": None, "then_branch": None,
             "else_branch": None, "output_shapes": None}


def _truth(pred) -> object:
  """TF's truth value of a predicate tensor: non-zero / non-empty for non-bool scalars."""
  if pred.dtype == np.bool_:
    return pred
  return pred != 0


@lowering("If", "StatelessIf", attrs=_IF_ATTRS, needs_context=True)
def if_(node):
  then_fn = node.function(node.attrs["then_branch"].name)
  else_fn = node.function(node.attrs["else_branch"].name)

  def run(ctx, pred, *args):
    if np.ndim(pred) != 0:
      raise ValueError(f"the predicate must be a scalar, got shape {np.shape(pred)}")
    if is_static(pred):
      return ctx.call(then_fn if bool(_truth(pred)) else else_fn, args)
    params = dict(ctx.params)
    # Only arrays go through lax.cond; handles (VariableRef) are closed over.
    arrays = [i for i, a in enumerate(args) if isinstance(a, (np.ndarray, jax.Array))]

    def branch(function):
      def body(operands):
        ps, xs = operands
        ctx.params.clear()
        ctx.params.update(ps)
        full = list(args)
        for i, x in zip(arrays, xs):
          full[i] = x
        outs = ctx.call(function, full)
        return outs, dict(ctx.params)
      return body

    outs, new_params = jax.lax.cond(_truth(pred), branch(then_fn), branch(else_fn),
                                    (params, [args[i] for i in arrays]))
    ctx.params.clear()
    ctx.params.update(new_params)
    return outs
  return run
