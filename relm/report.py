"""results.json helpers, the paper-style report (Markdown + offline HTML) and plots."""

from __future__ import annotations

import html
import os
import platform
import subprocess
from pathlib import Path

import numpy as np

from relm.io import atomic_write_text, read_jsonl

METRICS = ("er", "ip", "ex", "ua", "wa", "macro_f1", "ua_head")
LIBS = ("torch", "torchaudio", "transformers", "peft", "lightning", "torchmetrics", "scikit-learn", "scipy",
        "numpy", "pandas", "wandb", "soundfile")


def provenance() -> dict:
    from importlib.metadata import PackageNotFoundError, version

    try:
        git = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10,
                             cwd=Path(__file__).parent).stdout.strip() or None
        dirty = bool(subprocess.run(["git", "status", "--porcelain"], capture_output=True, text=True, timeout=10,
                                    cwd=Path(__file__).parent).stdout.strip())
    except (OSError, subprocess.SubprocessError):
        git, dirty = None, None
    libs = {}
    for lib in LIBS:
        try:
            libs[lib] = version(lib)
        except PackageNotFoundError:
            libs[lib] = None
    return {"git_hash": git, "git_dirty": dirty, "python": platform.python_version(), "libraries": libs,
            "platform": platform.platform(), "cpu_count": os.cpu_count()}


def aggregate(by_seed: dict[str, list[dict]]) -> dict:
    """metrics[system][metric] = mean over seeds; `<metric>_sd` when there are several seeds."""
    out = {}
    for system, runs in by_seed.items():
        row = {}
        for m in METRICS:
            vals = [r.get(m) for r in runs if r.get(m) is not None]
            row[m] = float(np.mean(vals)) if vals else None
            if len(vals) > 1:
                row[f"{m}_sd"] = float(np.std(vals, ddof=1))
        for m in ("er_levels", "ip_levels", "ex_levels"):
            if runs and runs[0].get(m) is not None:
                row[m] = np.mean([r[m] for r in runs], axis=0).tolist()
        row["n_unparseable"] = int(sum(r.get("n_unparseable", 0) for r in runs))
        row["n"] = int(runs[0].get("n", 0)) if runs else 0
        out[system] = row
    return out


def _fmt(v, digits=3) -> str:
    return "n/a" if v is None or (isinstance(v, float) and np.isnan(v)) else f"{v:.{digits}f}"


def _stars(p) -> str:
    return "" if p is None else "**" if p < 0.01 else "*" if p < 0.05 else ""


def table_rows(results: dict) -> list[str]:
    """The paper-style table: rows systems, columns ER/IP/EX/UA per dataset."""
    cols = ("er", "ip", "ex", "ua", "ua_head")
    head = "| system | " + " | ".join(f"{d} {c.upper()}" for d in results["datasets"] for c in cols) + " |"
    lines = [head, "|" + "---|" * (1 + len(cols) * len(results["datasets"]))]
    for system in results["systems"]:
        cells = []
        for d in results["datasets"]:
            row = results["metrics"].get(d, {}).get(system, {})
            comp = results["comparisons"].get(d, {})
            for c in cols:
                v = row.get(c)
                cell = _fmt(v) + (f" ± {_fmt(row[c + '_sd'])}" if row.get(c + "_sd") is not None else "")
                if system == "re-llm" and v is not None:  # marked only when better than every baseline
                    tests = [comp[k][c] for k in comp if c in comp[k]]
                    ps = [t.get("p_holm") for t in tests]
                    better = all(t["mean_a"] is not None and t["mean_b"] is not None and t["mean_a"] > t["mean_b"]
                                 for t in tests)
                    cell += _stars(max(ps)) if tests and better and None not in ps else ""
                cells.append(cell)
        lines.append(f"| {system} | " + " | ".join(cells) + " |")
    return lines


