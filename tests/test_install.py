"""The install: every tf2jax distribution comes from this checkout, never the index.

The package index has DeepMind's original `tf2jax` 0.3.x; our core is its successor at
0.4.0, and the one-command editable install must take the checkout's own packages.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
import json
import pathlib
import urllib.parse
import urllib.request

import pytest
from packaging.requirements import Requirement

import tf2jax

REPO_ROOT = pathlib.Path(__file__).resolve().parent.parent

# distribution -> (import package, folder of its project in the checkout)
PLUGINS = {
    "tf2jax-nn": ("tf2jax_nn", "plugins/tf2jax_nn"),
    "tf2jax-random": ("tf2jax_random", "plugins/tf2jax_random"),
    "tf2jax-controlflow": ("tf2jax_controlflow", "plugins/tf2jax_controlflow"),
    "tf2jax-xla": ("tf2jax_xla", "plugins/tf2jax_xla"),
}
PACKAGES = {
    "tf2jax": ".",
    "tf2jax_core": ".",
    "tf2jax_conformance": "conformance",
    **{package: folder for package, folder in PLUGINS.values()},
}


def _locations(module) -> list[pathlib.Path]:
  """Where a module's code lives (namespace packages have no __file__)."""
  if getattr(module, "__file__", None):
    return [pathlib.Path(module.__file__).resolve()]
  spec = importlib.util.find_spec(module.__name__)
  return [pathlib.Path(p).resolve() for p in spec.submodule_search_locations or ()
          if pathlib.Path(p).is_dir()]


@pytest.mark.parametrize("package", sorted(PACKAGES))
def test_package_is_imported_from_the_checkout(package):
  module = importlib.import_module(package)
  project = (REPO_ROOT / PACKAGES[package]).resolve()
  locations = _locations(module)
  assert locations, f"{package} has no location"
  for location in locations:
    assert location.is_relative_to(project / package), (
        f"{package} is imported from {location}, not from the checkout {project}")


def test_core_version():
  assert tf2jax.__version__ == "0.4.0"
  assert importlib.metadata.version("tf2jax") == "0.4.0"
  import tf2jax_core
  assert tf2jax_core.__version__ == tf2jax.__version__


def _distributions(name: str) -> list[importlib.metadata.Distribution]:
  norm = name.replace("_", "-").lower()
  return [d for d in importlib.metadata.distributions()
          if (d.metadata["Name"] or "").replace("_", "-").lower() == norm]


@pytest.mark.parametrize("dist", ["tf2jax", "tf2jax-conformance", *sorted(PLUGINS)])
def test_no_other_copy_is_installed(dist):
  """Every copy on the path (e.g. the index's tf2jax 0.3.x) is the checkout's."""
  found = _distributions(dist)
  assert found, f"{dist} is not installed"
  expected = "0.4.0" if dist == "tf2jax" else "0.1.0"
  assert {d.version for d in found} == {expected}
  for d in found:
    direct_url = d.read_text("direct_url.json")
    if direct_url is None:  # e.g. a build's leftover *.egg-info in the checkout
      continue
    url = json.loads(direct_url)["url"]
    assert url.startswith("file:"), f"{dist} was installed from {url}"
    path = pathlib.Path(urllib.request.url2pathname(urllib.parse.urlparse(url).path))
    assert path.resolve().is_relative_to(REPO_ROOT), f"{dist} was installed from {url}"


@pytest.mark.parametrize("dist", sorted(PLUGINS))
def test_plugin_distribution_declares_its_entry_point(dist):
  package, _ = PLUGINS[dist]
  assert importlib.metadata.version(dist) == "0.1.0"
  assert importlib.import_module(package).__version__ == "0.1.0"
  # It depends on this core (0.4.x), which the index's tf2jax 0.3.x cannot satisfy.
  core = [r for r in map(Requirement, importlib.metadata.requires(dist) or [])
          if r.name == "tf2jax"]
  assert core and "0.4.0" in core[0].specifier and "0.3.9" not in core[0].specifier
  eps = importlib.metadata.distribution(dist).entry_points.select(group="tf2jax")
  assert len(eps) == 1
  (ep,) = eps
  assert ep.value.split(":")[0].startswith(package + ".")
  plugin = ep.load()
  assert plugin.TF2JAX_PLUGIN_API == 1


def test_core_extras_name_each_plugin():
  requires = importlib.metadata.requires("tf2jax") or []
  for extra in ("nn", "random", "controlflow", "xla", "all"):
    assert any(f'extra == "{extra}"' in r for r in requires), extra
  for dist in PLUGINS:
    assert any(r.startswith(dist) and 'extra == "all"' in r for r in requires), dist


def test_all_first_party_plugins_are_loaded():
  tf2jax.reload_plugins()
  infos = {i.name: i for i in tf2jax.plugins()}
  assert infos["tf2jax"].source == "builtin"
  for dist, (package, _) in PLUGINS.items():
    info = infos[dist]
    assert info.status == "loaded", info.error
    assert info.version == "0.1.0"
    assert info.source.startswith("entry point ") and info.source.endswith(
        f"{package}.plugin")
    assert info.num_ops > 0
  assert all(i.status == "loaded" for i in infos.values())
