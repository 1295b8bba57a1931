"""Manifests in relm's cache (`<cache>/manifests/`, parquet + JSON sidecar), keyed by dataset, protocol and root.

`relm bench` writes one for every dataset it reads and records its path in results.json, so a
researcher can load the exact utterance table a sweep used with pandas; `relm data prepare` writes the same.
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import pandas as pd

from relm.data.schema import Manifest
from relm.io import atomic_write_bytes, atomic_write_json
from relm.keys import bytes_key, content_key, file_sha256
from relm.paths import cache_dir


def manifest_key(manifest: Manifest) -> str:
    return content_key(manifest.dataset, manifest.protocol, str(Path(manifest.root).resolve()))


HASHED_COLUMNS = [
    "utt_id",
    "path",
    "emotion",
    "split",
    "transcript",
    "speaker",
    "duration",
    "arousal",
    "valence",
    "dominance",
]


def audio_signature(path: str, verify: bool = False) -> str:
    """What identifies an audio file's content: size and mtime (fast), or its sha256 (`verify`)."""
    if verify:
        return file_sha256(path)
    st = os.stat(path)
    return f"{st.st_size}:{st.st_mtime_ns}"


def data_hash(df: pd.DataFrame, verify: bool = False) -> str:
    """Key of everything a stage reads from a corpus: the manifest rows (ids, paths, labels, splits,
    transcripts, speakers, durations, A/V/D) and each audio file's signature, so changed audio or a
    corpus copy elsewhere never reuses another's features."""
    rows = pd.util.hash_pandas_object(df[HASHED_COLUMNS], index=False).values.tobytes()
    audio = [audio_signature(p, verify) if os.path.exists(p) else "missing" for p in df["path"]]
    return bytes_key(rows + "\n".join(audio).encode())


PORTABLE_COLUMNS = ["utt_id", "emotion", "split", "transcript", "speaker", "arousal", "valence", "dominance"]


def content_hash(manifest: Manifest) -> str:
    """What the data is, wherever it lies: the rows' ids, labels, splits, transcripts, speakers and A/V/D plus
    each audio file's sha256 (recorded by the audio checks), without paths or mtimes, so the same corpus on two
    machines has the same hash (`relm check` compares it with a baseline's)."""
    df = manifest.df
    rows = pd.util.hash_pandas_object(df[PORTABLE_COLUMNS], index=False).values.tobytes()
    return bytes_key(rows + "\n".join(manifest.audio_sha256[p] for p in df["path"]).encode())


def save_manifest(manifest: Manifest) -> Path:
    folder = cache_dir() / "manifests"
    stem = f"{manifest.dataset}-{manifest.protocol}-{manifest_key(manifest)}"
    buf = io.BytesIO()
    manifest.df.to_parquet(buf, index=False)
    path = atomic_write_bytes(folder / f"{stem}.parquet", buf.getvalue())
    atomic_write_json(
        folder / f"{stem}.json",
        {
            "dataset": manifest.dataset,
            "root": manifest.root,
            "protocol": manifest.protocol,
            "skipped": manifest.skipped,
            "avd_source": manifest.avd_source,
            "data_hash": data_hash(manifest.df),
        },
    )
    return path
