"""Fault injection on the smoke sweep: damaged cache entries, interruptions and kills at many moments,
concurrent sweeps, unwritable and full folders. Every case must end with the clean run's metrics or
one `relm: error:` line, never a traceback, a half-written entry or an empty run folder."""

from __future__ import annotations

import errno
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from relm.cli import main
from relm.io import read_jsonl
from tests.conftest import copy_cache


@pytest.fixture
def world(smoke_world):
    """The session's smoke world as this module reads it: corpora under `base`, its clean sweep's metrics."""
    return {
        "base": smoke_world.base,
        "epitome": str(smoke_world.epitome),
        "cache": smoke_world.cache,
        "metrics": smoke_world.results["metrics_by_seed"],
    }


def _args(world, out: Path, *extra: str) -> list[str]:
    return [
        "bench",
        "--preset",
        "smoke",
        "--root",
        str(world["base"] / "synth"),
        "--epitome",
        world["epitome"],
        "--no-wandb",
        "--quiet",
        "--out",
        str(out),
        *extra,
    ]


def _results(out: Path) -> Path:
    (results,) = [p for p in out.glob("*/results.json") if p.parent.name != "latest"]
    return results


def _metrics(out: Path) -> dict:
    results = _results(out)
    return json.loads(results.read_text())["metrics_by_seed"]


def _scores(metrics: dict) -> dict:
    """The metrics without the training record (its timings differ between runs)."""
    return {
        d: {s: [{k: v for k, v in run.items() if k != "train"} for run in runs] for s, runs in by.items()}
        for d, by in metrics.items()
    }


@pytest.fixture
def cache(smoke_cache):
    """A writable copy of the clean sweep's cache for one test."""
    return smoke_cache


def _no_leftovers(cache: Path) -> None:
    """No temporary folder, half-written file or entry without its manifest."""
    stray = [p for p in cache.rglob("*") if p.name.endswith(".tmp")]
    assert not stray, stray
    for stage in ("features", "stage0", "teacher", "train", "scorers"):
        for entry in (cache / stage).iterdir() if (cache / stage).is_dir() else ():
            assert (entry / "ENTRY.json").is_file(), entry


def _one_error_line(err: str) -> str:
    lines = [line for line in err.strip().splitlines() if line.strip()]
    assert "Traceback" not in err, err
    errors = [line for line in lines if line.startswith("relm: error:")]
    assert len(errors) == 1, lines
    return errors[0]


# ---- 12 kinds of damage to a cache entry: each detected, quarantined and recomputed ----------------


def _truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _zero(path: Path) -> None:
    path.write_bytes(b"")


def _cut_mid_line(path: Path) -> None:
    text = path.read_text()
    path.write_text(text[: text.rindex("\n", 0, len(text) - 1) + 12])


def _drop_last_lines(path: Path) -> None:
    lines = path.read_text().splitlines(keepends=True)
    path.write_text("".join(lines[:-2]))


def _flip_a_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


# (what, entries it can hit, file in the entry, damage); the two groups each damage distinct entries, so one
# rerun per group shows every damage detected, quarantined and recomputed.
DAMAGE_GROUPS = {
    "first": [
        ("whisper features truncated", "features/*-whisper-*", "features.safetensors", _truncate),
        ("emotion features zero bytes", "features/*-emotion-*", "features.safetensors", _zero),
        ("teacher responses truncated", "teacher/*", "responses.json", _truncate),
        ("answers cut mid-line", "train/*", "answers.jsonl", _cut_mid_line),
        ("train record truncated", "train/*", "train.json", _truncate),
        ("checkpoint truncated", "train/*", "trained.safetensors", _truncate),
        ("scorer arrays truncated", "scorers/*", "tfidf.npz", _truncate),
        ("stage-0 encoder truncated", "stage0/*", "encoder.safetensors", _truncate),
    ],
    "second": [
        ("whisper features zero bytes", "features/*-whisper-*", "features.safetensors", _zero),
        ("emotion features truncated", "features/*-emotion-*", "features.safetensors", _truncate),
        ("teacher responses zero bytes", "teacher/*", "responses.json", _zero),
        ("answers last lines dropped", "train/*", "answers.jsonl", _drop_last_lines),
        ("checkpoint with a flipped byte", "train/*", "trained.safetensors", _flip_a_byte),
        ("scorer meta truncated", "scorers/*", "meta.json", _truncate),
    ],
}


