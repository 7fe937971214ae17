"""Conformance specs of tf2jax-nn's recurrent kernels (LSTMBlockCell, BlockLSTM(V2),
GRUBlockCell).

`specs()` returns one `tf2jax_conformance.OpSpec` per op (a test dependency: only the
plugin's `tf2jax_conformance_specs` hook imports this module).

What is left out of the drawn values, and why:
* NaN and infinite inputs: TF's clip of the cell state and the products 0 * inf of the
  gates give results that depend on Eigen's evaluation order; values are finite and at
  most 3 in magnitude (enough to saturate the gates and to hit the cell clip).
* seq_len_max outside [0, time]: TF's kernel aborts the process (a failed CHECK).
* Outputs i, f, o, ci and co of BlockLSTM(V2) from seq_len_max on: TF leaves them
  uninitialized (garbage); the specs compare them up to seq_len_max (cs and h, which TF
  zeroes there, are compared whole).
"""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

from tf2jax_conformance import dtypes as D
from tf2jax_conformance import strategies as cst
from tf2jax_conformance.spec import Example, OpSpec, Tolerance, default_tolerance

NO_GRAD = ("jit", "static", "x64", "vmap")
BOUND = 3.0
MAX_COTANGENT = 10.0  # strategies.cotangents draws magnitudes up to 10


def _tf():
  import tensorflow as tf
  return tf


def _values(dtype, shape):
  return cst.arrays(dtype, shape, min_value=-BOUND, max_value=BOUND, allow_nan=False,
                    allow_inf=False)


def _lstm_attrs(draw, v2: bool, forget_bias: bool = True):
  attrs = {"use_peephole": draw(st.booleans(), label="use_peephole")}
  clip = draw(st.sampled_from([None, 0.0, -1.0, 0.5, 1.5, 3.0]), label="cell_clip")
  if clip is not None:  # None: the default (3 for V1, 0 for V2)
    attrs["cell_clip"] = clip
  if forget_bias and not v2:
    fb = draw(st.sampled_from([None, 0.0, 1.0, -0.5, 2.5]), label="forget_bias")
    if fb is not None:
      attrs["forget_bias"] = fb
  return attrs


def _lstm_weights(draw, dtype, num_inputs: int, cell: int) -> dict:
  return {"w": draw(_values(dtype, (num_inputs + cell, 4 * cell)), label="w"),
          "wci": draw(_values(dtype, (cell,)), label="wci"),
          "wcf": draw(_values(dtype, (cell,)), label="wcf"),
          "wco": draw(_values(dtype, (cell,)), label="wco"),
          "b": draw(_values(dtype, (4 * cell,)), label="b")}


# LSTMBlockCell -------------------------------------------------------------------------


def _cell_example(dtype):
  @st.composite
  def draw(draw):
    # Batch or cell size 0 now and then: TF's cell kernel rejects an empty cs_prev.
    batch = draw(st.sampled_from([1, 2, 3, 0]), label="batch")
    cell = draw(st.sampled_from([1, 2, 3, 0]), label="cell")
    num_inputs = draw(st.integers(0, 3), label="input")
    inputs = {"x": draw(_values(dtype, (batch, num_inputs)), label="x"),
              "cs_prev": draw(_values(dtype, (batch, cell)), label="cs_prev"),
              "h_prev": draw(_values(dtype, (batch, cell)), label="h_prev"),
              **_lstm_weights(draw, dtype, num_inputs, cell)}
    return Example(inputs, _lstm_attrs(draw, v2=False))
  return draw()


# BlockLSTM(V2) -------------------------------------------------------------------------


