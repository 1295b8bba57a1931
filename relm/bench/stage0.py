"""Stage 0: train the compact emotion encoder on an emotion pre-training corpus, then freeze it.

As in the paper, where the emotion encoder is an external model trained on another corpus,
the encoder never sees the benchmark: it trains on the preset's `pretrain_corpus`, whose
speakers and sentences must be disjoint from the benchmark's (checked, and recorded as
`overlap`). Its targets are dimensional (A/V/D annotations, or the documented per-category
table of the pre-training corpus's own labels). One cache entry per (encoder config,
pre-training data, seed): `<cache>/stage0/<key>/encoder.safetensors` (a `relm.cache` entry) holds
the frozen weights and, in its metadata, what it was trained on and the loss per epoch.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import torch

from relm.bench.features import FeatureStore, dimensional_labels, load_tensors, save_tensors
from relm.bench.manifest import read_manifest
from relm.bench.stages import Stage
from relm.cache import CacheEntry, folder_problem, load_or_compute
from relm.config import EmotionEncoderCfg, Preset
from relm.data.corpora import get_dataset
from relm.data.manifest_store import data_hash
from relm.errors import RelmError
from relm.keys import content_key
from relm.models.emotion_encoder import EMOTION_ENCODERS, EmotionEncoder, build_emotion_encoder
from relm.models.sources import resolve
from relm.scoring.epitome_data import norm_text

STAGE0_VERSION = 2  # bump when the training code changes what it produces (v2: a separate pre-training corpus)
ENCODER_FILE = "encoder.safetensors"
STAGE0_SEED = 0  # stage 0 is shared by every system and seed of a sweep; its seed is fixed and recorded


def encoder_identity(cfg: EmotionEncoderCfg) -> str:
    return resolve(cfg.model).identity if cfg.model else ""


def overlap(benchmark: str, bench_df: pd.DataFrame, pretrain: str, pre_df: pd.DataFrame) -> dict[str, int]:
    """Speakers and sentences the two corpora share (speakers compared only within one generator's family)."""
    same_family = get_dataset(benchmark).generate is not None and get_dataset(pretrain).generate is not None
    speakers = set(bench_df["speaker"]) & set(pre_df["speaker"]) if same_family else set()
    sentences = {norm_text(t).lower() for t in bench_df["transcript"].dropna() if t} & {
        norm_text(t).lower() for t in pre_df["transcript"].dropna() if t
    }
    return {"speakers": len(speakers), "sentences": len(sentences)}


def train_encoder(
    preset: Preset,
    device: torch.device,
    benchmark: str,
    bench_df: pd.DataFrame,
    progress: bool = True,
    force: bool = False,
) -> tuple[EmotionEncoder, str, dict]:
    """(frozen encoder, weights key, meta), trained on the pre-training corpus or read from the cache."""
    cfg = preset.emotion_encoder
    if cfg.pretrain_corpus == benchmark:
        raise RelmError(
            f"{benchmark}: the stage-0 emotion encoder would train on the benchmark itself; set "
            "emotion_encoder.pretrain_corpus to another corpus"
        )
    caps = {"train": cfg.pretrain_max_utterances} if cfg.pretrain_max_utterances > 0 else {}
    manifest = read_manifest(cfg.pretrain_corpus, None, caps, progress=progress)
    shared = overlap(benchmark, bench_df, cfg.pretrain_corpus, manifest.df)
    if any(shared.values()):
        raise RelmError(
            f"{benchmark}: the stage-0 pre-training corpus {cfg.pretrain_corpus!r} shares "
            f"{shared['speakers']} speaker(s) and {shared['sentences']} sentence(s) with the benchmark"
        )
    pre_hash = data_hash(manifest.df)
    key = content_key(cfg, encoder_identity(cfg), pre_hash, STAGE0_SEED, STAGE0_VERSION)
    entry = CacheEntry(Stage.STAGE0.value, key)

    def read(folder: Path) -> tuple[EmotionEncoder, dict]:
        encoder = build_emotion_encoder(cfg)
        state, meta = load_tensors(folder / ENCODER_FILE)
        encoder.load_state_dict(state)
        meta["weights"] = str(entry.folder / ENCODER_FILE)  # where the entry is now
        return encoder.to(device).eval().requires_grad_(False), meta

    def compute(folder: Path) -> tuple[EmotionEncoder, dict]:
        store = FeatureStore(cfg.pretrain_corpus, manifest.df, pre_hash, preset, device)
        train, val = (manifest.df[manifest.df["split"] == s] for s in ("train", "val"))
        targets, source = dimensional_labels(train)
        torch.manual_seed(STAGE0_SEED)
        encoder = build_emotion_encoder(cfg).to(device)
        losses = encoder.fit(
            store.waves(train["utt_id"].tolist()), targets, cfg.epochs, cfg.lr, seed=STAGE0_SEED, progress=progress
        )
        meta = {
            "kind": cfg.kind,
            "trained_on": cfg.pretrain_corpus,
            "pretrain_data_hash": pre_hash,
            "n_train": len(train),
            "seed": STAGE0_SEED,
            "targets": source,
            "loss_per_epoch": losses,
            "weights": str(entry.folder / ENCODER_FILE),
        }
        if len(val):
            pred = encoder.embed(store.waves(val["utt_id"].tolist()))[1].numpy()
            meta["val_mse"] = float(np.mean((pred - dimensional_labels(val)[0]) ** 2))
        save_tensors(folder / ENCODER_FILE, {k: v.detach() for k, v in encoder.state_dict().items()}, meta)
        return encoder.eval().requires_grad_(False), meta

    encoder, meta = load_or_compute(entry, read, compute, force=force, inputs={"pretrain_corpus": cfg.pretrain_corpus})
    return encoder, key, meta | {"overlap": shared}


def load_encoder(cfg: EmotionEncoderCfg, weights: Path, device: torch.device) -> tuple[EmotionEncoder, str]:
    """A stage-0 encoder trained earlier (`relm evaluate` embeds another corpus with a run's encoder)."""
    again = "rerun the sweep with `--force stage0`"
    if not weights.is_file():
        raise RelmError(f"{weights}: the stage-0 emotion encoder is not in the cache; {again}")
    if problem := folder_problem(weights.parent):
        raise RelmError(f"{weights}: the stage-0 cache entry is damaged ({problem}); {again}")
    encoder = build_emotion_encoder(cfg)
    encoder.load_state_dict(load_tensors(weights)[0])
    return encoder.to(device).eval().requires_grad_(False), weights.parent.name


def frozen_encoder(
    preset: Preset,
    device: torch.device,
    benchmark: str,
    bench_df: pd.DataFrame,
    progress: bool,
    force: bool,
    weights: Path | None = None,
) -> tuple[EmotionEncoder, str, dict]:
    """The emotion encoder a dataset's features use: pretrained, trained in stage 0, random, or given."""
    cfg = preset.emotion_encoder
    spec = EMOTION_ENCODERS.get(cfg.kind)
    if not spec.trained_in_stage0:
        meta = {"kind": cfg.kind, "model": encoder_identity(cfg), "trained_on": spec.trained_on}
        return build_emotion_encoder(cfg).to(device), content_key(cfg, encoder_identity(cfg)), meta
    if weights is not None:
        encoder, key = load_encoder(cfg, weights, device)
        return encoder, key, {"kind": cfg.kind, "weights": str(weights), **load_tensors(weights)[1]}
    if not cfg.pretrain_corpus:  # an untrained encoder: a fixed random projection, said plainly
        torch.manual_seed(STAGE0_SEED)
        encoder = build_emotion_encoder(cfg).to(device).eval().requires_grad_(False)
        return (
            encoder,
            content_key(cfg, "random", STAGE0_SEED),
            {"kind": cfg.kind, "trained_on": "none", "seed": STAGE0_SEED},
        )
    return train_encoder(preset, device, benchmark, bench_df, progress, force)
