"""The `epitome` scorer: EPITOME's released bi-encoder (Sharma et al. 2020, behavioral-data/Empathy-Mental-Health,
`src/models/models.py` and `src/train.py`), layer for layer, over any transformers encoder.

Per mechanism: a seeker encoder (frozen, as `train.py` freezes it) and a response encoder (fine-tuned), 64 tokens
each; the response's token states attend to the seeker's through one single-head attention (q, k, v and out
Linear; dropout 0.1 on the attention weights; the seeker's padding is *not* masked, as released); the attended
context is added to the response states after a dropout (`train.py --dropout`, 0.1); the level head reads the
first token: dropout 0.1, dense, ReLU, dropout 0.1, a 3-way projection; the rationale head tags every response
token after the same dropout. Loss 0.5 x level CE + 0.5 x rationale CE over the response's real tokens; AdamW
(lr 2e-5, eps 1e-8), linear decay without warm-up, gradient norm clipped at 1.0, batch 32, 4 epochs; new layers
initialised N(0, 0.02) with zero biases. `encoder`: a relm model name (default all-MiniLM-L6-v2, a PyPI copy, for
CPUs) or a hub id (`roberta-base`, the paper's, for GPUs). `class_weight: balanced` (not EPITOME's) weighs the level
loss by n / (3 n_level), as the tfidf kind's regression does, so that a rare level gets predicted; a mapping
(`{ip: balanced, ex: balanced}`, the cpu preset's) weighs only the mechanisms it names.
`precision: bf16-mixed` (not EPITOME's, which trains in float32) trains and predicts under bf16 autocast.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from relm.errors import RelmError
from relm.scoring.empathy_neural import precision_autocast
from relm.scoring.empathy_roberta import RobertaScorer
from relm.scoring.epitome_data import MECHANISMS

CLASS_WEIGHTS = (None, "balanced")  # None: EPITOME's unweighted level loss
PRECISIONS = ("32-true", "bf16-mixed")  # 32-true: the release's float32


def class_weight_of(kind: str, value: Any) -> str | dict[str, str] | None:
    """`class_weight` as the identity keeps it: None, "balanced" (every mechanism), or {mechanism: "balanced"} in
    EPITOME's order for some of them (all three named is "balanced", an empty mapping None)."""
    if value in CLASS_WEIGHTS:
        return value
    if isinstance(value, dict) and set(value) <= set(MECHANISMS) and set(value.values()) == {"balanced"}:
        return "balanced" if len(value) == len(MECHANISMS) else {m: "balanced" for m in MECHANISMS if m in value}
    if value == {}:
        return None
    raise RelmError(
        f"scorer kind {kind!r}: class_weight is one of {CLASS_WEIGHTS} or a mapping of mechanisms "
        f"({', '.join(MECHANISMS)}) to 'balanced', not {value!r}"
    )


class EpitomeAttention(nn.Module):
    """EPITOME's `MultiHeadAttention` with one head: no padding mask, dropout on the attention weights."""

    def __init__(self, hidden: int, heads: int = 1, dropout: float = 0.1):
        super().__init__()
        self.heads, self.d_k = heads, hidden // heads
        self.q_linear, self.k_linear, self.v_linear = (nn.Linear(hidden, hidden) for _ in range(3))
        self.dropout = nn.Dropout(dropout)
        self.out = nn.Linear(hidden, hidden)

    def forward(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        bs = q.size(0)
        q, k, v = (
            lin(x).view(bs, -1, self.heads, self.d_k).transpose(1, 2)
            for lin, x in ((self.q_linear, q), (self.k_linear, k), (self.v_linear, v))
        )
        weights = self.dropout(torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(self.d_k), dim=-1))
        return self.out((weights @ v).transpose(1, 2).reshape(bs, -1, self.heads * self.d_k))


