"""The learning-rate schedule: DeepSpeed's `WarmupDecayLR` (the release's), as a multiplier of the peak rate."""

from __future__ import annotations

import math


def warmup_decay(step: int, warmup_steps: int, total_steps: int, warmup: str = "linear") -> float:
    """The multiplier of the peak learning rate at optimizer step `step` (0-based).

    Warm-up over `warmup_steps`: `log`, DeepSpeed's default, is log(step + 1) / log(warmup_steps) (DeepSpeed
    takes at least 2 warm-up steps), so the first step runs at 0; `linear` is relm's (step + 1) / warmup_steps.
    Then both decay linearly to 0 at `total_steps`, as DeepSpeed's WarmupDecayLR does."""
    total = max(total_steps, warmup_steps + 1)
    if step < warmup_steps:
        if warmup == "log":
            return math.log(step + 1) / math.log(max(2, warmup_steps))
        return (step + 1) / warmup_steps
    return max(0.0, (total - step) / (total - warmup_steps))
