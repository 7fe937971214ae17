"""Compiling graphs into step lists at conversion time, and running them at call time.

`Session.compile_graph` resolves a lowering for every node of a graph and of every
library function it reaches, collecting *all* missing ops before failing. The result,
a `CompiledGraph`, is a topologically ordered list of steps; running it is a plain
Python loop over JAX values, so `jit`, `grad` and `vmap` apply to it.
"""

from __future__ import annotations

import collections
import dataclasses
import zlib
from typing import Any, Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from tf2jax_core import dtypes
from tf2jax_core.errors import (BadAttr, ConversionError, DtypeMismatchError,
                                GraphCycleError, MissingInputError, MissingOp,
                                NodeExecutionError, RecursiveFunctionError, SizeLimitError,
                                StaticInputError, UnsupportedOpsError)
from tf2jax_core.graph import Graph, Library, Node, referenced_functions
from tf2jax_core.lowering import Lowering, Provider, static_limit
from tf2jax_core.registry import OpTable, attr_problems
from tf2jax_core.validate import validate_graph


@dataclasses.dataclass(frozen=True)
class VariableRef:
  """The value of a resource handle: names the param it reads and writes."""

  name: str


@dataclasses.dataclass
class _Step:
  node: Node
  run: Callable
  args: tuple[tuple[int, int], ...]  # (step index, output port) per data input
  lowering: Lowering | None
  num_outputs: int | None
  expected: tuple | None  # TF's output dtypes
  expected_in: tuple = ()  # TF's dtypes of the data inputs


class CallContext:
  """What a context-taking lowering receives at call time."""

  def __init__(self, params: dict, rng, path: str = ""):
    self.params = params
    self._rng = rng
    self.path = path
    self.node: Node | None = None

  def rng(self):
    """A PRNG key for the current node, derived from the node, not the call order."""
    return jax.random.fold_in(self._rng, zlib.crc32(self.node.name.encode()))

  def child(self, call_node: Node) -> "CallContext":
    """The context of a function called from `call_node`."""
    rng = None if self._rng is None else jax.random.fold_in(
        self._rng, zlib.crc32(call_node.name.encode()))
    return CallContext(self.params, rng, f"{self.path}/{call_node.name}")

  def call(self, function: "CompiledGraph", args: Sequence,
           outputs: Sequence[int] | None = None) -> list:
    """Runs a compiled library function from the current node (optionally only some
    of its outputs)."""
    return function.run(self.child(self.node), args, outputs)


class CompiledGraph:
  """A graph whose nodes all have a lowering, ordered for evaluation."""

  def __init__(self, name: str, steps: list[_Step], input_steps: list[int],
               outputs: list[tuple[int, int]], output_dtypes: list):
    self.name = name
    self.steps = steps
    self.input_steps = input_steps
    self.outputs = outputs
    self.output_dtypes = output_dtypes
    self._needed_cache: dict[tuple[int, ...], list[bool]] = {}

  def needed_steps(self, outputs: Sequence[int]) -> list[bool]:
    """Which steps the given outputs depend on through data edges."""
    key = tuple(outputs)
    if key not in self._needed_cache:
      needed = [False] * len(self.steps)
      stack = [self.outputs[k][0] for k in key]
      while stack:
        i = stack.pop()
        if not needed[i]:
          needed[i] = True
          stack.extend(j for j, _ in self.steps[i].args)
      self._needed_cache[key] = needed
    return self._needed_cache[key]

  def input_dependencies(self, outputs: Sequence[int]) -> set[int]:
    """Positions of the inputs that the given outputs depend on."""
    needed = self.needed_steps(outputs)
    return {k for k, i in enumerate(self.input_steps) if needed[i]}

  def run(self, ctx: CallContext, inputs: Sequence, outputs: Sequence[int] | None = None
          ) -> list:
    """Evaluates the graph; with `outputs`, only those outputs and what they need."""
    if len(inputs) != len(self.input_steps):
      raise MissingInputError(
          f"Function {self.name!r} takes {len(self.input_steps)} inputs, got {len(inputs)}.")
    values: list[Any] = [None] * len(self.steps)
    limit = static_limit()
    needed = None if outputs is None else self.needed_steps(outputs)
    for index, value in zip(self.input_steps, inputs):
      values[index] = [value]
    for i, step in enumerate(self.steps):
      if values[i] is not None or (needed is not None and not needed[i]):
        continue
      args = [values[j][p] for j, p in step.args]
      try:
        if step.lowering is not None and step.lowering.static_inputs:
          _check_static(step, args)
        if step.lowering is not None and step.lowering.needs_context:
          ctx.node = step.node
          result = step.run(ctx, *args)
        else:
          result = step.run(*args)
      except (ConversionError, LookupError):
        raise
      except Exception as e:
        provider = step.lowering.provider if step.lowering else None
        raise NodeExecutionError(
            f"{step.node.op} node {step.node.path!r} (lowering from {provider}) failed: "
            f"{type(e).__name__}: {e}") from e
      values[i] = _outputs(step, result, args, limit)
    refs = self.outputs if outputs is None else [self.outputs[k] for k in outputs]
    return [values[j][p] for j, p in refs]