@pytest.mark.parametrize("group", list(DAMAGE_GROUPS))
def test_damaged_cache_entries_are_quarantined_and_recomputed(world, cache, tmp_path, capsys, group):
    hit: dict[str, str] = {}  # entry -> what was done to it
    for what, entries, name, damage in DAMAGE_GROUPS[group]:
        target = next(p / name for p in sorted(cache.glob(entries)) if (p / name).is_file() and p.name not in hit)
        damage(target)
        hit[target.parent.name] = what
    assert main(_args(world, tmp_path / "runs")) == 0
    err = capsys.readouterr().err
    assert "Traceback" not in err
    for entry, what in hit.items():
        assert f"/{entry} damaged" in err, (what, err)
    assert len(list((cache / "quarantine").iterdir())) == len(hit)
    assert _scores(_metrics(tmp_path / "runs")) == _scores(world["metrics"])
    _no_leftovers(cache)


def test_force_recovers_from_any_damage(world, cache, tmp_path, capsys):
    for path in cache.glob("*/*/*"):
        if path.is_file() and path.parts[-3] in ("features", "stage0", "teacher", "train", "scorers"):
            _zero(path)
    assert main(_args(world, tmp_path / "runs", "--force", "features,stage0,teacher,train,score")) == 0
    assert "Traceback" not in capsys.readouterr().err
    assert _scores(_metrics(tmp_path / "runs")) == _scores(world["metrics"])
    _no_leftovers(cache)


def test_cache_verify_hashes_everything_and_gc_keeps_what_sweeps_name(world, cache, tmp_path, capsys):
    assert main(["cache", "verify", "--quiet"]) == 0
    _flip_a_byte(sorted(cache.glob("train/*/trained.safetensors"))[0])  # same size: only a full hash sees it
    assert main(["cache", "verify", "--quiet"]) == 1
    out = capsys.readouterr().out
    assert "1 damaged" in out and "does not match its sha256" in out
    stale = cache / "train" / "0123456789abcdef"
    shutil.copytree(sorted(cache.glob("train/*"))[0], stale)  # an entry no sweep names
    (cache / "train" / ".abc.xyz.tmp").mkdir()  # a killed writer's temporary folder
    assert main(["cache", "gc", "--runs", str(world["base"] / "runs")]) == 0
    assert not stale.exists() and not (cache / "train" / ".abc.xyz.tmp").exists()
    assert not (cache / "quarantine").exists()
    named = json.loads(_results(world["base"] / "runs").read_text())["cache_entries"]
    left = {f"{p.parent.name}/{p.name}" for p in cache.glob("*/*") if (p / "ENTRY.json").is_file()}
    assert left == set(named) - {n for n in named if not (cache / n).exists()}


def test_evaluate_on_a_damaged_checkpoint_is_one_line(world, cache, tmp_path, capsys):
    runs = tmp_path / "runs"
    assert main(_args(world, runs)) == 0
    _truncate(sorted(cache.glob("train/*/trained.safetensors"))[0])
    results = _results(runs)
    rc = main(["evaluate", "--run", str(results), "--dataset", "synth-esd", "--root", str(world["base"] / "synth")])
    assert rc == 2
    line = _one_error_line(capsys.readouterr().err)
    assert "trained.safetensors" in line and "--force train" in line


# ---- interruptions: at 10 moments in-process, and real signals in a subprocess ---------------------


