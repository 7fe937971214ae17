"""Versions of the core distribution and of the plugin API it offers."""

__version__ = "0.4.0"

# The plugin API a plugin declares as `TF2JAX_PLUGIN_API` in its plugin module.
# Bump on an incompatible change to hookspecs, the registrar or the lowering contract.
PLUGIN_API_VERSION = 1
SUPPORTED_PLUGIN_API_VERSIONS = (1,)
