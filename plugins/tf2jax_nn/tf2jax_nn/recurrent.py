"""Fused recurrent kernels: LSTMBlockCell, BlockLSTM(V2), GRUBlockCell.

What TF's CPU kernels compute (tensorflow/core/kernels/rnn/lstm_ops.h, gru_ops.h):

LSTM step, xh = [x, h_prev] and gates = xh @ w + b ([batch, 4 * cell]), split in four
blocks: i, ci, f, o ("ICFO": LSTMBlockCell, BlockLSTM) or i, f, ci, o ("IFCO":
BlockLSTMV2, which also has no forget_bias: it is 0)::

  i  = sigmoid(gates_i + cs_prev * wci)              # peephole terms only with
  f  = sigmoid(gates_f + forget_bias + cs_prev * wcf) # use_peephole
  ci = tanh(gates_ci)
  cs = i * ci + f * cs_prev, clipped to [-cell_clip, cell_clip] when cell_clip > 0
  o  = sigmoid(gates_o + cs * wco)
  co = tanh(cs);  h = o * co

BlockLSTM(V2) runs the step over x [time, batch, input] for t < seq_len_max: cs and h
are 0 from there on, and TF leaves i, f, o, ci and co uninitialized (garbage) there;
tf2jax gives 0 for all seven. seq_len_max outside [0, time] makes TF's kernel abort the
process (a failed CHECK): refused when it is known, clamped under jit.

The gradient of BlockLSTM is TF's BlockLSTMGrad kernel (a custom VJP): it only takes the
cotangents of cs and h, and ignores cell_clip (a clipped cs passes its gradient on).
TF registers the same Python gradient for BlockLSTMV2, which calls BlockLSTMGrad (ICFO)
on V2's IFCO weights: a wrong gradient. tf2jax's BlockLSTMV2 gradient is what TF's
BlockLSTMGradV2 kernel computes (the gates in IFCO order). LSTMBlockCell and
GRUBlockCell have no registered gradient in TF 2: tf2jax differentiates them as written.

GRU step, with r and u the two halves of sigmoid([x, h_prev] @ w_ru + b_ru)::

  c = tanh([x, r * h_prev] @ w_c + b_c);  h = u * (h_prev - c) + c

float16 is computed in float32 (products summed in float32) and rounded to float16 at
each value TF stores (the seven outputs of each step).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from tf2jax_core import lowering
from tf2jax_nn._common import HIGHEST

ICFO, IFCO = "ICFO", "IFCO"
LSTM_OUTPUTS = ("i", "cs", "f", "o", "ci", "co", "h")


def _where(node) -> str:
  return f"{node.op} node {node.path!r}"


def _compute_dtype(dtype):
  return jnp.float32 if np.dtype(dtype) == np.float16 else np.dtype(dtype)


def _shape(v) -> tuple[int, ...]:
  return tuple(int(d) for d in np.shape(v))


def _check_lstm_shapes(node, x_shape, cs_prev, h_prev, w, wci, wcf, wco, b):
  """TF's shape checks of LSTMBlockCell / BlockLSTM (x_shape: one step's [batch, input])."""
  where = _where(node)
  if len(x_shape) != 2:
    raise ValueError(f"{where}: x must be 2-D [batch, input] per step, got {list(x_shape)}")
  batch, num_inputs = x_shape
  if len(_shape(cs_prev)) != 2:
    raise ValueError(f"{where}: cs_prev must be 2-D [batch, cell], got "
                     f"{list(_shape(cs_prev))}")
  cell = _shape(cs_prev)[1]
  want = {"cs_prev": (batch, cell), "h_prev": (batch, cell),
          "w": (num_inputs + cell, 4 * cell), "wci": (cell,), "wcf": (cell,),
          "wco": (cell,), "b": (4 * cell,)}
  got = {"cs_prev": cs_prev, "h_prev": h_prev, "w": w, "wci": wci, "wcf": wcf,
         "wco": wco, "b": b}
  for name, shape in want.items():
    if _shape(got[name]) != shape:
      raise ValueError(f"{where}: {name} must have shape {list(shape)} (batch {batch}, "
                       f"input {num_inputs}, cell {cell}), got {list(_shape(got[name]))}")
  return batch, num_inputs, cell


def _gates(gates, cell: int, layout: str):
  """(i, ci, f, o) blocks of the gate pre-activations."""
  a, b, c, d = (gates[:, k * cell:(k + 1) * cell] for k in range(4))
  return (a, b, c, d) if layout == ICFO else (a, c, b, d)


def _join_gates(i, ci, f, o, layout: str):
  return jnp.concatenate([i, ci, f, o] if layout == ICFO else [i, f, ci, o], axis=1)


def _lstm_step(x, cs_prev, h_prev, w, wci, wcf, wco, b, *, forget_bias: float,
               cell_clip: float, peephole: bool, layout: str):
  """One LSTM step; every output rounded to x's dtype as TF stores it."""
  dtype = x.dtype
  ct = _compute_dtype(dtype)
  cell = cs_prev.shape[1]
  up = lambda v: v.astype(ct)
  rnd = lambda v: v.astype(dtype).astype(ct)  # rounded as TF stores it
  xh = jnp.concatenate([x, h_prev], axis=1)
  gates = jnp.matmul(xh, w, precision=HIGHEST, preferred_element_type=ct) + up(b)
  gi, gci, gf, go = _gates(gates, cell, layout)
  cs_prev_c = up(cs_prev)
  if peephole:
    gi = gi + cs_prev_c * up(wci)
    gf = gf + cs_prev_c * up(wcf)
  i = rnd(jax.nn.sigmoid(gi))
  f = rnd(jax.nn.sigmoid(gf + jnp.asarray(forget_bias, ct)))
  ci = rnd(jnp.tanh(gci))
  cs = i * ci + f * cs_prev_c
  if cell_clip > 0:
    cs = jnp.clip(cs, -cell_clip, cell_clip)
  cs = rnd(cs)
  if peephole:
    go = go + cs * up(wco)
  o = rnd(jax.nn.sigmoid(go))
  co = rnd(jnp.tanh(cs))
  h = o * co
  return tuple(v.astype(dtype) for v in (i, cs, f, o, ci, co, h))


