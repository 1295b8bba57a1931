"""Frozen-encoder features, computed once per utterance and shared by every system and seed.

Cache layout: one entry (`relm.cache`) per corpus and encoder,
`<cache>/features/<dataset>-<data hash>-<encoder>-<key>/features.safetensors`, one tensor per
utterance id. The key holds the encoder's identity and config (for a stage-0 encoder: its weights'
key), so another model or preset never reads stale features.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from safetensors import safe_open
from safetensors.torch import load_file, save
from tqdm import tqdm

from relm.bench.stages import Stage
from relm.cache import CacheEntry, load_or_compute
from relm.config import Preset
from relm.data.audio import AudioBounds, load_audio
from relm.errors import RelmError
from relm.io import atomic_write_bytes, check_free_space
from relm.keys import content_key
from relm.models.emotion_encoder import EmotionEncoder, category_avd
from relm.models.sources import resolve
from relm.models.speech_encoder import WhisperFrames

AVD_COLUMNS = ["arousal", "valence", "dominance"]
FEATURES_VERSION = 2  # bump when feature extraction changes what it produces (v2: w2v2 pooling over real frames)
FEATURES_FILE = "features.safetensors"


def save_tensors(path: Path, tensors: dict[str, torch.Tensor], meta: dict) -> None:
    atomic_write_bytes(
        path, save({k: v.contiguous() for k, v in tensors.items()}, metadata={"meta": json.dumps(meta, default=str)})
    )


def load_tensors(path: Path) -> tuple[dict[str, torch.Tensor], dict]:
    with safe_open(str(path), "pt") as fh:
        meta = json.loads((fh.metadata() or {}).get("meta", "{}"))
    return load_file(str(path)), meta


def dimensional_labels(df: pd.DataFrame) -> tuple[np.ndarray, str]:
    """(A/V/D per row, source): the corpus's annotations, else the documented per-category table."""
    if df[AVD_COLUMNS].notna().all(axis=None):
        return df[AVD_COLUMNS].to_numpy(np.float32), "annotations"
    return category_avd(df["emotion"].tolist()), "pseudo: per-category table (relm.models.emotion_encoder.CATEGORY_AVD)"


