"""XlaReduce, XlaVariadicReduce(V2), XlaReduceWindow, XlaScatter, XlaSelectAndScatter.

Their reducer, update, select and scatter computations are library functions of
scalars. Those whose outputs are one Add/Mul/Maximum/Minimum/LogicalAnd/LogicalOr of
the matching arguments (a monoid) are lowered to JAX's own reductions and scatters
(differentiable, batchable with batched init values): the reduction with the monoid's
identity, then the init value combined once. That is what XLA's CPU code does for
windows (padding and dilation holes are skipped, not folded) and for an identity or
idempotent init; XLA folds other init values of a plain reduce an unspecified number of
times, and none at all when each output reduces one element (a reshape). Other
computations run as the XLA computation itself (`ctx.call` traced by JAX): the same HLO
TF compiles.

With `infer_cumulative_reduction_from_jax2tf`, the XlaReduceWindow jax2tf emits for
cumsum/cumprod/cummax/cummin (a window over a whole axis, padded before it, or after it
for reverse, identity init) is lowered to that cumulative op.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np

from tf2jax_core import lowering
from tf2jax_core.errors import ConversionError
from tf2jax_core.lowering import is_static
from tf2jax_xla.dot_conv import _proto

_INDEX = ("int32", "int64")
_PASS_THROUGH = ("Identity", "Snapshot", "StopGradient")
# Monoid ops by TF op type (on bool, max is `or` and min is `and`).
_MONOIDS = {"Add": "add", "AddV2": "add", "Mul": "mul", "Maximum": "max",
            "Minimum": "min", "LogicalOr": "max", "LogicalAnd": "min"}
_LAX = {"add": jax.lax.add, "mul": jax.lax.mul, "max": jax.lax.max, "min": jax.lax.min}
_CUMULATIVE = {"add": jax.lax.cumsum, "mul": jax.lax.cumprod, "max": jax.lax.cummax,
               "min": jax.lax.cummin}
_SCATTER = {"add": jax.lax.scatter_add, "mul": jax.lax.scatter_mul,
            "max": jax.lax.scatter_max, "min": jax.lax.scatter_min,
            "replace": jax.lax.scatter}
_FILL_OR_DROP = jax.lax.GatherScatterMode.FILL_OR_DROP  # XLA skips out-of-bounds windows


def _where(node) -> str:
  return f"{node.op} node {node.path!r}"


def _function(node, attr, num_inputs, num_outputs):
  compiled = node.function(node.attrs[attr].name)
  if len(compiled.input_steps) != num_inputs or len(compiled.outputs) != num_outputs:
    raise ConversionError(
        f"{_where(node)}: attr {attr!r} (function {node.attrs[attr].name!r}) takes "
        f"{len(compiled.input_steps)} arguments and returns {len(compiled.outputs)} "
        f"values; the op needs {num_inputs} and {num_outputs}.")
  return compiled


def _expression(compiled, k):
  """Output `k` of a function as ("arg", i) when it is argument i, (op type, argument
  positions) when it is one node of arguments only (through pass-through nodes)."""
  steps = compiled.steps

  def follow(index, port):
    while steps[index].node.op in _PASS_THROUGH:
      index, port = steps[index].args[0]
    return index

  index = follow(*compiled.outputs[k])
  if index in compiled.input_steps:
    return "arg", compiled.input_steps.index(index)
  args = [follow(*a) for a in steps[index].args]
  if not all(a in compiled.input_steps for a in args):
    return None
  return steps[index].node.op, tuple(compiled.input_steps.index(a) for a in args)


def _monoids(compiled, n):
  """The monoid of each output of a 2n-argument reducer, or None."""
  kinds = []
  for k in range(n):
    expr = _expression(compiled, k)
    if expr is None or expr[0] not in _MONOIDS or sorted(expr[1]) != [k, n + k]:
      return None
    kinds.append(_MONOIDS[expr[0]])
  return kinds


def _identity(kind, dtype):
  """The monoid's identity on `dtype` (for max and min, the lowest and highest value)."""
  dtype = np.dtype(dtype)
  if kind in ("add", "mul"):
    return np.asarray(0 if kind == "add" else 1, dtype)
  if dtype == np.bool_:
    return np.asarray(kind == "min")
  if jnp.issubdtype(dtype, jnp.inexact):
    with np.errstate(invalid="ignore"):  # float8 types without infinities make NaN
      has_inf = np.isinf(np.asarray(np.inf, dtype).astype(np.float32))
    info = jnp.finfo(dtype)
    low, high = (-np.inf, np.inf) if has_inf else (info.min, info.max)
  else:
    low, high = jnp.iinfo(dtype).min, jnp.iinfo(dtype).max
  return np.asarray(low if kind == "max" else high, dtype)


