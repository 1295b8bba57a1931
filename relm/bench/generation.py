"""Answer a run's test split: greedy responses and SER answers, batched by length, the prompt prefix once."""

from __future__ import annotations

import contextlib

import torch
from tqdm import tqdm

from relm.bench.records import AnswerRow, Item
from relm.config import Preset
from relm.models.systems import SystemLitModule
from relm.runtime import Runtime


def generation_order(items: list[Item]) -> list[int]:
    """Test items sorted by prompt length (speech frames, then transcript), so a batch carries little padding."""
    return sorted(range(len(items)), key=lambda i: (len(items[i]["frames"]), len(items[i]["transcript"]), i))


def answer(
    module: SystemLitModule,
    items: list[Item],
    preset: Preset,
    runtime: Runtime,
    progress: bool = True,
    fast: bool = True,
) -> list[AnswerRow]:
    """Greedy batched responses and SER answers (and head predictions) for the test items, in their order.

    `fast`: batches of similar length, the prompt prefix computed once (`SystemLitModule.generate`) and, with
    audio-scoped LoRA, no LoRA branch computed where it is masked to zero (`PositionMask`); otherwise the items'
    own order and the whole prompt run per batch with every branch (the previous method, for benchmarks).
    """
    if module.position_mask is not None:
        module.position_mask.skip_unmasked = fast
    g = preset.generate
    autocast = torch.autocast(module.device.type, dtype=torch.bfloat16) if runtime.bf16 else contextlib.nullcontext()
    order = generation_order(items) if fast else list(range(len(items)))
    rows: list[AnswerRow] = [None for _ in items]  # type: ignore[misc]  # each filled below
    for i in tqdm(
        range(0, len(items), g.batch_size), desc=f"generate: {module.spec.name}", unit="batch", disable=not progress
    ):
        batch_ids = order[i : i + g.batch_size]
        batch = [items[k] for k in batch_ids]
        with autocast:
            responses = module.generate(batch, "response", g.max_new_tokens, reuse_prefix=fast)
            ser = module.generate(batch, "ser", g.ser_max_new_tokens, reuse_prefix=fast)
            head, avd = module.head_predictions(batch)
        for j, (k, it) in enumerate(zip(batch_ids, batch)):
            rows[k] = {
                "id": it["utt_id"],
                "transcript": it["transcript"],
                "gold_emotion": it["emotion_name"],
                "response": responses[j],
                "ser_answer": ser[j],
                "ser_head": head[j] if head else None,
                "avd_pred": avd[j] if avd else None,
                "avd_target": it["avd"].tolist(),
            }
    return rows
