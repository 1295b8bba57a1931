"""Fine-tuned transformer EPITOME scorers.

`minilm`: all-MiniLM-L6-v2 reads the (seeker, response) pair as one sequence; one shared
encoder with a 3-way head per mechanism (multi-task: one forward pass serves ER, IP and EX,
a third of the cost of three models on CPU).
`roberta` (`relm.scoring.empathy_roberta`): the EPITOME recipe, for GPUs.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn
from tqdm import tqdm

from relm.batching import length_buckets
from relm.machine import native_bf16
from relm.models import sources
from relm.scoring.empathy_base import EmpathyScorer, evaluate
from relm.scoring.epitome_data import MECHANISMS


class PairClassifier(nn.Module):
    """One encoder over `[CLS] seeker [SEP] response [SEP]`, a linear head per mechanism."""

    def __init__(self, encoder: Any, mechanisms=MECHANISMS, dropout: float = 0.1):
        super().__init__()
        self.encoder = encoder
        hidden = encoder.config.hidden_size
        self.drop = nn.Dropout(dropout)
        self.heads = nn.ModuleDict({m: nn.Linear(hidden, 3) for m in mechanisms})

    def forward(self, batch: dict) -> dict[str, torch.Tensor]:
        out = self.encoder(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
        mask = batch["attention_mask"].unsqueeze(-1).float()
        pooled = (out.last_hidden_state * mask).sum(1) / mask.sum(1).clamp(min=1)  # MiniLM's mean pooling
        pooled = self.drop(pooled)
        return {m: head(pooled) for m, head in self.heads.items()}


def _class_weights(labels: np.ndarray) -> torch.Tensor:
    counts = np.bincount(labels, minlength=3).astype(float)
    w = counts.sum() / (3 * np.maximum(counts, 1))
    return torch.tensor(np.sqrt(w), dtype=torch.float32)  # sqrt: balanced, without over-weighting rare levels


def linear_schedule(opt, warmup: int, total: int):
    def f(step: int) -> float:
        if step < warmup:
            return (step + 1) / max(1, warmup)
        return max(0.0, (total - step) / max(1, total - warmup))

    return torch.optim.lr_scheduler.LambdaLR(opt, f)


def cpu_precision(wanted: str) -> str:
    """`auto` resolved on this CPU (bf16 autocast only where bf16 matmuls are native); else as given."""
    if wanted != "auto":
        return wanted
    return "bf16-mixed" if native_bf16() else "32-true"


def precision_autocast(precision: str, device_type: str = "cpu") -> torch.autocast:
    """The autocast context of a neural kind's resolved `precision`: bf16 for `bf16-mixed`, off else."""
    return torch.autocast(device_type, dtype=torch.bfloat16, enabled=precision == "bf16-mixed")