def _batch_inits(fn, num_inits):
  """`fn(*operands, *inits)` batched by JAX's rules unless an init value is batched
  (JAX's reduce and reduce_window rules refuse those): then row by row."""
  fun = jax.custom_batching.custom_vmap(fn)

  @fun.def_vmap
  def rule(size, batched, *args):
    if not any(batched[-num_inits:]):
      out = jax.vmap(fn, in_axes=[0 if b else None for b in batched])(*args)
    else:
      rows = [a if b else jnp.broadcast_to(a, (size,) + np.shape(a))
              for a, b in zip(args, batched)]
      out = jax.lax.map(lambda row: fn(*row), rows)
    return out, jax.tree.map(lambda _: True, out)
  return fun


def _call(ctx, compiled, k=None):
  """A JAX computation running `compiled` on scalars: its output k, or all as a tuple."""
  if k is not None:
    return lambda *args: ctx.call(compiled, list(args), [k])[0]
  return lambda *args: tuple(ctx.call(compiled, list(args)))


# XlaReduce, XlaVariadicReduce, XlaVariadicReduceV2 ------------------------------------


def _reduce(node, n):
  compiled = _function(node, "reducer", 2 * n, n)
  monoids = _monoids(compiled, n)
  dims = tuple(int(d) for d in node.attrs["dimensions_to_reduce"])

  def run(ctx, *args):
    xs, inits = args[:n], args[n:]
    shapes = [tuple(np.shape(x)) for x in xs]
    rank = len(shapes[0])
    if len(set(shapes)) != 1 or any(np.ndim(i) for i in inits):
      raise ConversionError(f"{_where(node)}: the inputs must have one shape and the init "
                            f"values be scalars, got shapes {shapes} and "
                            f"{[list(np.shape(i)) for i in inits]}.")
    if any(not 0 <= d < rank for d in dims) or len(set(dims)) != len(dims):
      raise ConversionError(f"{_where(node)}: attr 'dimensions_to_reduce' {list(dims)} are "
                            f"not distinct dimensions of the inputs (shape {list(shapes[0])}).")
    kept = [n for d, n in enumerate(shapes[0]) if d not in dims]
    floats = sorted({np.dtype(x.dtype).name for x in xs if jnp.issubdtype(x.dtype, jnp.floating)})
    if len(floats) > 1 and dims and math.prod(kept):  # TF's XLA: "mixed precision is disallowed"
      raise ConversionError(f"{_where(node)}: its inputs mix the floating types {floats}, "
                            "which XLA refuses in one reduce; cast them to one type.")
    if monoids and math.prod(shapes[0][d] for d in dims) == 1:
      # XLA turns a reduce of one element per output into a reshape: no init value.
      return [jnp.reshape(x, kept) for x in xs]
    if monoids:
      return [_LAX[m](jnp.asarray(i, x.dtype), jax.lax.reduce(x, _identity(m, x.dtype),
                                                             _LAX[m], dims))
              for m, x, i in zip(monoids, xs, inits)]
    # The reducer's arguments: the n accumulators, then the n elements.
    comp = lambda acc, elem: _call(ctx, compiled)(*acc, *elem)
    fn = lambda *a: list(jax.lax.reduce(tuple(a[:n]), tuple(a[n:]), comp, dims))
    return fn(*args) if is_static(*inits) else _batch_inits(fn, n)(*args)
  return run


@lowering("XlaReduce", attrs={"T": None, "dimensions_to_reduce": None, "reducer": None},
          needs_context=True)
def xla_reduce(node):
  run = _reduce(node, 1)
  return lambda ctx, x, init: run(ctx, x, init)[0]


@lowering("XlaVariadicReduce", attrs={"N": None, "T": None, "dimensions_to_reduce": None,
                                      "reducer": None}, needs_context=True)
def variadic_reduce(node):
  return _reduce(node, node.attrs["N"])


@lowering("XlaVariadicReduceV2", attrs={"T": None, "dimensions_to_reduce": None,
                                        "reducer": None}, needs_context=True)
def variadic_reduce_v2(node):
  return _reduce(node, len(node.attrs["T"]))


# XlaReduceWindow ----------------------------------------------------------------------


def _ints(node, name, value, shape):
  value = np.asarray(value)
  if value.shape != shape:
    raise ConversionError(f"{_where(node)}: input {name!r} must have shape {list(shape)} "
                          f"(one entry per dimension of the operand), got "
                          f"{list(value.shape)}.")
  return [int(v) for v in np.reshape(value, -1)]


