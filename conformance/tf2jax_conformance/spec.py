"""The spec format: one `OpSpec` per TF op.

A spec says how to build the op in TF, which inputs and attrs to draw (a hypothesis
strategy per dtype), which inputs are static, which dtypes to cover (by default the
dtypes TF's CPU kernel accepts, from TF's kernel registry), the tolerance per dtype and
which transforms apply. See conformance/README.md for a walk-through.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Mapping

import numpy as np

from tf2jax_conformance import dtypes as D

# What the harness can check besides the plain (eager) call of the converted function.
TRANSFORMS = {
    "eager": "the converted function called op by op (always checked)",
    "jit": "jax.jit of the converted function",
    "static": ("every input baked into the graph as a constant: the NumPy (static) path "
               "(not for float8 *fnuz dtypes, which TF cannot put in a graph)"),
    "x64": "the converted function called with jax_enable_x64 on (32-bit dtypes)",
    "vmap": "jax.vmap over a batch of 3, against a Python loop of single TF calls",
    "grad": "jax.vjp against tf.GradientTape with the same random cotangents",
}
DEFAULT_TRANSFORMS = ("jit", "static", "x64", "vmap", "grad")


class SpecError(ValueError):
  """A spec is malformed or disagrees with TF's kernel registry."""


@dataclasses.dataclass(frozen=True)
class Tolerance:
  """`|jax - tf| <= atol + rtol * |tf|` elementwise, on finite values. Integer outputs
  are compared exactly unless `ints` is set."""

  rtol: float = 0.0
  atol: float = 0.0
  ints: bool = False

  def __str__(self) -> str:
    return f"rtol={self.rtol:g}, atol={self.atol:g}"


EXACT = Tolerance(0.0, 0.0)


def _ulps(dtype: str, n: float) -> Tolerance:
  info = D.finfo(dtype)
  return Tolerance(rtol=n * float(info.eps), atol=float(info.tiny))


# Default tolerance per dtype: a few ulps (results of transcendental functions may differ
# by an ulp or two between Eigen and XLA), and the smallest normal as absolute tolerance
# because TF and XLA may flush subnormal results to zero.
DEFAULT_TOLERANCE: dict[str, Tolerance] = {
    "float16": _ulps("float16", 2),
    "bfloat16": _ulps("bfloat16", 2),
    "float32": _ulps("float32", 8),
    "float64": _ulps("float64", 8),
    "complex64": _ulps("float32", 8),
    "complex128": _ulps("float64", 8),
}


def default_tolerance(dtype: str) -> Tolerance:
  """The default tolerance of a dtype; exact for integers, bool, float8 and float4."""
  return DEFAULT_TOLERANCE.get(dtype, EXACT)


def largest_finite_abs(values) -> float:
  """The largest |v| over the finite values (complex ones by modulus); 0.0 if none, for
  tolerances that scale with the inputs."""
  a = np.abs(np.asarray(values).astype(np.complex128 if np.iscomplexobj(values)
                                       else np.float64))
  a = a[np.isfinite(a)]
  return float(a.max()) if a.size else 0.0


@dataclasses.dataclass
class Example:
  """One drawn case: the op's inputs by input-arg name and its attrs.

  An input value is a NumPy array or a list of arrays (for list inputs such as
  IdentityN's `input`). Type attrs are given as dtype names ("int64"). `extra` carries
  anything a custom `build` needs (e.g. which branch body to use).
  """

  inputs: dict[str, Any]
  attrs: dict[str, Any] = dataclasses.field(default_factory=dict)
  extra: dict[str, Any] = dataclasses.field(default_factory=dict)

  def __repr__(self) -> str:
    parts = [f"{k}={_show(v)}" for k, v in self.inputs.items()]
    parts += [f"{k}={v!r}" for k, v in self.attrs.items()]
    parts += [f"{k}={v!r}" for k, v in self.extra.items()]
    return "Example(" + ", ".join(parts) + ")"


def _show(value) -> str:
  if isinstance(value, (list, tuple)):
    return "[" + ", ".join(_show(v) for v in value) + "]"
  if isinstance(value, np.ndarray):
    body = np.array2string(value, separator=", ", threshold=64, floatmode="unique")
    body = " ".join(body.split())
    return f"np.array({body}, dtype='{D.name_of(value.dtype)}').reshape({value.shape})"
  return repr(value)


ToleranceSpec = Mapping[str, Tolerance] | Callable[[str, Example], Tolerance] | None


