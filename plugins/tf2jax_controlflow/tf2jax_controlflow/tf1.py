"""TF1 control flow: Switch / Merge / Enter / Exit / NextIteration / LoopCond graphs
(`tf.compat.v1.cond` and `tf.compat.v1.while_loop` with control flow v2 off, as found in
frozen GraphDefs) rebuilt into structured loops and conditionals.

A graph rewrite (`rewrite`, run on every graph before lowerings are looked up) works from
the topology alone, as TF's own functionalization does
(`tensorflow/compiler/tf2xla/functionalize_*.cc`):

1. Loops, innermost frame first. Frames come from the Enter `frame_name`s; each
   `Switch(Merge(Enter, NextIteration), LoopCond)` is one loop variable, invariant Enters
   (`is_constant`) are closed-over values. The condition (back from the LoopCond) and the
   body (back from the NextIterations) are cut out as `Graph`s and the whole frame becomes
   one `_Tf1While` node; each Exit becomes an Identity of it, keeping its name.
2. Conditionals, innermost first. Every node gets a *cond state*, the map predicate ->
   branch it runs under (a Switch port adds `pred -> port`, a Merge removes the predicate
   its inputs differ on). Merges on one predicate under one outer state form one
   `_Tf1Cond` node, whose two branch `Graph`s start at the Switches' data inputs; each
   Merge becomes an Identity of it, keeping its name. `_SwitchN` (TF's lowering of Case:
   `num_outs` ports, chosen by an int32 index, out-of-range indices taking the last) with
   the N-input Merges closing it becomes a `_Tf1Cond` with N `branches`.

The new nodes' lowerings compile their sub-graphs with `Node.compile_subgraph` (graph
rewrites run on them too, so conds inside loop bodies are rebuilt there) and run them
with the TF2 While / If machinery: `lax.while_loop` (or a `fori_loop` when the trip count
is static), `lax.cond` (or the taken branch when the predicate is static), params
threaded through. What cannot be rebuilt is reported naming the node.
"""

from __future__ import annotations

import collections
import dataclasses

import jax.numpy as jnp
import numpy as np

from tf2jax_core import ConversionError, is_static, lowering
from tf2jax_core.errors import GraphCycleError
from tf2jax_core.graph import Graph, Library, Node, infer_output_dtypes
from tf2jax_controlflow.functional import _truth, case_runner, cond_runner, while_runner

SWITCH = ("Switch", "RefSwitch")
SWITCH_N = "_SwitchN"
MERGE = ("Merge", "RefMerge")
ENTER = ("Enter", "RefEnter")
EXIT = ("Exit", "RefExit")
NEXT = ("NextIteration", "RefNextIteration")
LOOP_COND = ("LoopCond",)
TF1_OPS = SWITCH + MERGE + ENTER + EXIT + NEXT + LOOP_COND + (SWITCH_N,)

WHILE_OP = "_Tf1While"
COND_OP = "_Tf1Cond"
ARG_OP = "_Tf1Arg"  # a sub-graph input of unknown dtype
PROBLEM = "_tf1_problem"  # attr on a node the rewrite could not place, read by its lowering

_EMPTY_LIBRARY = Library()


def rewrite(graph: Graph) -> None:
  """Replaces TF1 loop frames and Switch/Merge conds of `graph` by structured nodes."""
  nodes = graph.nodes
  if not any(n.op in TF1_OPS for n in nodes.values()):
    return
  if any(src not in nodes for n in nodes.values()
         for src in [s for s, _ in n.inputs] + n.control_inputs):
    return  # a broken graph: the validation pass names the missing input
  _fold_loops(graph)
  _fold_conds(graph)


# Shared helpers ----------------------------------------------------------------


def _where(graph: Graph) -> str:
  return graph.name or "(main)"


def _dtype_of(nodes: dict[str, Node], tensor: tuple[str, int]):
  node = nodes[tensor[0]]
  if node.op in (WHILE_OP, COND_OP):
    out = node.attrs["Tout"]
  else:
    try:
      out = infer_output_dtypes(node, _EMPTY_LIBRARY)
    except Exception:
      return None
  if out is None or tensor[1] >= len(out):
    return None
  return out[tensor[1]]


