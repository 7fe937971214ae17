"""The conformance report: JSON and Markdown per op, and SUPPORTED_OPS.md.

    tf2jax-conformance-report [--profile ci|full|thorough] [--out report] [--jobs N]
                              [--supported-ops SUPPORTED_OPS.md] [--provider NAME] [--op OP]
    tf2jax-conformance-report --merge A.json B.json ... [--supported-ops SUPPORTED_OPS.md]

Runs the specs of every loaded plugin (or the selected ones) and writes
`OUT/conformance.json` (schema below) and `OUT/conformance.md`. Exit code: 0 when every
op passes, 1 when some op fails or has no spec, 2 on a usage error.

JSON schema (version 2): {"schema_version", "profile", "max_examples", "versions",
"summary": {"ops", "pass", "fail"}, "ops": [{"op", "provider", "provider_version",
"spec_providers", "status", "dtypes_verified", "dtypes_failed", "dtypes_uncompared",
"dtypes_skipped", "dtypes_refused", "transforms_verified", "examples_run", "seconds", "failures":
[{"dtype", "error", "minimal_failing_example"}], "notes"}], "orphan_specs"}.
`dtypes_uncompared` are dtypes whose case passed only because TF raised on every example
(so did tf2jax): nothing was compared, so they are not listed as verified.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from typing import Iterable

from tf2jax_conformance import dtypes as D

SCHEMA_VERSION = 2
TRANSFORM_ORDER = ("eager", "jit", "static", "x64", "vmap", "grad")
SUPPORTED_OPS_HEADER = "| Op | Provider | Dtypes verified | Transforms | Status |"
NO_SPEC = "no spec"


def _order_dtypes(names: Iterable[str]) -> list[str]:
  order = {d: i for i, d in enumerate(D.ALL)}
  return sorted(set(names), key=lambda d: (order.get(d, len(order)), d))


def _order_transforms(names: Iterable[str]) -> list[str]:
  order = {t: i for i, t in enumerate(TRANSFORM_ORDER)}
  return sorted(set(names) - {"refused"}, key=lambda t: (order.get(t, len(order)), t))


def expected_rows() -> dict[str, dict]:
  """What SUPPORTED_OPS.md says for every registered op, from the specs alone (no run):
  op -> {"provider", "dtypes", "transforms"} (dtypes/transforms None without a spec)."""
  from tf2jax_conformance import collect
  from tf2jax_conformance.harness import case_transforms
  from tf2jax_core.plugins import manager
  table = manager().op_table().ops()
  by_op: dict[str, list] = {}
  for entry in collect.specs():
    by_op.setdefault(entry.spec.op, []).append(entry.spec)
  rows = {}
  for op, low in table.items():
    dtypes, transforms = set(), set()
    for spec in by_op.get(op, []):
      covered = spec.resolve_dtypes()[0]
      dtypes.update(covered)
      for d in covered:
        transforms.update(case_transforms(spec, d))
    has = op in by_op
    rows[op] = {"provider": low.provider.name,
                "dtypes": _order_dtypes(dtypes) if has else None,
                "transforms": _order_transforms(transforms) if has else None}
  return rows


def build(results, profile: str, max_examples: int) -> dict:
  """The JSON report of a run (`results`: CaseResults of `run_cases`)."""
  import jax
  import tensorflow as tf

  import tf2jax
  from tf2jax_conformance import collect
  from tf2jax_core.plugins import manager
  table = manager().op_table().ops()
  specs_by_op: dict[str, list] = {}
  for entry in collect.specs():
    specs_by_op.setdefault(entry.spec.op, []).append(entry)
  results_by_op: dict[str, list] = {}
  for r in results:
    results_by_op.setdefault(r.op, []).append(r)
  ops = []
  for op in sorted(set(table) | set(results_by_op)):
    low = table.get(op)
    entries = specs_by_op.get(op, [])
    rs = results_by_op.get(op, [])
    passed = [r for r in rs if r.status == "pass" and r.refused is None and r.dtype]
    verified = [r.dtype for r in passed if r.compared]
    uncompared = [r.dtype for r in passed if not r.compared]
    failed = [r.dtype or "spec" for r in rs if r.status != "pass"]
    skipped, refused, notes = {}, {}, []
    for e in entries:
      try:
        _, sk, rf = e.spec.resolve_dtypes()
        skipped.update(sk)
        refused.update(rf)
      except Exception:
        pass
      if e.spec.notes:
        notes.append(e.spec.notes)
    if not entries:
      status = NO_SPEC
    elif not rs:
      status = "not run"
    else:
      status = "pass" if not failed else "fail"
    ops.append({
        "op": op,
        "provider": low.provider.name if low else None,
        "provider_version": low.provider.version if low else None,
        "spec_providers": sorted({e.provider for e in entries}),
        "status": status,
        "dtypes_verified": _order_dtypes(verified),
        "dtypes_failed": _order_dtypes(failed),
        "dtypes_uncompared": _order_dtypes(uncompared),
        "dtypes_skipped": dict(sorted(skipped.items())),
        "dtypes_refused": {d: refused[d] for d in _order_dtypes(refused)},
        "transforms_verified": _order_transforms(
            t for r in rs if r.status == "pass" and r.compared for t in r.transforms),
        "examples_run": sum(r.examples for r in rs),
        "seconds": round(sum(r.seconds for r in rs), 2),
        "failures": [{"dtype": r.dtype, "error": r.error,
                      "minimal_failing_example": r.failing_example}
                     for r in rs if r.status != "pass"],
        "notes": " ".join(notes),
    })
  n_pass = sum(o["status"] == "pass" for o in ops)
  return {
      "schema_version": SCHEMA_VERSION,
      "profile": profile,
      "max_examples": max_examples,
      "versions": {"tf2jax": tf2jax.__version__, "tensorflow": tf.__version__,
                   "jax": jax.__version__},
      "summary": {"ops": len(ops), "pass": n_pass, "fail": len(ops) - n_pass},
      "ops": ops,
      "orphan_specs": collect.orphan_specs(),
  }


def merge(reports: list[dict]) -> dict:
  """One report of the ops registered now from several runs (e.g. one per plugin, run
  side by side): each op's record comes from the last report that ran it."""
  profiles_run = {r["profile"] for r in reports}
  if len(profiles_run) > 1:
    raise ValueError(f"the reports come from different profiles: {sorted(profiles_run)}")
  merged = build([], reports[0]["profile"], reports[0]["max_examples"])
  ran = {o["op"]: o for r in reports for o in r["ops"] if o["status"] in ("pass", "fail")}
  merged["ops"] = [ran.get(o["op"], o) for o in merged["ops"]]
  n_pass = sum(o["status"] == "pass" for o in merged["ops"])
  merged["summary"] = {"ops": len(merged["ops"]), "pass": n_pass,
                       "fail": len(merged["ops"]) - n_pass}
  return merged


