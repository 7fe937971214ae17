"""Batches of TensorLists: a variant vector of list handles, built with Pack and read
with Unpack, and TensorListPushBackBatch on it.

TF packs list handles into a variant tensor; here that tensor is a `TensorListBatch`, a
static tuple of TensorLists. The core lowers Pack and Unpack for arrays only, so a graph
rewrite renames those of variants to `_VariantPack` / `_VariantUnpack`, lowered here.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from tf2jax_core import ConversionError, lowering
from tf2jax_core.dtypes import VARIANT
from tf2jax_core.graph import Graph
from tf2jax_controlflow import tensor_lists
from tf2jax_controlflow.tensor_lists import TensorList

VARIANT_PACK = "_VariantPack"
VARIANT_UNPACK = "_VariantUnpack"


@dataclasses.dataclass(frozen=True)
class TensorListBatch:
  """A vector of TensorList handles (a variant tensor of shape [n])."""

  lists: tuple


def _lists(node, value) -> tuple:
  if isinstance(value, TensorListBatch):
    return value.lists
  raise ConversionError(f"{node.op} node {node.path!r}: its input is not a vector of "
                        f"TensorLists (got {type(value).__name__}); tf2jax batches only "
                        "TensorList handles packed with Pack.")


@lowering(VARIANT_PACK, attrs={"T": None, "N": None, "axis": None})
def variant_pack(node):
  def run(*handles):
    for h in handles:
      if not isinstance(h, TensorList):
        raise ConversionError(f"Pack node {node.path!r} packs variant values that are not "
                              f"TensorLists ({type(h).__name__}), which tf2jax cannot hold.")
    return [TensorListBatch(tuple(handles))]  # one output (a private op: no op def)
  return run


@lowering(VARIANT_UNPACK, attrs={"T": None, "num": None, "axis": None})
def variant_unpack(node):
  num = node.attrs["num"]

  def run(batch):
    lists = _lists(node, batch)
    if len(lists) != num:
      raise ValueError(f"Unpack node {node.path!r}: input has {len(lists)} lists, num is "
                       f"{num}")
    return list(lists)
  return run


@lowering("TensorListPushBackBatch", attrs={"element_dtype": None})
def push_back_batch(node):
  # TensorListPushBack's checks and append, per list (the module, not the Lowering: a
  # Lowering imported here would be registered twice).
  one = tensor_lists.push_back.build(node)

  def run(handles, tensor):
    lists = _lists(node, handles)
    if np.ndim(tensor) < 1 or np.shape(tensor)[0] != len(lists):
      raise ValueError(f"TensorListPushBackBatch node {node.path!r}: tensor of shape "
                       f"{list(np.shape(tensor))} must have {len(lists)} rows, one per list "
                       "(TF: 'Expected tensor.shape[0] == input_handles.size()')")
    return TensorListBatch(tuple(one(tl, tensor[i]) for i, tl in enumerate(lists)))
  return run


def rewrite(graph: Graph) -> None:
  """Pack / Unpack of variants (TensorList handles) become `_VariantPack` /
  `_VariantUnpack`, which this plugin lowers."""
  for name, node in list(graph.nodes.items()):
    if node.op in ("Pack", "Unpack") and node.attrs.get("T") == VARIANT:
      op = VARIANT_PACK if node.op == "Pack" else VARIANT_UNPACK
      graph.nodes[name] = dataclasses.replace(node, op=op, output_dtypes=None)
