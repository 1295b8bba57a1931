"""The smoke sweep end to end: schema, resume after an interruption, regression gate, clear errors."""

from __future__ import annotations

import json
import re
import shutil

import pytest

from relm.bench.baseline import BASELINE
from relm.bench.sweep import run_sweep
from relm.cli import main
from tests import wandb_records
from tests.conftest import need_tool


@pytest.fixture
def sweep(smoke_world, smoke_cache, tmp_path):
    """(the smoke world's sweep config into this test's folders, its run folder, this test's folder): RELM_CACHE is
    a copy of the world's cache at `<folder>/cache`, so a test may resume or extend it."""
    return smoke_world.sweep_config(tmp_path / "runs"), smoke_world.run_dir, tmp_path


def test_results_schema(sweep):
    _, run_dir, _ = sweep
    res = json.loads((run_dir / "results.json").read_text())
    m = res["metrics"]["synth-esd"]
    assert set(m) == {"text-zs", "text", "speech", "re-llm"}
    replies = {"distinct_1", "distinct_2", "repeat_rate", "reply_words", "relevance", "off_topic_rate"}
    assert replies <= set(res["teacher_replies"]["synth-esd"]) and res["teacher_replies"]["synth-esd"]["n"] == 20
    samples = res["reply_samples"]["synth-esd"]
    assert samples and all(set(s["replies"]) == set(m) and s["target"] for s in samples)
    assert res["fidelity"]["recipe"] == "deviates" and "train.select" in res["fidelity"]["switches"]
    for system, row in m.items():
        assert {"er", "ip", "ex", "ua", "wa", "macro_f1", "ua_head"} | replies <= set(row)
        assert 0 <= row["repeat_rate"] <= 1 and -1 <= row["relevance"] <= 1
        assert (row["ua_head"] is None) == (system in ("text-zs", "text"))
    comp = res["comparisons"]["synth-esd"]
    assert set(comp) == {"re-llm vs text-zs", "re-llm vs text", "re-llm vs speech"}
    for metric in ("er", "ip", "ex", "ua", "wa"):
        fields = {"relative_improvement", "p_wilcoxon", "p_permutation", "ci95", "n_items", "n_seeds_a", "confirmatory"}
        assert fields | {"p_bh"} <= set(comp["re-llm vs text"][metric])  # text is not a paper baseline
        assert comp["re-llm vs text"][metric]["n_items"] == 20
    for metric in ("er", "ex", "ua"):  # the declared family: vs each paper baseline on ER, EX, UA
        assert comp["re-llm vs speech"][metric]["confirmatory"] and "p_holm" in comp["re-llm vs speech"][metric]
    assert {(h["comparison"], h["metric"]) for h in res["hypotheses"]["synth-esd"]} == {
        (c, m) for c in ("re-llm vs text-zs", "re-llm vs speech") for m in ("er", "ex", "ua")
    }
    enc = res["data"]["synth-esd"]["emotion_encoder"]
    assert enc["trained_on"] == "synth-pretrain" and enc["overlap"] == {"speakers": 0, "sentences": 0}
    assert res["scorer"]["kind"] == "tfidf" and res["scorer"]["identity"].startswith("tfidf-")
    assert res["provenance"]["libraries"]["torch"] == "2.11.0" and res["scorer"]["available"]
    assert res["protocols"]["synth-esd"] == "synth-esd:official" and res["seeds"] == [0]
    rows = [json.loads(x) for x in (run_dir / "synth-esd/re-llm/seed0/responses.jsonl").read_text().splitlines()]
    assert len(rows) == 20 and {
        "id",
        "transcript",
        "gold_emotion",
        "response",
        "ser_answer",
        "ser_label",
        "er",
        "ip",
        "ex",
    } <= set(rows[0])
    for name in ("report.md", "report.html", "plots/synth-esd-bars.png", "plots/synth-esd-confusion.png"):
        assert (run_dir / name).is_file(), name
    assert (run_dir.parent / "latest").resolve() == run_dir.resolve()
    report = (run_dir / "report.md").read_text()
    assert "| re-llm |" in report and "## Replies" in report and "### Sample replies: synth-esd" in report
    assert report.count("| synth-esd | teacher targets |") == 1 and "Recipe: deviates from the release" in report
    page = (run_dir / "report.html").read_text()  # one self-contained file: real tables, plots inlined
    assert "<table>" in page and "data:image/png;base64," in page and "`" not in page and 'src="plots/' not in page
    tex = (run_dir / "report.tex").read_text()
    assert tex.startswith("\\begin{tabular}") and "\\toprule" in tex and "re-llm &" in tex


