"""Meta-tests: every registered op has a spec, every spec an op, every spec agrees with
TF's kernel registry."""

from tf2jax_conformance import cases, missing_specs, orphan_specs


def test_every_registered_op_has_a_spec():
  missing = missing_specs()
  assert not missing, (
      f"{len(missing)} registered op(s) have no conformance spec (add one through the "
      "plugin's tf2jax_conformance_specs hook):\n  " + "\n  ".join(missing))


def test_every_spec_names_a_registered_op():
  orphans = orphan_specs()
  assert not orphans, (
      f"{len(orphans)} spec(s) check ops that no loaded plugin registers:\n  "
      + "\n  ".join(orphans))


def test_specs_agree_with_the_kernel_registry():
  broken = [c.error for c in cases() if c.error is not None]
  assert not broken, "\n".join(broken)
