"""Variable ops beyond read and assign: gathers, scatters and slice assignments on
resource variables, variable queries, and TF1 reference variables (VariableV2, Assign*,
Scatter*, StridedSliceAssign).

A variable is an entry of params (see structure.py): an op that changes one stores the
new value in `ctx.params`, so later reads in the same call see it. Index checks are the
array ops' (array_ops.py): out-of-range indices raise when their values are known
(static, or concrete outside jit), as TF's CPU kernels do; traced ones cannot raise, so
gathers give zeros and scatters drop those updates.

TF1 reference variables: a VariableV2 node evaluates to a `RefVariable` naming the param
(its node name: the variable's TF1 name); Identity reads it (`v/read`, `v.read_value()`)
and Assign/AssignAdd/AssignSub, Scatter*, ScatterNd* and StridedSliceAssign update it
and return the new value (TF returns a ref to the variable: a read of it that a later
update does not wait for is a race in TF; here it sees the value of that update).
Reading one that neither params nor an earlier Assign hold raises, as TF does for an
uninitialized variable. Other ops fed a VariableV2 directly are not supported.
"""

from __future__ import annotations

import math

import jax.numpy as jnp
import numpy as np
from jax import lax

from tf2jax_core.errors import ConversionError
from tf2jax_core.lowering import lowering
from tf2jax_core.ops import array_ops as A
from tf2jax_core.ops.structure import RefVariable, _ref, read_ref

LOWERINGS = []
_IDX = ("int32", "int64")


def _register(*ops, attrs):
  def wrap(build):
    low = lowering(*ops, attrs=attrs, needs_context=True)(build)
    LOWERINGS.append(low)
    return low
  return wrap


# Queries -----------------------------------------------------------------------------


@lowering("VarIsInitializedOp", needs_context=True)
def var_is_initialized(node):
  return lambda ctx, handle: np.asarray(_ref(node, handle).name in ctx.params)


@lowering("VariableShape", attrs={"out_type": _IDX}, needs_context=True)
def variable_shape(node):
  dtype = node.attrs.get("out_type", np.dtype(np.int32))
  return lambda ctx, handle: np.asarray(
      np.shape(read_ref(ctx, node, _ref(node, handle))), dtype=dtype)


@lowering("DestroyResourceOp", attrs={"ignore_lookup_error": None})
def destroy_resource(node):
  # The param stays: the converted function returns every param it was given.
  return lambda handle: None


# Gathers -----------------------------------------------------------------------------


@lowering("ResourceGather", attrs={"batch_dims": None, "validate_indices": None,
                                   "dtype": None, "Tindices": _IDX}, needs_context=True)
def resource_gather(node):
  b = node.attrs.get("batch_dims", 0)
  return lambda ctx, handle, indices: _batched_gather(
      read_ref(ctx, node, _ref(node, handle)), indices, b)


def _batched_gather(params, indices, b: int):
  """TF's ResourceGather: with batch_dims b > 0 its kernel offsets each batch's indices
  into params with the first b + 1 dims flattened and checks them against that size, so
  an index outside [0, dim) reads a neighbouring batch's row while the flat index stays
  inside (GatherV2 raises instead)."""
  pshape, ishape = A._shape(params), A._shape(indices)
  if b < 0:
    b += len(ishape)
  if b <= 0 or len(pshape) <= b or pshape[:b] != ishape[:b]:
    return A._gather(params, indices, b, b)  # plain gather, or its shape errors
  lead, n = math.prod(pshape[:b]), pshape[b]
  offsets = (np.arange(lead) * n).reshape(pshape[:b] + (1,) * (len(ishape) - b))
  known = A._known(indices)
  if known is not None:
    indices = known.astype(np.int64) + offsets
    A._check_range(indices, lead * n, "indices", shown_upper=n)
  else:
    indices = jnp.asarray(indices) + offsets.astype(indices.dtype)
  return A._gather(params.reshape((lead * n,) + pshape[b + 1:]), indices, 0, 0)


@lowering("ResourceGatherNd", attrs={"dtype": None, "Tindices": _IDX}, needs_context=True)
def resource_gather_nd(node):
  gather = A.gather_nd.build(node)
  return lambda ctx, handle, indices: gather(read_ref(ctx, node, _ref(node, handle)),
                                             indices)


# Scatters ----------------------------------------------------------------------------


