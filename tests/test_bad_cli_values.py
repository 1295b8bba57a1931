"""Bad command-line and preset values: one `relm: error:` line, exit 2, before any work starts."""

from __future__ import annotations

import pytest

from relm.cli import main

# `relm bench` values: (arguments after the smoke sweep's own, the message's distinctive part).
CASES = [
    (["--set", "train.max_steps"], "expected KEY=VALUE"),
    (["--set", "train.max_steps=abc"], "train.max_steps: expected int, got 'abc'"),
    (["--set", "train.max_steps=-10"], "train.max_steps must be positive"),
    (["--set", "train.max_steps=-5"], "train.max_steps must be positive"),
    (["--set", "train.lr=0"], "train.lr must be positive"),
    (["--set", "train.lr=abc"], "train.lr: expected float, got 'abc'"),
    (["--set", "train.lr=[1"], "not valid YAML"),
    (["--set", "train.precision=fp8"], "train.precision must be one of"),
    (["--set", "generate.max_new_tokens=0"], "generate.max_new_tokens must be positive"),
    (["--set", "name.x=1"], "'name' is not a section"),
    (["--set", "train=5"], "train: expected a mapping, got int"),
    (["--set", "train.bogus=1"], "unknown key(s) ['bogus']"),
    (["--set", "scorer=tfidf,minilm"], "scorer must name one scorer kind"),
    (["--set", "runtime.device=gpu"], "runtime.device: expected auto, cpu or cuda[:N], got 'gpu'"),
    (["--device", "tpu"], "runtime.device: expected auto, cpu or cuda[:N], got 'tpu'"),
    (["--seeds", "0"], "--seeds must be at least 1"),
    (["--seeds", "-1"], "--seeds must be at least 1"),
    (["--seeds", "x"], "argument --seeds: invalid int value: 'x'"),
    (["--root-for", "synth-esd"], "expected NAME=DIR"),
    (["--systems", "text,text"], "at most once"),
    (["--systems", "rellm"], "did you mean 're-llm'"),
    (["--dataset", "esdd"], "did you mean 'esd'"),
    (["--dataset", ","], "--dataset: name each at least once"),
    (["--dataset", "esd,iemocap", "--root", "{tmp}/empty"], "--root needs a single --dataset"),
    (["--dataset", "esd", "--root", "{tmp}/nope"], "esd: corpus not found (looked in {tmp}/nope"),
    (["--dataset", "esd", "--root", "{tmp}/empty"], "esd: corpus root {tmp}/empty is empty"),
    (["--protocol", "bogus"], "unknown protocol 'bogus'"),
    (["--preset", "smok"], "did you mean 'smoke'"),
    (["--preset", "missing.yaml"], "preset file not found"),
    (["--preset", "{tmp}/list.yaml"], "a preset is a mapping of sections, got list"),
    (["--preset", "{tmp}/typo.yaml"], "unknown key(s) ['trainn']"),
    (["--force", "everything"], "--force takes stages"),
    (["--shard", "2/2"], "--shard '2/2': expected I/N with 0 <= I < N"),
    (["--shard", "x"], "--shard 'x': expected I/N"),
    (["--shard", "0/2", "--assemble"], "give one of the two"),
    (["--epitome", "{tmp}/nope"], "--epitome {tmp}/nope: no such folder"),
    (["--out", "{tmp}/file"], "--out {tmp}/file: is a file, not a folder"),
    (["--out", "{tmp}/file/runs"], "{tmp}/file is a file, not a folder"),
]
# Other commands: (the whole argument list, the message's distinctive part).
OTHER_COMMANDS = [
    (["check", "{tmp}/nope.json", "--baseline", "{tmp}/good.json"], "{tmp}/nope.json: no results.json"),
    (["check", "{tmp}/file", "--baseline", "{tmp}/good.json"], "{tmp}/file: not valid JSON"),
    (["compare", "{tmp}/nope", "{tmp}/good.json"], "{tmp}/nope: no results.json"),
    (["evaluate", "--run", "{tmp}/good.json"], "needs --dataset (another corpus) or --responses"),
    (["evaluate", "--run", "{tmp}/good.json", "--responses", "x"], "--responses 'x': expected NAME=FILE.jsonl"),
    (["evaluate", "--run", "{tmp}/good.json", "--dataset", "ravdess"], "not a relm results file"),
    (["evaluate", "--run", "{tmp}/good.json", "--split", "dev"], "argument --split: invalid choice: 'dev'"),
    (["data", "describe", "--dataset", "esd", "--root", "{tmp}/nope"], "esd: corpus not found"),
    (["data", "describe", "--dataset", "esdd"], "argument --dataset: invalid choice: 'esdd'"),
    (["models", "fetch", "nonexistent-model"], "unknown model 'nonexistent-model'"),
    (["models", "fetch"], "name at least one model"),
    (["scorer", "train", "--kind", "bogus"], "argument --kind: invalid choice: 'bogus'"),
    (["scorer", "train", "--kind", "tfidf", "--data", "{tmp}/empty"], "missing EPITOME file for ER"),
    (["scorer", "cv", "--kind", "epitome", "--class-weight", "balanced:er,xx"], "balanced or balanced:MECH,..."),
    (["scorer", "cv", "--kind", "epitome", "--class-weight", "inverse"], "balanced or balanced:MECH,..."),
    (["cache", "verify", "--stage", "bogus"], "--stage takes"),
    (["cache", "gc", "--runs", "{tmp}/nope"], "{tmp}/nope: no such folder of sweeps"),
    (["ls", "bogus"], "argument what: invalid choice: 'bogus'"),
    (["bogus"], "argument command: invalid choice: 'bogus'"),
]


