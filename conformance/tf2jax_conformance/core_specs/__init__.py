"""Specs of the ops the tf2jax core registers (returned by its conformance hook)."""

from __future__ import annotations

from tf2jax_conformance.spec import OpSpec


def specs() -> list[OpSpec]:
  from tf2jax_conformance.core_specs import array_specs, math_specs, structure_specs
  return [*math_specs.SPECS, *array_specs.SPECS, *structure_specs.SPECS]
