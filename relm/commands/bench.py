"""`relm bench`, `relm compare`, `relm check`: run sweeps, compare runs, gate on regressions."""

from __future__ import annotations

import argparse
from pathlib import Path

import yaml

from relm.console import quiet_libraries
from relm.data.corpora import DATASETS, DEFAULT_DATASET
from relm.errors import RelmError
from relm.models.system_table import default_systems
from relm.presets import PRESETS, help_text


def _pair(item: str, flag: str, form: str) -> tuple[str, str]:
    key, sep, value = item.partition("=")
    if not sep or not key.strip() or not value.strip():
        raise RelmError(f"{flag} {item!r}: expected {form}")
    return key.strip(), value


def _csv(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


def cmd_bench(args: argparse.Namespace) -> int:
    """Run datasets x systems x seeds: manifest, features, teacher, train, generate, score, test, report."""
    from relm.bench.preparation import SweepConfig, parse_shard
    from relm.bench.sweep import run_sweep

    if args.help_preset:
        print(help_text())
        return 0
    if not args.verbose:
        quiet_libraries()
    roots = dict(_pair(r, "--root-for", "NAME=DIR") for r in args.root_for or [])
    datasets = _csv(args.dataset)
    systems = _csv(args.systems)
    if args.seeds < 1:
        raise RelmError(f"--seeds must be at least 1, got {args.seeds}")
    for flag, names in (("--dataset", datasets), ("--systems", systems)):
        if not names or len(set(names)) != len(names):
            raise RelmError(f"{flag}: name each at least once and at most once, got {names}")
    if args.root:
        if len(datasets) != 1:
            raise RelmError("--root needs a single --dataset; use --root-for NAME=DIR for several")
        roots[datasets[0]] = args.root
    overrides = {}
    for item in args.set or []:
        key, value = _pair(item, "--set", "KEY=VALUE")
        try:
            overrides[key] = yaml.safe_load(value)
        except yaml.YAMLError:
            raise RelmError(f"--set {item}: the value is not valid YAML") from None
    if args.device:
        overrides["runtime.device"] = args.device
    cfg = SweepConfig(
        datasets=datasets,
        systems=systems,
        preset=args.preset,
        seeds=args.seeds,
        roots=roots,
        protocol=args.protocol,
        epitome=args.epitome,
        force=set(_csv(args.force or "")),
        out_root=Path(args.out),
        overrides=overrides,
        sweep_id=args.sweep_id,
        progress=not args.quiet,
        tracking=not args.no_wandb,
        verify=args.verify,
        strict_audio=args.strict_audio,
        shard=parse_shard(args.shard) if args.shard else None,
        assemble=args.assemble,
        wandb_project=args.wandb_project,
        wandb_entity=args.wandb_entity,
        wandb_tags=tuple(_csv(args.wandb_tags or "")),
    )
    run_dir = run_sweep(cfg)
    if cfg.shard:
        i, n = cfg.shard
        print(
            f"shard {i}/{n} done: its runs are in the cache and under {run_dir}; when all {n} shards have "
            "finished, run the same command with --assemble instead of --shard"
        )
        return 0
    print((run_dir / "report.md").read_text().split("## Paired comparisons")[0])
    print(f"results: {run_dir}/results.json  report: {run_dir}/report.md (.html)")
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    """Compare two runs metric by metric (paired tests where their test sets match)."""
    import json

    from relm.bench.regression import compare_data, compare_runs

    if args.json:
        print(json.dumps(compare_data(Path(args.run_a), Path(args.run_b)), indent=2))
    else:
        print(compare_runs(Path(args.run_a), Path(args.run_b)))
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    """Exit 1 with a table of every metric that fell below the baseline beyond its tolerance."""
    from relm.bench.regression import check

    ok, table = check(Path(args.run), Path(args.baseline), args.tolerance, args.allow_provenance_change)
    print(table)
    return 0 if ok else 1


def cmd_evaluate(args: argparse.Namespace) -> int:
    """Evaluate a run's trained systems on another corpus copy (cross-corpus or held-out speakers)."""
    from relm.bench.evaluate import evaluate_run
    from relm.bench.external import evaluate_responses

    quiet_libraries()
    if args.responses:
        external = {}
        for item in args.responses:
            name, sep, path = item.partition("=")
            if not sep or not name or not path:
                raise RelmError(f"--responses {item!r}: expected NAME=FILE.jsonl")
            external[name] = Path(path)
        run_dir = evaluate_responses(Path(args.run), external, Path(args.out), args.epitome, args.dataset)
        print((run_dir / "report.md").read_text().split("## Data")[0])
        print(f"results: {run_dir}/results.json")
        return 0
    if not args.dataset:
        raise RelmError("relm evaluate needs --dataset (another corpus) or --responses NAME=FILE")
    run_dir = evaluate_run(
        Path(args.run),
        args.dataset,
        args.root,
        Path(args.out),
        args.epitome,
        args.trained_on,
        split=args.split,
        progress=not args.quiet,
    )
    print((run_dir / "report.md").read_text().split("## Paired comparisons")[0])
    print(f"results: {run_dir}/results.json")
    return 0


def register(sub) -> None:
    p = sub.add_parser("bench", help=cmd_bench.__doc__, description=cmd_bench.__doc__)
    p.add_argument("--dataset", default=DEFAULT_DATASET, help=f"comma-separated: {', '.join(DATASETS)}")
    p.add_argument("--systems", default=",".join(default_systems()), help="comma-separated (`relm ls systems`)")
    p.add_argument("--preset", default="cpu", help=f"{', '.join(PRESETS)}, or the path of your own YAML file")
    p.add_argument("--help-preset", action="store_true", help="print every preset field with its meaning, and exit")
    p.add_argument("--device", help="auto, cpu or cuda[:N] (default: the preset's runtime.device)")
    p.add_argument("--protocol", help="split protocol (default: the corpus's first; `relm ls datasets`)")
    p.add_argument("--seeds", type=int, default=1, help="seeds per system (0..N-1); at least 1")
    p.add_argument("--root", help="corpus root for a single dataset")
    p.add_argument("--root-for", action="append", metavar="NAME=DIR", help="corpus root per dataset")
    p.add_argument("--epitome", help="EPITOME CSV folder (default: RELM_EPITOME_DIR, else datasets/epitome)")
    p.add_argument("--force", help="redo stages: features,stage0,teacher,train,score")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="preset override, e.g. train.max_steps=5")
    p.add_argument("--out", default="results/runs", help="folder of sweep folders (default: results/runs)")
    p.add_argument("--sweep-id", help="run folder name (default: preset-datasets-confighash, so reruns resume)")
    p.add_argument("--wandb-project", help="W&B project (default: WANDB_PROJECT, else relm)")
    p.add_argument("--wandb-entity", help="W&B entity (team or user; default: WANDB_ENTITY)")
    p.add_argument("--wandb-tags", help="comma-separated W&B tags for every run of the sweep")
    p.add_argument("--no-wandb", action="store_true", help="skip W&B (the CSV logs stay)")
    p.add_argument("--quiet", action="store_true", help="print only warnings, errors and the final summary")
    p.add_argument("--verbose", action="store_true", help="also the libraries' own logs and warnings")
    p.add_argument(
        "--verify",
        action="store_true",
        help="key cache entries on each audio file's sha256 instead of its size and mtime (slower)",
    )
    p.add_argument(
        "--shard",
        metavar="I/N",
        help="run only the I-th of N disjoint parts of the sweep's runs (0 <= I < N); shards share the cache "
        "and its locks, so they may run at once on one machine or a cluster (docs/slurm.md)",
    )
    p.add_argument(
        "--assemble",
        action="store_true",
        help="write results and report from the cache after every shard has finished; computes nothing",
    )
    p.add_argument(
        "--strict-audio",
        action="store_true",
        help="a bad audio file (NaN, silent, too short/long, unreadable) stops the sweep instead of being skipped",
    )
    p.set_defaults(func=cmd_bench)
    p = sub.add_parser("compare", help=cmd_compare.__doc__, description=cmd_compare.__doc__)
    p.add_argument("run_a", help="sweep folder (or its results.json): A")
    p.add_argument("run_b", help="sweep folder (or its results.json): B")
    p.add_argument("--json", action="store_true", help="machine-readable output: config difference and every row")
    p.set_defaults(func=cmd_compare)
    p = sub.add_parser("check", help=cmd_check.__doc__, description=cmd_check.__doc__)
    p.add_argument("run", help="run folder or its results.json")
    p.add_argument("--baseline", required=True, help="baseline results.json")
    p.add_argument(
        "--tolerance",
        action="append",
        metavar="METRIC=ABS",
        help="absolute tolerance per metric (default: the baseline's own, else 0.05)",
    )
    p.add_argument(
        "--allow-provenance-change",
        "--allow-scorer-change",
        action="store_true",
        help="gate even when the run's preset, data (content hash) or empathy scorer differ from the baseline's",
    )
    p.set_defaults(func=cmd_check)
    p = sub.add_parser("evaluate", help=cmd_evaluate.__doc__, description=cmd_evaluate.__doc__)
    p.add_argument("--run", required=True, help="run folder (or results.json) whose systems to evaluate")
    p.add_argument("--dataset", help="the corpus to answer (with --responses: which of the run's datasets)")
    p.add_argument(
        "--responses",
        action="append",
        metavar="NAME=FILE",
        help="score an external system's answers (JSONL: id, response[, ser_answer]) to the run's test "
        "utterances and compare it with every system of the run",
    )
    p.add_argument("--root", help="corpus root (default: RELM_<DATASET>_ROOT, else datasets/<dataset>)")
    p.add_argument("--trained-on", help="which of the run's datasets the systems were trained on (default: first)")
    p.add_argument(
        "--split",
        choices=["all", "train", "val", "test"],
        help="which utterances to answer (default: all of a corpus the run did not train on, else test)",
    )
    p.add_argument("--epitome", help="EPITOME CSV folder (default: the run's)")
    p.add_argument("--out", default="results/runs", help="folder for the new results folder")
    p.add_argument("--quiet", action="store_true", help="print only warnings, errors and the summary")
    p.set_defaults(func=cmd_evaluate)
