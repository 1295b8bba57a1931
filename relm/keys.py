"""The one way relm hashes things: content keys for cache entries, sweep ids and data, and file digests."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

KEY_LENGTH = 16  # hex digits: 64 bits, no collision in any realistic cache


def content_key(*parts: object, length: int = KEY_LENGTH) -> str:
    """A stable hex key of JSON-serialisable parts (dict order does not matter; other objects via str)."""
    text = json.dumps(parts, sort_keys=True, default=str, ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:length]


def bytes_key(data: bytes, length: int = KEY_LENGTH) -> str:
    return hashlib.sha256(data).hexdigest()[:length]


def file_sha256(path: str | os.PathLike) -> str:
    """The full sha256 of a file, read in 4 MiB blocks."""
    digest = hashlib.sha256()
    with open(Path(path), "rb") as fh:
        for block in iter(lambda: fh.read(1 << 22), b""):
            digest.update(block)
    return digest.hexdigest()
