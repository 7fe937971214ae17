"""`tf2jax-coverage`: which ops a model uses, who lowers each, and what is missing.

It parses protobufs only (saved_model.pb, a GraphDef .pb or .pbtxt, a TF-Hub module):
it never loads variables, traces or runs the model. It walks the main graph and every
function of the library, and checks each node's attributes against what its lowering
declares it supports.

Exit codes: 0 everything supported, 1 something unsupported, 2 bad usage or unreadable
input.
"""

from __future__ import annotations

import argparse
import collections
import dataclasses
import json
import os
import re
import sys
from typing import Any, Iterable

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

SCHEMA = "tf2jax-coverage/1"
STATUSES = ("supported", "unsupported", "attribute-unsupported")


class CoverageInputError(ValueError):
  """The path is not a readable model (exit code 2)."""


@dataclasses.dataclass
class OpRecord:
  op: str
  count: int
  status: str
  provider: dict | None
  install: str | None
  hint: str | None
  nodes: list[str]
  attribute_problems: list[dict]


@dataclasses.dataclass
class CoverageReport:
  path: str
  format: str
  signatures: list[str]
  ops: list[OpRecord]
  functions: int
  skipped: list[str] = dataclasses.field(default_factory=list)

  @property
  def supported(self) -> bool:
    return all(r.status == "supported" for r in self.ops)

  def summary(self) -> dict:
    counts = collections.Counter(r.status for r in self.ops)
    return {"op_types": len(self.ops), "nodes": sum(r.count for r in self.ops),
            "functions": self.functions, **{s: counts.get(s, 0) for s in STATUSES}}

  def to_json(self) -> dict:
    return {"schema": SCHEMA, "path": self.path, "format": self.format,
            "signatures": self.signatures, "supported": self.supported,
            "summary": self.summary(), "skipped": self.skipped,
            "ops": [dataclasses.asdict(r) for r in self.ops]}

  def to_text(self) -> str:
    width = max([len(r.op) for r in self.ops] + [2])
    lines = [f"{self.path} ({self.format}; signatures: {', '.join(self.signatures) or '-'})",
             f"{'op':<{width}}  {'count':>5}  {'status':<21}  provider / what to do"]
    for r in self.ops:
      who = f"{r.provider['name']} {r.provider['version']}" if r.provider else (
          r.install or r.hint or "")
      lines.append(f"{r.op:<{width}}  {r.count:>5}  {r.status:<21}  {who}")
      for p in r.attribute_problems[:5]:
        lines.append(f"{'':<{width}}  {'':>5}    node {p['node']!r}: {p['attr']}="
                     f"{p['value']}: {p['reason']}")
      if len(r.attribute_problems) > 5:
        lines.append(f"{'':<{width}}  {'':>5}    ... {len(r.attribute_problems) - 5} more")
    s = self.summary()
    lines.append(f"{s['op_types']} op types in {s['nodes']} nodes ({s['functions']} library "
                 f"functions): {s['supported']} supported, {s['unsupported']} unsupported, "
                 f"{s['attribute-unsupported']} with unsupported attributes.")
    if self.skipped:
      lines.append(f"Left out (use --all to include): {'; '.join(self.skipped)}")
    return "\n".join(lines)

  def to_markdown(self) -> str:
    lines = [f"# Coverage of `{self.path}`", "",
             f"Format: {self.format}; signatures: {', '.join(self.signatures) or '-'}", "",
             "| op | count | status | provider | install |", "|---|---:|---|---|---|"]
    for r in self.ops:
      who = f"{r.provider['name']} {r.provider['version']}" if r.provider else ""
      what = f"`{r.install}`" if r.install else (r.hint or "")
      lines.append(f"| {r.op} | {r.count} | {r.status} | {who} | {what} |")
    return "\n".join(lines) + "\n"


# Reading protobufs ------------------------------------------------------------


@dataclasses.dataclass
class _Model:
  format: str
  graph_def: Any
  signatures: dict[str, list[str]]  # signature -> output node names


def _parse(message, data: bytes, text: bool, path: str):
  from google.protobuf import message as pb_message
  from google.protobuf import text_format
  try:
    if text:
      text_format.Parse(data.decode("utf-8"), message)
    else:
      message.ParseFromString(data)
  except (pb_message.DecodeError, text_format.ParseError, UnicodeDecodeError, ValueError,
          RecursionError) as e:
    raise CoverageInputError(f"{path}: not a readable {type(message).__name__} "
                             f"({type(e).__name__}: {str(e)[:200]})") from None
  return message


