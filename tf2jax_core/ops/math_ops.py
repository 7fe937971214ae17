"""Elementwise math, comparisons, casts, reductions and matrix products."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import ml_dtypes
import numpy as np

from tf2jax_core.lowering import COMPLEX, FLOAT, INT, NUMBER, REAL, is_static, lowering, xnp
from tf2jax_core.ops.scan_segment_ops import _x64

LOWERINGS = []


def _unary(op: str, types, np_fn, jnp_fn) -> None:
  @lowering(op, attrs={"T": types})
  def build(node):
    return lambda x: np_fn(x) if is_static(x) else jnp_fn(x)
  LOWERINGS.append(build)


def _binary(op: str, types, name: str) -> None:
  @lowering(op, attrs={"T": types})
  def build(node):
    return lambda x, y: getattr(xnp(x, y), name)(x, y)
  LOWERINGS.append(build)


def _np_sigmoid(x):
  return (1 / (1 + np.exp(-x))).astype(x.dtype)


def _np_rsqrt(x):
  return (1 / np.sqrt(x)).astype(x.dtype)


@jax.custom_jvp
def _rsqrt(x):
  return jax.lax.rsqrt(x)


def _rsqrt_jvp(primals, tangents):
  # TF's RsqrtGrad: -0.5 * dy * y**3 (JAX's -0.5 * dy * y / x has the other sign at -0.0).
  y = _rsqrt(primals[0])
  return y, tangents[0] * (-0.5 * y * y * y).astype(y.dtype)


_rsqrt.defjvp(_rsqrt_jvp)

for _op, _np_fn, _jnp_fn in [
    ("Sin", np.sin, jnp.sin), ("Cos", np.cos, jnp.cos), ("Tanh", np.tanh, jnp.tanh),
    ("Exp", np.exp, jnp.exp), ("Log", np.log, jnp.log), ("Sqrt", np.sqrt, jnp.sqrt),
    ("Rsqrt", _np_rsqrt, _rsqrt), ("Sigmoid", _np_sigmoid, jax.nn.sigmoid)]:
  _unary(_op, FLOAT + COMPLEX, _np_fn, _jnp_fn)
_unary("Neg", NUMBER, np.negative, jnp.negative)
_unary("Square", NUMBER, np.square, jnp.square)



@jax.custom_jvp
def _abs(x):
  return jnp.abs(x)


# TF's gradient of Abs is grad * sign(x): 0 at 0 (JAX's abs has 1 there).
_abs.defjvp(lambda primals, tangents: (_abs(primals[0]), tangents[0] * jnp.sign(primals[0])))
_unary("Abs", REAL, np.abs, _abs)

for _op, _name, _types in [
    ("AddV2", "add", NUMBER), ("Sub", "subtract", NUMBER), ("Mul", "multiply", NUMBER),
    ("Greater", "greater", REAL), ("Less", "less", REAL),
    ("GreaterEqual", "greater_equal", REAL), ("LessEqual", "less_equal", REAL)]:
  _binary(_op, _types, _name)


def _with_tf_grad(forward, tangent):
  """`forward(x, y)` whose JVP is `tangent(x, y, tx, ty)` (TF's gradient formula)."""
  @jax.custom_jvp
  def f(x, y):
    return forward(x, y)

  @f.defjvp
  def f_jvp(primals, tangents):
    x, y = primals
    tx, ty = tangents
    out = forward(x, y)
    return out, jnp.broadcast_to(tangent(x, y, tx, ty), out.shape).astype(out.dtype)
  return f


# TF sends the whole gradient of Maximum/Minimum to x where x >= y (x <= y), ties
# included; JAX's maximum splits it in halves at ties.
_maximum = _with_tf_grad(jnp.maximum, lambda x, y, tx, ty: jnp.where(x >= y, tx, ty))
_minimum = _with_tf_grad(jnp.minimum, lambda x, y, tx, ty: jnp.where(x <= y, tx, ty))


def _div(x, y):
  """x / y. XLA rewrites a division by a broadcast value into a multiplication by its
  reciprocal, which is wrong by an ulp and flushed to zero when |y| > 1 / tiny (x / 1e38
  gives 0 in float32): broadcast y behind an optimization barrier."""
  shape = jnp.broadcast_shapes(jnp.shape(x), jnp.shape(y))
  if jnp.shape(y) != shape:
    y = jax.lax.optimization_barrier(jnp.broadcast_to(y, shape))
  return jnp.true_divide(x, y)


# TF's gradient of x / y: (gx / y, gy * ((-x / y) / y)); JAX's -gy * x * y**-2 overflows
# elsewhere (and so gives 0 where TF gives NaN, or the reverse). The barrier keeps XLA from
# rewriting (-x / y) / y into -x / (y * y), which overflows or underflows first.
_real_div = _with_tf_grad(
    _div, lambda x, y, tx, ty: (_div(tx, y)
                                + ty * _div(jax.lax.optimization_barrier(_div(-x, y)), y)))


def _binary_with_grad(op: str, types, name: str, inexact_fn) -> None:
  @lowering(op, attrs={"T": types})
  def build(node):
    def run(x, y):
      if is_static(x, y):
        return getattr(np, name)(x, y)
      if jnp.issubdtype(x.dtype, jnp.inexact):
        return inexact_fn(x, y)
      return getattr(jnp, name)(x, y)
    return run
  LOWERINGS.append(build)


_binary_with_grad("Minimum", REAL, "minimum", _minimum)
_binary_with_grad("RealDiv", FLOAT + COMPLEX, "true_divide", _real_div)

# Graphs jax2tf wrote (its inputs are Identity nodes named jax2tf_arg_<i>, its output
# jax2tf_out) get their Maximum nodes marked by `mark_jax2tf_maximum`.
JAX2TF_MARK = "_tf2jax_in_jax2tf_graph"


def mark_jax2tf_maximum(graph) -> None:
  """Graph rewrite: marks the Maximum nodes of a graph jax2tf wrote."""
  if not any(n.startswith("jax2tf_arg_") or n == "jax2tf_out" for n in graph.nodes):
    return
  for node in graph.nodes.values():
    if node.op == "Maximum":
      node.attrs[JAX2TF_MARK] = True


@lowering("Maximum", attrs={"T": REAL})
def maximum(node):
  """With infer_relu_from_jax2tf, Maximum(x, 0) in a jax2tf graph is jax.nn.relu (jax2tf
  wrote relu that way; relu's gradient at 0 is 0, TF's Maximum gives it to x: 1)."""
  relu = bool(node.attrs.get(JAX2TF_MARK)) and node.config("infer_relu_from_jax2tf")

  def run(x, y):
    if is_static(x, y):
      return np.maximum(x, y)
    if not jnp.issubdtype(x.dtype, jnp.inexact):
      return jnp.maximum(x, y)
    if relu:
      for a, b in ((x, y), (y, x)):
        if is_static(b) and not np.any(b):
          return jax.nn.relu(jnp.broadcast_to(a, jnp.broadcast_shapes(a.shape, b.shape)))
    return _maximum(x, y)
  return run


@lowering("Cast", attrs={"SrcT": NUMBER + ("bool",), "DstT": NUMBER + ("bool",),
                         "Truncate": None})
def cast(node):
  dst = node.attrs["DstT"]
  truncate = bool(node.attrs.get("Truncate", False))

  def run(x):
    if truncate:
      x = _zero_low_mantissa_bits(x, dst)
    if np.iscomplexobj(x) and np.dtype(dst).kind != "c":
      x = xnp(x).real(x)  # TF casts a complex number to a real type (bool too) by its real part
    if is_static(x):
      with np.errstate(over="ignore"):  # to inf, as TF
        return np.asarray(x).astype(dst)
    return jax.lax.convert_element_type(x, dst) if x.dtype != dst else x
  return run


_UINT = {2: np.uint16, 4: np.uint32, 8: np.uint64}


def _zero_low_mantissa_bits(x, dst):
  """Cast with Truncate=True: TF zeroes the mantissa bits the narrower float type cannot
  hold (NaN excepted) before casting, so the cast truncates instead of rounding. Except
  (TF 2.21's CPU kernel): to bfloat16 only float32 truncates, the others round; and
  float64 to complex64 loses the whole mantissa and the exponent's lowest bit (1.0 gives
  0.5, 3.0 gives 2.0), which is copied."""
  src = np.dtype(x.dtype)
  if src.kind not in "fc" and src != ml_dtypes.bfloat16:
    return x
  if np.dtype(dst) == ml_dtypes.bfloat16 and src != np.float32:
    return x
  part = np.dtype(np.float32 if src == np.complex64 else np.float64) if src.kind == "c" \
      else src
  dst_part = np.dtype(dst)
  if dst_part.kind == "c":
    dst_part = np.dtype(np.float32 if dst_part == np.complex64 else np.float64)
  if dst_part.kind not in "f" and dst_part != ml_dtypes.bfloat16:
    return x
  bits = ml_dtypes.finfo(part).nmant - ml_dtypes.finfo(dst_part).nmant
  if src == np.float64 and np.dtype(dst) == np.complex64:
    bits = ml_dtypes.finfo(part).nmant + 1
  if bits <= 0:
    return x
  uint = _UINT[part.itemsize]
  mask = uint(~np.uint64(0) << np.uint64(bits) & np.uint64(np.iinfo(uint).max))
  m = xnp(x)

  def zero(v):
    if m is np:
      out = (np.asarray(v).view(uint) & mask).view(part)
    else:
      out = jax.lax.bitcast_convert_type(
          jax.lax.bitcast_convert_type(v, uint) & mask, part)
    return m.where(m.isnan(v), v, out)
  if src.kind == "c":
    real = zero(m.real(x))
    imag = zero(m.imag(x)) if np.dtype(dst).kind == "c" else m.imag(x)
    return (real + 1j * imag).astype(src) if m is np else jax.lax.complex(real, imag)
  return zero(x)


@lowering("MatMul", attrs={"T": FLOAT + COMPLEX + ("int32", "int64"), "transpose_a": None,
                           "transpose_b": None, "grad_a": None, "grad_b": None})
def matmul(node):
  ta, tb = node.attrs.get("transpose_a", False), node.attrs.get("transpose_b", False)

  def run(a, b):
    if np.ndim(a) != 2 or np.ndim(b) != 2:
      raise ValueError(f"MatMul takes matrices, got shapes {np.shape(a)} and {np.shape(b)}")
    a, b = (a.T if ta else a), (b.T if tb else b)
    if a.shape[1] != b.shape[0]:
      raise ValueError(f"MatMul dimensions do not match: {a.shape} @ {b.shape}")
    if is_static(a, b):  # NumPy multiplies bfloat16 matrices into float32 ones
      return np.matmul(a, b).astype(a.dtype)
    return jnp.matmul(a, b)
  return run


def _reduction(op: str, name: str, types) -> None:
  @lowering(op, attrs={"T": types, "Tidx": ("int32", "int64"), "keep_dims": None},
            static_inputs=(1,))
  def build(node):
    return _reduce(node, name)
  LOWERINGS.append(build)


def _jnp_mean(x, axis, keepdims, dtype=None):
  """The sum divided by the count, as TF's kernel does; XLA would multiply by 1 / count
  (an ulp off for a third of float32 means of 3), unless the count is hidden."""
  total = jnp.sum(x, axis=axis, keepdims=keepdims, dtype=dtype)
  count = jnp.full(total.shape, np.prod([np.shape(x)[a] for a in axis]), total.dtype)
  return total / jax.lax.optimization_barrier(count)


def _int_mean(m, x, axes, keep):
  """TF's integer Mean: the sum (in 64 bits, so only int64/uint64 sums wrap) divided by
  the count, truncated toward zero; 0 over no elements."""
  n = int(np.prod([np.shape(x)[a] for a in axes]))
  shape = tuple(1 if a in axes else d for a, d in enumerate(np.shape(x))) if keep else \
      tuple(d for a, d in enumerate(np.shape(x)) if a not in axes)
  if n == 0:
    return m.zeros(shape, x.dtype)
  signed = np.issubdtype(x.dtype, np.signedinteger)
  if m is np or _x64():
    total = m.sum(x.astype(np.int64 if signed else np.uint64), axis=axes, keepdims=keep)
    if m is np:
      q = total // n
      q = q + ((total < 0) & (q * n != total))  # floor to truncation
    else:
      q = jax.lax.div(total, jnp.asarray(n, total.dtype))
    return q.astype(x.dtype)
  return _int_mean_32(x, axes, n, signed).reshape(shape)


def _int_mean_32(x, axes, n: int, signed: bool):
  """_int_mean of an 8- to 32-bit x without 64-bit types (x64 off): the sum of
  u = x - min(dtype) >= 0 as two uint32 words, then floor(sum / n) by long division."""
  lax = jax.lax
  if n >= 2**32:
    raise ValueError(f"integer Mean over {n} elements needs jax_enable_x64")
  if x.dtype == np.int32:
    u = lax.bitcast_convert_type(x, np.uint32) ^ np.uint32(2**31)
  else:
    u = (x.astype(np.int32) - np.iinfo(x.dtype).min).astype(np.uint32) if signed \
        else x.astype(np.uint32)

  def add64(a, b):  # (hi, lo) + (hi, lo), mod 2**64
    lo = a[1] + b[1]
    return a[0] + b[0] + (lo < a[1]).astype(np.uint32), lo
  zero = np.uint32(0)
  hi, lo = lax.reduce((jnp.zeros_like(u), u), (zero, zero), add64, axes)
  # hi < n since the mean of u fits in 32 bits: each step keeps the remainder r < n.
  q, r, nn = jnp.zeros_like(lo), hi, np.uint32(n)
  for bit in range(31, -1, -1):
    carry = r >> 31
    r = (r << 1) | ((lo >> bit) & 1)
    take = (carry == 1) | (r >= nn)
    r = jnp.where(take, r - nn, r)
    q = q | (take.astype(np.uint32) << bit)
  if not signed:
    return q.astype(x.dtype)
  low = np.iinfo(x.dtype).min  # floor(sum(x) / n) = q + min; then toward zero
  floor = lax.bitcast_convert_type(q ^ np.uint32(2**31), np.int32) if x.dtype == np.int32 \
      else q.astype(np.int32) + low
  return (floor + ((floor < 0) & (r != 0)).astype(np.int32)).astype(x.dtype)


def _reduce(node, name: str):
  keep = node.attrs.get("keep_dims", False)

  def run(x, axes):
    axes = [int(a) for a in np.reshape(axes, -1)]
    rank = np.ndim(x)
    if any(not -rank <= a < rank for a in axes):
      raise ValueError(f"reduction axes {axes} out of range for rank {rank}")
    axes = tuple(a % rank for a in axes)
    if len(set(axes)) != len(axes):
      raise ValueError(f"reduction axes contain a duplicate dimension: {axes}")
    m = xnp(x)
    if name == "mean" and np.issubdtype(x.dtype, np.integer):
      out = _int_mean(m, x, axes, keep)
    elif name == "mean" and m is np and np.iscomplexobj(x):
      # NumPy divides by the count as a complex number: (inf + 1j) / (1 + 0j) is NaN.
      total = np.sum(x, axis=axes, keepdims=keep, dtype=x.dtype)
      count = max(int(np.prod([np.shape(x)[a] for a in axes])), 0)
      with np.errstate(invalid="ignore", divide="ignore"):
        out = (total.real / count + 1j * (total.imag / count)).astype(x.dtype)
    else:
      fn = _jnp_mean if name == "mean" and m is jnp and not jnp.iscomplexobj(x) else \
          getattr(m, name)
      if x.dtype in (np.float16, ml_dtypes.bfloat16):
        # TF accumulates half-precision sums in float32 (jnp.sum with dtype=float16 doesn't).
        out = fn(x.astype(np.float32), axis=axes, keepdims=keep).astype(x.dtype)
      else:
        out = fn(x, axis=axes, keepdims=keep, dtype=x.dtype)
    if name == "mean" and m.iscomplexobj(x) and any(np.shape(x)[a] == 0 for a in axes):
      out = m.zeros_like(out)  # TF's complex Mean over nothing is 0, not NaN
    return out
  return run


_reduction("Sum", "sum", NUMBER)
_reduction("Mean", "mean", NUMBER)


# Gradient kernels of unary ops (written by tf.gradients / TF1 graphs) --------------------
# Inputs (y, dy): the forward op's output and the incoming gradient. The Sqrt, Rsqrt and
# Reciprocal kernels use conj(y) for complex dtypes and give 0 where dy is 0 (also where
# y is 0 or inf), with TF's second derivatives; the Sigmoid and Tanh ones take y as it
# is. Like TF's and XLA's CPU code, the NumPy (static) path flushes subnormal
# intermediate results to zero (float16's are not: Eigen rounds float results to them).


def _flush(v):
  if v.dtype.kind == "c" or v.dtype == np.float16:
    return v
  with np.errstate(all="ignore"):  # to a zero of v's sign, as CPU flush-to-zero does
    return np.where(np.abs(v) < ml_dtypes.finfo(v.dtype).tiny, v * np.zeros((), v.dtype), v)


def _zero_for_zero_dy(m, formula, y, dy):
  out = formula(y, dy)
  return m.where(dy == 0, m.zeros((), out.dtype), out)


def _with_tf_second_derivative(formula, d_y):
  """The jnp kernel; its JVP is formula(y, t_dy) + t_y * d_y(y, dy), TF's gradients except
  that a zero cotangent of dy times an infinite derivative gives NaN (TF: 0), which only a
  custom_vjp could give (and would lose forward mode)."""
  @jax.custom_jvp
  def kernel(y, dy):
    return _zero_for_zero_dy(jnp, formula, y, dy)

  @kernel.defjvp
  def kernel_jvp(primals, tangents):
    (y, dy), (t_y, t_dy) = primals, tangents
    return kernel(y, dy), formula(y, t_dy) + t_y * d_y(y, dy)
  return kernel


def _grad_kernel(op: str, formula, d_y=None) -> None:
  """`formula(y, dy, f)` with `f` the flush of intermediates; `d_y` (for the kernels that
  conjugate y and zero out dy == 0): the derivative w.r.t. y times dy."""
  traced = (_with_tf_second_derivative(lambda y, dy: formula(y, dy, lambda v: v), d_y)
            if d_y else (lambda y, dy: formula(y, dy, lambda v: v)))

  @lowering(op, attrs={"T": FLOAT + COMPLEX})
  def build(node):
    def run(y, dy):
      dtype = np.result_type(y)
      m = xnp(y, dy)
      y, dy = m.asarray(y), m.asarray(dy)
      if d_y and m.iscomplexobj(y):
        y = m.conj(y)
      if m is jnp:
        return traced(y, dy).astype(dtype)
      with np.errstate(all="ignore"):
        out = formula(y, dy, _flush)
        if d_y:
          out = np.where(dy == 0, np.zeros((), out.dtype), out)
      return out.astype(dtype)
    return run
  LOWERINGS.append(build)


def _one(y, v):
  return np.asarray(v, y.dtype) if isinstance(y, np.ndarray) else jnp.asarray(v, y.dtype)


_grad_kernel("SigmoidGrad", lambda y, dy, f: f(f(dy * y) * f(_one(y, 1) - y)))
_grad_kernel("TanhGrad", lambda y, dy, f: f(dy * f(_one(y, 1) - f(y * y))))
# TF's second derivatives: SqrtGrad (-(dy / y) ... = -out / y, 0.5 / y), RsqrtGrad
# (-1.5 * dy * y**2, rsqrt_grad), ReciprocalGrad (-2 * dy * y, reciprocal_grad).
_grad_kernel("SqrtGrad", lambda y, dy, f: f(f(_one(y, 0.5) * dy) / y),
             lambda y, dy: -(_one(y, 0.5) * dy / y) / y)
_grad_kernel("RsqrtGrad", lambda y, dy, f: f(f(_one(y, -0.5) * f(dy * y)) * f(y * y)),
             lambda y, dy: _one(y, -1.5) * dy * y * y)
for _op in ("ReciprocalGrad", "InvGrad"):
  _grad_kernel(_op, lambda y, dy, f: f(f(-y * y) * dy), lambda y, dy: _one(y, -2) * dy * y)
