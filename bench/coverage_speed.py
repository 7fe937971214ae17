"""Time `tf2jax-coverage` on a large SavedModel (Keras ResNet50, random weights).

    python bench/coverage_speed.py [--model ResNet50] [--keep DIR]

Prints the SavedModel's size on disk and the time to report it, after imports and
plugin loading (what the CLI adds on top is interpreter start-up and `import tensorflow`).
"""

import argparse
import os
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def dir_size(path: str) -> int:
  return sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(path) for f in fs)


def main() -> None:
  parser = argparse.ArgumentParser()
  parser.add_argument("--model", default="ResNet50")
  parser.add_argument("--keep", help="write the SavedModel here instead of a temp dir")
  args = parser.parse_args()

  import keras
  import tensorflow as tf

  from tf2jax_core import coverage, plugins

  path = args.keep or os.path.join(tempfile.mkdtemp(), args.model)
  if not os.path.exists(os.path.join(path, "saved_model.pb")):
    model = getattr(keras.applications, args.model)(weights=None)
    module = tf.Module()
    module.model = model
    module.f = tf.function(lambda x: model(x, training=False),
                           input_signature=[tf.TensorSpec((None,) + model.input_shape[1:])])
    tf.saved_model.save(module, path, signatures={"serving_default": module.f})
  plugins.manager().ensure_loaded()
  start = time.perf_counter()
  report = coverage.coverage(path)
  elapsed = time.perf_counter() - start
  s = report.summary()
  print(f"{args.model}: SavedModel {dir_size(path) / 2**20:.0f} MiB "
        f"(saved_model.pb {os.path.getsize(os.path.join(path, 'saved_model.pb')) / 2**20:.1f} "
        f"MiB); {s['nodes']} nodes, {s['op_types']} op types; coverage report in "
        f"{elapsed:.2f} s after imports")


if __name__ == "__main__":
  main()
