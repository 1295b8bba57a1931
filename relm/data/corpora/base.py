"""What every corpus adapter shares: root checks, audio probing, split helpers."""

from __future__ import annotations

import hashlib
import os
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from relm.data.audio import AudioBounds, AudioError, check_duration, probe
from relm.data.audio_checks import skip_reason
from relm.data.schema import LABELS, Manifest, check_manifest, make_frame
from relm.errors import RelmError


@dataclass
class ReadOptions:
    protocol: str | None = None
    bounds: AudioBounds = AudioBounds()
    strict_audio: bool = False  # a corrupt file is fatal instead of skipped
    probe_audio: bool = True  # read headers for duration/corruption (off: faster, no durations)
    split_seed: int = 0
    languages: tuple[str, ...] = ("english",)  # ESD


class CorpusAdapter(ABC):
    """Reads one corpus layout; `name` is the dataset name it was registered under (errors, manifest)."""

    protocols: ClassVar[tuple[str, ...]]
    how_to_get: ClassVar[str]
    classes: ClassVar[tuple[str, ...]] = LABELS
    """The corpus's emotion classes, a subset of relm's label space (`LABELS`, the released SER head's five): its
    labels must lie in it, and the SER prompt lists exactly these (`relm.models.llm.ser_options`)."""

    def __init__(self, name: str) -> None:
        self.name = name

    def check_root(self, root: str | os.PathLike) -> Path:
        """The root, if it is a folder with something in it; else one error naming it."""
        root = Path(root).expanduser()
        if not root.exists():
            raise RelmError(f"{self.name}: corpus root {root} does not exist. {self.how_to_get}")
        if not root.is_dir():
            raise RelmError(f"{self.name}: corpus root {root} is not a folder")
        if not any(root.iterdir()):
            raise RelmError(f"{self.name}: corpus root {root} is empty. {self.how_to_get}")
        return root

    def read(self, root: str | os.PathLike, options: ReadOptions | None = None) -> Manifest:
        options = options or ReadOptions()
        root = self.check_root(root)
        protocol = options.protocol or self.protocols[0]
        if protocol not in self.protocols:
            raise RelmError(f"{self.name}: unknown protocol {protocol!r}; choose from {list(self.protocols)}")
        manifest = Manifest(df=make_frame([]), dataset=self.name, root=str(root), protocol=protocol)
        rows = self._rows(root, protocol, options, manifest)
        rows = [r for r in rows if self._probe(r, options, manifest)]
        if not rows:
            raise RelmError(
                f"{self.name}: no usable utterances under {root} "
                f"(skipped: {manifest.skipped or 'nothing'}); expected layout: {self.layout}"
            )
        manifest.df = make_frame([r | {"protocol": f"{self.name}:{protocol}"} for r in rows])
        check_manifest(manifest.df, str(root), self.classes)
        return manifest

    layout: ClassVar[str] = ""

    @abstractmethod
    def _rows(self, root: Path, protocol: str, options: ReadOptions, manifest: Manifest) -> list[dict]:
        """One dict per kept utterance (manifest columns); skips go through `manifest.skip`."""

    @staticmethod
    def _probe(row: dict, options: ReadOptions, manifest: Manifest) -> bool:
        if not options.probe_audio:
            return True
        try:
            row["duration"] = probe(row["path"])
            check_duration(row["path"], row["duration"], options.bounds)
        except AudioError as exc:
            if options.strict_audio:
                raise
            manifest.skip(skip_reason(str(exc)), str(exc))
            return False
        return True


def visible_files(folder: Path, pattern: str) -> list[Path]:
    """Files matching `pattern`, without macOS `._*` AppleDouble files and other dot files."""
    return sorted(p for p in folder.glob(pattern) if p.is_file() and not p.name.startswith("."))


def stable_fraction(key: str, seed: int) -> float:
    """A deterministic number in [0, 1) for `key`: splits that do not move between runs."""
    digest = hashlib.sha256(f"{seed}:{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def label_or_none(code: str, mapping: dict[str, str | None], known: set[str], where: str) -> str | None:
    """Map a corpus code to a suite label; None for a known code outside the class set."""
    if code not in known:
        raise RelmError(f"{where}: unknown emotion code {code!r} (known: {sorted(known)})")
    label = mapping.get(code)
    assert label is None or label in LABELS
    return label