def _read(path: str) -> _Model:
  from tensorflow.core.framework import graph_pb2
  from tensorflow.core.protobuf import saved_model_pb2
  if not os.path.exists(path):
    raise CoverageInputError(f"{path}: no such file or directory")
  if os.path.isdir(path):
    binary, text = os.path.join(path, "saved_model.pb"), os.path.join(path, "saved_model.pbtxt")
    if not (os.path.exists(binary) or os.path.exists(text)):
      raise CoverageInputError(f"{path}: a directory without saved_model.pb (not a "
                               "SavedModel or TF-Hub module)")
    is_text = not os.path.exists(binary)
    with open(text if is_text else binary, "rb") as f:
      saved = _parse(saved_model_pb2.SavedModel(), f.read(), is_text, path)
    if not saved.meta_graphs:
      raise CoverageInputError(f"{path}: the SavedModel has no meta graph")
    fmt = "tf-hub module" if os.path.exists(os.path.join(path, "tfhub_module.pb")) \
        else "SavedModel"
    graph_def = graph_pb2.GraphDef()
    signatures: dict[str, list[str]] = {}
    for meta in saved.meta_graphs:  # TF1 SavedModels may hold several tag sets
      graph_def.MergeFrom(meta.graph_def) if len(saved.meta_graphs) > 1 else \
          graph_def.CopyFrom(meta.graph_def)
      for name, sig in meta.signature_def.items():
        signatures[name] = [t.name.split(":")[0].lstrip("^") for t in sig.outputs.values()]
    model = _Model(fmt, graph_def, signatures)
  else:
    with open(path, "rb") as f:
      data = f.read()
    is_text = path.endswith((".pbtxt", ".txt"))
    if os.path.basename(path) == "saved_model.pb":
      return _read(os.path.dirname(path) or ".")
    graph_def = _parse(graph_pb2.GraphDef(), data, is_text, path)
    model = _Model("GraphDef text" if is_text else "GraphDef", graph_def, {})
  if not model.graph_def.node and not model.graph_def.library.function:
    raise CoverageInputError(f"{path}: the graph is empty")
  return model


# Walking -----------------------------------------------------------------------


def _func_refs(node) -> Iterable[str]:
  for value in node.attr.values():
    kind = value.WhichOneof("value")
    if kind == "func":
      yield value.func.name
    elif kind == "list":
      yield from (f.name for f in value.list.func)


def _reachable(model: _Model, signature: str) -> tuple[set[str], set[str]]:
  """Main-graph nodes and library functions a signature's outputs depend on."""
  nodes = {n.name: n for n in model.graph_def.node}
  functions = {f.signature.name: f for f in model.graph_def.library.function}
  seen_nodes, seen_funcs = set(), set()
  stack = [n for n in model.signatures[signature] if n in nodes]
  func_stack = []
  while stack:
    name = stack.pop()
    if name in seen_nodes:
      continue
    seen_nodes.add(name)
    node = nodes[name]
    stack.extend(i.lstrip("^").split(":")[0] for i in node.input
                 if i.lstrip("^").split(":")[0] in nodes)
    func_stack.extend(_func_refs(node))
    if node.op in functions:
      func_stack.append(node.op)
  while func_stack:
    fname = func_stack.pop()
    if fname in seen_funcs or fname not in functions:
      continue
    seen_funcs.add(fname)
    for node in functions[fname].node_def:
      func_stack.extend(_func_refs(node))
      if node.op in functions:
        func_stack.append(node.op)
  return seen_nodes, seen_funcs


_INIT_SIGNATURE = "__saved_model_init_op"
_CHECKPOINT_FUNCTION = re.compile(r"__inference__traced_(save|restore)_\d+")