def _placeholder(name: str, dtype, graph_name: str) -> Node:
  if isinstance(dtype, np.dtype):
    return Node(name, "Placeholder", [], [], {"dtype": dtype}, graph_name)
  return Node(name, ARG_OP, [], [], {}, graph_name)


def _unique(nodes, base: str, taken=()) -> str:
  name, k = base, 1
  while name in nodes or name in taken:
    name, k = f"{base}_{k}", k + 1
  return name


def _consumers(nodes: dict[str, Node]) -> dict[str, list[str]]:
  users = collections.defaultdict(list)
  for name, node in nodes.items():
    for src in {n for n, _ in node.inputs} | set(node.control_inputs):
      users[src].append(name)
  return users


def _topological(nodes: dict[str, Node], skip_edge=lambda node, src: False) -> list[str] | None:
  """Kahn's order over data and control edges (minus skipped ones); None on a cycle."""
  indegree, users = {}, collections.defaultdict(list)
  for name, node in nodes.items():
    deps = {s for s, _ in node.inputs if s in nodes and not skip_edge(node, s)}
    deps |= {c for c in node.control_inputs if c in nodes}
    indegree[name] = len(deps)
    for d in deps:
      users[d].append(name)
  ready = collections.deque(n for n in nodes if indegree[n] == 0)
  order = []
  while ready:
    name = ready.popleft()
    order.append(name)
    for user in users[name]:
      indegree[user] -= 1
      if indegree[user] == 0:
        ready.append(user)
  return order if len(order) == len(nodes) else None


def _check_no_readers(graph: Graph, removed: set[str], what: str) -> None:
  for node in graph.nodes.values():
    for src in [n for n, _ in node.inputs] + node.control_inputs:
      if src in removed:
        raise ConversionError(
            f"{node.op} node {node.path!r} reads {src!r}, which belongs to {what} in graph "
            f"{_where(graph)}, without going through its outputs (Exit/Merge): the TF1 "
            "control flow cannot be rebuilt.")


# Loops -------------------------------------------------------------------------


def _is_back_edge(nodes):
  return lambda node, src: node.op in MERGE and nodes[src].op in NEXT


def _frames(graph: Graph):
  """Each node's frame ("" for the root), each frame's parent and depth."""
  nodes = graph.nodes
  order = _topological(nodes, _is_back_edge(nodes))
  if order is None:
    raise GraphCycleError(
        f"Graph {_where(graph)} has a cycle that does not close through a NextIteration "
        "into a Merge, so it is no TF1 while loop.")
  frame: dict[str, str] = {}
  parent: dict[str, str] = {}
  depth: dict[str, int] = {"": 0}
  back = _is_back_edge(nodes)

  def of_inputs(node: Node) -> str:
    best = ""
    deps = [s for s, _ in node.inputs if s in nodes and not back(node, s)]
    for d in deps + [c for c in node.control_inputs if c in nodes]:
      if depth[frame[d]] > depth[best]:
        best = frame[d]
    return best

  for name in order:
    node = nodes[name]
    if node.op in ENTER:
      f = node.attrs.get("frame_name")
      outer = of_inputs(node)
      if not isinstance(f, str) or not f:
        raise ConversionError(f"{node.op} node {node.path!r} has no frame_name.")
      if parent.setdefault(f, outer) != outer:
        raise ConversionError(
            f"{node.op} node {node.path!r} enters frame {f!r} from frame {outer!r}, but other "
            f"Enters of that frame come from {parent[f]!r}.")
      depth[f] = depth[outer] + 1
      frame[name] = f
    elif node.op in EXIT:
      inner = of_inputs(node)
      if not inner:
        raise ConversionError(f"{node.op} node {node.path!r} is not inside a loop frame.")
      frame[name] = parent[inner]
    else:
      frame[name] = of_inputs(node)
  return frame, parent, depth


