"""Several training processes: the Lightning strategy relm runs, and what it refuses before any work."""

from __future__ import annotations

import torch

from relm.config import Preset
from relm.errors import RelmError

SPAWNABLE = ("auto", "ddp", "ddp_spawn")


def check_strategy(preset: Preset, processes: int) -> None:
    """One error line for a multi-process setting relm cannot run."""
    t = preset.train
    if processes == 1:
        return
    if t.num_nodes > 1:
        raise RelmError(
            f"train.num_nodes {t.num_nodes}: training over several machines needs processes started by srun or "
            "torchrun, which relm does not support yet; use train.devices on one machine (or --shard, docs/slurm.md)"
        )
    if t.compile_layers:  # spawned workers get the module pickled, and compiled functions do not pickle
        raise RelmError(f"train.compile_layers runs in one process; with {processes} set train.compile_layers=false")
    if t.strategy not in SPAWNABLE:
        raise RelmError(
            f"train.strategy {t.strategy}: with {processes} processes relm runs ddp in spawned workers (the sweep "
            f"itself runs once); {t.strategy} needs every process to run the whole sweep (srun/torchrun), which "
            "relm does not support yet; use train.strategy=ddp"
        )


def lightning_strategy(preset: Preset, processes: int, device: torch.device):
    """The strategy Lightning runs: the preset's in one process; for several, DDP in spawned workers, so the
    sweep (features, teacher, caches, results) runs once, here, and only training and answering are spread.
    Lightning's default for several processes re-runs the whole command in each, which a sweep cannot do."""
    check_strategy(preset, processes)
    if processes == 1:
        return preset.train.strategy
    from lightning.pytorch.strategies import DDPStrategy

    backend = "gloo" if device.type == "cpu" else "nccl"
    return DDPStrategy(start_method="spawn", process_group_backend=backend)