def comparison_rows(results: dict) -> list[str]:
    lines = ["| dataset | comparison | metric | re-llm | baseline | rel. impr. | 95% CI of diff | p (Wilcoxon) "
             "| p (perm./McNemar) | p (Holm) |", "|---|---|---|---|---|---|---|---|---|---|"]
    for d, comps in results["comparisons"].items():
        for name, per in comps.items():
            for metric, r in per.items():
                p_main = r.get("p_permutation") if r.get("p_permutation") is not None else r.get("p_mcnemar")
                ci = r.get("ci95") or [None, None]
                rel = _fmt(r["relative_improvement"], 1)
                lines.append(f"| {d} | {name} | {metric.upper()} | {_fmt(r['mean_a'])} | {_fmt(r['mean_b'])} | "
                             f"{rel}{'' if rel == 'n/a' else '%'} | [{_fmt(ci[0])}, {_fmt(ci[1])}] | "
                             f"{_fmt(r.get('p_wilcoxon'), 4)} | {_fmt(p_main, 4)} | {_fmt(r.get('p_holm'), 4)} |")
    return lines


def markdown(results: dict) -> str:
    prov = results["provenance"]
    sc = results["scorer"]
    out = [f"# relm sweep `{results['sweep_id']}`", "",
           f"Preset `{results['preset']['name']}` ({results['preset_hash']}), seeds {results['seeds']}, "
           f"git {str(prov['git_hash'])[:10]}{' (dirty)' if prov['git_dirty'] else ''}, "
           f"protocols: {', '.join(results['protocols'].values())}.", ""]
    if sc.get("available"):
        val = sc["validation"]
        out.append(f"Empathy scorer `{sc['identity']}`; held-out macro-F1 ER {val['ER']['macro_f1']:.3f}, "
                   f"IP {val['IP']['macro_f1']:.3f}, EX {val['EX']['macro_f1']:.3f}.")
    else:
        out.append(f"**Empathy metrics unavailable**: {sc['reason']}")
    out += ["", "## Results (mean over seeds; * / ** : re-llm better than every baseline, Holm-adjusted "
            "p < 0.05 / 0.01)", "", *table_rows(results), "",
            "UA: generative SER answer parsed to a label (unparseable answers count as wrong); UA_HEAD: the SER "
            "head on the pooled adapter output.", "", "## Paired comparisons", "", *comparison_rows(results), "",
            "## Data", ""]
    for d, info in results["data"].items():
        out.append(f"- {d}: {info['n']} utterances, A/V/D targets: {info['avd_targets']}; teacher "
                   f"`{info['teacher']['identity']}` ({info['teacher']['prompt']} prompt), "
                   f"{info['teacher']['dropped_by_cleaning']} responses dropped by cleaning.")
    for d, ref in results.get("teacher_reference", {}).items():
        if ref.get("n"):
            out.append(f"- {d}: step-1 expected responses vs text-zs on the same {ref['n']} test utterances: " +
                       ", ".join(f"{m.upper()} {ref[m]['mean_a']:.3f} vs {ref[m]['mean_b']:.3f} "
                                 f"(p {ref[m]['p_permutation']:.4f})" for m in ("er", "ip", "ex")))
    out += ["", "## Where the time went (seconds)", "", "| stage | s |", "|---|---|"]
    out += [f"| {k} | {v} |" for k, v in results["timings_s"].items()]
    if results.get("peak_rss_gib"):
        out.append(f"| peak resident memory (GiB) | {results['peak_rss_gib']} |")
    out += ["", "## Plots", ""] + [f"![{p.stem}](plots/{p.name})" for p in sorted(results.get("_plots", []))]
    return "\n".join(out) + "\n"