def _fold_loops(graph: Graph) -> None:
  while True:
    frame, parent, depth = _frames(graph)
    frames = [f for f in depth if f]
    if not frames:
      break
    innermost = max(frames, key=lambda f: depth[f])
    _fold_frame(graph, innermost, frame, parent[innermost])
  stray = [n for n in graph.nodes.values() if n.op in EXIT + NEXT + LOOP_COND]
  if stray:
    n = stray[0]
    raise ConversionError(f"{n.op} node {n.path!r} is outside any loop frame (no Enter leads "
                          "to it).")


@dataclasses.dataclass
class _Var:
  merge: str
  switch: str
  enter: str
  next: str
  dtype: object


def _fold_frame(graph: Graph, f: str, frame: dict, outer: str) -> None:
  nodes = graph.nodes
  members = [n for n in nodes if frame[n] == f]
  where = f"while loop {f!r} of graph {_where(graph)}"
  loop_conds = [n for n in members if nodes[n].op in LOOP_COND]
  if len(loop_conds) != 1:
    raise ConversionError(f"The {where} has {len(loop_conds)} LoopCond nodes; a TF1 loop "
                          "frame has exactly one.")
  lc = nodes[loop_conds[0]]
  variables: list[_Var] = []
  for name in members:
    s = nodes[name]
    if s.op not in SWITCH or len(s.inputs) != 2 or s.inputs[1] != (lc.name, 0):
      continue
    m = nodes[s.inputs[0][0]]
    if m.op not in MERGE or s.inputs[0][1] != 0 or len(m.inputs) != 2:
      raise ConversionError(f"{s.op} node {s.path!r} of the {where} does not switch a "
                            "2-input Merge.")
    enters = [src for src, _ in m.inputs if nodes[src].op in ENTER]
    nexts = [src for src, _ in m.inputs if nodes[src].op in NEXT]
    if len(enters) != 1 or len(nexts) != 1:
      raise ConversionError(f"{m.op} node {m.path!r} of the {where} does not merge one Enter "
                            "and one NextIteration.")
    variables.append(_Var(m.name, s.name, enters[0], nexts[0], m.attrs.get("T")))
  if not variables:
    raise ConversionError(f"The {where} has no loop variables (Switch on its LoopCond).")
  var_of = {v.merge: k for k, v in enumerate(variables)}
  var_of.update({v.switch: k for k, v in enumerate(variables)})
  var_enters = {v.enter for v in variables}
  invariants = [n for n in members if nodes[n].op in ENTER and n not in var_enters
                and nodes[n].attrs.get("frame_name") == f]
  for n in invariants:
    if not nodes[n].attrs.get("is_constant", False):
      raise ConversionError(f"{nodes[n].op} node {nodes[n].path!r} enters the {where} as a "
                            "varying value but feeds no loop Merge.")
  invariant_set = set(invariants)
  externals: dict[tuple[str, int], str] = {}
  taken = set(nodes)

  def collect(starts: list[tuple[str, int]]):
    copied: dict[str, Node] = {}
    stack: list[str] = []

    def map_tensor(t):
      name, port = t
      if name in var_of:
        v = variables[var_of[name]]
        if (name == v.merge and port != 0) or (name == v.switch and port != 1):
          raise ConversionError(f"The {where} reads {name}:{port} inside the loop.")
        return v.merge, 0
      if name in invariant_set:
        return name, 0
      node = nodes[name]
      if frame[name] != f:
        if node.op == "Const" and not node.inputs and not node.control_inputs:
          stack.append(name)
          return t
        if t not in externals:
          externals[t] = _unique(taken, f"{f}/_tf1_outer")
          taken.add(externals[t])
        return externals[t], 0
      if node.op in ENTER:
        raise ConversionError(f"{node.op} node {node.path!r} of the {where} is read "
                              "directly, not through a loop Merge.")
      stack.append(name)
      return t

    outs = [map_tensor(t) for t in starts]
    while stack:
      name = stack.pop()
      if name in copied:
        continue
      node = nodes[name]
      inputs = [map_tensor(t) for t in node.inputs]
      controls = []
      for c in node.control_inputs:
        if c in nodes and frame[c] == f and c not in var_of and c not in invariant_set \
            and nodes[c].op not in ENTER:
          controls.append(c)
          stack.append(c)
      copied[name] = dataclasses.replace(node, inputs=inputs, control_inputs=controls,
                                         output_dtypes=None, _resolver=None)
    return copied, outs

  cond_nodes, cond_outs = collect([lc.inputs[0]])
  # Frame nodes that nothing reads (side effects) run in the body.
  users = _consumers(nodes)
  sinks = [(n, 0) for n in members if n not in cond_nodes and not users.get(n)
           and nodes[n].op not in ENTER + MERGE + SWITCH + NEXT + LOOP_COND]
  body_nodes, body_outs = collect([nodes[v.next].inputs[0] for v in variables] + sinks)
  body_outs = body_outs[:len(variables)]

  ext = list(externals)
  ph = ([_placeholder(v.merge, v.dtype, graph.name) for v in variables]
        + [_placeholder(n, nodes[n].attrs.get("T"), graph.name) for n in invariants]
        + [_placeholder(externals[t], _dtype_of(nodes, t), graph.name) for t in ext])
  in_names = [p.name for p in ph]
  in_dtypes = [p.attrs.get("dtype") for p in ph]
  prefix = f"{graph.name}/" if graph.name else ""

  def sub_graph(kind, copied, outputs, out_dtypes):
    g_nodes = {p.name: dataclasses.replace(p) for p in ph}
    g_nodes.update(copied)
    return Graph(f"{prefix}{f}/{kind}", g_nodes, list(in_names), list(in_dtypes),
                 list(outputs), list(out_dtypes))

  cond_graph = sub_graph("cond", cond_nodes, cond_outs, [np.dtype(bool)])
  passthrough = [(n, 0) for n in in_names[len(variables):]]
  body_graph = sub_graph("body", body_nodes, body_outs + passthrough,
                         [v.dtype for v in variables] + in_dtypes[len(variables):])

  enter_nodes = [nodes[v.enter] for v in variables] + [nodes[n] for n in invariants]
  controls = list(dict.fromkeys(c for e in enter_nodes for c in e.control_inputs))
  exits = [n for n in nodes.values()
           if n.op in EXIT and n.inputs and n.inputs[0][0] in var_of]
  name = _unique(nodes, f.removesuffix("/while_context") or f)
  new = Node(name, WHILE_OP,
             [e.inputs[0] for e in enter_nodes] + ext, controls,
             {"cond": cond_graph, "body": body_graph, "num_loop_vars": len(variables),
              "frame_name": f, "Tout": tuple(v.dtype for v in variables)}, graph.name)
  removed = set(members) | {e.name for e in exits}
  for n in removed:
    del nodes[n]
  nodes[name] = new
  for e in exits:
    v = variables[var_of[e.inputs[0][0]]]
    if e.inputs[0] != (v.switch, 0):
      raise ConversionError(f"{e.op} node {e.path!r} does not read port 0 of a loop Switch.")
    nodes[e.name] = Node(e.name, "Identity", [(name, var_of[v.switch])], [],
                         {"T": e.attrs.get("T", v.dtype)}, graph.name)
  _check_no_readers(graph, removed - {e.name for e in exits}, f"the {where}")


