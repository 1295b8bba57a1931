"""A sweep's wall time, estimated before it starts from stage costs in GFLOP-equivalents.

A stage's cost is its seconds x this machine's float32 matmul GFLOP/s (`cost_gflop_eq`), so a cost
measured on one machine predicts seconds on another: cost / GFLOP/s here. Costs per unit of work:
the shared stages (manifest, features, stage 0, teacher) per dataset, training and answering per run
of each system, scoring once per sweep; training the scorers (once per machine, then cached) is counted apart
from the scorer kinds' own training times (`say_scorers`). The costs come from this machine's last finished sweep of
the preset at the same precision (`RELM_CACHE/machine/costs-<preset>-<precision>.json`, written by every
sweep), else from the shipped reference (`reference_costs.json`, measured on the machine it names).
The estimate is for a cold cache: a stage whose cache entry exists takes seconds instead.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from relm.io import atomic_write_json
from relm.paths import cache_dir

REFERENCE = Path(__file__).with_name("reference_costs.json")
SHARED = ("manifest", "features", "stage0", "teacher")


def _machine_file(preset: str, precision: str) -> Path:
    return cache_dir() / "machine" / f"costs-{preset}-{precision}.json"


def unit_costs(timings_s: dict[str, float], gflops: float, datasets: int, seeds: int) -> dict[str, float]:
    """GFLOP-equivalents per unit of work, from one sweep's stage seconds."""
    out = {}
    for stage, seconds in timings_s.items():
        per = datasets if stage in SHARED else datasets * seeds if stage.startswith("train:") else 1
        out[stage] = round(seconds * gflops / max(per, 1), 1)
    return out


def record(preset: str, results: dict, cold: set[str]) -> None:
    """Remember the unit costs of this sweep's `cold` stages (computed, not read from the cache) for the next
    estimate on this machine; the other stages keep the costs recorded before."""
    gflops = results.get("calibration", {}).get("matmul_gflops")
    timings = {stage: s for stage, s in results.get("timings_s", {}).items() if stage in cold}
    if not gflops or not timings:
        return
    path = _machine_file(preset, results["precision"]["train_and_generate"])
    known = json.loads(path.read_text())["costs"] if path.is_file() else {}
    costs = known | unit_costs(timings, gflops, len(results["datasets"]), len(results["seeds"]))
    atomic_write_json(path, {"sweep_id": results["sweep_id"], "costs": costs})


def estimate_seconds(
    preset: str, precision: str, datasets: int, systems: list[str], seeds: int, gflops: float
) -> tuple[float, str] | None:
    """(cold-cache seconds, where the costs come from), or None when no cost of this preset at this precision
    (training and generation: a float32 machine takes longer per GFLOP/s than a bf16 one) is known."""
    path = _machine_file(preset, precision)
    if path.is_file():
        found = json.loads(path.read_text())
        costs, source = found["costs"], f"this machine's sweep {found['sweep_id']}"
    else:
        reference = json.loads(REFERENCE.read_text()).get(preset, {}).get(precision)
        if not reference:
            return None
        costs, source = reference["costs"], f"the reference costs measured on {reference['machine']}"
    measured = [cost for stage, cost in costs.items() if stage.startswith("train:")]
    if not measured:
        return None
    # A system without a measured cost counts as the costliest measured one (a new ablation trains like re-llm).
    per_run = {s: costs.get(f"train:{s}", max(measured)) for s in systems}
    total = sum(costs.get(s, 0.0) for s in SHARED) * datasets
    total += sum(per_run.values()) * datasets * seeds + costs.get("score", 0.0)
    return total / gflops, source


def describe(seconds: float) -> str:
    minutes = seconds / 60
    return f"{seconds:.0f} s" if minutes < 2 else f"{minutes:.0f} min" if minutes < 120 else f"{minutes / 60:.1f} h"


