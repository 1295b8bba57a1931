"""`relm scorer`: train and evaluate the EPITOME empathy scorers."""

from __future__ import annotations

import argparse
import json
from typing import Any

from relm.errors import RelmError


def _print_table(scores: dict, title: str) -> None:
    print(title)
    print(f"{'mech':5} {'n':>5} {'accuracy':>9} {'macro-F1':>9}  F1 level 0 / 1 / 2")
    for mech, s in scores.items():
        lv = s["f1_per_level"]
        print(
            f"{mech:5} {s['n']:5d} {s['accuracy']:9.3f} {s['macro_f1']:9.3f}  "
            f"{lv['0']:.3f} / {lv['1']:.3f} / {lv['2']:.3f}"
        )


def cmd_train(args: argparse.Namespace) -> int:
    """Train an empathy scorer on EPITOME CSVs, split by seeker post; saves it with its validity."""
    from relm.scoring import empathy
    from relm.scoring.epitome_data import load_epitome

    params = _kind_params(args, "relm scorer train")
    data = load_epitome(args.data)
    scorer = empathy.train(
        args.kind, data, seed=args.seed, device=_device(args), all_rows=args.all_rows, cv_folds=args.folds, **params
    )
    m = scorer.meta
    print(
        f"trained {scorer.identity} on {m['n_train']} pairs in {m['train_seconds']:.1f} s "
        f"(skipped: {m['skipped_rows']}); saved in {empathy.scorer_dir(scorer.identity)}"
    )
    if args.all_rows:
        _print_table(m["validation"], f"{args.folds}-fold cross-validation by seeker, the held-out folds pooled:")
    else:
        _print_table(m["validation"], f"validation on {m['n_val']} pairs of held-out seekers:")
    return 0


def cmd_cv(args: argparse.Namespace) -> int:
    """k-fold cross-validation of a scorer kind, grouped by seeker post: held-out accuracy and macro-F1 per mechanism
    (mean and sd over folds); `--out FILE` writes the JSON, with the kind's parameters, the CPU and the provenance."""
    import time

    from relm.io import atomic_write_json
    from relm.provenance import cpu_description, provenance
    from relm.scoring import empathy
    from relm.scoring.epitome_data import MECHANISMS, load_epitome

    if args.folds < 2:
        raise RelmError(f"--folds must be at least 2, got {args.folds}")
    params = _kind_params(args, "relm scorer cv")
    mechanisms = empathy.checked_mechanisms(args.kind, tuple(args.mechanism or MECHANISMS))
    data = load_epitome(args.data)
    device = _device(args)
    start = time.perf_counter()
    found = empathy.cross_validate(args.kind, data, args.folds, args.seed, device, mechanisms, **params)
    found["seconds"] = round(time.perf_counter() - start, 1)
    found |= {  # what a reader of the --out file needs to weigh it: the recipe, the machine, the code
        "params": empathy.build(args.kind, **params).params,
        "device": str(device),
        "cpu": cpu_description(),
        "provenance": provenance(),
    }
    if args.out:
        atomic_write_json(args.out, found)
    if args.json:
        print(json.dumps(found, indent=2))
        return 0
    print(f"{args.kind}: {args.folds}-fold cross-validation by seeker on {found['n']} pairs ({found['seconds']} s)")
    for mech in (m for m in MECHANISMS if m in found):
        m = found[mech]
        print(
            f"{mech:3} accuracy {m['accuracy']:.3f} ± {m['accuracy_sd']:.3f}  "
            f"macro-F1 {m['macro_f1']:.3f} ± {m['macro_f1_sd']:.3f}  "
            f"(batch-averaged as EPITOME's train.py: {m['macro_f1_batched']:.3f})"
        )
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    """Score a folder of EPITOME CSVs with a trained scorer: accuracy, macro-F1, per-level F1."""
    from relm.scoring import empathy
    from relm.scoring.epitome_data import load_epitome

    data = load_epitome(args.data)
    scorer = _trained(args)
    table = empathy.unseen_rows(scorer, data.table)
    if table.empty:
        raise RelmError(
            f"{data.source}: every pair was in {scorer.identity}'s training data; nothing unseen to evaluate"
        )
    scores = empathy.evaluate(scorer, table)
    if args.json:
        print(json.dumps(scores, indent=2))
    else:
        excluded = len(data.table) - len(table)
        _print_table(
            scores, f"{scorer.identity} on {len(table)} pairs of {data.source} ({excluded} seen in training excluded)"
        )
    return 0


