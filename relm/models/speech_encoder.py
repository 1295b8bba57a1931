"""Frozen Whisper encoder: waveform -> frames (50 per second), trimmed to the valid length."""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from relm.config import SpeechEncoderCfg
from relm.errors import RelmError
from relm.models.llm import HFModel

SAMPLES_PER_FRAME = 320  # 16 kHz / 50 Hz after Whisper's stride-2 conv


class WhisperFrames(nn.Module):
    """Wraps a `WhisperEncoder`. With `pad_to_30s` it runs Whisper's native 30 s window (as
    BLSP/RE-LLM do) and trims; otherwise it runs only the utterance's own frames (the
    positional table is sliced), about 10x less compute for short utterances on CPU."""

    def __init__(self, encoder: HFModel, feature_extractor, pad_to_30s: bool):
        super().__init__()
        self.encoder: HFModel = encoder.eval().requires_grad_(False)
        self.fx = feature_extractor
        self.pad_to_30s = pad_to_30s
        self.dim = encoder.config.d_model

    @classmethod
    def build(cls, cfg: SpeechEncoderCfg) -> WhisperFrames:
        from transformers import WhisperConfig, WhisperFeatureExtractor, WhisperModel
        from transformers.models.whisper.modeling_whisper import WhisperEncoder

        from relm.models.sources import resolve

        res = resolve(cfg.model)
        if res.source == "random":
            torch.manual_seed(0)  # the random "tiny" encoder must be the same in every process
            config = WhisperConfig(**cfg.tiny)
            fx = WhisperFeatureExtractor(feature_size=config.num_mel_bins)
            return cls(WhisperEncoder(config), fx, cfg.pad_to_30s)
        return cls(
            WhisperModel.from_pretrained(res.path).get_encoder(),
            WhisperFeatureExtractor.from_pretrained(res.path),
            cfg.pad_to_30s,
        )

    @staticmethod
    def n_frames(n_samples: int) -> int:
        return math.ceil(n_samples / SAMPLES_PER_FRAME)

    @torch.no_grad()
    def forward(self, waves: list[np.ndarray]) -> list[torch.Tensor]:
        """One (frames, d_model) tensor per waveform (16 kHz float32)."""
        if not waves:
            return []
        max_s = 30 * 16000
        too_long = [i for i, w in enumerate(waves) if len(w) > max_s]
        if too_long:
            seconds = len(waves[too_long[0]]) / 16000
            raise RelmError(f"Whisper encodes at most 30 s; utterance #{too_long[0]} is {seconds:.1f} s")
        feats = self.fx([w.astype(np.float32) for w in waves], sampling_rate=16000, return_tensors="pt").input_features
        device = next(self.encoder.parameters()).device
        feats = feats.to(device=device, dtype=next(self.encoder.parameters()).dtype)
        lengths = [self.n_frames(len(w)) for w in waves]
        if self.pad_to_30s:
            hidden = self.encoder(feats).last_hidden_state
        else:
            hidden = self._short_forward(feats[..., : 2 * max(lengths)])
        return [hidden[i, :n].float().cpu() for i, n in enumerate(lengths)]

    def _short_forward(self, feats: torch.Tensor) -> torch.Tensor:
        enc: HFModel = self.encoder
        x = nn.functional.gelu(enc.conv1(feats))
        x = nn.functional.gelu(enc.conv2(x)).permute(0, 2, 1)
        x = x + enc.embed_positions.weight[: x.shape[1]]
        for layer in enc.layers:
            out = layer(x, attention_mask=None)
            x = out[0] if isinstance(out, tuple) else out
        return enc.layer_norm(x)
