"""The paper-style report of a sweep: Markdown, an offline HTML page, and `results/runs/latest`."""

from __future__ import annotations

import base64
import html
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from markdown_it import MarkdownIt

from relm.bench.formatting import fmt, fmt_p
from relm.bench.plots import plots
from relm.bench.report_replies import collapse_lines, replies_section
from relm.bench.robustness import robustness_lines, robustness_mark
from relm.fidelity import recipe_line
from relm.io import atomic_write_text
from relm.metrics.table import METRICS, metric_names
from relm.models.system_table import systems_with_role

ALPHA_MARKS = ((0.01, "**"), (0.05, "*"))  # (threshold, mark), strictest first


def significance_mark(p: float | None) -> str:
    """`**` for p < 0.01, `*` for p < 0.05, else nothing (also for a missing p)."""
    if p is None:
        return ""
    return next((mark for threshold, mark in ALPHA_MARKS if p < threshold), "")


def baseline_mark(metric: str, comparisons: dict, proposed: str, baseline: str) -> str:
    """The mark on a baseline's cell: the proposed system is better than this baseline on a confirmatory metric,
    at Holm-adjusted p < 0.05 (`*`) or 0.01 (`**`). Each comparison is marked on its own, as the paper reports."""
    t = comparisons.get(f"{proposed} vs {baseline}", {}).get(metric)
    if not t or not t.get("confirmatory") or t.get("mean_a") is None or t.get("mean_b") is None:
        return ""
    sign = 1 if METRICS.get(metric).higher_is_better else -1
    return significance_mark(t.get("p_holm")) if sign * (t["mean_a"] - t["mean_b"]) > 0 else ""


def table_rows(results: Mapping[str, Any]) -> list[str]:
    """The paper-style table: rows systems, columns the headline metrics per dataset."""
    cols = metric_names(headline=True)
    proposed = systems_with_role("proposed", results["systems"])
    head = "| system | " + " | ".join(f"{d} {c.upper()}" for d in results["datasets"] for c in cols) + " |"
    lines = [head, "|" + "---|" * (1 + len(cols) * len(results["datasets"]))]
    for system in results["systems"]:
        cells = []
        for d in results["datasets"]:
            row = results["metrics"].get(d, {}).get(system, {})
            for c in cols:
                v = row.get(c)
                cell = fmt(v) + (f" ± {fmt(row[c + '_sd'])}" if row.get(c + "_sd") is not None else "")
                if v is not None:
                    cell += "".join(baseline_mark(c, results["comparisons"].get(d, {}), p, system) for p in proposed)
                cells.append(cell)
        lines.append(f"| {system} | " + " | ".join(cells) + " |")
    return lines


