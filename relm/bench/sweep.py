"""A sweep: datasets x systems x seeds -> results/runs/<sweep id>/ (the only room that knows all rooms).

Every stage's output lives in relm's cache under a key of everything it depends on
(model identities, preset sections, data hash, seed), is written atomically, and is
skipped when present: a killed sweep, started again, redoes only unfinished stages.
"""

from __future__ import annotations

from pathlib import Path

from tqdm import tqdm

from relm.bench import estimate, tracking
from relm.bench.aggregate import new_results
from relm.bench.agreement import scorer_agreement
from relm.bench.dataset import prepare_dataset
from relm.bench.preparation import SweepConfig, prepare_sweep
from relm.bench.publish import close_dataset, finish, write_run
from relm.bench.records import ScoredRow
from relm.bench.report import table_rows
from relm.bench.robustness import record_robustness
from relm.bench.scoring import (
    cold_scorer_trainings,
    load_agreement_scorer,
    load_scorer,
    load_seed_scorers,
    score_rows,
    teacher_reference,
    teacher_replies,
)
from relm.bench.stages import SCORERS_TIMING, Stage, StageTimer
from relm.bench.teacher import teacher_targets
from relm.bench.training import train_and_answer
from relm.cache import computed_stages, only_cached, warn
from relm.config import Preset
from relm.data.schema import LABELS, SPLITS
from relm.fidelity import fidelity
from relm.keys import content_key
from relm.machine import matmul_gflops
from relm.models.sources import is_stand_in, resolve
from relm.models.system_table import systems_with_role
from relm.runtime import Runtime, preset_models

TRAIN_VERSION = 2  # bump when training or generation changes what a run produces (v2: validation in optimizer steps)
# Every preset section a run reads; the scorer is not one of them (scoring is redone on every sweep).
RUN_SECTIONS = (
    "name",
    "speech_encoder",
    "emotion_encoder",
    "llm",
    "lora",
    "adapter",
    "teacher",
    "train",
    "generate",
    "prompts",
    "threads",
    "max_utterances",
    "speech_init",
)


class _LazyBar:
    """The sweep-level bar ("run 3/8: synth-esd re-llm seed 0"), created when the first run starts."""

    def __init__(self, total: int, enabled: bool) -> None:
        self.total, self.enabled, self.bar, self.done = total, enabled, None, 0

    def describe(self, what: str) -> None:
        if self.enabled and self.bar is None:
            self.bar = tqdm(total=self.total, unit="run", position=0)
        if self.bar is not None:
            self.bar.set_description(f"run {self.done + 1}/{self.total}: {what}")

    def update(self) -> None:
        self.done += 1
        if self.bar is not None:
            self.bar.update()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def run_key_base(preset: Preset, runtime: Runtime) -> dict:
    """What every run of a sweep shares in its cache key: device, precision, the LLM's files, config, code."""
    return {
        "device": runtime.device.type,
        "precision": runtime.precision,
        "llm": resolve(preset.llm.model).identity,
        "speech_init": resolve(preset.speech_init).identity if preset.speech_init else None,
        "preset": preset.hash(*RUN_SECTIONS),
        "code": TRAIN_VERSION,
    }


def run_key(base: dict, bundle, system: str, seed: int, teacher_key: str) -> str:
    """The cache key of one run: `run_key_base`, its data, features, stage-0 encoder, teacher, system and seed (and
    the corpus's class set where it is not all five: the SER prompt lists it)."""
    classes = () if tuple(bundle.classes) == LABELS else (tuple(bundle.classes),)
    return content_key(
        base, bundle.data_hash, bundle.feature_keys, bundle.avd_source, teacher_key, system, seed, *classes
    )


def run_sweep(cfg: SweepConfig) -> Path:
    """Run a sweep (or, with `shard`, its part; with `assemble`, only from the cache) and write its results."""
    if cfg.assemble and not cfg.shard:
        command = "a shard has not finished (or failed); rerun it, or drop --assemble to compute what is missing"
        with only_cached(command):
            return _run_sweep(cfg)
    return _run_sweep(cfg)


