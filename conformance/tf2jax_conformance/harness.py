"""Running specs: one example against eager TensorFlow, one case under hypothesis.

Every example goes through the public API: the TF function is wrapped in `tf.function`
and converted with `tf2jax.convert_functional` (or `tf2jax.convert` for variables).
The reference is the same Python function run eagerly by TensorFlow.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import warnings
from typing import Callable

import numpy as np
import tree
from hypothesis import given, settings as hyp_settings
from hypothesis import strategies as st

from tf2jax_conformance import dtypes as D
from tf2jax_conformance import profiles
from tf2jax_conformance import strategies as S
from tf2jax_conformance.compare import Mismatch, assert_same, to_numpy
from tf2jax_conformance.spec import Example, OpSpec, SpecError, Tolerance

VMAP_BATCH = 3
NARROW_DTYPES = D.FLOAT8 + D.FLOAT4 + D.NARROW_INT


class ConformanceFailure(AssertionError):
  """tf2jax disagrees with TensorFlow on one example (the message says how)."""

  def __init__(self, op: str, dtype: str, transform: str, message: str,
               example: Example | None = None):
    self.op, self.dtype, self.transform, self.example = op, dtype, transform, example
    self.reason = message
    text = f"{op} [{dtype}] {transform}: {message}"
    if example is not None:
      text += f"\n  example: {example!r}"
    super().__init__(text)


# Cases -------------------------------------------------------------------------------


@dataclasses.dataclass
class Case:
  """One test case: a spec and one of its dtypes (or a spec that is itself broken)."""

  spec: OpSpec
  spec_provider: str
  dtype: str | None
  refused: str | None = None  # reason, when tf2jax refuses this dtype on purpose
  error: str | None = None  # the spec is malformed

  @property
  def id(self) -> str:
    if self.dtype is None:
      return f"{self.spec.op}-spec"
    return f"{self.spec.op}-{self.dtype}" + ("-refused" if self.refused else "")


@dataclasses.dataclass
class CaseResult:
  op: str
  dtype: str | None
  spec_provider: str
  status: str = "pass"  # "pass" or "fail"
  examples: int = 0
  # Examples checked against TF: its output compared, or (for a `tf_rejects_all` spec)
  # its error matched. A passing case with none verifies nothing (TF raised on each).
  compared: int = 0
  transforms: set = dataclasses.field(default_factory=set)
  refused: str | None = None
  error: str | None = None
  failing_example: str | None = None
  seconds: float = 0.0


def case_transforms(spec: OpSpec, dtype: str) -> tuple[str, ...]:
  """The transforms checked on every example of a case, "eager" first."""
  grad = spec.resolve_grad_dtypes()
  out = [t for t in spec.transforms if t != "grad" or dtype in grad]
  if dtype in D.NO_GRAPH_CONSTANT and "static" in out:
    out.remove("static")  # TF cannot bake such constants into a graph
  return ("eager",) + tuple(out)


def check_case(case: Case, settings: hyp_settings | None = None,
               result: CaseResult | None = None) -> CaseResult:
  """Runs a case under hypothesis; raises the minimal failing example's error."""
  import time
  result = result or CaseResult(case.spec.op, case.dtype, case.spec_provider,
                                refused=case.refused)
  if case.error is not None:
    result.status, result.error = "fail", case.error
    raise SpecError(case.error)
  settings = settings or profiles.settings()
  if case.refused is not None:
    settings = hyp_settings(settings, max_examples=min(settings.max_examples, 2))
  elif case.dtype in NARROW_DTYPES:
    # Narrow dtypes (float8, float4, int4, int2) only pass through the ops that take them.
    settings = hyp_settings(settings, max_examples=max(1, settings.max_examples // 2))
  spec, dtype = case.spec, case.dtype
  start = time.perf_counter()
  state = _CaseState(x64_every_example=profiles.x64_every_example(settings))

  def run(data):
    example = data.draw(spec.example(dtype), label="example")
    result.failing_example = repr(example)
    if case.refused is not None:
      _check_refused(spec, dtype, example)
      result.transforms.add("refused")
    else:
      result.transforms |= run_example(spec, dtype, example, data.draw, state)
    result.examples += 1
    result.failing_example = None

  run._hypothesis_internal_add_digest = f"{case.spec_provider}:{case.id}".encode()
  test = hyp_settings(settings)(given(data=st.data())(run))
  try:
    test()
    result.compared = result.examples if spec.tf_rejects_all else state.tf_accepted
    # Two examples (the ci profile) may both be error cases by design of a strategy;
    # from three on, a case whose every example TF rejects is a broken spec.
    if (case.refused is None and not spec.tf_rejects_all and result.examples >= 3
        and not state.tf_accepted):
      raise SpecError(f"{spec.op} [{dtype}]: TF raised on all {result.examples} examples, "
                      "so nothing was compared; the spec must draw inputs TF accepts.")
  except BaseException as e:
    result.status = "fail"
    failures = list(e.exceptions) if isinstance(e, BaseExceptionGroup) else [e]
    result.error = "\n".join(_describe_failure(f) for f in failures)
    examples = [repr(f.example) for f in failures
                if isinstance(f, ConformanceFailure) and f.example is not None]
    if examples:
      result.failing_example = "\n".join(examples)
    raise
  finally:
    result.seconds = time.perf_counter() - start
    # Every example compiles its own functions, which no later case reuses: dropping
    # JAX's caches keeps a whole run's memory flat (2 GB less over 200 cases).
    import jax
    jax.clear_caches()
  return result


def _describe_failure(e: BaseException) -> str:
  if isinstance(e, ConformanceFailure):
    return f"{e.transform}: {e.reason}"
  return f"{type(e).__name__}: {e}"


# One example -------------------------------------------------------------------------


@dataclasses.dataclass
class _CaseState:
  """What the examples of one case share. x64 mode changes dtypes, not values: unless the
  profile says otherwise it is checked until one example passes it, and again on every
  example once any example failed (so that hypothesis replays stay deterministic)."""

  x64_every_example: bool = True
  x64_checked: bool = False
  failed: bool = False
  tf_accepted: int = 0  # examples TF ran without error


def run_example(spec: OpSpec, dtype: str, example: Example, draw: Callable,
                state: _CaseState | None = None) -> set[str]:
  """Checks one example under every transform of the case; returns the ones checked."""
  with _quiet():
    try:
      done = (_Tf1Run if spec.tf1_graph else _Run)(spec, dtype, example, draw, state).check()
    except BaseException:
      if state is not None:
        state.failed, state.x64_checked = True, False
      raise
    if state is not None and "x64" in done and not state.failed:
      state.x64_checked = True
    return done


@contextlib.contextmanager
def _quiet():
  """No warnings from NumPy, JAX or TF (e.g. TF's notes on retracing: every example
  traces its own tf.function on purpose)."""
  tf_logger = logging.getLogger("tensorflow")
  level = tf_logger.level
  tf_logger.setLevel(logging.ERROR)
  try:
    with warnings.catch_warnings(), np.errstate(all="ignore"):
      warnings.simplefilter("ignore")
      yield
  finally:
    tf_logger.setLevel(level)


def _tf():
  import tensorflow as tf
  return tf


def tf_dtype(name: str):
  return _tf().as_dtype(D.np_dtype(name))


def tf_attrs(op: str, attrs: dict) -> dict:
  """Attrs for `tf.raw_ops.<op>`: dtype names of type attrs become tf.DTypes."""
  from tensorflow.python.framework import op_def_registry
  op_def = op_def_registry.get(op)
  kinds = {a.name: a.type for a in op_def.attr} if op_def is not None else {}
  out = {}
  for k, v in attrs.items():
    if kinds.get(k) == "type" and isinstance(v, str):
      v = tf_dtype(v)
    elif kinds.get(k) == "list(type)" and isinstance(v, (list, tuple)):
      v = [tf_dtype(x) if isinstance(x, str) else x for x in v]
    out[k] = v
  return out


def _tensor(value):
  """tf.constant(value), but a 0-d array: TF's eager cache of scalar constants takes a
  Python or NumPy float -0.0 made after 0.0 for that 0.0 (they compare equal)."""
  return _tf().constant(np.asarray(value))


def _const(value):
  if isinstance(value, (list, tuple)):
    return [_tensor(v) for v in value]
  return _tensor(value)


def raw_op_body(spec: OpSpec, example: Example) -> Callable:
  """`fn(*tensors)` calling `tf.raw_ops.<op>` with the example's inputs and attrs."""
  tf = _tf()
  if not hasattr(tf.raw_ops, spec.op):
    raise SpecError(f"{spec.op}: tf.raw_ops has no {spec.op}; give the spec a build().")
  op = getattr(tf.raw_ops, spec.op)
  layout = _layout(spec, example)
  attrs = tf_attrs(spec.op, example.attrs)
  static = {k: example.inputs[k] for k in spec.static_inputs}

  def body(*tensors):
    kwargs = _unflatten(layout, tensors)
    kwargs.update({k: _const(v) for k, v in static.items()})
    return op(**kwargs, **attrs)
  return body


def _layout(spec: OpSpec, example: Example) -> list[tuple[str, int | None]]:
  missing = [k for k in spec.static_inputs if k not in example.inputs]
  if missing:
    raise SpecError(f"{spec.op}: static inputs {missing} are not in the example.")
  return [(k, len(v) if isinstance(v, (list, tuple)) else None)
          for k, v in example.inputs.items() if k not in spec.static_inputs]


def _unflatten(layout, tensors) -> dict:
  it = iter(tensors)
  out = {}
  for name, n in layout:
    out[name] = next(it) if n is None else [next(it) for _ in range(n)]
  return out


def flat_args(spec: OpSpec, example: Example) -> list[np.ndarray]:
  """The non-static inputs, flattened in `example.inputs` order (lists expanded)."""
  out = []
  for k, v in example.inputs.items():
    if k in spec.static_inputs:
      continue
    out.extend(v if isinstance(v, (list, tuple)) else [v])
  return [np.asarray(a) for a in out]


def _leaves_np(x):
  return tree.map_structure(lambda v: None if v is None else to_numpy(v), x)


def _dtype_names(x) -> list[str]:
  names = []
  for leaf in tree.flatten(x):
    if isinstance(leaf, str) and leaf in D.ALL:
      names.append(leaf)
    elif hasattr(leaf, "dtype"):
      try:
        names.append(D.name_of(leaf.dtype))
      except TypeError:
        pass
  return names


def _graph_ops(concrete, spec: OpSpec, example: Example) -> set[str]:
  gd = concrete.graph.as_graph_def()
  if spec.rewrite is not None:
    spec.rewrite(gd, example)
  ops = {n.op for n in gd.node}
  for f in gd.library.function:
    ops.update(n.op for n in f.node_def)
  return ops


def convert_functional(spec: OpSpec, example: Example, fn, specs) -> Callable:
  """`tf2jax.convert_functional(fn, *specs)`; for a spec with `rewrite`, the traced graph
  rewritten and converted with `tf2jax.convert_graph_def`."""
  import tf2jax
  if spec.rewrite is None:
    return tf2jax.convert_functional(fn, *specs)
  concrete = fn.get_concrete_function(*specs)
  gd = concrete.graph.as_graph_def()
  spec.rewrite(gd, example)
  outputs = [t.name for t in concrete.outputs]
  jax_fn = tf2jax.convert_graph_def(gd, [t.name for t in concrete.inputs], outputs)
  structure = concrete.structured_outputs
  return lambda *a, **kw: tree.unflatten_as(structure, jax_fn(*a, **kw))


class _Run:
  """Everything about one example: the TF reference, the conversion, the transforms."""

  def __init__(self, spec: OpSpec, dtype: str, example: Example, draw: Callable,
               state: "_CaseState | None" = None):
    self.spec, self.dtype, self.example, self.draw = spec, dtype, example, draw
    self.args = flat_args(spec, example)
    self.key = None
    self.state = state

  def fail(self, transform: str, message: str):
    raise ConformanceFailure(self.spec.op, self.dtype, transform, message, self.example)

  def body(self) -> Callable:
    if self.spec.build is not None:
      return self.spec.build(self.example)
    return raw_op_body(self.spec, self.example)

  def reference(self, body, args):
    """TF's eager result (numpy leaves), or the exception TF raised."""
    tf = _tf()
    try:
      tensors = [_tensor(a) for a in args]
      if self.spec.tf_jit_compile:
        out = tf.function(body, jit_compile=True, autograph=False)(*tensors)
      else:
        out = body(*tensors)
      return _leaves_np(out), None
    except Exception as e:  # TF rejects the input
      return None, e

  def convert(self, body, args):
    import tf2jax
    tf = _tf()
    fn = tf.function(body, autograph=False)
    specs = [tf.TensorSpec(a.shape, tf.as_dtype(a.dtype)) for a in args]
    if self.spec.variables:
      jax_fn, params = tf2jax.convert(fn, *specs)
    else:
      jax_fn, params = convert_functional(self.spec, self.example, fn, specs), None
    return fn, specs, jax_fn, params

  def graph_ops(self, fn, tf_specs) -> set[str]:
    return _graph_ops(fn.get_concrete_function(*tf_specs), self.spec, self.example)

  def call(self, jax_fn, params, args, jit: bool = False):
    import jax
    kwargs = {"rng": self.key} if self.spec.rng else {}
    if self.spec.variables:
      f = (lambda p, *a: jax_fn(p, *a, **kwargs))
      f = jax.jit(f) if jit else f
      outs, new_params = f(params, *args)
      return _leaves_np(outs), {k: to_numpy(v) for k, v in new_params.items()}
    f = (lambda *a: jax_fn(*a, **kwargs))
    f = jax.jit(f) if jit else f
    return _leaves_np(f(*args)), None

  def check(self) -> set[str]:
    import jax
    spec, dtype = self.spec, self.dtype
    wanted = case_transforms(spec, dtype)
    if spec.rng:
      seed = self.draw(st.integers(0, 2**32 - 1), label="rng seed")
      self.key = jax.random.PRNGKey(seed)
    body = self.body_fn = self.body()
    names = (_dtype_names(self.args) + _dtype_names(self.example.attrs)
             + _dtype_names([self.example.inputs[k] for k in spec.static_inputs]))
    x64 = any(D.is_64bit(n) for n in names)
    done: set[str] = set()
    # Convert before running TF: TF's run may assign to variables the conversion reads.
    try:
      fn, tf_specs, jax_fn, params = self.convert(body, self.args)
      self.jax_fn = jax_fn
      conv_error = None
    except Exception as e:
      conv_error = e
    want, tf_error = self.reference(body, self.args)
    if want is not None:
      x64 = x64 or any(D.is_64bit(n) for n in _dtype_names(want))
    tf_vars = self._tf_variables(fn, tf_specs) if (spec.variables and conv_error is None) \
        else None
    if tf_error is not None:
      self._expect_error("eager", tf_error, conv_error,
                         lambda: self.call(jax_fn, params, self.args))
      return {"eager"}
    if self.state is not None:
      self.state.tf_accepted += 1
    if conv_error is not None:
      self.fail("eager", f"conversion failed where TF succeeds: {_err(conv_error)}")
    ops = self.graph_ops(fn, tf_specs)
    if any(o not in ops for o in (spec.contains or (spec.op,))):
      raise SpecError(f"{spec.op}: the traced graph lacks {spec.op} or "
                      f"{spec.contains}; it has {sorted(ops)}.")
    with jax.enable_x64(x64):
      self.compare("eager", want, tf_vars, lambda a: self.call(jax_fn, params, a))
      done.add("eager")
      if "static" in wanted:
        self.check_static(body, want)
        done.add("static")
      vmap_prep = self.prepare_vmap(body) if "vmap" in wanted else None
      grad_prep = self.prepare_grad(body, want) if "grad" in wanted else None
      fast = ("jit" in wanted and not spec.variables and not spec.rng
              and (vmap_prep is not None or grad_prep is not None)
              and self.check_together(jax_fn, want, vmap_prep, grad_prep))
      if not fast:
        if "jit" in wanted:
          self.compare("jit", want, tf_vars,
                       lambda a: self.call(jax_fn, params, a, jit=True))
        if vmap_prep is not None:
          self.check_vmap(jax_fn, vmap_prep)
        if grad_prep is not None:
          self.check_grad(jax_fn, grad_prep)
      done.update(t for t in ("jit", "vmap", "grad") if t in wanted)
    if "x64" in wanted:
      if not x64 and not (self.state is not None and self.state.x64_checked
                          and not self.state.x64_every_example):
        with jax.enable_x64(True):
          self.compare("x64", want, tf_vars,
                       lambda a: self.call(jax_fn, params, a, jit=True))
      done.add("x64")
    return done

  # Checks -----------------------------------------------------------------------------

  def _expect_error(self, transform, tf_error, conv_error, call):
    if conv_error is not None:
      return
    try:
      with contextlib.suppress(Warning):
        call()
    except Exception:
      return
    self.fail(transform, f"TF raises {_err(tf_error)}, but the converted function "
                         "returns a result")

  def _tf_variables(self, fn, tf_specs) -> dict:
    concrete = fn.get_concrete_function(*tf_specs)
    out = {}
    for v in concrete.variables:
      name = v.name[:-2] if v.name.endswith(":0") else v.name
      out[name] = v
    return out

  def same(self, transform: str, want, tol, compute: Callable, what: str = "output",
           note: str = "", reference: Callable | None = None) -> None:
    """`compute(args)` must match `want`, TF's result on `self.args`.

    Subnormal inputs: TF's CPU kernels and XLA's vectorized code may each treat them as
    zero (denormals-are-zero) or not, so when the inputs hold subnormals and the results
    differ, both sides are run again with those inputs flushed to zero and must agree.
    """
    try:
      got = compute(self.args)
    except Exception as e:
      self.fail(transform, f"the converted function raised {_err(e)}{note}")
    try:
      assert_same(got, want, tol, what)
      return
    except Mismatch as e:
      first = e
    flushed = flush_subnormals(self.args)
    if flushed is not None:
      flushed_want = reference(flushed) if reference is not None else None
      try:
        assert_same(compute(flushed), flushed_want, tol, what)
        return
      except Exception:
        pass
    self.fail(transform, f"{first}{note}")

  def compare(self, transform: str, want, tf_vars: dict | None, call) -> None:
    tol = self.spec.tolerances(self.dtype, self.example)
    try:
      got, new_params = call(self.args)
    except Exception as e:
      self.fail(transform, f"the converted function raised {_err(e)}")
    if self.spec.statistical is not None:
      self.check_random(transform, got, want, lambda: call(self.args))
      return
    self.same(transform, want, tol, lambda a: call(a)[0],
              reference=lambda a: self.reference(self.body_fn, a)[0])
    if tf_vars is not None:
      for name, var in tf_vars.items():
        if name not in new_params:
          self.fail(transform, f"params lack variable {name!r} (have {sorted(new_params)})")
        try:
          assert_same(new_params[name], to_numpy(var.numpy()), tol, f"variable {name!r}")
        except Mismatch as e:
          self.fail(transform, str(e))

  def check_random(self, transform, got, want, call) -> None:
    import jax
    flat_got, flat_want = tree.flatten(got), tree.flatten(want)
    if len(flat_got) != len(flat_want):
      self.fail(transform, f"{len(flat_got)} outputs, TF has {len(flat_want)}")
    for g, w in zip(flat_got, flat_want):
      if g.shape != w.shape or g.dtype != w.dtype:
        self.fail(transform, f"output {D.name_of(g.dtype)}{list(g.shape)}, TF's is "
                             f"{D.name_of(w.dtype)}{list(w.shape)}")
    size = sum(int(np.size(g)) for g in flat_got)
    if size == 0:
      return
    samples = [np.concatenate([np.ravel(g) for g in flat_got])]
    more = -(-self.spec.min_samples // size) - 1  # calls with other keys, batched by vmap
    if more > 0:
      args = [jax.numpy.asarray(a) for a in self.args]
      keys = jax.random.split(jax.random.fold_in(self.key, 1), more)
      try:
        outs = jax.jit(jax.vmap(lambda k: tree.flatten(self.jax_fn(*args, rng=k))))(keys)
      except Exception as e:
        self.fail(transform, f"jax.vmap over rng keys raised {_err(e)}")
      samples += [np.ravel(to_numpy(o)) for o in outs]
    reason = self.spec.statistical(np.concatenate(samples), self.dtype)
    if reason:
      self.fail(transform, f"samples fail the statistical check: {reason}")

  def check_static(self, body, want) -> None:
    """Every input a constant of the graph: lowerings take their NumPy path."""
    tf = _tf()

    def compute(args):
      fn0 = tf.function(lambda: body(*[tf.constant(a) for a in args]), autograph=False)
      return _leaves_np(convert_functional(self.spec, self.example, fn0, [])())
    self.same("static", want, self.spec.tolerances(self.dtype, self.example), compute,
              reference=lambda a: self.reference(body, a)[0])

  # vmap and grad: a TF reference (prepare_*), then JAX's result (compute_*) -------------

  def prepare_vmap(self, body):
    """(batched inputs, TF's results row by row stacked, loop) or None if TF rejects a
    row. The batch: each input and its flat values rolled by 1 and 2 places (the same
    values, so domains hold)."""
    if not self.args:
      raise SpecError(f"{self.spec.op}: vmap needs at least one non-static input.")
    batched = [np.stack([np.roll(a.reshape(-1), k).reshape(a.shape)
                         for k in range(VMAP_BATCH)]) for a in self.args]

    def loop(args):
      rows = []
      for i in range(VMAP_BATCH):
        out, err = self.reference(body, [b[i] for b in args])
        if err is not None:
          return None
        rows.append(out)
      return tree.map_structure(lambda *xs: np.stack(xs), *rows)
    want = loop(batched)
    return None if want is None else (batched, want, loop)

  @staticmethod
  def compute_vmap(jax_fn, batched):
    import jax
    return jax.vmap(jax_fn)(*batched)

  def check_vmap(self, jax_fn, prepared) -> None:
    import jax
    batched, want, loop = prepared
    self.args, single = batched, self.args
    try:
      self.same("vmap", want, self.spec.tolerances(self.dtype, self.example),
                lambda a: _leaves_np(jax.jit(lambda b: self.compute_vmap(jax_fn, b))(a)),
                reference=loop, note=f"\n  batch: {[b.tolist() for b in batched]}")
    finally:
      self.args = single

  def prepare_grad(self, body, want):
    """(positions, cotangents, TF's gradients or None, TF's error or None, gradients(args)
    computing TF's gradients, tolerance)."""
    tf = _tf()
    spec = self.spec
    positions = self._grad_positions()
    outs = tree.flatten(want)
    if not positions or not outs or any(D.name_of(o.dtype) not in D.FLOAT for o in outs):
      raise SpecError(f"{spec.op}: grad needs floating inputs and outputs; set "
                      "transforms or grad_dtypes.")
    make_ct = spec.cotangents or S.cotangents
    cts = [self.draw(make_ct(D.name_of(o.dtype), o.shape), label=f"cotangent {i}")
           for i, o in enumerate(outs)]

    def gradients(*tensors):
      with tf.GradientTape() as tape:
        for p in positions:
          tape.watch(tensors[p])
        out = body(*tensors)
      grads = tape.gradient(tree.flatten(out), [tensors[p] for p in positions],
                            output_gradients=[_tensor(c) for c in cts])
      return [tf.zeros_like(tensors[p]) if g is None else g for p, g in zip(positions, grads)]

    def tf_gradients(args):
      if spec.tf1_graph:  # tf.gradients in the TF1 graph, run by a Session
        return self.session_gradients(body, positions, cts, args)
      tensors = [_tensor(a) for a in args]
      if spec.tf_graph_grad:
        return [to_numpy(g) for g in tf.function(gradients, autograph=False)(*tensors)]
      return [to_numpy(g) for g in gradients(*tensors)]
    tf_grads, tf_error = None, None
    try:
      tf_grads = tf_gradients(self.args)
    except Exception as e:
      tf_error = e
    if spec.grad_tolerance is not None:
      tol = spec.tolerances(self.dtype, self.example, grad=True)
    else:
      # Each side rounds a few intermediate results (e.g. dy * (1 - y*y) against
      # dy * (1 + y) * (1 - y)) and the forward results may already differ by the forward
      # tolerance: twice the forward rtol, and that much of the largest cotangent.
      ct_max = max([float(np.max(np.abs(c.astype(np.float64)))) for c in cts if c.size] + [0.0])

      def tol(name):
        base = spec.tolerance_for(self.dtype, self.example, output=name)
        return Tolerance(2 * base.rtol, base.atol + 2 * base.rtol * ct_max)
    return positions, cts, tf_grads, tf_error, tf_gradients, tol

  @staticmethod
  def compute_grad(jax_fn, positions, all_args, cts):
    """JAX's vjp of the converted function at `all_args` (traceable)."""
    import jax

    def f(*diff):
      args = list(all_args)
      for p, d in zip(positions, diff):
        args[p] = d
      return tree.flatten(jax_fn(*args))
    return jax.vjp(f, *[all_args[p] for p in positions])[1](list(cts))

  def check_grad(self, jax_fn, prepared) -> None:
    import jax
    import jax.numpy as jnp
    positions, cts, tf_grads, tf_error, tf_gradients, tol = prepared
    note = f"\n  cotangents: {[c.tolist() for c in cts]}"

    def jax_grads(all_args):
      grads = jax.jit(lambda a, c: self.compute_grad(jax_fn, positions, a, c))(
          [jnp.asarray(a) for a in all_args], [jnp.asarray(c) for c in cts])
      return [to_numpy(g) for g in grads]
    if tf_error is not None:
      self._expect_error("grad", tf_error, None, lambda: jax_grads(self.args))
      return
    self.same("grad", tf_grads, tol, jax_grads, what="gradient", note=note,
              reference=tf_gradients)

  def check_together(self, jax_fn, want, vmap_prep, grad_prep) -> bool:
    """jit, vmap and grad in one compiled function (one XLA compilation instead of
    three). True when all match TF; otherwise the caller checks them one by one, which
    also explains a failure."""
    import jax
    import jax.numpy as jnp
    if grad_prep is not None and grad_prep[3] is not None:
      return False  # TF raised: grad has its own check

    def together(args, batched, cts):
      out = {"jit": jax_fn(*args)}
      if vmap_prep is not None:
        out["vmap"] = self.compute_vmap(jax_fn, batched)
      if grad_prep is not None:
        out["grad"] = self.compute_grad(jax_fn, grad_prep[0], args, cts)
      return out
    try:
      got = jax.jit(together)(
          [jnp.asarray(a) for a in self.args],
          [jnp.asarray(b) for b in vmap_prep[0]] if vmap_prep is not None else [],
          [jnp.asarray(c) for c in grad_prep[1]] if grad_prep is not None else [])
      got = {k: _leaves_np(v) for k, v in got.items()}
      tols = self.spec.tolerances(self.dtype, self.example)
      assert_same(got["jit"], want, tols)
      if vmap_prep is not None:
        assert_same(got["vmap"], vmap_prep[1], tols)
      if grad_prep is not None:
        assert_same(got["grad"], grad_prep[2], grad_prep[5])
      return True
    except Exception:
      return False

  def _grad_positions(self) -> list[int]:
    spec = self.spec
    positions, i = [], 0
    for k, v in self.example.inputs.items():
      if k in spec.static_inputs:
        continue
      items = v if isinstance(v, (list, tuple)) else [v]
      for a in items:
        wanted = (k in spec.grad_inputs) if spec.grad_inputs is not None else True
        if wanted and D.name_of(np.asarray(a).dtype) in D.FLOAT:
          positions.append(i)
        i += 1
    return positions


def _check_refused(spec: OpSpec, dtype: str, example: Example) -> None:
  """tf2jax must refuse the dtype with UnsupportedOpsError at conversion time."""
  import tf2jax
  tf = _tf()
  run = _Run(spec, dtype, example, None)
  body = run.body()
  fn = tf.function(body, autograph=False)
  specs = [tf.TensorSpec(a.shape, tf.as_dtype(a.dtype)) for a in run.args]
  try:
    with _quiet():
      convert_functional(spec, example, fn, specs)
  except tf2jax.UnsupportedOpsError as e:
    if not any(b.op == spec.op for b in e.bad_attrs) and not any(
        m.op == spec.op for m in e.missing):
      raise ConformanceFailure(spec.op, dtype, "refused",
                               f"UnsupportedOpsError does not name {spec.op}: {e}", example)
    return
  except Exception as e:
    raise ConformanceFailure(spec.op, dtype, "refused",
                             f"expected UnsupportedOpsError, got {_err(e)}", example)
  raise ConformanceFailure(
      spec.op, dtype, "refused",
      f"the spec says tf2jax refuses {dtype} ({spec.refused_dtypes[dtype]}), but it "
      "converts: verify the dtype instead (move it to the covered dtypes).", example)


def flush_subnormals(args: list[np.ndarray]) -> list[np.ndarray] | None:
  """The arrays with subnormal floats replaced by (signed) zeros; None if there are none."""
  out, changed = [], False
  for a in args:
    name = D.name_of(a.dtype)
    if D.is_float(name) or name in D.COMPLEX:
      part = {"complex64": "float32", "complex128": "float64"}.get(name, name)
      tiny = float(D.finfo(part).tiny)

      def flush(x):
        x64 = x.astype(np.float64)
        return np.where((x64 != 0) & (np.abs(x64) < tiny), np.copysign(0.0, x64), x64)
      if name in D.COMPLEX:
        f = (flush(a.real) + 1j * flush(a.imag)).astype(a.dtype)
        sub = np.any(f != a)
      else:
        f = flush(a).astype(a.dtype)
        sub = np.any(f.astype(np.float64) != a.astype(np.float64))
      if sub:
        changed = True
        a = f
    out.append(a)
  return out if changed else None


def _err(e: BaseException) -> str:
  text = str(e).strip().splitlines()
  first = text[0] if text else ""
  more = " ..." if len(text) > 1 else ""
  return f"{type(e).__name__}: {first[:500]}{more}"


# TF1 graphs (OpSpec.tf1_graph) -------------------------------------------------------


class _Tf1Run(_Run):
  """A spec whose op only a tf.compat.v1 Graph holds (TF1 control flow, which TF2's
  tf.function never builds). `build(example)` makes the op's graph from placeholders (or
  constants, for "static") with control flow v2 off; variables are frozen into constants
  as in a frozen model. TF's result is a Session run of that GraphDef, tf2jax converts the
  same GraphDef with `tf2jax.convert_graph_def`, and TF's gradients are `tf.gradients`
  in the graph, run by a Session. The Sessions run the graph as written, without Grappler
  (which, e.g., leaves _SwitchN conds of int32 values without a result)."""

  @staticmethod
  def session(graph):
    from tensorflow.core.protobuf import config_pb2
    config = config_pb2.ConfigProto()
    config.graph_options.rewrite_options.disable_meta_optimizer = True
    return _tf().compat.v1.Session(graph=graph, config=config)

  def graph(self, body, args, constants: bool = False):
    """(graph, inputs, structured outputs), built with TF1 control flow."""
    from tensorflow.python.ops import control_flow_util
    tf = _tf()
    graph = tf.Graph()
    v2 = control_flow_util.ENABLE_CONTROL_FLOW_V2
    control_flow_util.ENABLE_CONTROL_FLOW_V2 = False
    try:
      with graph.as_default():
        inputs = [tf.constant(a) if constants else
                  tf.compat.v1.placeholder(tf.as_dtype(a.dtype), a.shape, name=f"input_{i}")
                  for i, a in enumerate(args)]
        out = body(*inputs)
    finally:
      control_flow_util.ENABLE_CONTROL_FLOW_V2 = v2
    return graph, inputs, out

  def graph_def(self, body, args, constants: bool = False):
    """(GraphDef, input names, output names, output structure); checks `contains`."""
    tf = _tf()
    graph, inputs, out = self.graph(body, args, constants)
    outputs = [t.name for t in tree.flatten(out)]
    graph_def = graph.as_graph_def()
    if graph.get_collection(tf.compat.v1.GraphKeys.GLOBAL_VARIABLES):
      from tensorflow.python.framework import convert_to_constants
      with tf.compat.v1.Session(graph=graph) as sess:
        sess.run(tf.compat.v1.global_variables_initializer())
        graph_def = convert_to_constants.convert_variables_to_constants_from_session_graph(
            sess, graph_def, [n.split(":")[0] for n in outputs])
    ops = {n.op for n in graph_def.node}
    missing = [o for o in (self.spec.contains or (self.spec.op,)) if o not in ops]
    if missing:
      raise SpecError(f"{self.spec.op}: the TF1 graph lacks {missing}; it has "
                      f"{sorted(ops)}.")
    return graph_def, [t.name for t in inputs], outputs, out

  def reference(self, body, args):
    tf = _tf()
    try:
      graph_def, inputs, outputs, out = self.graph_def(body, args)
    except SpecError:
      raise
    except Exception as e:
      return None, e
    try:
      with tf.Graph().as_default() as graph:
        tf.graph_util.import_graph_def(graph_def, name="")
      with self.session(graph) as sess:
        values = sess.run(outputs, dict(zip(inputs, args)))
      return _leaves_np(tree.unflatten_as(out, values)), None
    except Exception as e:  # TF rejects the input (or the graph)
      return None, e

  def convert(self, body, args):
    import tf2jax
    graph_def, inputs, outputs, out = self.graph_def(body, args)
    self.tf1_ops = {n.op for n in graph_def.node}
    jax_fn = tf2jax.convert_graph_def(graph_def, inputs, outputs)
    return None, None, (lambda *a: tree.unflatten_as(out, list(jax_fn(*a)))), None

  def graph_ops(self, fn, tf_specs) -> set[str]:
    return self.tf1_ops

  def check_static(self, body, want) -> None:
    import tf2jax

    def compute(args):
      graph_def, _, outputs, out = self.graph_def(body, args, constants=True)
      return _leaves_np(tree.unflatten_as(
          out, list(tf2jax.convert_graph_def(graph_def, [], outputs)())))
    self.same("static", want, self.spec.tolerances(self.dtype, self.example), compute,
              reference=lambda a: self.reference(body, a)[0])

  def session_gradients(self, body, positions, cts, args):
    from tensorflow.python.ops import control_flow_util
    tf = _tf()
    graph, inputs, out = self.graph(body, args)
    v2 = control_flow_util.ENABLE_CONTROL_FLOW_V2
    control_flow_util.ENABLE_CONTROL_FLOW_V2 = False
    try:
      with graph.as_default():
        grads = tf.gradients(tree.flatten(out), [inputs[p] for p in positions],
                             grad_ys=[tf.constant(c) for c in cts])
        grads = [tf.zeros_like(inputs[p]) if g is None else g
                 for p, g in zip(positions, grads)]
    finally:
      control_flow_util.ENABLE_CONTROL_FLOW_V2 = v2
    with self.session(graph) as sess:
      return [to_numpy(g) for g in sess.run(grads, dict(zip(inputs, args)))]
