"""A run's saved trained parts (safetensors, with the identity of the model they belong to), checked on read."""

from __future__ import annotations

import json
from pathlib import Path

from safetensors import safe_open

from relm.cache import MANIFEST, folder_problem
from relm.errors import RelmError
from relm.io import safetensors_problem


def read_checkpoint_identity(path: Path, expected: dict) -> None:
    """A missing, damaged or foreign checkpoint is one error naming it (and what to do)."""
    again = "rerun its sweep with `--force train`"
    if not path.is_file():
        raise RelmError(f"{path}: checkpoint not found; {again}")
    if (path.parent / MANIFEST).is_file() and (problem := folder_problem(path.parent)):
        raise RelmError(f"{path}: the run's cache entry is damaged ({problem}); {again}")
    if problem := safetensors_problem(path):
        raise RelmError(f"{path}: damaged checkpoint ({problem}); {again}")
    with safe_open(str(path), "pt") as fh:
        meta = fh.metadata() or {}
    identity = json.loads(meta.get("identity", "{}"))
    if identity != expected:
        raise RelmError(f"{path}: checkpoint is for {identity or 'an unknown model'}, not {expected}")
