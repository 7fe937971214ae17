"""What a plugin author writes: lowerings, and helpers for static values.

A lowering is a *builder* run once per node at conversion time. It reads the node's
decoded attrs and returns the function run at call time on the node's input values:

    @lowering("Relu", attrs={"T": None})
    def relu(node):
      return lambda x: xnp(x).maximum(x, 0)

Values are NumPy arrays when known at conversion time (constants, static shapes) and
JAX arrays or tracers otherwise; `xnp(*values)` picks `numpy` or `jax.numpy` so static
values stay static under `jax.jit`.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Collection, Mapping

import jax.numpy as jnp
import numpy as np

# An attr rule: None (any value), a collection of allowed values, or a predicate
# returning True, or a string saying why the value is refused.
AttrRule = Any


@dataclasses.dataclass(frozen=True)
class Provider:
  """Who registered a lowering: a distribution (or in-code plugin) and its version."""

  name: str
  version: str

  def __str__(self) -> str:
    return f"{self.name} {self.version}"


@dataclasses.dataclass(frozen=True)
class Lowering:
  """How to lower one or more TF op types.

  build: `build(node) -> run`; `run(*inputs)` (or `run(ctx, *inputs)` when
    `needs_context`) returns one value, a list or tuple of values (one per output),
    or None for ops without outputs.
  attrs: the attrs the lowering understands, each with a rule (see `AttrRule`).
    Attrs starting with "_" are ignored; any other attr not listed must hold TF's
    default value.
  static_inputs: indices of inputs that must be known at conversion time.
  needs_rng: the node draws random numbers (`ctx.rng()`); implies `needs_context`.
  needs_context: `run` receives the call context first (params, rng, function calls).
  """

  op_types: tuple[str, ...]
  build: Callable
  attrs: Mapping[str, AttrRule] = dataclasses.field(default_factory=dict)
  static_inputs: tuple[int, ...] = ()
  needs_rng: bool = False
  needs_context: bool = False
  provider: Provider | None = None
  override: bool = False

  def check_attr(self, name: str, value: Any) -> str | None:
    """None when the lowering supports `value` for attr `name`, else the reason."""
    if name not in self.attrs:
      return "the lowering does not know this attr"
    rule = self.attrs[name]
    if rule is None:
      return None
    if callable(rule):
      ok = rule(value)
      return None if ok is True else (ok if isinstance(ok, str) else "value not supported")
    values = value if isinstance(value, list) else [value]
    bad = [v for v in values if not _allowed(v, rule)]
    if bad:
      allowed = sorted(str(r) for r in rule)
      return f"supported values: {', '.join(allowed)}"
    return None


def _allowed(value: Any, rule) -> bool:
  if isinstance(value, np.dtype):
    name = value.name
    return any(name == (r if isinstance(r, str) else np.dtype(r).name) for r in rule)
  return any(type(value) is type(r) and value == r for r in rule)


def lowering(*op_types: str, attrs: Mapping[str, AttrRule] | None = None,
             static_inputs: Collection[int] = (), needs_rng: bool = False,
             needs_context: bool = False) -> Callable[[Callable], Lowering]:
  """Decorator turning a builder into a `Lowering` for `op_types`."""
  if not op_types:
    raise ValueError("lowering() needs at least one op type.")

  def wrap(build: Callable) -> Lowering:
    return Lowering(tuple(op_types), build, dict(attrs or {}), tuple(static_inputs),
                    needs_rng, needs_context or needs_rng)
  return wrap


def is_static(*values: Any) -> bool:
  """Whether every value is known at conversion time (a NumPy array or scalar)."""
  return all(isinstance(v, (np.ndarray, np.generic)) for v in values)


def xnp(*values: Any, result_bytes: int | None = None):
  """`numpy` when every value is static, else `jax.numpy`.

  Ops whose output can be much larger than their inputs (Fill, Range, Tile, ...) pass
  `result_bytes`: above the `max_static_value_bytes` limit the result is left to JAX at
  call time instead of being materialised at conversion time.
  """
  if result_bytes is not None and result_bytes > static_limit():
    return jnp
  return np if is_static(*values) else jnp


def static_limit() -> int:
  """The `max_static_value_bytes` config flag."""
  from tf2jax_core.config import get_config
  return get_config("max_static_value_bytes")


# Dtype groups for attr rules.
FLOAT = ("float16", "bfloat16", "float32", "float64")
COMPLEX = ("complex64", "complex128")
SIGNED_INT = ("int8", "int16", "int32", "int64")
UNSIGNED_INT = ("uint8", "uint16", "uint32", "uint64")
INT = SIGNED_INT + UNSIGNED_INT
NUMBER = FLOAT + COMPLEX + INT
REAL = FLOAT + INT
