"""Hypothesis settings profiles of the suite: `ci` and `thorough`.

The profile comes from (first found): the `profile` argument, the pytest option
`--conformance-profile`, the environment variable TF2JAX_CONFORMANCE_PROFILE, else
`ci`. TF2JAX_CONFORMANCE_MAX_EXAMPLES (or `--conformance-max-examples`) overrides the
number of examples per case. The profiles are also registered with hypothesis as
"tf2jax-ci" and "tf2jax-thorough".
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings as hyp_settings
from hypothesis.database import DirectoryBasedExampleDatabase

PROFILE_ENV = "TF2JAX_CONFORMANCE_PROFILE"
MAX_EXAMPLES_ENV = "TF2JAX_CONFORMANCE_MAX_EXAMPLES"
DEFAULT_PROFILE = "ci"

_SUPPRESS = [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example]

PROFILES = {
    # Few examples per (op, dtype), the same ones on every run: no database, fixed seed.
    "ci": dict(max_examples=4, derandomize=True, database=None, deadline=None,
               suppress_health_check=_SUPPRESS, print_blob=False),
    # Hundreds of examples per (op, dtype), random; failures are saved in .hypothesis/.
    "thorough": dict(max_examples=200, derandomize=False, deadline=None,
                     suppress_health_check=_SUPPRESS, print_blob=True),
}
DESCRIPTIONS = {
    "ci": "4 examples per op and dtype, derandomized, no example database",
    "thorough": "200 random examples per op and dtype, failures kept in .hypothesis/",
}

for _name, _kwargs in PROFILES.items():
  hyp_settings.register_profile(f"tf2jax-{_name}", **_kwargs)


def profile_name(profile: str | None = None) -> str:
  name = profile or os.environ.get(PROFILE_ENV) or DEFAULT_PROFILE
  if name not in PROFILES:
    raise ValueError(f"Unknown conformance profile {name!r}; choose one of "
                     f"{sorted(PROFILES)} (TF2JAX_CONFORMANCE_PROFILE or "
                     "--conformance-profile).")
  return name


def settings(profile: str | None = None, max_examples: int | None = None) -> hyp_settings:
  """The hypothesis settings of a profile (see the module doc for how it is chosen)."""
  name = profile_name(profile)
  base = hyp_settings.get_profile(f"tf2jax-{name}")
  if max_examples is None and os.environ.get(MAX_EXAMPLES_ENV):
    max_examples = int(os.environ[MAX_EXAMPLES_ENV])
  kwargs = {}
  if name == "thorough":
    kwargs["database"] = DirectoryBasedExampleDatabase(".hypothesis/tf2jax-conformance")
  if max_examples is not None:
    kwargs["max_examples"] = max_examples
  return hyp_settings(base, **kwargs) if kwargs else base
