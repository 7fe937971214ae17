"""The core's built-in plugin: structure, variables, calls, math and array ops.

It registers through the same hook as any other plugin.
"""

from tf2jax_core.hookspecs import hookimpl
from tf2jax_core.ops import (array_ops, bitwise_ops, elementwise_ops, linalg_ops, logic_ops,
                             math_ops, reduction_ops, scan_segment_ops, sparse_ops, special_ops,
                             spectral_ops, structure, variable_ops)

TF2JAX_PLUGIN_API = 1


@hookimpl
def tf2jax_register_ops(registry):
  for module in (structure, math_ops, elementwise_ops, bitwise_ops, array_ops, reduction_ops,
                 logic_ops, scan_segment_ops, linalg_ops, spectral_ops, variable_ops,
                 sparse_ops, special_ops):
    registry.add_module(module)


@hookimpl
def tf2jax_graph_rewrites():
  return [math_ops.mark_jax2tf_maximum]


@hookimpl
def tf2jax_conformance_specs():
  # tf2jax-conformance is a test dependency: import it only when specs are asked for.
  from tf2jax_conformance.core_specs import specs
  return specs()