def _lstm_cell_fn(node, layout: str, forget_bias: float):
  cell_clip = float(node.attrs.get("cell_clip", 0.0 if layout == IFCO else 3.0))
  peephole = bool(node.attrs.get("use_peephole", False))
  return lambda *args: _lstm_step(*args, forget_bias=forget_bias, cell_clip=cell_clip,
                                  peephole=peephole, layout=layout)


@lowering("LSTMBlockCell", attrs={"T": ("float16", "float32"), "forget_bias": None,
                                  "cell_clip": None, "use_peephole": None})
def lstm_block_cell(node):
  step = _lstm_cell_fn(node, ICFO, float(node.attrs.get("forget_bias", 1.0)))

  def run(x, cs_prev, h_prev, w, wci, wcf, wco, b):
    _check_lstm_shapes(node, _shape(x), cs_prev, h_prev, w, wci, wcf, wco, b)
    if np.size(cs_prev) == 0:  # TF's cell kernel (not BlockLSTM's) refuses it
      raise ValueError(f"{_where(node)}: cs_prev must not be empty (batch or cell size "
                       f"0), got shape {list(_shape(cs_prev))}")
    return step(*(jnp.asarray(v) for v in (x, cs_prev, h_prev, w, wci, wcf, wco, b)))
  return run


# BlockLSTM -----------------------------------------------------------------------------


def _block_lstm_forward(step, seq_len_max, x, cs_prev, h_prev, w, wci, wcf, wco, b):
  """The seven outputs [time, batch, cell]; steps from seq_len_max on give zeros."""
  def body(carry, xs):
    cs, h = carry
    t, x_t = xs
    outs = step(x_t, cs, h, w, wci, wcf, wco, b)
    live = t < seq_len_max
    outs = tuple(jnp.where(live, v, jnp.zeros_like(v)) for v in outs)
    carry = (jnp.where(live, outs[1], cs), jnp.where(live, outs[6], h))
    return carry, outs
  steps = jnp.arange(x.shape[0], dtype=jnp.int64 if jax.config.jax_enable_x64
                     else jnp.int32)
  _, outs = lax.scan(body, (cs_prev, h_prev), (steps, x))
  return outs


