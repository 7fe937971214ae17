"""A sharded jax.jit function -> jax2tf -> tf2jax on 8 fake CPU devices: the compiled
converted function has the original's output shardings and values. TF graphs annotated
with XlaSharding ops get those shardings as constraints.

JAX fixes its device count at start-up, so the check runs in a subprocess with
--xla_force_host_platform_device_count=8.
"""

import os
import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent("""
    import numpy as np, jax, jax.numpy as jnp, tensorflow as tf
    from jax.sharding import Mesh, NamedSharding, PartitionSpec as P
    from jax.experimental import jax2tf
    import tf2jax

    assert jax.device_count() == 8, jax.devices()
    mesh = Mesh(np.array(jax.devices()).reshape(2, 4), ("x", "y"))
    S = lambda *spec: NamedSharding(mesh, P(*spec))

    def matmul(a, b):
      c = jax.lax.with_sharding_constraint(a @ b, S("x", None))
      return jnp.tanh(c), jnp.sum(c, axis=0)

    cases = {
        "matmul": (matmul, [(8, 16), (16, 8)], (S("x", "y"), S("y", None)),
                   (S(None, "y"), S())),
        "mlp": (lambda x, w: jax.nn.relu(x @ w) * 2.0, [(16, 4), (4, 8)],
                (S(("x", "y")), S()), S("x", "y")),
    }
    rng = np.random.default_rng(0)
    for name, (f, shapes, in_s, out_s) in cases.items():
      original = jax.jit(f, in_shardings=in_s, out_shardings=out_s)
      args = [rng.normal(size=s).astype(np.float32) for s in shapes]
      placed = [jax.device_put(a, s) for a, s in zip(args, in_s)]
      tf_fn = tf.function(jax2tf.convert(original, with_gradient=False), autograph=False)
      converted = jax.jit(tf2jax.convert_functional(
          tf_fn, *[tf.TensorSpec(s, tf.float32) for s in shapes]))
      want = jax.tree_util.tree_leaves(original(*placed))
      got = jax.tree_util.tree_leaves(converted(*placed))
      assert len(got) == len(want), name
      for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-5)
        assert g.sharding.is_equivalent_to(w.sharding, g.ndim), (name, g.sharding, w.sharding)
        assert len(g.sharding.device_set) == 8, (name, g.sharding)
      print(name, "ok", [g.sharding.spec for g in got])

      # Gradients from jax2tf's serialized VJP, and vmap, on the same devices.
      leaves = jax.tree_util.tree_leaves
      loss = lambda g: lambda *a: sum(jnp.sum(jnp.sin(o)) for o in leaves(g(*a)))
      tf_grad_fn = tf.function(jax2tf.convert(original), autograph=False)
      with_grad = tf2jax.convert_functional(
          tf_grad_fn, *[tf.TensorSpec(s, tf.float32) for s in shapes])
      got = jax.jit(jax.grad(loss(with_grad), argnums=(0, 1)))(*placed)
      want = jax.grad(loss(original), argnums=(0, 1))(*placed)
      for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, rtol=1e-4, atol=1e-5)
      batch = [np.stack([a, a * 0.5]) for a in args]
      got = jax.tree_util.tree_leaves(jax.vmap(converted)(*batch))
      want = jax.tree_util.tree_leaves(jax.vmap(f)(*batch))
      for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-5)
      print(name, "grad vmap ok")

    # XlaSharding ops written by TF's xla_sharding API become sharding constraints.
    from tensorflow.python.compiler.xla.experimental import xla_sharding

    @tf.function
    def annotated(x):
      y = xla_sharding.tile(tf.tanh(x), np.arange(8).reshape(4, 2).T,
                            use_sharding_op=True)
      z = xla_sharding.split(y * 2.0, 1, 8, use_sharding_op=True)
      return y, z, xla_sharding.replicate(z + 1.0, use_sharding_op=True)

    x = rng.normal(size=(8, 8)).astype(np.float32)
    converted = jax.jit(tf2jax.convert_functional(annotated, tf.TensorSpec((8, 8))))
    got = converted(x)
    for g, w in zip(got, annotated(x)):
      np.testing.assert_allclose(g, w.numpy(), rtol=1e-6, atol=1e-6)
    devices = np.array(jax.devices())
    tiled = NamedSharding(Mesh(devices.reshape(4, 2), ("a", "b")), P("b", "a"))
    split = NamedSharding(Mesh(devices, ("a",)), P(None, "a"))
    assert got[0].sharding.is_equivalent_to(tiled, 2), got[0].sharding
    assert got[1].sharding.is_equivalent_to(split, 2), got[1].sharding
    print("XlaSharding", "ok", [g.sharding for g in got[:2]])
""")


def test_output_shardings_survive_conversion_on_8_devices():
  env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=8",
             TF_CPP_MIN_LOG_LEVEL="3", JAX_PLATFORMS="cpu")
  proc = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True,
                        text=True, timeout=600)
  assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
  assert proc.stdout.count(" ok ") == 3, proc.stdout
  assert proc.stdout.count("grad vmap ok") == 2, proc.stdout
