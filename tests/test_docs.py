"""README facts that must follow the code."""

import importlib.metadata
import pathlib
import re

import tf2jax

README = (pathlib.Path(__file__).parents[1] / "README.md").read_text()


def test_config_table_lists_every_core_flag_with_its_default():
  rows = dict(re.findall(r"^\| `(\w+)` \| `([^`]+)` \|", README, re.M))
  core = {name: o for name, o in tf2jax.config.options().items() if o.provider == "tf2jax"}
  assert set(rows) == set(core)
  for name, option in core.items():
    assert rows[name] == repr(option.default).replace("'", '"'), name


def test_plugin_table_versions_match_distributions():
  rows = dict(re.findall(r"^\| `([\w-]+)`(?: \(core\))? \| ([\d.]+) \|", README, re.M))
  assert set(rows) == {"tf2jax", "tf2jax-nn", "tf2jax-random", "tf2jax-controlflow",
                       "tf2jax-xla"}
  for dist, version in rows.items():
    assert importlib.metadata.version(dist) == version