def to_html(md: str, title: str) -> str:
    """A small Markdown subset (headings, tables, images, paragraphs) as a self-contained page."""
    body, in_table = [], False
    for line in md.splitlines():
        if line.startswith("|"):
            cells = [html.escape(c.strip()) for c in line.strip("|").split("|")]
            if set("".join(cells)) <= set("-"):
                continue
            tag = "th" if not in_table else "td"
            body.append(("<table>" if not in_table else "") + "<tr>" +
                        "".join(f"<{tag}>{c}</{tag}>" for c in cells) + "</tr>")
            in_table = True
            continue
        if in_table:
            body.append("</table>")
            in_table = False
        if line.startswith("#"):
            level = len(line) - len(line.lstrip("#"))
            body.append(f"<h{level}>{html.escape(line.lstrip('#').strip())}</h{level}>")
        elif line.startswith("!["):
            src = line[line.index("(") + 1 : -1]
            body.append(f'<img src="{html.escape(src)}" style="max-width:48%">')
        elif line.strip():
            body.append(f"<p>{html.escape(line)}</p>")
    if in_table:
        body.append("</table>")
    style = ("body{font-family:sans-serif;max-width:1200px;margin:auto}table{border-collapse:collapse}"
             "td,th{border:1px solid #ccc;padding:3px 6px;font-size:13px}")
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
            f"<style>{style}</style></head><body>{''.join(body)}</body></html>")


def plots(run_dir: Path, results: dict) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    folder = run_dir / "plots"
    folder.mkdir(exist_ok=True)
    made = []
    for d in results["datasets"]:
        comps = results["comparisons"].get(d, {})
        metrics = [m for m in ("er", "ip", "ex", "ua") if any(results["metrics"][d][s].get(m) is not None
                                                              for s in results["systems"])]
        fig, axes = plt.subplots(1, len(metrics), figsize=(3.2 * len(metrics), 3), squeeze=False)
        for ax, m in zip(axes[0], metrics):
            vals = [results["metrics"][d][s].get(m) or 0 for s in results["systems"]]
            errs = [results["metrics"][d][s].get(f"{m}_sd") or 0 for s in results["systems"]]
            ax.bar(results["systems"], vals, yerr=errs, color=["#999", "#69c", "#c96", "#c33"][: len(vals)])
            ax.set_title(f"{d} {m.upper()}")
            ax.tick_params(axis="x", rotation=30)
            for k, s in enumerate(results["systems"]):
                ci = comps.get(f"re-llm vs {s}", {}).get(m, {}).get("ci95")
                if ci and ci[0] is not None:
                    ax.annotate(f"Δ[{ci[0]:+.2f},{ci[1]:+.2f}]", (k, vals[k]), fontsize=6, ha="center")
        fig.tight_layout()
        made.append(folder / f"{d}-bars.png")
        fig.savefig(made[-1], dpi=110)
        plt.close(fig)
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
        made.append(folder / f"{d}-confusion.png")
        fig.savefig(made[-1], dpi=110)
        plt.close(fig)
        made += _avd_scatter(run_dir, results, d, folder, plt)
    return made


def _avd_scatter(run_dir: Path, results: dict, d: str, folder: Path, plt) -> list[Path]:
    runs = results["runs"].get(d, {}).get("re-llm")
    if not runs:
        return []
    rows = read_jsonl(run_dir / runs[0] / "responses.jsonl")
    rows = [r for r in rows if r.get("avd_pred")]
    if not rows:
        return []
    pred, target = np.array([r["avd_pred"] for r in rows]), np.array([r["avd_target"] for r in rows])
    fig, axes = plt.subplots(1, 3, figsize=(9, 3))
    for k, (ax, name) in enumerate(zip(axes, ("arousal", "valence", "dominance"))):
        ax.scatter(target[:, k], pred[:, k], s=6, alpha=0.6)
        ax.plot([0, 1], [0, 1], "k--", lw=0.5)
        ax.set_xlabel(f"target {name}")
        ax.set_ylabel("re-llm A/V/D head")
    fig.tight_layout()
    path = folder / f"{d}-avd.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return [path]


def write_report(run_dir: Path, results: dict) -> None:
    made = plots(run_dir, results)
    md = markdown(results | {"_plots": made})
    atomic_write_text(run_dir / "report.md", md)
    atomic_write_text(run_dir / "report.html", to_html(md, results["sweep_id"]))


def point_latest(out_root: Path, run_dir: Path) -> None:
    link = out_root / "latest"
    tmp = out_root / ".latest.tmp"
    if tmp.is_symlink() or tmp.exists():
        tmp.unlink()
    tmp.symlink_to(run_dir.name)
    os.replace(tmp, link)
