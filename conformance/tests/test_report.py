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


def _share_that_crashes(provider, ops, profile, max_examples, jobs, index, log, start):
  """A stand-in for runner._run_share: three cases per share; share 0 dies of SIGSEGV
  in its second case, share 1 at exit."""
  import pickle
  from tf2jax_conformance.harness import CaseResult
  from tf2jax_conformance.runner import enable_fault_log
  enable_fault_log(log)
  with open(log, "ab") as f:
    for k in range(start, 3):
      op = f"Op{index}_{k}"
      pickle.dump(("start", k, op, "float32", "test"), f)
      f.flush()
      if (index, k) == (0, 1):
        _a_kernel_that_crashes()
      pickle.dump(("done", k, CaseResult(op, "float32", "test", examples=1)), f)
      f.flush()
    pickle.dump(("end", start), f)
  if index == 1:
    _a_kernel_that_crashes()


def _a_kernel_that_crashes():
  import signal
  os.kill(os.getpid(), signal.SIGSEGV)


def test_a_crashing_worker_fails_its_case_and_the_share_goes_on():
  from tf2jax_conformance.runner import run_cases_parallel
  results = run_cases_parallel(2, worker=_share_that_crashes)
  assert [r.op for r in results] == ["Op0_0", "Op1_0", "Op0_1", "Op1_1", "Op0_2", "Op1_2"]
  crashed = [r for r in results if r.status != "pass"]
  assert [r.op for r in crashed] == ["Op0_1"]
  assert "died (exit code -11)" in crashed[0].error
  # faulthandler's Python stack of the crash names where it happened
  assert "Segmentation fault" in crashed[0].error
  assert "in _a_kernel_that_crashes" in crashed[0].error
