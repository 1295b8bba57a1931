"""Everything a sweep or an evaluation needs of one dataset, prepared once: `prepare_dataset() -> DatasetBundle`.

Manifest (capped per split for small presets) -> Whisper frames -> emotion encoder (pretrained,
or trained in stage 0, or the one a run was trained with) -> emotion embeddings -> A/V/D targets.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import torch

from relm.bench.features import FeatureStore
from relm.bench.manifest import read_manifest
from relm.bench.records import Item
from relm.bench.stage0 import frozen_encoder
from relm.bench.stages import Stage, StageTimer
from relm.cache import warn
from relm.config import Preset
from relm.data.corpora import get_adapter
from relm.data.manifest_store import content_hash, data_hash, save_manifest
from relm.data.schema import LABELS, SPLITS, Manifest
from relm.errors import RelmError
from relm.runtime import Runtime


@dataclass
class DatasetBundle:
    name: str
    manifest: Manifest
    data_hash: str
    frames: dict[str, torch.Tensor]
    emotion: dict[str, torch.Tensor]
    avd: dict[str, torch.Tensor]
    avd_source: str
    emotion_encoder: dict  # kind and, for a stage-0 encoder, its weights, targets and losses
    manifest_path: str = ""
    feature_keys: dict[str, str] = field(default_factory=dict)  # upstream keys of every run's cache entry
    content_hash: str = ""  # the data wherever it lies (no paths or mtimes): what `relm check` compares
    classes: tuple[str, ...] = LABELS  # the corpus's emotion classes (its adapter's)

    @property
    def df(self) -> pd.DataFrame:
        return self.manifest.df

    @property
    def root(self) -> str:
        """The corpus folder that was read, resolved (recorded; `relm evaluate` compares it)."""
        return str(Path(self.manifest.root).resolve())

    @property
    def protocol(self) -> str:
        return f"{self.name}:{self.manifest.protocol}"

    @property
    def dims(self) -> tuple[int, int]:
        """(Whisper frame width, emotion embedding width)."""
        return next(iter(self.frames.values())).shape[-1], next(iter(self.emotion.values())).shape[-1]

    def split_sizes(self) -> dict[str, int]:
        return {s: int((self.df.split == s).sum()) for s in SPLITS}

    def items(
        self, split: str, targets: dict[str, str | None] | None = None, cut: set[str] | frozenset[str] = frozenset()
    ) -> list[Item]:
        """Training/answering items of one split (or `all`); `targets` are the teacher's responses."""
        df = self.df if split == "all" else self.df[self.df.split == split]
        bad = sorted(set(df["emotion"]) - set(self.classes))
        if bad:
            raise RelmError(f"{self.name}: label(s) {bad} outside the class set {list(self.classes)}")
        return [
            {
                "utt_id": row.utt_id,
                "frames": self.frames[row.utt_id],
                "emotion": self.emotion[row.utt_id],
                "avd": self.avd[row.utt_id],
                "label": LABELS.index(row.emotion),
                "emotion_name": row.emotion,
                "transcript": row.transcript or "",
                "target": (targets or {}).get(row.utt_id),
                "target_complete": row.utt_id not in cut,
            }
            for row in df.itertuples(index=False)
        ]


def prepare_dataset(
    name: str,
    root: str | None,
    preset: Preset,
    timer: StageTimer,
    runtime: Runtime,
    *,
    protocol: str | None = None,
    force: set[Stage] | frozenset[Stage] = frozenset(),
    progress: bool = True,
    stage0_weights: Path | None = None,
    verify: bool = False,
    strict_audio: bool = False,
) -> DatasetBundle:
    """Manifest, frozen features, the emotion encoder and A/V/D targets of one dataset."""
    with timer(Stage.MANIFEST):
        manifest = read_manifest(name, root, preset.max_utterances, protocol, progress, strict_audio)
        if manifest.skipped:
            counts = ", ".join(f"{reason} {n}" for reason, n in sorted(manifest.skipped.items()))
            example = next(iter(manifest.skipped_examples.values()), [""])[0]
            warn(f"{name}: skipped {sum(manifest.skipped.values())} file(s) or row(s) ({counts}), e.g. {example}")
        dhash = data_hash(manifest.df, verify)
        manifest_path = save_manifest(manifest)
    store = FeatureStore(name, manifest.df, dhash, preset, runtime.device)
    with timer(Stage.FEATURES):
        frames = store.whisper_frames(progress, force=Stage.FEATURES in force)
    with timer(Stage.STAGE0):
        encoder, encoder_key, encoder_meta = frozen_encoder(
            preset, runtime.device, name, manifest.df, progress, Stage.STAGE0 in force, stage0_weights
        )
    with timer(Stage.FEATURES):
        emb, avd_pred = store.emotion(encoder, encoder_key, progress, force=Stage.FEATURES in force)
    avd, avd_source = store.avd_targets(avd_pred)
    if not (manifest.df.split == "test").any():
        raise RelmError(f"{name}: the test split is empty")
    keys = {"whisper": store.whisper_key(), "emotion_encoder": encoder_key}
    return DatasetBundle(
        name,
        manifest,
        dhash,
        frames,
        emb,
        avd,
        avd_source,
        encoder_meta,
        str(manifest_path),
        keys,
        content_hash(manifest),
        get_adapter(name).classes,
    )
