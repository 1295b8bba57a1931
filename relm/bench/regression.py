"""`relm check` (CI gate against a committed baseline) and `relm compare` (two runs)."""

from __future__ import annotations

import json
from pathlib import Path

from relm.bench.comparisons import compare_systems
from relm.bench.formatting import fmt_p
from relm.bench.report_replies import sample_comparison
from relm.errors import RelmError
from relm.io import read_jsonl
from relm.metrics.table import METRICS, metric_names
from relm.scoring.stats import benjamini_hochberg

DEFAULT_TOLERANCE = 0.05


SWEEP_KEYS = ("sweep_id", "preset", "datasets", "systems", "seeds", "metrics", "metrics_by_seed", "runs", "data")


def load_results(path: Path, required: tuple[str, ...] = SWEEP_KEYS) -> dict:
    """A results.json (or a baseline, with `required=("metrics",)`), its shape checked before use."""
    path = path / "results.json" if path.is_dir() else path
    if not path.is_file():
        raise RelmError(f"{path}: no results.json")
    try:
        res = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise RelmError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(res, dict):
        raise RelmError(f"{path}: expected a JSON object, got {type(res).__name__}")
    missing = [k for k in required if k not in res]
    if missing:
        raise RelmError(f"{path}: not a relm results file (missing {', '.join(missing)})")
    metrics = res["metrics"]
    if (
        not isinstance(metrics, dict)
        or not metrics
        or not all(
            isinstance(systems, dict) and all(isinstance(m, dict) for m in systems.values())
            for systems in metrics.values()
        )
    ):
        raise RelmError(f"{path}: `metrics` must map dataset -> system -> metric -> number, and not be empty")
    for d, systems in metrics.items():
        for system, row in systems.items():
            bad = [k for k, v in row.items() if k in METRICS and v is not None and not isinstance(v, int | float)]
            if bad:
                raise RelmError(f"{path}: metrics.{d}.{system}.{bad[0]} is {row[bad[0]]!r}, not a number")
    return res


def tolerances(baseline: dict, given: list[str] | None) -> dict[str, float]:
    """Per gated metric: `--tolerance METRIC=ABS`, else the baseline's, else the metric table's, else the default."""
    gated = metric_names(gated=True)
    tol = {m: METRICS.get(m).tolerance or DEFAULT_TOLERANCE for m in gated} | baseline.get("tolerances", {})
    for item in given or []:
        metric, _, value = item.partition("=")
        if metric not in gated:
            raise RelmError(f"--tolerance: unknown metric {metric!r}; gated metrics: {gated}")
        try:
            tol[metric] = float(value)
        except ValueError:
            raise RelmError(f"--tolerance {item!r}: expected METRIC=NUMBER") from None
    return tol


def provenance_differences(current: dict, baseline: dict) -> list[str]:
    """What makes a run and a baseline incomparable: another preset, other data, another empathy scorer."""
    out = []
    ours, theirs = current.get("preset_hash"), baseline.get("preset_hash")
    if ours and theirs and ours != theirs:
        out.append(f"preset {ours} vs the baseline's {theirs}")
    for dataset, info in (baseline.get("data") or {}).items():
        theirs = (info or {}).get("content_hash")
        ours = ((current.get("data") or {}).get(dataset) or {}).get("content_hash")
        if ours and theirs and ours != theirs:
            out.append(f"{dataset} data {ours} vs the baseline's {theirs}")
    ours, theirs = (current.get("scorer") or {}).get("identity"), (baseline.get("scorer") or {}).get("identity")
    if ours != theirs:
        out.append(
            f"scored by {ours or 'no scorer'}, the baseline by {theirs or 'no recorded scorer'} "
            "(ER/IP/EX are not comparable)"
        )
    return out


