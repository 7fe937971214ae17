"""tf2jax-conformance: every op lowering checked against eager TensorFlow.

Plugins contribute `OpSpec`s through the `tf2jax_conformance_specs` hook; the harness
draws inputs with hypothesis, converts `tf.raw_ops.<Op>` (or a small tf.function) with
the public `tf2jax` API and compares the result, its jit/vmap/grad transforms and the
NumPy (static) path with TensorFlow's.

    from tf2jax_conformance import OpSpec, Example, strategies as cst, make_tests

Importing this package does not import TensorFlow; the harness does when it runs.
"""

from tf2jax_conformance import strategies
from tf2jax_conformance.collect import cases, missing_specs, orphan_specs, registered, specs
from tf2jax_conformance.compare import Mismatch, assert_same
from tf2jax_conformance.harness import (Case, CaseResult, ConformanceFailure, check_case,
                                        run_example)
from tf2jax_conformance.profiles import PROFILES, settings
from tf2jax_conformance.runner import run_cases, run_specs
from tf2jax_conformance.spec import (DEFAULT_TOLERANCE, EXACT, TRANSFORMS, Example, OpSpec,
                                     SpecError, Tolerance, default_tolerance, tolerances)
from tf2jax_conformance.testing import make_tests

__version__ = "0.1.0"

__all__ = [
    "Case", "CaseResult", "ConformanceFailure", "DEFAULT_TOLERANCE", "EXACT", "Example",
    "Mismatch", "OpSpec", "PROFILES", "SpecError", "TRANSFORMS", "Tolerance",
    "assert_same", "cases", "check_case", "default_tolerance", "make_tests",
    "missing_specs", "orphan_specs", "registered", "run_cases", "run_example", "run_specs",
    "settings", "specs", "strategies", "tolerances",
]
