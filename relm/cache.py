"""Cache entries that verify themselves: a folder per entry, written atomically, with a manifest.

Layout: `RELM_CACHE/<stage>/<key>/` holds an entry's files and `ENTRY.json`
(`{"format", "stage", "key", "inputs", "created", "files": {relative path: {"size", "sha256"}}}`).

- Reading an entry checks it first, cheaply: every file's size, the sha256 of files up to
  `HASH_ON_READ_BYTES`, and the header of larger `.safetensors` files (a header records every
  tensor's extent, so truncation shows). `relm cache verify` hashes every file.
- A damaged entry is moved to `RELM_CACHE/quarantine/`, named in one warning line, and recomputed.
- An entry is computed under a per-key lock (`RELM_CACHE/locks/`): a second process waits for it,
  then reuses it, so concurrent sweeps never compute or write the same entry twice.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from filelock import FileLock, Timeout

from relm.io import atomic_dir, atomic_write_json, safetensors_problem
from relm.keys import content_key, file_sha256
from relm.paths import cache_dir

MANIFEST = "ENTRY.json"
ENTRY_FORMAT = 1
HASH_ON_READ_BYTES = 64 * 2**20  # larger files: size and safetensors header on read, sha256 in `relm cache verify`
# Folders of RELM_CACHE that hold entries (the others: models, manifests, machine facts, locks, quarantine).
ENTRY_STAGES = ("features", "stage0", "teacher", "train", "scorers")

T = TypeVar("T")
_used: set[str] = set()  # entries this process read or wrote; a sweep records them for `relm cache gc`
_computed: set[str] = set()  # stages of the entries this process computed (not read): their timings are cold
_compute_refused_because = ""  # set by `relm bench --assemble`: every entry must already be in the cache


@contextlib.contextmanager
def only_cached(reason: str) -> Iterator[None]:
    """Within the block, an entry that would have to be computed is an error naming it and `reason`."""
    global _compute_refused_because
    before, _compute_refused_because = _compute_refused_because, reason
    try:
        yield
    finally:
        _compute_refused_because = before


def computed_stages(reset: bool = False) -> set[str]:
    """The stages (cache folders) of which this process computed an entry since the last reset."""
    out = set(_computed)
    if reset:
        _computed.clear()
    return out


def used_entries(reset: bool = False) -> list[str]:
    """The entries used since the last reset (`reset=True` starts a new record and returns the old one)."""
    out = sorted(_used)
    if reset:
        _used.clear()
    return out


@contextlib.contextmanager
def _held(lock_file: Path, waiting: str | None = None) -> Iterator[None]:
    """Hold a file lock in `RELM_CACHE/locks/`; when another process holds it, say `waiting` once and wait."""
    lock_file.parent.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(lock_file))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        if waiting:
            warn(waiting)
        lock.acquire()
    try:
        yield
    finally:
        lock.release()


def warn(message: str) -> None:
    print(f"relm: warning: {message}", file=sys.stderr, flush=True)


def _files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.name != MANIFEST)


def file_record(path: Path) -> dict:
    return {"size": path.stat().st_size, "sha256": file_sha256(path)}


def write_manifest(folder: Path, stage: str, key: str, inputs: Any) -> None:
    """Record the size and sha256 of every file under `folder` (the manifest itself excepted)."""
    files = {p.relative_to(folder).as_posix(): file_record(p) for p in _files(folder)}
    manifest = {
        "format": ENTRY_FORMAT,
        "stage": stage,
        "key": key,
        "inputs": inputs,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "writer": {"host": socket.gethostname(), "pid": os.getpid()},
        "files": files,
    }
    atomic_write_json(folder / MANIFEST, manifest)


def folder_problem(folder: Path, key: str | None = None, full: bool = False) -> str | None:
    """What is wrong with an entry folder, or None when every file matches its manifest."""
    path = folder / MANIFEST
    if not path.is_file():
        return f"no {MANIFEST}"
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
        files = manifest["files"]
        records = {str(name): (int(rec["size"]), str(rec["sha256"])) for name, rec in files.items()}
    except (ValueError, KeyError, TypeError, AttributeError, UnicodeDecodeError):
        return f"{MANIFEST} is unreadable"
    if manifest.get("format") != ENTRY_FORMAT:
        return f"{MANIFEST} has format {manifest.get('format')!r}, not {ENTRY_FORMAT}"
    if key is not None and manifest.get("key") != key:
        return f"{MANIFEST} names key {manifest.get('key')!r}"
    for name, (size, sha) in records.items():
        file = folder / name
        if not file.is_file():
            return f"{name} is missing"
        actual = file.stat().st_size
        if actual != size:
            return f"{name} has {actual} bytes, its manifest says {size}"
        if full or actual <= HASH_ON_READ_BYTES:
            if file_sha256(file) != sha:
                return f"{name} does not match its sha256"
        elif name.endswith(".safetensors") and (problem := safetensors_problem(file)):
            return problem
    extra = {p.relative_to(folder).as_posix() for p in _files(folder)} - records.keys()
    if extra:
        return f"{sorted(extra)[0]} is not in its manifest"
    return None


@dataclass(frozen=True)
class CacheEntry:
    """One stage's output under one content key."""

    stage: str
    key: str

    @property
    def folder(self) -> Path:
        return cache_dir() / self.stage / self.key

    @property
    def name(self) -> str:
        return f"{self.stage}/{self.key}"

    def problem(self, full: bool = False) -> str | None:
        return folder_problem(self.folder, self.key, full)

    def ready(self) -> bool:
        """True when the entry is present and whole; a damaged one is quarantined (one warning line)."""
        if not self.folder.is_dir():
            return False
        problem = self.problem()
        if problem is None:
            return True
        self.quarantine(problem)
        return False

    def quarantine(self, problem: str) -> Path:
        dest = cache_dir() / "quarantine" / f"{self.stage}-{self.key}-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}"
        dest.parent.mkdir(parents=True, exist_ok=True)
        os.replace(self.folder, dest)
        warn(f"cache entry {self.name} damaged ({problem}): moved to {dest}, recomputing")
        return dest

    def discard(self) -> None:
        """Remove the entry (`--force`); damage of any kind is no obstacle."""
        if self.folder.is_dir():
            shutil.rmtree(self.folder)
        elif self.folder.exists():
            self.folder.unlink()

    def lock_path(self) -> Path:
        return cache_dir() / "locks" / f"{self.stage}-{self.key}.lock"

    def lock(self) -> contextlib.AbstractContextManager[None]:
        """Hold this entry's lock; say so once when another process holds it."""
        return _held(self.lock_path(), f"waiting for cache entry {self.name}: another relm process is computing it")

    @contextlib.contextmanager
    def write(self, inputs: Any = None) -> Iterator[Path]:
        """A temporary folder that becomes the entry, with its manifest, only when the block succeeds.

        Called under the entry's lock, so a temporary folder of this key left by a killed process is removed."""
        for stale in self.folder.parent.glob(f".{self.key}.*.tmp"):
            shutil.rmtree(stale, ignore_errors=True)
        with atomic_dir(self.folder) as tmp:
            yield tmp
            write_manifest(tmp, self.stage, self.key, inputs)