def check(
    run: Path, baseline_path: Path, tolerance_args: list[str] | None = None, allow_provenance_change: bool = False
) -> tuple[bool, str]:
    """Every (dataset, system, metric) of the baseline must not fall by more than its tolerance; a run whose
    preset, data or scorer differs from the baseline's is refused (`allow_provenance_change` gates anyway)."""
    current, baseline = load_results(run, ("metrics",)), load_results(baseline_path, ("metrics",))
    differences = provenance_differences(current, baseline)
    if differences and not allow_provenance_change:
        raise RelmError(
            f"{run}: not comparable with the baseline {baseline_path}: {'; '.join(differences)} "
            "(--allow-provenance-change gates anyway)"
        )
    tol = tolerances(baseline, tolerance_args)
    lines = [
        "| dataset | system | metric | baseline | current | change | tolerance | status |",
        "|---|---|---|---|---|---|---|---|",
    ]
    ok = True
    notes = []
    notes += [f"warning: {d}; gated anyway (--allow-provenance-change)" for d in differences]
    for dataset, systems in baseline["metrics"].items():
        for system, metrics in systems.items():
            n_base = metrics.get("n")
            n_cur = current["metrics"].get(dataset, {}).get(system, {}).get("n")
            if n_base and n_cur is not None and n_base != n_cur:
                ok = False
                notes.append(
                    f"FAIL: {dataset} {system} answered {n_cur} test utterances, the baseline {n_base}: "
                    "not the same test set"
                )
            for metric in metric_names(gated=True):
                base = metrics.get(metric)
                if base is None:
                    continue
                cur = current.get("metrics", {}).get(dataset, {}).get(system, {}).get(metric)
                if cur is None:
                    status, change = "MISSING", "n/a"
                else:
                    sign = 1 if METRICS.get(metric).higher_is_better else -1
                    status = "ok" if sign * (cur - base) >= -tol[metric] - 1e-12 else "REGRESSED"
                    change = f"{cur - base:+.3f}"
                ok &= status == "ok"
                if status != "ok" or METRICS.get(metric).primary_test == "permutation":
                    lines.append(
                        f"| {dataset} | {system} | {metric} | {base:.3f} | "
                        f"{'n/a' if cur is None else f'{cur:.3f}'} | {change} | {tol[metric]} | {status} |"
                    )
    verdict = "PASS: no metric fell beyond its tolerance" if ok else "FAIL: metrics regressed or the test set differs"
    return ok, "\n".join(lines + ["", *notes, verdict])


def compare_data(run_a: Path, run_b: Path) -> dict:
    """Two sweeps metric by metric: means over seeds, and utterance-clustered paired tests over all seeds
    (BH-adjusted over the table), plus their config difference. Refused when their test sets differ."""
    a, b = load_results(run_a, ("metrics",)), load_results(run_b, ("metrics",))
    rows, ps = [], []
    for dataset in sorted(set(a["metrics"]) & set(b["metrics"])):
        for system in sorted(set(a["metrics"][dataset]) & set(b["metrics"][dataset])):
            paired = _paired(run_a, run_b, a, b, dataset, system)
            for metric in metric_names(gated=True):
                va, vb = a["metrics"][dataset][system].get(metric), b["metrics"][dataset][system].get(metric)
                if va is None or vb is None:
                    continue
                test = paired.get(metric, {})
                p = METRICS.get(metric).primary_p(test)
                ci = test.get("ci95") or [None, None]
                rows.append(
                    {
                        "dataset": dataset,
                        "system": system,
                        "metric": metric,
                        "a": va,
                        "b": vb,
                        "difference": va - vb,
                        "ci95": ci if ci[0] is not None else None,
                        "p": p,
                        "p_bh": None,
                        "test": METRICS.get(metric).primary_test if test else None,
                        "n_items": test.get("n_items"),
                        "n_seeds": [test.get("n_seeds_a"), test.get("n_seeds_b")] if test else None,
                    }
                )
                if p is not None:
                    ps.append(p)
    adjusted = iter(benjamini_hochberg(ps))
    for row in rows:
        if row["p"] is not None:
            row["p_bh"] = next(adjusted)
    return {
        "a": {"path": str(run_a), "sweep_id": a.get("sweep_id"), "git_hash": a.get("provenance", {}).get("git_hash")},
        "b": {"path": str(run_b), "sweep_id": b.get("sweep_id"), "git_hash": b.get("provenance", {}).get("git_hash")},
        "config_difference": config_difference(a, b),
        "rows": rows,
        "sample_replies": sample_comparison(a, b),  # Markdown lines: the same utterances' replies in A and B
    }


