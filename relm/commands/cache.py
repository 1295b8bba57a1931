"""`relm cache`: list, verify and garbage-collect relm's cache entries (`relm.cache`)."""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

from filelock import FileLock, Timeout

from relm.cache import ENTRY_STAGES, CacheEntry, entries, folder_size
from relm.errors import RelmError
from relm.paths import cache_dir


def _gib(n: int) -> str:
    return f"{n / 2**30:.2f} GiB" if n >= 2**28 else f"{n / 2**20:.1f} MiB"


def cmd_ls(args: argparse.Namespace) -> int:
    """Entries per stage with their sizes, plus quarantined and leftover folders."""
    rows: dict[str, list[int]] = {}
    for entry in entries():
        rows.setdefault(entry.stage, [0, 0])
        rows[entry.stage][0] += 1
        rows[entry.stage][1] += folder_size(entry.folder)
    quarantine = cache_dir() / "quarantine"
    if args.json:
        print(json.dumps({"root": str(cache_dir()), "stages": rows}, indent=2))
        return 0
    print(f"cache: {cache_dir()}")
    for stage, (n, size) in rows.items():
        print(f"  {stage:10} {n:5} entries  {_gib(size)}")
    if quarantine.is_dir():
        print(f"  quarantine {len(list(quarantine.iterdir())):5} folders  {_gib(folder_size(quarantine))}")
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    """Hash every file of every entry against its manifest; a damaged entry is quarantined (exit 1)."""
    from tqdm import tqdm

    bad = sorted(set(args.stage or []) - set(ENTRY_STAGES))
    if bad:
        raise RelmError(f"--stage takes {list(ENTRY_STAGES)}, not {bad}")
    todo = [e for e in entries() if not args.stage or e.stage in args.stage]
    damaged = []
    for entry in tqdm(todo, desc="verify", unit="entry", disable=args.quiet or not todo):
        with entry.lock():
            if not entry.folder.is_dir():  # removed meanwhile
                continue
            problem = entry.problem(full=True)
            if problem is not None:
                damaged.append((entry, problem, entry.quarantine(problem)))
    print(f"verified {len(todo)} cache entries: {len(todo) - len(damaged)} whole, {len(damaged)} damaged")
    for entry, problem, dest in damaged:
        print(f"  {entry.name}: {problem} (moved to {dest})")
    return 1 if damaged else 0


def _referenced(runs: list[Path]) -> set[str]:
    """Entries named by any results.json under the given folders."""
    keep: set[str] = set()
    for root in runs:
        for path in root.rglob("results.json"):
            try:
                keep |= set(json.loads(path.read_text()).get("cache_entries") or [])
            except (ValueError, OSError, AttributeError):
                raise RelmError(f"{path}: unreadable results file; fix or remove it before `relm cache gc`") from None
    return keep


def _idle(lock_path: Path) -> bool:
    """True when no process holds this lock (so its temporary files are leftovers of a killed one)."""
    lock = FileLock(str(lock_path))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        return False
    lock.release()
    return True


def cmd_gc(args: argparse.Namespace) -> int:
    """Remove entries no sweep under --runs names, leftovers of killed processes, and the quarantine."""
    runs = [Path(r) for r in args.runs or ["results/runs"]]
    for r in runs:
        if not r.is_dir():
            raise RelmError(f"{r}: no such folder of sweeps (give --runs DIR)")
    keep = _referenced(runs)
    doomed: list[Path] = []
    for entry in entries():
        if entry.name not in keep and _idle(entry.lock_path()):
            doomed.append(entry.folder)
    for stage in {e.stage for e in entries()} | {"partial"}:
        for leftover in (cache_dir() / stage).glob(".*.tmp"):
            key = leftover.name[1:].split(".")[0]
            if _idle(CacheEntry(stage, key).lock_path()):
                doomed.append(leftover)
    for partial in (cache_dir() / "partial").glob("*.jsonl"):
        stage, _, key = partial.stem.partition("-")
        if _idle(CacheEntry(stage, key).lock_path()):
            doomed.append(partial)
    if (cache_dir() / "quarantine").is_dir():
        doomed.append(cache_dir() / "quarantine")
    freed = sum(folder_size(p) for p in doomed)
    verb = "would remove" if args.dry_run else "removed"
    for path in doomed:
        if not args.dry_run:
            shutil.rmtree(path) if path.is_dir() else path.unlink()
        if not args.quiet:
            print(f"  {verb} {path.relative_to(cache_dir())}")
    print(
        f"{verb} {len(doomed)} item(s), {_gib(freed)}; kept {len(keep)} entries named by "
        f"results.json files under {', '.join(map(str, runs))}"
    )
    return 0


def register(sub) -> None:
    p = sub.add_parser("cache", help="list, verify and garbage-collect relm's cache (RELM_CACHE)")
    cache_sub = p.add_subparsers(dest="cache_command", required=True)
    q = cache_sub.add_parser("ls", help=cmd_ls.__doc__, description=cmd_ls.__doc__)
    q.add_argument("--json", action="store_true", help="machine-readable output")
    q.set_defaults(func=cmd_ls)
    q = cache_sub.add_parser("verify", help=cmd_verify.__doc__, description=cmd_verify.__doc__)
    q.add_argument("--stage", action="append", help="only this stage's entries (repeatable)")
    q.add_argument("--quiet", action="store_true", help="no progress bar")
    q.set_defaults(func=cmd_verify)
    q = cache_sub.add_parser("gc", help=cmd_gc.__doc__, description=cmd_gc.__doc__)
    q.add_argument("--runs", action="append", metavar="DIR", help="folder of sweeps to keep (default results/runs)")
    q.add_argument("--dry-run", action="store_true", help="list what would be removed, remove nothing")
    q.add_argument("--quiet", action="store_true", help="only the one-line total")
    q.set_defaults(func=cmd_gc)