def _block_example(v2: bool):
  def example(dtype):
    @st.composite
    def draw(draw):
      time = draw(st.integers(0, 4), label="time")
      # Batch and cell size 0 for V2 only: BlockLSTM's gradient then leaves the
      # gradients of w or x uninitialized.
      batch = draw(st.integers(0 if v2 else 1, 3), label="batch")
      cell = draw(st.integers(0 if v2 else 1, 3), label="cell")
      num_inputs = draw(st.integers(0, 3), label="input")
      seq_len_max = draw(st.integers(0, time).map(lambda n: time - n), label="seq_len_max")
      inputs = {"seq_len_max": np.asarray(seq_len_max, np.int64),
                "x": draw(_values(dtype, (time, batch, num_inputs)), label="x"),
                "cs_prev": draw(_values(dtype, (batch, cell)), label="cs_prev"),
                "h_prev": draw(_values(dtype, (batch, cell)), label="h_prev"),
                **_lstm_weights(draw, dtype, num_inputs, cell)}
      return Example(inputs, _lstm_attrs(draw, v2=v2))
    return draw()
  return example


def _block_build(op: str):
  def build(ex):
    """The raw op; i, f, o, ci, co cut at seq_len_max (TF leaves garbage after it)."""
    tf = _tf()
    from tf2jax_conformance.harness import tf_attrs
    attrs = tf_attrs(op, ex.attrs)
    n = int(ex.inputs["seq_len_max"])
    names = [k for k in ex.inputs]

    def body(*tensors):
      out = getattr(tf.raw_ops, op)(**dict(zip(names, tensors)), **attrs)
      return tuple(v if k in (1, 6) else v[:n] for k, v in enumerate(out))
    return body
  return build


# GRUBlockCell --------------------------------------------------------------------------


def _gru_example(dtype):
  @st.composite
  def draw(draw):
    batch = draw(st.integers(0, 3), label="batch")
    cell = draw(st.integers(0, 3), label="cell")
    num_inputs = draw(st.integers(0, 3), label="input")
    inputs = {"x": draw(_values(dtype, (batch, num_inputs)), label="x"),
              "h_prev": draw(_values(dtype, (batch, cell)), label="h_prev"),
              "w_ru": draw(_values(dtype, (num_inputs + cell, 2 * cell)), label="w_ru"),
              "w_c": draw(_values(dtype, (num_inputs + cell, cell)), label="w_c"),
              "b_ru": draw(_values(dtype, (2 * cell,)), label="b_ru"),
              "b_c": draw(_values(dtype, (cell,)), label="b_c")}
    return Example(inputs)
  return draw()


# Tolerances ----------------------------------------------------------------------------


def _max_abs(*arrays) -> float:
  vals = [float(np.max(np.abs(np.asarray(a, np.float64)), initial=0.0)) for a in arrays]
  return max(vals + [0.0])


def _gate_scale(ex) -> tuple[float, int, int]:
  """(G, K, steps): G bounds the magnitude of a gate pre-activation, a K-term sum
  sum_k |xh_k w_k| + |b| (+ forget bias and peephole terms); h is within [-1, 1] after
  the first step."""
  inputs = ex.inputs
  x = inputs["x"]
  k = int(np.shape(x)[-1]) + int(np.shape(inputs["h_prev"])[-1])
  weights = [inputs[n] for n in ("w", "w_ru", "w_c") if n in inputs]
  biases = [inputs[n] for n in ("b", "b_ru", "b_c") if n in inputs]
  xh = max(_max_abs(x, inputs["h_prev"]), 1.0)
  g = k * xh * _max_abs(*weights) + _max_abs(*biases)
  g += abs(float(ex.attrs.get("forget_bias", 1.0)))
  if "cs_prev" in inputs and ex.attrs.get("use_peephole"):
    g += (_max_abs(inputs["cs_prev"]) + BOUND) * _max_abs(inputs["wci"], inputs["wcf"],
                                                         inputs["wco"])
  steps = int(np.shape(x)[0]) if np.ndim(x) == 3 else 1
  return g, k, max(steps, 1)


def _tolerance(dtype, ex):
  """The default rtol, and (4 + K) eps G per step as absolute tolerance: a gate sums K
  products of magnitude up to G, which TF (Eigen, float16 summed in float16) and XLA
  (float16 summed in float32) add in different orders and precisions; sigmoid and tanh do
  not enlarge the error (slopes <= 1), and a step's error reaches the next through cs
  (times f < 1) and h, so errors add up over the steps."""
  g, k, steps = _gate_scale(ex)
  eps = float(D.finfo(dtype).eps)
  return Tolerance(default_tolerance(dtype).rtol, (4 + k) * eps * g * steps)


