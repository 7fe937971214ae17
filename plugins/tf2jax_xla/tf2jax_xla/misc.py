"""XlaPad, XlaReducePrecision, XlaBroadcastHelper, XlaOptimizationBarrier and the sharding
annotations (XlaSharding, XlaSpmdFullToShardShape, XlaSpmdShardToFullShape).

The sharding ops only annotate a value for XLA's SPMD partitioner. XlaSharding becomes a
`with_sharding_constraint` when this process has the devices its tiling names (on one
device, as on TF's XLA_CPU_JIT, it is the identity). The manual-sharding
conversions compile only when they keep the shape (the shard of a replicated, maximal,
manual or 1-way tiled sharding is the whole value); any other shape makes XLA's
sharding remover fail, so tf2jax refuses those at conversion.
"""

from __future__ import annotations

import itertools

import jax
import jax.numpy as jnp
import numpy as np

from tf2jax_core import lowering
from tf2jax_core.errors import ConversionError
from tf2jax_core.lowering import is_static

_INDEX = ("int32", "int64")
_FLOAT = ("float16", "bfloat16", "float32", "float64")


def _where(node) -> str:
  return f"{node.op} node {node.path!r}"


def _vector(node, name, value, size) -> list[int]:
  value = np.asarray(value)
  if value.ndim != 1 or value.shape[0] != size:
    raise ConversionError(f"{_where(node)}: {name} must be a 1D tensor of size {size} (the "
                          f"input's rank), got shape {list(value.shape)}.")
  return [int(v) for v in value]


@lowering("XlaPad", attrs={"T": None, "Tindices": _INDEX}, static_inputs=(2, 3, 4))
def pad(node):
  def run(x, value, low, high, interior):
    rank = np.ndim(x)
    low = _vector(node, "padding_low", low, rank)
    high = _vector(node, "padding_high", high, rank)
    interior = _vector(node, "padding_interior", interior, rank)
    if np.ndim(value) != 0:
      raise ConversionError(f"{_where(node)}: padding_value must be a scalar, got shape "
                            f"{list(np.shape(value))}.")
    for d, (n, lo, hi, it) in enumerate(zip(np.shape(x), low, high, interior)):
      if it < 0:
        raise ConversionError(f"{_where(node)}: padding_interior must be non-negative, "
                              f"got {interior} (input shape {list(np.shape(x))}).")
      size = lo + hi + n + max(n - 1, 0) * it
      if size < 0:
        raise ConversionError(
            f"{_where(node)}: padding dimension {d} of input shape {list(np.shape(x))} "
            f"gives a negative size {size} (low {lo}, high {hi}, interior {it}).")
    value = jnp.asarray(value, dtype=jnp.asarray(x).dtype)
    return jax.lax.pad(x, value, list(zip(low, high, interior)))
  return run


def _positive_exponent(bits):
  return True if isinstance(bits, int) and bits >= 1 else "exponent_bits must be >= 1"


def _mantissa(bits):
  return True if isinstance(bits, int) and bits >= 0 else "mantissa_bits must be >= 0"


@lowering("XlaReducePrecision", attrs={"T": _FLOAT,
                                       "exponent_bits": _positive_exponent,
                                       "mantissa_bits": _mantissa})
def reduce_precision(node):
  exponent, mantissa = node.attrs["exponent_bits"], node.attrs["mantissa_bits"]
  return lambda x: jax.lax.reduce_precision(x, exponent_bits=exponent,
                                            mantissa_bits=mantissa)


@lowering("XlaBroadcastHelper", attrs={"T": None, "Tindices": _INDEX}, static_inputs=(2,))
def broadcast_helper(node):
  def run(lhs, rhs, dims):
    dims = [int(d) for d in np.reshape(dims, -1)]
    ls, rs = tuple(np.shape(lhs)), tuple(np.shape(rhs))
    shapes = f"argument shapes {list(ls)} and {list(rs)}"
    if not dims:
      if len(ls) != len(rs) and ls and rs:
        raise ConversionError(
            f"{_where(node)}: an empty broadcast_dims needs arguments of equal rank or a "
            f"scalar one; {shapes}.")
      return lhs, rhs
    lhs_small = len(ls) < len(rs)
    small_shape, large_rank = (ls, len(rs)) if lhs_small else (rs, len(ls))
    if len(dims) != len(small_shape):
      raise ConversionError(
          f"{_where(node)}: broadcast_dims {dims} must have the smaller argument's rank "
          f"({len(small_shape)}); {shapes}.")
    if any(d < 0 or d >= large_rank for d in dims) or any(
        a >= b for a, b in zip(dims, dims[1:])):
      raise ConversionError(
          f"{_where(node)}: broadcast_dims {dims} must be increasing dims in "
          f"[0, {large_rank}); {shapes}.")
    target = [1] * large_rank
    for d, n in zip(dims, small_shape):
      target[d] = n
    reshape = np.reshape if is_static(lhs if lhs_small else rhs) else jnp.reshape
    if lhs_small:
      return reshape(lhs, target), rhs
    return lhs, reshape(rhs, target)
  return run