def _cell(items) -> str:
  return ", ".join(items) if items else "-"


def markdown(report: dict) -> str:
  """The human-readable report: summary, per-op table, failures with minimal examples."""
  s = report["summary"]
  lines = [
      "# tf2jax conformance report", "",
      f"Profile `{report['profile']}` ({report['max_examples']} examples per op and dtype); "
      + ", ".join(f"{k} {v}" for k, v in report["versions"].items()) + ".", "",
      f"{s['ops']} ops: {s['pass']} pass, {s['fail']} do not.", "",
      "| Op | Provider | Status | Dtypes verified | Transforms | Examples | Left out |",
      "|---|---|---|---|---|---|---|",
  ]
  for o in report["ops"]:
    left_out = ([f"{d} (refused)" for d in o["dtypes_refused"]] + list(o["dtypes_skipped"])
                + [f"{d} (TF raised on every example)" for d in o.get("dtypes_uncompared", ())])
    lines.append(f"| {o['op']} | {o['provider'] or '-'} | {o['status']} | "
                 f"{_cell(o['dtypes_verified'])} | {_cell(o['transforms_verified'])} | "
                 f"{o['examples_run']} | {_cell(left_out)} |")
  failing = [o for o in report["ops"] if o["failures"]]
  if failing:
    lines += ["", "## Failures", ""]
    for o in failing:
      for f in o["failures"]:
        lines += [f"### {o['op']} [{f['dtype']}]", "", "```", (f["error"] or "").strip(), "```"]
        if f["minimal_failing_example"]:
          lines += ["Minimal failing example:", "", "```python",
                    f["minimal_failing_example"], "```"]
        lines.append("")
  missing = [o["op"] for o in report["ops"] if o["status"] == NO_SPEC]
  if missing:
    lines += ["", "## Ops without a spec", "", ", ".join(missing)]
  if report["orphan_specs"]:
    lines += ["", "## Specs of ops no plugin registers", "", ", ".join(report["orphan_specs"])]
  notes = [o for o in report["ops"] if o["notes"] or o["dtypes_skipped"] or o["dtypes_refused"]]
  if notes:
    lines += ["", "## Notes and dtypes left out", ""]
    for o in notes:
      parts = [o["notes"]] if o["notes"] else []
      parts += [f"{d} refused: {r}" for d, r in o["dtypes_refused"].items()]
      parts += [f"{d} skipped: {r}" for d, r in o["dtypes_skipped"].items()]
      lines.append(f"- **{o['op']}**: " + " ".join(p.rstrip(".") + "." for p in parts))
  return "\n".join(lines) + "\n"


