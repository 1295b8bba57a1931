"""The wall-time estimate printed before a sweep: stage costs in GFLOP-equivalents, scaled to this machine."""

from __future__ import annotations

import dataclasses
import json

import pytest

from relm.bench import estimate


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("RELM_CACHE", str(tmp_path / "cache"))


def test_a_sweeps_costs_predict_the_next_sweep_on_a_machine_twice_as_fast():
    results = {
        "sweep_id": "s1",
        "datasets": ["synth-esd"],
        "seeds": [0, 1],
        "calibration": {"matmul_gflops": 100.0},
        "precision": {"train_and_generate": "bf16-mixed"},
        "timings_s": {"features": 10.0, "teacher": 20.0, "train:text": 30.0, "train:re-llm": 50.0, "score": 5.0},
    }
    estimate.record("toy", results, cold=set(results["timings_s"]))
    seconds, source = estimate.estimate_seconds("toy", "bf16-mixed", 2, ["text", "re-llm"], 3, gflops=200.0)
    # Per dataset 10 + 20; per run text 15, re-llm 25 (two seeds measured); the scorers once; all halved.
    assert seconds == pytest.approx(((10 + 20) * 2 + (15 + 25) * 2 * 3 + 5) / 2)
    assert "s1" in source
    # A system never measured counts as the costliest measured one.
    assert estimate.estimate_seconds("toy", "bf16-mixed", 1, ["re-llm-noemb"], 1, 100.0)[0] == pytest.approx(
        10 + 20 + 25 + 5
    )
    # A warm rerun (features and text read from the cache) changes only what it computed.
    warm = results | {"sweep_id": "s2", "timings_s": {"features": 0.1, "train:text": 0.2, "train:re-llm": 100.0}}
    estimate.record("toy", warm, cold={"train:re-llm"})
    seconds, source = estimate.estimate_seconds("toy", "bf16-mixed", 1, ["text", "re-llm"], 2, gflops=100.0)
    assert seconds == pytest.approx(10 + 20 + (15 + 50) * 2 + 5) and "s2" in source


def test_without_this_machines_costs_the_shipped_reference_is_used_and_an_unknown_preset_has_none():
    systems = ["text-zs", "text", "speech", "re-llm"]
    fast, source = estimate.estimate_seconds("cpu", "bf16-mixed", 1, systems, 1, 200.0)
    slow, _ = estimate.estimate_seconds("cpu", "32-true", 1, systems, 1, 200.0)
    assert 60 < fast < slow < 4 * 3600 and "reference" in source  # a machine without bf16 takes longer
    assert estimate.estimate_seconds("no-such-preset", "32-true", 1, ["text"], 1, 200.0) is None
    # Another precision on this machine has its own record: a bf16 sweep does not set a float32 estimate.
    assert estimate.estimate_seconds("toy", "32-true", 1, ["text"], 1, 100.0) is None
    assert estimate.describe(90) == "90 s" and estimate.describe(600) == "10 min" and estimate.describe(9000) == "2.5 h"


def test_training_pace_reads_the_measured_gpu_figures(tmp_path):
    from relm.bench.estimate import training_pace
    from relm.presets import load_preset

    train = dataclasses.asdict(load_preset("paper").train)
    row = {"batch": "b16x1", "lever": "all", "seconds_per_step": 0.5, "mfu": 0.3}
    figures = {"device": "NVIDIA H200", "rehearsal": False, "train": [row | {"lever": "baseline"}, row]}
    (tmp_path / "throughput-cuda.json").write_text(json.dumps(figures))
    line = training_pace(train, "NVIDIA H200", tmp_path)
    assert line is not None and "0.50 s per optimizer step, 30.0% MFU" in line and "(2814 steps) about 23 min" in line
    assert training_pace(train, "NVIDIA A100", tmp_path) is None  # another GPU's figures do not count
    slower = {"batch": "b2x8", "lever": "baseline", "seconds_per_step": 6.0, "mfu": 0.02}
    (tmp_path / "throughput-cuda.json").write_text(json.dumps(figures | {"train": [slower]}))
    assert training_pace(train, "NVIDIA H200", tmp_path) is None  # no figure of the configuration paper runs
    fp32 = dataclasses.asdict(load_preset("paper-fp32").train)
    assert "6.00 s per optimizer step" in (training_pace(fp32, "NVIDIA H200", tmp_path) or "")


def test_scorer_trainings_the_cache_lacks_are_counted_and_timed_before_the_sweep(tmp_path, monkeypatch, capsys):
    from relm.bench.scoring import cold_scorer_trainings
    from relm.presets import load_preset
    from relm.scoring import empathy
    from relm.scoring.epitome_data import load_epitome
    from tests.test_empathy import write_epitome

    folder = str(write_epitome(tmp_path / "epitome"))
    preset = load_preset(
        "smoke", {"scorer": "tfidf", "agreement_scorer": "minilm", "scorer_seeds": 2, "scorer_cv_folds": 3}
    )
    # Seeds 0 and 1, three folds, and the agreement kind; nothing without EPITOME data.
    assert cold_scorer_trainings(preset, folder) == {"tfidf": 5, "minilm": 1}
    assert cold_scorer_trainings(preset, str(tmp_path / "absent")) == {}
    trained = empathy.load_or_train("tfidf", load_epitome(folder), seed=0)
    assert cold_scorer_trainings(preset, folder) == {"tfidf": 4, "minilm": 1}
    assert cold_scorer_trainings(preset, folder, force=True) == {"tfidf": 5, "minilm": 1}  # --force score retrains it
    estimate.say_scorers(preset, cold_scorer_trainings(preset, folder), gflops=100.0)
    line = capsys.readouterr().err
    took = estimate.describe(trained.meta["train_seconds"])
    assert f"4 of tfidf (about {took} each), 1 of minilm (time not measured here yet)" in line
    assert "scorers to train first (once on this machine" in line and line.endswith("and more in all\n")
    estimate.say_scorers(preset, {}, gflops=100.0)
    assert capsys.readouterr().err == ""  # everything cached: no line
    # On a machine without one, the shipped reference cost of the preset's kind with exactly its parameters (the
    # scorer's own precision is one of them, whatever the sweep's).
    monkeypatch.setenv("RELM_CACHE", str(tmp_path / "fresh"))
    cpu = load_preset("cpu")
    reference = json.loads(estimate.REFERENCE.read_text())["cpu"]["scorers"]
    cost = reference["gflop_eq_per_training"][cpu.scorer]
    seconds = estimate.scorer_training_seconds("cpu", cpu.scorer, cpu.scorer_params, 200.0)
    assert seconds == pytest.approx(cost / 200.0)
    other = cpu.scorer_params | {"precision": "bf16-mixed"}
    assert estimate.scorer_training_seconds("cpu", cpu.scorer, other, 200.0) is None