def test_resume_after_interruption_redoes_only_unfinished_stages(sweep, monkeypatch):
    cfg, run_dir, base = sweep
    import relm.bench.sweep as runner

    shutil.rmtree(base / "cache" / "train")  # drop all trained/generated stages, keep features and teacher
    calls = []
    real = runner.train_and_answer

    def flaky(system, *a, **k):
        calls.append(system)
        if system == "speech":
            raise KeyboardInterrupt
        return real(system, *a, **k)

    monkeypatch.setattr(runner, "train_and_answer", flaky)
    with pytest.raises(KeyboardInterrupt):
        run_sweep(cfg)
    assert calls == ["text-zs", "text", "speech"]
    done = sorted(p.parent.name for p in (base / "cache" / "train").glob("*/answers.jsonl"))
    assert len(done) == 2  # text-zs and text finished and were kept
    trained = {p: p.stat().st_mtime_ns for p in (base / "cache" / "train").glob("*/answers.jsonl")}
    monkeypatch.setattr(runner, "train_and_answer", real)
    again = run_sweep(cfg)
    assert all(p.stat().st_mtime_ns == t for p, t in trained.items())  # not redone
    assert len(list((base / "cache" / "train").glob("*/answers.jsonl"))) == 4
    before = json.loads((run_dir / "results.json").read_text())["metrics"]
    assert json.loads((again / "results.json").read_text())["metrics"] == before


def test_committed_baseline_passes_and_a_raised_metric_fails(sweep, tmp_path, capsys):
    _, run_dir, _ = sweep
    assert BASELINE.is_file(), f"commit {BASELINE} (python scripts/make_smoke_baseline.py)"
    assert main(["check", str(run_dir), "--baseline", str(BASELINE)]) == 0
    raised = json.loads(BASELINE.read_text())
    raised["metrics"]["synth-esd"]["re-llm"]["ua_head"] += 0.5
    (tmp_path / "raised.json").write_text(json.dumps(raised))
    capsys.readouterr()
    assert main(["check", str(run_dir), "--baseline", str(tmp_path / "raised.json")]) == 1
    out = capsys.readouterr().out
    assert "| synth-esd | re-llm | ua_head |" in out and "REGRESSED" in out


