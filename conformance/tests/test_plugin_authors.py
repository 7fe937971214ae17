"""What a plugin author writes to run the conformance harness on their plugin's ops.

An installed plugin only needs `test_conformance = make_tests(provider="my-dist")`; this
example plugin is not installed, so it is also registered in code while its cases run.
"""

import tf2jax_example_plugin as plugin

from tf2jax_conformance import make_tests

test_example_plugin = make_tests(provider=plugin.NAME, plugin=plugin, plugin_name=plugin.NAME)
