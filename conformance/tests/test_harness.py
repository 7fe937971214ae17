"""Unit tests of the harness's parts: comparison, strategies, spec checks, profiles."""

import json
import math
import subprocess
import sys

import ml_dtypes
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tf2jax_conformance import EXACT, Example, Mismatch, OpSpec, SpecError, Tolerance
from tf2jax_conformance import assert_same, profiles
from tf2jax_conformance import strategies as cst
from tf2jax_conformance.harness import flush_subnormals

TOL = Tolerance(1e-6, 0.0)


# Comparison ---------------------------------------------------------------------------


def test_same_values_pass():
  x = np.array([1.0, np.nan, -np.inf, 0.0], np.float32)
  assert_same(x.copy(), x, TOL)
  assert_same([x, np.int32(3)], [x, np.int32(3)], TOL)


@pytest.mark.parametrize("got, want, words", [
    (np.array([np.nan, 1.0], np.float32), np.array([1.0, 1.0], np.float32), "NaN"),
    (np.array([np.inf], np.float32), np.array([-np.inf], np.float32), "infinities"),
    (np.array([np.inf], np.float32), np.array([3e38], np.float32), "infinities"),
    (np.array([np.inf], np.float32), np.array([-3.4028235e38], np.float32), "infinities"),
    (np.array([-np.inf], np.float64), np.array([-1.79e308], np.float64), "infinities"),
    (np.array([1.0], np.float32), np.array([1.001], np.float32), "values differ"),
    (np.array([1.0], np.float64), np.array([1.0], np.float32), "dtype"),
    (np.array([1.0], np.float32), np.array([[1.0]], np.float32), "shape"),
    (np.array([2**31 - 1], np.int32), np.array([-2**31], np.int32), "exact"),
    (np.array([1 + 2j], np.complex64), np.array([1 + 2.1j], np.complex64), "values differ"),
    (np.array([complex(1, np.nan)], np.complex64), np.array([1 + 0j], np.complex64), "NaN"),
])
def test_mismatches_are_caught(got, want, words):
  with pytest.raises(Mismatch, match=words):
    assert_same(got, want, TOL)


def test_infinity_matches_the_largest_float_of_its_sign():
  """The overflow edge: TF's approximate reciprocal gives 4 / tiny as the largest float32
  where the exact quotient is inf."""
  big = np.finfo(np.float32).max
  assert_same(np.array([np.inf, -big, 1.0], np.float32),
              np.array([big, -np.inf, 1.0], np.float32), TOL)
  assert_same(np.array([complex(np.inf, 1)], np.complex64),
              np.array([complex(big, 1)], np.complex64), TOL)


def test_structure_and_tolerance_by_dtype():
  with pytest.raises(Mismatch, match="structure"):
    assert_same([np.float32(1)], [np.float32(1), np.float32(2)], TOL)
  half = np.array([1.0], np.float16)
  assert_same(half, np.array([1.0009765625], np.float16), lambda d: Tolerance(2e-3, 0))
  with pytest.raises(Mismatch):
    assert_same(half, np.array([1.0009765625], np.float16), lambda d: EXACT)


# Strategies ---------------------------------------------------------------------------


def test_edge_values():
  f32 = [float(v) for v in cst.edge_values("float32")]
  assert any(math.isnan(v) for v in f32) and math.inf in f32 and -math.inf in f32
  assert any(v == 0 and math.copysign(1, v) < 0 for v in f32)  # -0.0
  assert any(0 < abs(v) < np.finfo(np.float32).tiny for v in f32)  # subnormals
  assert {-2**31, 2**31 - 1, 0} <= {int(v) for v in cst.edge_values("int32")}
  assert 255 in {int(v) for v in cst.edge_values("uint8")}
  bf16 = cst.edge_values("bfloat16")
  assert all(np.asarray(v).dtype == ml_dtypes.bfloat16 for v in bf16)
  assert not any(np.isinf(float(v)) for v in cst.edge_values("float8_e4m3fn"))  # has none


