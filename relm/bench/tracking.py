"""Weights & Biases as the dashboard: one run per dataset/system/seed, one summary run per sweep.

Offline unless WANDB_MODE says otherwise (tests use `disabled`); Lightning's CSV log is always
written next to the run. Run ids are deterministic (`<sweep>-<dataset>-<system>-s<seed>`, and
`<sweep>-summary`) with `resume="allow"`, so rerunning a command updates its runs instead of
adding copies. A run's config carries what decides whether two runs are comparable: the preset,
the scorer identity, the data hash, the protocol, the sweep id and the git state. The summary run
holds every mean +- sd, every comparison (difference, CI, raw and adjusted p), the report table,
the plots, and results.json as an artifact. Every run is finished in a `finally`.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from relm.keys import content_key
from relm.metrics.table import row_columns


def _mode() -> Literal["online", "offline", "disabled", "shared"]:
    mode = os.environ.get("WANDB_MODE", "offline")
    return mode if mode in ("online", "offline", "disabled", "shared") else "offline"  # type: ignore[return-value]


def run_id(*parts: object) -> str:
    """A W&B run id from its parts: letters, digits, `-` and `_` only, at most 64 characters."""
    text = re.sub(r"[^A-Za-z0-9_-]+", "_", "-".join(str(p) for p in parts))
    return text if len(text) <= 64 else f"{text[:47]}-{content_key(text)}"


def _init(cfg, sweep_id: str, folder: str, **kwargs):
    import wandb

    os.makedirs(folder, exist_ok=True)
    group = os.environ.get("WANDB_RUN_GROUP") or sweep_id  # the user's group wins
    return wandb.init(
        project=cfg.wandb_project or os.environ.get("WANDB_PROJECT", "relm"),
        entity=cfg.wandb_entity or os.environ.get("WANDB_ENTITY") or None,
        group=group,
        tags=list(cfg.wandb_tags),
        mode=_mode(),
        reinit="finish_previous",
        resume="allow",
        dir=folder,
        **kwargs,
    )


def start_run(cfg, sweep_id: str, dataset: str, system: str, seed: int, preset, context: dict):
    """A run for one dataset/system/seed; `context` holds the scorer, data hash, protocol and provenance."""
    if _mode() == "disabled":
        return None
    folder = os.environ.get("WANDB_DIR") or str(cfg.out_root / sweep_id)
    config = {
        "preset": preset.to_dict(),
        "dataset": dataset,
        "system": system,
        "seed": seed,
        "sweep_id": sweep_id,
        **context,
    }
    return _init(
        cfg,
        sweep_id,
        folder,
        id=run_id(sweep_id, dataset, system, f"s{seed}"),
        job_type=dataset,
        name=f"{dataset}/{system}/seed{seed}",
        config=config,
    )


def loggers(run) -> list:
    if run is None:
        return []
    from lightning.pytorch.loggers import WandbLogger

    return [WandbLogger(experiment=run)]


def log_curves(run, curves: Path | None, cached: bool) -> None:
    """Training curves reach each W&B run once: live through Lightning's logger when the run trains,
    else (a cached run) from its stored CSV log. A marker next to the run's copy of the log says it is done."""
    if run is None or curves is None:
        return
    marker = curves.parent / f".wandb-curves-{run.id}"
    if marker.exists():
        return
    if cached:
        import pandas as pd

        for record in pd.read_csv(curves).to_dict("records"):
            values = {k: v for k, v in record.items() if k not in ("step", "epoch") and pd.notna(v)}
            if values:
                run.log(values | {"trainer/global_step": int(record["step"]), "epoch": record.get("epoch")})
    marker.touch()


def log_run(run, dataset: str, metrics: dict, rows: list[dict]) -> None:
    if run is None:
        return
    import wandb

    flat = {f"{dataset}/{k}": v for k, v in metrics.items() if isinstance(v, int | float) and v is not None}
    train = metrics.get("train", {})
    flat |= {f"train/{k}": v for k, v in train.items() if isinstance(v, int | float) and not k.endswith("seconds")}
    flat |= {f"timing/{k}": v for k, v in train.items() if isinstance(v, int | float) and k.endswith("seconds")}
    run.summary.update(flat)
    cols = ["id", "transcript", "gold_emotion", "response", "ser_answer", "ser_label", "response_emotion"]
    cols += [c for c in row_columns() if rows and c in rows[0]]  # each metric's per-reply column
    run.log(
        {
            f"{dataset}/responses": wandb.Table(
                columns=list[str | int](cols), data=[[r.get(c) for c in cols] for r in rows]
            )
        }
    )


