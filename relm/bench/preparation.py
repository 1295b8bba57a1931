"""What a sweep needs before any work: its configuration, every input validated, then the one `Runtime`.

`prepare_sweep` checks systems, corpora (their roots, without generating anything), protocol, seeds,
shards, output and cache folders, the EPITOME folder, the preset and what it needs on this machine, and
only then resolves the runtime (whose `precision: auto` may measure the CPU once and cache it): a bad
input is one error line and nothing is written, in any order of calls.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from relm.bench.distributed import check_strategy
from relm.bench.stages import Stage, parse_force
from relm.config import Preset
from relm.data.corpora import DEFAULT_DATASET, find_root, get_adapter, get_dataset
from relm.errors import RelmError
from relm.io import check_writable_folder
from relm.models.budget import world_size
from relm.models.compiling import compile_available
from relm.models.system_table import default_systems, get_system, needs_speech_init
from relm.paths import cache_dir
from relm.presets import load_preset
from relm.runtime import Runtime, resolve_runtime
from relm.scoring.empathy import check_params
from relm.scoring.epitome_data import check_epitome_folder


@dataclass
class SweepConfig:
    datasets: list[str] = field(default_factory=lambda: [DEFAULT_DATASET])
    systems: list[str] = field(default_factory=default_systems)
    preset: str = "cpu"
    seeds: int = 1
    roots: dict[str, str] = field(default_factory=dict)
    protocol: str | None = None
    epitome: str | None = None
    force: set[str] = field(default_factory=set)
    out_root: Path = Path("results/runs")
    overrides: dict = field(default_factory=dict)
    sweep_id: str | None = None
    progress: bool = True
    tracking: bool = True
    verify: bool = False  # key cache entries on audio content (sha256) instead of size and mtime
    strict_audio: bool = False  # a bad audio file stops the sweep instead of being skipped and counted
    shard: tuple[int, int] | None = None  # (I, N): run only the I-th of N disjoint parts of the runs
    assemble: bool = False  # compute nothing: every entry must be in the cache (written by the shards)
    wandb_project: str | None = None  # default: WANDB_PROJECT, else relm
    wandb_entity: str | None = None  # default: WANDB_ENTITY, else W&B's default for the login
    wandb_tags: tuple[str, ...] = ()


@dataclass(frozen=True)
class PreparedSweep:
    """A sweep's validated inputs and its runtime."""

    preset: Preset
    runtime: Runtime
    force: set[Stage]


def parse_shard(text: str) -> tuple[int, int]:
    """`I/N` -> (I, N) with 0 <= I < N."""
    index, sep, count = text.partition("/")
    try:
        i, n = int(index), int(count)
    except ValueError:
        i, n = -1, 0
    if not sep or n < 1 or not 0 <= i < n:
        raise RelmError(f"--shard {text!r}: expected I/N with 0 <= I < N, e.g. 0/8")
    return i, n


def check_corpus(dataset: str, root: str | None) -> None:
    """The corpus's root exists and holds something (a built-in corpus not generated yet passes)."""
    found = find_root(dataset, root, progress=False, generate=False)
    if root or not get_dataset(dataset).generate:
        get_adapter(dataset).check_root(found)


def prepare_sweep(cfg: SweepConfig) -> PreparedSweep:
    """Validate every input of the sweep (one error line, nothing written), then resolve its runtime."""
    if cfg.shard and cfg.assemble:
        raise RelmError("--shard runs a part of the sweep and --assemble collects them: give one of the two")
    for system in cfg.systems:  # unknown names fail before any work
        get_system(system)
    for dataset in cfg.datasets:
        protocols = get_adapter(dataset).protocols  # an unknown dataset fails here, with a suggestion
        if cfg.protocol and cfg.protocol not in protocols:
            raise RelmError(f"{dataset}: unknown protocol {cfg.protocol!r}; choose from {list(protocols)}")
    if cfg.seeds < 1:
        raise RelmError(f"seeds must be at least 1, got {cfg.seeds}")
    check_writable_folder(cfg.out_root, "--out")
    check_writable_folder(cache_dir(), "the cache (RELM_CACHE)")
    if cfg.epitome:
        check_epitome_folder(Path(cfg.epitome))
    force = parse_force(cfg.force)
    preset = load_preset(cfg.preset, cfg.overrides)
    check_strategy(preset, world_size(preset))  # an unsupported multi-process setting fails here
    # an unknown scorer kind, or a parameter its kind does not take, fails here (with a suggestion)
    where = f"preset {preset.name}: scorer_params (with another kind: scorer_params={{}})"
    check_params(preset.scorer, preset.scorer_params, where)
    released = [s for s in cfg.systems if needs_speech_init(s)]
    if released and not preset.speech_init:
        raise RelmError(
            f"{', '.join(released)}: a released speech-LLM evaluated as is needs a preset with speech_init "
            f"(paper, paper-tiny); preset {preset.name} has none"
        )
    if not cfg.assemble:  # a missing corpus is a one-line error here, before the estimate and any work
        for dataset in cfg.datasets:
            check_corpus(dataset, cfg.roots.get(dataset))
    runtime = resolve_runtime(preset)  # no device or model missing: one line naming each
    if preset.train.compile_layers and (why := compile_available(runtime.device)):
        raise RelmError(f"preset {preset.name}: train.compile_layers: {why} (--set train.compile_layers=false)")
    return PreparedSweep(preset, runtime, force)
