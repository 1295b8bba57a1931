"""A batch's LLM inputs: the prompt's token embeddings around each item's speech (or transcript) and its target.

Everything but the embeddings is built on the host and copied to the device once per tensor, so building a
batch does not wait for the device (no per-item copies, no reads of device values); text tokens are embedded in
one lookup for the whole batch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from relm.errors import RelmError
from relm.models.llm import Batch, PromptParts


def to_device(t: torch.Tensor, device: torch.device) -> torch.Tensor:
    """A host tensor on `device` without making the host wait (pinned memory for CUDA)."""
    if device.type == "cuda":
        return t.pin_memory().to(device, non_blocking=True)
    return t.to(device)


@dataclass
class Row:
    """One item's token ids around its middle (`middle_ids` for text systems, else `middle_len` speech tokens)."""

    prefix: list[int]
    middle_ids: list[int] | None
    middle_len: int
    suffix: list[int]
    target: list[int]

    @property
    def length(self) -> int:
        return len(self.prefix) + self.middle_len + len(self.suffix) + len(self.target)


def rows_of(module, items: Batch, with_target: bool, speech_len: list[int] | None) -> list[Row]:
    rows = []
    for i, it in enumerate(items):
        parts: PromptParts = module.prompts[it["task"]]
        middle_ids = None
        if speech_len is None:
            transcript = it["transcript"].strip()
            if not transcript:
                raise RelmError(f"{it.get('utt_id', '?')}: empty transcript for text system {module.spec.name}")
            middle_ids = module.tokenizer(transcript, add_special_tokens=False)["input_ids"]
        target: list[int] = []
        if with_target:
            target = module.tokenizer(it["target"], add_special_tokens=False)["input_ids"]
            target += module.target_end if it.get("target_complete", True) else []
        middle_len = len(middle_ids) if middle_ids is not None else speech_len[i]  # type: ignore[index]
        rows.append(Row(parts.prefix, middle_ids, middle_len, parts.suffix, target))
    return rows


def build_inputs(module, items: Batch, with_target: bool, left_pad: bool, pad_to_multiple: int = 0) -> dict:
    """inputs_embeds, attention_mask, labels (-100 outside targets), speech position mask.

    All items of a batch share one prompt, so they share its prefix (`parts.prefix`, the system prompt and the text
    before the speech). `left_pad` (generation) puts each row's padding right after that prefix,
    `[prefix][pads][speech or transcript][suffix]`: positions come from the attention mask, so a row reads as if
    unpadded, and the prefix's keys and values are the same for every row and can be computed once. Otherwise
    (training) padding goes at the end, to a multiple of `pad_to_multiple` positions when it is > 0.
    """
    device = module.device
    speech = speech_len = None
    if module.spec.speech:
        speech, speech_len = module.speech_tokens(items)
    if left_pad and len({it["task"] for it in items}) != 1:
        raise RelmError("a generation batch mixes prompts")
    rows = rows_of(module, items, with_target, speech_len.tolist() if speech_len is not None else None)
    n = max(r.length for r in rows)
    if pad_to_multiple and not left_pad:
        n = -(-n // pad_to_multiple) * pad_to_multiple
    attn = torch.zeros(len(rows), n, dtype=torch.long)
    labels = torch.full((len(rows), n), -100, dtype=torch.long)
    smask = torch.zeros(len(rows), n)
    ids: list[int] = []
    text_at: list[torch.Tensor] = []  # (row, position) of each text token, in `ids` order
    speech_at: list[torch.Tensor] = []  # (row, position, speech step) of each speech token
    for i, r in enumerate(rows):
        p, m = len(r.prefix), r.middle_len
        # Row i's positions: [prefix][pads][own tokens] with left_pad, else [all tokens][pads].
        pos = torch.cat([torch.arange(p), torch.arange(n - r.length + p, n)]) if left_pad else torch.arange(r.length)
        attn[i, pos] = 1
        labels[i, pos[p + m + len(r.suffix) :]] = torch.tensor(r.target, dtype=torch.long)
        text_pos = torch.cat([pos[:p], pos[p + m :]]) if r.middle_ids is None else pos
        ids += r.prefix + (r.middle_ids or []) + r.suffix + r.target
        text_at.append(torch.stack([torch.full_like(text_pos, i), text_pos]))
        if r.middle_ids is None:
            smask[i, pos[p : p + m]] = 1.0
            speech_at.append(torch.stack([torch.full((m,), i), pos[p : p + m], torch.arange(m)]))
    table = module.llm.get_input_embeddings()
    at = to_device(torch.cat(text_at, 1), device)
    text = table(to_device(torch.tensor(ids, dtype=torch.long), device))
    embeds = text.new_zeros(len(rows), n, text.shape[-1])
    embeds[at[0], at[1]] = text
    if speech is not None:
        s_at = to_device(torch.cat(speech_at, 1), device)
        embeds[s_at[0], s_at[1]] = speech[s_at[0], s_at[2]].to(text.dtype)
    out: dict[str, Any] = {
        "inputs_embeds": embeds,
        "attention_mask": to_device(attn, device),
        "labels": to_device(labels, device),
        "speech_mask": to_device(smask, device),
        "shared_prefix": min(len(r.prefix) for r in rows) if left_pad else 0,
    }
    if speech is not None:
        out["speech_tokens"], out["speech_len"] = speech, to_device(speech_len, device)  # type: ignore[arg-type]
    return out
