"""`relm data`: describe and prepare corpora, generate the synthetic corpus."""

from __future__ import annotations

import argparse
import json
import time


def _read(args: argparse.Namespace):
    from relm.data.audio import AudioBounds
    from relm.data.audio_checks import drop_bad_audio
    from relm.data.corpora import ReadOptions, find_root, get_adapter

    adapter = get_adapter(args.dataset)
    root = find_root(args.dataset, args.root)
    options = ReadOptions(
        protocol=args.protocol,
        strict_audio=args.strict_audio,
        bounds=AudioBounds(min_seconds=args.min_seconds, max_seconds=args.max_seconds),
    )
    manifest = adapter.read(root, options)
    drop_bad_audio(manifest, options.bounds, options.strict_audio)  # the policy a sweep applies
    return manifest


def cmd_describe(args: argparse.Namespace) -> int:
    """Counts per split, class and speaker; durations; what was skipped and why."""
    from relm.data.describe import describe, format_description

    info = describe(_read(args))
    print(json.dumps(info, indent=2) if args.json else format_description(info))
    return 0


def cmd_prepare(args: argparse.Namespace) -> int:
    """Read a corpus and write its manifest (parquet) into relm's cache."""
    from relm.data.manifest_store import save_manifest

    manifest = _read(args)
    path = save_manifest(manifest)
    print(f"{len(manifest.df)} utterances -> {path}")
    return 0


def cmd_synth(args: argparse.Namespace) -> int:
    """Generate the synthetic ESD-format corpus with espeak-ng (deterministic per seed)."""
    from relm.data.synth import SynthConfig, generate

    cfg = SynthConfig(seed=args.seed, n_val=args.val, n_test=args.test, n_train=args.train, workers=args.workers)
    start = time.perf_counter()
    summary = generate(args.out, cfg)
    print(
        f"synth-esd: {summary['n_utterances']} utterances in {args.out} "
        f"(generated in {summary['seconds']} s; this call {time.perf_counter() - start:.1f} s)"
    )
    return 0


def register(sub) -> None:
    from relm.data.corpora import DATASETS

    data = sub.add_parser("data", help="describe and prepare corpora; generate synth-esd")
    dsub = data.add_subparsers(dest="data_command", required=True)
    for name, func in (("describe", cmd_describe), ("prepare", cmd_prepare)):
        p = dsub.add_parser(name, help=func.__doc__, description=func.__doc__)
        p.add_argument("--dataset", required=True, choices=DATASETS.names(), help="which corpus layout to read")
        p.add_argument("--root", help="corpus root (default: RELM_<DATASET>_ROOT, else datasets/<dataset>)")
        p.add_argument("--protocol", help="split protocol (default: the corpus's first)")
        p.add_argument("--strict-audio", action="store_true", help="a corrupt audio file is fatal, not skipped")
        p.add_argument("--min-seconds", type=float, default=0.3, help="shorter audio is skipped (counted)")
        p.add_argument("--max-seconds", type=float, default=30.0, help="longer audio is skipped (counted)")
        if name == "describe":
            p.add_argument("--json", action="store_true", help="print one JSON object")
        p.set_defaults(func=func)
    p = dsub.add_parser("synth", help=cmd_synth.__doc__, description=cmd_synth.__doc__)
    p.add_argument("--out", default="datasets/synth-esd", help="corpus folder to write (ESD layout)")
    p.add_argument("--seed", type=int, default=0, help="voices, sentences and prosody jitter follow it")
    p.add_argument("--val", type=int, default=5, help="evaluation sentences per speaker (ESD: 20)")
    p.add_argument("--test", type=int, default=8, help="test sentences per speaker (ESD: 30)")
    p.add_argument("--train", type=int, default=37, help="train sentences per speaker (ESD: 300)")
    p.add_argument("--workers", type=int, default=2, help="espeak-ng processes at once")
    p.set_defaults(func=cmd_synth)