def _run_sweep(cfg: SweepConfig) -> Path:
    prepared = prepare_sweep(cfg)  # every input validated, then the runtime: nothing is written before
    preset, runtime, force = prepared.preset, prepared.runtime, prepared.force
    runtime.apply()
    sweep_id = cfg.sweep_id or (
        f"{preset.name}-{'+'.join(cfg.datasets)}-{content_key(cfg.systems, cfg.seeds, preset.hash(), length=8)}"
    )
    sweep_dir = cfg.out_root / sweep_id
    if cfg.progress and not cfg.assemble:
        gflops = matmul_gflops()  # this machine, now: both lines scale their costs by it
        estimate.say(preset.name, runtime.precision, len(cfg.datasets), cfg.systems, cfg.seeds, gflops)
        estimate.say_training_pace(preset, runtime.device)
        cold_scorers = cold_scorer_trainings(preset, cfg.epitome, Stage.SCORE in force)
        estimate.say_scorers(preset, cold_scorers, gflops)
    timer = StageTimer()
    computed_stages(reset=True)
    trained_here: set[str] = set()
    reused_runs: set[str] = set()
    with timer(Stage.SCORE, SCORERS_TIMING):  # apart from `score`: trained once per machine, `say_scorers` counts it
        scorer, scorer_info = load_scorer(preset, cfg.epitome, runtime, Stage.SCORE in force)
        other_scorer = load_agreement_scorer(preset, cfg.epitome, runtime)
        seed_scorers = load_seed_scorers(preset, cfg.epitome, runtime) if scorer is not None else {}
    results = new_results(
        sweep_id, preset.to_dict(), preset.hash(), cfg.datasets, cfg.systems, list(range(cfg.seeds)), scorer_info
    )
    results["device"], results["threads"] = str(runtime.device), runtime.threads
    results["precision"] = runtime.precision_record()  # + the teacher's weights, below
    results["stand_ins"] = [name for name in preset_models(preset) if is_stand_in(name)]  # toy weights: toy metrics
    results["fidelity"] = fidelity(preset)
    zero_shot, key_base = systems_with_role("zero_shot", cfg.systems), run_key_base(preset, runtime)
    shard_index, shard_count = cfg.shard or (0, 1)
    per_dataset = len(cfg.systems) * cfg.seeds
    # Runs are numbered over datasets x systems x seeds; shard I of N takes those numbered I, I + N, ...
    mine = {k for k in range(len(cfg.datasets) * per_dataset) if k % shard_count == shard_index}
    sweep_bar = _LazyBar(len(mine), cfg.progress)
    try:
        for d_index, dataset in enumerate(cfg.datasets):
            if not mine & set(range(d_index * per_dataset, (d_index + 1) * per_dataset)):
                continue  # this shard has no run of this dataset: it need not prepare it
            bundle = prepare_dataset(
                dataset,
                cfg.roots.get(dataset),
                preset,
                timer,
                runtime,
                protocol=cfg.protocol,
                force=force,
                progress=cfg.progress,
                verify=cfg.verify,
                strict_audio=cfg.strict_audio,
            )
            if scorer is None and dataset == cfg.datasets[0]:  # after the corpus checks, so an error stands alone
                warn(scorer_info.get("reason", "no empathy scorer"))
            with timer(Stage.TEACHER):
                targets, cut, teacher_info = teacher_targets(
                    preset, bundle.df, runtime.device, cfg.progress, Stage.TEACHER in force
                )
            results["precision"]["teacher"] = teacher_info["dtype"]  # the teacher's weights (template: none)
            results["protocols"][dataset] = bundle.protocol
            results["data"][dataset] = {
                "data_hash": bundle.data_hash,
                "content_hash": bundle.content_hash,
                "n": bundle.split_sizes(),
                "avd_targets": bundle.avd_source,
                "emotion_encoder": bundle.emotion_encoder,
                "teacher": teacher_info,
                "skipped": bundle.manifest.skipped,
                "manifest": bundle.manifest_path,
                "root": bundle.root,
            }
            context = {  # what decides whether two W&B runs are comparable
                "scorer": scorer_info.get("identity"),
                "data_hash": bundle.data_hash,
                "protocol": bundle.protocol,
                "git_hash": results["provenance"]["git_hash"],
                "git_dirty": results["provenance"]["git_dirty"],
            }
            items = {s: bundle.items(s, targets, cut) for s in SPLITS}
            results.setdefault("teacher_replies", {})[dataset] = teacher_replies(items["test"])
            rows_by_system: dict[str, list[list[ScoredRow]]] = {}
            for s_index, system in enumerate(cfg.systems):
                for seed in range(cfg.seeds):
                    if d_index * per_dataset + s_index * cfg.seeds + seed not in mine:
                        continue
                    entry_key = run_key(key_base, bundle, system, seed, teacher_info["cache_key"])
                    sweep_bar.describe(f"{dataset} {system} seed {seed}")
                    run = (
                        tracking.start_run(cfg, sweep_id, dataset, system, seed, preset, context)
                        if cfg.tracking
                        else None
                    )
                    try:
                        with timer(Stage.TRAIN, system):
                            out = train_and_answer(
                                system,
                                seed,
                                preset,
                                runtime,
                                items,
                                bundle.dims,
                                entry_key,
                                Stage.TRAIN in force,
                                cfg.progress,
                                tracking.loggers(run),
                                bundle.classes,
                            )
                        (reused_runs if out.cached else trained_here).add(system)
                        with timer(Stage.SCORE):
                            rows, metrics = score_rows(out.rows, scorer)
                        metrics["train"] = out.info
                        curves = write_run(
                            results, rows_by_system, sweep_dir, dataset, system, seed, rows, metrics, out.curves
                        )
                        tracking.log_curves(run, curves, out.cached)
                        tracking.log_run(run, dataset, metrics, rows)
                    finally:
                        tracking.finish(run)
                    sweep_bar.update()
            if cfg.shard:
                continue  # comparisons and the report need every run: `--assemble` writes them
            close_dataset(results, dataset, rows_by_system)
            if other_scorer is not None and scorer is not None:
                with timer(Stage.SCORE):
                    agreement = scorer_agreement(rows_by_system, results["comparisons"].get(dataset, {}), other_scorer)
                results.setdefault("scorer_agreement", {})[dataset] = agreement
            if scorer is not None and (seed_scorers or other_scorer is not None):
                others = {f"agreement ({preset.agreement_scorer})": other_scorer} if other_scorer else {}
                with timer(Stage.SCORE):
                    record_robustness(results, dataset, rows_by_system, seed_scorers, others)
            if scorer is not None and zero_shot:
                ref = teacher_reference(rows_by_system[zero_shot[0]][0], targets, scorer)
                results.setdefault("teacher_reference", {})[dataset] = ref | {"against": zero_shot[0]}
    finally:
        sweep_bar.close()
    if cfg.shard:
        return sweep_dir
    computed = computed_stages()
    finish(results, timer, sweep_dir, cfg.out_root)
    # Stages timed cold: their cache entries were computed here (a run's stage: all its runs were trained here).
    cold = {"manifest"} | {s for s in ("features", "stage0", "teacher") if s in computed}
    cold |= {"score"}  # scoring the replies (the scorers' training is timed apart, under SCORERS_TIMING)
    cold |= {f"train:{system}" for system in trained_here - reused_runs}
    estimate.record(preset.name, dict(results), cold)
    if cfg.tracking:
        tracking.log_sweep(cfg, sweep_id, sweep_dir, results, table_rows(results))
    return sweep_dir