def _block_lstm_backward(layout, peephole, seq_len_max, x, cs_prev, h_prev, w, wci, wcf,
                         wco, outs, cs_grad, h_grad):
  """TF's BlockLSTMGrad(V2) kernel: back through t < seq_len_max, from the cotangents of
  cs and h only."""
  dtype = x.dtype
  ct = _compute_dtype(dtype)
  up = lambda v: v.astype(ct)
  i, cs, f, o, ci, co, _ = (up(v) for v in outs)
  num_inputs = x.shape[2]
  # The state entering each step: the initial one, then the previous step's output.
  time = x.shape[0]
  cs_in = jnp.concatenate([up(cs_prev)[None], cs[:-1]], axis=0)[:time]
  h_in = jnp.concatenate([up(h_prev)[None], up(outs[6])[:-1]], axis=0)[:time]
  wc = up(w)
  peep = [up(v) for v in (wci, wcf, wco)]
  zeros = lambda shape: jnp.zeros(shape, ct)

  def body(carry, xs):
    dcs_next, dh_next, dw, db, dwci, dwcf, dwco = carry
    t, x_t, i_t, cs_t, f_t, o_t, ci_t, co_t, cs_p, h_p, dcs_t, dh_t = xs
    dh = up(dh_t) + dh_next
    d_o = o_t * (1 - o_t) * dh * co_t
    dcs = (1 - co_t * co_t) * dh * o_t + up(dcs_t) + dcs_next
    if peephole:
      dcs = dcs + d_o * peep[2]
    dci = (1 - ci_t * ci_t) * dcs * i_t
    df = f_t * (1 - f_t) * dcs * cs_p
    di = i_t * (1 - i_t) * dcs * ci_t
    dgates = _join_gates(di, dci, df, d_o, layout)
    dcs_prev = dcs * f_t
    if peephole:
      dcs_prev = dcs_prev + di * peep[0] + df * peep[1]
      dwci, dwcf, dwco = (dwci + (di * cs_p).sum(0), dwcf + (df * cs_p).sum(0),
                          dwco + (d_o * cs_t).sum(0))
    dxh = jnp.matmul(dgates, wc.T, precision=HIGHEST)
    xh = jnp.concatenate([up(x_t), h_p], axis=1)
    new = (dcs_prev, dxh[:, num_inputs:], dw + jnp.matmul(xh.T, dgates, precision=HIGHEST),
           db + dgates.sum(0), dwci, dwcf, dwco)
    live = t < seq_len_max
    new = tuple(jnp.where(live, n, c) for n, c in zip(new, carry))
    return new, jnp.where(live, dxh[:, :num_inputs], zeros(dxh[:, :num_inputs].shape))

  batch, cell = cs_prev.shape
  init = (zeros((batch, cell)), zeros((batch, cell)), zeros(w.shape), zeros((4 * cell,)),
          zeros((cell,)), zeros((cell,)), zeros((cell,)))
  steps = jnp.arange(x.shape[0], dtype=jnp.int64 if jax.config.jax_enable_x64
                     else jnp.int32)
  carry, dx = lax.scan(body, init, (steps, x, i, cs, f, o, ci, co, cs_in, h_in, cs_grad,
                                    h_grad), reverse=True)
  dcs_prev, dh_prev, dw, db, dwci, dwcf, dwco = carry
  return tuple(v.astype(dtype) for v in (dx, dcs_prev, dh_prev, dw, dwci, dwcf, dwco, db))


def _block_lstm_fn(node, layout: str, forget_bias: float):
  step = _lstm_cell_fn(node, layout, forget_bias)
  peephole = bool(node.attrs.get("use_peephole", False))

  @jax.custom_vjp
  def block(seq_len_max, x, cs_prev, h_prev, w, wci, wcf, wco, b):
    return _block_lstm_forward(step, seq_len_max, x, cs_prev, h_prev, w, wci, wcf, wco, b)

  def fwd(seq_len_max, x, cs_prev, h_prev, w, wci, wcf, wco, b):
    outs = _block_lstm_forward(step, seq_len_max, x, cs_prev, h_prev, w, wci, wcf, wco, b)
    return outs, (seq_len_max, x, cs_prev, h_prev, w, wci, wcf, wco, outs)

  def bwd(res, cts):
    grads = _block_lstm_backward(layout, peephole, *res, cts[1], cts[6])
    return (None,) + grads

  block.defvjp(fwd, bwd)
  return block


