"""Dimensional emotion encoders behind one interface: `embed(waves) -> (embedding, avd)`.

`avd` columns are always [arousal, valence, dominance] in 0-1 (the audeering model
outputs [arousal, dominance, valence]; it is reordered here).
- `W2v2Dimensional` (paper): audeering wav2vec2-large-robust-12-ft-emotion-msp-dim, the
  mean-pooled last hidden state (1024-d) and its regression head, frozen.
- `CompactDimensional` (cpu, smoke): a small log-mel CNN trained in a stage 0 on the train
  split's A/V/D targets, then frozen. Corpora without A/V/D annotations get per-category
  pseudo-targets (`CATEGORY_AVD`, after Russell's circumplex and the NRC VAD lexicon),
  so on such corpora the encoder learns category-separating acoustics.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from relm.config import EmotionEncoderCfg
from relm.errors import RelmError
from relm.registry import Registry

# Pseudo A/V/D (0-1) per category: arousal, valence, dominance.
CATEGORY_AVD = {
    "neutral": (0.45, 0.50, 0.50),
    "happy": (0.70, 0.90, 0.65),
    "angry": (0.85, 0.15, 0.80),
    "sad": (0.25, 0.15, 0.25),
    "surprise": (0.80, 0.65, 0.50),
}


def category_avd(labels: list[str]) -> np.ndarray:
    try:
        return np.array([CATEGORY_AVD[lb] for lb in labels], dtype=np.float32)
    except KeyError as exc:
        raise RelmError(f"no pseudo A/V/D for label {exc.args[0]!r}") from None


class EmotionEncoder(nn.Module):
    """Waveforms -> (embedding, [A, V, D]); `fit` for the kinds trained in stage 0."""

    def embed(self, waves: list[np.ndarray]) -> tuple[torch.Tensor, torch.Tensor]:
        raise NotImplementedError

    def fit(
        self,
        waves: list[np.ndarray],
        avd: np.ndarray,
        epochs: int,
        lr: float,
        batch_size: int = 32,
        seed: int = 0,
        progress: bool = True,
    ) -> list[float]:
        raise RelmError(f"{type(self).__name__} is pretrained; stage 0 trains only the compact encoder")


class CompactDimensional(EmotionEncoder):
    """Log-mel (64) -> 3 x Conv1d + GELU -> masked mean pool -> embedding; linear A/V/D head."""

    def __init__(self, dim: int = 128, n_mels: int = 64):
        super().__init__()
        import torchaudio

        self.mel = torchaudio.transforms.MelSpectrogram(16000, n_fft=400, hop_length=160, n_mels=n_mels)
        self.net = nn.Sequential(
            nn.Conv1d(n_mels + 1, dim, 5, padding=2),
            nn.GELU(),
            nn.Conv1d(dim, dim, 5, stride=2, padding=2),
            nn.GELU(),
            nn.Conv1d(dim, dim, 5, stride=2, padding=2),
            nn.GELU(),
        )
        self.norm = nn.BatchNorm1d(n_mels + 1)
        self.head = nn.Linear(dim, 3)
        self.dim = dim

    def _features(self, waves: list[np.ndarray]) -> tuple[torch.Tensor, torch.Tensor]:
        device = self.head.weight.device
        n = max(len(w) for w in waves)
        batch = torch.zeros(len(waves), n)
        for i, w in enumerate(waves):
            batch[i, : len(w)] = torch.from_numpy(np.asarray(w, dtype=np.float32))
        mel = torch.log(self.mel(batch.to(device)) + 1e-6)  # (B, n_mels, T)
        # Absolute loudness matters for emotion; keep the frame energy as an extra channel.
        energy = mel.mean(dim=1, keepdim=True)
        frames = torch.tensor([len(w) // 160 + 1 for w in waves], device=device)
        mask = torch.arange(mel.shape[-1], device=device)[None] < frames[:, None]
        return self.norm(torch.cat([mel, energy], 1)), mask

    def forward(self, waves: list[np.ndarray]) -> tuple[torch.Tensor, torch.Tensor]:
        x, mask = self._features(waves)
        h = self.net(x)  # (B, dim, T/4)
        m = mask[:, ::4][:, : h.shape[-1]].float().unsqueeze(1)
        pooled = (h * m).sum(-1) / m.sum(-1).clamp(min=1)
        return pooled, torch.sigmoid(self.head(pooled))

    @torch.no_grad()
    def embed(self, waves: list[np.ndarray]) -> tuple[torch.Tensor, torch.Tensor]:
        """(embedding, [A, V, D]) per waveform, on the CPU whatever the encoder's device."""
        self.eval()
        emb, avd = self(waves)
        return emb.cpu(), avd.cpu()

    def fit(
        self,
        waves: list[np.ndarray],
        avd: np.ndarray,
        epochs: int,
        lr: float,
        batch_size: int = 32,
        seed: int = 0,
        progress: bool = True,
    ) -> list[float]:
        """Stage 0: regress A/V/D on the train split; returns the loss per epoch."""
        from tqdm import tqdm

        torch.manual_seed(seed)
        rng = np.random.default_rng(seed)
        opt = torch.optim.AdamW(self.parameters(), lr=lr, weight_decay=1e-4)
        target = torch.as_tensor(avd, dtype=torch.float32, device=self.head.weight.device)
        losses = []
        for _ in tqdm(range(epochs), desc="stage 0: emotion encoder", unit="epoch", disable=not progress):
            self.train()
            order, total = rng.permutation(len(waves)), 0.0
            for i in range(0, len(waves), batch_size):
                idx = order[i : i + batch_size]
                _, pred = self([waves[j] for j in idx])
                loss = nn.functional.mse_loss(pred, target[idx])
                opt.zero_grad()
                loss.backward()
                opt.step()
                total += loss.item() * len(idx)
            losses.append(total / len(waves))
        self.eval().requires_grad_(False)
        return losses


