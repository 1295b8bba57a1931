"""The sweep's plots: metric bars with CIs, SER confusion matrices, the A/V/D head against its targets."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from relm.bench.comparisons import comparison_name  # noqa: E402
from relm.io import read_jsonl  # noqa: E402
from relm.metrics.table import METRICS  # noqa: E402
from relm.models.system_table import EXTERNAL_COLOUR, SYSTEMS, systems_with_role  # noqa: E402


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
    bars = [n for n, m in METRICS.items() if m.plot]
    metrics = [m for m in bars if any(results["metrics"][d][s].get(m) is not None for s in systems)]
    fig, axes = plt.subplots(1, len(metrics), figsize=(3.4 * len(metrics), 3.4), squeeze=False)
    for ax, m in zip(axes[0], metrics, strict=False):
        vals = np.array([results["metrics"][d][s].get(m) or 0 for s in systems])
        sds = np.array([results["metrics"][d][s].get(f"{m}_sd") or 0 for s in systems])
        low = np.minimum(sds, vals)  # an sd bar never reaches below 0: no metric here is negative
        colours = [SYSTEMS.get(s).colour if s in SYSTEMS else EXTERNAL_COLOUR for s in systems]
        ax.bar(systems, vals, yerr=[low, sds], capsize=3, color=colours)
        top = METRICS.get(m).plot_top
        ax.set_ylim(0, top * 1.55)  # room for the CI labels above full bars
        ax.set_title(f"{d} {m.upper()}", fontsize=10)
        ax.set_ylabel(METRICS.get(m).plot or m, fontsize=8)
        ax.tick_params(axis="x", rotation=30, labelsize=8)
        for k, s in enumerate(systems):
            for p in proposed:
                ci = comps.get(comparison_name(p, s), {}).get(m, {}).get("ci95")
                if ci and ci[0] is not None:  # the proposed system minus this one, above the bar
                    ax.text(
                        k,
                        min(vals[k] + sds[k], top) + 0.04 * top,
                        f"Δ {ci[0]:+.2f}..{ci[1]:+.2f}",
                        fontsize=6,
                        ha="center",
                        rotation=90,
                        va="bottom",
                    )
    fig.tight_layout()
    path = folder / f"{d}-bars.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _confusions(folder: Path, results: dict, d: str) -> Path:
    systems = [s for s in results["systems"] if results["metrics_by_seed"][d][s]]
    fig, axes = plt.subplots(1, len(systems), figsize=(3.2 * len(systems), 3.2), squeeze=False)
    for ax, s in zip(axes[0], systems, strict=False):
        runs = results["metrics_by_seed"][d][s]
        cm = np.sum([np.array(r["confusion"]) for r in runs], axis=0)  # pooled over seeds
        ax.imshow(cm, cmap="Blues")
        labels = runs[0]["labels"]
        ax.set_xticks(range(cm.shape[1]), labels + ["unp."], rotation=60, fontsize=7)
        ax.set_yticks(range(cm.shape[0]), labels, fontsize=7)
        ax.set_xlabel("parsed answer", fontsize=7)
        ax.set_ylabel("gold", fontsize=7)
        seeds = f", {len(runs)} seeds pooled" if len(runs) > 1 else ""
        ax.set_title(f"{s}: UA {results['metrics'][d][s]['ua']:.2f}{seeds}", fontsize=9)
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