class EpitomeHead(nn.Module):
    """EPITOME's `RobertaClassificationHead`: dropout, dense, ReLU, dropout, projection to the 3 levels."""

    def __init__(self, hidden: int, dropout: float = 0.1, levels: int = 3):
        super().__init__()
        self.dense, self.dropout, self.out_proj = (
            nn.Linear(hidden, hidden),
            nn.Dropout(dropout),
            nn.Linear(hidden, levels),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out_proj(self.dropout(torch.relu(self.dense(self.dropout(x)))))


class EpitomeBiEncoder(nn.Module):
    """EPITOME's `BiEncoderAttentionWithRationaleClassification` over two encoders (the seeker's frozen)."""

    def __init__(self, seeker_enc: Any, response_enc: Any, dropout: float = 0.1):
        super().__init__()
        hidden = response_enc.config.hidden_size
        self.dropout = nn.Dropout(dropout)
        self.rationale_classifier = nn.Linear(hidden, 2)
        self.attn = EpitomeAttention(hidden)
        self.empathy_classifier = EpitomeHead(hidden)
        self.apply(_init_weights)  # before the encoders are attached: they keep their pretrained weights
        self.seeker_encoder, self.responder_encoder = seeker_enc.requires_grad_(False), response_enc

    def forward(self, batch: dict) -> dict[str, torch.Tensor]:
        s = self.seeker_encoder(input_ids=batch["s_ids"], attention_mask=batch["s_mask"]).last_hidden_state
        r = self.responder_encoder(input_ids=batch["r_ids"], attention_mask=batch["r_mask"]).last_hidden_state
        r = r + self.dropout(self.attn(r, s, s))
        return {"level": self.empathy_classifier(r[:, 0]), "rationale": self.rationale_classifier(self.dropout(r))}

    @staticmethod
    def loss(
        out: dict,
        gold: torch.Tensor,
        tags: torch.Tensor,
        r_mask: torch.Tensor,
        weights=(0.5, 0.5),
        level_weight: torch.Tensor | None = None,
    ):
        """lambda_EI x level CE + lambda_RE x rationale CE over the response's real tokens (`train.py`'s 0.5, 0.5);
        `level_weight` weighs the level CE per class (None, as released: unweighted)."""
        active = r_mask.bool()
        rationale = nn.functional.cross_entropy(out["rationale"][active], tags[active])
        level = nn.functional.cross_entropy(out["level"], gold, weight=level_weight)
        return weights[0] * level + weights[1] * rationale


def _init_weights(module: nn.Module) -> None:
    if isinstance(module, nn.Linear):
        module.weight.data.normal_(mean=0.0, std=0.02)
        if module.bias is not None:
            module.bias.data.zero_()


class EpitomeScorer(RobertaScorer):
    """EPITOME's released recipe over `encoder`; its tokenizer, rationale tags and prediction are the roberta kind's."""

    def __init__(
        self,
        kind: str,
        encoder: str = "all-minilm-l6-v2",
        epochs: int = 4,
        lr: float = 2e-5,
        batch_size: int = 32,
        max_len: int = 64,
        lambda_rationale: float = 0.5,
        dropout: float = 0.1,
        class_weight: str | dict[str, str] | None = None,
        precision: str = "32-true",
    ):
        super().__init__(kind, epochs, lr, batch_size, max_len, lambda_rationale)
        class_weight = class_weight_of(kind, class_weight)
        if precision not in PRECISIONS:
            raise RelmError(f"scorer kind {kind!r}: precision is one of {PRECISIONS}, not {precision!r}")
        self.params |= {"encoder": encoder, "dropout": dropout}
        # Each only when it differs from the release, so that the released recipe's identity (and cached folds) stay.
        if class_weight:
            self.params["class_weight"] = class_weight
        if precision != "32-true":
            self.params["precision"] = precision
        self.models: dict[str, EpitomeBiEncoder] = {}  # type: ignore[assignment]

    def _source(self) -> str:
        """A relm model name resolves to its local folder; anything else is a hub id or a folder."""
        from relm.models.sources import MODELS, resolve

        name = self.params["encoder"]
        return str(resolve(name).path) if name in MODELS else name

    clip_norm = 1.0
    reseed_per_mechanism = True

    def build(self, from_config: bool = False) -> EpitomeBiEncoder:
        from transformers import AutoConfig, AutoModel

        src = self._source()
        make = (
            (lambda: AutoModel.from_config(AutoConfig.from_pretrained(src)))
            if from_config
            else (lambda: AutoModel.from_pretrained(src))
        )
        return EpitomeBiEncoder(make(), make(), self.params["dropout"]).to(self.device)

    def _new_model(self) -> nn.Module:
        return self.build()

    def _optimizer(self, model: nn.Module) -> torch.optim.Optimizer:
        trained = [q for q in model.parameters() if q.requires_grad]  # the seeker encoder is frozen
        return torch.optim.AdamW(trained, lr=self.params["lr"], eps=1e-8)

    def _autocast(self) -> Any:
        """`precision: bf16-mixed`: bf16 autocast on the device (not EPITOME's; ~2x faster for a base-size encoder
        on a CPU with AMX); float32 else, as released."""
        return precision_autocast(self.params.get("precision", "32-true"), torch.device(self.device).type)

    def _level_weight(self, levels: Any, mech: str) -> torch.Tensor | None:
        """`class_weight: balanced` (for `mech`): n / (3 n_level) over the training rows, sklearn's (and the tfidf
        kind's) rule."""
        weight = self.params.get("class_weight")
        if weight != "balanced" and mech not in (weight or {}):
            return None
        counts = np.bincount(np.asarray(levels, dtype=np.int64), minlength=3)
        return torch.tensor(len(levels) / (3 * np.maximum(counts, 1)), dtype=torch.float32, device=self.device)

    def _loss(self, out: dict, gold: torch.Tensor, tags: torch.Tensor, r_mask: torch.Tensor, level_weight=None):
        weight = self.params["lambda_rationale"]
        return EpitomeBiEncoder.loss(out, gold, tags, r_mask, (1 - weight, weight), level_weight)

    def _load(self, folder: Path) -> None:
        from safetensors.torch import load_file
        from transformers import AutoTokenizer

        self.tokenizer = AutoTokenizer.from_pretrained(folder / "tokenizer")
        for mech in MECHANISMS:
            model = self.build(from_config=True)
            model.load_state_dict(load_file(str(folder / f"{mech}.safetensors")))
            self.models[mech] = model


# An authors' checkpoint: `torch.save(model.state_dict(), path)` of `BiEncoderAttentionWithRationaleClassification`,
# one file per mechanism. Its encoders sit one level deeper (`SeekerEncoder.roberta`), and its unused `norm` layer
# has weights; the rest has relm's names.
CHECKPOINT_SUFFIXES = (".pth", ".pt", ".bin")
_NESTED = {"seeker_encoder.roberta.": "seeker_encoder.", "responder_encoder.roberta.": "responder_encoder."}
_UNUSED = ("norm.alpha", "norm.bias")  # `self.norm` is built but never called in `forward`


def checkpoint_files(folder: Path) -> dict[str, Path]:
    """The folder's file per mechanism: a name holding ER, IP or EX as a word (`reddit_ER.pth`, `ip.pt`)."""
    import re

    if not folder.is_dir():
        raise RelmError(f"{folder}: no such checkpoint folder")
    found: dict[str, list[Path]] = {m: [] for m in MECHANISMS}
    for path in sorted(folder.iterdir()):
        if path.suffix in CHECKPOINT_SUFFIXES:
            words = {w.lower() for w in re.split(r"[^A-Za-z0-9]+", path.stem)}
            for mech in MECHANISMS:
                if mech in words:
                    found[mech].append(path)
    for mech, paths in found.items():
        if len(paths) != 1:
            names = ", ".join(p.name for p in paths) or "none"
            raise RelmError(
                f"{folder}: needs one {'/'.join(CHECKPOINT_SUFFIXES)} file naming {mech.upper()} "
                f"(as EPITOME's test.py --{mech.upper()}_model_path), found {names}"
            )
    return {m: p[0] for m, p in found.items()}


def native_state(state: dict[str, torch.Tensor], path: Path, expected: set[str]) -> dict[str, torch.Tensor]:
    """An EPITOME state dict under relm's names; a key relm's model lacks, or one it needs, fails in one line."""
    out = {}
    for key, value in state.items():
        if key in _UNUSED:
            continue
        for theirs, ours in _NESTED.items():
            if key.startswith(theirs):
                key = ours + key[len(theirs) :]
        out[key] = value
    stale_buffers = {k for k in out if k.endswith("embeddings.position_ids") and k not in expected}
    unknown, missing = sorted(set(out) - expected - stale_buffers), sorted(expected - set(out))
    if unknown or missing:
        what = f"unexpected {unknown[:3]}" if unknown else f"missing {missing[:3]}"
        raise RelmError(f"{path}: not an EPITOME bi-encoder over this encoder ({what})")
    return {k: v for k, v in out.items() if k not in stale_buffers}


def load_checkpoint(folder: str | Path, kind: str, encoder: str = "roberta-base", device: Any = "cpu") -> EpitomeScorer:
    """An externally trained EPITOME checkpoint folder, as is: the authors' three state dicts (their `train.py
    --save_model`), over `encoder`'s config and tokenizer (roberta-base, as theirs). Its identity is its files'
    content; it has no training rows, so every pair it is evaluated on counts as unseen."""
    from transformers import AutoTokenizer

    from relm.keys import content_key, file_sha256

    folder = Path(folder)
    files = checkpoint_files(folder)
    scorer = EpitomeScorer(kind, encoder=encoder)
    scorer.device = device
    scorer.tokenizer = AutoTokenizer.from_pretrained(scorer._source())
    for mech, path in files.items():
        model = scorer.build(from_config=True)
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # a pickle of something else, or a damaged file
            raise RelmError(f"{path}: not a readable torch state dict ({type(exc).__name__}: {exc})") from None
        model.load_state_dict(native_state(state, path, set(model.state_dict())))
        scorer.models[mech] = model.eval()
    digest = content_key(*(file_sha256(p) for p in files.values()))
    scorer.meta |= {"data_hash": f"checkpoint:{digest}", "checkpoint": str(folder), "seed": 0, "train_keys": []}
    return scorer
