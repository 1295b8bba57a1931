"""A sweep: datasets x systems x seeds -> results/runs/<sweep-id>/ (the only room that knows all rooms).

Every stage's output lives in relm's cache under a key of everything it depends on
(model identities, preset sections, data hash, seed), is written atomically, and is
skipped when present: a killed sweep, started again, redoes only unfinished stages.
"""

from __future__ import annotations

import gc
import hashlib
import json
import os
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import torch

from relm.config import Preset, load_preset
from relm.errors import RelmError
from relm.io import atomic_write_json, atomic_write_text, jsonl_text, read_jsonl
from relm.paths import cache_dir

STAGES = ("features", "teacher", "train", "score")


@dataclass
class SweepConfig:
    datasets: list[str]
    systems: list[str] = field(default_factory=lambda: ["text-zs", "text", "speech", "re-llm"])
    preset: str = "cpu"
    seeds: int = 1
    roots: dict[str, str] = field(default_factory=dict)
    epitome: str | None = None
    force: set[str] = field(default_factory=set)
    out_root: Path = Path("results/runs")
    overrides: dict = field(default_factory=dict)
    sweep_id: str | None = None
    progress: bool = True
    tracking: bool = True


def _key(*parts) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]


class Timer:
    def __init__(self):
        self.seconds: dict[str, float] = defaultdict(float)

    def __call__(self, stage: str):
        timer = self

        class _Ctx:
            def __enter__(self):
                self.t = time.perf_counter()

            def __exit__(self, *exc):
                timer.seconds[stage] += time.perf_counter() - self.t

        return _Ctx()


def load_dataset(name: str, root: str | None, preset: Preset, progress: bool):
    """Read the corpus (generating synth-esd on first use), capped per split for small presets."""
    from relm.data.corpora import find_root, get_adapter
    from relm.data.corpora.base import stable_fraction

    if name == "synth-esd" and not root and not os.environ.get("RELM_SYNTH_ESD_ROOT") and \
            not Path("datasets/synth-esd/synth.json").is_file():
        from relm.data.synth import generate

        generate("datasets/synth-esd", progress=progress)
    manifest = get_adapter(name).read(find_root(name, root))
    df = manifest.df
    for split, cap in preset.max_utterances.items():
        part = df[df["split"] == split]
        if len(part) > cap:
            keep = sorted(part["utt_id"], key=lambda u: stable_fraction(u, 0))[:cap]
            df = df[(df["split"] != split) | df["utt_id"].isin(keep)]
    manifest.df = df.reset_index(drop=True)
    return manifest


def load_scorer(preset: Preset, epitome: str | None, progress: bool):
    """(scorer or None, info). Trains the preset's scorer kind once when EPITOME data is found."""
    from relm.scoring import empathy
    from relm.scoring.epitome_data import default_dir, load_epitome

    folder = Path(epitome) if epitome else default_dir()
    if not folder.is_dir():
        return None, {"available": False, "reason": (
            f"EPITOME data not found at {folder} (pass --epitome DIR or set RELM_EPITOME_DIR; the CSVs are in "
            "github.com/behavioral-data/Empathy-Mental-Health, dataset/); empathy metrics are not reported")}
    data = load_epitome(folder)
    kinds = [k.strip() for k in preset.scorer.split(",")]  # preference order; the last is trained if none is
    scorer = None
    for kind in kinds:
        try:
            scorer = empathy.load_trained(kind, data.data_hash)
            break
        except RelmError:
            continue
    if scorer is None:
        scorer = empathy.train(kinds[-1], data, seed=0)
    val = scorer.meta["validation"]
    return scorer, {"available": True, "identity": scorer.identity, "kind": scorer.kind,
                    "training_data_hash": data.data_hash, "training_data": str(folder),
                    "validation": {m: {k: v[k] for k in ("accuracy", "macro_f1", "n")} for m, v in val.items()}}