TWO_SYSTEMS = ("--systems", "text,re-llm")  # a trained baseline and the proposed system: every stage, half the runs
THREE_SYSTEMS = ("--systems", "text-zs,text,re-llm")
ONE_SYSTEM = (
    "--systems",
    "re-llm",
)  # the proposed system alone: every stage, the fewest runs  # "between runs" needs a run still to come after two


def _clean(world, *systems: str) -> dict:
    """The clean sweep's scores of some systems."""
    return {d: {s: v for s, v in by.items() if s in systems} for d, by in _scores(world["metrics"]).items()}


def _seeded(world, cache: Path, *stages: str) -> Path:
    """A new cache holding only some stages of the clean sweep's (the rest is computed, and interrupted, anew)."""
    for stage in stages:
        copy_cache(world["cache"] / stage, cache / stage)
    return cache


def _count_commits(world, tmp_path, monkeypatch, *extra: str) -> int:
    calls = [0]
    real = os.replace

    def counting(*a, **k):
        calls[0] += 1
        return real(*a, **k)

    monkeypatch.setattr(os, "replace", counting)
    assert main(_args(world, tmp_path / "count", *extra)) == 0
    monkeypatch.setattr(os, "replace", real)
    return calls[0]


@pytest.mark.slow
def test_an_interruption_at_any_of_10_moments_resumes_to_identical_metrics(world, tmp_path, monkeypatch, capsys):
    """Ctrl-C just before the k-th atomic commit (features, stage 0, teacher, each run, report): relm's one line
    and exit 130, then a rerun ends with the clean metrics and no leftovers. The trained scorer is copied in
    (training it is most of a cold smoke sweep; an interrupted scorer entry is covered by the damage tests)."""
    monkeypatch.setenv("RELM_SYNTH_PRETRAIN_ROOT", str(world["base"] / "pretrain"))
    monkeypatch.setenv("RELM_CACHE", str(_seeded(world, tmp_path / "count-cache", "scorers")))
    total = _count_commits(world, tmp_path, monkeypatch, *ONE_SYSTEM)
    moments = sorted({max(1, round(i * total / 11)) for i in range(1, 11)})
    assert len(moments) == 10, (total, moments)
    real = os.replace
    for k in moments:
        cache = _seeded(world, tmp_path / f"cache-{k}", "scorers")
        monkeypatch.setenv("RELM_CACHE", str(cache))
        calls = [0]

        def interrupted(*a, _k=k, _calls=calls, **kw):
            _calls[0] += 1
            if _calls[0] == _k:
                raise KeyboardInterrupt
            return real(*a, **kw)

        monkeypatch.setattr(os, "replace", interrupted)
        assert main(_args(world, tmp_path / f"runs-{k}", *ONE_SYSTEM)) == 130, k
        monkeypatch.setattr(os, "replace", real)
        assert "relm: interrupted; finished stages are kept" in capsys.readouterr().err
        _no_leftovers(cache)
        assert main(_args(world, tmp_path / f"runs-{k}", *ONE_SYSTEM)) == 0, k
        assert _scores(_metrics(tmp_path / f"runs-{k}")) == _clean(world, "re-llm"), k


def _cli(world, cache: Path, out: Path) -> list[str]:
    return [sys.executable, "-m", "relm.cli", *_args(world, out)]


def _env(world, cache: Path) -> dict:
    return os.environ | {
        "RELM_CACHE": str(cache),
        "RELM_SYNTH_PRETRAIN_ROOT": str(world["base"] / "pretrain"),
        "HF_HUB_OFFLINE": "1",
        "WANDB_MODE": "disabled",
    }


def _training(cache: Path) -> bool:
    """Lightning is fitting a system: its CSV log folder exists inside a train entry being written."""
    return any((cache / "train").glob(".*.tmp/logs"))


