"""Lightning callbacks of a training run: validation and weight selection, the step bar, answering in DDP workers."""

from __future__ import annotations

from pathlib import Path

import torch
from lightning.pytorch.callbacks import Callback
from tqdm import tqdm

from relm.bench.generation import answer
from relm.bench.records import Item, Selection
from relm.config import Preset
from relm.io import atomic_write_text, jsonl_text
from relm.runtime import Runtime

SELECTION = "relm/selection"  # from the DDP workers: [[step, val loss], ...], then [selected step, its loss]
STEPS_DONE = "relm/optimizer_steps_done"


class ValidateAndSelect(Callback):
    """Validation every `every` optimizer steps and after the last one (counted in optimizer steps, whatever
    the accumulation), and the weights that answer the test split: `select` last (the final weights, as
    released) or best (the lowest val/loss; a device copy of the trainable parameters only, no host copy).

    relm runs validation itself rather than through Lightning's loop, whose `val_check_interval` counts
    micro-batches: the same code serves one process and DDP workers (each takes every world-size-th val batch;
    the loss is summed over all of them, so every process keeps the same weights)."""

    def __init__(self, batches: list[list[Item]], every: int, select: str, per_pass: int = 0):
        # every: optimizer steps between validations, counted from the start of each pass over the training
        # items when `per_pass` (its optimizer steps) is given, else from the start of training.
        self.batches, self.every, self.select, self.per_pass = batches, every, select, per_pass
        self.history: list[tuple[int, float]] = []  # (optimizer step, val loss)
        self.best, self.best_step = float("inf"), -1
        self.state: dict[str, torch.Tensor] | None = None

    def validate(self, trainer, module) -> None:
        rank, world = trainer.global_rank, trainer.world_size
        sums: dict[str, torch.Tensor] = {}
        count = torch.zeros((), device=module.device)
        # A process without a batch of its own still runs one at weight 0, so every process reduces the same losses.
        mine = [(b, len(b)) for b in self.batches[rank::world]] or [(self.batches[0], 0)]
        module.eval()
        with torch.no_grad(), trainer.precision_plugin.val_step_context():
            for batch, weight in mine:
                for name, value in module.losses(batch).items():
                    sums[name] = sums.get(name, torch.zeros((), device=module.device)) + value.float() * weight
                count += weight
        module.train()
        names = sorted(sums)
        totals = torch.stack([sums[n] for n in names] + [count])
        if world > 1:
            torch.distributed.all_reduce(totals)
        if float(totals[-1]) == 0:
            return
        metrics = {f"val/{n}": float(v) / float(totals[-1]) for n, v in zip(names, totals[:-1])}
        step = trainer.global_step
        for logger in trainer.loggers:
            logger.log_metrics(metrics, step=step)
        trainer.callback_metrics.update({k: torch.tensor(v) for k, v in metrics.items()})
        loss = metrics["val/loss"]
        self.history.append((step, loss))
        if loss < self.best:
            self.best, self.best_step = loss, step
            if self.select == "best":  # a copy: `.cpu()` of a CPU tensor is the tensor itself, not a snapshot
                self.state = {n: p.detach().clone() for n, p in module.named_parameters() if p.requires_grad}

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
        step = trainer.global_step
        in_pass = (step - 1) % self.per_pass + 1 if self.per_pass else step
        due = in_pass % self.every == 0 or step >= trainer.max_steps
        if self.batches and step > 0 and due and (not self.history or self.history[-1][0] != step):
            self.validate(trainer, module)

    def restore(self, module) -> None:
        """Put the selected weights back (nothing to do for `last`)."""
        if self.select == "best" and self.state is not None:
            own = dict(module.named_parameters())
            with torch.no_grad():
                for k, v in self.state.items():
                    own[k].copy_(v)

    def record(self, final_step: int) -> Selection:
        """The train record's selection fields."""
        last = self.history[-1][1] if self.history and self.history[-1][0] == final_step else None
        chosen = self.best_step if self.select == "best" and self.state is not None else final_step
        return {
            "select": self.select,
            "selected_step": chosen,
            "best_val_loss": self.best,
            "last_val_loss": last,
            "val_history": [[s, v] for s, v in self.history],
        }

    def on_train_end(self, trainer, module):
        """In DDP workers: take the selected weights now (the sweep's process gets worker 0's copy when they exit),
        and send the history and Lightning's step count back in `callback_metrics`."""
        if trainer.world_size > 1:
            self.restore(module)
            rows = self.history + [(self.best_step, self.best)]
            trainer.callback_metrics[SELECTION] = torch.tensor(rows, dtype=torch.float64)
            trainer.callback_metrics[STEPS_DONE] = torch.tensor(trainer.global_step)

    def take_from_workers(self, metrics: dict) -> None:
        """The parent of DDP workers: the history and selection they sent back."""
        rows = metrics.get(SELECTION)
        if rows is not None and len(rows):
            *history, (step, loss) = [(int(s), float(v)) for s, v in rows.tolist()]
            self.history, self.best, self.best_step = history, loss, step
            self.state = {} if self.select == "best" and step >= 0 else None  # the workers restored them


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
    world-size-th one) with the selected weights (`ValidateAndSelect` runs first and restores them); process 0
    gathers the answers, in the items' order, into `path`."""

    def __init__(self, items: list[Item], preset: Preset, runtime: Runtime, path: Path, progress: bool):
        self.items, self.preset, self.runtime, self.path, self.progress = items, preset, runtime, path, progress

    def on_train_end(self, trainer, module):
        rank, world = trainer.global_rank, trainer.world_size
        mine = list(range(rank, len(self.items), world))
        rows = answer(module, [self.items[i] for i in mine], self.preset, self.runtime, self.progress and rank == 0)
        shares: list = [None] * world
        torch.distributed.all_gather_object(shares, list(zip(mine, rows)))
        if rank == 0:
            ordered = sorted((pair for share in shares for pair in share), key=lambda pair: pair[0])
            atomic_write_text(self.path, jsonl_text([row for _, row in ordered]))
