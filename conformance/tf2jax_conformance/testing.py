"""pytest helpers: the conformance tests of a plugin in a few lines.

    # tests/test_conformance.py of a plugin distribution
    from tf2jax_conformance import make_tests

    test_conformance = make_tests(provider="my-tf2jax-plugin")
"""

from __future__ import annotations

from typing import Iterable


def make_tests(provider: str | None = None, *, ops: Iterable[str] | None = None,
               dtypes: Iterable[str] | None = None, plugin=None,
               plugin_name: str | None = None):
  """A pytest test function parametrized over the cases (op, dtype) of the specs.

  provider: only the ops this plugin lowers and the specs it contributes (a
    distribution name such as "tf2jax-nn"); None runs every spec.
  plugin / plugin_name: a plugin object to register in code (with that name) while the
    cases are collected and run, for plugins not installed as distributions.
  The profile (examples per case) comes from --conformance-profile or
  TF2JAX_CONFORMANCE_PROFILE (see `tf2jax_conformance.profiles`).
  """
  import pytest

  from tf2jax_conformance import collect, profiles
  from tf2jax_conformance.harness import CaseResult, check_case

  with collect.registered(plugin, plugin_name):
    # The ci profile runs representative dtypes unless dtypes are named.
    cases = collect.cases(provider=provider, ops=ops, dtypes=dtypes,
                          representative=dtypes is None and not profiles.all_dtypes())

  if not cases:
    def test_conformance():
      pytest.fail(f"No conformance specs found for provider={provider!r} ops={ops!r}: is "
                  "the plugin loaded, and does it implement tf2jax_conformance_specs?")
    return test_conformance

  @pytest.mark.parametrize("case", cases, ids=[c.id for c in cases])
  def test_conformance(case):
    result = CaseResult(case.spec.op, case.dtype, case.spec_provider, refused=case.refused)
    try:
      with collect.registered(plugin, plugin_name):
        check_case(case, profiles.settings(), result)
    finally:
      RESULTS.append(result)
  return test_conformance


# Results of the cases run by make_tests' tests in this process (for --conformance-report).
RESULTS: list = []