@settings(max_examples=50, derandomize=True, database=None)
@given(st.data())
def test_arrays_have_the_dtype_and_shape(data):
  dtype = data.draw(st.sampled_from(["float32", "bfloat16", "int8", "bool", "complex64",
                                     "float8_e5m2", "int4"]))
  shape = data.draw(cst.shapes())
  x = data.draw(cst.arrays(dtype, shape))
  assert x.shape == shape and x.dtype.name == dtype
  bounded = data.draw(cst.arrays("float32", shape, min_value=0, max_value=2,
                                 allow_nan=False))
  assert np.all((bounded >= 0) & (bounded <= 2))


@settings(max_examples=30, derandomize=True, database=None)
@given(cst.broadcastable_shapes(2))
def test_broadcastable_shapes_broadcast(shapes):
  np.broadcast_shapes(*shapes)


def test_flush_subnormals():
  x = np.array([1e-40, -1e-40, 1.0, 0.0], np.float32)
  flushed = flush_subnormals([x, np.array([1, 2], np.int32)])
  assert flushed[0].tolist() == [0.0, 0.0, 1.0, 0.0]
  assert math.copysign(1, flushed[0][1]) < 0
  assert flush_subnormals([np.array([1.0], np.float32)]) is None


# Specs ----------------------------------------------------------------------------------


def _example(dtype):
  return cst.arrays(dtype, ()).map(lambda x: Example({"x": x}))


def test_dtypes_come_from_the_kernel_registry():
  covered, skipped, refused = OpSpec("Sin", _example).resolve_dtypes()
  assert set(covered) == {"float16", "bfloat16", "float32", "float64", "complex64",
                          "complex128"}
  assert not refused


def test_a_dtype_left_out_needs_a_reason():
  with pytest.raises(SpecError, match="float16"):
    OpSpec("Sin", _example, dtypes=("float32", "float64", "bfloat16", "complex64",
                                     "complex128")).resolve_dtypes()
  OpSpec("Sin", _example, dtypes=("float32", "float64", "bfloat16", "complex64",
                                  "complex128"),
         skip_dtypes={"float16": "a reason"}).resolve_dtypes()


def test_a_dtype_tf_does_not_accept_is_an_error():
  with pytest.raises(SpecError, match="int32"):
    OpSpec("Sin", _example, skip_dtypes={"int32": "no"}).resolve_dtypes()
  with pytest.raises(SpecError, match="any"):
    OpSpec("Identity", _example).resolve_dtypes()  # kernel takes any dtype: list them


def test_unknown_transform():
  with pytest.raises(SpecError, match="unknown transforms"):
    OpSpec("Sin", _example, transforms=("jit", "pmap"))


# Profiles -------------------------------------------------------------------------------


def test_profiles(monkeypatch):
  monkeypatch.delenv(profiles.PROFILE_ENV, raising=False)
  monkeypatch.delenv(profiles.MAX_EXAMPLES_ENV, raising=False)
  ci = profiles.settings()
  assert ci.derandomize and ci.database is None and ci.max_examples < 10
  monkeypatch.setenv(profiles.PROFILE_ENV, "thorough")
  assert profiles.settings().max_examples >= 100
  assert profiles.settings(max_examples=7).max_examples == 7
  monkeypatch.setenv(profiles.PROFILE_ENV, "nope")
  with pytest.raises(ValueError, match="thorough"):
    profiles.settings()


def test_compile_cache_keeps_programs_for_the_next_run(tmp_path):
  # A fresh process (the cache is process-wide), jax imported before it is switched on.
  script = ("import sys, jax, jax.numpy as jnp\n"
            "from tf2jax_conformance import profiles\n"
            "profiles.use_compile_cache(sys.argv[1])\n"
            "print(jax.jit(lambda x: jnp.sin(x) * 3)(jnp.arange(5.0)).tolist())\n")
  run = lambda: subprocess.run([sys.executable, "-c", script, str(tmp_path)], check=True,
                               capture_output=True, text=True).stdout
  first = run()
  files = lambda: {p.name: p.stat().st_mtime_ns for p in tmp_path.iterdir()}
  cached = files()
  assert cached and run() == first
  np.testing.assert_allclose(json.loads(first), np.sin(np.arange(5.0)) * 3, rtol=1e-6)
  assert files() == cached  # loaded, not compiled and written again


