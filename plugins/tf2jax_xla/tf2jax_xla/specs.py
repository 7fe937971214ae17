"""Conformance specs of tf2jax-xla's XlaDynamicSlice and XlaDynamicUpdateSlice.

TF runs these ops only through XLA, so the reference is `tf.function(jit_compile=True)`
and the dtypes are those of TF's XLA_CPU_JIT kernels. Start indices are drawn anywhere,
also negative and past the end: XLA clamps them so that the slice fits.
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


def specs() -> list[OpSpec]:
  common = dict(kernel_device="XLA_CPU_JIT", tf_jit_compile=True, skip_dtypes=_SKIP,
                transforms=("jit", "static", "x64", "vmap"))
  return [
      OpSpec("XlaDynamicSlice", _slice_example, build=_slice_body,
             static_inputs=("size_indices",), notes=_NO_GRAD + "Starts are clamped.",
             **common),
      OpSpec("XlaDynamicUpdateSlice", _update_example, build=_update_body,
             notes=_NO_GRAD + "Starts are clamped.", **common),
  ]
