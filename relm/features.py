"""Frozen-encoder features, computed once per utterance and shared by every system and seed.

Cache layout: `<cache>/features/<dataset>-<data hash>/<name>-<key>.safetensors`, one tensor
per utterance id, written atomically. The key holds the encoder identity and config, so a
different model or preset never reads stale features.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from tqdm import tqdm

from relm.config import Preset
from relm.data.audio import AudioBounds, load_audio
from relm.data.manifest_cache import data_hash
from relm.io import atomic_write_bytes
from relm.models.emotion_encoder import build_emotion_encoder, category_avd
from relm.models.speech_encoder import WhisperFrames
from relm.paths import cache_dir


def _key(*parts) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:12]


def _save(path: Path, tensors: dict[str, torch.Tensor], meta: dict) -> None:
    from safetensors.torch import save

    atomic_write_bytes(path, save({k: v.contiguous() for k, v in tensors.items()},
                                  metadata={"meta": json.dumps(meta, default=str)}))


def _load(path: Path) -> tuple[dict[str, torch.Tensor], dict]:
    from safetensors import safe_open
    from safetensors.torch import load_file

    with safe_open(str(path), "pt") as fh:
        meta = json.loads((fh.metadata() or {}).get("meta", "{}"))
    return load_file(str(path)), meta


class FeatureStore:
    def __init__(self, dataset: str, df: pd.DataFrame, preset: Preset, bounds: AudioBounds = AudioBounds()):
        self.df, self.preset, self.bounds = df, preset, bounds
        self.folder = cache_dir() / "features" / f"{dataset}-{data_hash(df)}"
        self._waves: dict[str, np.ndarray] = {}

    def waves(self, ids: list[str]) -> list[np.ndarray]:
        paths = dict(zip(self.df["utt_id"], self.df["path"]))
        for utt in ids:
            if utt not in self._waves:
                self._waves[utt] = load_audio(paths[utt], bounds=self.bounds)
        return [self._waves[u] for u in ids]

    def whisper_frames(self, progress: bool = True) -> dict[str, torch.Tensor]:
        cfg = self.preset.speech_encoder
        path = self.folder / f"whisper-{_key(cfg.model, cfg.pad_to_30s, cfg.tiny, self._model_identity(cfg.model))}" \
                             ".safetensors"
        if path.is_file():
            return _load(path)[0]
        encoder = WhisperFrames.build(cfg)
        ids = self.df["utt_id"].tolist()
        out: dict[str, torch.Tensor] = {}
        bs = 16
        for i in tqdm(range(0, len(ids), bs), desc="features: whisper", unit="batch", disable=not progress):
            chunk = ids[i : i + bs]
            for utt, frames in zip(chunk, encoder(self.waves(chunk))):
                out[utt] = frames.half()
        _save(path, out, {"model": cfg.model, "pad_to_30s": cfg.pad_to_30s})
        return out

    @staticmethod
    def _model_identity(name: str) -> str:
        if name == "tiny-random":
            return name
        from relm.models.sources import resolve

        return resolve(name).identity

    def avd_targets(self, emotion_pred: dict[str, torch.Tensor] | None = None) -> tuple[dict[str, torch.Tensor], str]:
        """A/V/D regression targets: annotations where the corpus has them, else pseudo-targets."""
        df = self.df
        if df[["arousal", "valence", "dominance"]].notna().all(axis=None):
            vals = df[["arousal", "valence", "dominance"]].to_numpy(np.float32)
            source = "annotations"
        elif self.preset.emotion_encoder.pseudo_avd == "encoder" and emotion_pred is not None:
            return {u: emotion_pred[u] for u in df["utt_id"]}, "pseudo: emotion encoder predictions"
        else:
            vals = category_avd(df["emotion"].tolist())
            source = "pseudo: per-category table (relm.models.emotion_encoder.CATEGORY_AVD)"
        return {u: torch.from_numpy(v) for u, v in zip(df["utt_id"], vals)}, source

    def emotion(self, seed: int = 0, progress: bool = True) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor],
                                                                     dict]:
        """Utterance emotion embeddings and A/V/D predictions; stage 0 trains a compact encoder."""
        cfg = self.preset.emotion_encoder
        ident = cfg.model and self._model_identity(cfg.model)
        path = self.folder / f"emotion-{_key(cfg.__dict__, ident, seed, 'v2')}.safetensors"  # v2: encoder kept
        if path.is_file():
            tensors, meta = _load(path)
            emb = {k[4:]: v for k, v in tensors.items() if k.startswith("emb/")}
            avd = {k[4:]: v for k, v in tensors.items() if k.startswith("avd/")}
            return emb, avd, meta
        torch.manual_seed(seed)
        encoder = build_emotion_encoder(cfg)
        meta = {"kind": cfg.kind, "model": ident}
        if cfg.kind in ("compact", "tiny-random"):
            train = self.df[self.df["split"] == "train"]
            targets, source = self.avd_targets()
            waves = self.waves(train["utt_id"].tolist())
            losses = encoder.fit(waves, np.stack([targets[u].numpy() for u in train["utt_id"]]), cfg.epochs,
                                 cfg.lr, seed=seed, progress=progress)
            meta |= {"stage0_targets": source, "stage0_loss": losses}
        emb, avd = self._embed_all(encoder, progress)
        if cfg.kind in ("compact", "tiny-random"):  # kept so `relm evaluate` can embed other corpora
            weights = path.with_suffix(".encoder.safetensors")
            _save(weights, {k: v.detach() for k, v in encoder.state_dict().items()}, {"kind": cfg.kind})
            meta["weights"] = str(weights)
        _save(path, {f"emb/{k}": v for k, v in emb.items()} | {f"avd/{k}": v for k, v in avd.items()}, meta)
        return emb, avd, meta

    def emotion_with(self, weights: str, progress: bool = True) -> tuple[dict[str, torch.Tensor],
                                                                          dict[str, torch.Tensor]]:
        """Embed this corpus with a stage-0 encoder trained elsewhere (cross-corpus evaluation)."""
        encoder = build_emotion_encoder(self.preset.emotion_encoder)
        encoder.load_state_dict(_load(Path(weights))[0])
        return self._embed_all(encoder, progress)

    def _embed_all(self, encoder, progress: bool) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
        ids = self.df["utt_id"].tolist()
        emb, avd = {}, {}
        for i in tqdm(range(0, len(ids), 32), desc="features: emotion", unit="batch", disable=not progress):
            chunk = ids[i : i + 32]
            e, a = encoder.embed(self.waves(chunk))
            for j, utt in enumerate(chunk):
                emb[utt], avd[utt] = e[j].float(), a[j].float()
        return emb, avd
