"""`tf2jax.config`: the configuration functions as a module, as in the original tf2jax."""

from tf2jax_core.config import get_config, options, override_config, update_config

__all__ = ["get_config", "options", "override_config", "update_config"]
