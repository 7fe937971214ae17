"""Entry point of tf2jax-controlflow (group `tf2jax`)."""

from tf2jax_core import hookimpl

from tf2jax_controlflow import (functional, tensor_arrays, tensor_list_batches, tensor_lists,
                                tf1)

TF2JAX_PLUGIN_API = 1


@hookimpl
def tf2jax_register_ops(registry):
  registry.add_module(functional)
  registry.add_module(tensor_lists)
  registry.add_module(tensor_arrays)
  registry.add_module(tensor_list_batches)
  registry.add_module(tf1)


@hookimpl
def tf2jax_graph_rewrites():
  # TF1 loop frames and Switch/Merge conds become structured nodes (see tf1.py); AddNs
  # of TensorArray flows (gradients) sum the arrays (see tensor_arrays.py); Pack/Unpack
  # of TensorList handles make batches of lists (see tensor_list_batches.py).
  return [tensor_arrays.rewrite, tensor_list_batches.rewrite, tf1.rewrite]


@hookimpl
def tf2jax_conformance_specs():
  # tf2jax-conformance is a test dependency: import the specs only when they are asked for.
  from tf2jax_controlflow import specs
  return specs.specs()
