"""XlaCallModule: StableHLO serialized by jax2tf (native serialization), run by JAX.

The module is wrapped as a `jax.export.Exported` and called with `Exported.call`, so JAX
itself checks platforms, shardings and the calling convention. Shape-polymorphic modules
are refined for the concrete shapes of each call (cached per shapes): a new static `main`
converts its arguments to the old dynamic types and calls the old `main`, then StableHLO's
shape refinement makes every shape static. Under `jax.vmap` the module is mapped one
example at a time (a correct `lax.map`), unless the option
`xlacallmodule_vmap_merges_batch_dim` is on and every input and output has the module's
polymorphic leading dimension: then the vmapped axis is folded into it (one call on
B * b rows). That is only right when rows are independent (no batch statistics), which
the module does not say, so it is opt-in. Gradients come from the graph's own custom
gradient (jax2tf's serialized VJP), which tf2jax converts like any custom gradient.

All uses of JAX's MLIR / export internals live in this module.
"""

from __future__ import annotations

import functools
import re
import warnings

import jax
import numpy as np

from tf2jax_core import ConversionError, lowering

_ATTRS = {
    "version": None, "module": None, "Sout": None, "Tout": None, "Tin": None,
    "dim_args_spec": None, "platforms": None, "function_list": None,
    "has_token_input_output": None, "disabled_checks": None, "use_shardy_partitioner": None,
}
_MIN_VERSION = 9  # what jax.export can call (tokens in main's signature)

MERGE_BATCH_OPTION = "xlacallmodule_vmap_merges_batch_dim"
_JAX_PLATFORM = {"cpu": "cpu", "cuda": "cuda", "gpu": "cuda", "rocm": "rocm", "tpu": "tpu"}


def _mlir():
  from jax._src.interpreters import mlir as internal
  from jax.extend import mlir as jmlir
  return internal, jmlir


