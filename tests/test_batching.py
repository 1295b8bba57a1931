"""Length-bucketed training batches: the lengths they sort by are `build`'s, and every item comes once per epoch."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from relm.batching import LengthBucketSampler, padding_share
from relm.bench.training import train_system
from relm.bench.training_items import sequence_length, training_items
from relm.presets import load_preset
from tests.conftest import runtime_of
from tests.test_systems import EMO_DIM, SPEECH_DIM, _module, fake_items


@pytest.fixture(scope="module")
def smoke():
    return load_preset("smoke")


@pytest.mark.parametrize("system", ["text", "re-llm"])
def test_sequence_length_is_what_build_gives(system, smoke):
    module = _module(system, smoke)
    items = fake_items(6)
    for i, it in enumerate(items):
        it["transcript"] = " ".join(["I got the results of my exam today."] * (1 + i % 3))
        it["target_complete"] = i % 2 == 0
    mixed, _ = training_items(items, 0.5, 0)  # response and SER items
    for it in mixed:
        built = module.build([it], with_target=True, left_pad=False)
        assert sequence_length(module, it) == int(built["attention_mask"].sum())


def test_buckets_cover_every_item_once_per_epoch_and_change_between_epochs():
    lengths = list(np.random.default_rng(0).integers(5, 80, 203))
    sampler = LengthBucketSampler(lengths, 8, seed=3, window=4)
    epochs = [list(sampler) for _ in range(2)]
    assert len(sampler) == len(epochs[0]) == 26
    for batches in epochs:
        assert sorted(i for b in batches for i in b) == list(range(203))
    assert epochs[0] != epochs[1]
    assert list(LengthBucketSampler(lengths, 8, seed=3, window=4)) == epochs[0]  # seeded
    shuffled = np.random.default_rng(0).permutation(203)
    plain = padding_share(lengths, [shuffled[i : i + 8] for i in range(0, 203, 8)])
    assert padding_share(lengths, epochs[0]) < plain / 2


def test_training_with_length_buckets_records_less_padding(smoke, tmp_path):
    preset = load_preset("smoke", {"train.length_buckets": 2, "train.batch_size": 4})
    items = fake_items(24)
    for i, it in enumerate(items):
        it["target"] = " ".join(["How are you feeling?"] * (1 + i % 5))
    torch.manual_seed(0)
    module, info = train_system(
        "text", preset, runtime_of(preset), items, [], SPEECH_DIM, EMO_DIM, 0, tmp_path, progress=False
    )
    share = info["padding_share"]
    assert share["length_buckets"] < share["shuffled"] and info["optimizer_steps_done"] == info["steps"]


def test_length_buckets_off_keeps_the_preset_hash_it_had_before_the_field_existed():
    """Baselines and cache entries recorded before `train.length_buckets` existed stay valid while it is off."""
    baseline = json.loads((Path(__file__).parents[1] / "results/baselines/smoke-synth-esd.json").read_text())
    assert load_preset("smoke").hash() == baseline["preset_hash"]  # fields added since then, at their defaults
    assert load_preset("smoke", {"train.length_buckets": 4}).hash() != load_preset("smoke").hash()