def _inputs(tmp_path) -> None:
    """The bad inputs the cases point at; nothing else may appear next to them."""
    (tmp_path / "file").write_text("x")
    (tmp_path / "empty").mkdir()
    (tmp_path / "list.yaml").write_text("- 1\n")
    (tmp_path / "typo.yaml").write_text("name: mine\ntrainn:\n  lr: 1\n")
    (tmp_path / "good.json").write_text('{"metrics": {"d": {"s": {"ua": 0.5}}}, "preset": {}, "scorer": {}}')


def _fmt(items: list[str], tmp_path) -> list[str]:
    return [a.replace("{tmp}", str(tmp_path)) for a in items]


def _assert_one_line_and_nothing_written(rc, capsys, message, tmp_path, tmp_cache) -> None:
    out, err = capsys.readouterr()
    lines = [line for line in err.strip().splitlines() if line.strip()]
    assert rc == 2, (rc, err)
    assert "Traceback" not in err + out
    assert len(lines) == 1 and lines[0].startswith("relm: error:") and message in lines[0], lines
    assert not tmp_cache.exists()  # nothing computed or cached
    assert {p.name for p in tmp_path.iterdir()} == {"empty", "file", "good.json", "list.yaml", "typo.yaml"}
    assert not any((tmp_path / "empty").iterdir()) and (tmp_path / "file").read_text() == "x"


@pytest.mark.parametrize(("args", "message"), CASES, ids=[" ".join(a) for a, _ in CASES])
def test_bad_value_is_one_line_before_any_work(args, message, tmp_path, tmp_cache, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    _inputs(tmp_path)
    base = ["bench", "--preset", "smoke", "--no-wandb", "--quiet", "--out", str(tmp_path / "runs")]
    rc = main([*base, *_fmt(args, tmp_path)])
    _assert_one_line_and_nothing_written(rc, capsys, message.replace("{tmp}", str(tmp_path)), tmp_path, tmp_cache)


@pytest.mark.parametrize(("args", "message"), OTHER_COMMANDS, ids=[" ".join(a) for a, _ in OTHER_COMMANDS])
def test_bad_input_to_any_command_is_one_line(args, message, tmp_path, tmp_cache, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    _inputs(tmp_path)
    rc = main(_fmt(args, tmp_path))
    _assert_one_line_and_nothing_written(rc, capsys, message.replace("{tmp}", str(tmp_path)), tmp_path, tmp_cache)


def test_a_sweep_that_fails_before_any_run_leaves_no_folder(tmp_path, tmp_cache, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    args = ["bench", "--dataset", "esd", "--preset", "smoke", "--no-wandb", "--quiet", "--out", str(tmp_path / "runs")]
    assert main(args) == 2 and "corpus not found" in capsys.readouterr().err
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


def test_paper_preset_without_gpu_or_checkpoints_fails_in_one_line(tmp_path, tmp_cache, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf"))
    monkeypatch.setattr("torch.cuda.is_available", lambda: False)
    base = ["bench", "--preset", "paper", "--no-wandb", "--quiet", "--out", str(tmp_path / "runs")]
    assert main(base) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "Traceback" not in err[0]
    assert "runs on cuda (runtime.device), but torch sees no CUDA device" in err[0]
    for name in ("whisper-large-v2", "qwen-7b-chat", "w2v2-msp-dim", "blsp-emo-release"):
        assert f"model {name!r}" in err[0] and "RELM_MODEL_" in err[0]
    assert "cwang621/blsp-emo" in err[0] and "Hugging Face cache" in err[0]  # where it looked, how to get it
    assert main([*base, "--device", "cpu"]) == 2  # no silent fallback; forced CPU still needs the models
    err = capsys.readouterr().err
    assert "no CUDA device" not in err and "qwen-7b-chat" in err
    assert not (tmp_path / "runs").exists() and not tmp_cache.exists()


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("[1, 2]", "expected a JSON object, got list"),
        ("{}", "not a relm results file (missing metrics)"),
        ('{"metrics": {}}', "`metrics` must map dataset -> system -> metric"),
        ('{"metrics": {"d": {"s": {"ua": "high"}}}}', "metrics.d.s.ua is 'high', not a number"),
        ("not json", "not valid JSON"),
    ],
)
def test_check_and_compare_refuse_json_of_the_wrong_shape(tmp_path, capsys, content, message):
    good = {"metrics": {"d": {"s": {"ua": 0.5}}}, "preset": {}, "scorer": {}}
    (tmp_path / "good.json").write_text(__import__("json").dumps(good))
    (tmp_path / "bad.json").write_text(content)
    for args in (
        ["check", str(tmp_path / "good.json"), "--baseline", str(tmp_path / "bad.json")],
        ["compare", str(tmp_path / "good.json"), str(tmp_path / "bad.json")],
    ):
        assert main(args) == 2, args
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and message in err[0] and "bad.json" in err[0], (args, err)


def test_evaluate_refuses_a_file_that_is_not_a_sweep(tmp_path, capsys):
    (tmp_path / "baseline.json").write_text('{"metrics": {"d": {"s": {"ua": 0.5}}}}')
    assert main(["evaluate", "--run", str(tmp_path / "baseline.json"), "--dataset", "ravdess"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "not a relm results file (missing sweep_id, preset, datasets" in err[0]