def compare_runs(run_a: Path, run_b: Path) -> str:
    """`compare_data` as a Markdown table, the config difference first."""
    data = compare_data(run_a, run_b)
    lines = [
        f"A = {data['a']['sweep_id']} ({str(data['a']['git_hash'])[:10]}), "
        f"B = {data['b']['sweep_id']} ({str(data['b']['git_hash'])[:10]})",
        "",
        *data["config_difference"],
        "| dataset | system | metric | A | B | A-B | 95% CI of A-B | p (paired) | p (BH) | utterances x seeds |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in data["rows"]:
        ci = r["ci95"]
        size = f"{r['n_items']} x ({r['n_seeds'][0]}, {r['n_seeds'][1]})" if r["n_seeds"] else "unpaired"
        lines.append(
            f"| {r['dataset']} | {r['system']} | {r['metric']} | {r['a']:.3f} | {r['b']:.3f} | "
            f"{r['difference']:+.3f} | "
            + ("n/a" if ci is None else f"[{ci[0]:+.3f}, {ci[1]:+.3f}]")
            + f" | {fmt_p(r['p'])} | {fmt_p(r['p_bh'])} | {size} |"
        )
    return "\n".join([*lines, "", *data["sample_replies"]]).rstrip() + "\n"


def config_difference(a: dict, b: dict) -> list[str]:
    """The preset fields in which two sweeps differ (dotted keys), as Markdown lines."""

    def flat(d: dict, prefix: str = "") -> dict:
        out: dict = {}
        for k, v in d.items():
            out |= flat(v, f"{prefix}{k}.") if isinstance(v, dict) and v else {f"{prefix}{k}": v}
        return out

    fa, fb = flat(a.get("preset", {})), flat(b.get("preset", {}))
    diff = [k for k in sorted(set(fa) | set(fb)) if fa.get(k) != fb.get(k)]
    extra = [k for k in ("seeds", "systems", "datasets") if a.get(k) != b.get(k)]
    if a.get("scorer", {}).get("identity") != b.get("scorer", {}).get("identity"):
        extra.append("scorer")
    if not diff and not extra:
        return ["Same preset, systems, seeds and scorer.", ""]
    out = ["| differs | A | B |", "|---|---|---|"]
    out += [f"| {k} | {fa.get(k)!r} | {fb.get(k)!r} |" for k in diff]
    out += [
        f"| {k} | {a.get(k) if k != 'scorer' else a['scorer'].get('identity')} | "
        f"{b.get(k) if k != 'scorer' else b['scorer'].get('identity')} |"
        for k in extra
    ]
    return [*out, ""]


def _paired(run_a: Path, run_b: Path, a: dict, b: dict, dataset: str, system: str) -> dict:
    """Utterance-clustered paired tests over every seed, when both sweeps answered the same test utterances."""

    def runs(run: Path, res: dict) -> list[list[dict]] | None:
        folder = run if run.is_dir() else run.parent
        paths = [folder / rel / "responses.jsonl" for rel in res.get("runs", {}).get(dataset, {}).get(system, [])]
        if not paths or not all(p.is_file() for p in paths):
            return None
        return [read_jsonl(p) for p in paths]

    ra, rb = runs(run_a, a), runs(run_b, b)
    if not ra or not rb:
        return {}  # a results file without its run folders (a baseline): means only
    ids_a, ids_b = sorted(r["id"] for r in ra[0]), sorted(r["id"] for r in rb[0])
    if ids_a != ids_b:
        raise RelmError(
            f"{dataset} {system}: A answered {len(ids_a)} test utterances and B {len(ids_b)} "
            f"({len(set(ids_a) ^ set(ids_b))} not shared): not the same test set, so not comparable"
        )
    return compare_systems(ra, rb, n_resamples=5000)