@lowering(WHILE_OP, attrs={"cond": None, "body": None, "num_loop_vars": None,
                           "frame_name": None, "Tout": None}, needs_context=True)
def tf1_while(node):
  cond = node.compile_subgraph(node.attrs["cond"])
  body = node.compile_subgraph(node.attrs["body"])
  n = node.attrs["num_loop_vars"]
  run_all = while_runner(node, cond, body, len(cond.input_steps))

  def run(ctx, *args):
    return run_all(ctx, *args)[:n]
  return run


# Conditionals ------------------------------------------------------------------


def _canonical(nodes, tensor):
  """A predicate tensor seen through Identities (`pred_id`)."""
  seen = set()
  while tensor[0] in nodes and tensor[0] not in seen:
    seen.add(tensor[0])
    node = nodes[tensor[0]]
    if node.op not in ("Identity", "Snapshot") or not node.inputs:
      break
    tensor = node.inputs[0]
  return tensor


def _as_dict(state: frozenset) -> dict | None:
  d = {}
  for pred, branch in state:
    if d.setdefault(pred, branch) != branch:
      return None
  return d


class _States:
  """Cond states of a loop-free graph: frozensets of (predicate tensor, branch)."""

  def __init__(self, graph: Graph):
    nodes = self.nodes = graph.nodes
    order = self.order = _topological(nodes)
    if order is None:
      raise GraphCycleError(f"Graph {_where(graph)} has a cycle outside any TF1 loop frame.")
    self.pred: dict[str, tuple[str, int]] = {}
    self.ways: dict[tuple[str, int], int] = {}  # predicate -> its number of branches
    self.indexed: set[tuple[str, int]] = set()  # predicates that are _SwitchN indices
    self.base: dict[str, frozenset] = {}
    self.merges: dict[str, tuple] = {}  # merge -> (pred, outer state, branch per input)
    self.problems: dict[str, str] = {}
    for name in order:
      node = nodes[name]
      if node.op in SWITCH + (SWITCH_N,) and len(node.inputs) == 2:
        pred = self.pred[name] = _canonical(nodes, node.inputs[1])
        ways = 2 if node.op in SWITCH else node.attrs.get("num_outs")
        if self.ways.setdefault(pred, ways) != ways:
          self.problems[name] = "its predicate also drives switches with other branches"
        if node.op == SWITCH_N:
          self.indexed.add(pred)
      if node.op in MERGE:
        self.base[name] = self._merge(node)
      else:
        state = frozenset()
        for t in node.inputs:
          state |= self.of(t)
        for c in node.control_inputs:
          state |= self.base.get(c, frozenset())
        self.base[name] = state

  def of(self, tensor) -> frozenset:
    name, port = tensor
    state = self.base.get(name, frozenset())
    if name in self.pred:
      state = state | {(self.pred[name], port)}
    return state

  def _merge(self, node: Node) -> frozenset:
    states = [self.of(t) for t in node.inputs]
    dicts = [_as_dict(s) for s in states]
    common = frozenset.intersection(*states) if states else frozenset()
    if len(states) < 2 or None in dicts:
      self.problems[node.name] = (f"it merges {len(states)} inputs" if len(states) < 2 else
                                  "an input runs under contradicting predicates")
      return common
    keys = set(dicts[0])
    differ = [p for p in keys if len({d.get(p) for d in dicts}) > 1]
    if len(differ) != 1 or any(set(d) != keys for d in dicts):
      self.problems[node.name] = ("its inputs do not come from the branches of one "
                                  "Switch predicate")
      return common
    pred = differ[0]
    branches = tuple(d[pred] for d in dicts)
    if sorted(branches) != list(range(self.ways.get(pred, 2))):
      self.problems[node.name] = (f"it merges {len(states)} inputs from branches "
                                  f"{list(branches)} of a switch with "
                                  f"{self.ways.get(pred, 2)} branches")
      return common
    outer = frozenset((p, b) for p, b in dicts[0].items() if p != pred)
    self.merges[node.name] = (pred, outer, branches)
    return outer