def _block_lstm_lowering(node, layout: str, forget_bias: float):
  block = _block_lstm_fn(node, layout, forget_bias)

  def run(seq_len_max, x, cs_prev, h_prev, w, wci, wcf, wco, b):
    where = _where(node)
    if np.ndim(x) != 3:
      raise ValueError(f"{where}: x must be 3-D [time, batch, input], got shape "
                       f"{list(_shape(x))}")
    if np.ndim(seq_len_max) != 0:
      raise ValueError(f"{where}: seq_len_max must be a scalar, got shape "
                       f"{list(_shape(seq_len_max))}")
    time = _shape(x)[0]
    _check_lstm_shapes(node, _shape(x)[1:], cs_prev, h_prev, w, wci, wcf, wco, b)
    if not isinstance(seq_len_max, jax.core.Tracer):
      n = int(np.asarray(seq_len_max))
      if not 0 <= n <= time:
        raise ValueError(f"{where}: seq_len_max must be in [0, {time}] (x's time "
                         f"dimension), got {n} (TF's kernel aborts the process)")
    args = [jnp.asarray(v) for v in (x, cs_prev, h_prev, w, wci, wcf, wco, b)]
    return block(jnp.asarray(seq_len_max), *args)
  return run


_LSTM_ATTRS = {"T": ("float16", "float32"), "cell_clip": None, "use_peephole": None}


@lowering("BlockLSTM", attrs={**_LSTM_ATTRS, "forget_bias": None})
def block_lstm(node):
  return _block_lstm_lowering(node, ICFO, float(node.attrs.get("forget_bias", 1.0)))


@lowering("BlockLSTMV2", attrs=_LSTM_ATTRS)
def block_lstm_v2(node):
  return _block_lstm_lowering(node, IFCO, 0.0)


# GRUBlockCell --------------------------------------------------------------------------


def _gru_step(x, h_prev, w_ru, w_c, b_ru, b_c):
  """(r, u, c, h) of one GRU step, as TF's GRUBlockCell."""
  cell = h_prev.shape[1]
  ru = jax.nn.sigmoid(jnp.matmul(jnp.concatenate([x, h_prev], axis=1), w_ru,
                                 precision=HIGHEST) + b_ru)
  r, u = ru[:, :cell], ru[:, cell:]
  c = jnp.tanh(jnp.matmul(jnp.concatenate([x, r * h_prev], axis=1), w_c,
                          precision=HIGHEST) + b_c)
  return r, u, c, u * (h_prev - c) + c


@lowering("GRUBlockCell", attrs={"T": ("float32",)})
def gru_block_cell(node):
  def run(x, h_prev, w_ru, w_c, b_ru, b_c):
    where = _where(node)
    if np.ndim(x) != 2:
      raise ValueError(f"{where}: x must be 2-D [batch, input], got shape "
                       f"{list(_shape(x))}")
    batch, num_inputs = _shape(x)
    if np.ndim(h_prev) != 2 or _shape(h_prev)[0] != batch:
      raise ValueError(f"{where}: h_prev must be [{batch}, cell] (x's batch), got shape "
                       f"{list(_shape(h_prev))}")
    cell = _shape(h_prev)[1]
    want = {"w_ru": (num_inputs + cell, 2 * cell), "w_c": (num_inputs + cell, cell),
            "b_ru": (2 * cell,), "b_c": (cell,)}
    got = {"w_ru": w_ru, "w_c": w_c, "b_ru": b_ru, "b_c": b_c}
    for name, shape in want.items():
      if _shape(got[name]) != shape:
        raise ValueError(f"{where}: {name} must have shape {list(shape)} (input "
                         f"{num_inputs}, cell {cell}), got {list(_shape(got[name]))}")
    return _gru_step(*(jnp.asarray(v) for v in (x, h_prev, w_ru, w_c, b_ru, b_c)))
  return run


