"""A run's training budget: processes, optimizer steps, passes and samples seen, whatever the corpus size."""

from __future__ import annotations

import math
import sys
from typing import NotRequired, TypedDict

import torch

from relm.config import Preset
from relm.errors import RelmError


def world_size(preset: Preset) -> int:
    """Training processes: `train.devices` per node (an int, a list of device ids, or auto = every visible GPU)
    times `train.num_nodes`."""
    devices = preset.train.devices
    if isinstance(devices, list):
        per_node = len(devices)
    elif devices in ("auto", -1, "-1"):
        per_node = max(1, torch.cuda.device_count())
    else:
        per_node = int(devices)
    return per_node * preset.train.num_nodes


class Budget(TypedDict):
    """A run's training budget (the first fields of its train record)."""

    steps: int
    """optimizer steps"""
    epochs: float
    """passes over the training items the steps make"""
    samples_seen: int
    world_size: int
    """training processes"""
    batch_per_process: int
    warning: NotRequired[str]
    """when the budget sees the items fewer than once or more than `train.max_passes` times"""


def idle_budget() -> Budget:
    """The budget of a system that does not train."""
    return {"steps": 0, "epochs": 0.0, "samples_seen": 0, "world_size": 1, "batch_per_process": 0}


def training_budget(n_items: int, preset: Preset) -> Budget:
    """Optimizer steps, passes over the training items and samples seen, whatever the corpus size.

    `train.max_steps` > 0 is the budget in optimizer steps (epochs follow from the corpus size);
    otherwise `train.epochs` passes. A run that would see its training items fewer than once or
    more than `train.max_passes` times says so on stderr and in its results.
    """
    t = preset.train
    processes = world_size(preset)
    if t.batch_size % processes:
        raise RelmError(
            f"train.batch_size {t.batch_size} is the global batch; it must divide over {processes} processes"
        )
    per_step = t.batch_size * t.accumulate  # global: each of the processes takes batch_size / world_size
    steps = t.max_steps if t.max_steps > 0 else math.ceil(n_items / per_step) * t.epochs
    epochs = steps * per_step / max(n_items, 1)
    out: Budget = {
        "steps": steps,
        "epochs": round(epochs, 2),
        "samples_seen": steps * per_step,
        "world_size": processes,
        "batch_per_process": t.batch_size // processes,
    }
    if epochs < 1 or epochs > t.max_passes:
        out["warning"] = (
            f"{steps} optimizer steps of {per_step} samples see the {n_items} training items "
            f"{epochs:.1f} times (outside 1-{t.max_passes}); set train.max_steps"
        )
        print(f"relm: warning: {out['warning']}", file=sys.stderr)
    return out