class MiniLMScorer(EmpathyScorer):
    model_name = "all-minilm-l6-v2"
    watches_validation = True  # keeps the epoch with the best held-out macro-F1

    def __init__(
        self,
        kind: str,
        epochs: int = 3,
        lr: float = 5e-5,
        batch_size: int = 32,
        max_len: int = 128,
        threads: int = 2,
        precision: str = "auto",
    ):
        # The resolved precision is a parameter, so a bf16-trained and a float32-trained scorer differ in identity.
        super().__init__(
            kind,
            epochs=epochs,
            lr=lr,
            batch_size=batch_size,
            max_len=max_len,
            threads=threads,
            precision=cpu_precision(precision),
        )
        self.model: Any = None  # PairClassifier once built or loaded
        self.tokenizer: Any = None

    def _autocast(self):
        return precision_autocast(self.params["precision"])

    def _lengths(self, seekers, responses) -> np.ndarray:
        enc = self.tokenizer(
            list(seekers), list(responses), truncation="longest_first", max_length=self.params["max_len"]
        )
        return np.array([len(ids) for ids in enc["input_ids"]])

    def _build(self, path: Path | None = None) -> None:
        from transformers import AutoModel, AutoTokenizer

        src = sources.resolve(self.model_name).path
        self.tokenizer = AutoTokenizer.from_pretrained(path or src)
        self.model = PairClassifier(AutoModel.from_pretrained(src))
        self.meta["encoder"] = str(src)

    def _encode(self, seekers, responses) -> dict:
        enc = self.tokenizer(
            list(seekers),
            list(responses),
            truncation="longest_first",
            max_length=self.params["max_len"],
            padding=True,
            return_tensors="pt",
        )
        return {"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"]}

    def fit(self, train: pd.DataFrame, val: pd.DataFrame) -> None:
        torch.set_num_threads(self.params["threads"])
        torch.manual_seed(self.meta.get("seed", 0))
        self._build()
        p = self.params
        weights = {m: _class_weights(train[m].to_numpy()) for m in MECHANISMS}
        opt = torch.optim.AdamW(self.model.parameters(), lr=p["lr"], weight_decay=0.01)
        steps_per_epoch = math.ceil(len(train) / p["batch_size"])
        sched = linear_schedule(opt, int(0.1 * steps_per_epoch * p["epochs"]), steps_per_epoch * p["epochs"])
        rng = np.random.default_rng(self.meta.get("seed", 0))
        lengths = self._lengths(train["seeker_post"], train["response_post"])
        best, best_state, history = -1.0, None, []
        for epoch in range(p["epochs"]):
            self.model.train()
            batches = length_buckets(lengths, p["batch_size"], rng)
            bar = tqdm(batches, desc=f"minilm epoch {epoch + 1}/{p['epochs']}", unit="batch")
            for idx in bar:
                rows = train.iloc[idx]
                with self._autocast():
                    logits = self.model(self._encode(rows["seeker_post"], rows["response_post"]))
                loss = torch.stack(
                    [
                        nn.functional.cross_entropy(
                            logits[m].float(), torch.tensor(rows[m].to_numpy()), weight=weights[m]
                        )
                        for m in MECHANISMS
                    ]
                ).sum()
                opt.zero_grad()
                loss.backward()
                nn.utils.clip_grad_norm_(self.model.parameters(), 1.0)
                opt.step()
                sched.step()
                bar.set_postfix(loss=f"{loss.item():.3f}")
            scores = evaluate(self, val)
            mean_f1 = float(np.mean([scores[m]["macro_f1"] for m in MECHANISMS]))
            history.append({"epoch": epoch + 1, "val_macro_f1": mean_f1})
            tqdm.write(
                f"epoch {epoch + 1}: val macro-F1 " + ", ".join(f"{m} {scores[m]['macro_f1']:.3f}" for m in MECHANISMS)
            )
            if mean_f1 > best:
                best, best_state = mean_f1, {k: v.clone() for k, v in self.model.state_dict().items()}
        self.model.load_state_dict(best_state)
        self.meta["history"] = history

    @torch.no_grad()
    def _predict(self, seekers, responses):
        self.model.eval()
        out = {m: np.zeros(len(responses), dtype=np.int64) for m in MECHANISMS}
        order = np.argsort(self._lengths(seekers, responses), kind="stable")  # batches of similar length
        for i in range(0, len(order), 64):
            idx = order[i : i + 64]
            with self._autocast():
                logits = self.model(self._encode([seekers[j] for j in idx], [responses[j] for j in idx]))
            for m in MECHANISMS:
                out[m][idx] = logits[m].float().argmax(-1).numpy()
        return out

    def _save(self, folder: Path) -> None:
        from safetensors.torch import save_file

        save_file({k: v.contiguous() for k, v in self.model.state_dict().items()}, str(folder / "model.safetensors"))
        self.tokenizer.save_pretrained(folder / "tokenizer")
        (folder / "encoder_config.json").write_text(json.dumps(self.model.encoder.config.to_dict()))

    def _load(self, folder: Path) -> None:
        from safetensors.torch import load_file
        from transformers import AutoConfig, AutoModel, AutoTokenizer

        cfg = AutoConfig.for_model(**json.loads((folder / "encoder_config.json").read_text()))
        self.model = PairClassifier(AutoModel.from_config(cfg))
        self.model.load_state_dict(load_file(str(folder / "model.safetensors")))
        self.tokenizer = AutoTokenizer.from_pretrained(folder / "tokenizer")