def _last_wins(indices, updates, shape):
  """Keeps, for each index row repeated in [..., depth] `indices`, only its last update:
  TF's CPU kernels apply updates in order (checked up to 200,000 updates), and XLA's
  scatter leaves the winner open."""
  depth = np.shape(indices)[-1]
  known = A._known(indices)
  flat = (known if known is not None else jnp.asarray(indices)).reshape(-1, depth)
  rest = np.shape(updates)[np.ndim(indices) - 1:]
  updates = updates.reshape((-1,) + rest)
  if known is not None:
    _, first = np.unique(flat[::-1], axis=0, return_index=True)
    keep = np.sort(len(flat) - 1 - first)
    return flat[keep], updates[keep]
  # Traced: each position's last row, by a scatter-max of row numbers.
  dims = shape[:depth]
  valid = jnp.all((flat >= 0) & (flat < jnp.asarray(dims, flat.dtype)), axis=-1)
  strides = np.cumprod((1,) + dims[:0:-1])[::-1].astype(flat.dtype)
  size = math.prod(dims)
  key = jnp.where(valid, flat @ strides, size)  # not -1: JAX wraps negative indices
  rows = jnp.arange(flat.shape[0], dtype=flat.dtype)
  last = jnp.full(size, -1, flat.dtype).at[key].max(rows, mode="drop")
  keep = valid & (last.at[key].get(mode="fill", fill_value=-1) == rows)
  return jnp.where(keep[:, None], flat, -1), updates  # -1: out of range, dropped


def _sequential(kind: str, var, indices, updates):
  """var[indices[i]] *= or /= updates[i] one after another, as TF does (exact for
  repeated indices; integer division truncates). Out-of-range traced indices are
  dropped."""
  op = lax.mul if kind == "mul" else lax.div
  n = var.shape[0]

  def step(i, x):
    j = indices[i]
    row = x[jnp.clip(j, 0, n - 1)]
    new = jnp.where((j >= 0) & (j < n), op(row, updates[i]), row)
    return x.at[jnp.clip(j, 0, n - 1)].set(new)
  return lax.fori_loop(0, indices.shape[0], step, var)


def _scatter_nd(node, kind: str, var, indices, updates, ignore: bool = False):
  shape, ishape = A._shape(var), A._shape(indices)
  depth = ishape[-1] if ishape else 0
  if kind == "update" and 0 < depth <= len(shape) and \
      A._shape(updates) == ishape[:-1] + shape[depth:]:
    if not ignore:
      A._nd_index(indices, shape, "tensor", check=True)  # raise before dropping rows
    indices, updates = _last_wins(indices, updates, shape)
  if kind == "sub" and var.dtype == np.bool_:
    # TF subtracts bools as integers: each True update flips the value.
    flips = A._scatter(node, "add", jnp.zeros(shape, jnp.int32), indices,
                       jnp.asarray(updates).astype(jnp.int32), ignore)
    return var ^ (flips % 2 == 1)
  return A._scatter(node, kind, var, indices, updates, ignore)


def _scatter_rows(node, kind: str, var, indices, updates, zero_check: bool = True):
  """ResourceScatter*: updates[i, ...] combined into var[indices[i], ...]. `zero_check`:
  known zero divisors raise (the ref op ScatterDiv does not check: floats give inf/NaN)."""
  shape, ishape, ushape = A._shape(var), A._shape(indices), A._shape(updates)
  if not shape:
    raise ValueError("params must be at least 1-D, got shape []")
  want = ishape + shape[1:]
  if ushape != want and ushape != ():
    raise ValueError(f"Must have updates.shape = indices.shape + params.shape[1:] or "
                     f"updates.shape = [], got updates.shape {list(ushape)}, indices.shape "
                     f"{list(ishape)}, params.shape {list(shape)}")
  A._check_range(A._known(indices), shape[0], "indices")
  known = A._known(updates)
  if zero_check and kind == "div" and known is not None and np.any(known == 0):
    # TF checks this; traced zeros divide (inf/NaN, integers: whatever XLA gives).
    raise ValueError("updates must not contain 0")
  n = math.prod(ishape)
  if n == 0 or math.prod(shape) == 0:
    return var
  known = A._known(indices)
  flat = (known if known is not None else jnp.asarray(indices)).reshape(n)
  updates = jnp.broadcast_to(updates, want).reshape((n,) + shape[1:])
  if kind == "div" and jnp.issubdtype(updates.dtype, jnp.inexact):
    # XLA turns a division by a broadcast value into a multiplication by its reciprocal
    # (an ulp off; 0 when the reciprocal is subnormal): the barrier hides the broadcast.
    updates = lax.optimization_barrier(updates)
  if kind in ("mul", "div"):
    return _sequential(kind, var, jnp.asarray(flat), updates)
  return _scatter_nd(node, kind, var, flat.reshape(n, 1), updates)


_ROWS = {"Add": "add", "Sub": "sub", "Mul": "mul", "Div": "div", "Min": "min", "Max": "max",
         "Update": "update"}
_ND = {"Add": "add", "Sub": "sub", "Update": "update", "Min": "min", "Max": "max"}

