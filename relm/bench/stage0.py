"""Stage 0: train the compact emotion encoder on A/V/D targets, then freeze it.

One cache entry per (encoder config, training data, seed): `<cache>/stage0/<key>.safetensors`
holds the frozen weights and, in its metadata, the targets' source and the loss per epoch.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from relm.bench.features import FeatureStore, load_tensors, save_tensors
from relm.bench.stages import Stage
from relm.config import EmotionEncoderCfg
from relm.errors import RelmError
from relm.keys import content_key
from relm.models.emotion_encoder import EMOTION_ENCODERS, build_emotion_encoder
from relm.models.sources import resolve

STAGE0_VERSION = 1  # bump when the training code changes what it produces


def encoder_identity(cfg: EmotionEncoderCfg) -> str:
    return resolve(cfg.model).identity if cfg.model else ""


def train_encoder(
    store: FeatureStore, data_hash: str, seed: int = 0, progress: bool = True, force: bool = False
) -> tuple[nn.Module, str, dict]:
    """(frozen encoder, weights key, meta), trained on the train split or read from the cache."""
    cfg = store.preset.emotion_encoder
    key = content_key(cfg, encoder_identity(cfg), data_hash, seed, STAGE0_VERSION)
    path = Stage.STAGE0.folder() / f"{key}.safetensors"
    if path.is_file() and not force:
        encoder = build_emotion_encoder(cfg)
        state, meta = load_tensors(path)
        encoder.load_state_dict(state)
        return encoder.eval().requires_grad_(False), key, meta
    torch.manual_seed(seed)
    encoder = build_emotion_encoder(cfg)
    train = store.df[store.df["split"] == "train"]
    targets, source = store.avd_targets()
    waves = store.waves(train["utt_id"].tolist())
    losses = encoder.fit(
        waves, np.stack([targets[u].numpy() for u in train["utt_id"]]), cfg.epochs, cfg.lr, seed=seed, progress=progress
    )
    meta = {"kind": cfg.kind, "stage0_targets": source, "stage0_loss": losses, "weights": str(path)}
    save_tensors(path, {k: v.detach() for k, v in encoder.state_dict().items()}, meta)
    return encoder, key, meta


def load_encoder(cfg: EmotionEncoderCfg, weights: Path) -> tuple[nn.Module, str]:
    """A stage-0 encoder trained elsewhere (`relm evaluate` embeds another corpus with it)."""
    if not weights.is_file():
        raise RelmError(
            f"{weights}: the stage-0 emotion encoder is not in the cache; rerun the sweep with `--force stage0`"
        )
    encoder = build_emotion_encoder(cfg)
    encoder.load_state_dict(load_tensors(weights)[0])
    return encoder.eval().requires_grad_(False), weights.stem


def frozen_encoder(
    store: FeatureStore, data_hash: str, progress: bool, force: bool, weights: Path | None = None
) -> tuple[nn.Module, str, dict]:
    """The emotion encoder a dataset's features use: pretrained, trained here in stage 0, or given."""
    cfg = store.preset.emotion_encoder
    if not EMOTION_ENCODERS.get(cfg.kind).trained_in_stage0:
        return (
            build_emotion_encoder(cfg),
            content_key(cfg, encoder_identity(cfg)),
            {"kind": cfg.kind, "model": encoder_identity(cfg)},
        )
    if weights is not None:
        encoder, key = load_encoder(cfg, weights)
        return encoder, key, {"kind": cfg.kind, "weights": str(weights)}
    return train_encoder(store, data_hash, progress=progress, force=force)
