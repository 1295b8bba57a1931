"""One policy for bad audio, whether or not the features are cached.

Every utterance a sweep uses is read and checked once (NaN or infinite samples, silence, too short,
too long, unreadable) before any stage runs. A bad file is skipped and counted with its reason, or,
with `--strict-audio`, stops the sweep with one line naming it. Results are remembered per file
signature (size and mtime) in `RELM_CACHE/audio-checks/`, so a warm rerun reads no audio, and a
changed file is checked again (its new signature also changes the data hash).
"""

from __future__ import annotations

import json
import os

from tqdm import tqdm

from relm.data.audio import AudioBounds, AudioError, load_audio
from relm.io import atomic_write_json
from relm.keys import content_key, file_sha256
from relm.paths import cache_dir

CHECKS_VERSION = 2  # v2: each record also holds the file's sha256


def skip_reason(message: str) -> str:
    """The counted reason for an AudioError's message."""
    for needle, reason in (
        ("NaN", "nan_audio"),
        ("silent", "silent_audio"),
        ("too short", "too_short"),
        ("too long", "too_long"),
    ):
        if needle in message:
            return reason
    return "unreadable_audio"


def _signature(path: str) -> str:
    try:
        st = os.stat(path)
    except OSError:
        return f"{path}|missing"
    return f"{path}|{st.st_size}:{st.st_mtime_ns}"


def audio_records(paths: list[str], bounds: AudioBounds, progress: bool = True) -> dict[str, dict]:
    """{path: {"problem": AudioError message or None, "sha256": content digest}}, each file read once per
    signature (the records are kept in RELM_CACHE/audio-checks/)."""
    store = cache_dir() / "audio-checks" / f"{content_key(bounds, CHECKS_VERSION)}.json"
    try:
        known: dict[str, dict] = json.loads(store.read_text()) if store.is_file() else {}
    except (ValueError, OSError):
        known = {}  # a damaged record only costs a re-check
    signatures = {p: _signature(p) for p in paths}
    todo = [p for p in paths if not isinstance(known.get(signatures[p]), dict)]
    for path in tqdm(todo, desc="audio checks", unit="file", disable=not progress or len(todo) < 50):
        try:
            load_audio(path, bounds=bounds)
            problem = None
        except AudioError as exc:
            problem = str(exc)
        digest = file_sha256(path) if os.path.isfile(path) else "missing"
        known[signatures[path]] = {"problem": problem, "sha256": digest}
    if todo:
        atomic_write_json(store, known)
    return {p: known[signatures[p]] for p in paths}


def drop_bad_audio(manifest, bounds: AudioBounds, strict: bool, progress: bool = True) -> None:
    """Skip (and count) the manifest's bad files in place, and keep every checked file's digest on the manifest
    (`audio_sha256`, for its content hash); `strict`: the first bad file is an error."""
    records = audio_records(manifest.df["path"].tolist(), bounds, progress)
    manifest.audio_sha256 = {p: r["sha256"] for p, r in records.items()}
    problems = {p: r["problem"] for p, r in records.items() if r["problem"]}
    if not problems:
        return
    if strict:
        raise AudioError(f"{sorted(problems.values())[0]} (--strict-audio)")
    for message in problems.values():
        manifest.skip(skip_reason(message), message)
    manifest.df = manifest.df[~manifest.df["path"].isin(problems)].reset_index(drop=True)