for _name, _kind in _ROWS.items():
  @_register(f"ResourceScatter{_name}", attrs={"dtype": None, "Tindices": _IDX})
  def _resource_scatter(node, _kind=_kind):
    def run(ctx, handle, indices, updates):
      ref = _ref(node, handle)
      ctx.params[ref.name] = _scatter_rows(node, _kind, read_ref(ctx, node, ref), indices,
                                           updates)
    return run

for _name, _kind in _ND.items():
  @_register(f"ResourceScatterNd{_name}", attrs={
      "T": None, "Tindices": _IDX, "use_locking": None, "bad_indices_policy": A._BAD_POLICY})
  def _resource_scatter_nd(node, _kind=_kind):
    ignore = A._ignore(node)

    def run(ctx, handle, indices, updates):
      ref = _ref(node, handle)
      ctx.params[ref.name] = _scatter_nd(node, _kind, read_ref(ctx, node, ref), indices,
                                         updates, ignore)
    return run


@lowering("ResourceStridedSliceAssign", attrs=A._SLICE_ATTRS, static_inputs=(1, 2, 3),
          needs_context=True)
def resource_strided_slice_assign(node):
  update = A.tensor_strided_slice_update.build(node)

  def run(ctx, handle, begin, end, strides, value):
    ref = _ref(node, handle)
    ctx.params[ref.name] = update(read_ref(ctx, node, ref), begin, end, strides, value)
  return run


# TF1 reference variables ---------------------------------------------------------------


@lowering("VariableV2", attrs={"shape": None, "dtype": None, "container": None,
                               "shared_name": None})
def variable_v2(node):
  # Named after the node: TF1's variable name and checkpoint key (a TF1 SavedModel loaded
  # in TF2 gives its VariableV2 nodes unique shared_names such as "v_load_0").
  ref = RefVariable(node.name)
  return lambda: ref


def _ref_input(node, value) -> RefVariable:
  if not isinstance(value, RefVariable):
    raise ConversionError(
        f"{node.op} node {node.path!r}: its ref input must come straight from a VariableV2 "
        f"node (got {type(value).__name__}); chained or forwarded refs are not supported.")
  return value


@lowering("Assign", attrs={"T": None, "validate_shape": None, "use_locking": None},
          needs_context=True)
def assign(node):
  validate = node.attrs.get("validate_shape", True)

  def run(ctx, ref, value):
    ref = _ref_input(node, ref)
    old = ctx.params.get(ref.name)
    if validate and old is not None and np.shape(old) != np.shape(value):
      raise ValueError(f"Assign requires shapes of both tensors to match. lhs shape= "
                       f"{list(np.shape(old))} rhs shape= {list(np.shape(value))}")
    ctx.params[ref.name] = value
    return value
  return run


@lowering("AssignAdd", "AssignSub", attrs={"T": None, "use_locking": None},
          needs_context=True)
def assign_update(node):
  add = node.op == "AssignAdd"

  def run(ctx, ref, value):
    ref = _ref_input(node, ref)
    old = read_ref(ctx, node, ref)
    if np.shape(old) != np.shape(value):
      raise ValueError(f"Parameters and update must be the same size: "
                       f"{list(np.shape(old))} vs {list(np.shape(value))}")
    new = old + value if add else old - value
    ctx.params[ref.name] = new
    return new
  return run


# Scatters and slice assignment on TF1 reference variables: the same kernels as the
# resource ops above; they return the variable's new value (TF returns a ref to it).
# `use_locking` only serializes concurrent updates in TF: nothing to do here.

for _name, _kind in _ROWS.items():
  @_register(f"Scatter{_name}", attrs={"T": None, "Tindices": _IDX, "use_locking": None})
  def _ref_scatter(node, _kind=_kind):
    def run(ctx, ref, indices, updates):
      ref = _ref_input(node, ref)
      new = _scatter_rows(node, _kind, read_ref(ctx, node, ref), indices, updates,
                          zero_check=False)
      ctx.params[ref.name] = new
      return new
    return run

for _name, _kind in _ND.items():
  @_register(f"ScatterNd{_name}", attrs={
      "T": None, "Tindices": _IDX, "use_locking": None, "bad_indices_policy": A._BAD_POLICY})
  def _ref_scatter_nd(node, _kind=_kind):
    ignore = A._ignore(node)

    def run(ctx, ref, indices, updates):
      ref = _ref_input(node, ref)
      new = _scatter_nd(node, _kind, read_ref(ctx, node, ref), indices, updates, ignore)
      ctx.params[ref.name] = new
      return new
    return run


@lowering("StridedSliceAssign", attrs=A._SLICE_ATTRS, static_inputs=(1, 2, 3),
          needs_context=True)
def strided_slice_assign(node):
  update = A.tensor_strided_slice_update.build(node)

  def run(ctx, ref, begin, end, strides, value):
    ref = _ref_input(node, ref)
    new = update(read_ref(ctx, node, ref), begin, end, strides, value)
    ctx.params[ref.name] = new
    return new
  return run