def _between_runs(cache: Path) -> bool:
    return len(list((cache / "train").glob("*/ENTRY.json"))) >= 2 if (cache / "train").is_dir() else False


def _features_done(cache: Path) -> bool:
    return any((cache / "features").glob("*-whisper-*/ENTRY.json")) if (cache / "features").is_dir() else False


MOMENTS = {"after features": _features_done, "during training": _training, "between runs": _between_runs}


@pytest.mark.slow
@pytest.mark.parametrize(
    ("sig", "moment"),
    [(signal.SIGKILL, "after features"), (signal.SIGKILL, "during training"), (signal.SIGKILL, "between runs")]
    + [(signal.SIGINT, "during training")],
    ids=["kill-after-features", "kill-during-training", "kill-between-runs", "sigint-during-training"],
)
def test_a_killed_sweep_resumes_to_identical_metrics(world, tmp_path, monkeypatch, sig, moment):
    """A kill at a moment of a sweep of three systems; the stages before that moment come from the clean sweep."""
    before = ("scorers",) if moment == "after features" else ("scorers", "features", "stage0", "teacher")
    cache, out = _seeded(world, tmp_path / "cache", *before), tmp_path / "runs"
    # SIGINT as a terminal would deliver it: a test runner started in the background without job control
    # hands its children an ignored SIGINT, and Python then installs no KeyboardInterrupt handler.
    default_sigint = lambda: signal.signal(signal.SIGINT, signal.SIG_DFL)  # noqa: E731
    proc = subprocess.Popen(
        [*_cli(world, cache, out), *THREE_SYSTEMS],
        env=_env(world, cache),
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=default_sigint,
    )
    deadline = time.monotonic() + 120
    while not MOMENTS[moment](cache):
        assert proc.poll() is None and time.monotonic() < deadline, f"the sweep ended before the moment {moment}"
        time.sleep(0.05)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=120)
    if sig == signal.SIGKILL:
        assert proc.returncode == -signal.SIGKILL
    else:  # relm's own line and 130, not Lightning's message and exit 1
        assert proc.returncode == 130, err
        assert "relm: interrupted; finished stages are kept" in err and "Traceback" not in err, err
    for name, value in _env(world, cache).items():  # the resume and the clean-up run in this process
        monkeypatch.setenv(name, value)
    assert main([*_args(world, out), *THREE_SYSTEMS]) == 0
    assert _scores(_metrics(out)) == _clean(world, "text-zs", "text", "re-llm")
    assert main(["cache", "gc", "--runs", str(out), "--quiet"]) == 0  # removes what a kill -9 left behind
    _no_leftovers(cache)


def _together(world, cache: Path, out: Path, *extras: list[str]) -> list[subprocess.Popen]:
    """Start one `relm bench` per argument list at once on one cache; each must exit 0 without a traceback."""
    procs = [
        subprocess.Popen([*_cli(world, cache, out), *extra], env=_env(world, cache), stderr=subprocess.PIPE, text=True)
        for extra in extras
    ]
    errs = [p.communicate(timeout=300)[1] for p in procs]
    assert [p.returncode for p in procs] == [0] * len(procs), errs
    assert all("Traceback" not in e for e in errs)
    return procs


@pytest.mark.slow
def test_two_sweeps_started_together_both_finish_with_identical_metrics(world, tmp_path):
    cache, out = tmp_path / "cache", tmp_path / "runs"
    _together(world, cache, out, [], [])
    assert _scores(_metrics(out)) == _scores(world["metrics"])
    _no_leftovers(cache)
    assert len(list(cache.glob("train/*"))) == 4  # each run computed once, the other process reused it