def test_missing_corpus_is_a_clear_error(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["bench", "--dataset", "esd", "--preset", "smoke", "--no-wandb"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "looked in datasets/esd" in err[0] and "synth-esd" in err[0]


def test_evaluate_on_another_corpus_copy(sweep, tmp_path):
    """`relm evaluate`: the run's trained systems answer another corpus's test split (same schema)."""
    cfg, run_dir, _ = sweep
    from tests.fixtures.corpora import make_ravdess

    root = make_ravdess(tmp_path / "ravdess")
    assert (
        main(
            [
                "evaluate",
                "--run",
                str(run_dir),
                "--dataset",
                "ravdess",
                "--root",
                str(root),
                "--out",
                str(cfg.out_root),
                "--epitome",
                cfg.epitome,
                "--quiet",
            ]
        )
        == 0
    )
    latest = (cfg.out_root / "latest").resolve()
    res = json.loads((latest / "results.json").read_text())
    assert res["evaluated_from"] == run_dir.name and res["trained_on"] == "synth-esd"
    assert set(res["metrics"]["ravdess"]) == {"text-zs", "text", "speech", "re-llm"}
    # A corpus the systems never trained on: all of its utterances are answered, not just its test split.
    assert res["data"]["ravdess"]["split"] == "all" and res["data"]["ravdess"]["n"]["all"] == 36
    assert "re-llm vs speech" in res["comparisons"]["ravdess"]
    args = [
        "evaluate",
        "--run",
        str(run_dir),
        "--dataset",
        "ravdess",
        "--root",
        str(root),
        "--out",
        str(cfg.out_root),
        "--epitome",
        cfg.epitome,
        "--quiet",
        "--split",
        "test",
    ]
    assert main(args) == 0
    res = json.loads(((cfg.out_root / "latest").resolve() / "results.json").read_text())
    assert res["data"]["ravdess"]["n"]["test"] == 9  # actor 5's 9 in-set files


def test_evaluate_scores_an_external_systems_responses(sweep, tmp_path, capsys, monkeypatch):
    """`relm evaluate --responses NAME=FILE`: another system's answers, scored and paired with every system; it
    loads no model of the run's preset, so it never asks for them (a paper run scores on a laptop)."""
    import relm.runtime

    def no_preflight(preset):
        raise AssertionError("scoring external responses checked the preset's models")

    monkeypatch.setattr(relm.runtime, "preflight", no_preflight)
    cfg, run_dir, _ = sweep
    rows = [json.loads(x) for x in (run_dir / "synth-esd/text/seed0/responses.jsonl").read_text().splitlines()]
    mine = tmp_path / "mine.jsonl"
    mine.write_text(
        "".join(
            json.dumps({"id": r["id"], "response": "I'm so sorry to hear that. How are you?", "ser_answer": "sad"})
            + "\n"
            for r in rows
        )
    )
    args = [
        "evaluate",
        "--run",
        str(run_dir),
        "--responses",
        f"mine={mine}",
        "--out",
        str(cfg.out_root),
        "--epitome",
        cfg.epitome,
        "--quiet",
    ]
    assert main(args) == 0
    res = json.loads(((cfg.out_root / "latest").resolve() / "results.json").read_text())
    assert res["systems"][-1] == "mine" and res["evaluated_from"] == run_dir.name
    comps = res["comparisons"]["synth-esd"]
    assert {f"mine vs {s}" for s in ("text-zs", "text", "speech", "re-llm")} <= set(comps)
    assert all(not c["confirmatory"] and "p_bh" in c for c in comps["mine vs re-llm"].values())
    m = res["metrics"]["synth-esd"]["mine"]
    assert m["n"] == 20 and m["congruence"] == pytest.approx(
        sum(r["gold_emotion"] == "sad" for r in rows) / 20
    )  # it always names sad
    before = json.loads((run_dir / "results.json").read_text())
    assert res["metrics"]["synth-esd"]["re-llm"] == before["metrics"]["synth-esd"]["re-llm"]
    mine.write_text("".join(json.dumps({"id": r["id"], "response": "x"}) + "\n" for r in rows[:-2]))
    capsys.readouterr()
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "18 answers for 20 test utterances: 2 missing" in err


def test_tidy_exports_join_the_manifest_without_fixups(sweep):
    import pandas as pd

    _, run_dir, _ = sweep
    samples = pd.read_parquet(run_dir / "samples.parquet")
    manifest = pd.read_parquet(run_dir / "manifests" / "synth-esd.parquet")
    assert len(samples) == 4 * 20 and samples["utt_id"].dtype == manifest["utt_id"].dtype
    assert samples["utt_id"].str.match(r"^\d{4}_\d{6}$").all()  # ids stay strings ("0011_000022", not 11000022)
    joined = samples[["utt_id", "system", "ser_label"]].merge(manifest[["utt_id", "speaker"]], on="utt_id")
    assert len(joined) == len(samples)
    assert {"emotion", "response", "ser_label", "er", "congruent", "dataset", "seed"} <= set(samples.columns)
    metrics = pd.read_parquet(run_dir / "metrics.parquet")
    ua = metrics.query("system == 're-llm' and metric == 'ua'")["value"].item()
    res = json.loads((run_dir / "results.json").read_text())
    assert ua == res["metrics"]["synth-esd"]["re-llm"]["ua"]
    assert res["calibration"]["matmul_gflops"] > 0 and res["cost_gflop_eq"] > 0 and res["precision"]["why"]


def test_wandb_runs_have_deterministic_ids_and_the_sweep_run_has_its_summary(sweep, tmp_path, monkeypatch):
    """Two identical invocations (offline W&B): one run id per dataset/system/seed, plus one summary run."""
    from dataclasses import replace

    cfg, _, _ = sweep
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_DIR", str(tmp_path / "wb"))
    monkeypatch.setenv("WANDB_SILENT", "true")
    tracked = replace(cfg, tracking=True, out_root=tmp_path / "runs", wandb_entity="relm-lab", wandb_tags=("ci",))
    for _ in range(2):
        sweep_dir = run_sweep(tracked)
    folders = sorted((tmp_path / "wb" / "wandb").glob("offline-run-*"))
    ids = {f.name.split("-", 3)[3] for f in folders}  # offline-run-<date>_<time>-<run id>
    sid = sweep_dir.name
    assert ids == {f"{sid}-synth-esd-{s}-s0" for s in ("text-zs", "text", "speech", "re-llm")} | {f"{sid}-summary"}
    assert len(folders) == 10  # offline mode writes one folder per invocation; syncing merges them by id
    res = json.loads((sweep_dir / "results.json").read_text())
    log = next(next(f for f in folders if f.name.endswith("summary")).glob("*.wandb"))
    summary = wandb_records.summary(log)  # the values themselves, read back from the offline run
    m, comp = res["metrics"]["synth-esd"], res["comparisons"]["synth-esd"]["re-llm vs speech"]
    for system in ("text-zs", "text", "speech", "re-llm"):
        for metric in ("ua", "er", "ex", "distinct_1"):
            assert summary[f"synth-esd/{system}/{metric}"] == pytest.approx(m[system][metric], abs=1e-12)
    assert summary["synth-esd/re-llm_vs_speech/ua/p_holm"] == pytest.approx(comp["ua"]["p_holm"], abs=1e-12)
    assert [summary[f"synth-esd/re-llm_vs_speech/er/ci95_{e}"] for e in ("low", "high")] == comp["er"]["ci95"]
    logged = {k: v for step in wandb_records.history(log) for k, v in step.items()}
    assert logged["results_table"]["_type"] == "table-file" and logged["results_table"]["nrows"] == 4  # 4 systems
    assert logged["plots/synth-esd-bars"]["_type"] == "image-file" and logged["plots/synth-esd-bars"]["width"] > 0
    confusion = logged["confusion/synth-esd/re-llm_table"]  # a custom chart logs its table under <key>_table
    assert confusion["_type"] == "table-file" and confusion["nrows"] == 6 * 6  # (5 labels + unparseable)^2 cells
    config = wandb_records.config(log)
    assert config["sweep_id"] == sweep_dir.name and config["scorer"] == res["scorer"]["identity"]
    first, second = (next(f.glob("*.wandb")) for f in folders if f.name.endswith("re-llm-s0"))  # sorted by time
    (run,) = [r.run for r in wandb_records.records(first) if r.HasField("run")][:1]
    assert run.entity == "relm-lab" and list(run.tags) == ["ci"] and run.run_id == f"{sid}-synth-esd-re-llm-s0"
    run_config = wandb_records.config(first)
    assert run_config["data_hash"] == res["data"]["synth-esd"]["data_hash"]
    assert run_config["protocol"] == "synth-esd:official" and run_config["git_dirty"] == res["provenance"]["git_dirty"]
    assert wandb_records.summary(first)["synth-esd/ua"] == pytest.approx(m["re-llm"]["ua"], abs=1e-12)
    # The runs came from the cache: their stored training curves reach W&B once, not on every rerun.
    curves = [step for step in wandb_records.history(first) if "train/response_ce" in step]
    assert curves and all("trainer/global_step" in step for step in curves)
    assert not [step for step in wandb_records.history(second) if "train/response_ce" in step]


def test_report_html_renders_in_a_real_browser(sweep, tmp_path):
    """Headless Chromium loads report.html as one file: tables, embedded plots, no Markdown left raw."""
    import subprocess

    import numpy as np
    from matplotlib.image import imread

    chromium = need_tool("chromium")
    _, run_dir, _ = sweep
    page = f"file://{run_dir / 'report.html'}"
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--allow-file-access-from-files"]
    dom = subprocess.run([chromium, *flags, "--dump-dom", page], capture_output=True, text=True, timeout=120).stdout
    assert dom.count("<table") >= 5 and dom.count('src="data:image/png;base64,') >= 3
    assert "Sample replies: synth-esd" in dom and "teacher target</th>" in dom  # the sample table, rendered
    text = re.sub(r"<[^>]+>", " ", re.sub(r"<(code|pre)>.*?</\1>", " ", dom, flags=re.S))
    raw = re.findall(r"(?s).{0,60}(?:`|\{'|\*\*(?=\w)).{0,60}", text)  # Markdown or a Python repr left raw
    assert not raw, raw
    shot = tmp_path / "report.png"
    subprocess.run(
        [chromium, *flags, f"--screenshot={shot}", "--window-size=1280,2400", page], capture_output=True, timeout=120
    )
    pixels = imread(shot)[..., :3]
    assert pixels.shape[:2] == (2400, 1280)
    ink = (pixels.mean(axis=2) < 0.9).mean()  # share of non-white pixels: text, tables and plots
    assert 0.02 < ink < 0.6, ink
    assert np.std(pixels) > 0.05


def test_compare_two_2_seed_sweeps_prints_the_config_difference_and_clustered_tests(sweep, tmp_path, capsys):
    from dataclasses import replace

    cfg, _, _ = sweep
    a = run_sweep(replace(cfg, seeds=2, systems=["re-llm"], out_root=tmp_path / "a"))
    b = run_sweep(replace(cfg, seeds=2, systems=["re-llm"], out_root=tmp_path / "b", overrides={"train.lr": 0.02}))
    capsys.readouterr()
    assert main(["compare", str(a), str(b)]) == 0
    out = capsys.readouterr().out
    assert "train.lr" in out and "0.01" in out and "0.02" in out  # the config difference, first
    assert "| synth-esd | re-llm | ua |" in out and "20 x (2, 2) |" in out  # every seed, clustered by utterance
    assert "Sample replies, synth-esd:" in out and out.count("| re-llm |") >= 3  # the same utterances, A and B
    assert main(["compare", str(a), str(b), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    row = next(r for r in data["rows"] if (r["system"], r["metric"]) == ("re-llm", "ua"))
    assert row["n_items"] == 20 and row["n_seeds"] == [2, 2] and row["test"] == "permutation"
    assert any("train.lr" in line for line in data["config_difference"])


def test_compare_refuses_sweeps_with_different_test_sets(sweep, tmp_path, capsys):
    _, run_dir, _ = sweep
    other = tmp_path / "other"
    shutil.copytree(run_dir, other)
    for path in other.glob("synth-esd/*/seed0/responses.jsonl"):
        path.write_text("".join(path.read_text().splitlines(keepends=True)[:-3]))
    assert main(["compare", str(run_dir), str(other)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "not the same test set" in err[0]


def test_two_scorer_seeds_mark_each_empathy_comparison_and_spread_each_metric(sweep, tmp_path):
    """`scorer_seeds: 2` and `scorer_cv_folds: 3` on the smoke sweep: the runs come from the cache, only scoring is
    redone."""
    from dataclasses import replace

    cfg, run_dir, _ = sweep
    again = run_sweep(replace(cfg, overrides={"scorer_seeds": 2, "scorer_cv_folds": 3}, out_root=tmp_path / "seeds"))
    res = json.loads((again / "results.json").read_text())
    cv = res["scorer"]["cross_validation"]
    assert cv["folds"] == 3 and all(
        0 <= cv[m]["macro_f1"] <= 1 and cv[m]["macro_f1_sd"] >= 0 for m in ("er", "ip", "ex")
    )
    batched = ", ".join(f"{m.upper()} {cv[m]['macro_f1_batched']:.3f}" for m in ("er", "ip", "ex"))
    assert f"EPITOME paper: ER 0.74, IP 0.63, EX 0.73): {batched}." in (again / "report.md").read_text()
    assert "cross_validation" not in json.loads((run_dir / "results.json").read_text())["scorer"]  # 0: not done
    record = res["scorer_robustness"]["synth-esd"]
    assert record["scorer_seeds"] == 2 and list(record["scorers"]) == ["seed 1"]
    assert record["scorers"]["seed 1"] != res["scorer"]["identity"]  # another seed, another scorer
    for row in res["metrics"]["synth-esd"].values():
        for mech in ("er", "ip", "ex"):
            spread = row["scorer_spread"][mech]
            assert spread["min"] <= row[mech] <= spread["max"] and spread["min"] <= spread["mean"] <= spread["max"]
    fragile = {(f["comparison"], f["metric"]) for f in record["fragile"]}
    for name, per in res["comparisons"]["synth-esd"].items():
        for mech in ("er", "ip", "ex"):
            assert per[mech]["robust"] == ((name, mech) not in fragile) and set(per[mech]["by_scorer"]) == {"seed 1"}
        assert "robust" not in per["ua"]  # the scorer does not read SER answers
    report = (again / "report.md").read_text()
    assert "### Empathy conclusions against the scorer" in report and "Robust under every scorer:" in report
    assert f"cross-validated in 3 folds grouped by seeker ({cv['n']} pairs)" in report
    before = json.loads((run_dir / "results.json").read_text())["metrics"]["synth-esd"]
    assert all(res["metrics"]["synth-esd"][s]["er"] == before[s]["er"] for s in before)  # the sweep's scorer leads
