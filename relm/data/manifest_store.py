"""Manifests in relm's cache (`<cache>/manifests/`, parquet + JSON sidecar), keyed by dataset, protocol and root.

`relm bench` writes one for every dataset it reads and records its path in results.json, so a
researcher can load the exact utterance table a sweep used with pandas; `relm data prepare` writes the same.
"""

from __future__ import annotations

import io
from pathlib import Path

import pandas as pd

from relm.data.schema import Manifest
from relm.io import atomic_write_bytes, atomic_write_json
from relm.keys import bytes_key, content_key
from relm.paths import cache_dir


def manifest_key(manifest: Manifest) -> str:
    return content_key(manifest.dataset, manifest.protocol, str(Path(manifest.root).resolve()))


def data_hash(df: pd.DataFrame) -> str:
    """Content hash of the manifest rows (ids, labels, splits, transcripts, durations)."""
    cols = ["utt_id", "emotion", "split", "transcript", "speaker", "duration"]
    return bytes_key(pd.util.hash_pandas_object(df[cols], index=False).values.tobytes())


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
