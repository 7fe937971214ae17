"""Keras application models: tf2jax + jax.jit against tf.function and
tf.function(jit_compile=True), measured in the same run.

  .venv/bin/python bench/keras_apps.py [--size 224] [--models A,B] [--repeats N]

Per model and batch (1 and 8, one conversion with a None batch dimension): convert time,
first jit call (trace + compile) with the weights passed as arguments and with the weights
baked in as constants, median jitted runs of both and of a third jit whose convolutions
run on XLA's Eigen kernels (per-jit `compiler_options`, see EIGEN_CONVS), median
tf.function and TF-XLA runs, and the ratios TF / tf2jax (above 1: tf2jax is faster).
Every output is checked against TF (max abs error relative to max |TF|); a mismatch above
1e-4 exits with status 1.
"""

import argparse
import os
import statistics
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import jax  # noqa: E402
import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
import tf_keras  # noqa: E402

import tf2jax  # noqa: E402

MODELS = ("MobileNetV2", "MobileNetV3Small", "ResNet50", "EfficientNetB0", "EfficientNetV2B0",
          "DenseNet121", "InceptionV3", "Xception", "NASNetMobile", "ConvNeXtTiny", "VGG16",
          "RegNetX002")


# Per-jit XLA options: only dots, not convolutions, go to YNNPACK (jaxlib 0.10.2's default
# sends both), so convolutions run on Eigen as in TF-XLA. Nothing process-wide is set.
EIGEN_CONVS = {"xla_cpu_experimental_ynn_fusion_type": "LIBRARY_FUSION_TYPE_INDIVIDUAL_DOT"}


def build(name, size):
  library = tf_keras if name == "RegNetX002" else keras  # not in Keras 3
  library.utils.set_random_seed(0)
  return getattr(library.applications, name)(
      weights=None, input_shape=(size, size, 3), classifier_activation=None)


def medians_ms(fns, repeats):
  """Median wall time of each of `fns`, called round-robin so that load from other
  processes affects them alike."""
  times = [[] for _ in fns]
  for _ in range(repeats):
    for fn, ts in zip(fns, times):
      start = time.perf_counter()
      fn()
      ts.append(time.perf_counter() - start)
  return [1e3 * statistics.median(ts) for ts in times]


def timed_s(fn):
  start = time.perf_counter()
  out = fn()
  return out, time.perf_counter() - start


def main():
  ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  ap.add_argument("--size", type=int, default=224, help="image side (default 224)")
  ap.add_argument("--models", default=",".join(MODELS), help="comma-separated names")
  ap.add_argument("--repeats", type=int, default=10, help="timed runs per median")
  a = ap.parse_args()
  print(f"input {a.size}x{a.size}x3 float32, median of {a.repeats} runs; jax {jax.__version__}"
        f", tensorflow {tf.__version__}, {os.cpu_count()} CPUs")
  print(f"{'model':<18}{'batch':>5}{'convert s':>10}{'compile s':>10}{'const s':>9}"
        f"{'tf2jax ms':>11}{'const ms':>10}{'eigen ms':>10}{'TF ms':>9}{'TF-XLA ms':>11}"
        f"{'TF/jax':>8}{'XLA/jax':>9}{'XLA/eig':>9}{'rel err':>9}")
  failed = False
  for name in a.models.split(","):
    model = build(name, a.size)
    forward = tf.function(lambda x: model(x, training=False))
    xla = tf.function(lambda x: model(x, training=False), jit_compile=True)
    spec = tf.TensorSpec((None, a.size, a.size, 3), tf.float32)
    (fn, params), convert_s = timed_s(lambda: tf2jax.convert(forward, spec))
    # convert returns NumPy params; a jitted call copies NumPy arguments every time
    # (VGG16: ~0.3 s), so put them on the device once, as new_params of a first call are.
    # The constants variant closes over the NumPy arrays, which jit bakes into the HLO.
    params, np_params = jax.device_put(params), params
    as_args = jax.jit(lambda p, x: fn(p, x)[0])
    as_consts = jax.jit(lambda x: fn(np_params, x)[0])
    eigen = jax.jit(lambda p, x: fn(p, x)[0], compiler_options=EIGEN_CONVS)
    for batch in (1, 8):
      x = np.random.default_rng(batch).uniform(0, 255, (batch, a.size, a.size, 3)).astype(
          np.float32)
      got, compile_s = timed_s(lambda: as_args(params, x).block_until_ready())
      got_c, const_s = timed_s(lambda: as_consts(x).block_until_ready())
      got_e = eigen(params, x)
      want = forward(x).numpy()
      xla(x)
      scale = float(np.max(np.abs(want)))
      err = max(float(np.max(np.abs(np.asarray(g) - want)))
                for g in (got, got_c, got_e)) / scale
      failed |= not err <= 1e-4
      t_jax, t_const, t_eigen, t_tf, t_xla = medians_ms(
          [lambda: as_args(params, x).block_until_ready(),
           lambda: as_consts(x).block_until_ready(),
           lambda: eigen(params, x).block_until_ready(),
           lambda: forward(x).numpy(), lambda: xla(x).numpy()], a.repeats)
      print(f"{name:<18}{batch:>5}{convert_s:>10.2f}{compile_s:>10.2f}{const_s:>9.2f}"
            f"{t_jax:>11.2f}{t_const:>10.2f}{t_eigen:>10.2f}{t_tf:>9.2f}{t_xla:>11.2f}"
            f"{t_tf / t_jax:>8.2f}{t_xla / t_jax:>9.2f}{t_xla / t_eigen:>9.2f}{err:>9.1e}"
            + ("" if err <= 1e-4 else "  MISMATCH"),
            flush=True)
    jax.clear_caches()
  sys.exit(1 if failed else 0)


if __name__ == "__main__":
  main()