def comparison_rows(results: dict) -> list[str]:
    lines = [
        "| dataset | comparison | metric | family | a | b | rel. impr. | 95% CI of diff | p (Wilcoxon, scipy) "
        "| p (permutation) | p (adjusted) | utterances x seeds (a, b) |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for d, comps in results["comparisons"].items():
        for name, per in comps.items():
            for metric, r in per.items():
                ci = r.get("ci95") or [None, None]
                rel = fmt(r["relative_improvement"], 1)
                family = "confirmatory (Holm)" if r.get("confirmatory") else "exploratory (BH)"
                family += robustness_mark(r)
                adjusted = r.get("p_holm") if r.get("confirmatory") else r.get("p_bh")
                lines.append(
                    f"| {d} | {name} | {metric.upper()} | {family} | {fmt(r['mean_a'])} | {fmt(r['mean_b'])} | "
                    f"{rel}{'' if rel == 'n/a' else '%'} | [{fmt(ci[0])}, {fmt(ci[1])}] | "
                    f"{fmt_p(r.get('p_wilcoxon'))} | {fmt_p(METRICS.get(metric).primary_p(r))} | "
                    f"{fmt_p(adjusted)} | {r.get('n_items')} x ({r.get('n_seeds_a')}, {r.get('n_seeds_b')}) |"
                )
    return lines


def _data_lines(results: dict) -> list[str]:
    out = []
    for d, info in results["data"].items():
        teacher = info.get("teacher")
        sizes = " / ".join(f"{n} {split}" for split, n in info["n"].items())
        line = f"- {d}: {sizes} utterances, A/V/D targets: {info['avd_targets']}"
        if teacher:
            line += (
                f"; teacher `{teacher['identity']}` ({teacher['prompt']} prompt, {teacher.get('dtype', '?')}), "
                f"{teacher['dropped_by_cleaning']} responses dropped by cleaning"
            )
            if "clean" in teacher:  # results written before the switch existed lack these
                line += (
                    f" ({teacher['clean']} rules; relm's rules would change {teacher['changed_by_relm_rules']}), "
                    f"{teacher['empty_transcripts']} empty transcripts without a target"
                )
        out.append(line + ".")
    for d, agr in results.get("scorer_agreement", {}).items():
        if agr:
            kappa = ", ".join(f"{m.upper()} {v:.2f}" for m, v in agr["kappa"].items())
            flips = "; ".join(f"{f['comparison']} {f['metric'].upper()}" for f in agr["direction_disagreements"])
            out.append(
                f"- {d}: agreement with `{agr['other_scorer']}` on {agr['n']} replies, Cohen's kappa {kappa}. "
                + (
                    f"**Direction differs under the other scorer: {flips}.**"
                    if flips
                    else "No comparison changes direction under the other scorer."
                )
            )
    for d, ref in results.get("teacher_reference", {}).items():
        if ref.get("n"):
            out.append(
                f"- {d}: step-1 expected responses vs {ref['against']} on the same {ref['n']} test "
                "utterances: "
                + ", ".join(
                    f"{m.upper()} {ref[m]['mean_a']:.3f} vs {ref[m]['mean_b']:.3f} (p {fmt_p(ref[m]['p_permutation'])})"
                    for m in metric_names(family="empathy") + ["congruence"]
                    if m in ref
                )
            )
    return out


def _scorer_confusion(validation: dict) -> list[str]:
    """The scorer's held-out confusion per mechanism: how far to trust a level it gives."""
    if not all("confusion" in v for v in validation.values()):
        return []
    out = ["", "| scorer on held-out seekers | gold 0 -> 0 / 1 / 2 | gold 1 -> 0 / 1 / 2 | gold 2 -> 0 / 1 / 2 |"]
    out.append("|---|---|---|---|")
    for mech, v in validation.items():
        out.append(f"| {mech.upper()} | " + " | ".join(" / ".join(map(str, row)) for row in v["confusion"]) + " |")
    return [*out, ""]


EPITOME_PAPER_F1 = "ER 0.74, IP 0.63, EX 0.73"  # Sharma et al. 2020, the RoBERTa bi-encoder's macro-F1


def _cross_validation_lines(cv: dict | None) -> list[str]:
    """The scorer kind's cross-validated figures: the held-out split above is one draw of seekers; this is k."""
    if not cv:
        return []
    mechs = metric_names(family="empathy")
    figures = ", ".join(f"{m.upper()} {cv[m]['macro_f1']:.3f} ± {cv[m]['macro_f1_sd']:.3f}" for m in mechs)
    out = [
        "",
        f"The same kind cross-validated in {cv['folds']} folds grouped by seeker ({cv['n']} pairs), macro-F1 mean ± sd "
        f"over folds: {figures}.",
    ]
    if all("macro_f1_batched" in cv[m] for m in mechs):  # results written before it have none
        batched = ", ".join(f"{m.upper()} {cv[m]['macro_f1_batched']:.3f}" for m in mechs)
        out[-1] += (
            f" Read as EPITOME's train.py reads its test figures (macro-F1 averaged over batches of 32, a level "
            f"counted only in a batch that holds or predicts it; EPITOME paper: {EPITOME_PAPER_F1}): {batched}."
        )
    return out


def _robustness_section(results: dict) -> list[str]:
    lines = robustness_lines(results)
    return ["### Empathy conclusions against the scorer", "", *lines, ""] if lines else []


def markdown(results: dict, plot_files: list[Path]) -> str:
    prov = results["provenance"]
    sc = results["scorer"]
    proposed = ", ".join(systems_with_role("proposed", results["systems"])) or "the proposed system"
    out = [
        f"# relm sweep `{results['sweep_id']}`",
        "",
        f"Preset `{results['preset']['name']}` ({results['preset_hash']}), seeds {results['seeds']}, "
        f"git {str(prov['git_hash'])[:10]}{' (dirty)' if prov['git_dirty'] else ''}, "
        f"protocols: {', '.join(results['protocols'].values())}.",
        "",
    ]
    if results.get("fidelity"):  # results written before the fidelity record have none
        out += [recipe_line(results["fidelity"]), ""]
    if sc.get("available"):
        val = sc["validation"]
        out.append(
            f"Empathy scorer `{sc['identity']}`; held-out macro-F1 "
            + ", ".join(f"{m.upper()} {val[m]['macro_f1']:.3f}" for m in metric_names(family="empathy"))
            + "."
        )
        out += _cross_validation_lines(sc.get("cross_validation"))
        out += _scorer_confusion(val)
    else:
        out.append(f"**Empathy metrics unavailable**: {sc['reason']}")
    det = results.get("congruence_detector")
    if det:
        out.append(
            f"Congruence: the reply-emotion detector agrees with hand labels on {det['accuracy']:.3f} of "
            f"{det['n']} replies."
        )
    out += [
        "",
        f"## Results (mean over seeds; * / ** on a baseline: {proposed} is better than that baseline on a "
        "confirmatory metric, Holm-adjusted p < 0.05 / 0.01)",
        "",
        *table_rows(results),
        "",
        *collapse_lines(results),
        "",
        "UA: generative SER answer parsed to a label (unparseable answers count as wrong); UA_HEAD: the SER "
        "head on the pooled adapter output.",
        "",
        *replies_section(results),
        "## Paired comparisons",
        "",
        *comparison_rows(results),
        "",
        *_robustness_section(results),
        "## Data",
        "",
        *_data_lines(results),
    ]
    share = results.get("cost_share", {})
    out += ["", "## Where the time went", "", "| stage | seconds | share |", "|---|---|---|"]
    out += [f"| {k} | {v} | {share.get(k, 0):.1%} |" for k, v in results["timings_s"].items()]
    if results.get("peak_rss_gib"):
        out.append(f"| peak resident memory (GiB) | {results['peak_rss_gib']} | |")
    cal = results.get("calibration")
    if cal:
        out += [
            "",
            f"This machine's float32 matmul: {cal['matmul_gflops']} GFLOP/s ({cal['threads']} threads); "
            f"cost {results['cost_gflop_eq']:,} GFLOP-equivalents (seconds x GFLOP/s, comparable across machines).",
        ]
    # In the order made: per dataset the metric bars first, then confusion matrices, then the A/V/D fit.
    out += ["", "## Plots", ""] + [f"![{p.stem}](plots/{p.name})" for p in plot_files]
    return "\n".join(out) + "\n"


def to_html(md: str, title: str, folder: Path) -> str:
    """The Markdown report as one self-contained page (markdown-it, tables on, plots embedded as base64)."""
    body = MarkdownIt("commonmark").enable("table").render(md)

    def embed(match: re.Match) -> str:
        path = folder / match.group(1)
        if not path.is_file():
            return match.group(0)
        return f'src="data:image/png;base64,{base64.b64encode(path.read_bytes()).decode()}"'

    body = re.sub(r'src="(plots/[^"]+\.png)"', embed, body)
    style = (
        "body{font-family:sans-serif;max-width:1200px;margin:auto;padding:0 1em}table{border-collapse:collapse}"
        "td,th{border:1px solid #ccc;padding:3px 6px;font-size:13px}img{max-width:100%}code{background:#f4f4f4}"
    )
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        f"<style>{style}</style></head><body>{body}</body></html>"
    )


