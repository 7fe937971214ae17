"""Finding specs (through the plugins' `tf2jax_conformance_specs` hook) and cases."""

from __future__ import annotations

import contextlib
import dataclasses
from typing import Iterable, Iterator

from tf2jax_conformance.harness import Case
from tf2jax_conformance.spec import OpSpec, SpecError


@dataclasses.dataclass(frozen=True)
class SpecEntry:
  spec: OpSpec
  provider: str  # the plugin that contributed the spec


def registered_ops() -> dict[str, str]:
  """Every op of the op table -> the name of the plugin whose lowering handles it."""
  from tf2jax_core.plugins import manager
  return {op: low.provider.name for op, low in manager().op_table().ops().items()}


def specs() -> list[SpecEntry]:
  """Every loaded plugin's specs, with the plugin that contributed each."""
  from tf2jax_core.plugins import manager
  out = []
  for provider, spec in manager().conformance_specs():
    if not isinstance(spec, OpSpec):
      raise SpecError(f"{provider.name}'s tf2jax_conformance_specs returned "
                      f"{type(spec).__name__}, not a tf2jax_conformance.OpSpec.")
    out.append(SpecEntry(spec, provider.name))
  return out


def missing_specs() -> list[str]:
  """Registered ops without a spec, as "Op (provider)"."""
  have = {e.spec.op for e in specs()}
  return [f"{op} ({provider})" for op, provider in sorted(registered_ops().items())
          if op not in have]


def orphan_specs() -> list[str]:
  """Specs whose op no plugin registers, as "Op (spec from provider)"."""
  ops = registered_ops()
  return [f"{e.spec.op} (spec from {e.provider})" for e in specs() if e.spec.op not in ops]


def cases(provider: str | None = None, ops: Iterable[str] | None = None,
          dtypes: Iterable[str] | None = None, representative: bool = False) -> list[Case]:
  """One case per (spec, covered or refused dtype); a failing case for a broken spec.

  `provider` keeps the specs of the ops that plugin lowers, and the specs it contributes.
  `representative` keeps, of each spec's covered dtypes, those of
  `profiles.representative` (the `ci` profile's selection).
  """
  from tf2jax_conformance import profiles
  lowered_by = registered_ops()
  ops = set(ops) if ops is not None else None
  dtypes = set(dtypes) if dtypes is not None else None
  out = []
  for entry in specs():
    spec = entry.spec
    if ops is not None and spec.op not in ops:
      continue
    if provider is not None and provider not in (entry.provider, lowered_by.get(spec.op)):
      continue
    try:
      covered, _, refused = spec.resolve_dtypes()
      spec.resolve_grad_dtypes()
    except SpecError as e:
      out.append(Case(spec, entry.provider, None, error=str(e)))
      continue
    keep = profiles.representative(covered) if representative else set(covered)
    for d in covered:
      if (dtypes is None or d in dtypes) and d in keep:
        out.append(Case(spec, entry.provider, d))
    for d, reason in refused.items():
      if dtypes is None or d in dtypes:
        out.append(Case(spec, entry.provider, d, refused=reason))
  return out


@contextlib.contextmanager
def registered(plugin, name: str | None = None, version: str | None = None) -> Iterator[None]:
  """Registers a plugin object in code for the duration of a `with` block."""
  if plugin is None:
    yield
    return
  import tf2jax
  name = name or getattr(plugin, "__name__", None)
  tf2jax.register_plugin(plugin, name=name, version=version)
  try:
    yield
  finally:
    tf2jax.unregister_plugin(name)