def teacher_targets(preset: Preset, df, progress: bool, force: bool) -> tuple[dict[str, str | None], dict]:
    from relm.models.llm import load_llm
    from relm.teacher import Teacher

    if preset.teacher.prompt == "template":
        llm, tok, identity = None, None, "template"
    else:
        llm, tok, identity = load_llm(preset.llm if preset.teacher.model == preset.llm.model
                                      else type(preset.llm)(model=preset.teacher.model))
    teacher = Teacher(preset.teacher, preset.prompts, llm, tok, identity)
    if force:
        teacher.cache = {}
    pairs = list(zip(df["transcript"].fillna(""), df["emotion"]))
    out = teacher.responses(pairs, progress=progress)
    targets = {u: out[teacher.item_key(t, e)] for u, (t, e) in zip(df["utt_id"], pairs)}
    dropped = sum(v is None for v in targets.values())
    del llm
    return targets, {"identity": identity, "prompt": preset.teacher.prompt, "cache_key": teacher.key,
                     "dropped_by_cleaning": dropped, "n": len(targets)}


def teacher_reference(zs_rows: list[dict], targets: dict[str, str | None], scorer) -> dict:
    """Step-1 expected responses vs text-zs outputs on the same test utterances (paired)."""
    from relm.scoring import stats

    rows = [r for r in zs_rows if targets.get(r["id"])]
    if not rows:
        return {"n": 0}
    levels = scorer.score([r["transcript"] for r in rows], [targets[r["id"]] for r in rows])
    out = {"n": len(rows)}
    for mech, vals in levels.items():
        key = mech.lower()
        out[key] = stats.compare(vals, [r[key] for r in rows], n_resamples=5000)
    return out


def run_one(system: str, seed: int, preset: Preset, items: dict, dims: tuple[int, int], gen_key: str,
            log_dir: Path, force: bool, progress: bool, loggers=()) -> tuple[list[dict], dict]:
    """Train (or reuse) one system/seed and answer the test split; cached by `gen_key`."""
    from relm.training import answer, train_system

    folder = cache_dir() / "runs" / gen_key
    if not force and (folder / "answers.jsonl").is_file() and (folder / "train.json").is_file():
        return read_jsonl(folder / "answers.jsonl"), json.loads((folder / "train.json").read_text())
    module, info = train_system(system, preset, items["train"], items["val"], *dims, seed, log_dir, loggers,
                                progress)
    start = time.perf_counter()
    rows = answer(module, items["test"], preset, progress)
    info["generate_seconds"] = round(time.perf_counter() - start, 1)
    folder.mkdir(parents=True, exist_ok=True)
    if module.spec.trains:
        module.save_trained(folder / "trained.safetensors")
        info["checkpoint"] = str(folder / "trained.safetensors")
    atomic_write_json(folder / "train.json", info)
    atomic_write_text(folder / "answers.jsonl", jsonl_text(rows))  # last: its presence marks the stage done
    del module
    gc.collect()
    return rows, info


def _record(results: dict, all_rows: dict, dataset: str, system: str, rows: list[dict], metrics: dict,
            out_dir: Path, run_dir: Path) -> None:
    """Write one run's responses and metrics, and file them in the results being built."""
    atomic_write_text(out_dir / "responses.jsonl", jsonl_text(rows))
    atomic_write_json(out_dir / "metrics.json", metrics)
    all_rows.setdefault(system, []).append(rows)
    results["metrics_by_seed"].setdefault(dataset, {}).setdefault(system, []).append(metrics)
    results["runs"].setdefault(dataset, {}).setdefault(system, []).append(str(out_dir.relative_to(run_dir)))


def _comparisons(all_rows: dict, systems: list[str]) -> dict:
    from relm.evaluation import compare_systems

    return {f"re-llm vs {b}": compare_systems(all_rows["re-llm"], all_rows[b]) for b in systems if b != "re-llm"}


def _finish(results: dict, timer: Timer, run_dir: Path, out_root: Path) -> None:
    """Holm over the family, timings and memory, then results.json, the report and `latest`."""
    import resource

    from relm import report
    from relm.evaluation import add_holm

    add_holm(results["comparisons"])
    results["timings_s"] = {k: round(v, 1) for k, v in timer.seconds.items()}
    results["peak_rss_gib"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 2)
    atomic_write_json(run_dir / "results.json", results)
    report.write_report(run_dir, results)
    report.point_latest(out_root, run_dir)