# What a damaged file raises while being read: then the entry is quarantined and recomputed.
READ_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    ValueError,
    KeyError,
    TypeError,
    AttributeError,
    EOFError,
    RuntimeError,
)
with contextlib.suppress(ImportError):
    from safetensors import SafetensorError

    READ_ERRORS += (SafetensorError,)


def load_or_compute(
    entry: CacheEntry,
    read: Callable[[Path], T],
    compute: Callable[[Path], T],
    *,
    force: bool = False,
    inputs: Any = None,
) -> T:
    """`read(folder)` of a whole entry; else `compute(tmp)` writes its files into `tmp` and the entry is committed.

    Under the entry's lock: a concurrent process computing the same key is waited for and then reused.
    """
    _used.add(entry.name)
    with entry.lock():
        if force:
            entry.discard()
        elif entry.ready():
            try:
                return read(entry.folder)
            except READ_ERRORS as exc:
                entry.quarantine(f"unreadable: {type(exc).__name__}: {str(exc)[:120]}")
        if _compute_refused_because:
            from relm.errors import RelmError

            raise RelmError(f"cache entry {entry.name} is not in the cache: {_compute_refused_because}")
        _computed.add(entry.stage)
        with entry.write(inputs) as tmp:
            return compute(tmp)


def path_lock(path: Path, waiting: str | None = None) -> contextlib.AbstractContextManager[None]:
    """An exclusive lock named after a path (e.g. a sweep folder), so two processes never interleave writes;
    `waiting` is said once when another process holds it."""
    return _held(cache_dir() / "locks" / f"path-{content_key(str(Path(path).resolve()))}.lock", waiting)


def build_folder_once(
    folder: Path, ready: Callable[[], bool], build: Callable[[Path], None], *, what: str, force: bool = False
) -> None:
    """Make `folder` with `build(tmp)` unless `ready()`, atomically and under a lock named after it: a second
    process waits for the first and then uses its folder, instead of replacing it while the first reads it."""
    if not force and ready():
        return
    with path_lock(folder, f"waiting for {what}: another relm process is making it"):
        if not force and ready():
            return
        with atomic_dir(folder) as tmp:
            build(tmp)


def entries(root: Path | None = None) -> Iterator[CacheEntry]:
    """Every entry folder under the cache (one with a manifest, or a stage folder without one)."""
    root = root or cache_dir()
    for stage in ENTRY_STAGES:
        folder = root / stage
        if not folder.is_dir():
            continue
        for child in sorted(folder.iterdir()):
            if child.is_dir() and not child.name.startswith("."):
                yield CacheEntry(stage, child.name)


def folder_size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
