"""The `roberta` EPITOME scorer: the EPITOME recipe (Sharma et al. 2020), meant for a GPU.

Separate RoBERTa-base encoders for seeker and response (64 tokens each), the response attending over
the seeker, a level head and a rationale-tagging head (loss weight 0.5), lr 2e-5, batch 32, 4 epochs;
one model per mechanism.
"""

from __future__ import annotations

import contextlib
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn
from tqdm import tqdm

from relm.scoring.empathy_base import EmpathyScorer
from relm.scoring.empathy_neural import linear_schedule
from relm.scoring.epitome_data import MECHANISMS


class BiEncoderRationale(nn.Module):
    """EPITOME's bi-encoder: response attends to seeker; level and rationale heads."""

    def __init__(self, seeker_enc: Any, response_enc: Any, dropout: float = 0.1):
        super().__init__()
        self.seeker_enc, self.response_enc = seeker_enc, response_enc
        hidden = response_enc.config.hidden_size
        self.attn = nn.MultiheadAttention(hidden, num_heads=1, batch_first=True)
        self.drop = nn.Dropout(dropout)
        self.level = nn.Linear(hidden, 3)
        self.rationale = nn.Linear(hidden, 2)

    def forward(self, batch: dict) -> dict[str, torch.Tensor]:
        s = self.seeker_enc(input_ids=batch["s_ids"], attention_mask=batch["s_mask"]).last_hidden_state
        r = self.response_enc(input_ids=batch["r_ids"], attention_mask=batch["r_mask"]).last_hidden_state
        ctx, _ = self.attn(r, s, s, key_padding_mask=batch["s_mask"] == 0)
        h = self.drop(r + ctx)
        return {"level": self.level(h[:, 0]), "rationale": self.rationale(h)}


