"""Where a result came from: the relm commit, uncommitted changes, Python, library versions, the machine."""

from __future__ import annotations

import os
import platform
import subprocess
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from pydantic import ConfigDict, with_config
from typing_extensions import TypedDict  # pydantic reads its keys on Python 3.11

LIBRARIES = (
    "torch",
    "torchaudio",
    "transformers",
    "peft",
    "lightning",
    "torchmetrics",
    "scikit-learn",
    "scipy",
    "numpy",
    "pandas",
    "wandb",
    "soundfile",
)


@with_config(ConfigDict(extra="forbid"))
class Provenance(TypedDict):
    git_hash: str | None
    """Commit of the relm checkout that ran the sweep."""
    git_dirty: bool | None
    """True when the checkout had uncommitted changes."""
    python: str
    """Python version."""
    libraries: dict[str, str | None]
    """Versions of the libraries that shape the numbers."""
    platform: str
    """Operating system and machine."""
    cpu_count: int | None
    """Logical CPUs."""


def cpu_info() -> dict[str, str]:
    """The first processor's fields in /proc/cpuinfo (`model name`, `cpu family`, `model`, `flags`, ...); empty where
    there is no such file (not Linux)."""
    try:
        text = Path("/proc/cpuinfo").read_text(encoding="utf-8")
    except OSError:
        return {}
    info: dict[str, str] = {}
    for line in text.splitlines():
        key, _, value = line.partition(":")
        info.setdefault(key.strip(), value.strip())
    return info


def cpu_description() -> str:
    """The CPU as lscpu names it, with its family/model, logical CPUs and its bf16 instructions (CPUs differ between
    machines, and a timing means little without its CPU)."""
    info = cpu_info()
    bf16 = [flag for flag in ("avx512_bf16", "amx_bf16") if flag in info.get("flags", "").split()]
    return (
        f"{info.get('model name') or platform.processor() or 'unknown CPU'} (family {info.get('cpu family', '?')} "
        f"model {info.get('model', '?')}), {os.cpu_count()} CPUs, {' and '.join(bf16) or 'no avx512_bf16 or amx_bf16'}"
    )


def provenance() -> Provenance:
    here = Path(__file__).parent
    try:
        git = (
            subprocess.run(
                ["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10, cwd=here
            ).stdout.strip()
            or None
        )
        dirty: bool | None = bool(
            subprocess.run(
                ["git", "status", "--porcelain"], capture_output=True, text=True, timeout=10, cwd=here
            ).stdout.strip()
        )
    except (OSError, subprocess.SubprocessError):
        git, dirty = None, None
    libs: dict[str, str | None] = {}
    for lib in LIBRARIES:
        try:
            libs[lib] = version(lib)
        except PackageNotFoundError:
            libs[lib] = None
    return {
        "git_hash": git,
        "git_dirty": dirty,
        "python": platform.python_version(),
        "libraries": libs,
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
    }
