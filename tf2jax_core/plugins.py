"""Finding, checking and loading plugins; building the op table from them.

Plugins come from three places, in this order: the core's built-in plugin
(`tf2jax_core.ops`), the `tf2jax` entry-point group of installed distributions, and
objects registered in code with `register_plugin`. Set TF2JAX_DISABLE_PLUGIN_AUTOLOAD=1
to skip entry points, or TF2JAX_PLUGINS=name,name to load only those (entry-point or
distribution names). A plugin that fails to load or is refused is reported by
`plugin_infos()` and in missing-op errors; the others keep working.
"""

from __future__ import annotations

import dataclasses
import importlib
import importlib.metadata
import json
import os
import threading
import warnings
from typing import Any

import pluggy

from tf2jax_core import config as config_lib
from tf2jax_core import hookspecs
from tf2jax_core.errors import PluginAPIVersionError, PluginWarning
from tf2jax_core.lowering import Lowering, Provider
from tf2jax_core.registry import OpTable, Registrar
from tf2jax_core.version import SUPPORTED_PLUGIN_API_VERSIONS, __version__

ENTRY_POINT_GROUP = "tf2jax"
AUTOLOAD_ENV = "TF2JAX_DISABLE_PLUGIN_AUTOLOAD"
SELECT_ENV = "TF2JAX_PLUGINS"
CORE_PROVIDER = Provider("tf2jax", __version__)

# First-party packages: catalog package name -> (distribution, extra).
FIRST_PARTY = {
    "nn": ("tf2jax-nn", "nn"),
    "random": ("tf2jax-random", "random"),
    "controlflow": ("tf2jax-controlflow", "controlflow"),
    "xla": ("tf2jax-xla", "xla"),
}


@dataclasses.dataclass
class PluginInfo:
  """One plugin as `tf2jax.plugins()` reports it."""

  name: str
  version: str
  source: str  # "builtin", "entry point NAME = MODULE" or "registered in code"
  status: str  # "loaded", "failed" or "refused"
  ops: list[str] = dataclasses.field(default_factory=list)
  error: str | None = None

  @property
  def num_ops(self) -> int:
    return len(self.ops)


@dataclasses.dataclass
class _Candidate:
  provider: Provider
  source: str
  load: Any  # () -> plugin object


