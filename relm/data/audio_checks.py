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
from relm.keys import content_key
from relm.paths import cache_dir

CHECKS_VERSION = 1


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


def audio_problems(paths: list[str], bounds: AudioBounds, progress: bool = True) -> dict[str, str]:
    """{path: AudioError message} for each file that cannot be used as speech."""
    store = cache_dir() / "audio-checks" / f"{content_key(bounds, CHECKS_VERSION)}.json"
    try:
        known: dict[str, str | None] = json.loads(store.read_text()) if store.is_file() else {}
    except (ValueError, OSError):
        known = {}  # a damaged record only costs a re-check
    todo = [p for p in paths if _signature(p) not in known]
    for path in tqdm(todo, desc="audio checks", unit="file", disable=not progress or len(todo) < 50):
        try:
            load_audio(path, bounds=bounds)
            known[_signature(path)] = None
        except AudioError as exc:
            known[_signature(path)] = str(exc)
    if todo:
        atomic_write_json(store, known)
    return {p: msg for p in paths if (msg := known.get(_signature(p)))}


def drop_bad_audio(manifest, bounds: AudioBounds, strict: bool, progress: bool = True) -> None:
    """Skip (and count) the manifest's bad files in place; `strict`: the first one is an error."""
    problems = audio_problems(manifest.df["path"].tolist(), bounds, progress)
    if not problems:
        return
    if strict:
        raise AudioError(f"{sorted(problems.values())[0]} (--strict-audio)")
    for message in problems.values():
        manifest.skip(skip_reason(message), message)
    manifest.df = manifest.df[~manifest.df["path"].isin(problems)].reset_index(drop=True)
