"""`relm check` (CI gate against a committed baseline) and `relm compare` (two runs)."""

from __future__ import annotations

import json
from pathlib import Path

from relm.errors import RelmError
from relm.evaluation import compare_systems
from relm.io import read_jsonl

DEFAULT_TOLERANCE = 0.05
GATED = ("er", "ip", "ex", "ua", "wa", "macro_f1", "ua_head")


def load_results(path: Path) -> dict:
    path = path / "results.json" if path.is_dir() else path
    if not path.is_file():
        raise RelmError(f"{path}: no results.json")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise RelmError(f"{path}: not valid JSON ({exc})") from None


def _tolerances(baseline: dict, given: list[str] | None) -> dict[str, float]:
    tol = {m: DEFAULT_TOLERANCE for m in GATED} | baseline.get("tolerances", {})
    for item in given or []:
        metric, _, value = item.partition("=")
        if metric not in GATED:
            raise RelmError(f"--tolerance: unknown metric {metric!r}; gated metrics: {list(GATED)}")
        try:
            tol[metric] = float(value)
        except ValueError:
            raise RelmError(f"--tolerance {item!r}: expected METRIC=NUMBER") from None
    return tol


def check(run: Path, baseline_path: Path, tolerances: list[str] | None = None) -> tuple[bool, str]:
    """Every (dataset, system, metric) of the baseline must not fall by more than its tolerance."""
    current, baseline = load_results(run), load_results(baseline_path)
    tol = _tolerances(baseline, tolerances)
    lines = ["| dataset | system | metric | baseline | current | change | tolerance | status |",
             "|---|---|---|---|---|---|---|---|"]
    ok = True
    for dataset, systems in baseline["metrics"].items():
        for system, metrics in systems.items():
            for metric in GATED:
                base = metrics.get(metric)
                if base is None:
                    continue
                cur = current.get("metrics", {}).get(dataset, {}).get(system, {}).get(metric)
                if cur is None:
                    status, change = "MISSING", "n/a"
                else:
                    status = "ok" if cur >= base - tol[metric] - 1e-12 else "REGRESSED"
                    change = f"{cur - base:+.3f}"
                ok &= status == "ok"
                if status != "ok" or metric in ("er", "ex", "ua"):
                    lines.append(f"| {dataset} | {system} | {metric} | {base:.3f} | "
                                 f"{'n/a' if cur is None else f'{cur:.3f}'} | {change} | {tol[metric]} | {status} |")
    verdict = "PASS: no metric fell beyond its tolerance" if ok else "FAIL: metrics regressed (see table)"
    return ok, "\n".join(lines + ["", verdict])


def compare_runs(run_a: Path, run_b: Path) -> str:
    a, b = load_results(run_a), load_results(run_b)
    lines = [f"A = {a['sweep_id']} ({a['provenance'].get('git_hash', '?')[:10]}), "
             f"B = {b['sweep_id']} ({b['provenance'].get('git_hash', '?')[:10]})", "",
             "| dataset | system | metric | A | B | A-B | p (paired) |", "|---|---|---|---|---|---|---|"]
    for dataset in sorted(set(a["metrics"]) & set(b["metrics"])):
        for system in sorted(set(a["metrics"][dataset]) & set(b["metrics"][dataset])):
            paired = _paired(run_a, run_b, a, b, dataset, system)
            for metric in GATED:
                va, vb = a["metrics"][dataset][system].get(metric), b["metrics"][dataset][system].get(metric)
                if va is None or vb is None:
                    continue
                p = paired.get(metric, {})
                pv = p.get("p_permutation") if p.get("p_permutation") is not None else p.get("p_mcnemar")
                lines.append(f"| {dataset} | {system} | {metric} | {va:.3f} | {vb:.3f} | {va - vb:+.3f} | "
                             f"{'n/a (unpaired)' if pv is None else f'{pv:.4f}'} |")
    return "\n".join(lines)


def _paired(run_a: Path, run_b: Path, a: dict, b: dict, dataset: str, system: str) -> dict:
    """Paired tests when both runs answered the same test utterances (seed 0 of each)."""
    def rows(run: Path, res: dict):
        folder = run if run.is_dir() else run.parent
        rel = res.get("runs", {}).get(dataset, {}).get(system)
        if not rel:
            return None
        path = folder / rel[0] / "responses.jsonl"
        return read_jsonl(path) if path.is_file() else None

    ra, rb = rows(run_a, a), rows(run_b, b)
    if not ra or not rb or sorted(r["id"] for r in ra) != sorted(r["id"] for r in rb):
        return {}
    return compare_systems([ra], [rb], n_resamples=5000)