def _fold_conds(graph: Graph) -> None:
  while True:
    states = _States(graph)
    groups = collections.defaultdict(list)
    for name, (pred, outer, _) in states.merges.items():
      groups[(pred, outer)].append(name)
    if not groups:
      break
    key = max(groups, key=lambda k: len(k[1]))
    # Conds on one predicate (e.g. `is_training`) can feed one another: fold the merges
    # that no other merge of the group leads to, the rest on later rounds.
    group = set(groups[key])
    after: dict[str, bool] = {}
    for name in states.order:
      node = graph.nodes[name]
      after[name] = any(d in group or after[d]
                        for d in [n for n, _ in node.inputs] + node.control_inputs)
    _fold_cond(graph, states, key[0], key[1], [m for m in groups[key] if not after[m]])
  for name, problem in states.problems.items():
    graph.nodes[name].attrs[PROBLEM] = problem
  for node in graph.nodes.values():
    if node.op in SWITCH + (SWITCH_N,) and PROBLEM not in node.attrs:
      node.attrs[PROBLEM] = "its outputs reach no Merge that closes a conditional"


def _fold_cond(graph: Graph, states: _States, pred, outer: frozenset, merges: list[str]):
  nodes = graph.nodes
  where = f"the cond on {pred[0]}:{pred[1]} in graph {_where(graph)}"
  ways = states.ways.get(pred, 2)
  targets = [outer | {(pred, b)} for b in range(ways)]
  copied: list[dict[str, Node]] = [{} for _ in range(ways)]

  def under(state) -> bool:  # runs in some branch of this cond
    return any(p == pred for p, _ in state)

  externals: dict[tuple[str, int], str] = {}
  outer_controls: list[str] = []
  taken = set(nodes)

  def external(t):
    if t not in externals:
      externals[t] = _unique(taken, f"{pred[0]}/_tf1_in")
      taken.add(externals[t])
    return externals[t], 0

  def is_boundary(name):
    return states.pred.get(name) == pred and states.base[name] <= outer

  def walk(start, b):
    stack = []

    def map_tensor(t):
      name, port = t
      if is_boundary(name):
        if port != b:
          raise ConversionError(f"Branch {b} of {where} reads port {port} of {name!r}.")
        return external(nodes[name].inputs[0])
      state = states.of(t)
      if not under(state):
        return external(t)
      if state != targets[b]:
        raise ConversionError(
            f"Node {name!r} in branch {b} of {where} runs under other predicates too "
            "(a conditional that no Merge closes), so the cond cannot be rebuilt.")
      stack.append(name)
      return t

    out = map_tensor(start)
    while stack:
      name = stack.pop()
      if name in copied[b]:
        continue
      node = nodes[name]
      inputs = [map_tensor(t) for t in node.inputs]
      controls = []
      for c in node.control_inputs:
        if c in nodes and states.base[c] == targets[b] and not is_boundary(c):
          controls.append(c)
          stack.append(c)
        elif c in nodes and not under(states.base[c]) and not is_boundary(c):
          outer_controls.append(c)
      copied[b][name] = dataclasses.replace(node, inputs=inputs, control_inputs=controls,
                                            output_dtypes=None, _resolver=None)
    return out

  outs = [[] for _ in range(ways)]
  indices = []  # per merge: the position of each branch's value among its inputs
  for m in merges:
    node = nodes[m]
    _, _, branches = states.merges[m]
    for t, b in zip(node.inputs, branches):
      outs[b].append(walk(t, b))
    indices.append(tuple(branches.index(b) for b in range(ways)))
  # Branch nodes that nothing reads (side effects) run inside their branch.
  users = _consumers(nodes)
  for n, node in nodes.items():
    if any(n in c for c in copied) or users.get(n) or node.op in SWITCH + (SWITCH_N,) + MERGE:
      continue
    for b in range(ways):
      if states.base[n] == targets[b]:
        walk((n, 0), b)

  ext = list(externals)
  ph = [_placeholder(externals[t], _dtype_of(nodes, t), graph.name) for t in ext]
  in_names = [p.name for p in ph]
  in_dtypes = [p.attrs.get("dtype") for p in ph]
  out_dtypes = [nodes[m].attrs.get("T") for m in merges]
  prefix = f"{graph.name}/" if graph.name else ""
  scope = merges[0].rpartition("/")[0] or merges[0]
  indexed = pred in states.indexed

  def branch_graph(b):
    g_nodes = {p.name: dataclasses.replace(p) for p in ph}
    g_nodes.update(copied[b])
    label = f"branch{b}" if indexed else ("else", "then")[b]
    return Graph(f"{prefix}{scope}/{label}", g_nodes, list(in_names),
                 list(in_dtypes), outs[b], list(out_dtypes))

  name = _unique(nodes, f"{scope}/_tf1_cond")
  k = len(merges)
  if indexed:  # _SwitchN: an int32 index picks one of the branches
    branch_attrs = {"branches": [branch_graph(b) for b in range(ways)]}
  else:
    branch_attrs = {"then_branch": branch_graph(1), "else_branch": branch_graph(0)}
  new = Node(name, COND_OP, [pred] + ext,
             [c for c in dict.fromkeys(outer_controls)],
             {**branch_attrs, "value_index": indices,
              "Tout": tuple(out_dtypes) + (np.dtype(np.int32),) * k}, graph.name)
  removed = set().union(*copied)
  merge_nodes = [nodes[m] for m in merges]
  for n in removed | set(merges):
    del nodes[n]
  nodes[name] = new
  for j, m in enumerate(merge_nodes):  # both ports: the value and its value_index
    nodes[m.name] = Node(m.name, "IdentityN", [(name, j), (name, k + j)], [],
                         {"T": [out_dtypes[j], np.dtype(np.int32)]}, graph.name)
  # Switches on this predicate and leftovers of its branches (e.g. the `pred_id` of an
  # inner cond) that nothing reads any more go too.
  def in_branch(n):
    return states.pred.get(n) == pred or under(states.base.get(n, frozenset()))

  while True:
    users = _consumers(nodes)
    unused = [n for n in nodes if n != name and not users.get(n) and in_branch(n)
              and nodes[n].op in SWITCH + (SWITCH_N, "Identity", "Snapshot", "Const")]
    if not unused:
      break
    for n in unused:
      del nodes[n]
      removed.add(n)
  _check_no_readers(graph, removed, where)


