"""pytest plugin (entry point `pytest11`): the --conformance-profile option."""

from __future__ import annotations

import os

from tf2jax_conformance import profiles


def pytest_addoption(parser):
  group = parser.getgroup("tf2jax-conformance")
  group.addoption("--conformance-profile", choices=sorted(profiles.PROFILES), default=None,
                  help="tf2jax conformance profile: " + "; ".join(
                      f"{k}: {v}" for k, v in profiles.DESCRIPTIONS.items())
                  + f" (default: ${profiles.PROFILE_ENV} or {profiles.DEFAULT_PROFILE}).")
  group.addoption("--conformance-max-examples", type=int, default=None,
                  help="hypothesis examples per conformance case (overrides the profile).")
  group.addoption("--conformance-report", metavar="DIR", default=None,
                  help="write conformance.json/.md of the conformance cases run to DIR.")


def pytest_configure(config):
  profile = config.getoption("--conformance-profile", default=None)
  if profile:
    os.environ[profiles.PROFILE_ENV] = profile
  max_examples = config.getoption("--conformance-max-examples", default=None)
  if max_examples:
    os.environ[profiles.MAX_EXAMPLES_ENV] = str(max_examples)
  if profiles.profile_name() == "thorough":
    profiles.use_compile_cache(profiles.COMPILE_CACHE_DIR)


def pytest_report_header(config):
  name = profiles.profile_name()
  return f"tf2jax-conformance profile: {name} ({profiles.DESCRIPTIONS[name]})"


def pytest_sessionfinish(session, exitstatus):
  out = session.config.getoption("--conformance-report", default=None)
  if not out:
    return
  from tf2jax_conformance import report, testing
  if not testing.RESULTS:
    return
  settings = profiles.settings()
  data = report.build(testing.RESULTS, profiles.profile_name(), settings.max_examples)
  ran = {r.op for r in testing.RESULTS}
  data["ops"] = [o for o in data["ops"] if o["op"] in ran or o["status"] == report.NO_SPEC]
  report.write(data, out)
