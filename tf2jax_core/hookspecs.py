"""The tf2jax plugin hooks. One name does three jobs: the pluggy project name, the
entry-point group and the hook prefix are all `tf2jax`.

A plugin is a module (or any object) with `TF2JAX_PLUGIN_API = 1` and some of these
hooks, marked with `tf2jax_core.hookimpl`. Distributions declare it under
`[project.entry-points.tf2jax]`; tests and notebooks can use `tf2jax.register_plugin`.
"""

from __future__ import annotations

import pluggy

hookspec = pluggy.HookspecMarker("tf2jax")
hookimpl = pluggy.HookimplMarker("tf2jax")


@hookspec
def tf2jax_register_ops(registry) -> None:
  """Registers op lowerings: call `registry.add(lowering)` or `registry.add_module(mod)`.

  `registry` is a `tf2jax_core.Registrar` bound to the calling plugin, so every lowering
  records its provider. Registering an op another plugin also registers is an error
  unless exactly one of them passes `override=True`.
  """


@hookspec
def tf2jax_config_options() -> list:
  """Returns the plugin's `tf2jax_core.Option`s (name, default, one-line doc)."""


@hookspec
def tf2jax_graph_rewrites() -> list:
  """Returns callables `rewrite(graph: tf2jax_core.Graph) -> None` that edit a graph
  (the main graph and every library function) in place after it is read and before
  lowerings are looked up, e.g. to recognise a jax2tf pattern as one op."""


@hookspec
def tf2jax_conformance_specs() -> list:
  """Returns conformance specs (see `tf2jax_conformance`) for the plugin's ops."""