@lowering(COND_OP, attrs={"then_branch": None, "else_branch": None, "branches": None,
                          "value_index": None, "Tout": None}, needs_context=True)
def tf1_cond(node):
  indices = node.attrs["value_index"]
  if "branches" in node.attrs:
    return _tf1_indexed_cond(node, indices)
  run_branch = cond_runner(node.compile_subgraph(node.attrs["then_branch"]),
                           node.compile_subgraph(node.attrs["else_branch"]))

  def run(ctx, pred, *args):
    outs = list(run_branch(ctx, pred, *args))
    p = _truth(pred)
    if is_static(p):
      picked = [np.int32(t if bool(p) else f) for f, t in indices]
    else:
      picked = [jnp.where(p, np.int32(t), np.int32(f)) for f, t in indices]
    return outs + picked
  return run


def _tf1_indexed_cond(node, indices):
  """The cond of a _SwitchN: branch `index` runs (the last one when out of range)."""
  branches = [node.compile_subgraph(g) for g in node.attrs["branches"]]
  run_branch = case_runner(branches)
  n = len(branches)

  def run(ctx, index, *args):
    outs = list(run_branch(ctx, index, *args))
    if is_static(index):
      b = int(index) if 0 <= int(index) < n else n - 1
      picked = [np.int32(ix[b]) for ix in indices]
    else:
      b = jnp.where((index < 0) | (index >= n), n - 1, index)
      picked = [jnp.asarray(ix, np.int32)[b] for ix in indices]
    return outs + picked
  return run


# The TF1 ops themselves --------------------------------------------------------
# The rewrite replaces them; these lowerings make them known (coverage) and explain
# the ones it had to leave.


def _left(node, default: str):
  problem = node.attrs.get(PROBLEM, default)
  raise ConversionError(f"{node.op} node {node.path!r} is TF1 control flow that could not be "
                        f"rebuilt into a structured loop or conditional: {problem}.")


@lowering(*SWITCH, SWITCH_N, *MERGE, attrs={"T": None, "N": None, "num_outs": None})
def switch_merge(node):
  _left(node, "it is not part of a regular cond")


@lowering(*ENTER, *EXIT, *NEXT, attrs={"T": None, "frame_name": None, "is_constant": None,
                                       "parallel_iterations": None})
def frame_op(node):
  _left(node, "it is not part of a regular loop frame")


@lowering(*LOOP_COND)
def loop_cond(node):
  return lambda x: x


@lowering("ControlTrigger")
def control_trigger(node):
  return lambda: None