# ---- disks and permissions ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "file", "message"),
    [
        (errno.ENOSPC, "answers.jsonl", "No space left on device"),  # a full cache disk
        (errno.EROFS, "responses.jsonl", "Read-only file system"),  # what root meets on a read-only mount
    ],
    ids=["full-disk", "read-only"],
)
def test_a_write_failing_during_a_run_is_one_line_and_leaves_nothing_half_written(
    world, tmp_path, monkeypatch, capsys, code, file, message
):
    cache = tmp_path / "cache"
    monkeypatch.setenv("RELM_CACHE", str(cache))
    monkeypatch.setenv("RELM_SYNTH_PRETRAIN_ROOT", str(world["base"] / "pretrain"))
    import relm.io

    real = relm.io.atomic_write_bytes

    def failing(path, data):
        if file in str(path):
            raise OSError(code, os.strerror(code), str(path))
        return real(path, data)

    monkeypatch.setattr(relm.io, "atomic_write_bytes", failing)
    assert main(_args(world, tmp_path / "runs")) == 2
    line = _one_error_line(capsys.readouterr().err)
    assert message in line and file in line
    _no_leftovers(cache)
    if file == "answers.jsonl":  # the cache write failed: no run entry, no sweep folder
        assert not list(cache.glob("train/*"))
        assert not (tmp_path / "runs").exists()