class _Module:
  """One XlaCallModule node's module, with its Exported per input shapes."""

  def __init__(self, node):
    attrs = node.attrs
    self.node = node
    self.version = int(attrs["version"])
    module = attrs["module"]
    self.bytes = module.encode("utf-8", "surrogateescape") if isinstance(module, str) \
        else bytes(module)
    self.platforms = tuple(p.lower() for p in attrs.get("platforms") or ["cpu"])
    self.disabled = list(attrs.get("disabled_checks") or [])
    self.out_dtypes = [np.dtype(t) for t in attrs["Tout"]]
    where = f"XlaCallModule node {node.path!r}"
    if self.version < _MIN_VERSION:
      raise ConversionError(f"{where}: calling convention version {self.version} is older "
                            f"than {_MIN_VERSION}, the oldest JAX can call; re-export it.")
    if attrs.get("function_list"):
      raise ConversionError(f"{where} calls back into TF functions (jax2tf.call_tf inside a "
                            "native-serialized module), which JAX cannot run.")
    if attrs.get("has_token_input_output"):
      raise ConversionError(f"{where} threads ordered-effect tokens, which tf2jax does not "
                            "support.")
    if attrs.get("dim_args_spec"):
      raise ConversionError(f"{where} uses dim_args_spec (dimension arguments), which TF "
                            "itself no longer supports.")
    internal, jmlir = _mlir()
    with internal.make_ir_context() as ctx:
      module_ir = jmlir.deserialize_portable_artifact(self.bytes, context=ctx)
      self.text = str(module_ir)
      main = _find_main(module_ir)
      self.arg_types = [str(t) for t in main.type.inputs]
      self.result_types = [str(t) for t in main.type.results]
    match = re.search(r"mhlo\.num_partitions = (\d+)", self.text)
    self.num_partitions = int(match.group(1)) if match else 1
    self.num_global = 1 if len(self.platforms) > 1 else 0  # the platform index argument
    self.polymorphic = any("?" in t for t in self.arg_types[self.num_global:])
    if any("!stablehlo.token" in t for t in self.arg_types):
      raise ConversionError(f"{where} takes ordered-effect tokens, which tf2jax does not "
                            "support.")
    self._exported = functools.lru_cache(maxsize=64)(self._make_exported)

  def check_platform(self, strict: bool) -> None:
    platform = _JAX_PLATFORM.get(jax.default_backend(), jax.default_backend())
    if platform in self.platforms:
      return
    message = (f"XlaCallModule node {self.node.path!r} was serialized for platforms "
               f"{self.platforms}, not {platform!r}.")
    if strict and "platform" not in self.disabled:
      raise ConversionError(message + " Convert with tf2jax.override_config("
                            "'xlacallmodule_strict_checks', False) to run it anyway.")

  def exported(self, avals: tuple):
    return self._exported(avals)

  def _make_exported(self, avals: tuple):
    from jax import export
    internal, jmlir = _mlir()
    in_avals = tuple(jax.core.ShapedArray(s, d) for s, d in avals)
    if self.polymorphic:
      serialized, out_shapes = self._refine(in_avals)
    else:
      serialized = self.bytes
      out_shapes = [_shape_of(t) for t in self.result_types]
    if any(s is None for s in out_shapes):
      raise ConversionError(f"XlaCallModule node {self.node.path!r}: results of unknown "
                            "shape after refinement.")
    out_avals = tuple(jax.core.ShapedArray(s, d) for s, d in zip(out_shapes, self.out_dtypes))
    n, m = len(in_avals), len(out_avals)
    checks = tuple(c for c in map(_safety_check, self.disabled) if c is not None)
    return export.Exported(
        fun_name=f"xla_call_module_{self.node.name}",
        in_tree=jax.tree_util.tree_structure((tuple(range(n)), {})), in_avals=in_avals,
        out_tree=jax.tree_util.tree_structure(list(range(m))), out_avals=out_avals,
        _has_named_shardings=False, _in_named_shardings=(None,) * n,
        _out_named_shardings=(None,) * m, in_shardings_hlo=(None,) * n,
        out_shardings_hlo=(None,) * m, nr_devices=self.num_partitions,
        platforms=self.platforms, ordered_effects=(), unordered_effects=(),
        disabled_safety_checks=checks, mlir_module_serialized=serialized,
        calling_convention_version=self.version, module_kept_var_idx=tuple(range(n)),
        uses_global_constants=self.num_global > 0, _get_vjp=None)

  def _refine(self, in_avals):
    """A static-shape module for these inputs (see the module docstring)."""
    internal, jmlir = _mlir()
    old_args = self.arg_types
    new_args = old_args[:self.num_global] + [
        _static_type(t, a.shape) for t, a in zip(old_args[self.num_global:], in_avals)]
    text = re.sub(r"func\.func public @main\(", "func.func private @_tf2jax_poly_main(",
                  self.text, count=1)
    lines = []
    params = ", ".join(f"%arg{i}: {t}" for i, t in enumerate(new_args))
    results = ", ".join(self.result_types)
    lines.append(f"  func.func public @main({params}) -> ({results}) {{")
    call_args = []
    for i, (old, new) in enumerate(zip(old_args, new_args)):
      if old == new:
        call_args.append(f"%arg{i}")
      else:
        lines.append(f"    %c{i} = stablehlo.convert %arg{i} : ({new}) -> {old}")
        call_args.append(f"%c{i}")
    k = len(self.result_types)
    lhs = "%r" if k == 1 else f"%r:{k}"
    lines.append(f"    {lhs} = call @_tf2jax_poly_main({', '.join(call_args)}) : "
                 f"({', '.join(old_args)}) -> ({results})")
    outs = "%r" if k == 1 else ", ".join(f"%r#{j}" for j in range(k))
    lines.append(f"    return {outs} : {results}")
    lines.append("  }")
    text = text.rstrip()
    assert text.endswith("}")
    text = text[:-1] + "\n".join(lines) + "\n}\n"
    with internal.make_ir_context() as ctx:
      from jax._src.lib.mlir import ir
      module_ir = ir.Module.parse(text)
      bytecode = internal.module_to_bytecode(module_ir)
    try:
      refined = jmlir.refine_polymorphic_shapes(bytecode, enable_shape_assertions=True,
                                                validate_static_shapes=True)
    except Exception as e:
      raise ConversionError(f"XlaCallModule node {self.node.path!r}: the inputs "
                            f"{[a.shape for a in in_avals]} do not fit the module's "
                            f"polymorphic shapes: {e}") from None
    with internal.make_ir_context() as ctx:
      from jax._src.lib.mlir import ir
      from jax._src.lib.mlir.dialects import hlo
      module_ir = ir.Module.parse(refined)
      main = _find_main(module_ir)
      out_shapes = [_shape_of(str(t)) for t in main.type.results]
      target = hlo.get_version_from_compatibility_requirement(
          hlo.StablehloCompatibilityRequirement.WEEK_4)
      serialized = jmlir.serialize_portable_artifact(module_ir, target)
    return serialized, out_shapes


def _find_main(module_ir):
  for op in module_ir.body.operations:
    if getattr(op, "name", None) is not None and str(op.name).strip('"') == "main":
      return op
    if "sym_name" in op.attributes and str(op.attributes["sym_name"]).strip('"') == "main":
      return op
  raise ConversionError("XlaCallModule: the module has no main function.")


_TYPE = re.compile(r"tensor<(.*)>")


def _dims_and_element(type_str: str) -> tuple[list[str], str]:
  inner = _TYPE.fullmatch(type_str.strip()).group(1)
  parts = inner.split("x")
  dims, element = [], []
  for i, p in enumerate(parts):
    if not element and (p == "?" or p.isdigit()):
      dims.append(p)
    else:
      element.append(p)
  return dims, "x".join(element)


def _shape_of(type_str: str) -> tuple | None:
  dims, _ = _dims_and_element(type_str)
  if "?" in dims:
    return None
  return tuple(int(d) for d in dims)


