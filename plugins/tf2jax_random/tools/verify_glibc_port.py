"""Checks the logf/sincosf port of tf2jax_random.glibc against this machine's libm on
every input TF's float Box-Muller can give them: u1 = k * 2**-23 (k = 1 .. 2**23-1, and
the clamp value 1e-7) and theta = float32(2 pi * k * 2**-23) (k = 0 .. 2**23-1).

    .venv/bin/python plugins/tf2jax_random/tools/verify_glibc_port.py [--jax]

Prints the number of mismatching values (0 means bit-identical on all inputs). With
--jax the port also runs as jitted jax.numpy float64 code (x64), as in converted
functions. libm is called through ctypes, one value at a time (about a minute).
"""

import ctypes
import ctypes.util
import sys
import time

import numpy as np

from tf2jax_random import glibc


def libm_reference(u, theta):
  lib = ctypes.CDLL(ctypes.util.find_library("m") or "libm.so.6")
  lib.logf.restype = ctypes.c_float
  lib.logf.argtypes = [ctypes.c_float]
  lib.sincosf.restype = None
  lib.sincosf.argtypes = [ctypes.c_float, ctypes.POINTER(ctypes.c_float),
                          ctypes.POINTER(ctypes.c_float)]
  logf = lib.logf
  log = np.fromiter((logf(v) for v in u.tolist()), np.float32, len(u))
  s, c = ctypes.c_float(), ctypes.c_float()
  ps, pc = ctypes.byref(s), ctypes.byref(c)
  sincosf = lib.sincosf
  sin = np.empty(len(theta), np.float32)
  cos = np.empty(len(theta), np.float32)
  for i, v in enumerate(theta.tolist()):
    sincosf(v, ps, pc)
    sin[i] = s.value
    cos[i] = c.value
  return log, sin, cos


def main() -> int:
  k = np.arange(2**23, dtype=np.uint32)
  unit = k.astype(np.float32) * np.float32(2**-23)
  u = np.concatenate([[np.float32(1e-7)], unit[1:]]).astype(np.float32)
  theta = (2 * np.pi * unit.astype(np.float64)).astype(np.float32)
  start = time.time()
  want = libm_reference(u, theta)
  print(f"libm reference: {time.time() - start:.1f} s")
  ports = {"numpy": lambda: (glibc.logf(np, u), *glibc.sincosf(np, theta))}
  if "--jax" in sys.argv:
    import jax
    import jax.numpy as jnp
    jax.config.update("jax_enable_x64", True)
    ports["jax x64 jit"] = lambda: (
        np.asarray(jax.jit(lambda x: glibc.logf(jnp, x))(u)),
        *map(np.asarray, jax.jit(lambda x: glibc.sincosf(jnp, x))(theta)))
  bad = 0
  for name, port in ports.items():
    got = port()
    for what, g, w in zip(("logf", "sinf", "cosf"), got, want):
      n = int(np.sum(np.asarray(g).view(np.uint32) != w.view(np.uint32)))
      bad += n
      print(f"{name:12s} {what}: {n} of {len(w)} values differ")
  return 1 if bad else 0


if __name__ == "__main__":
  sys.exit(main())
