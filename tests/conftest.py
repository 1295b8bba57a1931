"""Shared fixtures: offline, W&B disabled, seeded, shared data found next to the project."""

from __future__ import annotations

import os
import random
import shutil
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


def shared_data(name: str) -> Path:
    """A folder of ../shared/data, or skip the test with the reason."""
    path = SHARED / "data" / name
    if not path.is_dir():
        pytest.skip(f"shared data {path} is absent")
    return path


def need_tool(tool: str) -> str:
    exe = shutil.which(tool)
    if exe is None:
        pytest.skip(f"{tool} is not installed (make setup installs it with apt-get)")
    return exe


def runtime_of(preset):
    """The CPU runtime a test runs a preset on: its own precision (`auto` is float32 here: nothing measured)."""
    import torch

    from relm.runtime import Runtime

    precision = "32-true" if preset.train.precision == "auto" else preset.train.precision
    return Runtime(torch.device("cpu"), precision, "a test's choice", torch.get_num_threads())
