"""`relm evaluate --responses NAME=FILE`: score another system's answers to a run's test utterances.

The external answers are scored with the run's own scorer and parser, added as system NAME, and
compared with every system of the run by the same utterance-paired tests (exploratory, BH), in
a new results folder with the same schema. The run's confirmatory family is kept as it was.
"""

from __future__ import annotations

from pathlib import Path

from relm.bench.aggregate import new_results
from relm.bench.publish import close_dataset, finish, write_run
from relm.bench.records import AnswerRow, ScoredRow
from relm.bench.regression import load_results
from relm.bench.scoring import load_scorer, score_rows
from relm.bench.stages import Stage, StageTimer
from relm.errors import RelmError
from relm.io import read_jsonl
from relm.keys import content_key
from relm.models.system_table import SYSTEMS
from relm.presets import preset_from_dict
from relm.runtime import runtime_for_device  # only the scorer runs: the preset's models are not needed
from relm.scoring.response_files import read_system_answers


def _run_rows(run_dir: Path, res: dict, dataset: str) -> dict[str, list[list[ScoredRow]]]:
    out = {}
    for system, folders in res["runs"][dataset].items():
        out[system] = [read_jsonl(run_dir / folder / "responses.jsonl") for folder in folders]
    return out


def evaluate_responses(
    run: Path, external: dict[str, Path], out_root: Path, epitome: str | None = None, dataset: str | None = None
) -> Path:
    res = load_results(run)
    run_dir = run if run.is_dir() else run.parent
    dataset = dataset or res["datasets"][0]
    if dataset not in res.get("runs", {}):
        raise RelmError(f"{run}: no runs on {dataset!r} (has {list(res.get('runs', {}))})")
    for name in external:
        if name in SYSTEMS or name in res["systems"]:
            raise RelmError(f"--responses {name}=...: {name!r} is already a system name; choose another")
    timer = StageTimer()
    preset = preset_from_dict(res["preset"], "results.json preset")
    with timer(Stage.SCORE):
        scorer, scorer_info = load_scorer(
            preset, epitome or res["scorer"].get("training_data"), runtime_for_device("auto")
        )
    if scorer_info.get("identity") != res["scorer"].get("identity"):
        raise RelmError(
            f"{run}: was scored by {res['scorer'].get('identity')}, but the scorer found now is "
            f"{scorer_info.get('identity')}; pass the run's EPITOME data with --epitome"
        )
    rows_by_system = _run_rows(run_dir, res, dataset)
    reference = rows_by_system[res["systems"][0]][0]
    test_ids = [r["id"] for r in reference]
    systems = [*res["systems"], *external]
    sweep_id = f"{res['sweep_id']}-ext-{content_key(sorted(external), [str(p) for p in external.values()], length=8)}"
    sweep_dir = out_root / sweep_id
    results = new_results(sweep_id, res["preset"], res["preset_hash"], [dataset], systems, res["seeds"], scorer_info)
    results |= {"evaluated_from": res["sweep_id"], "trained_on": dataset}
    results["protocols"][dataset] = res["protocols"][dataset]
    results["data"][dataset] = res["data"][dataset]
    for system in res["systems"]:  # the run's own systems, copied as they were scored
        results["metrics_by_seed"].setdefault(dataset, {})[system] = res["metrics_by_seed"][dataset][system]
        results["runs"].setdefault(dataset, {})[system] = [
            str(run_dir.resolve() / f) for f in res["runs"][dataset][system]
        ]
    for name, path in external.items():
        answers = read_system_answers(path, test_ids)
        external_answers: list[AnswerRow] = [
            {
                "id": r["id"],
                "transcript": r["transcript"],
                "gold_emotion": r["gold_emotion"],
                "response": answers[r["id"]]["response"],
                "ser_answer": answers[r["id"]]["ser_answer"],
                "ser_head": None,
                "avd_pred": None,
                "avd_target": r.get("avd_target"),
            }
            for r in reference
        ]
        with timer(Stage.SCORE):
            rows, metrics = score_rows(external_answers, scorer)
        write_run(results, rows_by_system, sweep_dir, dataset, name, 0, rows, metrics)
    close_dataset(results, dataset, rows_by_system, tuple(external))
    finish(results, timer, sweep_dir, out_root)
    return sweep_dir
