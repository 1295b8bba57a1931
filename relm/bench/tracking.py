"""Weights & Biases tracking: one run per dataset/system/seed, grouped by sweep.

Offline unless the user sets WANDB_MODE (tests use `disabled`); a CSV log is always
written by Lightning next to the run. Every run is finished in a `finally`.
"""

from __future__ import annotations

import os
from pathlib import Path


def _mode() -> str:
    return os.environ.get("WANDB_MODE", "offline")


def start_run(cfg, sweep_id: str, dataset: str, system: str, seed: int, preset):
    if _mode() == "disabled":
        return None
    import wandb

    folder = os.environ.get("WANDB_DIR") or str(cfg.out_root / sweep_id)
    os.makedirs(folder, exist_ok=True)
    return wandb.init(
        project=os.environ.get("WANDB_PROJECT", "relm"),
        group=sweep_id,
        job_type=dataset,
        name=f"{dataset}/{system}/seed{seed}",
        mode=_mode(),
        reinit="finish_previous",
        dir=folder,
        config={"preset": preset.to_dict(), "dataset": dataset, "system": system, "seed": seed},
    )


def loggers(run) -> list:
    if run is None:
        return []
    from lightning.pytorch.loggers import WandbLogger

    return [WandbLogger(experiment=run)]


def log_run(run, dataset: str, metrics: dict, rows: list[dict]) -> None:
    if run is None:
        return
    import wandb

    flat = {f"{dataset}/{k}": v for k, v in metrics.items() if isinstance(v, (int, float)) and v is not None}
    flat |= {f"params/{k}": v for k, v in metrics.get("train", {}).items() if isinstance(v, (int, float))}
    run.summary.update(flat)
    cols = ["id", "transcript", "gold_emotion", "response", "ser_answer", "ser_label", "er", "ip", "ex"]
    run.log({f"{dataset}/responses": wandb.Table(columns=cols, data=[[r.get(c) for c in cols] for r in rows])})


def finish(run) -> None:
    if run is not None:
        run.finish()


def log_sweep_artifact(cfg, sweep_id: str, run_dir: Path) -> None:
    if _mode() == "disabled":
        return
    import wandb

    run = wandb.init(
        project=os.environ.get("WANDB_PROJECT", "relm"),
        group=sweep_id,
        job_type="summary",
        name=f"{sweep_id}/summary",
        mode=_mode(),
        reinit="finish_previous",
        dir=os.environ.get("WANDB_DIR") or str(run_dir),
    )
    try:
        art = wandb.Artifact(f"results-{sweep_id}", type="results")
        art.add_file(str(run_dir / "results.json"))
        run.log_artifact(art)
    finally:
        run.finish()