def finish(run) -> None:
    if run is not None:
        run.finish()


def summary_keys(results: Mapping[str, Any]) -> dict:
    """Flat W&B summary keys of a sweep: `<dataset>/<system>/<metric>` (mean, `_sd`) and
    `<dataset>/<comparison>/<metric>/<field>` for every test."""
    out: dict = {}
    for d, systems in results["metrics"].items():
        for system, row in systems.items():
            out |= {f"{d}/{system}/{k}": v for k, v in row.items() if isinstance(v, int | float) and v is not None}
            if row.get("collapse"):  # the collapse warning, in words, next to the system's scores
                out[f"{d}/{system}/collapse"] = row["collapse"]
    for d, teacher in results.get("teacher_replies", {}).items():
        out |= {f"{d}/teacher_targets/{k}": v for k, v in teacher.items() if isinstance(v, int | float)}
    for d, comps in results["comparisons"].items():
        for name, per_metric in comps.items():
            for metric, r in per_metric.items():
                base = f"{d}/{name.replace(' ', '_')}/{metric}"
                for field in (
                    "mean_a",
                    "mean_b",
                    "relative_improvement",
                    "p_permutation",
                    "p_wilcoxon",
                    "p_holm",
                    "p_bh",
                ):
                    if isinstance(r.get(field), int | float):
                        out[f"{base}/{field}"] = r[field]
                ci = r.get("ci95") or [None, None]
                if ci[0] is not None:
                    out[f"{base}/ci95_low"], out[f"{base}/ci95_high"] = ci
    return out


def confusion_matrices(results: Mapping[str, Any]) -> dict:
    """`confusion/<dataset>/<system>`: W&B confusion matrices of the SER answers, pooled over seeds."""
    import wandb

    out = {}
    for d, systems in results["metrics_by_seed"].items():
        for system, runs in systems.items():
            matrices = [r["confusion"] for r in runs if r.get("confusion")]
            if not matrices:
                continue
            counts = [
                [sum(m[i][j] for m in matrices) for j in range(len(matrices[0][0]))] for i in range(len(matrices[0]))
            ]
            y_true = [i for i, row in enumerate(counts) for j, n in enumerate(row) for _ in range(n)]
            preds = [j for row in counts for j, n in enumerate(row) for _ in range(n)]
            out[f"confusion/{d}/{system}"] = wandb.plot.confusion_matrix(
                y_true=y_true,
                preds=preds,
                class_names=[*runs[0]["labels"], "unparseable"],
                title=f"{d} {system}: SER answers, {len(runs)} seed(s) pooled",
            )
    return out


def log_sweep(cfg, sweep_id: str, sweep_dir: Path, results: Mapping[str, Any], table: list[str]) -> None:
    """The sweep's summary run: every mean and test as summary keys, the report table, plots, results.json."""
    if _mode() == "disabled":
        return
    import wandb

    folder = os.environ.get("WANDB_DIR") or str(sweep_dir)
    context = {
        "sweep_id": sweep_id,
        "scorer": results["scorer"].get("identity"),
        "provenance": results["provenance"],
        "datasets": results["datasets"],
        "systems": results["systems"],
        "seeds": results["seeds"],
    }
    run = _init(
        cfg,
        sweep_id,
        folder,
        id=run_id(sweep_id, "summary"),
        job_type="summary",
        name=f"{sweep_id}/summary",
        config={"preset": results["preset"], **context},
    )
    try:
        run.summary.update(summary_keys(results))
        header = [c.strip() for c in table[0].strip("|").split("|")]
        rows = [[c.strip() for c in line.strip("|").split("|")] for line in table[2:]]
        run.log({"results_table": wandb.Table(columns=list[str | int](header), data=rows)})
        run.log({f"plots/{p.stem}": wandb.Image(str(p)) for p in sorted((sweep_dir / "plots").glob("*.png"))})
        run.log(confusion_matrices(results))
        art = wandb.Artifact(run_id("results", sweep_id), type="results")
        for name in ("results.json", "report.md", "report.html", "report.tex"):
            if (sweep_dir / name).is_file():
                art.add_file(str(sweep_dir / name))
        run.log_artifact(art)
    finally:
        run.finish()