def supported_ops(report: dict) -> str:
  """SUPPORTED_OPS.md: one row per op (name, provider, dtypes verified, transforms,
  status), only what follows from the specs and the verdict, so reruns do not churn."""
  s = report["summary"]
  lines = [
      "# Supported ops", "",
      "Generated by `tf2jax-conformance-report --supported-ops SUPPORTED_OPS.md` from a "
      f"conformance run (profile `{report['profile']}`); do not edit by hand. "
      "`Dtypes verified` lists the dtypes whose cases ran and matched TensorFlow, "
      "`Transforms` how the converted function was called (eager, jax.jit, the static "
      "NumPy path, x64 mode, jax.vmap, gradients against tf.GradientTape). The full report "
      "(dtypes left out and why, examples run, failures) is `report/conformance.md`.", "",
      f"{s['ops']} ops, {s['pass']} verified.", "",
      SUPPORTED_OPS_HEADER,
      "|---|---|---|---|---|",
  ]
  for o in report["ops"]:
    if o["provider"] is None:
      continue  # a spec without a registered op is not a supported op
    if o["status"] == NO_SPEC:
      dtypes = transforms = NO_SPEC
    else:
      dtypes, transforms = _cell(o["dtypes_verified"]), _cell(o["transforms_verified"])
    status = "pass" if o["status"] == "pass" else "fail"
    lines.append(f"| {o['op']} | {o['provider']} | {dtypes} | {transforms} | {status} |")
  return "\n".join(lines) + "\n"


def parse_supported_ops(text: str) -> dict[str, dict]:
  """The rows of SUPPORTED_OPS.md: op -> {"provider", "dtypes", "transforms", "status"}."""
  rows, in_table = {}, False
  for line in text.splitlines():
    if line.strip() == SUPPORTED_OPS_HEADER:
      in_table = True
      continue
    if not in_table or not line.startswith("|") or line.startswith("|---"):
      continue
    cells = [c.strip() for c in line.strip().strip("|").split("|")]
    if len(cells) != 5:
      continue
    op, provider, dtypes, transforms, status = cells

    def items(cell):
      return None if cell == NO_SPEC else ([] if cell == "-" else
                                           [x.strip() for x in cell.split(",")])
    rows[op] = {"provider": provider, "dtypes": items(dtypes),
                "transforms": items(transforms), "status": status}
  return rows


def write(report: dict, out_dir: str, supported_ops_path: str | None = None) -> list[str]:
  os.makedirs(out_dir, exist_ok=True)
  paths = [os.path.join(out_dir, "conformance.json"), os.path.join(out_dir, "conformance.md")]
  with open(paths[0], "w", encoding="utf-8") as f:
    json.dump(report, f, indent=1)
    f.write("\n")
  with open(paths[1], "w", encoding="utf-8") as f:
    f.write(markdown(report))
  if supported_ops_path:
    with open(supported_ops_path, "w", encoding="utf-8") as f:
      f.write(supported_ops(report))
    paths.append(supported_ops_path)
  return paths


