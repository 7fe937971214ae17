"""A third-party plugin as its author would write it: a lowering and its spec.

It lowers Floor; its test (test_plugin_authors.py) runs the conformance harness on it
with `make_tests(provider=...)`. It overrides any other Floor lowering while registered.
"""

import jax.numpy as jnp
import numpy as np

from tf2jax_core import FLOAT, hookimpl, is_static, lowering

TF2JAX_PLUGIN_API = 1
NAME = "tf2jax-example-floor"


@lowering("Floor", attrs={"T": FLOAT})
def floor(node):
  return lambda x: np.floor(x) if is_static(x) else jnp.floor(x)


@hookimpl
def tf2jax_register_ops(registry):
  registry.add(floor, override=True)


@hookimpl
def tf2jax_conformance_specs():
  # The plugin's own specs; tf2jax_conformance is imported only when they are asked for.
  from tf2jax_conformance import Example, OpSpec
  from tf2jax_conformance import strategies as cst

  def example(dtype):
    return cst.arrays(dtype, cst.shapes()).map(lambda x: Example({"x": x}))
  return [OpSpec("Floor", example)]