def _grad_tolerance(dtype, ex):
  """The forward tolerance times the largest cotangent (10), times (batch + time + K):
  the weight gradients sum over batch and time products of gate gradients and inputs,
  and the state gradients go back through K-term products with w at each step."""
  fwd = _tolerance(dtype, ex)
  batch = int(np.shape(ex.inputs["h_prev"])[0])
  g, k, steps = _gate_scale(ex)
  scale = MAX_COTANGENT * (batch + steps + k) * max(1.0, g)
  return Tolerance(2 * fwd.rtol, fwd.atol * scale)


_TOL_NOTE = ("Tolerance: the default rtol and (4 + K) eps G per step absolute, G the "
             "bound of a gate pre-activation (K = input + cell products of inputs and "
             "weights up to 3, bias, peephole terms): TF sums the products in Eigen's "
             "order (float16 in float16), tf2jax in XLA's (float16 in float32); seen: "
             "float16 outputs ~1 ulp (1e-3) apart, float32 ~1e-7. ")


# CudnnRNN, CudnnRNNV2, CudnnRNNV3 -----------------------------------------------------
#
# TF has no CPU kernel for them. The reference (`_cudnn_build`) computes the same RNN
# with MatMul, Sigmoid, Tanh, Relu, ... from the params buffer cut into cuDNN's canonical
# weights (the layout tf2jax_nn.recurrent documents), unrolled over time, and
# `_cudnn_rewrite` turns that graph into one whose outputs come from the CudnnRNN* node.

_CUDNN_BOUND = 2.0  # inputs and states
_PARAM_BOUND = 1.0  # weights and biases


def _cudnn_example(version: int):
  def example(dtype):
    @st.composite
    def draw(draw):
      from tf2jax_nn.recurrent import cudnn_params_size
      mode = draw(st.sampled_from(["lstm", "gru", "rnn_tanh", "rnn_relu"]), label="mode")
      # One layer, one direction: the only params layout known for sure (tf2jax refuses
      # the others).
      direction, dirs, layers = "unidirectional", 1, 1
      time = draw(st.integers(1, 4), label="time")
      batch = draw(st.integers(1, 3), label="batch")
      units = draw(st.integers(1, 3), label="units")
      input_size = draw(st.integers(1, 3), label="input size")
      attrs = {"rnn_mode": mode, "direction": direction,
               "is_training": draw(st.booleans(), label="is_training")}
      if input_size != units and draw(st.booleans(), label="auto_select"):
        attrs["input_mode"] = "auto_select"  # linear_input, as the sizes differ
      time_major = True
      if version == 3:
        time_major = draw(st.booleans(), label="time_major")
        attrs["time_major"] = time_major
      x_shape = (time, batch, input_size) if time_major else (batch, time, input_size)
      h_shape = ((layers * dirs, batch, units) if time_major
                 else (batch, layers * dirs, units))
      vals = lambda shape, bound: cst.arrays(dtype, shape, min_value=-bound,
                                             max_value=bound, allow_nan=False,
                                             allow_inf=False)
      size = cudnn_params_size(mode, layers, dirs, input_size, units)
      inputs = {"input": draw(vals(x_shape, _CUDNN_BOUND), label="input"),
                "input_h": draw(vals(h_shape, _CUDNN_BOUND), label="input_h"),
                "input_c": draw(vals(h_shape, _CUDNN_BOUND), label="input_c"),
                "params": draw(vals((size,), _PARAM_BOUND), label="params")}
      if version == 3:
        inputs["sequence_lengths"] = np.asarray(draw(st.lists(
            st.integers(1, time), min_size=batch, max_size=batch), label="lengths"),
            np.int32)
      return Example(inputs, attrs, {"layers": layers, "units": units, "version": version})
    return draw()
  return example