def _outputs(step: _Step, result, args, limit: int) -> list:
  if step.num_outputs == 1 and not (isinstance(result, (list, tuple)) and len(result) == 1):
    outs = [result]
  elif result is None:
    outs = []
  else:
    outs = list(result)
  for k, out in enumerate(outs):
    if isinstance(out, np.generic):
      outs[k] = out = np.asarray(out)
    if isinstance(out, np.ndarray) and out.nbytes > limit:
      raise SizeLimitError(
          f"{step.node.op} node {step.node.path!r} computed a static value of "
          f"{out.nbytes:,} bytes at conversion time, above max_static_value_bytes "
          f"({limit:,}); its lowering should pass result_bytes to xnp().")
    if step.expected is not None and k < len(step.expected):
      want = step.expected[k]
      got = getattr(out, "dtype", None)
      if isinstance(want, np.dtype) and got is not None and got != want:
        _dtype_mismatch(step, k, want, got, args)
  return outs


def _dtype_mismatch(step: _Step, port: int, want, got, args) -> None:
  node = step.node
  if dtypes.truncated_without_x64(want, got):
    raise DtypeMismatchError(x64_message(
        f"{node.op} node {node.path!r} must produce {want.name} (output {port})", got))
  # Inputs of other dtypes than TF's (e.g. bfloat16 fed for float32) flow through.
  for arg, want_in in zip(args, step.expected_in):
    got_in = getattr(arg, "dtype", None)
    if isinstance(want_in, np.dtype) and got_in is not None and got_in != want_in:
      return
  provider = step.lowering.provider if step.lowering else None
  raise DtypeMismatchError(
      f"{node.op} node {node.path!r}: the lowering from {provider} produced "
      f"{np.dtype(got).name} for output {port}, TensorFlow produces {want.name}.")


def x64_message(what: str, got) -> str:
  return (f"{what}, but JAX runs without 64-bit types and gave {np.dtype(got).name}. "
          "Enable them before converting and calling: "
          "jax.config.update('jax_enable_x64', True), or set JAX_ENABLE_X64=1.")


def _check_static(step: _Step, args) -> None:
  for i in step.lowering.static_inputs:
    if i < len(args) and not isinstance(args[i], np.ndarray):
      name, port = step.node.inputs[i]
      raise StaticInputError(
          f"{step.node.op} node {step.node.path!r}: input {i} (from {name}:{port}) must be "
          "known at conversion time, but it is computed from the function's inputs at call "
          "time. Make it a constant or derive it from static shapes in the TF function.")


