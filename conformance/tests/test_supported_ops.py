"""SUPPORTED_OPS.md must describe the ops registered now and the dtypes and transforms
their specs verify. This compares the file with the registry and the specs (no run)."""

import os

from tf2jax_conformance import report

PATH = os.path.join(os.path.dirname(__file__), os.pardir, os.pardir, "SUPPORTED_OPS.md")
REGENERATE = "tf2jax-conformance-report --supported-ops SUPPORTED_OPS.md"


def test_supported_ops_md_is_current():
  assert os.path.exists(PATH), f"SUPPORTED_OPS.md is missing: run `{REGENERATE}`."
  with open(PATH, encoding="utf-8") as f:
    rows = report.parse_supported_ops(f.read())
  expected = report.expected_rows()
  problems = []
  for op in sorted(set(expected) | set(rows)):
    want, row = expected.get(op), rows.get(op)
    if want is None:
      problems.append(f"{op}: listed, but no loaded plugin registers it")
      continue
    if row is None:
      problems.append(f"{op}: registered by {want['provider']}, but not listed")
      continue
    if row["provider"] != want["provider"]:
      problems.append(f"{op}: provider {row['provider']}, now {want['provider']}")
    if want["dtypes"] is None:
      if row["dtypes"] is not None:
        problems.append(f"{op}: has no spec any more")
      continue
    if row["dtypes"] is None:
      problems.append(f"{op}: has a spec now")
      continue
    for key in ("dtypes", "transforms"):
      if row[key] != want[key]:
        problems.append(f"{op}: {key} {', '.join(row[key]) or '-'}; the specs now cover "
                        f"{', '.join(want[key])}")
  assert not problems, (
      f"SUPPORTED_OPS.md is stale; regenerate it with `{REGENERATE}` (a row that still "
      "falls short afterwards is an op failing its conformance run):\n  "
      + "\n  ".join(problems))
