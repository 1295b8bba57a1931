"""Reader for CTranslate2 `model.bin` files (binary versions 3-6).

The format (CTranslate2's `ModelSpec._serialize`) is a little-endian list of named
tensors: u32 version, spec name, u32 revision, u32 count, then per tensor a name,
u8 rank, u32 dims, u8 dtype id, u32 byte count and the raw bytes; then u32 alias
count and (alias, target) name pairs. Strings are u16 length (with the trailing
NUL) followed by UTF-8 bytes.
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from relm.errors import RelmError

# CTranslate2 include/ctranslate2/types.h; bfloat16 is read as raw uint16 bits.
_DTYPES = {0: np.float32, 1: np.int8, 2: np.int16, 3: np.int32, 4: np.float16, 5: np.uint16}
BFLOAT16_ID = 5


@dataclass
class CT2Model:
    spec: str
    revision: int
    version: int
    tensors: dict[str, np.ndarray] = field(default_factory=dict)
    bfloat16: set[str] = field(default_factory=set)

    def get(self, name: str) -> np.ndarray:
        try:
            return self.tensors[name]
        except KeyError:
            raise RelmError(f"CTranslate2 model has no tensor {name!r}") from None


class _Cursor:
    def __init__(self, data: bytes, path: Path):
        self.data, self.pos, self.path = data, 0, path

    def take(self, n: int) -> bytes:
        if self.pos + n > len(self.data):
            raise RelmError(
                f"{self.path}: truncated CTranslate2 file (wanted {n} bytes at offset "
                f"{self.pos}, file has {len(self.data)})"
            )
        out = self.data[self.pos : self.pos + n]
        self.pos += n
        return out

    def unpack(self, fmt: str):
        return struct.unpack("<" + fmt, self.take(struct.calcsize("<" + fmt)))[0]

    def string(self) -> str:
        raw = self.take(self.unpack("H"))
        return raw.rstrip(b"\0").decode("utf-8")


def read_ct2(path: str | os.PathLike) -> CT2Model:
    """Read every tensor of a CTranslate2 model file into numpy arrays."""
    path = Path(path)
    if not path.is_file():
        raise RelmError(f"{path}: CTranslate2 model file not found")
    cur = _Cursor(path.read_bytes(), path)
    version = cur.unpack("I")
    if not 3 <= version <= 6:
        raise RelmError(f"{path}: not a CTranslate2 model (binary version {version}, expected 3-6)")
    spec = cur.string() if version >= 2 else ""
    revision = cur.unpack("I") if version >= 2 else 1
    model = CT2Model(spec=spec, revision=revision, version=version)
    for _ in range(cur.unpack("I")):
        name = cur.string()
        shape = tuple(cur.unpack("I") for _ in range(cur.unpack("B")))
        type_id = cur.unpack("B")
        if type_id not in _DTYPES:
            raise RelmError(f"{path}: tensor {name!r} has unknown dtype id {type_id}")
        nbytes = cur.unpack("I")
        dtype = np.dtype(_DTYPES[type_id])
        if nbytes != int(np.prod(shape, dtype=np.int64)) * dtype.itemsize:
            raise RelmError(f"{path}: tensor {name!r} byte count {nbytes} does not match shape {shape}")
        model.tensors[name] = np.frombuffer(cur.take(nbytes), dtype=dtype).reshape(shape).copy()
        if type_id == BFLOAT16_ID:
            model.bfloat16.add(name)
    for _ in range(cur.unpack("I")):
        alias, target = cur.string(), cur.string()
        model.tensors[alias] = model.get(target)
    if cur.pos != len(cur.data):
        raise RelmError(f"{path}: {len(cur.data) - cur.pos} trailing bytes after the last tensor")
    return model


def write_ct2(
    path: str | os.PathLike,
    spec: str,
    tensors: dict[str, np.ndarray],
    aliases: dict[str, str] | None = None,
    revision: int = 1,
) -> None:
    """Write tensors in CTranslate2's version-6 layout (used by tests to make small files)."""
    ids = {np.dtype(v): k for k, v in _DTYPES.items() if k != BFLOAT16_ID}

    def s(text: str) -> bytes:
        raw = text.encode("utf-8") + b"\0"
        return struct.pack("<H", len(raw)) + raw

    out = [struct.pack("<I", 6), s(spec), struct.pack("<I", revision), struct.pack("<I", len(tensors))]
    for name, arr in tensors.items():
        arr = np.array(arr, order="C")  # ascontiguousarray would turn scalars into 1-d
        out += [
            s(name),
            struct.pack("<B", arr.ndim),
            *(struct.pack("<I", d) for d in arr.shape),
            struct.pack("<B", ids[arr.dtype]),
            struct.pack("<I", arr.nbytes),
            arr.tobytes(),
        ]
    aliases = aliases or {}
    out.append(struct.pack("<I", len(aliases)))
    for alias, target in aliases.items():
        out += [s(alias), s(target)]
    Path(path).write_bytes(b"".join(out))
