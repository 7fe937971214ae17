"""README facts that must follow the code."""

import importlib.metadata
import pathlib
import re

import tf2jax

README = (pathlib.Path(__file__).parents[1] / "README.md").read_text()


def test_config_table_lists_every_flag_with_its_default():
  # Core flags, and the first-party plugins' flags (their rows name the plugin).
  rows = dict(re.findall(r"^\| `(\w+)` \| `([^`]+)` \|", README, re.M))
  options = tf2jax.config.options()
  assert set(rows) == set(options)
  for name, option in options.items():
    assert rows[name] == repr(option.default).replace("'", '"'), name
    if option.provider != "tf2jax":
      assert re.search(rf"^\| `{name}` \|.*\| \({option.provider}\)", README, re.M), name


def test_plugin_table_versions_match_distributions():
  rows = dict(re.findall(r"^\| `([\w-]+)`(?: \(core\))? \| ([\d.]+) \|", README, re.M))
  assert set(rows) == {"tf2jax", "tf2jax-nn", "tf2jax-random", "tf2jax-controlflow",
                       "tf2jax-xla"}
  for dist, version in rows.items():
    assert importlib.metadata.version(dist) == version