def _window_args(node, x, names_values):
  """Window dims, strides, ... (lists of ints) and padding (pairs) for operand x."""
  rank = np.ndim(x)
  out = [_ints(node, name, v, (rank,)) for name, v in names_values[:-1]]
  pad = _ints(node, "padding", names_values[-1][1], (rank, 2))
  return out + [[(pad[2 * i], pad[2 * i + 1]) for i in range(rank)]]


def _cumulative_axis(shape, window, strides, base, dilation, padding):
  """(axis, reverse) when the window is jax2tf's cumulative reduction, else None."""
  if any(s != 1 for s in strides + base + dilation):
    return None
  axes = [d for d, (w, p) in enumerate(zip(window, padding)) if (w, p) != (1, (0, 0))]
  if len(axes) != 1:
    return None
  axis, = axes
  n = shape[axis]
  if window[axis] != n or padding[axis] not in ((n - 1, 0), (0, n - 1)):
    return None
  return axis, padding[axis] == (0, n - 1)


@lowering("XlaReduceWindow", attrs={"T": None, "Tindices": _INDEX, "computation": None},
          static_inputs=(2, 3, 4, 5, 6), needs_context=True)
def reduce_window(node):
  compiled = _function(node, "computation", 2, 1)
  monoid = (_monoids(compiled, 1) or [None])[0]
  cumulative = node.config("infer_cumulative_reduction_from_jax2tf")

  def run(ctx, x, init, window, strides, base, dilation, padding):
    window, strides, base, dilation, padding = _window_args(node, x, [
        ("window_dimensions", window), ("window_strides", strides),
        ("base_dilations", base), ("window_dilations", dilation), ("padding", padding)])
    if np.ndim(init) or any(p < 0 for pair in padding for p in pair) or min(
        strides + base + dilation, default=1) < 1 or min(window, default=0) < 0:
      raise ConversionError(
          f"{_where(node)}: needs a scalar init value, non-negative padding and window "
          f"dimensions, and positive strides and dilations; got init shape "
          f"{list(np.shape(init))}, window {window}, strides {strides}, base dilations "
          f"{base}, window dilations {dilation}, padding {padding}.")
    args = dict(window_dimensions=window, window_strides=strides, padding=padding,
                base_dilation=base, window_dilation=dilation)
    if monoid:
      x = jnp.asarray(x)
      identity = _identity(monoid, x.dtype)
      found = _cumulative_axis(np.shape(x), window, strides, base, dilation, padding)
      if (cumulative and found and x.dtype != np.bool_ and is_static(init)
          and np.asarray(init).tobytes() == identity.tobytes()):
        return _CUMULATIVE[monoid](x, axis=found[0], reverse=found[1])
      out = jax.lax.reduce_window(x, identity, _LAX[monoid], **args)
      return _LAX[monoid](jnp.asarray(init, x.dtype), out)
    fn = lambda x, init: jax.lax.reduce_window(x, init, _call(ctx, compiled, 0), **args)
    return fn(x, init) if is_static(init) else _batch_inits(fn, 1)(x, init)
  return run


# XlaScatter ---------------------------------------------------------------------------


def _combiner(compiled):
  """"replace", a monoid, or None for the update computation (operand, update)."""
  expr = _expression(compiled, 0)
  if expr == ("arg", 1):
    return "replace"
  if expr and expr[0] in _MONOIDS and sorted(expr[1]) == [0, 1]:
    return _MONOIDS[expr[0]]
  return None


def _no_grad(fn, where):
  """fn, refusing to be differentiated (JAX's scatter rules assume replace semantics)."""
  fun = jax.custom_jvp(fn)

  @fun.defjvp
  def jvp(primals, tangents):
    raise ConversionError(f"{where}: tf2jax cannot differentiate this update computation "
                          "(TF registers no gradient for the op either).")
  return fun


@lowering("XlaScatter", attrs={"T": None, "Tindices": _INDEX, "update_computation": None,
                               "dimension_numbers": None, "indices_are_sorted": None},
          needs_context=True)
