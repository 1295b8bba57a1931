"""Where a sweep runs: one device rule for every stage, and a preflight that fails before any work.

`runtime.device` (preset) or `--device`: `auto` is CUDA when torch sees a GPU, else the CPU;
`cuda` never falls back to the CPU. Features, stage 0, the teacher, training and generation
all run on the resolved device, and a trained module is moved back to it after Lightning's
teardown. `preflight` names everything a preset needs that is missing here, in one line.
"""

from __future__ import annotations

import torch

from relm.config import Preset
from relm.errors import RelmError
from relm.models import sources
from relm.paths import hub_offline


def resolve_device(preset: Preset) -> torch.device:
    wanted = preset.runtime.device
    if wanted == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if wanted.startswith("cuda") and not torch.cuda.is_available():
        raise RelmError(
            f"preset {preset.name} runs on {wanted} (runtime.device), but torch sees no CUDA device; "
            "run it on a GPU machine, or pass --device cpu to run it on the CPU (very slow)"
        )
    if wanted not in ("cpu",) and not wanted.startswith("cuda"):
        raise RelmError(f"runtime.device: expected auto, cpu or cuda[:N], got {wanted!r}")
    return torch.device(wanted)


def preset_models(preset: Preset) -> list[str]:
    """Every registered model a preset loads."""
    names = [preset.speech_encoder.model, preset.llm.model, preset.teacher.model, preset.emotion_encoder.model]
    return list(dict.fromkeys(n for n in names if n))


def preflight(preset: Preset) -> torch.device:
    """The device to run on; or one error naming every missing device and model, and where each was looked for."""
    problems = []
    try:
        device = resolve_device(preset)
    except RelmError as exc:
        problems.append(str(exc))
        device = torch.device("cpu")
    for name in preset_models(preset):
        row = sources.status(name)
        # Ready, a PyPI copy present (converted on first use), or the hub online: it will load.
        if (
            not row["ready"]
            and not (row["source"] == "package" and "present" in row["detail"])
            and not (row["source"] == "hub" and not hub_offline())
        ):
            problems.append(f"model {name!r} ({row['hub_id'] or 'no hub id'}) is not available: {row['detail']}")
    if problems:
        raise RelmError(f"preset {preset.name} cannot run here: " + "; ".join(problems))
    return device


def peak_gpu_memory_gib() -> float | None:
    if not torch.cuda.is_available():
        return None
    return round(torch.cuda.max_memory_allocated() / 2**30, 2)
