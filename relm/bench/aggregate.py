"""A new results record, per-seed run metrics filed into it, and their mean over seeds (`metrics`)."""

from __future__ import annotations

from typing import Any

import numpy as np

from relm.metrics.table import EMPATHY_MECHANISMS, METRICS
from relm.provenance import provenance
from relm.results import SCHEMA_VERSION, Results, ScorerInfo
from relm.scoring.congruence import detector_accuracy


def add_run(results: Results, dataset: str, system: str, metrics: dict, folder: str) -> None:
    """File one run's metrics and its folder (relative to the sweep folder)."""
    results["metrics_by_seed"].setdefault(dataset, {}).setdefault(system, []).append(metrics)
    results["runs"].setdefault(dataset, {}).setdefault(system, []).append(folder)


def aggregate(by_seed: dict[str, list[dict]]) -> dict[str, dict[str, Any]]:
    """metrics[system][metric] = mean over seeds; `<metric>_sd` when there are several seeds."""
    out = {}
    for system, runs in by_seed.items():
        row: dict[str, Any] = {}
        for m in METRICS.names():
            vals = [float(r[m]) for r in runs if r.get(m) is not None]
            row[m] = float(np.mean(vals)) if vals else None
            if len(vals) > 1:
                row[f"{m}_sd"] = float(np.std(vals, ddof=1))
        for mech in EMPATHY_MECHANISMS:
            if runs and runs[0].get(f"{mech}_levels") is not None:
                row[f"{mech}_levels"] = np.mean([r[f"{mech}_levels"] for r in runs], axis=0).tolist()
        for key in ("distinct_replies", "distinct_transcripts", "distinct_1_ci95", "distinct_2_ci95"):
            found = [r[key] for r in runs if r.get(key) is not None]  # reply diversity: mean over seeds
            row[key] = np.mean(found, axis=0).tolist() if found else None
        warnings = sorted({r["collapse"] for r in runs if r.get("collapse")})
        row["collapse"] = " ".join(warnings) if warnings else None  # relm.scoring.responses.collapse_warning
        row["n_unparseable"] = int(sum(r.get("n_unparseable", 0) for r in runs))
        row["n"] = int(runs[0].get("n", 0)) if runs else 0
        out[system] = row
    return out


def new_results(
    sweep_id: str,
    preset: dict,
    preset_hash: str,
    datasets: list[str],
    systems: list[str],
    seeds: list[int],
    scorer: ScorerInfo,
) -> Results:
    return {
        "schema_version": SCHEMA_VERSION,
        "sweep_id": sweep_id,
        "preset": preset,
        "preset_hash": preset_hash,
        "datasets": datasets,
        "systems": systems,
        "seeds": seeds,
        "scorer": scorer,
        "provenance": provenance(),
        "protocols": {},
        "data": {},
        "metrics": {},
        "metrics_by_seed": {},
        "comparisons": {},
        "runs": {},
        "congruence_detector": detector_accuracy(),
    }