def run_sweep(cfg: SweepConfig) -> Path:
    from relm import report, tracking
    from relm.evaluation import score_rows
    from relm.features import FeatureStore
    from relm.models.systems import get_system
    from relm.training import make_items

    for system in cfg.systems:  # unknown names fail before any work
        get_system(system)
    bad_force = set(cfg.force) - set(STAGES)
    if bad_force:
        raise RelmError(f"--force takes stages {list(STAGES)}, not {sorted(bad_force)}")
    preset = load_preset(cfg.preset, cfg.overrides)
    torch.set_num_threads(preset.threads or max(1, os.cpu_count() or 1))
    config_key = _key(cfg.systems, cfg.seeds, preset.hash())[:8]
    sweep_id = cfg.sweep_id or f"{preset.name}-{'+'.join(cfg.datasets)}-{config_key}"
    run_dir = cfg.out_root / sweep_id
    run_dir.mkdir(parents=True, exist_ok=True)
    timer = Timer()
    with timer("scorer"):
        scorer, scorer_info = load_scorer(preset, cfg.epitome, cfg.progress)
    results = {"schema_version": 1, "sweep_id": sweep_id, "preset": preset.to_dict(), "preset_hash": preset.hash(),
               "datasets": cfg.datasets, "systems": cfg.systems, "seeds": list(range(cfg.seeds)),
               "scorer": scorer_info, "provenance": report.provenance(), "protocols": {}, "data": {},
               "metrics": {}, "metrics_by_seed": {}, "comparisons": {}, "runs": {}}
    for dataset in cfg.datasets:
        with timer("manifest"):
            manifest = load_dataset(dataset, cfg.roots.get(dataset), preset, cfg.progress)
        df = manifest.df
        results["protocols"][dataset] = f"{dataset}:{manifest.protocol}"
        with timer("features"):
            store = FeatureStore(dataset, df, preset)
            if "features" in cfg.force:
                import shutil

                shutil.rmtree(store.folder, ignore_errors=True)
            frames = store.whisper_frames(cfg.progress)
            emb, avd_pred, emo_meta = store.emotion(progress=cfg.progress)
            avd, avd_source = store.avd_targets(avd_pred)
        with timer("teacher"):
            targets, teacher_info = teacher_targets(preset, df, cfg.progress, "teacher" in cfg.force)
        from relm.data.manifest_cache import data_hash

        dhash = data_hash(df)
        results["data"][dataset] = {"data_hash": dhash, "n": {s: int((df.split == s).sum()) for s in
                                                                ("train", "val", "test")},
                                    "avd_targets": avd_source, "emotion_encoder": emo_meta, "teacher": teacher_info,
                                    "skipped": manifest.skipped}
        items = {s: make_items(df[df.split == s], frames, emb, avd, targets) for s in ("train", "val", "test")}
        if not items["test"]:
            raise RelmError(f"{dataset}: the test split is empty")
        dims = (next(iter(frames.values())).shape[-1], next(iter(emb.values())).shape[-1])
        all_rows: dict[str, list[list[dict]]] = {}
        for system in cfg.systems:
            for seed in range(cfg.seeds):
                gen_key = _key(dhash, system, seed, preset.hash(), teacher_info["cache_key"], avd_source)
                out_dir = run_dir / dataset / system / f"seed{seed}"
                run = tracking.start_run(cfg, sweep_id, dataset, system, seed, preset) if cfg.tracking else None
                try:
                    with timer(f"train+generate:{system}"):
                        rows, info = run_one(system, seed, preset, items, dims, gen_key, out_dir / "logs",
                                             "train" in cfg.force, cfg.progress, tracking.loggers(run))
                    with timer("score"):
                        rows, metrics = score_rows(rows, scorer)
                    metrics["train"] = info
                    _record(results, all_rows, dataset, system, rows, metrics, out_dir, run_dir)
                    tracking.log_run(run, dataset, metrics, rows)
                finally:
                    tracking.finish(run)
        results["metrics"][dataset] = report.aggregate(results["metrics_by_seed"][dataset])
        if scorer is not None and "text-zs" in all_rows:
            results.setdefault("teacher_reference", {})[dataset] = teacher_reference(
                all_rows["text-zs"][0], targets, scorer)
        if "re-llm" in all_rows:
            results["comparisons"][dataset] = _comparisons(all_rows, cfg.systems)
    _finish(results, timer, run_dir, cfg.out_root)
    if cfg.tracking:
        tracking.log_sweep_artifact(cfg, sweep_id, run_dir)
    return run_dir


