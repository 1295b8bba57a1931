"""Weights on disk: a released model's folder of weight shards, and a run's saved trained parts (safetensors,
with the identity of the model they belong to), checked on read."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors import safe_open

from relm.cache import MANIFEST, folder_problem
from relm.errors import RelmError
from relm.io import safetensors_problem


def read_checkpoint_identity(path: Path, expected: dict) -> None:
    """A missing, damaged or foreign checkpoint is one error naming it (and what to do)."""
    again = "rerun its sweep with `--force train`"
    if not path.is_file():
        raise RelmError(f"{path}: checkpoint not found; {again}")
    if (path.parent / MANIFEST).is_file() and (problem := folder_problem(path.parent)):
        raise RelmError(f"{path}: the run's cache entry is damaged ({problem}); {again}")
    if problem := safetensors_problem(path):
        raise RelmError(f"{path}: damaged checkpoint ({problem}); {again}")
    with safe_open(str(path), "pt") as fh:
        meta = fh.metadata() or {}
    identity = json.loads(meta.get("identity", "{}"))
    if identity != expected:
        raise RelmError(f"{path}: checkpoint is for {identity or 'an unknown model'}, not {expected}")


def read_weights(folder: Path) -> dict[str, torch.Tensor]:
    """One flat state dict from a folder's weight shards: `*.safetensors`, else the `pytorch_model*.bin` shards
    (through `pytorch_model.bin.index.json` when there is one, as Qwen v1 and BLSP-Emo are released)."""
    index = folder / "pytorch_model.bin.index.json"
    shards = sorted(folder.glob("*.safetensors"))
    if not shards and index.is_file():
        shards = sorted({folder / name for name in json.loads(index.read_text())["weight_map"].values()})
    shards = shards or sorted(folder.glob("pytorch_model*.bin"))
    if not shards:
        raise RelmError(f"{folder}: no weights (*.safetensors, or pytorch_model*.bin with or without their index)")
    state: dict[str, torch.Tensor] = {}
    for shard in shards:
        if not shard.is_file():
            raise RelmError(f"{shard}: listed in the index but missing")
        if shard.suffix == ".safetensors":
            from safetensors.torch import load_file

            state |= load_file(str(shard))
        else:  # plain tensors only: weights_only refuses anything else a pickle could carry
            state |= torch.load(shard, map_location="cpu", weights_only=True)
    return state
