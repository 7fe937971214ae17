"""tf2jax: convert TensorFlow functions and SavedModels into JAX functions.

    jax_fn, params = tf2jax.convert(tf_fn, example_x)
    outputs, new_params = jax_fn(params, x)
"""

from tf2jax import config
from tf2jax_core.api import (AnnotatedFunction, Variable, convert, convert_from_restored,
                             convert_functional, convert_functional_from_restored,
                             convert_graph_def, convert_v1_saved_model)
from tf2jax_core.config import get_config, override_config, update_config
from tf2jax_core.errors import (ConversionError, DtypeMismatchError, GraphCycleError,
                                InputSpecError, InvalidGraphError, MissingInputError,
                                MissingRngError, NodeExecutionError, PluginAPIVersionError,
                                PluginConflictError, PluginError, RecursiveFunctionError,
                                SizeLimitError, StaticInputError, UnsupportedOpsError,
                                VariablesNotSupportedError)
from tf2jax_core.plugins import PluginInfo
from tf2jax_core.version import __version__


def plugins() -> list[PluginInfo]:
  """Plugins found: name, version, source, status, ops provided and load errors."""
  from tf2jax_core.plugins import manager
  return manager().infos()


def register_plugin(plugin, name: str | None = None, version: str | None = None) -> None:
  """Registers a plugin object (a module with hook implementations) in code."""
  from tf2jax_core.plugins import manager
  manager().register(plugin, name, version)


def unregister_plugin(name: str) -> None:
  """Removes a plugin registered with `register_plugin`."""
  from tf2jax_core.plugins import manager
  manager().unregister(name)


def reload_plugins() -> None:
  """Finds installed plugins again (e.g. after `pip install` in a running session)."""
  from tf2jax_core.plugins import manager
  manager().reload()


__all__ = [
    "AnnotatedFunction", "ConversionError", "DtypeMismatchError", "GraphCycleError",
    "InputSpecError", "InvalidGraphError", "RecursiveFunctionError", "SizeLimitError",
    "MissingInputError", "MissingRngError", "NodeExecutionError", "PluginAPIVersionError",
    "PluginConflictError", "PluginError", "PluginInfo", "StaticInputError",
    "UnsupportedOpsError", "Variable", "VariablesNotSupportedError", "__version__", "config",
    "convert", "convert_from_restored", "convert_functional", "convert_graph_def",
    "convert_functional_from_restored", "convert_v1_saved_model", "get_config", "override_config", "plugins",
    "register_plugin", "reload_plugins", "unregister_plugin", "update_config",
]
