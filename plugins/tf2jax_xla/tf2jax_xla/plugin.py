"""Entry point of tf2jax-xla (group `tf2jax`)."""

from tf2jax_core import Option, hookimpl

from tf2jax_xla import call_module, dot_conv, misc, slicing, sort
from tf2jax_xla import reduce_scatter
from tf2jax_xla import control_linalg

TF2JAX_PLUGIN_API = 1


@hookimpl
def tf2jax_register_ops(registry):
  registry.add_module(slicing)
  registry.add_module(call_module)
  registry.add_module(dot_conv)
  registry.add_module(misc)
  registry.add_module(sort)
  registry.add_module(reduce_scatter)
  registry.add_module(control_linalg)


@hookimpl
def tf2jax_conformance_specs():
  # tf2jax-conformance is a test dependency: import the specs only when they are asked for.
  from tf2jax_xla import specs, xla_op_specs
  from tf2jax_xla import reduce_scatter_specs
  from tf2jax_xla import control_linalg_specs
  return (specs.specs() + xla_op_specs.specs() + reduce_scatter_specs.specs()
          + control_linalg_specs.specs())


@hookimpl
def tf2jax_config_options():
  return [Option(call_module.MERGE_BATCH_OPTION, False,
                 "Fold jax.vmap into an XlaCallModule's polymorphic leading (batch) "
                 "dimension instead of mapping one example at a time; only right when its "
                 "rows are independent.")]
