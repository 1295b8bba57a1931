"""Shared fixtures: offline, W&B disabled, seeded, shared data found next to the project, one smoke world.

Tiers: `make test-fast` runs the unit tier (`-m "not slow"`); a test is slow when it is marked so or when
it uses a fixture that sweeps (`SWEEPING_FIXTURES`, marked here automatically). A test that needs a Debian
tool or ../shared data skips with the reason; `RELM_TEST_STRICT=1` (CI) turns those skips into failures.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import stat
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("WANDB_MODE", "disabled")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"


@pytest.fixture(autouse=True)
def _seed():
    random.seed(0)
    np.random.seed(0)
    try:
        import torch

        torch.manual_seed(0)
    except ImportError:
        pass


@pytest.fixture
def tmp_cache(tmp_path, monkeypatch):
    """An empty relm cache, so a test cannot see or spoil the real one."""
    cache = tmp_path / "relm-cache"
    monkeypatch.setenv("RELM_CACHE", str(cache))
    return cache


STRICT = os.environ.get("RELM_TEST_STRICT") == "1"  # CI: a missing tool or shared data fails the test


def missing(reason: str) -> None:
    """Skip the test with the reason; fail it under RELM_TEST_STRICT=1."""
    if STRICT:
        pytest.fail(f"RELM_TEST_STRICT=1: {reason}")
    pytest.skip(reason)


def shared_data(name: str) -> Path:
    """A folder of ../shared/data, or skip the test with the reason."""
    path = SHARED / "data" / name
    if not path.is_dir():
        missing(f"shared data {path} is absent")
    return path


def need_tool(tool: str) -> str:
    exe = shutil.which(tool)
    if exe is None:
        missing(f"{tool} is not installed (make setup installs it with apt-get)")
    return str(exe)


SWEEPING_FIXTURES = {"smoke_world", "smoke_cache"}  # a test using one is in the slow tier


def pytest_collection_modifyitems(config, items):
    for item in items:
        if SWEEPING_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)


@dataclass(frozen=True)
class SmokeWorld:
    """The smoke corpora and one clean 4-system smoke sweep, built once per test session. Read-only: its cache
    folder is write-protected, and a test that resumes, damages or extends a cache takes a copy (`smoke_cache`)."""

    base: Path
    synth: Path
    pretrain: Path
    epitome: Path
    cache: Path
    run_dir: Path

    @property
    def results(self) -> dict:
        return json.loads((self.run_dir / "results.json").read_text())

    def sweep_config(self, out_root: Path, **changes):
        """The world's sweep (4 systems, 1 seed, no progress, no W&B) into `out_root`, with `changes`."""
        from relm.bench.preparation import SweepConfig

        cfg = SweepConfig(
            datasets=["synth-esd"],
            preset="smoke",
            roots={"synth-esd": str(self.synth)},
            epitome=str(self.epitome),
            out_root=out_root,
            progress=False,
            tracking=False,
        )
        return replace(cfg, **changes)

    def cli_args(self, out: Path, *extra: str) -> list[str]:
        """`relm bench` on the smoke corpus with the world's EPITOME data (without the leading `relm`)."""
        return ["bench", "--preset", "smoke", "--root", str(self.synth), "--epitome", str(self.epitome)] + [
            "--no-wandb",
            "--quiet",
            "--out",
            str(out),
            *extra,
        ]


def _write_protect(folder: Path) -> None:
    for path in [folder, *folder.rglob("*")]:
        mode = path.stat().st_mode
        path.chmod(mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))


def copy_cache(source: Path, target: Path) -> Path:
    """A writable copy of a (write-protected) cache folder."""
    shutil.copytree(source, target)
    for path in [target, *target.rglob("*")]:
        path.chmod(path.stat().st_mode | stat.S_IWUSR)
    return target


@pytest.fixture(scope="session")
def smoke_world(tmp_path_factory) -> SmokeWorld:
    need_tool("espeak-ng")
    need_tool("sox")
    epitome = shared_data("epitome")
    from relm.bench.baseline import SMOKE_PRETRAIN, SMOKE_SYNTH
    from relm.bench.sweep import run_sweep
    from relm.data.synth import generate

    base = tmp_path_factory.mktemp("smoke-world")
    generate(base / "synth", SMOKE_SYNTH, progress=False)
    generate(base / "pretrain", SMOKE_PRETRAIN, progress=False)
    world = SmokeWorld(base, base / "synth", base / "pretrain", epitome, base / "cache", base)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("RELM_CACHE", str(world.cache))
        mp.setenv("RELM_SYNTH_PRETRAIN_ROOT", str(world.pretrain))
        run_dir = run_sweep(world.sweep_config(base / "runs"))
    world = SmokeWorld(base, world.synth, world.pretrain, epitome, world.cache, run_dir)
    _write_protect(world.cache)
    return world


@pytest.fixture
def smoke_cache(smoke_world, tmp_path, monkeypatch) -> Path:
    """A writable copy of the smoke world's cache, made RELM_CACHE for one test (the pre-training corpus too)."""
    cache = copy_cache(smoke_world.cache, tmp_path / "cache")
    monkeypatch.setenv("RELM_CACHE", str(cache))
    monkeypatch.setenv("RELM_SYNTH_PRETRAIN_ROOT", str(smoke_world.pretrain))
    return cache


def runtime_of(preset):
    """The CPU runtime a test runs a preset on: its own precision (`auto` is float32 here: nothing measured)."""
    import torch

    from relm.runtime import Runtime

    precision = "32-true" if preset.train.precision == "auto" else preset.train.precision
    return Runtime(torch.device("cpu"), precision, "a test's choice", torch.get_num_threads())