class W2v2Dimensional(EmotionEncoder):
    """audeering's wav2vec2 dimensional model (model card's `EmotionModel`), frozen."""

    def __init__(self, path: str):
        super().__init__()
        from transformers import Wav2Vec2FeatureExtractor, Wav2Vec2Model

        self.processor = Wav2Vec2FeatureExtractor.from_pretrained(path)
        self.wav2vec2 = Wav2Vec2Model.from_pretrained(path)
        hidden = self.wav2vec2.config.hidden_size
        self.dense, self.out_proj = nn.Linear(hidden, hidden), nn.Linear(hidden, 3)
        self._load_head(path)
        self.dim = hidden
        self.eval().requires_grad_(False)

    def _load_head(self, path: str) -> None:
        from pathlib import Path

        from safetensors.torch import load_file

        files = list(Path(path).glob("*.safetensors"))
        if files:
            state = load_file(str(files[0]))
        else:
            state = torch.load(Path(path) / "pytorch_model.bin", map_location="cpu", weights_only=True)
        self.dense.load_state_dict({"weight": state["classifier.dense.weight"], "bias": state["classifier.dense.bias"]})
        self.out_proj.load_state_dict(
            {"weight": state["classifier.out_proj.weight"], "bias": state["classifier.out_proj.bias"]}
        )

    @torch.no_grad()
    def embed(self, waves: list[np.ndarray]) -> tuple[torch.Tensor, torch.Tensor]:
        device = self.dense.weight.device
        inputs = self.processor(
            [np.asarray(w, np.float32) for w in waves],
            sampling_rate=16000,
            return_tensors="pt",
            padding=True,
            return_attention_mask=True,
        )
        out = self.wav2vec2(inputs.input_values.to(device), attention_mask=inputs.attention_mask.to(device))
        h = out.last_hidden_state
        # The frames the conv front end makes of each utterance's own samples: a padded frame never enters the
        # mean, so an utterance's vector is the same alone and in any batch.
        samples = torch.tensor([len(w) for w in waves], dtype=torch.long)
        lengths = self.wav2vec2._get_feat_extract_output_lengths(samples).to(device)  # type: ignore[arg-type]
        mask = (torch.arange(h.shape[1], device=device)[None] < lengths[:, None]).float().unsqueeze(-1)
        pooled = (h * mask).sum(1) / mask.sum(1).clamp(min=1)
        adv = self.out_proj(torch.tanh(self.dense(pooled)))  # [arousal, dominance, valence]
        return pooled.cpu(), adv[:, [0, 2, 1]].cpu()


@dataclass(frozen=True)
class EmotionEncoderSpec:
    name: str
    build: Callable[[EmotionEncoderCfg], EmotionEncoder]
    trained_in_stage0: bool  # True: trained on the preset's pre-training corpus before the sweep, then frozen
    description: str
    trained_on: str = ""  # pretrained kinds: the corpus their weights were trained on (recorded in results)


def _w2v2(cfg: EmotionEncoderCfg) -> EmotionEncoder:
    from relm.models.sources import resolve

    return W2v2Dimensional(str(resolve(cfg.model).path))


EMOTION_ENCODERS: Registry[EmotionEncoderSpec] = Registry("emotion encoder kind")
for _spec in (
    EmotionEncoderSpec(
        "compact",
        lambda cfg: CompactDimensional(dim=cfg.dim),
        True,
        "log-mel CNN trained in stage 0 on the pre-training corpus's A/V/D targets, then frozen",
    ),
    EmotionEncoderSpec(
        "w2v2",
        _w2v2,
        False,
        "audeering wav2vec2 dimensional model, frozen (paper)",
        trained_on="msp-podcast (audeering's release)",
    ),
):
    EMOTION_ENCODERS.register(_spec.name, _spec)


def build_emotion_encoder(cfg: EmotionEncoderCfg) -> EmotionEncoder:
    return EMOTION_ENCODERS.get(cfg.kind).build(cfg)
