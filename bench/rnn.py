"""Keras LSTM / GRU models: tf2jax + jax.jit against tf.function and
tf.function(jit_compile=True), measured in the same run.

  .venv/bin/python bench/rnn.py [--quick] [--repeats N]

Prints per model and batch: convert time, first jit call (trace + compile), median
jitted run, median TF runs, and the ratios TF / tf2jax (above 1: tf2jax is faster).
"""

import argparse
import os
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import jax  # noqa: E402
import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
import tf_keras  # noqa: E402

import tf2jax  # noqa: E402


def model(library, kind, steps, features, units):
  library.utils.set_random_seed(0)
  layer = {"lstm": library.layers.LSTM, "gru": library.layers.GRU}[kind]
  return library.Sequential([library.Input((steps, features)), layer(units),
                             library.layers.Dense(10)])


def median_time(fn, repeats):
  times = []
  for _ in range(repeats):
    start = time.perf_counter()
    fn()
    times.append(time.perf_counter() - start)
  return statistics.median(times)


def main():
  ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  ap.add_argument("--quick", action="store_true", help="small sizes, few repeats")
  ap.add_argument("--repeats", type=int, default=None)
  a = ap.parse_args()
  steps, features, units = (10, 8, 16) if a.quick else (50, 32, 128)
  repeats = a.repeats or (5 if a.quick else 30)
  print(f"sequence {steps} x {features} features, {units} units, median of {repeats} runs")
  print(f"{'model':<16}{'batch':>6}{'convert s':>11}{'compile s':>11}{'tf2jax ms':>11}"
        f"{'TF ms':>9}{'TF-XLA ms':>11}{'TF/jax':>8}{'XLA/jax':>9}{'max err':>10}")
  for library_name, library in [("keras3", keras), ("tf_keras", tf_keras)]:
    for kind in ("lstm", "gru"):
      net = model(library, kind, steps, features, units)
      forward = tf.function(lambda x: net(x))
      xla = tf.function(lambda x: net(x), jit_compile=True)
      spec = tf.TensorSpec((None, steps, features), tf.float32)
      start = time.perf_counter()
      fn, params = tf2jax.convert(forward, spec)
      convert_s = time.perf_counter() - start
      jitted = jax.jit(lambda p, x: fn(p, x)[0])
      for batch in (1, 8):
        x = np.random.default_rng(batch).normal(size=(batch, steps, features)).astype(
            np.float32)
        start = time.perf_counter()
        got = jitted(params, x).block_until_ready()
        compile_s = time.perf_counter() - start
        want = forward(x).numpy()
        xla(x)
        err = float(np.max(np.abs(np.asarray(got) - want)))
        t_jax = median_time(lambda: jitted(params, x).block_until_ready(), repeats)
        t_tf = median_time(lambda: forward(x).numpy(), repeats)
        t_xla = median_time(lambda: xla(x).numpy(), repeats)
        print(f"{library_name + ' ' + kind:<16}{batch:>6}{convert_s:>11.2f}{compile_s:>11.2f}"
              f"{t_jax * 1e3:>11.3f}{t_tf * 1e3:>9.3f}{t_xla * 1e3:>11.3f}"
              f"{t_tf / t_jax:>8.2f}{t_xla / t_jax:>9.2f}{err:>10.2e}")


if __name__ == "__main__":
  main()
