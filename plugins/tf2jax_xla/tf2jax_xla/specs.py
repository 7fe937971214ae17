"""Conformance specs of tf2jax-xla's XlaDynamicSlice, XlaDynamicUpdateSlice and
XlaCallModule.

TF runs the slicing ops only through XLA, so their reference is
`tf.function(jit_compile=True)` and their dtypes are those of TF's XLA_CPU_JIT kernels.
Start indices are drawn anywhere, also negative and past the end: XLA clamps them so that
the slice fits. XlaCallModule graphs come from `jax2tf.convert` (native serialization) of
small JAX functions; TF's XlaCallModule kernel is the reference.
A test dependency: only the plugin's `tf2jax_conformance_specs` hook imports this module.
"""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

from tf2jax_conformance import dtypes as D
from tf2jax_conformance import strategies as cst
from tf2jax_conformance.spec import Example, OpSpec


def _starts(rank: int, index_dtype: str):
  return st.lists(st.integers(-4, 8), min_size=rank, max_size=rank).map(
      lambda s: np.asarray(s, D.np_dtype(index_dtype)))


def _slice_example(dtype):
  def for_input(t):
    x, index_dtype = t
    sizes = st.tuples(*[st.integers(0, d) for d in x.shape]).map(
        lambda s: np.asarray(s, D.np_dtype(index_dtype)))
    return st.tuples(_starts(x.ndim, index_dtype), sizes).map(
        lambda ss: Example({"input": x, "start_indices": ss[0], "size_indices": ss[1]}))
  return st.tuples(cst.arrays(dtype, cst.shapes(min_dims=1, max_dims=3)),
                   cst.index_dtypes()).flatmap(for_input)


def _update_example(dtype):
  def for_input(t):
    x, index_dtype = t
    update_shape = st.tuples(*[st.integers(0, d) for d in x.shape])
    return st.tuples(cst.arrays(dtype, update_shape), _starts(x.ndim, index_dtype)).map(
        lambda us: Example({"input": x, "update": us[0], "indices": us[1]}))
  return st.tuples(cst.arrays(dtype, cst.shapes(min_dims=1, max_dims=3)),
                   cst.index_dtypes()).flatmap(for_input)


def _slice_body(example):
  import tensorflow as tf
  from tensorflow.compiler.tf2xla.ops import gen_xla_ops
  sizes = example.inputs["size_indices"]
  return lambda x, start: gen_xla_ops.xla_dynamic_slice(x, start, tf.constant(sizes))


def _update_body(example):
  from tensorflow.compiler.tf2xla.ops import gen_xla_ops
  return lambda x, update, indices: gen_xla_ops.xla_dynamic_update_slice(x, update, indices)


_NO_GRAD = ("No grad: TF registers no gradient for it. ")


_SKIP = {d: "TF's XLA bridge rejects it (MLIR: 'operand must be tensor of tf.dtype values')"
         for d in D.NO_GRAPH_CONSTANT}
_SKIP.update({d: "TF's XLA path returns wrong values for it (an empty update zeroes "
                 "elements of the input)" for d in ("int4", "uint4")})


def specs() -> list[OpSpec]:
  common = dict(kernel_device="XLA_CPU_JIT", tf_jit_compile=True, skip_dtypes=_SKIP,
                transforms=("jit", "static", "x64", "vmap"))
  return [
      OpSpec("XlaCallModule", _call_module_example, build=_call_module_body,
             dtype_attr="Tin", dtypes=_CALL_MODULE_DTYPES, skip_dtypes=_CALL_MODULE_SKIP,
             notes=_CALL_MODULE_NOTES),
      OpSpec("XlaDynamicSlice", _slice_example, build=_slice_body,
             static_inputs=("size_indices",), notes=_NO_GRAD + "Starts are clamped.",
             **common),
      OpSpec("XlaDynamicUpdateSlice", _update_example, build=_update_body,
             notes=_NO_GRAD + "Starts are clamped.", **common),
  ]


# XlaCallModule ------------------------------------------------------------------------
# Small JAX functions by dtype family (first: what the first, simplest example draws).


def _movement(x):
  import jax.numpy as jnp
  return jnp.concatenate([jnp.flip(x, 0), x], axis=0)


def _bool_mix(x):
  import jax.numpy as jnp
  return jnp.logical_xor(~x, jnp.flip(x, 0)), jnp.any(x, axis=0)


