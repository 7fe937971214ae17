"""Specs of the ops the tf2jax core registers (returned by its conformance hook)."""

from __future__ import annotations

from tf2jax_conformance.spec import OpSpec


def specs() -> list[OpSpec]:
  from tf2jax_conformance.core_specs import (array_manipulation_specs, grad_kernel_specs,
                                             linalg_specs, math_specs, reduction_logic_specs,
                                             scan_segment_specs, sparse_specs, special_specs,
                                             spectral_specs, structure_specs, variable_specs)
  out = [*math_specs.SPECS, *array_manipulation_specs.specs(), *structure_specs.SPECS,
         *reduction_logic_specs.SPECS, *special_specs.SPECS, *scan_segment_specs.SPECS,
         *linalg_specs.specs(), *spectral_specs.specs(), *variable_specs.specs(),
         *sparse_specs.specs(), *grad_kernel_specs.specs()]
  from tf2jax_conformance.core_specs import ref_sparse_specs
  out += ref_sparse_specs.specs()
  from tf2jax_conformance.core_specs import legacy_specs
  out += legacy_specs.specs()
  return out