def scatter(node):
  compiled = _function(node, "update_computation", 2, 1)
  kind = _combiner(compiled)
  proto = _proto(node, "dimension_numbers", "ScatterDimensionNumbers")
  ivd = proto.index_vector_dim
  batching = tuple(proto.scatter_indices_batching_dims)
  sort = bool(node.attrs["indices_are_sorted"])

  def run(ctx, operand, indices, updates):
    rank = np.ndim(indices)
    if not 0 <= ivd <= rank:
      raise ConversionError(f"{_where(node)}: attr 'dimension_numbers' has index_vector_dim "
                            f"{ivd}, out of range for indices of shape {list(np.shape(indices))}.")
    indices = jnp.asarray(indices)
    dims = batching
    if ivd == rank:
      indices = indices[..., None]
    elif ivd != rank - 1:
      indices = jnp.moveaxis(indices, ivd, -1)
      dims = tuple(d - 1 if d > ivd else d for d in dims)
    numbers = jax.lax.ScatterDimensionNumbers(
        update_window_dims=tuple(proto.update_window_dims),
        inserted_window_dims=tuple(proto.inserted_window_dims),
        scatter_dims_to_operand_dims=tuple(proto.scatter_dims_to_operand_dims),
        operand_batching_dims=tuple(proto.input_batching_dims),
        scatter_indices_batching_dims=dims)
    operand, updates = jnp.asarray(operand), jnp.asarray(updates)
    if kind is not None:
      return _SCATTER[kind](operand, indices, updates, numbers, indices_are_sorted=sort,
                            mode=_FILL_OR_DROP)
    scalar = jax.ShapeDtypeStruct((), operand.dtype)
    comp = jax.make_jaxpr(_call(ctx, compiled, 0))(scalar, scalar)
    return _no_grad(lambda o, i, u: jax.lax.scatter_p.bind(
        o, i, u, update_jaxpr=comp.jaxpr, update_consts=tuple(comp.consts),
        dimension_numbers=numbers, indices_are_sorted=sort, unique_indices=False,
        mode=_FILL_OR_DROP), _where(node))(operand, indices, updates)
  return run


# XlaSelectAndScatter ------------------------------------------------------------------


def _select_and_scatter(select, scatter, window, strides, padding):
  """`fn(operand, source, init)` for XLA's SelectAndScatter, batchable (a batch dim is
  one more window dim of size 1)."""

  def fn(operand, source, init):
    return jax.lax.select_and_scatter_p.bind(
        operand, source, init, select_jaxpr=select.jaxpr, select_consts=tuple(select.consts),
        scatter_jaxpr=scatter.jaxpr, scatter_consts=tuple(scatter.consts),
        window_dimensions=tuple(window), window_strides=tuple(strides),
        padding=tuple(padding))
  fun = jax.custom_batching.custom_vmap(fn)

  @fun.def_vmap
  def rule(size, batched, operand, source, init):
    if batched[2]:
      rows = [a if b else jnp.broadcast_to(a, (size,) + np.shape(a))
              for a, b in zip((operand, source, init), batched)]
      return jax.lax.map(lambda row: fun(*row), rows), True
    operand, source = (a if b else jnp.broadcast_to(a, (size,) + np.shape(a))
                       for a, b in zip((operand, source), batched))
    inner = _select_and_scatter(select, scatter, [1] + list(window), [1] + list(strides),
                                [(0, 0)] + list(padding))
    return inner(operand, source, init), True
  return fun


@lowering("XlaSelectAndScatter", attrs={"T": None, "Tindices": _INDEX, "select": None,
                                        "scatter": None},
          static_inputs=(1, 2, 3), needs_context=True)
def select_and_scatter(node):
  select = _function(node, "select", 2, 1)
  scatter_fn = _function(node, "scatter", 2, 1)

  def run(ctx, operand, window, strides, padding, source, init):
    window, strides, padding = _window_args(node, operand, [
        ("window_dimensions", window), ("window_strides", strides), ("padding", padding)])
    shape = np.shape(operand)
    want = tuple((n + lo + hi - w) // s + 1 if n + lo + hi >= w else 0
                 for n, w, s, (lo, hi) in zip(shape, window, strides, padding))
    if (np.ndim(init) or np.shape(source) != want or min(strides, default=1) < 1
        or min(window, default=1) < 1 or any(p < 0 for pair in padding for p in pair)):
      raise ConversionError(
          f"{_where(node)}: needs positive window dimensions and strides, non-negative "
          f"padding, a scalar init value and a source of the windows' shape {list(want)}; "
          f"got window {window}, strides {strides}, padding {padding}, source shape "
          f"{list(np.shape(source))}, init shape {list(np.shape(init))}.")
    operand = jnp.asarray(operand)
    scalar = jax.ShapeDtypeStruct((), operand.dtype)
    sel = jax.make_jaxpr(_call(ctx, select, 0))(scalar, scalar)
    sca = jax.make_jaxpr(_call(ctx, scatter_fn, 0))(scalar, scalar)
    return _select_and_scatter(sel, sca, window, strides, padding)(
        operand, jnp.asarray(source, operand.dtype), jnp.asarray(init, operand.dtype))
  return run
