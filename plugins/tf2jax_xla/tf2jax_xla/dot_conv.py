"""XlaDot, XlaDotV2, XlaEinsum, XlaConv, XlaConvV2 and XlaGather.

Their dimension numbers and precision configs are serialized xla protos in string
attrs; they are parsed with TF's `tensorflow.compiler.xla.xla_data_pb2`, imported when a
node is converted (TF is there anyway: tf2jax reads TF graphs).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from tf2jax_core import lowering
from tf2jax_core.errors import ConversionError

_INDEX = ("int32", "int64")


def _where(node) -> str:
  return f"{node.op} node {node.path!r}"


def _proto(node, attr: str, cls_name: str):
  from tensorflow.compiler.xla import xla_data_pb2  # pylint: disable=g-import-not-at-top
  raw = node.attrs.get(attr, b"")
  if isinstance(raw, str):  # tf2jax decodes string attrs as UTF-8 when they are
    raw = raw.encode("utf-8")
  proto = getattr(xla_data_pb2, cls_name)()
  try:
    proto.ParseFromString(raw or b"")
  except Exception as e:  # pylint: disable=broad-except
    raise ConversionError(f"{_where(node)}: cannot parse attr {attr!r} as an xla "
                          f"{cls_name}: {e}") from e
  return proto


_PRECISIONS = {0: jax.lax.Precision.DEFAULT, 1: jax.lax.Precision.HIGH,
               2: jax.lax.Precision.HIGHEST}


def _precision(node):
  proto = _proto(node, "precision_config", "PrecisionConfig")
  values = list(proto.operand_precision)
  if not values:
    return None
  if len(values) != 2 or any(v not in _PRECISIONS for v in values):
    raise ConversionError(f"{_where(node)}: attr 'precision_config' has operand "
                          f"precisions {values}; supported: two of DEFAULT, HIGH, HIGHEST.")
  return tuple(_PRECISIONS[v] for v in values)


def _check_dims(node, what, dims, rank, shape):
  for d in dims:
    if not 0 <= d < rank:
      raise ConversionError(f"{_where(node)}: attr 'dimension_numbers' has {what} "
                            f"dimension {d} out of range for an operand of shape "
                            f"{list(shape)}.")
  if len(set(dims)) != len(dims):
    raise ConversionError(f"{_where(node)}: attr 'dimension_numbers' repeats a {what} "
                          f"dimension in {list(dims)} (operand shape {list(shape)}).")


def _dot(node, preferred):
  proto = _proto(node, "dimension_numbers", "DotDimensionNumbers")
  lc, rc = tuple(proto.lhs_contracting_dimensions), tuple(proto.rhs_contracting_dimensions)
  lb, rb = tuple(proto.lhs_batch_dimensions), tuple(proto.rhs_batch_dimensions)
  precision = _precision(node)

  def run(lhs, rhs):
    ls, rs = np.shape(lhs), np.shape(rhs)
    _check_dims(node, "lhs contracting/batch", lc + lb, len(ls), ls)
    _check_dims(node, "rhs contracting/batch", rc + rb, len(rs), rs)
    for kind, a, b in (("contracting", lc, rc), ("batch", lb, rb)):
      if len(a) != len(b) or any(ls[i] != rs[j] for i, j in zip(a, b)):
        raise ConversionError(
            f"{_where(node)}: the {kind} dimensions {list(a)} of lhs (shape {list(ls)}) "
            f"and {list(b)} of rhs (shape {list(rs)}) do not match.")
    return jax.lax.dot_general(lhs, rhs, ((lc, rc), (lb, rb)), precision=precision,
                               preferred_element_type=preferred)
  return run


_DOT_ATTRS = {"dimension_numbers": None, "precision_config": None}


@lowering("XlaDot", attrs=dict(_DOT_ATTRS, T=None))
def dot(node):
  return _dot(node, node.attrs["T"])


@lowering("XlaDotV2", attrs=dict(_DOT_ATTRS, LhsT=None, RhsT=None,
                                 preferred_element_type=None))
def dot_v2(node):
  return _dot(node, node.attrs["preferred_element_type"])


@lowering("XlaEinsum", attrs={"T": None, "equation": None})
def einsum(node):
  equation = node.attrs["equation"]
  if "->" not in equation or equation.count(",") != 1:
    raise ConversionError(f"{_where(node)}: attr 'equation' {equation!r} must have two "
                          "operands and an explicit output ('ab,bc->ac').")
  dtype = node.attrs["T"]
  return lambda a, b: jnp.einsum(equation, a, b, preferred_element_type=dtype)


def _conv(node, preferred, batch_group_count):
  proto = _proto(node, "dimension_numbers", "ConvolutionDimensionNumbers")
  lhs_spec = (proto.input_batch_dimension, proto.input_feature_dimension,
              *proto.input_spatial_dimensions)
  rhs_spec = (proto.kernel_output_feature_dimension, proto.kernel_input_feature_dimension,
              *proto.kernel_spatial_dimensions)
  out_spec = (proto.output_batch_dimension, proto.output_feature_dimension,
              *proto.output_spatial_dimensions)
  precision = _precision(node)
  n = len(proto.input_spatial_dimensions)
  if len(proto.kernel_spatial_dimensions) != n or len(proto.output_spatial_dimensions) != n:
    raise ConversionError(f"{_where(node)}: attr 'dimension_numbers' has "
                          f"{n} input, {len(proto.kernel_spatial_dimensions)} kernel and "
                          f"{len(proto.output_spatial_dimensions)} output spatial dims.")

  def ints(name, value, shape):
    value = np.asarray(value)
    if value.shape != shape:
      raise ConversionError(f"{_where(node)}: input {name!r} must have shape {list(shape)} "
                            f"({n} spatial dims), got {list(value.shape)}.")
    return [int(v) for v in np.reshape(value, -1)]

  def run(lhs, rhs, strides, padding, lhs_dilation, rhs_dilation, groups):
    strides = ints("window_strides", strides, (n,))
    pads = ints("padding", padding, (n, 2))
    lhs_dilation = ints("lhs_dilation", lhs_dilation, (n,))
    rhs_dilation = ints("rhs_dilation", rhs_dilation, (n,))
    groups = ints("feature_group_count", groups, ())[0]
    ls, rs = np.shape(lhs), np.shape(rhs)
    for what, spec, shape in (("lhs", lhs_spec, ls), ("rhs", rhs_spec, rs),
                              ("output", out_spec, ls)):
      if len(shape) != n + 2 or sorted(spec) != list(range(n + 2)):
        raise ConversionError(
            f"{_where(node)}: attr 'dimension_numbers' gives {what} dims {list(spec)}, "
            f"not a permutation of the {n + 2} dims of lhs (shape {list(ls)}) and rhs "
            f"(shape {list(rs)}).")
    numbers = jax.lax.ConvDimensionNumbers(lhs_spec, rhs_spec, out_spec)
    return jax.lax.conv_general_dilated(
        lhs, rhs, window_strides=strides,
        padding=[(pads[2 * i], pads[2 * i + 1]) for i in range(n)],
        lhs_dilation=lhs_dilation, rhs_dilation=rhs_dilation, dimension_numbers=numbers,
        feature_group_count=groups, batch_group_count=batch_group_count,
        precision=precision, preferred_element_type=preferred)
  return run


_CONV_ATTRS = {"Tindices": _INDEX, "dimension_numbers": None, "precision_config": None}


@lowering("XlaConv", attrs=dict(_CONV_ATTRS, T=None), static_inputs=(2, 3, 4, 5, 6))
def conv(node):
  return _conv(node, node.attrs["T"], 1)


@lowering("XlaConvV2", attrs=dict(_CONV_ATTRS, LhsT=None, RhsT=None,
                                  preferred_element_type=None, batch_group_count=None),
          static_inputs=(2, 3, 4, 5, 6))
def conv_v2(node):
  return _conv(node, node.attrs["preferred_element_type"],
               node.attrs.get("batch_group_count", 1))


@lowering("XlaGather", attrs={"T": None, "Tindices": _INDEX, "dimension_numbers": None,
                              "indices_are_sorted": None}, static_inputs=(2,))
def gather(node):
  proto = _proto(node, "dimension_numbers", "GatherDimensionNumbers")
  offset = tuple(proto.offset_dims)
  collapsed = tuple(proto.collapsed_slice_dims)
  start_map = tuple(proto.start_index_map)
  operand_batching = tuple(proto.operand_batching_dims)
  indices_batching = tuple(proto.start_indices_batching_dims)
  ivd = proto.index_vector_dim

  def run(operand, indices, slice_sizes):
    sizes = tuple(int(s) for s in np.reshape(slice_sizes, -1))
    shape, ishape = np.shape(operand), np.shape(indices)
    if len(sizes) != len(shape):
      raise ConversionError(f"{_where(node)}: input 'slice_sizes' has {len(sizes)} "
                            f"entries for an operand of shape {list(shape)}.")
    if not 0 <= ivd <= len(ishape):
      raise ConversionError(f"{_where(node)}: attr 'dimension_numbers' has index_vector_dim "
                            f"{ivd}, out of range for start_indices of shape {list(ishape)}.")
    batching = indices_batching
    if ivd == len(ishape):
      indices = indices[..., None] if not is_static_value(indices) else np.expand_dims(
          indices, -1)
    elif ivd != len(ishape) - 1:
      indices = jnp.moveaxis(indices, ivd, -1)
      batching = tuple(d - 1 if d > ivd else d for d in batching)
    if np.shape(indices)[-1] != len(start_map):
      raise ConversionError(
          f"{_where(node)}: start_indices of shape {list(ishape)} have index vectors of "
          f"{np.shape(indices)[-1]} entries (index_vector_dim {ivd}) for a start_index_map "
          f"of {len(start_map)}.")
    numbers = jax.lax.GatherDimensionNumbers(
        offset_dims=offset, collapsed_slice_dims=collapsed, start_index_map=start_map,
        operand_batching_dims=operand_batching, start_indices_batching_dims=batching)
    return jax.lax.gather(operand, indices, numbers, sizes, indices_are_sorted=False,
                          mode=jax.lax.GatherScatterMode.CLIP)
  return run


def is_static_value(x) -> bool:
  return isinstance(x, (np.ndarray, np.generic))