def _int_mix(x):
  import jax.numpy as jnp
  return x * 3 + jnp.flip(x, 0), jnp.cumsum(x, axis=0, dtype=x.dtype), jnp.sort(x, axis=0)


def _float_mix(x):
  import jax.numpy as jnp
  return jnp.sin(x) * 2 + jnp.cumsum(x, axis=0), x - jnp.mean(x, axis=0)


def _complex_mix(x):
  import jax.numpy as jnp
  return x * jnp.conj(x) + jnp.flip(x, 0) * 1j, jnp.sum(x, axis=0)


def _scan(x):
  import jax
  import jax.numpy as jnp
  return jax.lax.scan(lambda c, v: (c * 0.5 + v, jnp.tanh(c)), jnp.zeros(x.shape[1:], x.dtype),
                      x)[1]


_FUNCTIONS = {"movement": _movement, "bool_mix": _bool_mix, "int_mix": _int_mix,
              "float_mix": _float_mix, "complex_mix": _complex_mix, "scan": _scan}


def _functions_for(dtype):
  if dtype == "bool":
    return ["bool_mix", "movement"]
  if dtype in D.INT:
    return ["int_mix", "movement"]
  if dtype in D.FLOAT:
    return ["float_mix", "scan", "movement"]
  if dtype in D.COMPLEX:
    return ["complex_mix", "movement"]
  return ["movement"]  # float8, int4: data movement only


def _call_module_example(dtype):
  shapes = st.one_of(st.just((3, 2)), cst.shapes(min_dims=1, max_dims=3, min_side=1,
                                                   max_side=4))
  return st.tuples(cst.arrays(dtype, shapes), st.sampled_from(_functions_for(dtype)),
                   st.sampled_from([True, False])).map(
      lambda t: Example({"x": t[0]}, extra={"function": t[1], "polymorphic": t[2]}))


def _call_module_body(example):
  import jax
  import tensorflow as tf
  from jax.experimental import jax2tf
  dtype = D.name_of(example.inputs["x"].dtype)
  f = _FUNCTIONS[example.extra["function"]]
  converted = jax2tf.convert(
      f, native_serialization=True, with_gradient=dtype in D.FLOAT,
      polymorphic_shapes=["(b, ...)"] if example.extra["polymorphic"] else None)

  def fn(x):
    # 64-bit dtypes need JAX's x64 mode while jax2tf serializes the module.
    with jax.enable_x64(D.is_64bit(dtype)):
      out = converted(x)
    return tf.nest.flatten(out)
  return fn


_CALL_MODULE_DTYPES = ("bool", "int64", "bfloat16", "float32", "complex128", "float8_e4m3fn")
_CALL_MODULE_SKIP = {d: "tf2jax hands the module to jax.export whatever its dtypes: a "
                        "sample of every kind (" + ", ".join(_CALL_MODULE_DTYPES) + ") "
                        "keeps the ci profile cheap"
                     for d in D.ALL if d not in _CALL_MODULE_DTYPES}
_CALL_MODULE_SKIP["float64"] = (
    "the forward pass conforms, but the grad check cannot: jax2tf serializes the VJP when "
    "TF's gradient function is traced, which tf2jax does at conversion, outside JAX's x64 "
    "mode in the harness (so that VJP computes in float32), while TF's eager gradient is "
    "traced in x64 mode")
_CALL_MODULE_SKIP.update({d: "TF's XlaCallModule kernel refuses it (MLIR cannot convert the "
                             "dtype)" for d in ("float4_e2m1fn", "int2", "uint2")})
_CALL_MODULE_SKIP.update({d: "TF's XlaCallModule kernel returns wrong values for it "
                             "(concatenating [0, 1, 2] with its reverse gives "
                             "[1, 0, 0, -4, -4, -1] for int4)" for d in ("int4", "uint4")})
_CALL_MODULE_NOTES = (
    "Modules serialized by jax2tf.convert (native serialization) of small JAX functions "
    "drawn by dtype: data movement (flip, concatenate) for every dtype, and for the "
    "numbers arithmetic, cumsum, sort, mean, sum, lax.scan; the first dim fixed or "
    "polymorphic (b, ...), which tf2jax refines to the call's shapes. vmap: the module "
    "runs one example at a time (a warning says so). grad: through the VJP jax2tf "
    "serializes (with_gradient=True), which tf2jax converts as the op's custom gradient "
    "(float64 left out: see its reason).")
