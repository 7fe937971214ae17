"""The typed errors of tf2jax. All are `ValueError`s unless stated otherwise."""

from __future__ import annotations

import dataclasses


class ConversionError(ValueError):
  """A TensorFlow graph cannot be converted (or run) as asked."""


class InvalidGraphError(ConversionError):
  """The graph is malformed (TensorFlow would refuse it too); names the node at fault."""


class MissingInputError(InvalidGraphError):
  """A node or output refers to a node, port or function that the graph lacks."""


class GraphCycleError(InvalidGraphError):
  """Data or control edges form a cycle (outside TF1 loop frames)."""


class RecursiveFunctionError(InvalidGraphError):
  """A library function calls itself, directly or through others."""


class SizeLimitError(ConversionError):
  """A constant or static value is larger than `max_static_value_bytes` allows."""


@dataclasses.dataclass(frozen=True)
class MissingOp:
  op: str
  nodes: tuple[str, ...]  # "function/node" paths, the main graph's without a prefix
  hint: str  # what to install, or why there is no lowering


@dataclasses.dataclass(frozen=True)
class BadAttr:
  op: str
  node: str
  attr: str
  value: object
  reason: str


class UnsupportedOpsError(ConversionError):
  """Some ops of the graph (or of functions it calls) have no usable lowering.

  `missing` lists every op type without a lowering, `bad_attrs` every node whose
  attributes its lowering does not understand.
  """

  def __init__(self, what: str, missing: list[MissingOp], bad_attrs: list[BadAttr]):
    self.missing = list(missing)
    self.bad_attrs = list(bad_attrs)
    lines = [f"Cannot convert {what}:"]
    if missing:
      lines.append(f"{len(missing)} op type(s) have no lowering:")
      for m in missing:
        shown = ", ".join(repr(n) for n in m.nodes[:3])
        more = f" and {len(m.nodes) - 3} more" if len(m.nodes) > 3 else ""
        lines.append(f"  {m.op} (node {shown}{more}): {m.hint}")
    if bad_attrs:
      lines.append(f"{len(bad_attrs)} node(s) have attributes their lowering does not support:")
      for b in bad_attrs:
        lines.append(f"  {b.op} node {b.node!r}: attr {b.attr}={b.value!r}: {b.reason}")
    super().__init__("\n".join(lines))


class StaticInputError(ConversionError):
  """A lowering needs an input to be known at conversion time, and it is traced."""


class NodeExecutionError(ConversionError):
  """A lowering failed while the converted function ran; names the node."""


class DtypeMismatchError(ConversionError):
  """A node produced another dtype than TensorFlow's (e.g. 64-bit types without x64)."""


class InputSpecError(ConversionError, TypeError):
  """A call's inputs do not match the converted function's input signature."""


class MissingRngError(ConversionError):
  """The converted function uses random ops and was called without `rng`."""


class VariablesNotSupportedError(ConversionError):
  """`convert_functional` was given a function that reads or writes variables."""


class PluginError(ValueError):
  """A plugin cannot be used: conflict, incompatible API version or a broken hook."""


class PluginConflictError(PluginError):
  """Two plugins register the same op and neither declares an override."""


class PluginAPIVersionError(PluginError):
  """A plugin targets a plugin API that this core does not offer."""


class PluginWarning(UserWarning):
  """A plugin failed to load or was refused; the others keep working."""
