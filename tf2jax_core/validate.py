"""The validation pass run on every graph before any lowering: what TF would refuse.

It checks edges (missing nodes or ports), arity and dtypes of inputs against TF's op
definitions, required attrs and calls to missing functions, and fills each node's
`output_dtypes`. Errors are `InvalidGraphError`s naming the node, attr or edge at fault.
"""

from __future__ import annotations

import numpy as np

from tf2jax_core import dtypes
from tf2jax_core.errors import InvalidGraphError, MissingInputError
from tf2jax_core.graph import Graph, Library, Node, infer_output_dtypes, referenced_functions


def _op_def(op: str):
  from tensorflow.python.framework import op_def_registry
  return op_def_registry.get(op)


def _expected_inputs(node: Node, op_def) -> list | None:
  """TF's dtypes of the node's data inputs (None where any type fits)."""
  out = []
  for arg in op_def.input_arg:
    if arg.type_list_attr:
      types = node.attrs.get(arg.type_list_attr)
      if not isinstance(types, list):
        return None
      out.extend(types)
      continue
    dtype = dtypes.from_enum(arg.type) if arg.type else node.attrs.get(arg.type_attr)
    if arg.is_ref:
      dtype = None
    count = node.attrs.get(arg.number_attr, 1) if arg.number_attr else 1
    if not isinstance(count, int) or count < 0:
      raise InvalidGraphError(
          f"{node.op} node {node.path!r}: attr {arg.number_attr}={count!r} is not a count.")
    out.extend([dtype] * count)
  return out


def validate_graph(graph: Graph, library: Library) -> None:
  nodes = graph.nodes
  for node in nodes.values():
    for src in [n for n, _ in node.inputs] + node.control_inputs:
      if src not in nodes:
        raise MissingInputError(
            f"{node.op} node {node.path!r} has input {src!r}, which is not in the graph "
            f"{graph.name or '(main)'}.")
    for fname in referenced_functions(node):
      if fname not in library:
        raise MissingInputError(
            f"{node.op} node {node.path!r} calls function {fname!r}, which the library lacks.")
    op_def = None if node.op in library else _op_def(node.op)
    if op_def is not None:
      for attr in op_def.attr:
        if attr.name not in node.attrs and not attr.HasField("default_value"):
          raise InvalidGraphError(
              f"{node.op} node {node.path!r} lacks the required attr {attr.name!r}.")
    node.output_dtypes = infer_output_dtypes(node, library)
  for node in nodes.values():
    for i, (src, port) in enumerate(node.inputs):
      produced = nodes[src].output_dtypes
      if produced is not None and port >= len(produced):
        raise MissingInputError(
            f"{node.op} node {node.path!r} reads output {port} of {src!r}, which has "
            f"{len(produced)} output(s).")
    op_def = None if node.op in library else _op_def(node.op)
    if op_def is None:
      continue
    expected = _expected_inputs(node, op_def)
    if expected is None:
      continue
    if len(expected) != len(node.inputs):
      raise InvalidGraphError(
          f"{node.op} node {node.path!r} has {len(node.inputs)} data inputs; its op "
          f"definition and attrs call for {len(expected)}.")
    for i, ((src, port), want) in enumerate(zip(node.inputs, expected)):
      produced = nodes[src].output_dtypes
      got = produced[port] if produced is not None else None
      if _known(want) and _known(got) and want != got:
        raise InvalidGraphError(
            f"{node.op} node {node.path!r}: input {i} ({src}:{port}) is "
            f"{dtypes.name(got)}, but the op expects {dtypes.name(want)}.")


def _known(dtype) -> bool:
  return isinstance(dtype, (np.dtype, str))