def main(argv=None) -> int:
  from tf2jax_conformance import profiles
  parser = argparse.ArgumentParser(
      prog="tf2jax-conformance-report",
      description="Run the tf2jax conformance specs against eager TensorFlow and write a "
                  "JSON and Markdown report (and SUPPORTED_OPS.md).")
  parser.add_argument("--profile", choices=sorted(profiles.PROFILES), default=None,
                      help="profile (default: $TF2JAX_CONFORMANCE_PROFILE or full; ci runs "
                      "representative dtypes only): "
                      + "; ".join(f"{k}: {v}" for k, v in profiles.DESCRIPTIONS.items()))
  parser.add_argument("--max-examples", type=int, default=None,
                      help="examples per op and dtype (overrides the profile)")
  parser.add_argument("--out", default="report", help="directory of conformance.json/.md")
  parser.add_argument("--supported-ops", metavar="PATH", default=None,
                      help="also write the SUPPORTED_OPS.md table to PATH")
  parser.add_argument("--provider", default=None,
                      help="only this plugin's ops (distribution name, e.g. tf2jax-nn)")
  parser.add_argument("--op", action="append", default=None, help="only this op (repeatable)")
  parser.add_argument("--jobs", type=int, default=1,
                      help="run the cases in this many processes (no progress shown)")
  parser.add_argument("--merge", nargs="+", metavar="JSON", default=None,
                      help="run nothing: merge these conformance.json files (each op from "
                      "the last one that ran it) into --out and --supported-ops")
  parser.add_argument("--quiet", action="store_true", help="no progress on stderr")
  parser.add_argument("--compile-cache", metavar="DIR", default=None,
                      help="keep compiled XLA programs in DIR between examples and runs "
                      f"(default for thorough: {profiles.COMPILE_CACHE_DIR}; 'none': off)")
  args = parser.parse_args(argv)
  if args.merge:
    reports = []
    for path in args.merge:
      with open(path, encoding="utf-8") as f:
        reports.append(json.load(f))
    report = merge(reports)
    paths = write(report, args.out, args.supported_ops)
    s = report["summary"]
    print(f"{s['ops']} ops: {s['pass']} pass, {s['fail']} fail, have no spec or did not run. "
          "Wrote " + ", ".join(paths))
    return 0 if s["fail"] == 0 else 1
  if args.supported_ops and (args.provider or args.op):
    parser.error("--supported-ops needs a run of every op (drop --provider/--op)")
  if args.profile is None and not os.environ.get(profiles.PROFILE_ENV):
    args.profile = "full"
  try:
    settings = profiles.settings(args.profile, args.max_examples)
    name = profiles.profile_name(args.profile)
  except ValueError as e:
    parser.error(str(e))
  os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
  cache = args.compile_cache or (profiles.COMPILE_CACHE_DIR if name == "thorough" else "none")
  if cache != "none":
    profiles.use_compile_cache(cache)
  from tf2jax_conformance import collect
  from tf2jax_conformance.runner import run_cases, run_cases_parallel
  cases = collect.cases(provider=args.provider, ops=args.op,
                        representative=not profiles.all_dtypes(name))
  if not cases:
    print("tf2jax-conformance-report: no specs selected", file=sys.stderr)
    return 2
  start = time.perf_counter()
  if args.jobs > 1:
    results = run_cases_parallel(args.jobs, args.provider, args.op, name,
                                 args.max_examples)
  else:
    results = run_cases(cases, settings, progress=not args.quiet)
  report = build(results, name, settings.max_examples)
  if args.provider or args.op:
    wanted = {c.spec.op for c in cases}
    report["ops"] = [o for o in report["ops"] if o["op"] in wanted]
    n_pass = sum(o["status"] == "pass" for o in report["ops"])
    report["summary"] = {"ops": len(report["ops"]), "pass": n_pass,
                         "fail": len(report["ops"]) - n_pass}
  paths = write(report, args.out, args.supported_ops)
  s = report["summary"]
  print(f"{s['ops']} ops: {s['pass']} pass, {s['fail']} fail or have no spec "
        f"({len(cases)} cases, {time.perf_counter() - start:.0f}s). Wrote " + ", ".join(paths))
  return 0 if s["fail"] == 0 else 1


if __name__ == "__main__":
  sys.exit(main())
