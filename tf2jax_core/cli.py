"""The `tf2jax` command.

    tf2jax check [SAVED_MODEL_DIR] [--signature NAME] [--batch N] [--runs N]
    tf2jax plugins

`check` converts a SavedModel signature (or, without a path, a built-in example model
written to a temporary SavedModel), runs TF and the converted function under `jax.jit`
on the same random inputs, and prints the largest error and the speed ratio.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def _example_saved_model(path: str) -> None:
  """A small classifier (dense + relu + softmax, with variables) saved to `path`."""
  import numpy as np
  import tensorflow as tf

  rng = np.random.default_rng(0)

  class Classifier(tf.Module):

    def __init__(self):
      super().__init__()
      sizes = [64, 256, 256, 10]
      self.weights = [tf.Variable(rng.normal(0, 1 / np.sqrt(m), (m, n)).astype(np.float32),
                                  name=f"dense_{i}/kernel")
                      for i, (m, n) in enumerate(zip(sizes[:-1], sizes[1:]))]
      self.biases = [tf.Variable(rng.normal(0, 0.1, n).astype(np.float32),
                                 name=f"dense_{i}/bias") for i, n in enumerate(sizes[1:])]

    @tf.function(input_signature=[tf.TensorSpec((None, 64), tf.float32, name="features")])
    def __call__(self, features):
      h = features
      for i, (w, b) in enumerate(zip(self.weights, self.biases)):
        h = tf.nn.bias_add(tf.matmul(h, w), b)
        if i < len(self.weights) - 1:
          h = tf.nn.relu(h)
      return {"probabilities": tf.nn.softmax(h), "logits": h}

  model = Classifier()
  tf.saved_model.save(model, path, signatures={"serving_default": model.__call__})


def _random_inputs(structured, batch: int, seed: int):
  import numpy as np
  import tensorflow as tf
  rng = np.random.default_rng(seed)
  _, kwargs = structured
  out = {}
  for name, spec in kwargs.items():
    if not isinstance(spec, tf.TensorSpec):
      raise SystemExit(f"tf2jax check: input {name!r} is {type(spec).__name__}; only plain "
                       "tensors are supported.")
    shape = [batch if d is None else d for d in spec.shape.as_list()] \
        if spec.shape.rank is not None else [batch]
    dtype = np.dtype(spec.dtype.as_numpy_dtype)
    if dtype.kind == "f":
      value = rng.normal(size=shape).astype(dtype)
    elif dtype.kind in "iu":
      value = rng.integers(0, 10, size=shape).astype(dtype)
    elif dtype.kind == "b":
      value = rng.random(size=shape) < 0.5
    else:
      raise SystemExit(f"tf2jax check: input {name!r} has dtype {dtype}, which check cannot "
                       "generate.")
    out[name] = value
  return out


def _median_time(fn, runs: int) -> float:
  times = []
  for _ in range(runs):
    start = time.perf_counter()
    fn()
    times.append(time.perf_counter() - start)
  return statistics.median(times)


def check(path: str | None, signature: str | None, batch: int, runs: int) -> int:
  import jax
  import numpy as np
  import tensorflow as tf

  import tf2jax

  with tempfile.TemporaryDirectory() as tmp:
    if path is None:
      path = os.path.join(tmp, "example")
      _example_saved_model(path)
      print(f"Built-in example: a 3-layer classifier saved to a temporary SavedModel.")
    elif not os.path.exists(os.path.join(path, "saved_model.pb")):
      print(f"tf2jax check: {path} is not a SavedModel directory (no saved_model.pb).",
            file=sys.stderr)
      return 2
    loaded = tf.saved_model.load(path)
    signatures = dict(loaded.signatures)
    if not signatures:
      print(f"tf2jax check: {path} has no signatures to convert.", file=sys.stderr)
      return 2
    name = signature or ("serving_default" if "serving_default" in signatures
                         else sorted(signatures)[0])
    if name not in signatures:
      print(f"tf2jax check: no signature {name!r}; the model has {sorted(signatures)}.",
            file=sys.stderr)
      return 2
    tf_fn = signatures[name]

    start = time.perf_counter()
    jax_fn, params = tf2jax.convert_from_restored(tf_fn)
    convert_s = time.perf_counter() - start
    inputs = _random_inputs(tf_fn.structured_input_signature, batch, seed=0)

    jitted = jax.jit(jax_fn)
    start = time.perf_counter()
    jax_out = jax.block_until_ready(jitted(params, **inputs)[0])
    compile_s = time.perf_counter() - start
    tf_out = tf_fn(**{k: tf.constant(v) for k, v in inputs.items()})

    print(f"SavedModel: {path}  signature: {name}  batch: {batch}")
    print(f"params: {len(params)} arrays, "
          f"{sum(int(np.prod(p.shape)) for p in params.values()):,} values")
    ok = True
    flat_tf = tf.nest.flatten(tf_out)
    flat_jax = jax.tree_util.tree_leaves(jax_out)
    names = sorted(tf_out) if isinstance(tf_out, dict) else range(len(flat_tf))
    for key, t, j in zip(names, flat_tf, flat_jax):
      t = t.numpy()
      j = np.asarray(j)
      if t.shape != j.shape or t.dtype != j.dtype:
        print(f"  output {key}: TF {t.dtype}{list(t.shape)} vs JAX {j.dtype}{list(j.shape)}")
        ok = False
        continue
      err = float(np.max(np.abs(t.astype(np.float64) - j.astype(np.float64)))) if t.size else 0.0
      scale = float(np.max(np.abs(t))) if t.size else 0.0
      rel = err / scale if scale else err
      good = rel <= 1e-4 or err <= 1e-6
      ok = ok and good
      print(f"  output {key}: {t.dtype}{list(t.shape)}  max abs error {err:.3g}  "
            f"relative to max |TF| {rel:.3g}  {'ok' if good else 'MISMATCH'}")

    tf_args = {k: tf.constant(v) for k, v in inputs.items()}
    tf_s = _median_time(lambda: [t.numpy() for t in tf.nest.flatten(tf_fn(**tf_args))], runs)
    jax_s = _median_time(lambda: jax.block_until_ready(jitted(params, **inputs)), runs)
    print(f"convert {convert_s * 1e3:.1f} ms, first jit call (trace+compile) "
          f"{compile_s * 1e3:.1f} ms")
    print(f"median of {runs} runs: TF {tf_s * 1e3:.3f} ms, tf2jax+jit {jax_s * 1e3:.3f} ms, "
          f"speed ratio TF/JAX {tf_s / jax_s:.2f}x")
    print("OK: converted outputs match TensorFlow" if ok else "MISMATCH against TensorFlow")
    return 0 if ok else 1


def _plugins() -> int:
  import tf2jax
  for info in tf2jax.plugins():
    line = f"{info.name} {info.version}: {info.status}, {info.num_ops} ops ({info.source})"
    print(line + (f"\n  {info.error}" if info.error else ""))
  return 0


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(prog="tf2jax", description=__doc__.split("\n\n")[0])
  sub = parser.add_subparsers(dest="command", required=True)
  p = sub.add_parser("check", help="convert a SavedModel (or a built-in example) and "
                     "compare it with TensorFlow")
  p.add_argument("path", nargs="?", help="SavedModel directory (default: built-in example)")
  p.add_argument("--signature", help="signature name (default: serving_default)")
  p.add_argument("--batch", type=int, default=8, help="size of unknown dims (default 8)")
  p.add_argument("--runs", type=int, default=50, help="timed runs (default 50)")
  sub.add_parser("plugins", help="list plugins, versions, op counts and load errors")
  args = parser.parse_args(argv)
  if args.command == "check":
    return check(args.path, args.signature, args.batch, args.runs)
  return _plugins()


if __name__ == "__main__":
  sys.exit(main())