def coverage(path: str, signature: str | None = None, everything: bool = False
             ) -> CoverageReport:
  """The coverage report of a model at `path` (see the module docstring).

  By default a SavedModel with signatures is reported for what its signatures use plus
  every library function, leaving out checkpoint plumbing (save/restore functions,
  variable initialisers); `everything=True` reports every node and function.
  """
  from tf2jax_core import plugins
  from tf2jax_core.graph import decode_attr
  from tf2jax_core.registry import attr_problems

  model = _read(path)
  library = {f.signature.name: f for f in model.graph_def.library.function}
  skipped: list[str] = []
  if signature is not None:
    if signature not in model.signatures:
      raise CoverageInputError(f"{path}: no signature {signature!r}; it has "
                               f"{sorted(model.signatures) or 'none'}")
    main_nodes, funcs = _reachable(model, signature)
    signatures = [signature]
  else:
    signatures = sorted(s for s in model.signatures if s != _INIT_SIGNATURE)
    if signatures and not everything:
      # What the signatures use, plus every library function except checkpoint plumbing.
      main_nodes = set().union(*(_reachable(model, s)[0] for s in signatures))
      funcs = {f for f in library if not _CHECKPOINT_FUNCTION.fullmatch(f)}
      skipped = sorted(set(library) - funcs)
      skipped += [f"{len(model.graph_def.node) - len(main_nodes)} main-graph nodes no "
                  "signature uses (variable initialisation, saving and restoring)"]
    else:
      main_nodes, funcs = {n.name for n in model.graph_def.node}, set(library)

  manager = plugins.manager()
  manager.ensure_loaded()
  table = manager.op_table(raise_conflicts=False)
  by_op: dict[str, list] = collections.defaultdict(list)
  for node in model.graph_def.node:
    if node.name in main_nodes:
      by_op[node.op].append((node.name, node))
  for fname in sorted(funcs):
    for node in library[fname].node_def:
      by_op[node.op].append((f"{fname}/{node.name}", node))

  records = []
  for op in sorted(by_op):
    entries = by_op[op]
    names = [n for n, _ in entries]
    lowering = table.get(op)
    if lowering is None and op in library:
      records.append(OpRecord(op, len(entries), "supported",
                              {"name": "tf2jax", "version": plugins.CORE_PROVIDER.version},
                              None, "call of a library function", names, []))
      continue
    if lowering is None:
      hint = manager.install_hint(op)
      install = hint[hint.index("pip install"):] if "pip install" in hint else None
      records.append(OpRecord(op, len(entries), "unsupported", None, install, hint, names, []))
      continue
    problems = []
    for name, node in entries:
      try:
        found = attr_problems(lowering, op, node.attr,
                              decode=lambda raw: decode_attr(raw, f"node {name!r}"))
      except Exception as e:  # a corrupt attr is an unsupported attr
        found = [("?", "?", f"unreadable attr: {e}")]
      problems.extend({"node": name, "attr": a, "value": _show(v), "reason": r}
                      for a, v, r in found)
    provider = {"name": lowering.provider.name, "version": lowering.provider.version}
    status = "attribute-unsupported" if problems else "supported"
    records.append(OpRecord(op, len(entries), status, provider, None, None, names, problems))
  return CoverageReport(path, model.format, signatures, records, len(funcs), skipped)


def _show(value) -> Any:
  if hasattr(value, "name") and not isinstance(value, str):
    return value.name
  if isinstance(value, (str, int, float, bool)) or value is None:
    return value
  return str(value)


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(
      prog="tf2jax-coverage",
      description="List the ops of a model (SavedModel dir, TF-Hub module, GraphDef .pb or "
      ".pbtxt), which plugin lowers each, and what is unsupported, without running it.",
      epilog="Exit codes: 0 everything supported, 1 something unsupported, 2 bad usage or "
      "unreadable input.")
  parser.add_argument("path")
  parser.add_argument("--signature", help="only what this signature uses (default: all)")
  out = parser.add_mutually_exclusive_group()
  out.add_argument("--json", action="store_true", help=f"machine-readable ({SCHEMA})")
  out.add_argument("--markdown", action="store_true", help="a Markdown table")
  parser.add_argument("--all", action="store_true", dest="everything",
                      help="also report checkpoint plumbing (save/restore, initialisers)")
  parser.add_argument("--debug", action="store_true", help="tracebacks for errors")
  try:
    args = parser.parse_args(argv)
  except SystemExit as e:
    return 2 if e.code else 0
  try:
    report = coverage(args.path, args.signature, args.everything)
  except CoverageInputError as e:
    if args.debug:
      raise
    print(f"tf2jax-coverage: {e}", file=sys.stderr)
    return 2
  except Exception as e:  # never a traceback for bad input unless asked
    if args.debug:
      raise
    print(f"tf2jax-coverage: {args.path}: cannot read the model ({type(e).__name__}: "
          f"{str(e)[:300]})", file=sys.stderr)
    return 2
  if args.json:
    print(json.dumps(report.to_json(), indent=1))
  elif args.markdown:
    print(report.to_markdown(), end="")
  else:
    print(report.to_text())
  return 0 if report.supported else 1


if __name__ == "__main__":
  sys.exit(main())