def _cudnn_build(ex):
  """The reference RNN in plain TF ops, from the params cut as cuDNN lays them out."""
  tf = _tf()
  from tf2jax_nn.recurrent import _CUDNN_GATES
  mode = ex.attrs["rnn_mode"]
  dirs = 2 if ex.attrs["direction"] == "bidirectional" else 1
  layers, units = ex.extra["layers"], ex.extra["units"]
  time_major = ex.attrs.get("time_major", True)
  g = _CUDNN_GATES[mode]
  with_lengths = "sequence_lengths" in ex.inputs

  def body(x, h0, c0, params, *lengths):
    x = tf.identity(x, name="rnn_input")
    h0 = tf.identity(h0, name="rnn_h")
    c0 = tf.identity(c0, name="rnn_c")
    params = tf.identity(params, name="rnn_params")
    if with_lengths:
      lengths = tf.identity(lengths[0], name="rnn_lengths")
    if not time_major:
      x, h0, c0 = (tf.transpose(v, [1, 0, 2]) for v in (x, h0, c0))
    time, input_size = x.shape[0], x.shape[2]
    offset = 0

    def take(n, shape):
      nonlocal offset
      v = tf.reshape(params[offset:offset + n], shape)
      offset += n
      return v

    def mm(a, w):  # a @ w.T, w [rows, inputs]
      return tf.matmul(a, w, transpose_b=True)
    layer_in = [x[t] for t in range(time)]
    hs, cs = [], []
    for layer in range(layers):
      inputs = input_size if layer == 0 else dirs * units
      outs = []
      for d in range(dirs):
        k = layer * dirs + d
        w = take(g * units * inputs, (g * units, inputs))
        r = take(g * units * units, (g * units, units))
        bw = take(g * units, (g * units,))
        br = take(g * units, (g * units,))
        h, c = h0[k], c0[k]
        ys = [None] * time
        order = range(time - 1, -1, -1) if d == 1 else range(time)
        for t in order:
          xw = mm(layer_in[t], w) + bw
          hr = mm(h, r) + br
          if mode == "lstm":
            gi, gf, gc, go = tf.split(xw + hr, 4, axis=-1)
            c_new = tf.sigmoid(gf) * c + tf.sigmoid(gi) * tf.tanh(gc)
            h_new = tf.sigmoid(go) * tf.tanh(c_new)
          elif mode == "gru":
            xr, xz, xn = tf.split(xw, 3, axis=-1)
            hr_r, hr_z, hr_n = tf.split(hr, 3, axis=-1)
            rg, z = tf.sigmoid(xr + hr_r), tf.sigmoid(xz + hr_z)
            n = tf.tanh(xn + rg * hr_n)
            h_new, c_new = (1 - z) * n + z * h, c
          else:
            h_new = tf.tanh(xw + hr) if mode == "rnn_tanh" else tf.nn.relu(xw + hr)
            c_new = c
          if with_lengths:
            live = (t < lengths)[:, None]
            h, c = tf.where(live, h_new, h), tf.where(live, c_new, c)
            ys[t] = tf.where(live, h_new, tf.zeros_like(h_new))
          else:
            h, c, ys[t] = h_new, c_new, h_new
        outs.append(ys)
        hs.append(h)
        cs.append(c)
      layer_in = [outs[0][t] if dirs == 1 else tf.concat([outs[0][t], outs[1][t]], -1)
                  for t in range(time)]
    out, out_h, out_c = tf.stack(layer_in), tf.stack(hs), tf.stack(cs)
    if not time_major:
      out, out_h, out_c = (tf.transpose(v, [1, 0, 2]) for v in (out, out_h, out_c))
    result = [tf.identity(out, name="rnn_out"), tf.identity(out_h, name="rnn_out_h")]
    if mode == "lstm":  # other modes: output_c is a dummy scalar TF leaves uninitialized
      result.append(tf.identity(out_c, name="rnn_out_c"))
    return tuple(result)
  return body