class Session:
  """One conversion: the op table, the library and the compiled functions."""

  def __init__(self, table: OpTable, library: Library, rewrites: Sequence = (),
               what: str = "the function"):
    self.table = table
    self.library = library
    self.rewrites = list(rewrites)
    self.what = what
    self.functions: dict[str, CompiledGraph] = {}
    self._compiling: list[str] = []
    self.missing: dict[str, list[str]] = collections.OrderedDict()
    self.bad_attrs: list[BadAttr] = []
    self.random_nodes: list[Node] = []
    self.variable_nodes: list[Node] = []

  def rewrite(self, graph: Graph) -> None:
    for rewrite in self.rewrites:
      rewrite(graph)

  def function(self, name: str) -> CompiledGraph:
    """The compiled library function `name` (compiled once per conversion)."""
    if name in self.functions:
      return self.functions[name]
    if name in self._compiling:
      chain = " -> ".join(self._compiling[self._compiling.index(name):] + [name])
      raise RecursiveFunctionError(f"Library function {name!r} calls itself ({chain}).")
    self._compiling.append(name)
    try:
      graph = self.library.graph(name, self.rewrite)
      compiled = self.compile_graph(graph, graph.inputs, graph.outputs, graph.output_dtypes)
    finally:
      self._compiling.pop()
    self.functions[name] = compiled
    return compiled

  def compile_graph(self, graph: Graph, inputs: Sequence[str],
                    outputs: Sequence[tuple[str, int]], output_dtypes: Sequence = ()
                    ) -> CompiledGraph:
    validate_graph(graph, self.library)
    order = _topological_order(graph)
    index = {name: i for i, name in enumerate(order)}
    for name, port in outputs:
      if name not in index:
        raise MissingInputError(
            f"Output {name}:{port} of {graph.name or 'the graph'} names a missing node.")
    input_set = set(inputs)
    steps: list[_Step] = []
    for name in order:
      node = graph.nodes[name]
      node._resolver = self
      step = self._compile_node(node, index, is_input=name in input_set)
      step.expected_in = tuple(_expected(steps[j], p) for j, p in step.args)
      steps.append(step)
    return CompiledGraph(graph.name, steps, [index[n] for n in inputs],
                         [(index[n], p) for n, p in outputs], list(output_dtypes))

  def _compile_node(self, node: Node, index: dict, is_input: bool) -> _Step:
    args = tuple((index[n], p) for n, p in node.inputs)
    expected = node.output_dtypes  # filled by validate_graph
    num_outputs = len(expected) if expected is not None else None
    if is_input:
      return _Step(node, _unfed(node), args, None, 1, expected)
    lowering = self.table.get(node.op)
    if lowering is None and node.op in self.library:
      lowering = _function_call_lowering(node.op)
    if lowering is None:
      self.missing.setdefault(node.op, []).append(node.path)
      for fname in referenced_functions(node):  # still report what the bodies lack
        if fname in self.library:
          self.function(fname)
      return _Step(node, _unfed(node), args, None, num_outputs, None)
    problems = self._check_attrs(node, lowering)
    if problems:
      self.bad_attrs.extend(problems)
      return _Step(node, _unfed(node), args, lowering, num_outputs, None)
    if lowering.needs_rng:
      self.random_nodes.append(node)
    try:
      run = lowering.build(node)
    except (ConversionError, LookupError):
      raise
    except Exception as e:
      raise NodeExecutionError(
          f"Cannot lower {node.op} node {node.path!r} (lowering from {lowering.provider}): "
          f"{type(e).__name__}: {e}") from e
    # A builder that deliberately changes TF's dtype (e.g. the bfloat16 constant flags)
    # says so by updating node.output_dtypes.
    return _Step(node, run, args, lowering, num_outputs, node.output_dtypes)

  def _check_attrs(self, node: Node, lowering: Lowering) -> list[BadAttr]:
    return [BadAttr(node.op, node.path, name, value,
                    f"{reason} (lowering from {lowering.provider})")
            for name, value, reason in attr_problems(lowering, node.op, node.attrs)]

  def raise_if_unsupported(self, hint: Callable[[str], str]) -> None:
    if self.missing or self.bad_attrs:
      missing = [MissingOp(op, tuple(nodes), hint(op)) for op, nodes in self.missing.items()]
      raise UnsupportedOpsError(self.what, missing, self.bad_attrs)


def _expected(step: _Step, port: int):
  if step.expected is None or port >= len(step.expected):
    return None
  return step.expected[port]


def _unfed(node: Node) -> Callable:
  def run(*_):
    raise MissingInputError(f"{node.op} node {node.path!r} was not fed a value.")
  return run


def _function_call_lowering(fname: str) -> Lowering:
  """A node whose op is a library function (TF1-style call)."""
  def build(node: Node):
    function = node.function(fname)
    return lambda ctx, *args: ctx.call(function, args)
  return Lowering((fname,), build, needs_context=True, provider=Provider("tf2jax", "call"))


def _topological_order(graph: Graph) -> list[str]:
  """Kahn's algorithm over data and control edges; file order breaks ties."""
  nodes = graph.nodes
  indegree = {}
  users: dict[str, list[str]] = {name: [] for name in nodes}
  for name, node in nodes.items():
    deps = {n for n, _ in node.inputs} | set(node.control_inputs)
    for dep in deps:
      if dep not in nodes:
        raise MissingInputError(
            f"{node.op} node {node.path!r} has input {dep!r}, which is not in the graph "
            f"{graph.name or '(main)'}.")
      users[dep].append(name)
    indegree[name] = len(deps)
  ready = collections.deque(n for n in nodes if indegree[n] == 0)
  order = []
  while ready:
    name = ready.popleft()
    order.append(name)
    for user in users[name]:
      indegree[user] -= 1
      if indegree[user] == 0:
        ready.append(user)
  if len(order) != len(nodes):
    stuck = [n for n in nodes if indegree[n] > 0][:5]
    raise GraphCycleError(
        f"The graph {graph.name or '(main)'} has a cycle through nodes {stuck}; TF1 loop "
        "frames (Enter/Exit/NextIteration) need the controlflow plugin.")
  return order
