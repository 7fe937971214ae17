"""XlaIf, XlaWhile, XlaRngBitGenerator, XlaSelfAdjointEig and XlaSvd.

XlaIf / XlaWhile call their branch / cond / body library functions: a static predicate
(or a loop whose variables are all static) is decided at trace time, otherwise they
become `lax.cond` / `lax.while_loop`, with params threaded through so that variable
assignments inside reach `new_params`. XLA wants a scalar bool predicate in both.

XlaRngBitGenerator matches TF's XLA bits exactly: a u64[2] state (key, counter) is
XLA's own RngBitGenerator (`lax.rng_bit_generator`); Philox with a u64[3] state (key,
128-bit counter), which JAX's primitive does not take, is computed here as XLA does.

XlaSelfAdjointEig / XlaSvd: XLA runs Jacobi sweeps until `epsilon` or `max_iter`; tf2jax
computes the converged decomposition (LAPACK, float16/bfloat16 in float32), ignoring
both attrs: the results agree where TF's Jacobi converges. Eigenvalues ascend, singular
values descend, U and V are square (XLA's full matrices).
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np

from tf2jax_core import lowering
from tf2jax_core.errors import ConversionError
from tf2jax_core.lowering import is_static
from tf2jax_xla.dot_conv import _proto

MAX_STATIC_ITERATIONS = 100_000


def _where(node) -> str:
  return f"{node.op} node {node.path!r}"


# XlaIf / XlaWhile ---------------------------------------------------------------------


class _Threaded:
  """Calls library functions inside lax control flow with the params threaded through:
  array arguments travel as operands, others (variable handles) are closed over."""

  def __init__(self, ctx, args):
    self.ctx, self.args = ctx, list(args)
    self.arrays = [i for i, a in enumerate(args)
                   if isinstance(a, (np.ndarray, np.generic, jax.Array))]

  def operands(self):
    return dict(self.ctx.params), [self.args[i] for i in self.arrays]

  def full(self, arrays) -> list:
    full = list(self.args)
    for i, x in zip(self.arrays, arrays):
      full[i] = x
    return full

  def call(self, function, operands, outputs=None):
    params, arrays = operands
    self.finish(params)
    outs = self.ctx.call(function, self.full(arrays), outputs)
    return outs, dict(self.ctx.params)

  def finish(self, params) -> None:
    self.ctx.params.clear()
    self.ctx.params.update(params)


def _scalar_pred(node, what: str, value):
  if np.ndim(value) != 0 or np.dtype(value.dtype) != np.bool_:
    raise ConversionError(
        f"{_where(node)}: {what} must be a scalar bool for XLA, got "
        f"{np.dtype(value.dtype).name}{list(np.shape(value))} (TF's XLA compile fails "
        "too); compare it to produce a bool scalar.")
  return value


def _tcond(dtype):
  return True if np.dtype(dtype) == np.bool_ else (
      "XLA takes a bool condition only (TF's XLA compile fails on others)")


@lowering("XlaIf", attrs={"Tcond": _tcond, "Tin": None, "Tout": None, "then_branch": None,
                          "else_branch": None, "output_shapes": None}, needs_context=True)
def xla_if(node):
  then_fn = node.function(node.attrs["then_branch"].name)
  else_fn = node.function(node.attrs["else_branch"].name)

  def run(ctx, pred, *args):
    pred = _scalar_pred(node, "input 'cond'", pred)
    if is_static(pred):
      return ctx.call(then_fn if bool(pred) else else_fn, args)
    t = _Threaded(ctx, args)
    outs, params = jax.lax.cond(pred, lambda ops: t.call(then_fn, ops),
                                lambda ops: t.call(else_fn, ops), t.operands())
    t.finish(params)
    return outs
  return run


@lowering("XlaWhile", attrs={"T": None, "cond": None, "body": None, "output_shapes": None,
                             "parallel_iterations": None}, needs_context=True)
def xla_while(node):
  cond = node.function(node.attrs["cond"].name)
  body = node.function(node.attrs["body"].name)
  if len(cond.outputs) != 1 or len(body.outputs) != len(node.attrs["T"]):
    raise ConversionError(
        f"{_where(node)}: its cond returns {len(cond.outputs)} values (1 expected) and its "
        f"body {len(body.outputs)} for {len(node.attrs['T'])} loop variables.")

  def predicate(ctx, args):
    return _scalar_pred(node, "the cond function's result", ctx.call(cond, args)[0])

  def run(ctx, *args):
    values = list(args)
    if all(is_static(v) for v in values):  # run the loop at trace time while it stays so
      for _ in range(MAX_STATIC_ITERATIONS):
        pred = predicate(ctx, values)
        if not is_static(pred):
          break
        if not bool(pred):
          return values
        saved = dict(ctx.params)
        new = ctx.call(body, values)
        if not all(is_static(v) for v in new):  # undo its assignments: the loop redoes it
          ctx.params.clear()
          ctx.params.update(saved)
          break
        values = list(new)
    t = _Threaded(ctx, values)

    def body_fn(operands):
      outs, params = t.call(body, operands)
      arrays = [jnp.asarray(outs[i], jnp.asarray(a).dtype)
                for i, a in zip(t.arrays, operands[1])]
      return params, arrays

    def cond_fn(operands):
      outs, _ = t.call(cond, operands, [0])
      return _scalar_pred(node, "the cond function's result", outs[0])

    params, arrays = t.operands()
    arrays = [jnp.asarray(a) for a in arrays]
    params, arrays = jax.lax.while_loop(cond_fn, body_fn, (params, arrays))
    t.finish(params)
    return t.full(arrays)
  return run


# XlaRngBitGenerator -------------------------------------------------------------------

_RNG_DTYPES = ("uint8", "uint32", "uint64")
# TF's algorithm ids (rng_alg.h): 1 Philox, 2 ThreeFry, 3 auto-select (Philox on CPU).
_PHILOX, _THREEFRY, _AUTO = 1, 2, 3
_MASK32 = 0xFFFFFFFF


def _rng_dtype(dtype):
  return True if np.dtype(dtype).name in _RNG_DTYPES else (
      "TF's XLA kernel produces uint8, uint32 and uint64 only")


def _philox_words(key, lo, hi, blocks: int):
  """`4 * blocks` Philox-4x32-10 words (uint32) from the 128-bit counter (lo, hi)
  upward, under the 64-bit key; and the counter after them. uint64 arithmetic."""
  u64 = jnp.uint64
  j = jnp.arange(blocks, dtype=u64)
  c_lo = lo + j
  c_hi = hi + (c_lo < j).astype(u64)  # carry
  m = u64(_MASK32)
  c = [c_lo & m, c_lo >> u64(32), c_hi & m, c_hi >> u64(32)]
  k0, k1 = key & m, key >> u64(32)
  for r in range(10):
    p0, p1 = c[0] * u64(0xD2511F53), c[2] * u64(0xCD9E8D57)
    c = [(p1 >> u64(32)) ^ c[1] ^ k0, p1 & m, (p0 >> u64(32)) ^ c[3] ^ k1, p0 & m]
    if r < 9:
      k0, k1 = (k0 + u64(0x9E3779B9)) & m, (k1 + u64(0xBB67AE85)) & m
  words = jnp.stack(c, axis=-1).reshape(-1).astype(jnp.uint32)
  new_lo = lo + u64(blocks)
  return words, new_lo, hi + (new_lo < lo).astype(u64)


def _philox3(state, shape, dtype):
  """XLA's Philox RngBitGenerator on a u64[3] state [key, counter lo, counter hi]."""
  n = math.prod(shape)
  need = 2 * n if dtype == np.uint64 else n  # 8-bit values use a word each, as XLA
  words, lo, hi = _philox_words(state[0], state[1], state[2], -(-need // 4))
  words = words[:need].astype(jnp.uint64)
  if dtype == np.uint64:
    bits = words[0::2] | (words[1::2] << jnp.uint64(32))
  else:
    bits = (words & jnp.uint64(0xFF if dtype == np.uint8 else _MASK32)).astype(dtype)
  return jnp.stack([state[0], lo, hi]), bits.reshape(shape)


@lowering("XlaRngBitGenerator", attrs={"dtype": _rng_dtype, "Tshape": None},
          static_inputs=(0, 2))
def rng_bit_generator(node):
  dtype = np.dtype(node.attrs.get("dtype", np.uint64))

  def run(algorithm, state, shape):
    alg = int(algorithm) if np.ndim(algorithm) == 0 else None
    shape = tuple(int(d) for d in np.reshape(shape, -1))
    if alg not in (_PHILOX, _THREEFRY, _AUTO):
      raise ConversionError(f"{_where(node)}: algorithm {algorithm} is not a known id; TF's "
                            "are 1 (Philox), 2 (ThreeFry) and 3 (auto-select).")
    sizes = (2,) if alg == _THREEFRY else (2, 3)
    if np.ndim(state) != 1 or np.shape(state)[0] not in sizes:
      raise ConversionError(
          f"{_where(node)}: initial_state has shape {list(np.shape(state))}; XLA's "
          f"{'ThreeFry' if alg == _THREEFRY else 'Philox'} takes a uint64 vector of "
          f"{' or '.join(map(str, sizes))} elements (key, counter).")
    if any(d < 0 for d in shape):
      raise ConversionError(f"{_where(node)}: shape {list(shape)} has a negative size.")
    if not jax.config.jax_enable_x64:
      raise ConversionError(f"{_where(node)}: its uint64 state needs JAX's 64-bit types: "
                            "jax.config.update('jax_enable_x64', True).")
    state = jnp.asarray(state, jnp.uint64)
    if np.shape(state)[0] == 3:
      return _philox3(state, shape, dtype)
    algo = (jax.lax.RandomAlgorithm.RNG_THREE_FRY if alg == _THREEFRY
            else jax.lax.RandomAlgorithm.RNG_PHILOX)
    return _xla_bits(state, shape, dtype, algo)
  return run


def _xla_bits(state, shape, dtype, algo):
  """lax.rng_bit_generator, vmapped one state at a time: JAX's own batching rule draws
  every row from the first state."""
  f = jax.custom_batching.custom_vmap(
      lambda s: tuple(jax.lax.rng_bit_generator(s, shape, dtype, algorithm=algo)))

  @f.def_vmap
  def _(axis_size, in_batched, s):
    del axis_size
    if not in_batched[0]:
      return f(s), (False, False)
    return jax.lax.map(f, s), (True, True)
  return f(state)


# XlaSelfAdjointEig / XlaSvd -----------------------------------------------------------

_HALF = ("float16", "bfloat16")
_EIG_DTYPES = ("float16", "bfloat16", "float32", "float64", "complex64", "complex128")


def _eig_dtype(dtype):
  return True if np.dtype(dtype).name in _EIG_DTYPES else (
      "XLA decomposes floating point and complex matrices only (TF's XLA compile fails "
      "on others)")


def _work(x):
  """x as a JAX array in the dtype LAPACK runs (float32 for 16-bit floats)."""
  x = jnp.asarray(x)
  return x.astype(jnp.float32) if x.dtype.name in _HALF else x


def _adjoint(x):
  x = jnp.swapaxes(x, -1, -2)
  return jnp.conj(x) if jnp.iscomplexobj(x) else x


@lowering("XlaSelfAdjointEig", attrs={"T": _eig_dtype, "lower": None, "max_iter": None,
                                      "epsilon": None})
def self_adjoint_eig(node):
  uplo = "L" if node.attrs["lower"] else "U"

  def run(a):
    shape = np.shape(a)
    if len(shape) < 2 or shape[-1] != shape[-2]:
      raise ConversionError(f"{_where(node)}: input 'a' must be a batch of square matrices, "
                            f"got shape {list(shape)}.")
    w, v = jnp.linalg.eigh(_work(a), UPLO=uplo, symmetrize_input=False)
    return w.astype(a.dtype), v.astype(a.dtype)
  return run


@lowering("XlaSvd", attrs={"T": ("float16", "bfloat16", "float32", "float64"),
                           "max_iter": None, "epsilon": None, "precision_config": None})
def svd(node):
  _proto(node, "precision_config", "PrecisionConfig")  # checked; computed at full precision

  def run(a):
    shape = np.shape(a)
    if len(shape) < 2:
      raise ConversionError(f"{_where(node)}: input 'a' must have rank >= 2, got shape "
                            f"{list(shape)}.")
    if 0 in shape[-2:] and math.prod(shape[:-2]):
      raise ConversionError(f"{_where(node)}: input 'a' of shape {list(shape)} holds empty "
                            "matrices, which XLA's SVD refuses (as TF's XLA compile does).")
    u, s, vh = jnp.linalg.svd(_work(a), full_matrices=True)
    return s.astype(a.dtype), u.astype(a.dtype), _adjoint(vh).astype(a.dtype)
  return run
