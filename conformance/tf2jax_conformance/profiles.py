"""Profiles of the suite: `ci`, `full` and `thorough` (hypothesis settings, and which
dtypes of each spec run).

- `ci` (default): 2 derandomized examples per case, on a representative set of each
  spec's dtypes (`REPRESENTATIVE`): what `pytest` runs on every change.
- `full`: 3 derandomized examples per case on every dtype: what SUPPORTED_OPS.md and the
  report are generated from (the report command's default).
- `thorough`: 200 random examples per case on every dtype, failures kept.

`thorough` also keeps JAX's persistent compilation cache in `COMPILE_CACHE_DIR`: its
examples repeat shapes, and an XLA program seen before then loads instead of compiling
again (XLA compiles are most of an example's time).

The profile comes from (first found): the `profile` argument, the pytest option
`--conformance-profile`, the environment variable TF2JAX_CONFORMANCE_PROFILE, else
`ci`. TF2JAX_CONFORMANCE_MAX_EXAMPLES (or `--conformance-max-examples`) overrides the
number of examples per case. The profiles are also registered with hypothesis as
"tf2jax-ci" and "tf2jax-thorough".
"""

from __future__ import annotations

import os
import sys

from hypothesis import HealthCheck, settings as hyp_settings
from hypothesis.database import DirectoryBasedExampleDatabase

PROFILE_ENV = "TF2JAX_CONFORMANCE_PROFILE"
MAX_EXAMPLES_ENV = "TF2JAX_CONFORMANCE_MAX_EXAMPLES"
DEFAULT_PROFILE = "ci"

_SUPPRESS = [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example]

PROFILES = {
    # Few examples per (op, dtype), the same ones on every run: no database, fixed seed.
    "ci": dict(max_examples=2, derandomize=True, database=None, deadline=None,
               suppress_health_check=_SUPPRESS, print_blob=False),
    "full": dict(max_examples=3, derandomize=True, database=None, deadline=None,
                 suppress_health_check=_SUPPRESS, print_blob=False),
    # Hundreds of examples per (op, dtype), random; failures are saved in .hypothesis/.
    "thorough": dict(max_examples=200, derandomize=False, deadline=None,
                     suppress_health_check=_SUPPRESS, print_blob=True),
}
DESCRIPTIONS = {
    "ci": "2 examples per op and representative dtype, derandomized, no example database",
    "full": "3 examples per op and dtype, derandomized, no example database",
    "thorough": "200 random examples per op and dtype, failures kept in .hypothesis/",
}

for _name, _kwargs in PROFILES.items():
  hyp_settings.register_profile(f"tf2jax-{_name}", **_kwargs)


# Next to the example database; both are this checkout's state of the thorough runs.
COMPILE_CACHE_DIR = os.path.join(".hypothesis", "tf2jax-xla-cache")


def use_compile_cache(path: str) -> None:
  """JAX's persistent compilation cache at `path`, every program cached, in this process
  and in the processes it starts."""
  values = {"jax_compilation_cache_dir": path,
            "jax_persistent_cache_min_compile_time_secs": 0.0,
            "jax_persistent_cache_min_entry_size_bytes": -1}
  os.environ.update({k.upper(): str(v) for k, v in values.items()})
  if "jax" in sys.modules:  # the variables are read when jax is imported
    import jax
    for k, v in values.items():
      jax.config.update(k, v)


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


def x64_every_example(settings: hyp_settings) -> bool:
  """Whether the x64 transform runs on every example (thorough, derandomize off) or only
  until one example of a case passes it (ci, derandomized: x64 mode changes dtypes, which
  do not depend on the values)."""
  return not settings.derandomize


# The dtypes the `ci` profile runs of a spec: the first covered dtype of each group.
REPRESENTATIVE = (
    ("float32", "float16", "bfloat16", "float64"),
    ("float64",),
    ("bfloat16", "float16"),
    ("int32", "int64", "int16", "int8"),
    ("int64",),
    ("uint8", "uint16", "uint32", "uint64"),
    ("bool",),
    ("complex64", "complex128"),
    ("float8_e4m3fn", "float8_e5m2", "float4_e2m1fn", "int4", "uint4", "int2", "uint2"),
)


def all_dtypes(profile: str | None = None) -> bool:
  """Whether a profile runs every covered dtype of each spec (else `representative`)."""
  return profile_name(profile) != "ci"


def representative(dtypes) -> set[str]:
  """A spec's dtypes the `ci` profile runs (all of them when no group matches)."""
  have = set(dtypes)
  out = {next(d for d in group if d in have) for group in REPRESENTATIVE
         if any(d in have for d in group)}
  return out or have
