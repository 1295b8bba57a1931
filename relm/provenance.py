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
