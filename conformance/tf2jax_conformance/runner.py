"""Running specs outside pytest (the report command, notebooks, plugin authors)."""

from __future__ import annotations

import sys
from typing import Iterable, Sequence

from hypothesis import Verbosity, settings as hyp_settings

from tf2jax_conformance import collect, profiles
from tf2jax_conformance.harness import Case, CaseResult, check_case


def run_cases(cases: Sequence[Case], settings: hyp_settings | None = None,
              progress: bool = False) -> list[CaseResult]:
  """Runs each case; failures are recorded in the results, not raised."""
  settings = hyp_settings(settings or profiles.settings(), verbosity=Verbosity.quiet)
  results = []
  for i, case in enumerate(cases):
    result = CaseResult(case.spec.op, case.dtype, case.spec_provider, refused=case.refused)
    try:
      check_case(case, settings, result)
    except Exception:
      pass  # recorded in result
    if progress:
      if result.status == "pass":
        print(".", end="", file=sys.stderr, flush=True)
      else:
        first = (result.error or "").splitlines()[0][:200] if result.error else ""
        print(f"\n[{i + 1}/{len(cases)}] {case.id} failed: {first}", file=sys.stderr,
              flush=True)
    results.append(result)
  if progress:
    print(file=sys.stderr)
  return results


def _run_share(provider, ops, profile, max_examples, jobs, index, log: str,
               start: int) -> None:
  """One worker of `run_cases_parallel`: every `jobs`-th case from `index`, skipping the
  first `start` of them. Before each case it appends ("start", k, op, dtype, provider),
  after it ("done", k, result), and at the end ("end", start), to the pickle stream
  `log`, so that a crash loses one case, not the share. A fatal signal writes the Python
  stack to `log + ".fault"`."""
  import os
  import pickle
  os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
  enable_fault_log(log)
  cases = collect.cases(provider=provider, ops=ops,
                        representative=not profiles.all_dtypes(profile))[index::jobs]
  settings = profiles.settings(profile, max_examples)
  with open(log, "ab") as f:
    for k in range(start, len(cases)):
      case = cases[k]
      pickle.dump(("start", k, case.spec.op, case.dtype, case.spec_provider), f)
      f.flush()
      pickle.dump(("done", k, run_cases([case], settings)[0]), f)
      f.flush()
    pickle.dump(("end", start), f)


def _read_log(path: str) -> list[tuple]:
  import pickle
  records = []
  try:
    with open(path, "rb") as f:
      while True:
        records.append(pickle.load(f))
  except (EOFError, FileNotFoundError, pickle.UnpicklingError):
    pass  # the end, or a record cut off by a crash
  return records


def enable_fault_log(log: str) -> None:
  """Have faulthandler write the Python stack of a fatal signal to `log + ".fault"`."""
  import faulthandler
  fault = open(log + ".fault", "w")  # stays open: faulthandler writes to it on a crash
  faulthandler.enable(file=fault, all_threads=False)


def _fault_stack(log: str, frames: int = 12) -> str:
  """The innermost `frames` lines of the Python stack that faulthandler wrote for a
  crashed worker, or ''."""
  try:
    with open(log + ".fault") as f:
      lines = [line.rstrip() for line in f if line.strip()]
  except FileNotFoundError:
    return ""
  if not lines:
    return ""
  head, stack = lines[0], [line.strip() for line in lines[1:] if line.startswith("  File")]
  return f"\n{head}\n" + "\n".join(stack[:frames])


def run_cases_parallel(jobs: int, provider: str | None = None,
                       ops: Iterable[str] | None = None, profile: str | None = None,
                       max_examples: int | None = None, worker=None) -> list[CaseResult]:
  """The cases of `collect.cases(provider, ops)` split over `jobs` fresh processes (each
  collects the same cases and runs its share), results in case order. A worker that dies
  (TF or XLA crashing the process) fails the case it was running, with its exit code,
  and a fresh process goes on with the rest of its share. `worker`: `_run_share` or a
  stand-in with its signature (tests)."""
  import multiprocessing
  import os
  import tempfile
  ops = list(ops) if ops is not None else None
  context = multiprocessing.get_context("spawn")
  with tempfile.TemporaryDirectory(prefix="tf2jax-conformance-") as tmp:
    logs = [os.path.join(tmp, f"share{i}.pickle") for i in range(jobs)]
    starts = [0] * jobs
    shares: list[dict[int, CaseResult]] = [{} for _ in range(jobs)]
    pending = list(range(jobs))
    while pending:
      workers = {}
      for i in pending:
        workers[i] = context.Process(target=worker or _run_share, args=(
            provider, ops, profile, max_examples, jobs, i, logs[i], starts[i]))
        workers[i].start()
      pending = []
      for i, process in workers.items():
        process.join()
        records = _read_log(logs[i])
        for record in records:
          if record[0] == "done":
            shares[i][record[1]] = record[2]
        if process.exitcode == 0 or ("end", starts[i]) in records:
          continue  # (a crash at exit loses nothing)
        this_run = [r for r in records if r[0] == "start" and r[1] >= starts[i]]
        if not this_run:
          raise RuntimeError(f"conformance worker {i} exited with code {process.exitcode} "
                             "before its first case")
        _, k, op, dtype, spec_provider = this_run[-1]
        if k not in shares[i]:  # else it died after its last case, or at exit
          shares[i][k] = CaseResult(
              op, dtype, spec_provider, status="fail",
              error=f"the worker process died (exit code {process.exitcode}) while running "
                    "this case: TF or XLA crashed on one of its examples. Rerun the op "
                    "alone (--op, --jobs 1) to see the crash." + _fault_stack(logs[i]))
        starts[i] = k + 1
        pending.append(i)
  out = []
  for k in range(max((max(share, default=-1) + 1 for share in shares), default=0)):
    out.extend(share[k] for share in shares if k in share)
  return out


def run_specs(provider: str | None = None, ops: Iterable[str] | None = None,
              dtypes: Iterable[str] | None = None, profile: str | None = None,
              max_examples: int | None = None, plugin=None,
              plugin_name: str | None = None) -> list[CaseResult]:
  """Runs the specs of the loaded plugins (or of `provider` / `ops` / `dtypes`).

  `plugin`: a plugin object to register in code while the specs run (for plugins that
  are not installed as distributions). Returns one `CaseResult` per (op, dtype).
  """
  with collect.registered(plugin, plugin_name):
    cases = collect.cases(provider=provider, ops=ops, dtypes=dtypes)
    return run_cases(cases, profiles.settings(profile, max_examples))
