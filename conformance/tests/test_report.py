"""The report: JSON fields, Markdown, the SUPPORTED_OPS.md table and the command."""

import json
import os

from tf2jax_conformance import cases, report, run_cases, settings


def _results():
  return run_cases(cases(ops=["Neg"], dtypes=["int8", "float32"]), settings(max_examples=1))


def test_report_fields_and_tables():
  data = report.build(_results(), "ci", 1)
  assert data["schema_version"] == report.SCHEMA_VERSION
  neg = next(o for o in data["ops"] if o["op"] == "Neg")
  assert neg["status"] == "pass" and neg["provider"] == "tf2jax"
  assert neg["dtypes_verified"] == ["float32", "int8"]
  assert {"eager", "jit", "static", "x64", "vmap", "grad"} <= set(neg["transforms_verified"])
  assert neg["examples_run"] == 2 and neg["failures"] == []
  assert "| Neg | tf2jax | pass |" in report.markdown(data)
  rows = report.parse_supported_ops(report.supported_ops(data))
  assert rows["Neg"] == {"provider": "tf2jax", "dtypes": ["float32", "int8"],
                         "transforms": ["eager", "jit", "static", "x64", "vmap", "grad"],
                         "status": "pass"}
  # Ops that were not run are listed too, without a verdict of pass.
  assert rows["AddV2"]["status"] == "fail"


def test_failures_carry_the_minimal_example():
  results = _results()
  results[0].status, results[0].error = "fail", "eager: output: values differ"
  results[0].failing_example = "Example(x=np.array(1))"
  data = report.build(results, "ci", 1)
  neg = next(o for o in data["ops"] if o["op"] == "Neg")
  assert neg["status"] == "fail"
  assert neg["failures"][0]["minimal_failing_example"] == "Example(x=np.array(1))"
  assert "Minimal failing example" in report.markdown(data)


def test_command(tmp_path):
  out = tmp_path / "report"
  code = report.main(["--op", "Neg", "--max-examples", "1", "--out", str(out), "--quiet"])
  assert code == 0
  data = json.loads((out / "conformance.json").read_text())
  assert [o["op"] for o in data["ops"]] == ["Neg"]
  assert os.path.exists(out / "conformance.md")


def test_merge_takes_each_op_from_the_run_that_ran_it(tmp_path):
  neg = report.build(_results(), "ci", 1)
  abs_run = report.build(run_cases(cases(ops=["Abs"], dtypes=["float32"]),
                                   settings(max_examples=1)), "ci", 1)
  paths = []
  for name, data in [("a", neg), ("b", abs_run)]:
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps(data))
    paths.append(str(path))
  table = tmp_path / "SUPPORTED_OPS.md"
  report.main(["--merge", *paths, "--out", str(tmp_path / "out"),
               "--supported-ops", str(table)])
  rows = report.parse_supported_ops(table.read_text())
  assert rows["Neg"]["status"] == "pass" and rows["Abs"]["status"] == "pass"
  assert rows["Abs"]["dtypes"] == ["float32"]
  assert rows["AddV2"]["status"] == "fail"  # run by neither
