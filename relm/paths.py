"""Where relm keeps its caches and generated data."""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir() -> Path:
    """relm's cache root: `RELM_CACHE`, else `$XDG_CACHE_HOME/relm`, else `~/.cache/relm`."""
    if env := os.environ.get("RELM_CACHE"):
        return Path(env).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "relm"


def hub_offline() -> bool:
    """True when the Hugging Face hub must not be contacted (HF_HUB_OFFLINE or TRANSFORMERS_OFFLINE)."""
    return any(
        os.environ.get(v, "").strip().lower() in {"1", "true", "yes", "on"}
        for v in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")
    )