class FeatureStore:
    """Audio and frozen-encoder features of one corpus's manifest."""

    def __init__(
        self,
        dataset: str,
        df: pd.DataFrame,
        data_hash: str,
        preset: Preset,
        device: torch.device,
        bounds: AudioBounds = AudioBounds(),
    ):
        self.df, self.preset, self.device, self.bounds = df, preset, device, bounds
        self.prefix = f"{dataset}-{data_hash}"
        self._waves: dict[str, np.ndarray] = {}

    def waves(self, ids: list[str]) -> list[np.ndarray]:
        paths = dict(zip(self.df["utt_id"], self.df["path"]))
        for utt in ids:
            if utt not in self._waves:
                self._waves[utt] = load_audio(paths[utt], bounds=self.bounds)
        return [self._waves[u] for u in ids]

    def whisper_key(self) -> str:
        cfg = self.preset.speech_encoder
        return content_key(cfg.model, cfg.pad_to_30s, cfg.tiny, resolve(cfg.model).identity, FEATURES_VERSION)

    def whisper_bytes(self) -> int:
        """About what the Whisper frames take on disk (float16), with a margin: checked before computing them."""
        cfg = self.preset.speech_encoder
        res = resolve(cfg.model)
        config = cfg.tiny if res.source == "random" else json.loads((Path(res.path) / "config.json").read_text())
        width = int(config.get("d_model", 1280))
        seconds = self.df["duration"].fillna(30.0).clip(upper=30.0) if "duration" in self.df else None
        per_file = float((seconds * 50 + 1).sum()) if seconds is not None else 1501.0 * len(self.df)
        frames = 1500 * len(self.df) if cfg.pad_to_30s else per_file
        return int(frames * width * 2 * 1.1) + 64 * 2**20

    def whisper_entry(self) -> CacheEntry:
        return CacheEntry(Stage.FEATURES.value, f"{self.prefix}-whisper-{self.whisper_key()}")

    def emotion_entry(self, encoder_key: str) -> CacheEntry:
        return CacheEntry(Stage.FEATURES.value, f"{self.prefix}-emotion-{content_key(encoder_key, FEATURES_VERSION)}")

    def whisper_frames(self, progress: bool = True, force: bool = False) -> dict[str, torch.Tensor]:
        cfg = self.preset.speech_encoder

        def compute(folder: Path) -> dict[str, torch.Tensor]:
            check_free_space(folder, self.whisper_bytes(), "the Whisper features")
            encoder = WhisperFrames.build(cfg).to(self.device)
            ids = self.df["utt_id"].tolist()
            out: dict[str, torch.Tensor] = {}
            bs = 16
            for i in tqdm(range(0, len(ids), bs), desc="features: whisper", unit="batch", disable=not progress):
                chunk = ids[i : i + bs]
                for utt, frames in zip(chunk, encoder(self.waves(chunk))):
                    out[utt] = frames.half()
            save_tensors(folder / FEATURES_FILE, out, {"model": cfg.model, "pad_to_30s": cfg.pad_to_30s})
            return out

        entry = self.whisper_entry()
        frames = load_or_compute(entry, self._read, compute, force=force, inputs={"model": cfg.model})
        return self._complete(entry, frames)

    def emotion(
        self, encoder: EmotionEncoder, encoder_key: str, progress: bool = True, force: bool = False
    ) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
        """Utterance emotion embeddings and A/V/D predictions of a frozen encoder, cached by its key."""

        def compute(folder: Path) -> dict[str, torch.Tensor]:
            ids = self.df["utt_id"].tolist()
            out = {}
            for i in tqdm(range(0, len(ids), 32), desc="features: emotion", unit="batch", disable=not progress):
                chunk = ids[i : i + 32]
                e, a = encoder.embed(self.waves(chunk))
                for j, utt in enumerate(chunk):
                    out[f"emb/{utt}"], out[f"avd/{utt}"] = e[j].float(), a[j].float()
            save_tensors(folder / FEATURES_FILE, out, {"encoder_key": encoder_key})
            return out

        entry = self.emotion_entry(encoder_key)
        tensors = load_or_compute(entry, self._read, compute, force=force, inputs={"encoder_key": encoder_key})
        emb = {k[4:]: v for k, v in tensors.items() if k.startswith("emb/")}
        avd = {k[4:]: v for k, v in tensors.items() if k.startswith("avd/")}
        self._complete(entry, emb)
        return emb, avd

    @staticmethod
    def _read(folder: Path) -> dict[str, torch.Tensor]:
        return load_tensors(folder / FEATURES_FILE)[0]

    def _complete(self, entry: CacheEntry, tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        missing = set(self.df["utt_id"]) - tensors.keys()
        if missing:  # the key covers the manifest, so this is damage the manifest could not see
            raise RelmError(
                f"cache entry {entry.name} lacks {len(missing)} utterance(s), e.g. {sorted(missing)[0]}; "
                "rerun with `--force features`"
            )
        return tensors

    def avd_targets(self, emotion_pred: dict[str, torch.Tensor] | None = None) -> tuple[dict[str, torch.Tensor], str]:
        """A/V/D regression targets: annotations where the corpus has them, else pseudo-targets."""
        df, cfg = self.df, self.preset.emotion_encoder
        annotated = bool(df[AVD_COLUMNS].notna().all(axis=None))
        wanted = cfg.avd_targets == "encoder" if annotated else cfg.pseudo_avd == "encoder"
        if wanted and emotion_pred is not None:
            why = (
                "emotion encoder predictions (emotion_encoder.avd_targets: encoder)"
                if annotated
                else "pseudo: emotion encoder predictions"
            )
            return {u: emotion_pred[u] for u in df["utt_id"]}, why
        vals, source = dimensional_labels(df)
        return {u: torch.from_numpy(v) for u, v in zip(df["utt_id"], vals)}, source