# CudnnRNN, CudnnRNNV2, CudnnRNNV3 ------------------------------------------------------
#
# cuDNN's RNNs (TF registers GPU kernels only). Per layer and direction, with x the
# layer's input (the op's input for layer 0, else the previous layer's output, both
# directions concatenated), h and c the state, W_g and R_g the input and recurrent
# weights of gate g and bW_g, bR_g their two biases (cuDNN has both):
#   rnn_tanh / rnn_relu: h' = act(W x + bW + R h + bR)
#   lstm (gates i, f, c, o): i, f, o = sigmoid(W_g x + bW_g + R_g h + bR_g),
#        c' = f * c + i * tanh(W_c x + bW_c + R_c h + bR_c),  h' = o * tanh(c')
#   gru (gates r, z, h): r, z = sigmoid(W_g x + bW_g + R_g h + bR_g),
#        n = tanh(W_h x + bW_h + r * (R_h h + bR_h)),  h' = (1 - z) * n + z * h
# The backward direction of a bidirectional RNN runs from the last step to the first.
# output is the last layer's h at every step ([time, batch, dir * units]); output_h and
# output_c the final states of every layer and direction ([layers * dir, batch, units]).
# V3: sequence_lengths stops each batch entry's recurrence at its length (the backward
# direction starts at length - 1); outputs past it are 0 (cuDNN's padded layout), and
# time_major=False puts batch first in input, input_h, input_c and the outputs.
#
# The params buffer ("opaque"; TF's docs warn that it may differ between GPUs), for the
# one layer and direction lowered (more are refused: their layout is not verified here;
# the code below cuts them per layer, then direction): the input weight matrices of every gate,
# then the recurrent ones, each [units, inputs] row-major, then the input biases of every
# gate and the recurrent ones. For one layer and one direction that is what tf.keras
# builds for its cuDNN LSTM/GRU (gru_lstm_utils.canonical_to_params: the gate weights
# transposed and flattened, concatenated, then the biases); weights then biases per
# pseudo-layer is cuDNN's order of cudnnGetRNNLinLayerMatrixParams/BiasParams, which
# PyTorch's cuDNN flat weights rely on too.

_CUDNN_GATES = {"lstm": 4, "gru": 3, "rnn_tanh": 1, "rnn_relu": 1}


def cudnn_params_size(mode: str, num_layers: int, dirs: int, input_size: int,
                      units: int) -> int:
  """The number of elements of the params buffer."""
  g = _CUDNN_GATES[mode]
  total = 0
  for layer in range(num_layers):
    inputs = input_size if layer == 0 else dirs * units
    total += dirs * g * (units * inputs + units * units + 2 * units)
  return total


def _cudnn_split(params, mode, num_layers, dirs, input_size, units):
  """[(W [g*units, in], R [g*units, units], bW [g*units], bR [g*units])] per layer and
  direction, the gates stacked in cuDNN's order."""
  g = _CUDNN_GATES[mode]
  out, offset = [], 0

  def take(n, shape):
    nonlocal offset
    v = params[offset:offset + n].reshape(shape)
    offset += n
    return v
  for layer in range(num_layers):
    inputs = input_size if layer == 0 else dirs * units
    for _ in range(dirs):
      w = take(g * units * inputs, (g * units, inputs))
      r = take(g * units * units, (g * units, units))
      bw = take(g * units, (g * units,))
      br = take(g * units, (g * units,))
      out.append((w, r, bw, br))
  return out


