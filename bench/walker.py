#!/usr/bin/env python
"""Benchmark: tf2jax conversion cost and the speed of converted functions vs TensorFlow.

Run from the repository root (see bench/README.md):

    .venv/bin/python bench/walker.py            # full run (~25 s on 2 cores)
    .venv/bin/python bench/walker.py --quick    # smoke run, small sizes (~10 s)
    .venv/bin/python bench/walker.py --json /tmp/walker.json --profile

Two workloads:

(a) chain: a tf.function made of a chain of N elementwise nodes (N = 500, 1000, 2000)
    cycling through Sin, AddV2, Cos, Tanh, Mul, Exp (of a scaled value) and Sub with
    constants. The cycle is built so that each 16-node block is close to the identity on
    small values (|y| < 0.2): nothing overflows, and the output still depends strongly on
    the input (it is not a constant that a wrong conversion could also produce).
    Reported: TF tracing time, tf2jax.convert_functional time (total, per node, and the
    per-node ratio largest/smallest N, which is ~1 when conversion is linear), jax.jit
    trace / lower / compile times of the first call, median jitted run, median
    tf.function run, and jax/tf.

(b) mlp: a deep MLP (200 layers of MatMul + BiasAdd + Relu, width 256, batch 64) with
    tf.Variables, converted with tf2jax.convert (the nn plugin lowers BiasAdd and Relu).
    Reported: convert time, first-jit times, median jitted run next to tf.function and
    tf.function(jit_compile=True) medians, and the ratios. The jitted run is given twice:
    jax.jit(jax_fn), which returns (outputs, new_params) as the API does, and a jit that
    keeps only the outputs (jit copies every returned param into a fresh buffer, which for
    200 x 256 x 256 float32 weights is ~52 MB per call); a hand-written JAX MLP over the
    same weights is the reference floor.

Every converted output is compared with TensorFlow's (max abs error, and for the MLP the
error relative to the output's scale); the script prints MISMATCH and exits with status 1
when an error exceeds its tolerance, so a broken conversion cannot pass as a fast one.

Timing: time.perf_counter, warm-up calls, then the median of --repeats calls; JAX results
are waited for with block_until_ready, TF results with .numpy(). The contenders of one
workload (jax, tf, ...) are called round-robin, so load from other processes hits all of
them alike and the ratios stay meaningful. Conversion times are the median of several
conversions of an already traced tf.function (TF's own tracing time is reported
separately). "1st jit" is trace + lower + compile through jax's AOT stages (the first call
itself then costs about one run). Times depend on the machine's load: on a shared machine,
compare numbers from the same run only.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import io
import json
import os
import platform
import pstats
import statistics
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402


# Timing helpers -------------------------------------------------------------------


def _timeit_interleaved(fns: dict, repeats: int, warmup: int = 2) -> dict:
  """Median, min and max seconds of each callable over `repeats` calls, after `warmup`
  calls each; the callables are called round-robin.

  Interleaving makes the ratios fair on a shared machine: a burst of load from another
  process slows every contender's samples, not just one's.
  """
  for fn in fns.values():
    for _ in range(warmup):
      fn()
  times = {name: [] for name in fns}
  for _ in range(repeats):
    for name, fn in fns.items():
      t0 = time.perf_counter()
      fn()
      times[name].append(time.perf_counter() - t0)
  return {name: {"median_s": statistics.median(ts), "min_s": min(ts), "max_s": max(ts)}
          for name, ts in times.items()}


def _timed(fn):
  t0 = time.perf_counter()
  out = fn()
  return out, time.perf_counter() - t0


def _convert_times(convert, repeats: int):
  """Runs `convert()` `repeats` times (gc collected before each); (last result, times)."""
  times, result = [], None
  for _ in range(repeats):
    result = None
    gc.collect()
    result, dt = _timed(convert)
    times.append(dt)
  # Collect the conversions' garbage now rather than during later timings.
  gc.collect()
  return result, times


def _first_jit(jitted, *args) -> dict:
  """Times the first compilation of `jitted` for `args`, stage by stage (AOT API).

  The stages fill jit's caches, so the next plain call of `jitted` reuses the executable
  (checked by `first_call_after_aot_s`, which should be about one run).
  """
  import jax
  if hasattr(jitted, "trace"):
    traced, trace_s = _timed(lambda: jitted.trace(*args))
    lowered, lower_s = _timed(traced.lower)
  else:  # older JAX: tracing and lowering are one step (reported as lowering)
    lowered, lower_s = _timed(lambda: jitted.lower(*args))
    trace_s = 0.0
  _, compile_s = _timed(lowered.compile)
  _, first_call = _timed(lambda: jax.block_until_ready(jitted(*args)))
  return {"trace_s": trace_s, "lower_s": lower_s, "compile_s": compile_s,
          "total_s": trace_s + lower_s + compile_s, "first_call_after_aot_s": first_call}


def _ms(s: float) -> str:
  return f"{s * 1e3:.2f}"


def _table(headers: list[str], rows: list[list[str]]) -> str:
  widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
  fmt = "  ".join(f"{{:>{w}}}" for w in widths)
  lines = [fmt.format(*headers), fmt.format(*("-" * w for w in widths))]
  lines += [fmt.format(*r) for r in rows]
  return "\n".join(lines)


# (a) Elementwise chain ------------------------------------------------------------

# One 16-node block: two halves of 8 nodes, each ~ y -> y +- y^2/4 on small y, so the
# block is y -> y + O(y^3) (a mild contraction) and stays bounded and input dependent.
#   Sin(y) ~ y; AddV2(pi/2); Cos -> -sin(y) ~ -y; Tanh ~ -y; Mul(-s) -> s*y;
#   Exp -> e^(s*y); Sub(1) -> s*y + (s*y)^2/2; Mul(1/s) -> y + s*y^2/2   (s = +-0.5)
CHAIN_OPS = ("Sin", "AddV2", "Cos", "Tanh", "Mul", "Exp", "Sub", "Mul")


def make_chain(n: int):
  import tensorflow as tf
  half_pi = float(np.pi / 2)

  def chain(x):
    y = x
    for i in range(n):
      s = 0.5 if i % 16 < 8 else -0.5
      k = i % 8
      if k == 0:
        y = tf.sin(y)
      elif k == 1:
        y = y + half_pi
      elif k == 2:
        y = tf.cos(y)
      elif k == 3:
        y = tf.tanh(y)
      elif k == 4:
        y = y * (-s)
      elif k == 5:
        y = tf.exp(y)
      elif k == 6:
        y = y - 1.0
      else:
        y = y * (1.0 / s)
    return y

  chain.__name__ = f"chain_{n}"
  return tf.function(chain, autograph=False)


def bench_chain(n: int, shape: tuple, repeats: int, convert_repeats: int, tol: float) -> dict:
  import jax
  import jax.numpy as jnp
  import tensorflow as tf
  import tf2jax

  rng = np.random.RandomState(n)
  x = np.clip(rng.randn(*shape) * 0.05, -0.15, 0.15).astype(np.float32)
  x_tf, x_jax = tf.constant(x), jnp.asarray(x)

  tf_fn = make_chain(n)
  spec = tf.TensorSpec(shape, tf.float32)
  cf, tf_trace_s = _timed(lambda: tf_fn.get_concrete_function(spec))
  graph_nodes = len(cf.graph.as_graph_def().node)

  jax_fn, convert_times = _convert_times(lambda: tf2jax.convert_functional(tf_fn, x),
                                         convert_repeats)
  convert_s = statistics.median(convert_times)
  jitted = jax.jit(jax_fn)
  first = _first_jit(jitted, x_jax)

  want = tf_fn(x_tf).numpy()
  got = np.asarray(jitted(x_jax))
  err = float(np.max(np.abs(got - want)))
  spread = float(np.std(want))
  ok = bool(err <= tol and spread > 1e-3 and got.shape == want.shape)

  runs = _timeit_interleaved({"jax": lambda: jitted(x_jax).block_until_ready(),
                              "tf": lambda: tf_fn(x_tf).numpy()}, repeats)
  jax_run, tf_run = runs["jax"], runs["tf"]
  return {
      "n": n, "shape": list(shape), "graph_nodes": graph_nodes,
      "tf_trace_s": tf_trace_s,
      "convert_s": convert_s, "convert_all_s": convert_times,
      "convert_us_per_chain_node": convert_s / n * 1e6,
      "convert_us_per_graph_node": convert_s / graph_nodes * 1e6,
      "jit_first": first,
      "jax_run": jax_run, "tf_run": tf_run,
      "jax_over_tf": jax_run["median_s"] / tf_run["median_s"],
      "max_abs_err": err, "tol": tol, "output_std": spread, "ok": ok,
  }


def report_chain(results: list[dict]) -> str:
  rows = []
  for r in results:
    j = r["jit_first"]
    rows.append([
        str(r["n"]), str(r["graph_nodes"]), _ms(r["tf_trace_s"]), _ms(r["convert_s"]),
        f"{r['convert_us_per_chain_node']:.1f}", f"{r['convert_us_per_graph_node']:.1f}",
        _ms(j["trace_s"]), _ms(j["lower_s"]), _ms(j["compile_s"]), _ms(j["total_s"]),
        _ms(r["jax_run"]["median_s"]), _ms(r["tf_run"]["median_s"]),
        f"{r['jax_over_tf']:.2f}", f"{r['max_abs_err']:.1e}",
        "ok" if r["ok"] else "MISMATCH"])
  headers = ["N", "nodes", "tf trace ms", "convert ms", "us/op", "us/node",
             "jit trace ms", "lower ms", "compile ms", "1st jit ms",
             "jax run ms", "tf run ms", "jax/tf", "max|err|", "check"]
  lines = [_table(headers, rows)]
  first, last = results[0], results[-1]
  ratio = last["convert_us_per_graph_node"] / first["convert_us_per_graph_node"]
  verdict = "linear" if ratio < 1.5 else "SUPERLINEAR: profile with --profile"
  lines.append(
      f"convert cost per graph node, N={last['n']} vs N={first['n']}: "
      f"{last['convert_us_per_graph_node']:.1f} / {first['convert_us_per_graph_node']:.1f} us"
      f" = {ratio:.2f}x  ({verdict}; a {last['n'] // first['n']}x larger graph took "
      f"{last['convert_s'] / first['convert_s']:.2f}x as long)")
  return "\n".join(lines)


# (b) Deep MLP with variables ------------------------------------------------------


def make_mlp(depth: int, width: int, seed: int = 0):
  """(plain tf.function, tf.function(jit_compile=True)) over the same variables."""
  import tensorflow as tf
  rng = np.random.RandomState(seed)
  weights, biases = [], []
  for i in range(depth):
    # He init keeps the activations' scale roughly constant through the Relus.
    w = rng.randn(width, width).astype(np.float32) * np.float32(np.sqrt(2.0 / width))
    b = rng.uniform(-0.05, 0.05, width).astype(np.float32)
    weights.append(tf.Variable(w, name=f"w{i}"))
    biases.append(tf.Variable(b, name=f"b{i}"))

  def mlp(x):
    for w, b in zip(weights, biases):
      x = tf.nn.relu(tf.nn.bias_add(tf.matmul(x, w), b))
    return x

  mlp.__name__ = f"mlp_{depth}x{width}"
  keep = (weights, biases)  # the tf.functions hold the variables through the closure
  return tf.function(mlp, autograph=False), tf.function(mlp, autograph=False,
                                                        jit_compile=True), keep


def bench_mlp(depth: int, width: int, batch: int, repeats: int, convert_repeats: int,
              rtol: float) -> dict:
  import jax
  import jax.numpy as jnp
  import tensorflow as tf
  import tf2jax

  x = np.random.RandomState(1).randn(batch, width).astype(np.float32)
  x_tf, x_jax = tf.constant(x), jnp.asarray(x)
  tf_fn, tf_xla_fn, (weights, biases) = make_mlp(depth, width)
  spec = tf.TensorSpec(x.shape, tf.float32)
  cf, tf_trace_s = _timed(lambda: tf_fn.get_concrete_function(spec))
  graph_nodes = len(cf.graph.as_graph_def().node)

  (jax_fn, params), convert_times = _convert_times(lambda: tf2jax.convert(tf_fn, x),
                                                   convert_repeats)
  convert_s = statistics.median(convert_times)
  params_jax = {k: jnp.asarray(np.asarray(v)) for k, v in params.items()}
  jitted = jax.jit(jax_fn)
  first = _first_jit(jitted, params_jax, x_jax)
  # jax_fn returns (outputs, new_params): jit copies every (unchanged) param into a new
  # output buffer on each call. For inference, drop new_params inside the jit.
  jitted_out = jax.jit(lambda p, a: jax_fn(p, a)[0])
  # Hand-written JAX MLP over the same weights: the floor the converted function can reach.
  ws = [jnp.asarray(w.numpy()) for w in weights]
  bs = [jnp.asarray(b.numpy()) for b in biases]

  @jax.jit
  def hand(ws, bs, a):
    for w, b in zip(ws, bs):
      a = jax.nn.relu(a @ w + b)
    return a

  want = tf_fn(x_tf).numpy()
  out, new_params = jitted(params_jax, x_jax)
  got = np.asarray(out)
  got_out = np.asarray(jitted_out(params_jax, x_jax))
  got_hand = np.asarray(hand(ws, bs, x_jax))
  _, tf_xla_first_s = _timed(lambda: tf_xla_fn(x_tf).numpy())
  got_xla = tf_xla_fn(x_tf).numpy()
  scale = float(np.max(np.abs(want)))
  err = float(max(np.max(np.abs(got - want)), np.max(np.abs(got_out - want))))
  err_hand = float(np.max(np.abs(got_hand - want)))
  err_xla = float(np.max(np.abs(got_xla - want)))
  # Rows of the batch must differ: an output that ignores the input would match trivially.
  row_spread = float(np.max(np.std(want, axis=0)))
  ok = bool(got.shape == want.shape and scale > 0 and err <= rtol * scale
            and row_spread > 1e-3 * scale and set(new_params) == set(params))

  # Each jitted call allocates fresh output buffers; a few more warm-ups settle the
  # allocator so the median is not taken over first-touch page faults.
  runs = _timeit_interleaved({
      "jax": lambda: jax.block_until_ready(jitted(params_jax, x_jax)),
      "jax_out": lambda: jitted_out(params_jax, x_jax).block_until_ready(),
      "hand": lambda: hand(ws, bs, x_jax).block_until_ready(),
      "tf": lambda: tf_fn(x_tf).numpy(),
      "tf_xla": lambda: tf_xla_fn(x_tf).numpy()}, repeats, warmup=5)
  jax_run, jax_out_run, hand_run = runs["jax"], runs["jax_out"], runs["hand"]
  tf_run, tf_xla_run = runs["tf"], runs["tf_xla"]
  return {
      "depth": depth, "width": width, "batch": batch, "graph_nodes": graph_nodes,
      "num_params": len(params), "tf_trace_s": tf_trace_s,
      "convert_s": convert_s, "convert_all_s": convert_times,
      "convert_us_per_graph_node": convert_s / graph_nodes * 1e6,
      "jit_first": first, "tf_xla_first_call_s": tf_xla_first_s,
      "jax_run": jax_run, "jax_outputs_only_run": jax_out_run, "jax_hand_written_run": hand_run,
      "tf_run": tf_run, "tf_xla_run": tf_xla_run,
      "jax_over_tf": jax_run["median_s"] / tf_run["median_s"],
      "jax_over_tf_xla": jax_run["median_s"] / tf_xla_run["median_s"],
      "jax_outputs_only_over_tf": jax_out_run["median_s"] / tf_run["median_s"],
      "jax_outputs_only_over_tf_xla": jax_out_run["median_s"] / tf_xla_run["median_s"],
      "output_max_abs": scale, "output_row_std_max": row_spread, "max_abs_err": err,
      "max_abs_err_hand_written": err_hand, "max_abs_err_tf_xla": err_xla,
      "rel_err": err / scale if scale else float("inf"), "rtol": rtol, "ok": ok,
  }


def report_mlp(r: dict) -> str:
  j = r["jit_first"]
  rows = [
      ["TF trace (get_concrete_function)", _ms(r["tf_trace_s"]), ""],
      ["tf2jax.convert", _ms(r["convert_s"]),
       f"{r['convert_us_per_graph_node']:.1f} us/node, {r['graph_nodes']} nodes, "
       f"{r['num_params']} params"],
      ["jax.jit first: trace", _ms(j["trace_s"]), ""],
      ["jax.jit first: lower", _ms(j["lower_s"]), ""],
      ["jax.jit first: compile", _ms(j["compile_s"]), ""],
      ["jax.jit first: total", _ms(j["total_s"]), ""],
      ["tf.function(jit_compile) 1st call", _ms(r["tf_xla_first_call_s"]),
       "trace + XLA compile + run"],
      ["jax.jit run (median)", _ms(r["jax_run"]["median_s"]),
       f"min {_ms(r['jax_run']['min_s'])}; jit(jax_fn), returns (out, new_params)"],
      ["jax.jit run, outputs only (median)", _ms(r["jax_outputs_only_run"]["median_s"]),
       f"min {_ms(r['jax_outputs_only_run']['min_s'])}; jit(lambda p, x: jax_fn(p, x)[0])"],
      ["hand-written JAX MLP (median)", _ms(r["jax_hand_written_run"]["median_s"]),
       f"min {_ms(r['jax_hand_written_run']['min_s'])}; reference, not converted"],
      ["tf.function run (median)", _ms(r["tf_run"]["median_s"]),
       f"min {_ms(r['tf_run']['min_s'])}"],
      ["tf.function(jit_compile) run (median)", _ms(r["tf_xla_run"]["median_s"]),
       f"min {_ms(r['tf_xla_run']['min_s'])}"],
      ["ratio jax / tf.function", f"{r['jax_over_tf']:.2f}", ""],
      ["ratio jax / tf.function(jit_compile)", f"{r['jax_over_tf_xla']:.2f}", ""],
      ["ratio jax outputs-only / tf.function", f"{r['jax_outputs_only_over_tf']:.2f}", ""],
      ["ratio jax outputs-only / tf(jit_compile)", f"{r['jax_outputs_only_over_tf_xla']:.2f}",
       ""],
      ["max |jax - tf|", f"{r['max_abs_err']:.2e}",
       f"rel {r['rel_err']:.1e} of max|out| {r['output_max_abs']:.3g}; "
       f"{'ok' if r['ok'] else 'MISMATCH'}"],
      ["max |hand-written jax - tf| (reference)", f"{r['max_abs_err_hand_written']:.2e}", ""],
      ["max |tf_xla - tf| (reference)", f"{r['max_abs_err_tf_xla']:.2e}", ""],
  ]
  title = (f"MLP {r['depth']} layers x width {r['width']}, batch {r['batch']} "
           "(MatMul + BiasAdd + Relu, tf.Variables)")
  return title + "\n" + _table(["what", "ms / value", "notes"], rows)


# Profiling ------------------------------------------------------------------------


def profile_convert(n: int, shape: tuple, top: int = 20) -> str:
  import tensorflow as tf
  import tf2jax
  tf_fn = make_chain(n)
  tf_fn.get_concrete_function(tf.TensorSpec(shape, tf.float32))
  x = np.zeros(shape, np.float32)
  prof = cProfile.Profile()
  prof.enable()
  tf2jax.convert_functional(tf_fn, x)
  prof.disable()
  out = io.StringIO()
  stats = pstats.Stats(prof, stream=out)
  stats.sort_stats("tottime").print_stats(top)
  return out.getvalue()


# Main -----------------------------------------------------------------------------


def environment() -> dict:
  import jax
  import tensorflow as tf
  import tf2jax
  return {
      "python": platform.python_version(), "machine": platform.machine(),
      "cpu_count": os.cpu_count(),
      "affinity": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
      "jax": jax.__version__, "jax_backend": jax.default_backend(),
      "jax_devices": [str(d) for d in jax.devices()],
      "tensorflow": tf.__version__, "tf2jax": tf2jax.__version__, "numpy": np.__version__,
  }


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--quick", action="store_true",
                      help="small sizes and few repeats (smoke run)")
  parser.add_argument("--json", metavar="PATH", help="also write the results as JSON")
  parser.add_argument("--repeats", type=int, default=None,
                      help="timed runs per measurement (default 20, quick 5)")
  parser.add_argument("--profile", action="store_true",
                      help="also print a cProfile of converting the largest chain")
  parser.add_argument("--skip-mlp", action="store_true", help="only run the chain")
  args = parser.parse_args(argv)

  if args.quick:
    sizes, shape, convert_repeats = (100, 200, 400), (16, 16), 3
    depth, width, batch = 20, 64, 8
    repeats = args.repeats or 5
  else:
    sizes, shape, convert_repeats = (500, 1000, 2000), (64, 64), 5
    depth, width, batch = 200, 256, 64
    repeats = args.repeats or 20

  t_start = time.perf_counter()
  import jax  # noqa: F401  (imported here so --help stays fast)
  import tensorflow as tf
  import tf2jax

  env = environment()
  print("tf2jax walker benchmark"
        f"{' (--quick)' if args.quick else ''}: python {env['python']}, jax {env['jax']} "
        f"({env['jax_backend']}), tensorflow {env['tensorflow']}, tf2jax {env['tf2jax']}, "
        f"{env['affinity']} usable cpu(s) of {env['cpu_count']}")
  print(f"median of {repeats} runs after 2 warm-ups; convert = median of {convert_repeats} "
        "conversions of an already traced tf.function\n", flush=True)

  # Warm up both frameworks and the plugin manager, so the first size pays no one-time
  # costs (plugin loading, op registries, XLA client start).
  warm = make_chain(8)
  tf2jax.convert_functional(warm, np.zeros(shape, np.float32))
  jax.jit(tf2jax.convert_functional(warm, np.zeros(shape, np.float32)))(
      np.zeros(shape, np.float32)).block_until_ready()
  warm(tf.zeros(shape)).numpy()

  results: dict = {"environment": env, "quick": args.quick, "repeats": repeats,
                   "convert_repeats": convert_repeats}
  chain = []
  for n in sizes:
    r = bench_chain(n, shape, repeats, convert_repeats, tol=5e-4)
    chain.append(r)
    print(f"  chain N={n}: convert {_ms(r['convert_s'])} ms, jit {_ms(r['jit_first']['total_s'])}"
          f" ms, jax {_ms(r['jax_run']['median_s'])} ms, tf {_ms(r['tf_run']['median_s'])} ms",
          flush=True)
  results["chain"] = chain
  print(f"\n(a) chain of N elementwise ops ({', '.join(CHAIN_OPS)} cycle; float32 "
        f"{shape[0]}x{shape[1]}); 'nodes' counts every graph node (ops + Const + "
        "Placeholder + Identity)")
  print(report_chain(chain))
  first, last = chain[0], chain[-1]
  results["chain_per_node_ratio"] = (last["convert_us_per_graph_node"]
                                     / first["convert_us_per_graph_node"])

  if not args.skip_mlp:
    mlp = bench_mlp(depth, width, batch, repeats, max(2, convert_repeats - 2), rtol=1e-3)
    results["mlp"] = mlp
    print("\n(b) " + report_mlp(mlp))

  if args.profile:
    print(f"\ncProfile of tf2jax.convert_functional on the N={sizes[-1]} chain "
          "(sorted by own time):")
    print(profile_convert(sizes[-1], shape))

  results["wall_s"] = time.perf_counter() - t_start
  ok = all(r["ok"] for r in chain) and results.get("mlp", {"ok": True})["ok"]
  results["ok"] = ok
  print(f"\nall outputs match TensorFlow: {ok}; wall time {results['wall_s']:.1f} s")
  if args.json:
    os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
    with open(args.json, "w", encoding="utf-8") as f:
      json.dump(results, f, indent=2)
    print(f"wrote {args.json}")
  return 0 if ok else 1


if __name__ == "__main__":
  sys.exit(main())
