"""The op table: which lowering handles each op type, and who provided it."""

from __future__ import annotations

import dataclasses
import functools
import types
from typing import Any, Callable, Iterable, Mapping

import numpy as np

from tf2jax_core.errors import PluginConflictError
from tf2jax_core.lowering import Lowering, Provider


class Registrar:
  """Handed to a plugin's `tf2jax_register_ops` hook; binds lowerings to the plugin."""

  def __init__(self, provider: Provider):
    self.provider = provider
    self.lowerings: list[Lowering] = []

  def add(self, lowering: Lowering, *, override: bool = False) -> None:
    """Registers a lowering (made with `@lowering(...)`).

    `override=True` declares that it replaces another plugin's lowering of its ops.
    """
    if not isinstance(lowering, Lowering):
      raise TypeError(f"{self.provider.name}: registry.add() takes a Lowering (made with "
                      f"@tf2jax_core.lowering), got {type(lowering).__name__}.")
    self.lowerings.append(dataclasses.replace(lowering, provider=self.provider,
                                              override=override or lowering.override))

  def add_module(self, module: types.ModuleType, *, override: bool = False) -> None:
    """Registers every `Lowering` at the top level of `module` and in its `LOWERINGS`."""
    found = [v for v in vars(module).values() if isinstance(v, Lowering)]
    found += [v for v in getattr(module, "LOWERINGS", ()) if v not in found]
    for value in found:
      self.add(value, override=override)


class OpTable:
  """op type -> Lowering, built from all plugins' registrations."""

  def __init__(self, registrations: Iterable[Lowering]):
    by_op: dict[str, list[Lowering]] = {}
    for low in registrations:
      for op in low.op_types:
        by_op.setdefault(op, []).append(low)
    self._table: dict[str, Lowering] = {}
    self.conflicts: list[str] = []
    for op, lows in by_op.items():
      chosen = _choose(op, lows)
      if isinstance(chosen, str):
        self.conflicts.append(chosen)
      else:
        self._table[op] = chosen

  def raise_conflicts(self) -> None:
    if self.conflicts:
      raise PluginConflictError("\n".join(self.conflicts))

  def get(self, op: str) -> Lowering | None:
    return self._table.get(op)

  def __contains__(self, op: str) -> bool:
    return op in self._table

  def ops(self) -> dict[str, Lowering]:
    return dict(self._table)


def _choose(op: str, lows: list[Lowering]) -> Lowering | str:
  providers = {low.provider for low in lows}
  if len(lows) == 1:
    return lows[0]
  if len(providers) < len(lows):
    names = ", ".join(sorted({str(p) for p in providers}))
    return f"{op} is registered twice by the same plugin ({names})."
  overrides = [low for low in lows if low.override]
  names = " and ".join(str(low.provider) for low in lows)
  if len(overrides) == 1:
    return overrides[0]
  if not overrides:
    return (f"{op} is registered by both {names}. Uninstall one of them, or have one "
            "register it with override=True.")
  return f"{op} is registered with override=True by several plugins: {names}."


@functools.lru_cache(maxsize=None)
def op_attr_defaults(op: str) -> dict[str, Any]:
  """TF's default attr values of an op type (empty for unknown ops)."""
  from tensorflow.python.framework import op_def_registry

  from tf2jax_core.graph import decode_attr
  op_def = op_def_registry.get(op)
  if op_def is None:
    return {}
  return {a.name: decode_attr(a.default_value) for a in op_def.attr
          if a.HasField("default_value")}


def attr_problems(lowering: Lowering, op: str, attrs: Mapping[str, Any],
                  decode: Callable[[Any], Any] | None = None) -> list[tuple[str, Any, str]]:
  """(attr, value, reason) for each attr of a node that `lowering` does not support.

  Attrs starting with "_" are ignored; an attr the lowering does not list must hold TF's
  default. `decode` turns raw AttrValues into Python values, only where needed.
  """
  problems = []
  for name, raw in attrs.items():
    if name.startswith("_") or (name in lowering.attrs and lowering.attrs[name] is None):
      continue
    value = decode(raw) if decode is not None else raw
    if name not in lowering.attrs:
      defaults = op_attr_defaults(op)
      if name in defaults and _equal(defaults[name], value):
        continue
    reason = lowering.check_attr(name, value)
    if reason is not None:
      problems.append((name, value, reason))
  return problems


def _equal(a, b) -> bool:
  try:
    return bool(np.all(a == b)) if isinstance(a, np.ndarray) else a == b
  except Exception:
    return False
