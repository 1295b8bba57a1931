"""Train one system on one dataset and seed (Lightning), then answer the test split."""

from __future__ import annotations

import gc
import json
import signal
import time
from dataclasses import dataclass
from pathlib import Path

import lightning as L
import numpy as np
import torch
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.loggers import CSVLogger
from torch.utils.data import DataLoader

from relm.batching import LengthBucketSampler
from relm.bench.callbacks import STEPS_DONE, AnswerInWorkers, StepBar, ValidateAndSelect
from relm.bench.distributed import lightning_strategy
from relm.bench.generation import answer
from relm.bench.records import AnswerRow, Item, TrainRecord
from relm.bench.stages import Stage
from relm.bench.training_items import sequence_length, training_items
from relm.cache import CacheEntry, load_or_compute
from relm.config import Preset
from relm.data.schema import LABELS
from relm.errors import RelmError
from relm.io import atomic_write_json, atomic_write_text, jsonl_text, read_jsonl
from relm.models import blsp_emo
from relm.models.budget import idle_budget, training_budget
from relm.models.llm import load_llm
from relm.models.system_table import get_system
from relm.models.systems import SystemLitModule
from relm.runtime import Runtime


def validation_interval(preset: Preset, micro_batches_per_pass: int, steps: int) -> tuple[int, int]:
    """(optimizer steps between validations, optimizer steps per pass or 0): `train.val_every_steps` counted from
    the start, else `train.val_per_epoch` evenly spaced validations counted within each pass over the training
    items (a pass ends with a step of its last, partial accumulation)."""
    t = preset.train
    if t.val_every_steps > 0:
        return t.val_every_steps, 0
    per_pass = -(-micro_batches_per_pass // t.accumulate)
    return max(1, min(steps, per_pass) // t.val_per_epoch), per_pass


def build_module(
    system: str,
    preset: Preset,
    device: torch.device,
    speech_dim: int,
    emotion_dim: int,
    total_steps: int,
    seed: int,
    classes: tuple[str, ...] = LABELS,
) -> SystemLitModule:
    # the pretrained (or fixed random) LLM: the same for every seed
    llm, tok, identity = load_llm(preset.llm, device)
    init = blsp_emo.load(preset.speech_init) if preset.speech_init and get_system(system).speech else None
    L.seed_everything(seed, verbose=False)  # after loading, so LoRA and adapter initialisation follow the seed
    module = SystemLitModule(system, preset, llm, tok, speech_dim, emotion_dim, total_steps, init=init, classes=classes)
    module.identity["llm"] = identity
    return module.to(device)


def _without_lightnings_exit(call, *args, **kwargs):
    """Lightning turns Ctrl-C into its own message and `sys.exit(1)`; give relm the KeyboardInterrupt back,
    so every stage ends the same way ("interrupted; finished stages are kept", exit 130)."""
    try:
        return call(*args, **kwargs)
    except SystemExit:
        signal.signal(signal.SIGINT, signal.default_int_handler)  # Lightning ignores SIGINT from here on
        raise KeyboardInterrupt from None


def train_system(
    system: str,
    preset: Preset,
    runtime: Runtime,
    train_items,
    val_items,
    speech_dim: int,
    emotion_dim: int,
    seed: int,
    log_dir: Path,
    loggers=(),
    progress: bool = True,
    test_items: list[Item] | None = None,
    answers_path: Path | None = None,
    classes: tuple[str, ...] = LABELS,
) -> tuple[SystemLitModule, TrainRecord]:
    """Train one system (or load a zero-shot one). With several processes and `test_items`, the workers also
    answer them into `answers_path` (`AnswerInWorkers`); info["answered_in_workers"] says so."""
    spec = get_system(system)
    items, counts = training_items(train_items, preset.train.ser_prompt_fraction, seed)
    if spec.trains and not items:
        raise RelmError(
            f"{system}: nothing to train on: none of the {len(train_items)} training utterances has a teacher "
            f"response (all were dropped by cleaning or are missing) and train.ser_prompt_fraction is "
            f"{preset.train.ser_prompt_fraction}"
        )
    val, _ = training_items(val_items, preset.train.ser_prompt_fraction, seed + 1)
    cap = preset.train.max_val_items
    if 0 < cap < len(val):
        chosen = np.random.default_rng(seed).choice(len(val), cap, replace=False)
        val = [val[i] for i in sorted(chosen)]
    budget = training_budget(len(items), preset) if spec.trains else idle_budget()
    steps = budget["steps"]
    module = build_module(system, preset, runtime.device, speech_dim, emotion_dim, max(steps, 1), seed, classes)
    info: TrainRecord = {
        "train_items": counts,
        **budget,
        "trainable_params": sum(p.numel() for p in module.parameters() if p.requires_grad),
        "loaded_from_speech_init": module.loaded_from_init,
        "total_params": sum(p.numel() for p in module.parameters()),
    }
    if not spec.trains:
        return module, info | {"train_seconds": 0.0}
    t = preset.train
    per_process = budget["batch_per_process"]
    if t.length_buckets and budget["world_size"] == 1:
        lengths = [sequence_length(module, it) for it in items]
        buckets = LengthBucketSampler(lengths, per_process, seed, t.length_buckets)
        info["padding_share"] = buckets.padding_shares()
        train_loader: DataLoader = DataLoader(items, batch_sampler=buckets, collate_fn=list)  # type: ignore[arg-type]
    else:  # several processes: Lightning gives each its share through a DistributedSampler
        gen = torch.Generator().manual_seed(seed)
        train_loader = DataLoader(
            items,  # type: ignore[arg-type]  # a list of items is a map-style dataset
            batch_size=per_process,
            shuffle=True,
            collate_fn=list,
            generator=gen,
        )
    processes = budget["world_size"]
    # Validation batches of the global batch size: each process takes every world-size-th one.
    val_batches = [val[i : i + t.batch_size] for i in range(0, len(val), t.batch_size)]
    every, per_pass = validation_interval(preset, -(-len(items) // t.batch_size), steps)
    keep = ValidateAndSelect(val_batches, every, t.select, per_pass)
    if processes > 1:
        module.cpu()  # spawned workers each move their copy to their own device; the parent keeps none there
        # Tensors reach the spawned workers through shared memory; passing file descriptors (torch's default)
        # failed in a worker here ("unable to resize file", a Firecracker VM); named files in /dev/shm work.
        torch.multiprocessing.set_sharing_strategy("file_system")
    spread = processes > 1 and test_items is not None and answers_path is not None
    callbacks: list[Callback] = [keep]  # first: its on_train_end restores the selected weights before answering
    if spread:
        callbacks.append(AnswerInWorkers(test_items, preset, runtime, answers_path, progress))  # type: ignore[arg-type]
    if progress:
        callbacks.append(StepBar(f"{system} seed {seed}", steps))
    trainer = L.Trainer(
        accelerator=runtime.accelerator,
        max_steps=steps,
        max_epochs=-1,  # the budget is in optimizer steps
        accumulate_grad_batches=t.accumulate,
        gradient_clip_val=t.grad_clip,
        precision=runtime.precision,  # type: ignore[arg-type]  # validated by the preset loader
        strategy=lightning_strategy(preset, processes, runtime.device),
        devices=t.devices,
        num_nodes=t.num_nodes,
        logger=[CSVLogger(str(log_dir), name="", version=""), *loggers],
        callbacks=callbacks,
        enable_checkpointing=False,
        num_sanity_val_steps=0,
        log_every_n_steps=5,
        limit_val_batches=0,  # ValidateAndSelect validates, counted in optimizer steps
        default_root_dir=str(log_dir),
        enable_model_summary=False,
        enable_progress_bar=False,  # StepBar instead
    )
    start = time.perf_counter()
    _without_lightnings_exit(trainer.fit, module, train_loader)
    seconds = time.perf_counter() - start
    if processes > 1:  # the workers restored the selected weights; the sweep's process got rank 0's copy
        keep.take_from_workers(trainer.callback_metrics)
        done = int(trainer.callback_metrics.get(STEPS_DONE, torch.tensor(-1)))
    else:
        done = trainer.global_step
        keep.restore(module)
    module.to(runtime.device)  # Lightning's teardown leaves the module on the CPU
    info.update(keep.record(done))
    info["train_seconds"], info["seconds_per_step"] = round(seconds, 1), round(seconds / max(steps, 1), 3)
    info["answered_in_workers"] = spread
    info["optimizer_steps_done"] = done  # counted by Lightning, against the budget's `steps`
    return module, info


ANSWERS_FILE, INFO_FILE, CHECKPOINT_FILE, LOGS = "answers.jsonl", "train.json", "trained.safetensors", "logs"


@dataclass
class RunOutput:
    """What one run produced: its answers, its training record, its cache entry and whether that was reused."""

    rows: list[AnswerRow]
    info: TrainRecord
    entry: CacheEntry
    cached: bool

    @property
    def curves(self) -> Path:
        """Lightning's CSV log of the training curves (absent for zero-shot systems)."""
        return self.entry.folder / LOGS / "metrics.csv"


def train_and_answer(
    system: str,
    seed: int,
    preset: Preset,
    runtime: Runtime,
    items: dict[str, list[Item]],
    dims: tuple[int, int],
    entry_key: str,
    force: bool,
    progress: bool,
    loggers=(),
    classes: tuple[str, ...] = LABELS,
) -> RunOutput:
    """One run: train (or reuse) one system/seed and answer the test split; one cache entry per `entry_key`.

    The entry (`relm.cache`) holds the answers, the training record, the trained parts and Lightning's CSV
    log, all written into the entry's own temporary folder: two processes never share a log file.
    """
    entry = CacheEntry(Stage.TRAIN.value, entry_key)
    cached = True

    def read(folder: Path) -> tuple[list[AnswerRow], TrainRecord]:
        rows: list[AnswerRow] = read_jsonl(folder / ANSWERS_FILE)  # type: ignore[assignment]  # checked below
        info: TrainRecord = json.loads((folder / INFO_FILE).read_text())
        if not isinstance(info, dict) or not all(isinstance(r, dict) and "id" in r for r in rows):
            raise ValueError("answers or train record of the wrong shape")
        if info.get("checkpoint"):  # where the entry is now (the cache may have moved since it was written)
            info["checkpoint"] = str(entry.folder / CHECKPOINT_FILE)
        return rows, info

    def compute(folder: Path) -> tuple[list[AnswerRow], TrainRecord]:
        nonlocal cached
        cached = False
        module, info = train_system(
            system,
            preset,
            runtime,
            items["train"],
            items["val"],
            *dims,
            seed,
            folder / LOGS,
            loggers,
            progress,
            test_items=items["test"],
            answers_path=folder / ANSWERS_FILE,
            classes=classes,
        )
        if info.get("answered_in_workers"):  # worker 0 wrote them (their time is in train_seconds)
            rows: list[AnswerRow] = read_jsonl(folder / ANSWERS_FILE)  # type: ignore[assignment]
        else:
            start = time.perf_counter()
            rows = answer(module, items["test"], preset, runtime, progress)
            info["generate_seconds"] = round(time.perf_counter() - start, 1)
            atomic_write_text(folder / ANSWERS_FILE, jsonl_text(rows))
        if module.spec.trains:
            module.save_trained(folder / CHECKPOINT_FILE)
            info["checkpoint"] = str(entry.folder / CHECKPOINT_FILE)
        atomic_write_json(folder / INFO_FILE, info)
        del module
        gc.collect()
        return rows, info

    rows, info = load_or_compute(entry, read, compute, force=force, inputs={"system": system, "seed": seed})
    return RunOutput(rows, info, entry, cached)