@dataclasses.dataclass(frozen=True)
class OpSpec:
  """How to check one TF op type.

  op: the TF op type.
  example: `example(dtype_name) -> SearchStrategy[Example]`, the inputs and attrs to draw
    for one dtype of `dtype_attr`.
  dtype_attr: the type attr whose dtypes the spec covers, one test case per dtype;
    None when the op has none (then `dtypes` names what the cases cover).
  dtypes: the dtypes to cover. None takes them from TF's kernel registry (the kernels of
    `kernel_device`); required when the kernel accepts any dtype.
  skip_dtypes: dtype -> why the spec leaves it out. Every dtype the kernel accepts is
    either covered or has a reason here (string, resource, variant and quantized dtypes
    have a standing reason: JAX has no such dtype).
  refused_dtypes: dtype -> reason, for dtypes TF accepts but tf2jax refuses on purpose
    (not lowered yet): the harness checks that conversion raises a clear
    UnsupportedOpsError for them instead of silently computing something.
  static_inputs: names of inputs that are baked into the graph as constants (axes,
    shapes, paddings) instead of being function arguments.
  build: `build(example) -> fn(*tensors)`, a Python function of the non-static inputs
    (flattened in `example.inputs` order, lists expanded), whose graph contains `op`.
    None calls `tf.raw_ops.<op>` with the inputs and attrs.
  transforms: which of `TRANSFORMS` apply ("eager" always does).
  grad_inputs: names of the inputs to differentiate (default: every non-static input
    of a real floating dtype).
  grad_dtypes: the case dtypes on which "grad" runs (default: the covered float16,
    bfloat16, float32 and float64; set it when `dtype_attr` is not the data's dtype).
  cotangents: `cotangents(dtype, shape) -> SearchStrategy[np.ndarray]` for "grad"
    (default: `strategies.cotangents`, 0 or magnitudes in [1e-3, 10]).
  tolerance / grad_tolerance: per dtype name (a mapping, missing names use the
    default) or `tolerance(dtype, example) -> Tolerance`. The default grad tolerance is
    twice the forward rtol, plus that much of the largest cotangent as atol.
  statistical: for random ops, `check(samples: np.ndarray, dtype) -> None or reason`;
    values are not compared to TF's (they are drawn from JAX's key), only their shape
    and dtype, and this check runs on at least `min_samples` pooled samples.
  rng: the converted function needs an `rng` key.
  variables: the graph uses variables: convert with `tf2jax.convert` and also compare
    the params returned to TF's variables after the call.
  tf_jit_compile: run the TF reference with `tf.function(jit_compile=True)` (Xla* ops).
  tf_graph_grad: compute TF's gradients inside a tf.function (ops whose gradient
    functions need a graph, such as If).
  kernel_device: the device of the kernels whose dtypes count ("CPU", "XLA_CPU_JIT").
  kernel_op: the op whose kernels count (default `op`).
  rewrite: for ops TF itself no longer runs (no kernel, or removed at the current
    GraphDef version) but old graphs hold: `build` traces an equivalent graph TF does run
    (the reference), and `rewrite(graph_def, example)` edits that graph in place into
    one holding `op`, which the harness converts with `tf2jax.convert_graph_def`.
  tf1_graph: `build` makes the op in a tf.compat.v1 Graph (TF1 control flow, ref
    variables: what tf.function never builds), from placeholders, with control flow v2
    off. TF's result is a Session run of the graph's GraphDef (variables frozen into
    constants), which the harness converts with `tf2jax.convert_graph_def`; TF's
    gradients are `tf.gradients` run by the Session.
  contains: op types the traced graph must contain (default: `op`).
  tf_rejects_all: every example is one TF rejects on purpose (ops that no graph TF runs
    can hold): the case checks that the conversion refuses them too. Otherwise a case
    of 3 or more examples that TF all rejects fails: it compared nothing.
  notes: anything a reader of the report should know.
  """

  op: str
  example: Callable[[str], Any]
  dtype_attr: str | None = "T"
  dtypes: tuple[str, ...] | None = None
  skip_dtypes: Mapping[str, str] = dataclasses.field(default_factory=dict)
  refused_dtypes: Mapping[str, str] = dataclasses.field(default_factory=dict)
  static_inputs: tuple[str, ...] = ()
  build: Callable[[Example], Callable] | None = None
  transforms: tuple[str, ...] = DEFAULT_TRANSFORMS
  grad_inputs: tuple[str, ...] | None = None
  grad_dtypes: tuple[str, ...] | None = None
  cotangents: Callable[[str, tuple], Any] | None = None
  tolerance: ToleranceSpec = None
  grad_tolerance: ToleranceSpec = None
  statistical: Callable[[np.ndarray, str], str | None] | None = None
  min_samples: int = 2000
  rng: bool = False
  variables: bool = False
  tf_jit_compile: bool = False
  tf_graph_grad: bool = False
  kernel_device: str = "CPU"
  kernel_op: str | None = None
  rewrite: Callable[[Any, Example], None] | None = None
  tf1_graph: bool = False
  contains: tuple[str, ...] | None = None
  tf_rejects_all: bool = False
  notes: str = ""

  def __post_init__(self):
    unknown = set(self.transforms) - set(TRANSFORMS)
    if unknown:
      raise SpecError(f"{self.op}: unknown transforms {sorted(unknown)}; "
                      f"known: {sorted(TRANSFORMS)}.")

  # Dtypes ---------------------------------------------------------------------------

  def kernel_dtypes(self) -> frozenset[str] | None:
    """What TF's kernel registry says about `dtype_attr` (None: any dtype)."""
    if self.dtype_attr is None:
      return None
    return D.kernel_dtypes(self.kernel_op or self.op, self.dtype_attr, self.kernel_device)

  def resolve_dtypes(self) -> tuple[tuple[str, ...], dict[str, str], dict[str, str]]:
    """(covered dtypes, skipped dtype -> reason, refused dtype -> reason).

    Raises `SpecError` when the spec and TF's kernel registry disagree: a covered or
    skipped dtype TF has no kernel for, or a kernel dtype neither covered nor explained.
    """
    kernel = self.kernel_dtypes()
    if kernel is not None and not kernel:
      raise SpecError(f"{self.op}: TF registers no {self.kernel_device} kernel for it; "
                      "set kernel_device.")
    if self.dtypes is None:
      if kernel is None:
        raise SpecError(f"{self.op}: TF's kernel accepts any {self.dtype_attr or 'dtype'}; "
                        "the spec must list its dtypes.")
      listed = set(kernel) - set(self.skip_dtypes) - set(self.refused_dtypes) - set(D.NOT_IN_JAX)
    else:
      listed = set(self.dtypes)
    if self.dtype_attr is None:
      if self.dtypes is None:
        raise SpecError(f"{self.op}: a spec without dtype_attr must list its dtypes.")
      universe = listed  # nothing in TF to cover
    else:
      universe = set(kernel) if kernel is not None else set(D.ALL)
    problems = []
    for name, what in [(listed, "covers"), (set(self.skip_dtypes), "skips"),
                       (set(self.refused_dtypes), "refuses")]:
      extra = sorted(name - universe)
      if extra:
        problems.append(f"it {what} {extra}, which TF's {self.kernel_device} kernel does "
                        "not accept")
    both = sorted((listed & set(self.skip_dtypes)) | (listed & set(self.refused_dtypes)))
    if both:
      problems.append(f"{both} are both covered and left out")
    explained = listed | set(self.skip_dtypes) | set(self.refused_dtypes) | set(D.NOT_IN_JAX)
    unexplained = sorted(universe - explained)
    if unexplained:
      problems.append(f"TF accepts {unexplained}, which it neither covers nor gives a "
                      "reason to leave out (skip_dtypes / refused_dtypes)")
    if problems:
      raise SpecError(f"{self.op} spec: " + "; ".join(problems) + ".")
    order = {d: i for i, d in enumerate(D.ALL)}
    covered = tuple(sorted(listed, key=lambda d: (order.get(d, len(order)), d)))
    skipped = {d: r for d, r in self.skip_dtypes.items()}
    for d in sorted((set(kernel) if kernel is not None else set()) & set(D.NOT_IN_JAX)
                    - listed):
      skipped.setdefault(d, D.NOT_IN_JAX[d])
    return covered, skipped, dict(self.refused_dtypes)

  def resolve_grad_dtypes(self) -> tuple[str, ...]:
    if "grad" not in self.transforms:
      return ()
    if self.grad_dtypes is not None:
      return tuple(self.grad_dtypes)
    return tuple(d for d in self.resolve_dtypes()[0] if d in D.FLOAT)

  # Tolerances -----------------------------------------------------------------------

  def tolerance_for(self, dtype: str, example: Example, grad: bool = False,
                    output: str | None = None) -> Tolerance:
    """The tolerance for an output of dtype `output` in the case of `dtype`.

    A callable tolerance decides for the whole case (it gets the case dtype); a mapping
    and the defaults go by the output's dtype.
    """
    tol = self.grad_tolerance if grad and self.grad_tolerance is not None else self.tolerance
    if callable(tol):
      return tol(dtype, example)
    name = output or dtype
    if tol is not None and name in tol:
      return tol[name]
    return default_tolerance(name)

  def tolerances(self, dtype: str, example: Example, grad: bool = False):
    """`resolve(output_dtype_name) -> Tolerance` for the outputs of one example."""
    return lambda output: self.tolerance_for(dtype, example, grad, output)

  @property
  def id(self) -> str:
    return self.op


def tolerances(default: Mapping[str, Tolerance] | None = None, **by_dtype: Tolerance
               ) -> dict[str, Tolerance]:
  """A tolerance mapping: the defaults, updated with `by_dtype`."""
  out = dict(DEFAULT_TOLERANCE if default is None else default)
  out.update(by_dtype)
  return out