def _cudnn_direction(mode, xw, h0, c0, r, br, lengths, reverse: bool):
  """One direction of one layer: (outputs [T, B, units], final h, final c)."""
  dot = lambda a, b: jnp.matmul(a, b.T, precision=HIGHEST)
  time = xw.shape[0]

  def step(carry, xs):
    h, c = carry
    t, xw_t = xs
    hr = dot(h, r) + br
    if mode == "lstm":
      gi, gf, gc, go = jnp.split(xw_t + hr, 4, axis=-1)
      c_new = jax.nn.sigmoid(gf) * c + jax.nn.sigmoid(gi) * jnp.tanh(gc)
      h_new = jax.nn.sigmoid(go) * jnp.tanh(c_new)
    elif mode == "gru":
      xr, xz, xn = jnp.split(xw_t, 3, axis=-1)
      hr_r, hr_z, hr_n = jnp.split(hr, 3, axis=-1)
      rg = jax.nn.sigmoid(xr + hr_r)
      z = jax.nn.sigmoid(xz + hr_z)
      n = jnp.tanh(xn + rg * hr_n)
      h_new, c_new = (1 - z) * n + z * h, c
    else:
      pre = xw_t + hr
      h_new = jnp.tanh(pre) if mode == "rnn_tanh" else jax.nn.relu(pre)  # relu'(0) = 0
      c_new = c
    if lengths is not None:
      live = (t < lengths)[:, None]
      h_new, c_new = jnp.where(live, h_new, h), jnp.where(live, c_new, c)
      y = jnp.where(live, h_new, jnp.zeros_like(h_new))
    else:
      y = h_new
    return (h_new, c_new), y
  (h, c), ys = lax.scan(step, (h0, c0), (jnp.arange(time), xw), reverse=reverse)
  return ys, h, c


def _cudnn_rnn(mode, x, h0, c0, params, lengths, num_layers, dirs, units):
  """(output, output_h, output_c), all time major."""
  input_size = x.shape[2]
  weights = _cudnn_split(params, mode, num_layers, dirs, input_size, units)
  layer_in = x
  hs, cs = [], []
  for layer in range(num_layers):
    outs = []
    for d in range(dirs):
      k = layer * dirs + d
      w, r, bw, br = weights[k]
      xw = jnp.einsum("tbi,gi->tbg", layer_in, w, precision=HIGHEST) + bw
      ys, h, c = _cudnn_direction(mode, xw, h0[k], c0[k], r, br, lengths, reverse=d == 1)
      outs.append(ys)
      hs.append(h)
      cs.append(c)
    layer_in = outs[0] if dirs == 1 else jnp.concatenate(outs, axis=-1)
  return layer_in, jnp.stack(hs), jnp.stack(cs)


_CUDNN_ATTRS = {"T": ("float16", "bfloat16", "float32", "float64"),
                "rnn_mode": tuple(_CUDNN_GATES), "input_mode": None,
                "direction": ("unidirectional", "bidirectional"), "dropout": None,
                "seed": None, "seed2": None, "is_training": None}


