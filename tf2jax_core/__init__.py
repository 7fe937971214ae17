"""tf2jax_core: the converter's core and the API for plugin authors.

Users import `tf2jax`; plugin authors import from here: `hookimpl`, `lowering`,
`Registrar`, `Option`, the static-value helpers `xnp` / `is_static`, dtype groups and
the typed errors.
"""

from tf2jax_core.config import Option, get_config, override_config, update_config
from tf2jax_core.errors import (BadAttr, ConversionError, DtypeMismatchError,
                                InputSpecError, MissingInputError, MissingOp, MissingRngError,
                                NodeExecutionError, PluginAPIVersionError,
                                PluginConflictError, PluginError, PluginWarning,
                                StaticInputError, UnsupportedOpsError,
                                VariablesNotSupportedError)
from tf2jax_core.graph import FuncRef, Graph, Node
from tf2jax_core.hookspecs import hookimpl, hookspec
from tf2jax_core.lowering import (COMPLEX, FLOAT, INT, NUMBER, REAL, SIGNED_INT, UNSIGNED_INT,
                                  Lowering, Provider, is_static, lowering, xnp)
from tf2jax_core.registry import Registrar
from tf2jax_core.version import PLUGIN_API_VERSION, __version__
from tf2jax_core.walker import CallContext, CompiledGraph, VariableRef
