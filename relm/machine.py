"""What this machine computes fast, measured: bf16 against float32 matmuls (once per CPU, cached) and the float32
matmul throughput that makes timings from different machines comparable. Measures; decides nothing (the
`Runtime` does).
"""

from __future__ import annotations

import json
import platform
import time
from typing import Any

import numpy as np
import torch

from relm.io import atomic_write_json
from relm.keys import content_key
from relm.paths import cache_dir
from relm.provenance import cpu_info


def peak_gpu_memory_gib() -> float | None:
    if not torch.cuda.is_available():
        return None
    return round(torch.cuda.max_memory_allocated() / 2**30, 2)


PRECISION_PROBE = 512  # a bf16 against float32 matmul of this size decides `precision: auto` on a CPU


def _cpu_identity() -> str:
    """The CPU model and its flags (a bf16-capable CPU and one without differ here), and torch's version."""
    info = cpu_info()  # empty off Linux: the platform's name instead
    model = info.get("model name", "") if info else platform.processor()
    return content_key(model, sorted(info.get("flags", "").split()), torch.__version__)


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


BF16_MAX_SLOWDOWN = 1.0  # bf16 only when it is at least as fast as float32 (native bf16 units)


def matmul_gflops(size: int = 2048, repeats: int = 5) -> float:
    """This machine's float32 matmul throughput now (median of `repeats` size^3 products), the yardstick
    that makes timings from different machines comparable (`cost_gflop_eq` = seconds x GFLOP/s)."""
    return round(2 * size**3 / _matmul_seconds(torch.float32, size, repeats) / 1e9, 1)


def native_bf16() -> bool:
    """A bf16 matmul is at least as fast as float32 on this CPU (bf16 units, not emulation)."""
    return cpu_bf16_speed()["bf16_slowdown"] <= BF16_MAX_SLOWDOWN


def dispatched_operators(device: torch.device, call) -> dict:
    """Operators one call dispatches, the launch-bound part of its cost (they do not depend on width): aten ops not
    inside another aten op, and compiled kernels (Inductor's CPU kernels record themselves when
    `torch._inductor.config.cpp.enable_kernel_profile` is on); on CUDA also the GPU kernels and the GPU-busy share
    of the wall time, each kernel counted once (the union of their intervals)."""
    from torch.profiler import ProfilerActivity, profile

    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    sync()
    with profile(activities=activities) as prof:
        start = time.perf_counter()
        call()
        sync()
        wall = time.perf_counter() - start
    count = 0
    kernels: list[tuple[float, float]] = []
    for e in prof.events():
        if e.device_type == torch.autograd.DeviceType.CUDA:
            kernels.append((e.time_range.start, e.time_range.end))
            continue
        fused = "cpp_fused" in e.name or "triton_" in e.name
        if fused or (e.name.startswith("aten::") and not _inside_aten(e)):
            count += 1
    out: dict[str, Any] = {"operators": count}
    if kernels:
        busy, end = 0.0, float("-inf")
        for start, stop in sorted(kernels):  # the union of kernel intervals: each kernel counted once
            busy += max(0.0, stop - max(start, end))
            end = max(end, stop)
        out |= {"gpu_kernels": len(kernels), "gpu_busy_fraction": round(busy / 1e6 / wall, 3)}
    return out


def _inside_aten(event) -> bool:
    parent = event.cpu_parent
    while parent is not None:
        if parent.name.startswith("aten::"):
            return True
        parent = parent.cpu_parent
    return False
