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