def evaluate_run(run: Path, dataset: str, root: str | None, out_root: Path, epitome: str | None = None,
                 trained_on: str | None = None, progress: bool = True) -> Path:
    """Evaluate a run's trained systems on another corpus copy's test split; same results schema."""
    from relm import report
    from relm.config import Preset, _build
    from relm.data.manifest_cache import data_hash
    from relm.evaluation import score_rows
    from relm.features import FeatureStore
    from relm.regression import load_results
    from relm.training import answer, build_module, make_items

    res = load_results(run)
    trained_on = trained_on or res["datasets"][0]
    if trained_on not in res["metrics_by_seed"]:
        raise RelmError(f"{run}: no systems trained on {trained_on!r} (has {list(res['metrics_by_seed'])})")
    preset = _build(Preset, res["preset"], "results.json preset")
    scorer, scorer_info = load_scorer(preset, epitome, progress)
    manifest = load_dataset(dataset, root, preset, progress)
    df = manifest.df
    store = FeatureStore(dataset, df, preset)
    frames = store.whisper_frames(progress)
    weights = res["data"][trained_on]["emotion_encoder"].get("weights")
    if preset.emotion_encoder.kind == "w2v2":  # frozen pretrained encoder: the same on every corpus
        emb, avd_pred = store.emotion(progress=progress)[:2]
    elif weights and Path(weights).is_file():
        emb, avd_pred = store.emotion_with(weights, progress)
    else:
        raise RelmError(f"{run}: the stage-0 emotion encoder of {trained_on!r} is not in the cache "
                        f"({weights or 'not recorded'}); rerun the sweep with `--force features`")
    avd, avd_source = store.avd_targets(avd_pred)
    test = make_items(df[df.split == "test"], frames, emb, avd, None)
    if not test:
        raise RelmError(f"{dataset}: the test split is empty")
    dims = (next(iter(frames.values())).shape[-1], next(iter(emb.values())).shape[-1])
    sweep_id = f"{res['sweep_id']}-eval-{dataset}-{_key(str(Path(manifest.root).resolve()), data_hash(df))[:8]}"
    run_dir = out_root / sweep_id
    out = {k: res[k] for k in ("schema_version", "preset", "preset_hash", "systems", "seeds")} | {
        "sweep_id": sweep_id, "evaluated_from": res["sweep_id"], "trained_on": trained_on, "datasets": [dataset],
        "scorer": scorer_info, "provenance": report.provenance(), "protocols": {dataset: f"{dataset}:"
                                                                                          f"{manifest.protocol}"},
        "data": {dataset: {"data_hash": data_hash(df), "n": {"test": len(test)}, "avd_targets": avd_source,
                           "skipped": manifest.skipped, "emotion_encoder": {"weights": weights},
                           "teacher": {"identity": "n/a (evaluation only)", "prompt": "n/a",
                                       "dropped_by_cleaning": 0}}},
        "metrics": {}, "metrics_by_seed": {dataset: {}}, "comparisons": {}, "runs": {dataset: {}}}
    timer, all_rows = Timer(), {}
    for system in res["systems"]:
        for seed in res["seeds"]:
            info = res["metrics_by_seed"][trained_on][system][seed]["train"]
            with timer(f"generate:{system}"):
                module = build_module(system, preset, *dims, total_steps=1, seed=seed)
                if info.get("checkpoint"):
                    module.load_trained(info["checkpoint"])
                rows = answer(module, test, preset, progress)
            rows, metrics = score_rows(rows, scorer)
            _record(out, all_rows, dataset, system, rows, metrics, run_dir / dataset / system / f"seed{seed}", run_dir)
    out["metrics"][dataset] = report.aggregate(out["metrics_by_seed"][dataset])
    if "re-llm" in all_rows:
        out["comparisons"][dataset] = _comparisons(all_rows, res["systems"])
    _finish(out, timer, run_dir, out_root)
    return run_dir
