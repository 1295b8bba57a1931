"""Cache entries that cannot go stale, seeds that are honoured, and a training budget in optimizer steps."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest
import torch

from relm.bench.stage0 import overlap, train_encoder
from relm.bench.stages import Stage, parse_force
from relm.bench.sweep import run_key, run_key_base
from relm.bench.teacher import Teacher
from relm.bench.training import build_module
from relm.cli import main
from relm.data.manifest_store import data_hash
from relm.data.schema import LABELS
from relm.errors import RelmError
from relm.models.budget import training_budget
from relm.presets import load_preset
from tests.conftest import runtime_of


def _manifest(folder: Path, n: int = 3) -> pd.DataFrame:
    folder.mkdir(parents=True, exist_ok=True)
    rows = []
    for i in range(n):
        path = folder / f"u{i}.wav"
        path.write_bytes(b"RIFF" + bytes([i]) * 100)
        rows.append(
            {
                "utt_id": f"u{i}",
                "path": str(path),
                "emotion": "sad",
                "split": "test",
                "transcript": f"t{i}",
                "speaker": "s",
                "duration": 1.0,
                "arousal": None,
                "valence": None,
                "dominance": None,
            }
        )
    return pd.DataFrame(rows)


def test_data_hash_covers_paths_audio_and_avd(tmp_path):
    df = _manifest(tmp_path / "a")
    key = data_hash(df)
    assert data_hash(df) == key
    copy = tmp_path / "copy"
    shutil.copytree(tmp_path / "a", copy)  # same ids, labels and transcripts, another place
    assert data_hash(df.assign(path=[str(copy / Path(p).name) for p in df["path"]])) != key
    Path(df["path"][1]).write_bytes(b"RIFF" + b"\x07" * 100)  # same size, new content (and mtime)
    os.utime(df["path"][1], ns=(1, 1))
    assert data_hash(df) != key
    assert data_hash(df.assign(arousal=0.5)) != data_hash(df)
    content = data_hash(df, verify=True)
    os.utime(df["path"][1], ns=(2, 2))  # touched, content unchanged
    assert data_hash(df, verify=True) == content and data_hash(df) != content


def _bundle(**keys) -> SimpleNamespace:
    features = {"whisper": "w", "emotion_encoder": "e"} | keys
    return SimpleNamespace(data_hash="d", feature_keys=features, avd_source="x", classes=LABELS)


def _key(bundle, preset, teacher: str) -> str:
    return run_key(run_key_base(preset, runtime_of(preset)), bundle, "re-llm", 0, teacher)


def _tiny_model_folder(folder: Path, fill: float) -> None:
    from safetensors.torch import save_file

    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps({"model_type": "qwen2"}))
    save_file({"w": torch.full((4, 4), fill)}, str(folder / "model.safetensors"))


def test_a_run_key_changes_with_the_llm_files_features_and_code(tmp_path, monkeypatch):
    preset = load_preset("cpu")
    _tiny_model_folder(tmp_path / "A", 0.1)
    _tiny_model_folder(tmp_path / "B", 0.2)
    monkeypatch.setenv("RELM_MODEL_SMOLLM2_135M_INSTRUCT", str(tmp_path / "A"))
    key_a = _key(_bundle(), preset, "teacher")
    assert _key(_bundle(), preset, "teacher") == key_a
    monkeypatch.setenv("RELM_MODEL_SMOLLM2_135M_INSTRUCT", str(tmp_path / "B"))  # another model swapped in
    assert _key(_bundle(), preset, "teacher") != key_a
    monkeypatch.setenv("RELM_MODEL_SMOLLM2_135M_INSTRUCT", str(tmp_path / "A"))
    _tiny_model_folder(tmp_path / "A", 0.3)  # the same folder, new weights
    os.utime(tmp_path / "A" / "model.safetensors", ns=(10**18, 10**18))
    assert _key(_bundle(), preset, "teacher") != key_a
    key = _key(_bundle(), preset, "teacher")
    assert _key(_bundle(whisper="w2"), preset, "teacher") != key  # features recomputed
    assert _key(_bundle(emotion_encoder="e2"), preset, "teacher") != key  # new stage-0 encoder
    assert _key(_bundle(), preset, "teacher2") != key
    assert _key(_bundle(), load_preset("cpu", {"scorer": "minilm"}), "teacher") == key
    assert _key(_bundle(), load_preset("cpu", {"train.lr": 0.1}), "teacher") != key


def test_force_redoes_a_stage_and_everything_downstream():
    assert parse_force(["stage0"]) == {Stage.STAGE0, Stage.FEATURES, Stage.TRAIN, Stage.SCORE}
    assert parse_force(["teacher"]) == {Stage.TEACHER, Stage.TRAIN, Stage.SCORE}
    assert parse_force(["score"]) == {Stage.SCORE}
    with pytest.raises(RelmError, match="--force takes stages"):
        parse_force(["everything"])


def test_teacher_cache_holds_raw_outputs_cleaned_when_read(tmp_cache):
    cfg = load_preset("smoke").teacher
    teacher = Teacher(cfg, None, None, "template")
    key = teacher.item_key("hello", "sad")
    with teacher.entry([("hello", "sad")]).write() as folder:
        (folder / "responses.json").write_text(
            json.dumps({key: {"raw": ' "Oh no. How are you?"\nextra line', "truncated": False}})
        )
    again = Teacher(cfg, None, None, "template")
    assert again.responses([("hello", "sad")], progress=False) == {key: ("Oh no. How are you?", False)}


def test_two_seeds_differ_and_one_seed_repeats():
    smoke = load_preset("smoke")

    def init(seed):
        module = build_module("re-llm", smoke, runtime_of(smoke).device, 32, 16, total_steps=1, seed=seed)
        return {k: v.clone() for k, v in module.trained_state().items()}

    a, again, b = init(0), init(0), init(1)
    assert a.keys() == b.keys() and all(torch.equal(a[k], again[k]) for k in a)
    lora = [k for k in a if "lora_A" in k]
    assert lora and not any(torch.equal(a[k], b[k]) for k in lora)
    assert not torch.equal(a["adapter.convs.0.weight"], b["adapter.convs.0.weight"])


def test_training_budget_is_in_optimizer_steps(capsys):
    cpu = load_preset("cpu")
    assert training_budget(1237, cpu) == {
        "steps": 120,
        "epochs": 0.78,
        "samples_seen": 960,
        "world_size": 1,
        "batch_per_process": 8,
        "warning": "120 optimizer steps of 8 samples see the 1237 training items 0.8 times (outside 1-20); "
        "set train.max_steps",
    }
    small = training_budget(113, cpu)  # the RAVDESS subset: the same 120 steps, 8.5 passes
    assert small["steps"] == 120 and small["samples_seen"] == 960 and "warning" not in small
    tiny = training_budget(30, cpu)
    assert "32.0 times" in tiny["warning"] and "relm: warning:" in capsys.readouterr().err
    paper = load_preset("paper")  # counts epochs, as the released recipe does
    assert training_budget(1600, paper)["steps"] == 300 and training_budget(1600, paper)["epochs"] == 3.0


def test_stage0_refuses_a_pretraining_corpus_that_overlaps_the_benchmark():
    bench = pd.DataFrame({"speaker": ["0011", "0012"], "transcript": ["I lost my keys.", "Hello there"]})
    pre = pd.DataFrame({"speaker": ["0011", "0014"], "transcript": ["i lost  my keys.", "Other words"]})
    assert overlap("synth-esd", bench, "synth-pretrain", pre) == {"speakers": 1, "sentences": 1}
    assert overlap("esd", bench, "synth-pretrain", pre) == {"speakers": 0, "sentences": 1}  # other corpora
    preset = load_preset("smoke", {"emotion_encoder.pretrain_corpus": "synth-esd"})
    with pytest.raises(RelmError, match="would train on the benchmark itself"):
        train_encoder(preset, runtime_of(preset).device, "synth-esd", bench)


def test_check_refuses_runs_scored_by_another_scorer(tmp_path, capsys):
    run = {"scorer": {"identity": "tfidf-aaa"}, "metrics": {"d": {"s": {"ua": 0.5}}}}
    base = {"scorer": {"identity": "minilm-bbb"}, "metrics": {"d": {"s": {"ua": 0.5}}}}
    (tmp_path / "run.json").write_text(json.dumps(run))
    (tmp_path / "base.json").write_text(json.dumps(base))
    args = ["check", str(tmp_path / "run.json"), "--baseline", str(tmp_path / "base.json")]
    assert main(args) == 2
    assert "ER/IP/EX are not comparable" in capsys.readouterr().err
    assert main([*args, "--allow-provenance-change"]) == 0


def test_precision_auto_picks_float32_where_bf16_is_emulated(monkeypatch):
    import relm.runtime as runtime

    cpu = load_preset("cpu", {"runtime.device": "cpu"})
    assert cpu.train.precision == "auto"
    monkeypatch.setattr(runtime, "cpu_bf16_speed", lambda: {"bf16_slowdown": 70.0})  # an AVX2-only EPYC
    monkeypatch.setattr(runtime, "preflight", lambda preset: torch.device("cpu"))
    found = runtime.resolve_runtime(cpu)
    assert found.precision == "32-true" and "70.0x" in found.precision_why and found.device.type == "cpu"
    monkeypatch.setattr(runtime, "cpu_bf16_speed", lambda: {"bf16_slowdown": 0.5})  # native bf16 units
    assert runtime.resolve_runtime(cpu).precision == "bf16-mixed"
    assert runtime.resolve_runtime(load_preset("smoke")).precision == "32-true"  # a preset's explicit choice stands


def test_the_bf16_probe_is_measured_once_per_machine(tmp_cache):
    from relm.machine import cpu_bf16_speed

    first = cpu_bf16_speed()
    assert first["float32_s"] > 0 and first["bfloat16_s"] > 0 and cpu_bf16_speed() == first  # cached
    assert len(list((tmp_cache / "machine").glob("precision-*.json"))) == 1
