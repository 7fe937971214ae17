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


def _run_share(provider, ops, profile, max_examples, jobs, index) -> list[CaseResult]:
  """One worker of `run_cases_parallel`: every `jobs`-th case, from `index`."""
  import os
  os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
  cases = collect.cases(provider=provider, ops=ops,
                        representative=not profiles.all_dtypes(profile))[index::jobs]
  return run_cases(cases, profiles.settings(profile, max_examples))


def run_cases_parallel(jobs: int, provider: str | None = None,
                       ops: Iterable[str] | None = None, profile: str | None = None,
                       max_examples: int | None = None) -> list[CaseResult]:
  """The cases of `collect.cases(provider, ops)` split over `jobs` fresh processes (each
  collects the same cases and runs its share), results in case order."""
  import multiprocessing
  from concurrent.futures import ProcessPoolExecutor
  ops = list(ops) if ops is not None else None
  with ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
    shares = list(pool.map(_run_share, *zip(*[(provider, ops, profile, max_examples, jobs, i)
                                              for i in range(jobs)])))
  out = []
  for k in range(max(map(len, shares), default=0)):
    out.extend(share[k] for share in shares if k < len(share))
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