@lowering("XlaOptimizationBarrier", attrs={"T": None})
def optimization_barrier(node):
  def run(*xs):
    if all(is_static(x) for x in xs):
      return list(xs)
    return list(jax.lax.optimization_barrier(tuple(jnp.asarray(x) for x in xs)))
  return run


def _sharding_attrs():
  return {"T": None, "sharding": None, "unspecified_dims": None}


@lowering("XlaSharding", attrs=_sharding_attrs())
def sharding(node):
  proto = _parse_sharding(node, "sharding")

  def run(x):
    named = _named_sharding(proto, np.ndim(x))
    return x if named is None else jax.lax.with_sharding_constraint(x, named)
  return run


def _named_sharding(proto, ndim: int):
  """The tiled OpSharding `proto` as a NamedSharding over this process's devices; None
  (no constraint) when it does not split the value, there are too few devices, or its
  device order is not a transposition of a mesh (JAX needs the devices of one jit in
  one order, so the mesh keeps jax.devices()'s)."""
  from tensorflow.compiler.xla import xla_data_pb2  # pylint: disable=g-import-not-at-top
  dims = list(proto.tile_assignment_dimensions)
  if proto.type != xla_data_pb2.OpSharding.OTHER or proto.last_tile_dims:
    return None  # replicated, maximal, manual: one device holds it all
  n = int(np.prod(dims))
  if n <= 1 or n > jax.device_count() or len(dims) != ndim + proto.replicate_on_last_tile_dim:
    return None
  if proto.tile_assignment_devices:
    tiles = np.asarray(proto.tile_assignment_devices)
  else:  # iota form
    tiles = np.arange(n).reshape(list(proto.iota_reshape_dims) or [n]).transpose(
        list(proto.iota_transpose_perm) or None).ravel()
  # Split every tile dim into prime factors (sub-axes); find the order of sub-axes in
  # which the device ids count up: that order is the mesh.
  owner, sizes = [], []
  for i, d in enumerate(dims):
    for f in _prime_factors(d):
      owner.append(i)
      sizes.append(f)
  grid = tiles.reshape(sizes) if sizes else tiles
  if len(sizes) > 8:
    return None
  for perm in itertools.permutations(range(len(sizes))):
    if np.array_equal(grid.transpose(perm).ravel(), np.arange(n)):
      break
  else:
    return None
  names = tuple(f"t{k}" for k in range(len(sizes)))
  mesh = jax.sharding.Mesh(np.asarray(jax.devices()[:n], object).reshape(
      [sizes[k] for k in perm]), tuple(names[k] for k in perm))
  spec = [tuple(names[k] for k in range(len(sizes)) if owner[k] == i) or None
          for i in range(ndim)]
  return jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec(*spec))


def _prime_factors(d: int) -> list[int]:
  out, f = [], 2
  while d > 1:
    while d % f == 0:
      out.append(f)
      d //= f
    f += 1
  return out


def _parse_sharding(node, attr: str):
  from tensorflow.compiler.xla import xla_data_pb2  # pylint: disable=g-import-not-at-top
  raw = node.attrs.get(attr, b"")
  if isinstance(raw, str):
    raw = raw.encode("utf-8")
  proto = xla_data_pb2.OpSharding()
  try:
    proto.ParseFromString(raw)
  except Exception as e:  # pylint: disable=broad-except
    raise ConversionError(f"{_where(node)}: cannot parse attr {attr!r} as an xla "
                          f"OpSharding: {e}") from e
  return proto


def _whole_value_shard(node, proto) -> bool:
  """Whether one shard of `proto` is the whole value (what one device can run)."""
  kind = proto.type
  from tensorflow.compiler.xla import xla_data_pb2  # pylint: disable=g-import-not-at-top
  if kind in (xla_data_pb2.OpSharding.REPLICATED, xla_data_pb2.OpSharding.MAXIMAL,
              xla_data_pb2.OpSharding.MANUAL):
    return True
  if kind == xla_data_pb2.OpSharding.OTHER:
    return all(t == 1 for t in proto.tile_assignment_dimensions)
  return False


_SPMD_ATTRS = {"T": None, "manual_sharding": None, "dim": None, "unspecified_dims": None}


@lowering("XlaSpmdFullToShardShape", attrs=_SPMD_ATTRS)
def full_to_shard(node):
  proto = _parse_sharding(node, "manual_sharding")
  if not _whole_value_shard(node, proto):
    raise ConversionError(
        f"{_where(node)}: attr 'manual_sharding' splits the value "
        f"(tile_assignment_dimensions {list(proto.tile_assignment_dimensions)}): its shard "
        "shape differs from the full shape, which needs XLA's SPMD partitioner over "
        "several devices; tf2jax (like TF's XLA_CPU_JIT) runs one device.")
  return lambda x: x


@lowering("XlaSpmdShardToFullShape", attrs=dict(_SPMD_ATTRS, full_shape=None))
def shard_to_full(node):
  full = node.attrs["full_shape"]

  def run(x):
    if full is None or list(full) != list(np.shape(x)):
      raise ConversionError(
          f"{_where(node)}: attr 'full_shape' {full} differs from the input shape "
          f"{list(np.shape(x))}: un-sharding needs XLA's SPMD partitioner over several "
          "devices; tf2jax (like TF's XLA_CPU_JIT) runs one device.")
    return x
  return run