def test_a_spec_tf_always_rejects_fails():
  """A spec whose every example TF rejects compares nothing (both sides raise), e.g. one
  passing an attr the raw op infers: the case must fail instead of passing vacuously."""
  from tf2jax_conformance.harness import Case, check_case

  def example(dtype):  # Relu6 has no `alpha` attr: TF raises on every example
    return cst.arrays(dtype, (2,)).map(lambda x: Example({"features": x}, {"alpha": 0.5}))
  spec = OpSpec("Relu6", example, dtypes=("float32",), transforms=("jit",))
  with pytest.raises(SpecError, match="TF raised on all"):
    check_case(Case(spec, "test", "float32"), settings(profiles.settings("ci"),
                                                       max_examples=3))


def test_a_case_tf_rejected_throughout_is_not_listed_as_verified():
  """Below three examples such a case passes (a strategy may draw error cases by design),
  but nothing was compared: the report must not list its dtype as verified (Where float16
  was, on 2 examples each of which TF's CPU kernel rejects)."""
  from tf2jax_conformance import report
  from tf2jax_conformance.harness import Case, check_case

  def example(dtype):
    return cst.arrays(dtype, (2,)).map(lambda x: Example({"features": x}, {"alpha": 0.5}))
  spec = OpSpec("Relu6", example, dtypes=("float32",), transforms=("jit",))
  rejected = check_case(Case(spec, "test", "float32"),
                        settings(profiles.settings("ci"), max_examples=2))
  good = OpSpec("Relu6", lambda d: cst.arrays(d, (2,)).map(lambda x: Example({"features": x})),
                dtypes=("float64",), transforms=("jit",))
  accepted = check_case(Case(good, "test", "float64"),
                        settings(profiles.settings("ci"), max_examples=2))
  assert rejected.status == "pass" and rejected.examples == 2 and rejected.compared == 0
  assert accepted.compared == 2
  relu6 = next(o for o in report.build([rejected, accepted], "ci", 2)["ops"]
               if o["op"] == "Relu6")
  assert relu6["dtypes_verified"] == ["float64"]
  assert relu6["dtypes_uncompared"] == ["float32"]
  assert "float32 (TF raised on every example)" in report.markdown({
      "summary": {"ops": 1, "pass": 1, "fail": 0}, "profile": "ci", "max_examples": 2,
      "versions": {}, "ops": [relu6], "orphan_specs": []})


def test_integer_outputs_are_exact_unless_the_tolerance_says_ints():
  got, want = np.array([312, 5], np.int32), np.array([313, 5], np.int32)
  with pytest.raises(Mismatch, match="exact"):
    assert_same(got, want, Tolerance(rtol=0.1, atol=1))
  assert_same(got, want, Tolerance(atol=1, ints=True))
  with pytest.raises(Mismatch, match="beyond"):
    assert_same(got - 1, want, Tolerance(atol=1, ints=True))


def test_tf_side_keeps_negative_zero_in_vmap_rows():
  """TF's eager cache of scalar constants returns the 0.0 made first for a NumPy float64
  -0.0 (they compare equal). vmap's rows are such scalars: atan2(0, -0) is pi, not 0."""
  from tf2jax_conformance.core_specs.special_specs import SPECS
  from tf2jax_conformance.harness import run_example
  spec = next(s for s in SPECS if s.op == "Atan2")
  example = Example({"y": np.array(0.0), "x": np.array(-0.0)})

  @given(st.data())
  @settings(max_examples=1, database=None, deadline=None)
  def run(data):
    assert "vmap" in run_example(spec, "float64", example, data.draw)
  run()
