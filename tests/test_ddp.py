"""Multi-process training on the CPU: `relm bench --preset smoke --set train.devices=2 --set train.strategy=ddp`
runs DDP in two spawned workers (gloo), the sweep itself once; the same optimizer steps and samples as one
process, the test answers spread over the workers and gathered, one results.json."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from relm.cli import main
from relm.io import read_jsonl


def _bench(world, out, *extra: str) -> subprocess.CompletedProcess:
    """`relm bench` of text-zs and re-llm in a subprocess, on RELM_CACHE (a copy of the world's cache: the one-process
    sweep is read from it, the two-process one reuses its features and teacher targets and trains anew)."""
    cmd = [sys.executable, "-m", "relm.cli", *world.cli_args(out, "--systems", "text-zs,re-llm", *extra)]
    env = os.environ | {"HF_HUB_OFFLINE": "1", "WANDB_MODE": "disabled"}
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)


def test_two_process_ddp_matches_one_process_steps_and_writes_one_results(smoke_world, smoke_cache, tmp_path):
    assert main(smoke_world.cli_args(tmp_path / "one", "--systems", "text-zs,re-llm")) == 0  # from the cache
    two = _bench(smoke_world, tmp_path / "two", "--set", "train.devices=2", "--set", "train.strategy=ddp")
    assert two.returncode == 0, two.stderr[-3000:]
    assert "Traceback" not in two.stderr
    found = [p for p in (tmp_path / "two").glob("*/results.json") if p.parent.name != "latest"]
    assert len(found) == 1  # one process wrote results, not one per rank
    single = json.loads(next((tmp_path / "one").glob("*/results.json")).read_text())["metrics_by_seed"]["synth-esd"]
    double = json.loads(found[0].read_text())["metrics_by_seed"]["synth-esd"]
    a, b = single["re-llm"][0]["train"], double["re-llm"][0]["train"]
    assert (a["world_size"], b["world_size"]) == (1, 2)
    assert b["batch_per_process"] * 2 == a["batch_per_process"]
    assert a["steps"] == b["steps"] == a["optimizer_steps_done"] == b["optimizer_steps_done"] == 30
    assert a["samples_seen"] == b["samples_seen"]
    assert b["answered_in_workers"] and not a["answered_in_workers"]
    assert b["best_val_loss"] < 100  # the workers' checkpoint selection came back
    # the workers validate at the same optimizer steps as one process (the last included) and say which they kept
    assert [s for s, _ in b["val_history"]] == [s for s, _ in a["val_history"]] and b["val_history"][-1][0] == 30
    assert b["selected_step"] == 30 and b["select"] == "last"
    # Every test utterance answered once, in the test split's order, by the two workers together.
    answers = read_jsonl(found[0].parent / "synth-esd" / "re-llm" / "seed0" / "responses.jsonl")
    ids_one = [r["id"] for r in read_jsonl(next((tmp_path / "one").glob("*/synth-esd/re-llm/seed0/responses.jsonl")))]
    assert [r["id"] for r in answers] == ids_one and len(set(ids_one)) == len(ids_one) == 20
    assert all(isinstance(r["response"], str) for r in answers)
    assert double["text-zs"][0]["ua"] == single["text-zs"][0]["ua"]  # zero-shot: answered here, as before
