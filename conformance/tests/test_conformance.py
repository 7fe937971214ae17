"""Every op spec of every loaded plugin against eager TensorFlow, one test per (op, dtype).

The profile (examples per case) comes from --conformance-profile or
TF2JAX_CONFORMANCE_PROFILE: `ci` by default, `thorough` on demand.
"""

from tf2jax_conformance import make_tests

test_conformance = make_tests()
