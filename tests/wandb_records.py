"""Read back what an offline W&B run wrote: its `.wandb` file is a LevelDB-style log of protobuf `Record`s
(a 7-byte header `:W&B` + magic + version, then 32 KiB blocks of chunks: crc32, length, type)."""

from __future__ import annotations

import json
import struct
from pathlib import Path

BLOCK, HEADER, CHUNK = 32768, 7, 7
FULL, FIRST, MIDDLE, LAST = 1, 2, 3, 4


def records(path: Path) -> list:
    from wandb.proto import wandb_internal_pb2

    data = path.read_bytes()
    assert data[:4] == b":W&B", f"{path}: not a W&B transaction log"
    out, pending, pos = [], b"", HEADER
    while pos + CHUNK <= len(data):
        room = BLOCK - pos % BLOCK
        if room < CHUNK:  # the block's tail is padding
            pos += room
            continue
        _crc, length, kind = struct.unpack("<IHB", data[pos : pos + CHUNK])
        body = data[pos + CHUNK : pos + CHUNK + length]
        pos += CHUNK + length
        if kind == 0 and length == 0:
            continue
        pending = body if kind in (FULL, FIRST) else pending + body
        if kind in (FULL, LAST):
            record = wandb_internal_pb2.Record()
            record.ParseFromString(pending)
            out.append(record)
    return out


def _items(items) -> dict:
    """Items -> {key: value}; a logged object (a table, an image) arrives as nested keys and becomes a dict."""
    out: dict = {}
    for item in items:
        *parents, leaf = list(item.nested_key) or [item.key]
        place = out
        for part in parents:
            place = place.setdefault(part, {})
        place[leaf] = json.loads(item.value_json)
    return out


def summary(path: Path) -> dict:
    """The run's summary as the last summary records left it (JSON values decoded)."""
    out: dict = {}
    for record in records(path):
        if record.HasField("summary"):
            out |= _items(record.summary.update)
    return out


def history(path: Path) -> list[dict]:
    """Every logged step, its values decoded."""
    return [_items(record.history.item) for record in records(path) if record.HasField("history")]


def config(path: Path) -> dict:
    """The run's config: what `wandb.init(config=...)` sent, then any later updates."""
    out: dict = {}
    for record in records(path):
        if record.HasField("run"):
            out |= _items(record.run.config.update)
        if record.HasField("config"):
            out |= _items(record.config.update)
    return out