def _cudnn_rewrite(op: str):
  def rewrite(graph_def, ex):
    from tensorflow.python.framework import dtypes as tf_dtypes
    inputs = ["rnn_input", "rnn_h", "rnn_c", "rnn_params"]
    if "sequence_lengths" in ex.inputs:
      inputs.append("rnn_lengths")
    node = graph_def.node.add(name="cudnn_rnn", op=op, input=inputs)
    node.attr["T"].type = tf_dtypes.as_dtype(ex.inputs["input"].dtype).as_datatype_enum
    for name, value in ex.attrs.items():
      if isinstance(value, bool):
        node.attr[name].b = value
      else:
        node.attr[name].s = value.encode()
    for n in graph_def.node:
      port = {"rnn_out": 0, "rnn_out_h": 1, "rnn_out_c": 2}.get(n.name)
      if port is not None:
        n.input[0] = f"cudnn_rnn:{port}" if port else "cudnn_rnn"
  return rewrite


def _cudnn_scale(ex) -> tuple[float, int, int]:
  """(G, K, steps): G bounds a gate pre-activation (K = inputs + units products of
  values up to m and weights up to 1, two biases), m the largest input or state (for
  rnn_relu the state can grow: bounded step by step); steps = time * layers."""
  x = ex.inputs["input"]
  units, layers = ex.extra["units"], ex.extra["layers"]
  dirs = 2 if ex.attrs["direction"] == "bidirectional" else 1
  time = int(np.shape(x)[1] if not ex.attrs.get("time_major", True) else np.shape(x)[0])
  k = max(int(np.shape(x)[2]), dirs * units) + units
  p = _max_abs(ex.inputs["params"])
  m = max(_max_abs(x, ex.inputs["input_h"], ex.inputs["input_c"]), 1.0)
  g = k * m * p + 2 * p
  if ex.attrs["rnn_mode"] == "rnn_relu":
    for _ in range(time * layers):
      m = max(m, g)
      g = k * m * p + 2 * p
  return g, k, time * layers


def _cudnn_tolerance(dtype, ex):
  """The default rtol and (4 + K) eps G per step absolute (see `_tolerance`): TF's MatMul
  and XLA's dot sum the K products in different orders."""
  g, k, steps = _cudnn_scale(ex)
  eps = float(D.finfo(dtype).eps)
  return Tolerance(default_tolerance(dtype).rtol, (4 + k) * eps * g * steps)


def _cudnn_grad_tolerance(dtype, ex):
  """The forward tolerance times the largest cotangent (10) and (batch + steps + K): the
  weight gradients sum over batch and time, the state gradients go back through K-term
  products at each step."""
  fwd = _cudnn_tolerance(dtype, ex)
  g, k, steps = _cudnn_scale(ex)
  batch = int(np.shape(ex.inputs["input_h"])[1 if ex.attrs.get("time_major", True) else 0])
  return Tolerance(2 * fwd.rtol, fwd.atol * MAX_COTANGENT * (batch + steps + k) * max(1.0, g))


_CUDNN_NOTE = ("TF has no CPU kernel for it (cuDNN's RNN, GPU only). Reference: the same "
               "RNN in MatMul/Sigmoid/Tanh/Relu, unrolled over time, from the params "
               "buffer cut as cuDNN lays it out (per layer and direction: the gate input "
               "weights [units, inputs] row-major, the recurrent ones, then the input and "
               "recurrent biases; gates i, f, c, o for lstm, r, z, h for gru; single "
               "layer = tf.keras's gru_lstm_utils.canonical_to_params), rewritten into "
               "the op; the layout itself cannot be checked without a GPU. Drawn: "
               "rnn_mode lstm/gru/rnn_tanh/rnn_relu, one layer, unidirectional, "
               "linear_input (auto_select with input size != units), is_training; "
               "output_c compared for lstm only (a dummy scalar otherwise); reserve_space "
               "not compared (opaque). Refused: bidirectional and 2+ layers (how cuDNN "
               "lays out their params is not verified), skip_input (layout unknown). "
               "Tolerance: the default rtol and "
               "(4 + K) eps G per step absolute (G bounds a gate pre-activation: TF's "
               "MatMul and XLA's dot sum K products in different orders). Dtypes: float32 "
               "and float64; float16 and bfloat16 (which the op allows; tf2jax computes "
               "them in float32) are left out: with no kernel, nothing says how cuDNN "
               "rounds them, and a reference in float16 TF ops would not be ground truth. ")


