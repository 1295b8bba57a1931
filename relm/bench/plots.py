"""The sweep's plots: metric bars with CIs, SER confusion matrices, the A/V/D head against its targets."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from relm.bench.comparisons import comparison_name  # noqa: E402
from relm.io import read_jsonl  # noqa: E402
from relm.metrics.table import EMPATHY_MECHANISMS  # noqa: E402
from relm.models.system_table import SYSTEMS, systems_with_role  # noqa: E402

BAR_METRICS = (*EMPATHY_MECHANISMS, "ua")


def plots(run_dir: Path, results: dict) -> list[Path]:
    folder = run_dir / "plots"
    folder.mkdir(exist_ok=True)
    made = []
    proposed = systems_with_role("proposed", results["systems"])
    for d in results["datasets"]:
        made.append(_bars(folder, results, d, proposed))
        made.append(_confusions(folder, results, d))
        made += _avd_scatter(run_dir, results, d, folder)
    return made


def _bars(folder: Path, results: dict, d: str, proposed: list[str]) -> Path:
    comps = results["comparisons"].get(d, {})
    systems = results["systems"]
    metrics = [m for m in BAR_METRICS if any(results["metrics"][d][s].get(m) is not None for s in systems)]
    fig, axes = plt.subplots(1, len(metrics), figsize=(3.2 * len(metrics), 3), squeeze=False)
    colors = {"zero_shot": "#999", "baseline": "#69c", "ablation": "#c96", "proposed": "#c33"}
    for ax, m in zip(axes[0], metrics):
        vals = [results["metrics"][d][s].get(m) or 0 for s in systems]
        errs = [results["metrics"][d][s].get(f"{m}_sd") or 0 for s in systems]
        roles = [SYSTEMS.get(s).role if s in SYSTEMS else "external" for s in systems]
        ax.bar(systems, vals, yerr=errs, color=[colors.get(r, "#6a6") for r in roles])
        ax.set_title(f"{d} {m.upper()}")
        ax.tick_params(axis="x", rotation=30)
        for k, s in enumerate(systems):
            for p in proposed:
                ci = comps.get(comparison_name(p, s), {}).get(m, {}).get("ci95")
                if ci and ci[0] is not None:
                    ax.annotate(f"Δ[{ci[0]:+.2f},{ci[1]:+.2f}]", (k, vals[k]), fontsize=6, ha="center")
    fig.tight_layout()
    path = folder / f"{d}-bars.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _confusions(folder: Path, results: dict, d: str) -> Path:
    systems = [s for s in results["systems"] if results["metrics_by_seed"][d][s]]
    fig, axes = plt.subplots(1, len(systems), figsize=(3.2 * len(systems), 3.2), squeeze=False)
    for ax, s in zip(axes[0], systems):
        run = results["metrics_by_seed"][d][s][0]
        cm = np.array(run["confusion"])
        ax.imshow(cm, cmap="Blues")
        labels = run["labels"]
        ax.set_xticks(range(cm.shape[1]), labels + ["unp."], rotation=60, fontsize=7)
        ax.set_yticks(range(cm.shape[0]), labels, fontsize=7)
        ax.set_title(f"{s}: UA {run['ua']:.2f}", fontsize=9)
        for (i, j), v in np.ndenumerate(cm):
            ax.text(j, i, str(v), ha="center", va="center", fontsize=6)
    fig.tight_layout()
    path = folder / f"{d}-confusion.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _avd_scatter(run_dir: Path, results: dict, d: str, folder: Path) -> list[Path]:
    with_avd = [s for s in results["systems"] if s in SYSTEMS and SYSTEMS.get(s).avd_loss]
    runs = results["runs"].get(d, {}).get(with_avd[0]) if with_avd else None
    if not runs:
        return []
    rows = [r for r in read_jsonl(run_dir / runs[0] / "responses.jsonl") if r.get("avd_pred")]
    if not rows:
        return []
    pred, target = np.array([r["avd_pred"] for r in rows]), np.array([r["avd_target"] for r in rows])
    fig, axes = plt.subplots(1, 3, figsize=(9, 3))
    for k, (ax, name) in enumerate(zip(axes, ("arousal", "valence", "dominance"))):
        ax.scatter(target[:, k], pred[:, k], s=6, alpha=0.6)
        ax.plot([0, 1], [0, 1], "k--", lw=0.5)
        ax.set_xlabel(f"target {name}")
        ax.set_ylabel(f"{with_avd[0]} A/V/D head")
    fig.tight_layout()
    path = folder / f"{d}-avd.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return [path]
