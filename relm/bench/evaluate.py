"""`relm evaluate`: a sweep's trained systems answer another corpus copy's test split (same results schema)."""

from __future__ import annotations

from pathlib import Path

from relm.bench.aggregate import new_results
from relm.bench.dataset import prepare_dataset
from relm.bench.generation import answer
from relm.bench.publish import close_dataset, finish, write_run
from relm.bench.records import ScoredRow
from relm.bench.regression import load_results
from relm.bench.scoring import load_scorer, score_rows
from relm.bench.stages import Stage, StageTimer
from relm.bench.training import build_module
from relm.config import Preset
from relm.errors import RelmError
from relm.keys import content_key
from relm.models.emotion_encoder import EMOTION_ENCODERS
from relm.presets import preset_from_dict
from relm.runtime import resolve_runtime


def evaluate_run(
    run: Path,
    dataset: str,
    root: str | None,
    out_root: Path,
    epitome: str | None = None,
    trained_on: str | None = None,
    split: str | None = None,
    progress: bool = True,
) -> Path:
    """A sweep's trained systems answer `split` of a corpus: by default all of a corpus they did not train on,
    or the test split of their own training corpus."""
    res = load_results(run)
    trained_on = trained_on or res["datasets"][0]
    if trained_on not in res["metrics_by_seed"]:
        raise RelmError(f"{run}: no systems trained on {trained_on!r} (has {list(res['metrics_by_seed'])})")
    preset: Preset = preset_from_dict(res["preset"], "results.json preset")
    runtime = resolve_runtime(preset)
    runtime.apply()
    timer = StageTimer()
    with timer(Stage.SCORE):
        scorer, scorer_info = load_scorer(preset, epitome, runtime)
    weights = None
    if EMOTION_ENCODERS.get(preset.emotion_encoder.kind).trained_in_stage0:
        recorded = res["data"][trained_on]["emotion_encoder"].get("weights")
        if not recorded:
            raise RelmError(f"{run}: the stage-0 emotion encoder of {trained_on!r} is not recorded")
        weights = Path(recorded)
    bundle = prepare_dataset(dataset, root, preset, timer, runtime, progress=progress, stage0_weights=weights)
    own_root = res["data"][trained_on].get("root")
    same_corpus = dataset == trained_on and own_root == bundle.root
    split = split or ("test" if same_corpus else "all")
    test = bundle.items(split)
    sweep_id = f"{res['sweep_id']}-eval-{dataset}-{content_key(bundle.root, bundle.data_hash, length=8)}"
    sweep_dir = out_root / sweep_id
    results = new_results(
        sweep_id, res["preset"], res["preset_hash"], [dataset], res["systems"], res["seeds"], scorer_info
    )
    results |= {"evaluated_from": res["sweep_id"], "trained_on": trained_on}
    results["protocols"][dataset] = bundle.protocol
    results["data"][dataset] = {
        "data_hash": bundle.data_hash,
        "n": {split: len(test)},
        "split": split,
        "root": bundle.root,
        "avd_targets": bundle.avd_source,
        "skipped": bundle.manifest.skipped,
        "emotion_encoder": bundle.emotion_encoder,
        "manifest": bundle.manifest_path,
    }
    rows_by_system: dict[str, list[list[ScoredRow]]] = {}
    for system in res["systems"]:
        for seed in res["seeds"]:
            info = res["metrics_by_seed"][trained_on][system][seed]["train"]
            with timer(Stage.TRAIN, system):
                module = build_module(
                    system, preset, runtime.device, *bundle.dims, total_steps=1, seed=seed, classes=bundle.classes
                )
                if info.get("checkpoint"):
                    module.load_trained(info["checkpoint"])
                answers = answer(module, test, preset, runtime, progress)
            with timer(Stage.SCORE):
                rows, metrics = score_rows(answers, scorer)
            write_run(results, rows_by_system, sweep_dir, dataset, system, seed, rows, metrics)
    close_dataset(results, dataset, rows_by_system)
    finish(results, timer, sweep_dir, out_root)
    return sweep_dir