def _cudnn_specs():
  common = dict(dtype_attr=None, dtypes=("float32", "float64"), build=_cudnn_build,
                tolerance=_cudnn_tolerance, grad_tolerance=_cudnn_grad_tolerance)
  return [
      OpSpec("CudnnRNN", _cudnn_example(1), rewrite=_cudnn_rewrite("CudnnRNN"),
             notes=_CUDNN_NOTE, **common),
      OpSpec("CudnnRNNV2", _cudnn_example(2), rewrite=_cudnn_rewrite("CudnnRNNV2"),
             notes=_CUDNN_NOTE + "host_reserved not compared (opaque).", **common),
      OpSpec("CudnnRNNV3", _cudnn_example(3), rewrite=_cudnn_rewrite("CudnnRNNV3"),
             notes=_CUDNN_NOTE + "V3: sequence_lengths in [1, time] (each entry stops "
                   "there; the backward direction starts at its length - 1; outputs after "
                   "it are 0), time_major both ways; num_proj refused (not lowered).",
             **common),
  ]


def specs():
  attrs_note = ("Attrs: use_peephole, cell_clip (default, 0, negative = none, 0.5, 1.5, "
                "3)")
  return [
      OpSpec("LSTMBlockCell", _cell_example, transforms=NO_GRAD, tolerance=_tolerance,
             notes=(_TOL_NOTE + attrs_note + ", forget_bias. No grad: TF 2 registers no "
                    "gradient for LSTMBlockCell (tf.GradientTape gives None; the "
                    "LSTMBlockCellGrad op was used by tf.contrib); tf2jax differentiates "
                    "the step as written. Batch or cell size 0 is drawn now and then: "
                    "TF rejects an empty cs_prev, and so does tf2jax.")),
      OpSpec("BlockLSTM", _block_example(v2=False), build=_block_build("BlockLSTM"),
             tolerance=_tolerance, grad_tolerance=_grad_tolerance,
             notes=(_TOL_NOTE + attrs_note + ", forget_bias; seq_len_max in [0, time] "
                    "(an input). i, f, o, ci, co are compared up to seq_len_max (TF leaves "
                    "garbage after it, e.g. 1.3e10; tf2jax 0). grad is TF's BlockLSTMGrad: "
                    "only the cotangents of cs and h count, cell_clip is ignored. Batch and cell "
                    "size >= 1: with 0, TF's gradient leaves w's or x's gradient "
                    "uninitialized (NaN and -14584 seen for float16; Eigen writes nothing "
                    "for a contraction over an empty dimension).")),
      OpSpec("BlockLSTMV2", _block_example(v2=True), build=_block_build("BlockLSTMV2"),
             transforms=NO_GRAD, tolerance=_tolerance,
             notes=(_TOL_NOTE + attrs_note + "; gates in IFCO order, no forget_bias. No "
                    "grad check: TF registers BlockLSTM's Python gradient for BlockLSTMV2, "
                    "which calls the BlockLSTMGrad kernel (ICFO gates) on V2's IFCO "
                    "weights: a wrong gradient (float32, T=4, B=2, I=3, C=2: 1.9 away from "
                    "central differences, 1e-4 for BlockLSTM). tf2jax's gradient is what "
                    "TF's BlockLSTMGradV2 kernel computes (checked by hand: 7e-7 apart in "
                    "float32).")),
      OpSpec("GRUBlockCell", _gru_example, transforms=NO_GRAD, tolerance=_tolerance,
             notes=(_TOL_NOTE + "No grad: TF 2 registers no gradient for GRUBlockCell; "
                    "tf2jax differentiates the step as written.")),
  ] + _cudnn_specs()
