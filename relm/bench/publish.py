"""Write what a sweep (or an evaluation) produced: per-run files, results.json, the report, `latest`."""

from __future__ import annotations

import json
import resource
from pathlib import Path

import torch

from relm.bench.aggregate import add_run, aggregate
from relm.bench.comparisons import adjust, compare_systems, comparison_name, proposed_vs_others
from relm.bench.exports import write_exports
from relm.bench.records import ScoredRow
from relm.bench.report import point_latest, write_report
from relm.bench.stages import StageTimer
from relm.cache import path_lock, used_entries
from relm.io import atomic_write_bytes, atomic_write_json, atomic_write_text, json_text, jsonl_text
from relm.machine import matmul_gflops, peak_gpu_memory_gib
from relm.results import Results, validate_results


def run_folder(dataset: str, system: str, seed: int) -> str:
    """A run's folder inside the sweep folder."""
    return f"{dataset}/{system}/seed{seed}"


def write_run(
    results: Results,
    rows_by_system: dict[str, list[list[ScoredRow]]],
    sweep_dir: Path,
    dataset: str,
    system: str,
    seed: int,
    rows: list[ScoredRow],
    metrics: dict,
    curves: Path | None = None,
) -> Path | None:
    """Write one run's responses, metrics and training curves (`logs/metrics.csv`, a copy of the cache
    entry's), and file them in the results being built; returns the copy of the curves, if any."""
    folder = run_folder(dataset, system, seed)
    atomic_write_text(sweep_dir / folder / "responses.jsonl", jsonl_text(rows))
    atomic_write_json(sweep_dir / folder / "metrics.json", metrics)
    rows_by_system.setdefault(system, []).append(rows)
    add_run(results, dataset, system, metrics, folder)
    if curves is None or not curves.is_file():
        return None
    return atomic_write_bytes(sweep_dir / folder / "logs" / curves.name, curves.read_bytes())


def close_dataset(
    results: Results, dataset: str, rows_by_system: dict[str, list[list[ScoredRow]]], external: tuple[str, ...] = ()
) -> None:
    """Mean metrics over seeds and the paired comparisons of one dataset: the proposed system against the
    others, and each `external` system (`relm evaluate --responses`) against every system of the sweep."""
    results["metrics"][dataset] = aggregate(results["metrics_by_seed"][dataset])
    own = [s for s in results["systems"] if s not in external]
    comparisons = proposed_vs_others(rows_by_system, own)
    for name in external:
        for other in own:
            comparisons[comparison_name(name, other)] = compare_systems(rows_by_system[name], rows_by_system[other])
    results.setdefault("hypotheses", {})[dataset] = adjust(comparisons, own)
    samples = results.get("teacher_replies", {}).get(dataset, {}).get("samples", [])
    by_id = {s: {r["id"]: r["response"] for r in runs[0]} for s, runs in rows_by_system.items() if runs}
    results.setdefault("reply_samples", {})[dataset] = [  # type: ignore[typeddict-unknown-key]
        s | {"replies": {system: replies.get(s["utt_id"]) for system, replies in by_id.items()}} for s in samples
    ]
    if comparisons:
        results["comparisons"][dataset] = comparisons


def finish(results: Results, timer: StageTimer, sweep_dir: Path, out_root: Path) -> None:
    """Timings and memory, then results.json, the report and `latest`."""
    results["timings_s"] = timer.rounded()
    gflops = matmul_gflops()
    total = sum(timer.seconds.values())
    results["calibration"] = {
        "matmul_gflops": gflops,
        "matmul": "float32 2048^3, median of 5, this process",
        "threads": torch.get_num_threads(),
    }
    results["cost_gflop_eq"] = round(total * gflops)
    results["cost_share"] = {k: round(v / total, 3) for k, v in timer.seconds.items()} if total else {}
    results["peak_rss_gib"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 2)
    results["peak_gpu_memory_gib"] = peak_gpu_memory_gib()
    results["cache_entries"] = used_entries(reset=True)
    text = json_text(results)
    validate_results(json.loads(text), str(sweep_dir / "results.json"))  # a schema slip fails before any write
    with path_lock(sweep_dir):  # results, report and exports of one process, never a mix of two
        atomic_write_text(sweep_dir / "results.json", text)
        write_report(sweep_dir, dict(results))
        write_exports(sweep_dir, dict(results))
        point_latest(out_root, sweep_dir)