def say(preset: str, precision: str, datasets: int, systems: list[str], seeds: int, gflops: float) -> None:
    """One stderr line before the work: the sweep's wall time on this machine (`gflops`: its float32 matmul
    GFLOP/s now) for a cold cache."""
    found = estimate_seconds(preset, precision, datasets, systems, seeds, gflops)
    if found is None:
        return
    seconds, source = found
    print(
        f"relm: estimate: about {describe(seconds)} on this machine for a cold cache ({precision}, float32 matmul "
        f"{gflops:.0f} GFLOP/s here; costs from {source}); cached stages take seconds",
        file=sys.stderr,
    )


def scorer_training_seconds(preset: str, kind: str, params: dict, gflops: float) -> float | None:
    """One training of scorer `kind` here: this machine's newest cached one with these parameters, else the
    shipped reference cost of the preset's kind (None: neither). A scorer's precision is one of its parameters,
    not the sweep's."""
    from relm.scoring import empathy

    measured = empathy.measured_train_seconds(kind, **params)
    if measured is not None:
        return measured
    reference = json.loads(REFERENCE.read_text()).get(preset, {}).get("scorers", {})
    cost = reference.get("gflop_eq_per_training", {}).get(kind)
    return cost / gflops if cost is not None and reference.get("params", {}).get(kind, {}) == params else None


def say_scorers(preset, cold: dict[str, int], gflops: float) -> None:
    """One stderr line before the work when scorers must be trained (once per machine; cached after): how many
    of each kind, and how long when known."""
    if not cold:
        return
    parts, total, unknown = [], 0.0, False
    for kind, n in cold.items():
        params = preset.scorer_params if kind == preset.scorer else {}
        seconds = scorer_training_seconds(preset.name, kind, params, gflops)
        if seconds is None:
            unknown = True
            parts.append(f"{n} of {kind} (time not measured here yet)")
        else:
            total += n * seconds
            parts.append(f"{n} of {kind} (about {describe(seconds)} each)")
    known = f"about {describe(total)}" + (" and more" if unknown else "") + " in all" if total else "time unknown"
    print(
        f"relm: scorers to train first (once on this machine, cached after): {', '.join(parts)}; {known}",
        file=sys.stderr,
    )


GPU_FIGURES = Path(__file__).resolve().parents[2] / "results" / "gpu"  # a source checkout's benchmark figures
ESD_TRAIN_UTTERANCES = 15000  # ESD English: 10 speakers x 5 emotions x 300 training utterances


def training_pace(train: dict, device_name: str, folder: Path = GPU_FIGURES) -> str | None:
    """A line on a GPU preset's training pace from `benchmarks/throughput.py`'s measured figures: the step time of
    the configuration the preset runs (its batch, with every lever or none), and an ESD run at that pace."""
    batch = f"b{train['batch_size']}x{train['accumulate']}"
    lever = "all" if train.get("compile_layers") and train.get("lean_lora") else "baseline"
    for path in sorted(folder.glob("throughput-cuda*.json")):
        figures = json.loads(path.read_text())
        if figures.get("rehearsal") or figures.get("device") != device_name:
            continue
        rows = [r for r in figures["train"] if (r.get("batch"), r.get("lever")) == (batch, lever)]
        if rows and "seconds_per_step" in rows[0]:
            step = rows[0]["seconds_per_step"]
            steps = -(-ESD_TRAIN_UTTERANCES // (train["batch_size"] * train["accumulate"])) * train["epochs"]
            return (
                f"relm: measured on this GPU ({path.name}, {batch}, levers {lever}): {step:.2f} s per optimizer "
                f"step, {rows[0]['mfu']:.1%} MFU; an ESD run ({steps} steps) about {describe(steps * step)}"
            )
    return None


def say_training_pace(preset, device) -> None:
    """On CUDA, one stderr line: the measured pace of this preset's training on this GPU, or how to measure it."""
    import dataclasses

    import torch

    if device.type != "cuda":
        return
    name = torch.cuda.get_device_name(device)
    line = training_pace(dataclasses.asdict(preset.train), name)
    print(line or f"relm: no measured training pace for {name} yet: python benchmarks/throughput.py", file=sys.stderr)
