"""Lightning callbacks of a training run: checkpoint selection, the step bar, answering in DDP workers."""

from __future__ import annotations

from pathlib import Path

import torch
from lightning.pytorch.callbacks import Callback
from tqdm import tqdm

from relm.bench.generation import answer
from relm.config import Preset
from relm.io import atomic_write_text, jsonl_text

BEST_VAL_LOSS, STEPS_DONE = "relm/best_val_loss", "relm/optimizer_steps_done"  # from the workers


class KeepBestTrained(Callback):
    """Checkpoint selection on `val/loss`, keeping only the trained parts in memory."""

    def __init__(self):
        self.best, self.state = float("inf"), None

    def on_validation_end(self, trainer, module):
        loss = trainer.callback_metrics.get("val/loss")
        if loss is not None and float(loss) < self.best:
            self.best, self.state = float(loss), module.trained_state()

    def restore(self, module) -> None:
        if self.state is not None:
            own = dict(module.named_parameters())
            with torch.no_grad():
                for k, v in self.state.items():
                    own[k].copy_(v)

    def on_train_end(self, trainer, module):
        """In DDP workers: take the best weights now (the sweep's process gets worker 0's copy when they exit),
        and send the best loss and Lightning's step count back in `callback_metrics`."""
        if trainer.world_size > 1:
            self.restore(module)
            trainer.callback_metrics[BEST_VAL_LOSS] = torch.tensor(self.best)
            trainer.callback_metrics[STEPS_DONE] = torch.tensor(trainer.global_step)


class StepBar(Callback):
    """One tqdm bar per training run over its optimizer-step budget, with the latest loss (Lightning's own
    bar counts epochs, meaningless under a step budget: it read "Epoch 2/-2")."""

    def __init__(self, name: str, steps: int):
        self.name, self.steps, self.bar = name, steps, None

    def on_train_start(self, trainer, module):
        if trainer.is_global_zero:  # one bar, not one per DDP worker
            self.bar = tqdm(total=self.steps, desc=f"train: {self.name}", unit="step")

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
        if self.bar is not None and trainer.global_step > self.bar.n:
            self.bar.update(trainer.global_step - self.bar.n)
            loss = trainer.callback_metrics.get("train/loss")
            if loss is not None:
                self.bar.set_postfix(loss=f"{float(loss):.3f}")

    def on_train_end(self, trainer, module):
        if self.bar is not None:
            self.bar.close()


class AnswerInWorkers(Callback):
    """Multi-process training: when training ends, every process answers its share of the test items (every
    world-size-th one) with the best weights (`KeepBestTrained` runs first and restores them); process 0
    gathers the answers, in the items' order, into `path`."""

    def __init__(self, items: list[dict], preset: Preset, path: Path, progress: bool):
        self.items, self.preset, self.path, self.progress = items, preset, path, progress

    def on_train_end(self, trainer, module):
        rank, world = trainer.global_rank, trainer.world_size
        mine = list(range(rank, len(self.items), world))
        rows = answer(module, [self.items[i] for i in mine], self.preset, self.progress and rank == 0)
        shares: list = [None] * world
        torch.distributed.all_gather_object(shares, list(zip(mine, rows)))
        if rank == 0:
            ordered = sorted((pair for share in shares for pair in share), key=lambda pair: pair[0])
            atomic_write_text(self.path, jsonl_text([row for _, row in ordered]))