class PluginManager:
  """Loads plugins once, lazily, and answers which lowering handles an op."""

  def __init__(self):
    self._lock = threading.RLock()
    self._in_code: list[_Candidate] = []
    self._reset()

  def _reset(self) -> None:
    self._loaded = False
    self._pm: pluggy.PluginManager | None = None
    self._infos: list[PluginInfo] = []
    self._lowerings: list[Lowering] = []
    self._rewrites: list[tuple[Provider, Any]] = []
    self._plugins: dict[str, tuple[Provider, Any]] = {}
    self._table: OpTable | None = None

  # Loading -------------------------------------------------------------------

  def ensure_loaded(self) -> None:
    with self._lock:
      if not self._loaded:
        self._load()

  def reload(self) -> None:
    """Forgets loaded plugins and finds them again (e.g. after installing one)."""
    with self._lock:
      self._reset()
      importlib.invalidate_caches()
      self._load()

  def register(self, plugin: Any, name: str | None = None, version: str | None = None) -> None:
    """Registers a plugin object in code (tests, notebooks) and reloads."""
    name = name or getattr(plugin, "__name__", None) or type(plugin).__name__
    version = version or str(getattr(plugin, "__version__", "0"))
    with self._lock:
      self._in_code = [c for c in self._in_code if c.provider.name != name]
      self._in_code.append(_Candidate(Provider(name, version), "registered in code",
                                      lambda: plugin))
      self.reload()

  def unregister(self, name: str) -> None:
    """Removes a plugin registered in code and reloads."""
    with self._lock:
      self._in_code = [c for c in self._in_code if c.provider.name != name]
      self.reload()

  def _candidates(self) -> list[_Candidate]:
    builtin = _Candidate(CORE_PROVIDER, "builtin",
                         lambda: importlib.import_module("tf2jax_core.ops"))
    out = [builtin]
    if os.environ.get(AUTOLOAD_ENV, "").strip() not in ("", "0", "false", "False"):
      return out + self._in_code
    selected = {s.strip() for s in os.environ.get(SELECT_ENV, "").split(",") if s.strip()}
    seen = set()
    eps = sorted(importlib.metadata.entry_points(group=ENTRY_POINT_GROUP),
                 key=lambda ep: ep.name)
    for ep in eps:
      dist = getattr(ep, "dist", None)
      dist_name = dist.name if dist is not None else ep.name
      version = dist.version if dist is not None else "0"
      if (dist_name, ep.value) in seen:
        continue
      seen.add((dist_name, ep.value))
      if selected and ep.name not in selected and dist_name not in selected:
        continue
      out.append(_Candidate(Provider(dist_name, version),
                            f"entry point {ep.name} = {ep.value}", ep.load))
    return out + self._in_code

  def _load(self) -> None:
    pm = pluggy.PluginManager(ENTRY_POINT_GROUP)
    pm.add_hookspecs(hookspecs)
    self._pm = pm
    for cand in self._candidates():
      info = PluginInfo(cand.provider.name, cand.provider.version, cand.source, "loaded")
      self._infos.append(info)
      try:
        plugin = cand.load()
      except Exception as e:  # a broken plugin must not break the others
        info.status, info.error = "failed", f"import failed: {type(e).__name__}: {e}"
        continue
      try:
        _check_api_version(cand.provider, plugin)
      except PluginAPIVersionError as e:
        info.status, info.error = "refused", str(e)
        continue
      try:
        self._activate(pm, cand.provider, plugin, info)
      except Exception as e:
        if pm.is_registered(plugin):
          pm.unregister(plugin)
        info.status, info.error = "failed", f"{type(e).__name__}: {e}"
    self._table = OpTable(self._lowerings)
    self._loaded = True
    for info in self._infos:
      if info.status != "loaded":
        warnings.warn(f"tf2jax plugin {info.name} {info.version} {info.status}: {info.error}",
                      PluginWarning, stacklevel=3)

  def _activate(self, pm, provider: Provider, plugin: Any, info: PluginInfo) -> None:
    # A distribution may declare several entry points: each needs its own pluggy name.
    pm_name = provider.name
    if pm.has_plugin(pm_name):
      pm_name = f"{provider.name} ({info.source})"
    pm.register(plugin, name=pm_name)
    pm.check_pending()  # hook implementations without a spec
    registrar = Registrar(provider)
    options, rewrites = [], []
    for impl in pm.hook.tf2jax_register_ops.get_hookimpls():
      if impl.plugin is plugin:
        impl.function(registry=registrar)
    for impl in pm.hook.tf2jax_config_options.get_hookimpls():
      if impl.plugin is plugin:
        options.extend(impl.function() or [])
    for impl in pm.hook.tf2jax_graph_rewrites.get_hookimpls():
      if impl.plugin is plugin:
        rewrites.extend(impl.function() or [])
    for option in options:
      config_lib.define_option(dataclasses.replace(option, provider=provider.name))
    self._lowerings.extend(registrar.lowerings)
    self._rewrites.extend((provider, r) for r in rewrites)
    self._plugins[pm_name] = (provider, plugin)
    info.ops = sorted({op for low in registrar.lowerings for op in low.op_types})

  # Queries -------------------------------------------------------------------

  def op_table(self, raise_conflicts: bool = True) -> OpTable:
    """The op table; raises `PluginConflictError` if two plugins claim one op."""
    self.ensure_loaded()
    if raise_conflicts:
      self._table.raise_conflicts()
    return self._table

  def infos(self) -> list[PluginInfo]:
    self.ensure_loaded()
    infos = [dataclasses.replace(i, ops=list(i.ops)) for i in self._infos]
    for info in infos:  # ops lost to another plugin's override do not count
      info.ops = [op for op in info.ops  # contested ops (no winner) count for both
                  if (low := self._table.get(op)) is None
                  or low.provider.name == info.name]
    return infos

  def conflicts(self) -> list[str]:
    self.ensure_loaded()
    return list(self._table.conflicts)

  def graph_rewrites(self) -> list:
    self.ensure_loaded()
    return [r for _, r in self._rewrites]

  def conformance_specs(self) -> list[tuple[Provider, Any]]:
    """Every loaded plugin's conformance specs with their provider."""
    self.ensure_loaded()
    out = []
    for impl in self._pm.hook.tf2jax_conformance_specs.get_hookimpls():
      provider = self._plugins[impl.plugin_name][0]
      out.extend((provider, spec) for spec in impl.function() or [])
    return out

  def install_hint(self, op: str) -> str:
    """What to do to get a lowering for `op`."""
    package = catalog().get(op, [None])[0]
    if package is None:
      return "no known plugin provides it"
    if package == "core":
      return "listed for the tf2jax core but not lowered yet"
    dist, extra = FIRST_PARTY[package]
    for info in self._infos:
      if info.name == dist:
        if info.status != "loaded":
          return f"{dist} is installed but {info.status}: {info.error}"
        return f"{dist} {info.version} is loaded but does not lower it yet"
    if _installed(dist):
      return (f"provided by {dist}, which is installed but not loaded "
              f"(check {AUTOLOAD_ENV} / {SELECT_ENV})")
    return f"provided by {dist}: pip install tf2jax[{extra}]"


def _installed(dist: str) -> bool:
  try:
    importlib.metadata.distribution(dist)
    return True
  except importlib.metadata.PackageNotFoundError:
    return False


def _check_api_version(provider: Provider, plugin: Any) -> None:
  fits = ", ".join(str(v) for v in SUPPORTED_PLUGIN_API_VERSIONS)
  api = getattr(plugin, "TF2JAX_PLUGIN_API", None)
  if api is None:
    raise PluginAPIVersionError(
        f"plugin {provider} does not declare TF2JAX_PLUGIN_API; tf2jax {__version__} "
        f"loads plugins for plugin API {fits}.")
  if api not in SUPPORTED_PLUGIN_API_VERSIONS:
    raise PluginAPIVersionError(
        f"plugin {provider} targets plugin API {api}, but tf2jax {__version__} supports "
        f"plugin API {fits}: install a version of {provider.name} built for API {fits}, "
        "or a tf2jax that supports its API.")


_catalog: dict | None = None


def catalog() -> dict[str, list]:
  """First-party op catalog: op -> [package, tier] ("core", "nn", ...)."""
  global _catalog
  if _catalog is None:
    path = os.path.join(os.path.dirname(__file__), "catalog.json")
    with open(path, encoding="utf-8") as f:
      _catalog = json.load(f)
  return _catalog


_manager = PluginManager()


def manager() -> PluginManager:
  """The process-wide plugin manager."""
  return _manager
