"""Bad command-line and preset values: one `relm: error:` line, exit 2, before any work starts."""

from __future__ import annotations

import pytest

from relm.cli import main

CASES = [
    (["--set", "train.max_steps"], "expected KEY=VALUE"),
    (["--set", "train.max_steps=abc"], "train.max_steps: expected int, got 'abc'"),
    (["--set", "train.max_steps=-10"], "train.max_steps must be positive"),
    (["--set", "train.lr=0"], "train.lr must be positive"),
    (["--set", "train.lr=[1"], "not valid YAML"),
    (["--set", "name.x=1"], "'name' is not a section"),
    (["--set", "train.bogus=1"], "unknown key(s) ['bogus']"),
    (["--set", "scorer=tfidf,minilm"], "scorer must name one scorer kind"),
    (["--seeds", "0"], "--seeds must be at least 1"),
    (["--seeds", "-1"], "--seeds must be at least 1"),
    (["--root-for", "synth-esd"], "expected NAME=DIR"),
    (["--systems", "text,text"], "at most once"),
    (["--systems", "rellm"], "did you mean 're-llm'"),
    (["--dataset", "esdd"], "did you mean 'esd'"),
    (["--preset", "smok"], "did you mean 'smoke'"),
    (["--preset", "missing.yaml"], "preset file not found"),
    (["--force", "everything"], "--force takes stages"),
]


@pytest.mark.parametrize(("args", "message"), CASES, ids=[" ".join(a) for a, _ in CASES])
def test_bad_value_is_one_line_before_any_work(args, message, tmp_path, tmp_cache, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    base = ["bench", "--preset", "smoke", "--no-wandb", "--quiet", "--out", str(tmp_path / "runs")]
    assert main([*base, *args]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("relm: error:") and message in err[0], err
    assert not (tmp_path / "datasets").exists() and not tmp_cache.exists()  # nothing generated or cached


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
    for name in ("whisper-large-v2", "qwen-7b-chat", "w2v2-msp-dim"):
        assert f"model {name!r}" in err[0] and "RELM_MODEL_" in err[0]
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
