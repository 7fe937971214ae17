"""Global configuration flags: `get_config`, `update_config`, `override_config`.

The core defines the original tf2jax flags; plugins contribute more through the
`tf2jax_config_options` hook. An unknown name is a `ValueError` listing the known ones.
"""

from __future__ import annotations

import contextlib
import dataclasses
from typing import Any, Iterator, Sequence


@dataclasses.dataclass(frozen=True)
class Option:
  """A configuration flag: name, default, one-line doc and optional allowed values."""

  name: str
  default: Any
  doc: str
  choices: Sequence[Any] | None = None
  provider: str = "tf2jax"


_CORE_OPTIONS = (
    Option("strict_shape_check", True,
           "Check that call-time input shapes are compatible with the traced ones."),
    Option("strict_dtype_check", False,
           "Check that call-time input dtypes equal the traced ones."),
    Option("force_const_float32_to_bfloat16", False,
           "Convert float32 constants of the graph to bfloat16."),
    Option("force_const_float64_to_bfloat16", False,
           "Convert float64 constants of the graph to bfloat16."),
    Option("convert_custom_gradient", True,
           "Convert @tf.custom_gradient functions to jax.custom_vjp."),
    Option("infer_relu_from_jax2tf", True,
           "Recognise relu in jax2tf-produced graphs, so its gradient at 0 matches JAX."),
    Option("infer_cumulative_reduction_from_jax2tf", True,
           "Recognise jax2tf's reduce_window cumulative reductions and lower them as cumsum etc."),
    Option("raise_on_prevent_gradient", True,
           "Raise LookupError when differentiating through PreventGradient (else warn)."),
    Option("resize_bilinear_precision", "highest",
           "Matmul precision of the bilinear resize lowering.",
           choices=("default", "high", "highest")),
    Option("enable_checkify_for_asserts", False,
           "Lower Assert/CheckNumerics to jax.experimental.checkify checks."),
    Option("xlacallmodule_strict_checks", True,
           "Refuse XlaCallModule platform mismatches and unknown features."),
    Option("disable_assert_in_tensor_list_get_item", False,
           "Skip the element-type check of TensorListGetItem."),
    Option("skip_variables_evaluation_inside_tf_tracing", False,
           "When convert() runs inside TF tracing, return empty params instead of failing."),
    Option("max_static_value_bytes", 1 << 30,
           "Largest constant or static value materialised at conversion time, in bytes."),
)

_options: dict[str, Option] = {o.name: o for o in _CORE_OPTIONS}
_values: dict[str, Any] = {o.name: o.default for o in _CORE_OPTIONS}


def define_option(option: Option) -> None:
  """Adds a plugin's option. A second definition of one name is an error."""
  old = _options.get(option.name)
  if old is not None and old != option:
    raise ValueError(
        f"Config option {option.name!r} from {option.provider} is already defined by "
        f"{old.provider}.")
  _options[option.name] = option
  _values.setdefault(option.name, option.default)


def options() -> dict[str, Option]:
  """All known options, the plugins' included."""
  _load_plugin_options()
  return dict(_options)


def _load_plugin_options() -> None:
  from tf2jax_core import plugins  # Plugins define options when they load.
  plugins.manager().ensure_loaded()


def _option(name: str) -> Option:
  if name not in _options:
    _load_plugin_options()
  if name not in _options:
    known = ", ".join(sorted(_options))
    raise ValueError(f"Unknown tf2jax config option {name!r}. Known options: {known}.")
  return _options[name]


def _check_value(option: Option, value: Any) -> None:
  if option.choices is not None and value not in option.choices:
    raise ValueError(
        f"Config option {option.name!r} takes one of {list(option.choices)}, got {value!r}.")
  if option.choices is None and type(option.default) is bool and not isinstance(value, bool):
    raise ValueError(f"Config option {option.name!r} takes a bool, got {value!r}.")
  if type(option.default) is int and (type(value) is not int or value < 0):
    raise ValueError(f"Config option {option.name!r} takes an int >= 0, got {value!r}.")


def get_config(name: str) -> Any:
  """The current value of a config option."""
  _option(name)
  return _values[name]


def update_config(name: str, value: Any) -> None:
  """Sets a config option globally."""
  _check_value(_option(name), value)
  _values[name] = value


@contextlib.contextmanager
def override_config(name: str, value: Any) -> Iterator[None]:
  """Sets a config option inside a `with` block, restoring it afterwards."""
  _check_value(_option(name), value)
  old = _values[name]
  _values[name] = value
  try:
    yield
  finally:
    _values[name] = old