class RobertaScorer(EmpathyScorer):
    """The EPITOME paper's recipe; meant for a GPU (hub id `roberta-base`)."""

    hub_id = "roberta-base"

    def __init__(
        self,
        kind: str,
        epochs: int = 4,
        lr: float = 2e-5,
        batch_size: int = 32,
        max_len: int = 64,
        lambda_rationale: float = 0.5,
    ):
        super().__init__(
            kind, epochs=epochs, lr=lr, batch_size=batch_size, max_len=max_len, lambda_rationale=lambda_rationale
        )
        self.models: dict[str, BiEncoderRationale] = {}
        self.tokenizer: Any = None

    def _tok(self, texts) -> tuple[torch.Tensor, torch.Tensor]:
        enc = self.tokenizer(
            list(texts), truncation=True, max_length=self.params["max_len"], padding="max_length", return_tensors="pt"
        )
        return enc["input_ids"].to(self.device), enc["attention_mask"].to(self.device)

    def _rationale_tags(self, responses, rationales) -> torch.Tensor:
        """Token tags: 1 inside a rationale span of the response (EPITOME's `rationales`)."""
        enc = self.tokenizer(
            list(responses),
            truncation=True,
            max_length=self.params["max_len"],
            padding="max_length",
            return_offsets_mapping=True,
        )
        tags = np.zeros((len(responses), self.params["max_len"]), dtype=np.int64)
        for i, (text, spans) in enumerate(zip(responses, rationales)):
            for span in filter(None, str(spans or "").split("|")):
                start = text.find(span.strip())
                if start < 0:
                    continue
                end = start + len(span.strip())
                for j, (a, b) in enumerate(enc["offset_mapping"][i]):
                    tags[i, j] = int(b > a and a >= start and b <= end) or tags[i, j]
        return torch.from_numpy(tags).to(self.device)

    per_mechanism = True
    clip_norm: float | None = None  # gradient-norm clipping (the epitome kind clips at 1.0, as EPITOME does)
    reseed_per_mechanism = False  # the epitome kind starts each mechanism's model from the same seed

    def _source(self) -> str:
        return self.hub_id

    def _new_model(self) -> nn.Module:
        from transformers import AutoModel

        return BiEncoderRationale(AutoModel.from_pretrained(self.hub_id), AutoModel.from_pretrained(self.hub_id))

    def _optimizer(self, model: nn.Module) -> torch.optim.Optimizer:
        return torch.optim.AdamW(model.parameters(), lr=self.params["lr"])

    def _autocast(self) -> Any:
        """The precision of training and prediction (float32 here; the epitome kind may take bf16 autocast)."""
        return contextlib.nullcontext()

    def _level_weight(self, levels: Any, mech: str) -> torch.Tensor | None:
        """Per-level weights of `mech`'s level loss (None: unweighted; the epitome kind may balance them)."""
        return None

    def _loss(self, out: dict, gold: torch.Tensor, tags: torch.Tensor, r_mask: torch.Tensor, level_weight=None):
        rationale = nn.functional.cross_entropy(out["rationale"][r_mask.bool()], tags[r_mask.bool()])
        level = nn.functional.cross_entropy(out["level"], gold, weight=level_weight)
        return level + self.params["lambda_rationale"] * rationale

    def fit(self, train: pd.DataFrame, val: pd.DataFrame) -> None:
        from transformers import AutoTokenizer

        seed, p = self.meta.get("seed", 0), self.params
        torch.manual_seed(seed)
        self.tokenizer = AutoTokenizer.from_pretrained(self._source())
        steps = math.ceil(len(train) / p["batch_size"])
        for mech in self.mechanisms:
            if self.reseed_per_mechanism:
                torch.manual_seed(seed)
            rationales = train.get(f"{mech}_rationales", pd.Series([""] * len(train)))
            model = self._new_model().to(self.device)
            opt = self._optimizer(model)
            sched = linear_schedule(opt, 0, steps * p["epochs"])
            level_weight = self._level_weight(train[mech].to_numpy(), mech)
            for epoch in range(p["epochs"]):
                model.train()
                order = np.random.default_rng([seed, epoch]).permutation(len(train))
                for step in tqdm(range(steps), desc=f"{self.kind} {mech} epoch {epoch + 1}", leave=False):
                    idx = order[step * p["batch_size"] : (step + 1) * p["batch_size"]]
                    rows = train.iloc[idx]
                    s_ids, s_mask = self._tok(rows["seeker_post"])
                    r_ids, r_mask = self._tok(rows["response_post"])
                    gold = torch.tensor(rows[mech].to_numpy(), device=self.device)
                    tags = self._rationale_tags(rows["response_post"].tolist(), rationales.iloc[idx].tolist())
                    with self._autocast():
                        out = model({"s_ids": s_ids, "s_mask": s_mask, "r_ids": r_ids, "r_mask": r_mask})
                        loss = self._loss(out, gold, tags, r_mask, level_weight)
                    opt.zero_grad()
                    loss.backward()
                    if self.clip_norm is not None:
                        nn.utils.clip_grad_norm_(model.parameters(), self.clip_norm)
                    opt.step()
                    sched.step()
            self.models[mech] = model  # type: ignore[assignment]

    @torch.no_grad()
    def _predict(self, seekers, responses):
        out = {}
        for mech, model in self.models.items():
            model.eval()
            preds = []
            for i in range(0, len(responses), 64):
                s_ids, s_mask = self._tok(seekers[i : i + 64])
                r_ids, r_mask = self._tok(responses[i : i + 64])
                with self._autocast():
                    logits = model({"s_ids": s_ids, "s_mask": s_mask, "r_ids": r_ids, "r_mask": r_mask})["level"]
                preds.append(logits.argmax(-1).cpu().numpy())
            out[mech] = np.concatenate(preds)
        return out

    def _save(self, folder: Path) -> None:
        from safetensors.torch import save_file

        for mech, model in self.models.items():
            save_file(
                {k: v.contiguous().cpu() for k, v in model.state_dict().items()}, str(folder / f"{mech}.safetensors")
            )
        self.tokenizer.save_pretrained(folder / "tokenizer")

    def _load(self, folder: Path) -> None:
        from safetensors.torch import load_file
        from transformers import AutoConfig, AutoModel, AutoTokenizer

        self.tokenizer = AutoTokenizer.from_pretrained(folder / "tokenizer")
        cfg = AutoConfig.from_pretrained(self.hub_id)
        for mech in MECHANISMS:
            model = BiEncoderRationale(AutoModel.from_config(cfg), AutoModel.from_config(cfg))
            model.load_state_dict(load_file(str(folder / f"{mech}.safetensors")))
            self.models[mech] = model.to(self.device)