def cmd_score(args: argparse.Namespace) -> int:
    """Score your own responses: EPITOME levels and the emotion each reply names (and congruence, given gold)."""
    from relm.scoring.congruence import congruence_row, detect_emotion
    from relm.scoring.response_files import read_pairs

    pairs = read_pairs(args.input)  # the file is checked before any model loads
    scorer = _trained(args)
    levels = scorer.score([p["seeker"] for p in pairs], [p["response"] for p in pairs])
    out = []
    for i, pair in enumerate(pairs):
        row: dict[str, Any] = {mech: int(levels[mech][i]) for mech in levels}
        if pair["gold_emotion"]:
            found = congruence_row(pair["response"], pair["gold_emotion"])
            row |= {"response_emotion": found["response_emotion"], "congruent": bool(found["congruent"])}
        else:
            row |= {"response_emotion": detect_emotion(pair["response"]), "congruent": None}
        out.append(row)
    if args.json:
        print("\n".join(json.dumps(r) for r in out))
        return 0
    print(f"{len(out)} responses scored by {scorer.identity}")
    for mech in levels:
        print(f"{mech.upper()}: mean level {sum(r[mech] for r in out) / len(out):.3f}")
    judged = [r["congruent"] for r in out if r["congruent"] is not None]
    if judged:
        print(f"congruence: {sum(judged) / len(judged):.3f} of {len(judged)} with a gold emotion")
    return 0


def _kind_params(args: argparse.Namespace, where: str) -> dict:
    """The kind's parameters given on the command line (the kind's defaults else), checked against the kind before
    the data is read or anything trains."""
    from relm.scoring import empathy

    params = {name: getattr(args, name) for name in _kind_args() if getattr(args, name, None)}
    empathy.check_params(args.kind, params, where)
    return params


def _trained(args: argparse.Namespace):
    """`--checkpoint DIR`: an authors' EPITOME checkpoint as is; else the newest scorer relm trained of `--kind`."""
    from relm.scoring import empathy

    if args.checkpoint:
        if args.kind not in (None, empathy.CHECKPOINT_KIND):
            raise RelmError(
                f"--checkpoint is an EPITOME bi-encoder (kind {empathy.CHECKPOINT_KIND}), not kind {args.kind!r}"
            )
        return empathy.load_checkpoint(args.checkpoint, args.encoder or "roberta-base", _device(args))
    if args.encoder:
        raise RelmError("--encoder goes with --checkpoint (a trained relm scorer knows its encoder)")
    return empathy.load_trained(args.kind, device=_device(args))


def _device(args: argparse.Namespace):
    from relm.runtime import runtime_for_device

    return runtime_for_device(args.device).device


def _class_weight_arg(text: str) -> str | dict[str, str]:
    """`balanced` (every mechanism) or `balanced:ip,ex` ({ip: balanced, ex: balanced}), as a preset writes it."""
    from relm.scoring.epitome_data import MECHANISMS

    rule, _, named = text.partition(":")
    mechs = [m.strip().lower() for m in named.split(",") if m.strip()]
    if rule != "balanced" or (named and not mechs) or not set(mechs) <= set(MECHANISMS):
        raise argparse.ArgumentTypeError(f"balanced or balanced:MECH,... with MECH in {', '.join(MECHANISMS)}")
    return {m: rule for m in mechs} if mechs else rule


def _kind_args() -> dict[str, dict[str, Any]]:
    """The kind's parameters `train` and `cv` take, by parameter name: each one's `add_argument` keywords."""
    return {
        "epochs": {"type": int, "help": "epochs (neural kinds only)"},
        "encoder": {"help": "epitome kind: a relm model name (default all-minilm-l6-v2) or a hub id"},
        "lr": {"type": float, "help": "learning rate (neural kinds; epitome: 2e-5 as EPITOME's train.py)"},
        "class_weight": {
            "type": _class_weight_arg,
            "metavar": "balanced[:MECH,...]",
            "help": "epitome kind: weigh the level loss by n / (3 n_level), as the tfidf kind does (EPITOME: "
            "unweighted); balanced:ip,ex weighs only those mechanisms (the cpu preset's)",
        },
        "precision": {
            "choices": ["32-true", "bf16-mixed", "auto"],
            "help": "neural kinds: epitome 32-true (EPITOME's, the default) or bf16-mixed; minilm also auto (its "
            "default: bf16 where this CPU computes it natively)",
        },
    }