def _static_type(type_str: str, shape) -> str:
  dims, element = _dims_and_element(type_str)
  if len(dims) != len(shape) or any(d != "?" and int(d) != s for d, s in zip(dims, shape)):
    raise ConversionError(f"XlaCallModule: an input of shape {tuple(shape)} does not fit "
                          f"{type_str}.")
  return "tensor<" + "".join(f"{s}x" for s in shape) + element + ">"


def _safety_check(name: str):
  from jax import export
  if name == "platform":
    return export.DisabledSafetyCheck.platform()
  if name.startswith("custom_call:"):
    return export.DisabledSafetyCheck.custom_call(name.split(":", 1)[1])
  if name == "shape_assertions":
    return export.DisabledSafetyCheck.shape_assertions() \
        if hasattr(export.DisabledSafetyCheck, "shape_assertions") else None
  raise ConversionError(f"XlaCallModule: unknown disabled check {name!r}.")


def _merged_batch_call(module, call, axis_size: int, in_batched, args):
  """`vmap` folded into the module's polymorphic leading dimension: (B, b, ...) inputs
  become (B * b, ...), outputs (B * b, ...) become (B, b, ...). None when the inputs or
  outputs do not all have that leading dimension (then the caller maps sequentially)."""
  types = module.arg_types[module.num_global:] + module.result_types
  if not all(t.startswith("tensor<?x") for t in types):
    return None
  lead = {np.shape(a)[1] if b else np.shape(a)[0] for a, b in zip(args, in_batched)}
  if len(lead) != 1:
    return None
  (b,) = lead
  avals = lambda shapes: tuple((s, np.dtype(a.dtype)) for s, a in zip(shapes, args))
  one = module.exported(avals([tuple(np.shape(a)[1:]) if batched else tuple(np.shape(a))
                               for a, batched in zip(args, in_batched)]))
  merged = module.exported(avals([(axis_size * b,) + tuple(np.shape(a)[2 if batched else 1:])
                                  for a, batched in zip(args, in_batched)]))
  # Every output must carry the same leading dimension: b for one example, B * b merged.
  if not all(o.shape[0] == b for o in one.out_avals) or \
      not all(o.shape[0] == axis_size * b for o in merged.out_avals):
    return None
  flat = [jax.numpy.reshape(a, (axis_size * b,) + np.shape(a)[2:]) if batched
          else jax.numpy.tile(a, (axis_size,) + (1,) * (np.ndim(a) - 1))
          for a, batched in zip(args, in_batched)]
  outs = call(*flat)
  return [jax.numpy.reshape(o, (axis_size, b) + tuple(o.shape[1:])) for o in outs]


@lowering("XlaCallModule", attrs=_ATTRS)
def xla_call_module(node):
  module = _Module(node)
  strict = node.config("xlacallmodule_strict_checks")
  module.check_platform(strict)

  def call(*args):
    avals = tuple((tuple(np.shape(a)), np.dtype(a.dtype)) for a in args)
    return module.exported(avals).call(*args)

  sequential = jax.custom_batching.sequential_vmap(call)
  merge = node.config(MERGE_BATCH_OPTION) and module.polymorphic
  merged_warned = []

  @jax.custom_batching.custom_vmap
  def mapped(*args):
    return call(*args)

  @mapped.def_vmap
  def mapped_vmap(axis_size, in_batched, *args):
    if merge:
      outs = _merged_batch_call(module, call, axis_size, in_batched, args)
      if outs is not None:
        return outs, [True] * len(outs)
      if not merged_warned:
        merged_warned.append(True)
        warnings.warn(f"jax.vmap over XlaCallModule node {node.path!r}: the vmapped "
                      "inputs do not all have the module's polymorphic leading dimension, "
                      "so the module runs one example at a time.", stacklevel=2)
    in_axes = [0 if b else None for b in in_batched]
    outs = jax.vmap(sequential, in_axes=in_axes)(*args)
    return outs, [True] * len(outs)

  # The module itself cannot be differentiated; gradients come from the graph's custom
  # gradient (or PreventGradient says why there is none). A custom_vjp makes the forward
  # pass linearizable so that those are reached first in the backward pass.
  @jax.custom_vjp
  def differentiable(*args):
    return mapped(*args)

  def fwd(*args):
    return mapped(*args), None

  def bwd(_, cts):
    raise ConversionError(
        f"XlaCallModule node {node.path!r} has no gradient in the graph: serialize it with "
        "jax2tf.convert(..., with_gradient=True) and keep convert_custom_gradient on.")

  differentiable.defvjp(fwd, bwd)

  warned = []

  def run(*args):
    if any(isinstance(a, jax.core.Tracer) and "Batch" in type(a).__name__ for a in args):
      if not warned and not merge:  # once per converted node
        warned.append(True)
        warnings.warn(f"jax.vmap over XlaCallModule node {node.path!r} runs the module one "
                      "example at a time (the module's batch semantics are unknown; see "
                      f"the config option {MERGE_BATCH_OPTION!r}).",
                      stacklevel=2)
    return list(differentiable(*args))
  return run
