"""What a system trains on: each utterance as a response item (with its teacher reply) or an SER item, and the
tokens one takes (for length buckets)."""

from __future__ import annotations

import numpy as np
import torch

from relm.bench.records import Item
from relm.models.systems import SystemLitModule


def _as_task(item: Item, task: str) -> Item:
    """A copy of the item for one training task; an SER item's target is its emotion's name."""
    out = item.copy()
    out["task"] = task
    if task == "ser":
        out["target"], out["target_complete"] = item["emotion_name"], True
    return out


def training_items(items: list[Item], ser_fraction: float, seed: int) -> tuple[list[Item], dict]:
    """Response items (with a teacher target) plus a seeded share of SER-prompt items."""
    rng = np.random.default_rng(seed)
    out = [_as_task(it, "response") for it in items if it["target"]]
    n_ser = int(round(ser_fraction * len(items)))
    out += [_as_task(items[i], "ser") for i in (rng.choice(len(items), n_ser, replace=False) if n_ser else [])]
    return out, {
        "response": sum(1 for it in out if it["task"] == "response"),
        "ser": n_ser,
        "without_target": sum(1 for it in items if not it["target"]),
    }


def sequence_length(module: SystemLitModule, item: Item) -> int:
    """The tokens `module.build` gives a training item (prompt, speech or transcript, target), without building it."""
    parts = module.prompts[item["task"]]
    if module.spec.speech:
        middle = int(module.adapter.out_lengths(torch.tensor([len(item["frames"])]))[0])
    else:
        middle = len(module.tokenizer(item["transcript"].strip(), add_special_tokens=False)["input_ids"])
    target = len(module.tokenizer(item["target"], add_special_tokens=False)["input_ids"])
    target += len(module.target_end) if item.get("target_complete", True) else 0
    return len(parts.prefix) + middle + len(parts.suffix) + target