def test_too_little_free_disk_for_the_features_is_one_line_before_computing(world, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("RELM_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("RELM_SYNTH_PRETRAIN_ROOT", str(world["base"] / "pretrain"))
    monkeypatch.setattr(shutil, "disk_usage", lambda p: shutil._ntuple_diskusage(10**9, 10**9 - 1000, 1000))
    assert main(_args(world, tmp_path / "runs")) == 2
    line = _one_error_line(capsys.readouterr().err)
    assert "GiB free" in line and "Whisper features" in line
    _no_leftovers(tmp_path / "cache")


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_a_read_only_output_folder_is_one_line_before_any_work(world, tmp_path, capsys):
    out = tmp_path / "ro"
    out.mkdir()
    out.chmod(0o555)
    try:
        assert main(_args(world, out / "runs")) == 2
        assert "is not writable" in _one_error_line(capsys.readouterr().err)
    finally:
        out.chmod(0o755)


def test_out_pointing_at_a_file_is_one_line_before_any_work(world, tmp_path, capsys):
    (tmp_path / "file").write_text("x")
    assert main(_args(world, tmp_path / "file")) == 2
    assert "is a file, not a folder" in _one_error_line(capsys.readouterr().err)


# ---- one policy for bad audio, cached or not ------------------------------------------------------------


BAD_AUDIO = {"silent": "silent_audio", "nan": "nan_audio", "text": "unreadable_audio"}


def _corrupt_copy(world, tmp_path: Path, kinds: list[str]) -> tuple[Path, list[str]]:
    """A copy of the smoke corpus with one used test utterance damaged per kind; the root and the files."""
    import numpy as np
    import pandas as pd
    import soundfile as sf

    root = tmp_path / "synth"
    shutil.copytree(world["base"] / "synth", root)
    used = pd.read_parquet(json.loads(_results(world["base"] / "runs").read_text())["data"]["synth-esd"]["manifest"])
    wavs = [root / Path(p).relative_to(world["base"] / "synth") for p in used[used.split == "test"].path]
    for how, wav in zip(kinds, wavs):
        wave, sr = sf.read(wav, dtype="float32")
        if how == "silent":
            sf.write(wav, np.zeros_like(wave), sr, subtype="FLOAT")
        elif how == "nan":
            wave[len(wave) // 2] = np.nan
            sf.write(wav, wave, sr, subtype="FLOAT")
        else:
            wav.write_text("not audio")
    return root, [str(w) for w in wavs[: len(kinds)]]


def test_bad_audio_is_skipped_and_counted_whether_features_are_cached_or_not(
    world, cache, tmp_path, monkeypatch, capsys
):
    """The issue's case: damaged files under a warm cache must not reuse the clean results, and must be
    treated exactly as with a fresh cache (skipped, counted with their reasons, said in the output)."""
    root, wavs = _corrupt_copy(world, tmp_path, list(BAD_AUDIO))
    seen = []
    fresh = _seeded(world, tmp_path / "fresh-cache", "scorers", "stage0")  # no features: computed from the bad copy
    for name, cache_dir in (("warm", cache), ("fresh", fresh)):
        monkeypatch.setenv("RELM_CACHE", str(cache_dir))
        args = _args(world, tmp_path / f"runs-{name}", *TWO_SYSTEMS)
        args[args.index("--root") + 1] = str(root)
        assert main(args) == 0
        err = capsys.readouterr().err
        assert "skipped 3 file" in err and "Traceback" not in err, err
        data = json.loads(_results(tmp_path / f"runs-{name}").read_text())["data"]["synth-esd"]
        seen.append((data["skipped"], data["n"], data["data_hash"], _scores(_metrics(tmp_path / f"runs-{name}"))))
    assert seen[0] == seen[1]
    assert {reason: seen[0][0].get(reason) for reason in BAD_AUDIO.values()} == dict.fromkeys(BAD_AUDIO.values(), 1)
    answered = {
        r["id"] for p in (tmp_path / "runs-fresh").glob("*/synth-esd/*/seed0/responses.jsonl") for r in read_jsonl(p)
    }
    assert answered and not answered & {Path(w).stem for w in wavs}  # no damaged utterance reached a system


def test_bad_audio_with_strict_audio_is_one_line(world, tmp_path, monkeypatch, capsys):
    root, (wav,) = _corrupt_copy(world, tmp_path, ["silent"])
    monkeypatch.setenv("RELM_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("RELM_SYNTH_PRETRAIN_ROOT", str(world["base"] / "pretrain"))
    args = _args(world, tmp_path / "runs", "--strict-audio")
    args[args.index("--root") + 1] = str(root)
    assert main(args) == 2
    line = _one_error_line(capsys.readouterr().err)
    assert wav in line and "silent" in line
    assert not (tmp_path / "runs").exists()


@pytest.mark.slow
def test_two_shards_at_once_then_assemble_give_the_unsharded_metrics(world, tmp_path, monkeypatch):
    """[speed] --shard I/N: two shards started together share the cache (locks), each trains only its own
    runs, and --assemble writes the results from the cache without computing anything."""
    cache, out = tmp_path / "cache", tmp_path / "runs"
    procs = _together(world, cache, out, ["--shard", "0/2"], ["--shard", "1/2"])
    assert not any(out.glob("*/results.json"))  # a shard writes runs, not results
    writers = {}
    for manifest in cache.glob("train/*/ENTRY.json"):
        entry = json.loads(manifest.read_text())
        writers[(entry["inputs"]["system"], entry["inputs"]["seed"])] = entry["writer"]["pid"]
    assert len(writers) == 4  # every run trained exactly once
    pids = [p.pid for p in procs]
    assert [writers[(s, 0)] for s in ("text-zs", "text", "speech", "re-llm")] == [pids[0], pids[1], pids[0], pids[1]]
    before = {p: p.stat().st_mtime_ns for p in cache.rglob("ENTRY.json")}
    for name, value in _env(world, cache).items():
        monkeypatch.setenv(name, value)
    assert main([*_args(world, out), "--assemble"]) == 0
    assert {p: p.stat().st_mtime_ns for p in cache.rglob("ENTRY.json")} == before  # nothing computed
    assert _scores(_metrics(out)) == _scores(world["metrics"])


def test_assemble_refuses_when_a_shard_has_not_finished(world, cache, tmp_path, capsys):
    shutil.rmtree(sorted(cache.glob("train/*"))[0])
    assert main(_args(world, tmp_path / "runs", "--assemble")) == 2
    line = _one_error_line(capsys.readouterr().err)
    assert "is not in the cache: a shard has not finished" in line
    assert not (tmp_path / "runs").exists() or not list((tmp_path / "runs").glob("*/results.json"))