def to_latex(results: dict) -> str:
    """The paper-style table as a booktabs LaTeX table (mean over seeds, +- sd when several)."""
    cols = metric_names(headline=True)
    spec = "l" + "r" * (len(cols) * len(results["datasets"]))
    lines = [r"\begin{tabular}{" + spec + "}", r"\toprule"]
    if len(results["datasets"]) > 1:
        lines.append(
            " & " + " & ".join(rf"\multicolumn{{{len(cols)}}}{{c}}{{{d}}}" for d in results["datasets"]) + r" \\"
        )
    lines.append(
        "System & " + " & ".join(c.upper().replace("_", r"\_") for _ in results["datasets"] for c in cols) + r" \\"
    )
    lines.append(r"\midrule")
    for system in results["systems"]:
        cells = []
        for d in results["datasets"]:
            row = results["metrics"].get(d, {}).get(system, {})
            for c in cols:
                v, sd = row.get(c), row.get(f"{c}_sd")
                cells.append("--" if v is None else f"{v:.3f}" + (rf" $\pm$ {sd:.3f}" if sd is not None else ""))
        lines.append(system.replace("_", r"\_") + " & " + " & ".join(cells) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}"]
    return "\n".join(lines) + "\n"


def write_report(run_dir: Path, results: dict) -> None:
    md = markdown(results, plots(run_dir, results))
    atomic_write_text(run_dir / "report.md", md)
    atomic_write_text(run_dir / "report.html", to_html(md, results["sweep_id"], run_dir))
    atomic_write_text(run_dir / "report.tex", to_latex(results))


def point_latest(out_root: Path, run_dir: Path) -> None:
    link = out_root / "latest"
    tmp = out_root / f".latest.{os.getpid()}.tmp"  # one per process: concurrent sweeps never share it
    if tmp.is_symlink() or tmp.exists():
        tmp.unlink()
    tmp.symlink_to(run_dir.name)
    os.replace(tmp, link)
