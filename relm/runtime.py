"""Where a sweep runs: one device rule for every stage, and a preflight that fails before any work.

`runtime.device` (preset) or `--device`: `auto` is CUDA when torch sees a GPU, else the CPU;
`cuda` never falls back to the CPU. Features, stage 0, the teacher, training and generation
all run on the resolved device, and a trained module is moved back to it after Lightning's
teardown. `preflight` names everything a preset needs that is missing here, in one line.
"""

from __future__ import annotations

import json
import platform
import time

import numpy as np
import torch

from relm.config import Preset
from relm.errors import RelmError
from relm.io import atomic_write_json
from relm.keys import content_key
from relm.models import sources
from relm.paths import cache_dir, hub_offline


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
    names.append(preset.speech_init)
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


PRECISION_PROBE = 512  # a bf16 against float32 matmul of this size decides `precision: auto` on a CPU


def _cpu_identity() -> str:
    """The CPU model and its flags (a bf16-capable CPU and one without differ here), and torch's version."""
    try:
        text = open("/proc/cpuinfo", encoding="utf-8").read()  # noqa: SIM115 - Linux only; elsewhere platform
        model = next((ln.split(":", 1)[1].strip() for ln in text.splitlines() if ln.startswith("model name")), "")
        flags = next((ln.split(":", 1)[1].split() for ln in text.splitlines() if ln.startswith("flags")), [])
    except OSError:
        model, flags = platform.processor(), []
    return content_key(model, sorted(flags), torch.__version__)


def _matmul_seconds(dtype: torch.dtype, size: int = PRECISION_PROBE, repeats: int = 5) -> float:
    """Median wall time of one size x size matmul in `dtype`, after a warm-up."""
    a, b = torch.randn(size, size).to(dtype), torch.randn(size, size).to(dtype)
    a @ b
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        a @ b
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def cpu_bf16_speed() -> dict:
    """bf16 and float32 matmul time on this CPU, measured once per machine and cached."""
    path = cache_dir() / "machine" / f"precision-{_cpu_identity()}.json"
    if path.is_file():
        return json.loads(path.read_text())
    fp32, bf16 = _matmul_seconds(torch.float32), _matmul_seconds(torch.bfloat16)
    found = {"float32_s": fp32, "bfloat16_s": bf16, "bf16_slowdown": bf16 / fp32, "probe": PRECISION_PROBE}
    atomic_write_json(path, found)
    return found


def choose_precision(preset: Preset) -> tuple[str, str]:
    """(Lightning precision, why): `auto` is bf16 only where this machine runs it natively."""
    wanted = preset.train.precision
    if wanted != "auto":
        return wanted, "set by the preset"
    if resolve_device(preset).type == "cuda":
        if torch.cuda.is_bf16_supported():
            return "bf16-mixed", "auto: the GPU supports bf16"
        return "16-mixed", "auto: the GPU has no bf16"
    speed = cpu_bf16_speed()
    ratio = speed["bf16_slowdown"]
    if ratio <= BF16_MAX_SLOWDOWN:
        return "bf16-mixed", f"auto: a bf16 matmul takes {ratio:.2f}x the float32 time on this CPU"
    return "32-true", f"auto: a bf16 matmul takes {ratio:.1f}x the float32 time on this CPU (no native bf16)"


BF16_MAX_SLOWDOWN = 1.0  # bf16 only when it is at least as fast as float32 (native bf16 units)


def matmul_gflops(size: int = 2048, repeats: int = 5) -> float:
    """This machine's float32 matmul throughput now (median of `repeats` size^3 products), the yardstick
    that makes timings from different machines comparable (`cost_gflop_eq` = seconds x GFLOP/s)."""
    return round(2 * size**3 / _matmul_seconds(torch.float32, size, repeats) / 1e9, 1)
