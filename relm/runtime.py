"""Where and how a sweep computes: one `Runtime`, resolved once after every input is validated, passed down.

`runtime.device` (preset) or `--device`: `auto` is CUDA when torch sees a GPU, else the CPU;
`cuda` never falls back to the CPU. Features, stage 0, the teacher, training, generation and the
scorers all run on `Runtime.device`, and a trained module is moved back to it after Lightning's
teardown. `preflight` names everything a preset needs that is missing here, in one line. No other
module resolves a device or a precision: they take the `Runtime` they are given.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch

from relm.config import Preset
from relm.errors import RelmError
from relm.machine import BF16_MAX_SLOWDOWN, cpu_bf16_speed
from relm.models import sources
from relm.paths import hub_offline


def resolve_device(wanted: str, owner: str) -> torch.device:
    """`auto`, `cpu` or `cuda[:N]` -> a torch device; `owner` (e.g. "preset paper") names who asked, in errors."""
    if wanted == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if wanted.startswith("cuda") and not torch.cuda.is_available():
        raise RelmError(
            f"{owner} runs on {wanted} (runtime.device), but torch sees no CUDA device; "
            "run it on a GPU machine, or pass --device cpu to run it on the CPU (very slow)"
        )
    if wanted not in ("cpu",) and not wanted.startswith("cuda"):
        raise RelmError(f"runtime.device: expected auto, cpu or cuda[:N], got {wanted!r}")
    return torch.device(wanted)


def preset_models(preset: Preset) -> list[str]:
    """Every registered model a preset loads."""
    names = [preset.speech_encoder.model, preset.llm.model, preset.teacher.model, preset.emotion_encoder.model]
    names.append(preset.speech_init)
    return list(dict.fromkeys(n for n in names if n))


def preflight(preset: Preset) -> torch.device:
    """The device to run on; or one error naming every missing device and model, and where each was looked for."""
    problems = []
    try:
        device = resolve_device(preset.runtime.device, f"preset {preset.name}")
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


def choose_precision(preset: Preset, device: torch.device) -> tuple[str, str]:
    """(Lightning precision, why): `auto` is bf16 only where this machine runs it natively."""
    wanted = preset.train.precision
    if wanted != "auto":
        return wanted, "set by the preset"
    if device.type == "cuda":
        if torch.cuda.is_bf16_supported():
            return "bf16-mixed", "auto: the GPU supports bf16"
        return "16-mixed", "auto: the GPU has no bf16"
    speed = cpu_bf16_speed()
    ratio = speed["bf16_slowdown"]
    if ratio <= BF16_MAX_SLOWDOWN:
        return "bf16-mixed", f"auto: a bf16 matmul takes {ratio:.2f}x the float32 time on this CPU"
    return "32-true", f"auto: a bf16 matmul takes {ratio:.1f}x the float32 time on this CPU (no native bf16)"


FEATURES_PRECISION = "32-true"  # the frozen encoders' features are computed in float32 on every device


@dataclass(frozen=True)
class Runtime:
    """Where and how one sweep (or evaluation) computes; resolved once by `resolve_runtime`."""

    device: torch.device
    """every stage's device: features, stage 0, teacher, training, generation, scorers"""
    precision: str
    """Lightning precision of training and generation (32-true, bf16-mixed, 16-mixed)"""
    precision_why: str
    """why: set by the preset, or what `auto` measured"""
    threads: int
    """torch's intra-op threads (preset `threads`, else every core)"""

    @property
    def bf16(self) -> bool:
        return self.precision.startswith("bf16")

    @property
    def accelerator(self) -> str:
        """Lightning's name for the device's kind."""
        return "gpu" if self.device.type == "cuda" else "cpu"

    def apply(self) -> None:
        """Set the process-wide settings (torch's threads) in the sweep's (or evaluation's) process."""
        torch.set_num_threads(self.threads)

    def precision_record(self) -> dict[str, str]:
        """results.json's `precision`: each stage's, and why (the sweep adds the teacher's weight dtype)."""
        return {"train_and_generate": self.precision, "features": FEATURES_PRECISION, "why": self.precision_why}


def resolve_runtime(preset: Preset) -> Runtime:
    """The preset's runtime on this machine: `preflight`, then precision (`auto` may measure the CPU once and cache
    it, so call this only after every other input is validated) and threads."""
    device = preflight(preset)
    precision, why = choose_precision(preset, device)
    return Runtime(device, precision, why, preset.threads or _all_cores())


def runtime_for_device(wanted: str) -> Runtime:
    """A float32 runtime on `auto`, `cpu` or `cuda[:N]`, without a preset (`relm scorer --device`)."""
    return Runtime(resolve_device(wanted, "--device"), "32-true", "set by the caller", _all_cores())


def _all_cores() -> int:
    return max(1, os.cpu_count() or 1)