def _add_kind_args(p: argparse.ArgumentParser) -> None:
    """`--epochs`, `--encoder`, ...: the kind's parameters, as `_kind_args` declares them."""
    for name, keywords in _kind_args().items():
        p.add_argument("--" + name.replace("_", "-"), **keywords)


def _add_device_arg(p: argparse.ArgumentParser) -> None:
    """Where the neural kinds run (`_device` resolves it)."""
    p.add_argument("--device", default="auto", help="auto (CUDA when visible), cpu or cuda[:N] (neural kinds)")


def _add_checkpoint_args(p: argparse.ArgumentParser) -> None:
    """`eval` and `score`: an authors' checkpoint instead of a scorer relm trained (`_trained` reads them)."""
    p.add_argument(
        "--checkpoint",
        help="a folder of EPITOME's own trained models (one .pth per mechanism, ER/IP/EX in the name), used as is",
    )
    p.add_argument("--encoder", help="--checkpoint: its encoder's config and tokenizer (default roberta-base)")


def register(sub) -> None:
    from relm.scoring.empathy import SCORERS
    from relm.scoring.epitome_data import MECHANISMS, default_dir

    scorer = sub.add_parser("scorer", help="train and evaluate EPITOME empathy scorers")
    ssub = scorer.add_subparsers(dest="scorer_command", required=True)
    data_help = f"folder with the three EPITOME CSVs (default: RELM_EPITOME_DIR, else {default_dir()})"
    p = ssub.add_parser("train", help=cmd_train.__doc__, description=cmd_train.__doc__)
    p.add_argument("--kind", choices=SCORERS.names(), default=SCORERS.names()[0], help="scorer kind to train")
    _add_kind_args(p)
    p.add_argument("--data", help=data_help)
    p.add_argument("--seed", type=int, default=0, help="seed of the seeker-grouped split and initialisation")
    p.add_argument(
        "--all-rows",
        action="store_true",
        help="train on every row; its validity comes from a cross-validation by seeker (--folds), kept in meta.json",
    )
    p.add_argument("--folds", type=int, default=5, help="--all-rows: folds of the cross-validation")
    _add_device_arg(p)
    p.set_defaults(func=cmd_train)
    p = ssub.add_parser("cv", help=cmd_cv.__doc__, description=cmd_cv.__doc__)
    p.add_argument("--kind", choices=SCORERS.names(), default=SCORERS.names()[0], help="scorer kind to validate")
    p.add_argument("--data", help=data_help)
    p.add_argument("--folds", type=int, default=5, help="folds, grouped by seeker post")
    p.add_argument("--seed", type=int, default=0, help="seed of the fold assignment and initialisation")
    _add_kind_args(p)
    _add_device_arg(p)
    p.add_argument(
        "--mechanism",
        action="append",
        choices=MECHANISMS,
        help="validate only this mechanism (repeatable; kinds with one model per mechanism: tfidf, roberta, epitome)",
    )
    p.add_argument("--out", help="also write the figures to this JSON file")
    p.add_argument("--json", action="store_true", help="print the figures as JSON")
    p.set_defaults(func=cmd_cv)
    p = ssub.add_parser("eval", help=cmd_eval.__doc__, description=cmd_eval.__doc__)
    p.add_argument("--kind", choices=SCORERS.names(), help="which trained scorer (default: the first found)")
    p.add_argument("--data", help=data_help)
    p.add_argument("--json", action="store_true", help="print {mechanism: {accuracy, macro_f1, ...}}")
    _add_checkpoint_args(p)
    _add_device_arg(p)
    p.set_defaults(func=cmd_eval)
    p = ssub.add_parser("score", help=cmd_score.__doc__, description=cmd_score.__doc__)
    p.add_argument(
        "--input",
        required=True,
        help="CSV or JSONL with seeker_post,response_post (or transcript,response) [,gold_emotion]",
    )
    p.add_argument("--kind", choices=SCORERS.names(), help="which trained scorer (default: the first found)")
    p.add_argument(
        "--json",
        action="store_true",
        help="one object per input row, in order: er, ip, ex, response_emotion, congruent",
    )
    _add_checkpoint_args(p)
    _add_device_arg(p)
    p.set_defaults(func=cmd_score)