def _cudnn_lowering(node, version: int):
  from tf2jax_nn._common import refuse
  mode = node.attrs.get("rnn_mode", "lstm")
  if isinstance(mode, bytes):
    mode = mode.decode()
  direction = node.attrs.get("direction", "unidirectional")
  if isinstance(direction, bytes):
    direction = direction.decode()
  input_mode = node.attrs.get("input_mode", "linear_input")
  if isinstance(input_mode, bytes):
    input_mode = input_mode.decode()
  dirs = 2 if direction == "bidirectional" else 1
  if dirs == 2:
    refuse(node, "direction", "bidirectional: how cuDNN lays out the params of more than "
                              "one direction is not verified against TF; convert the two "
                              "directions as two unidirectional ops")
  time_major = bool(node.attrs.get("time_major", True))
  if int(node.attrs.get("num_proj", 0) or 0) != 0:
    refuse(node, "num_proj", "LSTM projections (num_proj > 0) are not lowered yet")
  if input_mode not in ("linear_input", "auto_select"):
    refuse(node, "input_mode", "only linear_input is lowered (skip_input's params layout "
                               "is not known here)")
  where = _where(node)

  def run(x_in, input_h, input_c, params, sequence_lengths=None):
    x_shape, h_shape = _shape(x_in), _shape(input_h)
    if len(x_shape) != 3:
      raise ValueError(f"{where}: input must be 3-D, got shape {list(x_shape)}")
    if len(h_shape) != 3:
      raise ValueError(f"{where}: input_h must be 3-D, got shape {list(h_shape)}")
    if time_major:
      time, batch, input_size = x_shape
      layers_dirs, h_batch, units = h_shape
    else:
      batch, time, input_size = x_shape
      h_batch, layers_dirs, units = h_shape
    if h_batch != batch or layers_dirs % dirs or layers_dirs == 0:
      raise ValueError(f"{where}: input_h's shape {list(h_shape)} does not fit input's "
                       f"{list(x_shape)} ({dirs} direction(s), batch {batch})")
    num_layers = layers_dirs // dirs
    if num_layers > 1:
      refuse(node, "input_h", f"{num_layers} layers: how cuDNN lays out the params of more "
                              "than one layer is not verified against TF; one layer is "
                              "lowered", value=f"{layers_dirs} layers")
    if input_mode == "auto_select" and input_size == units:
      refuse(node, "input_mode", "auto_select with input size == num_units is skip_input, "
                                 "which is not lowered (its params layout is not known "
                                 "here)")
    if mode == "lstm" and _shape(input_c) != h_shape:
      raise ValueError(f"{where}: input_c must have input_h's shape {list(h_shape)}, got "
                       f"{list(_shape(input_c))}")
    if (float(node.attrs.get("dropout", 0.0)) > 0 and node.attrs.get("is_training", True)
        and num_layers > 1):
      refuse(node, "dropout", "dropout between layers in training is random; not lowered")
    want = cudnn_params_size(mode, num_layers, dirs, input_size, units)
    if _shape(params) != (want,):
      raise ValueError(f"{where}: params must be a vector of {want} elements for {mode}, "
                       f"{num_layers} layer(s), {direction}, input size {input_size}, "
                       f"{units} units; got shape {list(_shape(params))}")
    if sequence_lengths is not None and _shape(sequence_lengths) != (batch,):
      raise ValueError(f"{where}: sequence_lengths must be a vector of {batch} elements, got "
                       f"shape {list(_shape(sequence_lengths))}")
    if sequence_lengths is not None and not isinstance(sequence_lengths, jax.core.Tracer):
      n = np.asarray(sequence_lengths)
      if n.size and (n.min() < 0 or n.max() > time):
        raise ValueError(f"{where}: sequence_lengths must be in [0, {time}], got "
                         f"{n.tolist()}")
    x, h0, c0 = (jnp.asarray(v) for v in (x_in, input_h, input_c))
    dtype = x.dtype
    if not time_major:
      x, h0 = jnp.swapaxes(x, 0, 1), jnp.swapaxes(h0, 0, 1)
      c0 = jnp.swapaxes(c0, 0, 1) if mode == "lstm" else c0
    if mode != "lstm":
      c0 = jnp.zeros_like(h0)
    ct = _compute_dtype(dtype) if dtype != jnp.bfloat16 else jnp.float32
    lengths = None if sequence_lengths is None else jnp.asarray(sequence_lengths)
    out, h, c = _cudnn_rnn(mode, x.astype(ct), h0.astype(ct), c0.astype(ct),
                           jnp.asarray(params).astype(ct), lengths, num_layers, dirs, units)
    if not time_major:
      out, h, c = (jnp.swapaxes(v, 0, 1) for v in (out, h, c))
    out, h = out.astype(dtype), h.astype(dtype)
    c = c.astype(dtype) if mode == "lstm" else jnp.zeros((), dtype)
    # reserve_space (and V2+'s host_reserved) feed cuDNN's backward op only: empty here.
    extra = [jnp.zeros((0,), dtype)] + ([jnp.zeros((0,), jnp.int8)] if version > 1 else [])
    return (out, h, c, *extra)

  if version == 3:
    return run
  return lambda x_in, input_h, input_c, params: run(x_in, input_h, input_c, params)


@lowering("CudnnRNN", attrs=_CUDNN_ATTRS)
def cudnn_rnn(node):
  return _cudnn_lowering(node, 1)


@lowering("CudnnRNNV2", attrs=_CUDNN_ATTRS)
def cudnn_rnn_v2(node):
  return _cudnn_lowering(node, 2)


@lowering("CudnnRNNV3", attrs={**_CUDNN_ATTRS, "num_proj": None, "time_major": None})
def cudnn_rnn_v3(node):
  return _cudnn_lowering(node, 3)
