"""Regenerates tf2jax_core/catalog.json, the first-party op -> package catalog.

Run from the project root: python tools/gen_catalog.py [OPS_DIR]
OPS_DIR (default ../shared/ops) holds one NAME.txt per package, one "OP TIER" a line.
The catalog maps op -> [package, tier]; package "core" is the tf2jax core itself.
"""

import json
import os
import sys


def main() -> None:
  ops_dir = sys.argv[1] if len(sys.argv) > 1 else os.path.join("..", "shared", "ops")
  catalog: dict[str, dict] = {}
  for fname in sorted(os.listdir(ops_dir)):
    if not fname.endswith(".txt"):
      continue
    package = fname[:-4]
    for line in open(os.path.join(ops_dir, fname)):
      parts = line.split()
      if len(parts) == 2 and not line.startswith("#"):
        catalog.setdefault(parts[0], [package, int(parts[1])])
  out = os.path.join("tf2jax_core", "catalog.json")
  with open(out, "w") as f:
    rows = [f"{json.dumps(op)}: {json.dumps(v)}" for op, v in sorted(catalog.items())]
    f.write("{\n" + ",\n".join(rows) + "\n}\n")
  print(f"wrote {len(catalog)} ops to {out}")


if __name__ == "__main__":
  main()
