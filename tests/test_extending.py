"""Extension from outside the package: a system, a metric and a corpus registered by another package's entry points
(`tests/fixtures/plugin`, as `pip install` would lay it out) reach `relm ls` and a smoke sweep, and the corpus's
class set reaches the SER prompt."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from relm.data.schema import LABELS
from relm.models.prompts import RELEASE_OPTIONS, ser_options
from tests.conftest import ROOT

PLUGIN = ROOT / "tests" / "fixtures" / "plugin"


def _relm(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    path = os.pathsep.join(p for p in (str(PLUGIN), os.environ.get("PYTHONPATH", "")) if p)
    env = os.environ | (env or {}) | {"PYTHONPATH": path, "HF_HUB_OFFLINE": "1", "WANDB_MODE": "disabled"}
    return subprocess.run([sys.executable, "-m", "relm.cli", *args], env=env, capture_output=True, text=True)


def test_the_ser_prompt_lists_the_corpus_classes_in_the_releases_order():
    prompt = f"Select from the following options: {RELEASE_OPTIONS}.\n\nSpeech: "
    assert ser_options(prompt, LABELS) == prompt  # all five: the release's prompt unchanged
    four = ser_options(prompt, ("neutral", "happy", "angry", "sad"))
    assert four == "Select from the following options: neutral, sad, angry, or happy.\n\nSpeech: "
    assert ser_options("Options: {options}.", ("happy", "sad")) == "Options: sad or happy."


def test_plugins_register_a_system_a_metric_and_a_corpus_and_a_sweep_uses_them(smoke_world, smoke_cache, tmp_path):
    listed = _relm("ls", "plugins", "--json")
    assert listed.returncode == 0, listed.stderr
    groups = {row["group"] for row in json.loads(listed.stdout)}
    assert groups == {"relm.systems", "relm.metrics", "relm.corpora"}
    systems = {row["name"]: row for row in json.loads(_relm("ls", "systems", "--json").stdout)}
    assert systems["toy-fusion"]["colour"] == "#2a7" and systems["re-llm"]["colour"] == "#c33"
    out = tmp_path / "runs"
    args = smoke_world.cli_args(out, "--dataset", "toy-corpus", "--systems", "text-zs,re-llm,toy-fusion")
    done = _relm(*args)
    assert done.returncode == 0, done.stderr[-3000:]
    (results,) = [p for p in out.glob("*/results.json") if p.parent.name != "latest"]
    res = json.loads(results.read_text())
    metrics = res["metrics"]["toy-corpus"]
    assert set(metrics) == {"text-zs", "re-llm", "toy-fusion"}
    for system, row in metrics.items():  # the plugin's metric: its mean over replies, recomputed here
        replies = [json.loads(x) for x in (results.parent / f"toy-corpus/{system}/seed0/responses.jsonl").open()]
        assert row["reply_chars"] == sum(len(r["response"]) for r in replies) / len(replies)
        assert all(r["reply_chars"] == len(r["response"]) for r in replies)
        assert {r["gold_emotion"] for r in replies} <= {"neutral", "happy", "angry", "sad"}  # the corpus's classes
    comparison = res["comparisons"]["toy-corpus"]["re-llm vs toy-fusion"]["reply_chars"]
    assert comparison["n_items"] == len(replies) and not comparison["confirmatory"] and "p_bh" in comparison
    assert (results.parent / "plots").is_dir()
