"""EPITOME data handling and the tfidf scorer (the minilm/roberta kinds share the interface)."""

from __future__ import annotations

import pandas as pd
import pytest

from relm.cli import main
from relm.errors import RelmError
from relm.scoring import empathy
from relm.scoring.epitome_data import FILES, MECHANISMS, load_epitome
from tests.conftest import shared_data

ROWS = [
    ("s1", "r1", "I lost my job today and I feel awful", "I'm so sorry to hear that. What happened?", 1, 1, 2),
    ("s2", "r2", "My dog died this morning", "That is heartbreaking, I am so sorry.", 2, 0, 0),
    ("s3", "r3", "Nobody ever listens to me", "Have you tried talking to a counselor?", 0, 2, 2),
    ("s4", "r4", "I can't sleep at night anymore", "I understand, I've been there too.", 1, 2, 0),
    ("s5", "r5", "Exams are stressing me out", "lol same", 0, 0, 0),
    ("s6", "r6", "I feel so alone these days", "I'm sorry you feel alone. Do you want to talk about it?", 2, 1, 2),
]


def write_epitome(folder, rows=ROWS, encoding="utf-8", drop_column=None, level_override=None):
    folder.mkdir(parents=True, exist_ok=True)
    for k, mech in enumerate(MECHANISMS):
        df = pd.DataFrame(
            [(sp, rp, s, r, lv[k], "") for sp, rp, s, r, *lv in rows],
            columns=["sp_id", "rp_id", "seeker_post", "response_post", "level", "rationales"],
        )
        if level_override is not None:
            df.loc[0, "level"] = level_override
        if drop_column:
            df = df.drop(columns=[drop_column])
        (folder / FILES[mech]).write_bytes(df.to_csv(index=False).encode(encoding))
    return folder


def test_load_joins_mechanisms_and_handles_duplicates(tmp_path):
    rows = ROWS + [ROWS[0], ("s2", "r2b", ROWS[1][2], "  That is heartbreaking,  I am so sorry. ", 1, 0, 0)]
    data = load_epitome(write_epitome(tmp_path / "epi", rows))
    assert len(data.table) == 5  # s1 repeat kept once; s2 conflicting ER (2 vs 1) dropped
    assert data.skipped["conflicting"] == 1 and data.skipped["duplicate"] == 2
    assert set(MECHANISMS) <= set(data.table.columns)


def test_a_folder_is_parsed_once_while_its_bytes_stay_and_each_caller_gets_its_own_rows(tmp_path, monkeypatch):
    from relm.scoring import epitome_data

    folder = write_epitome(tmp_path / "epi")
    parsed, real_parse = [], epitome_data._parse
    monkeypatch.setattr(epitome_data, "_parse", lambda *a: parsed.append(a[2]) or real_parse(*a))
    first = load_epitome(folder)
    first.table.loc[0, "er"] = 9  # a caller's edit stays its own
    second = load_epitome(folder)
    assert len(parsed) == 1 and second.table.loc[0, "er"] != 9 and second.data_hash == first.data_hash
    write_epitome(folder, ROWS[:4])  # new bytes: parsed again, never the old rows
    third = load_epitome(folder)
    assert len(parsed) == 2 and len(third.table) == 4 and third.data_hash != first.data_hash


@pytest.mark.parametrize(
    "problem,match",
    [
        ("missing", "missing column.*level"),
        ("latin1", "not UTF-8"),
        ("level", "outside 0/1/2"),
        ("nofolder", "not found"),
    ],
)
def test_bad_input_is_a_clear_error(tmp_path, problem, match):
    folder = tmp_path / "epi"
    if problem == "missing":
        write_epitome(folder, drop_column="level")
    elif problem == "latin1":
        rows = [(*ROWS[0][:3], "Je suis désolé, ça va?", *ROWS[0][4:]), *ROWS[1:]]
        write_epitome(folder, rows, encoding="latin-1")
    elif problem == "level":
        write_epitome(folder, level_override=3)
    with pytest.raises(RelmError, match=match):
        load_epitome(folder)


def test_empty_responses_are_counted_and_skipped(tmp_path):
    rows = [*ROWS, ("s7", "r7", "hello?", "   ", 0, 0, 0)]
    data = load_epitome(write_epitome(tmp_path / "epi", rows))
    assert data.skipped["empty_response"] == 1 and len(data.table) == len(ROWS)


def test_scoring_an_empty_list_returns_empty_result():
    scorer = empathy.build("tfidf")
    out = scorer.score([], [])
    assert set(out) == set(MECHANISMS) and all(len(v) == 0 for v in out.values())


def test_tfidf_round_trip_on_fixture(tmp_path, tmp_cache):
    data = load_epitome(write_epitome(tmp_path / "epi", ROWS * 3))
    scorer = empathy.build("tfidf", min_df=1)
    scorer.fit(data.table, data.table)
    scorer.meta["data_hash"] = data.data_hash
    scorer.save(tmp_path / "saved")
    again = empathy.load_folder(tmp_path / "saved")
    texts = ["I'm sorry, what happened?", "lol", "That sounds hard. How are you coping?"]
    a, b = scorer.score(["x"] * 3, texts), again.score(["x"] * 3, texts)
    for mech in MECHANISMS:
        assert a[mech].tolist() == b[mech].tolist()
    assert a["ex"][0] == 2  # a question: exploration


@pytest.fixture(scope="module")
def epitome_dir():
    return shared_data("epitome")


def test_tfidf_on_real_epitome_meets_the_bar(epitome_dir, tmp_cache):
    scorer = empathy.train("tfidf", load_epitome(epitome_dir), seed=0)  # its time is a benchmark's, not a test's
    val = scorer.meta["validation"]
    assert val["er"]["macro_f1"] >= 0.65 and val["ex"]["macro_f1"] >= 0.55, val
    # the saved scorer evaluates only pairs it has not seen
    again = empathy.load_trained("tfidf")
    unseen = empathy.unseen_rows(again, load_epitome(epitome_dir).table)
    assert len(unseen) == scorer.meta["n_val"]


def test_scorer_cli_train_and_eval_json(epitome_dir, tmp_cache, capsys):
    import json

    assert main(["scorer", "train", "--kind", "tfidf", "--data", str(epitome_dir)]) == 0
    capsys.readouterr()
    assert main(["scorer", "eval", "--kind", "tfidf", "--data", str(epitome_dir), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out) == {"er", "ip", "ex"} and 0.65 <= out["er"]["macro_f1"] <= 1


def test_eval_without_trained_scorer_is_a_clear_error(tmp_cache, tmp_path, capsys):
    assert main(["scorer", "eval", "--kind", "tfidf", "--data", str(write_epitome(tmp_path / "e"))]) == 2
    assert "no trained tfidf scorer" in capsys.readouterr().err


def test_minilm_batches_are_length_buckets_covering_every_row_once():
    import numpy as np

    from relm.batching import length_buckets

    lengths = np.random.default_rng(0).integers(10, 128, size=1000)
    batches = length_buckets(lengths, 32, np.random.default_rng(1))
    flat = np.concatenate(batches)
    assert sorted(flat.tolist()) == list(range(1000)) and max(len(b) for b in batches) == 32
    padded = sum(len(b) * lengths[b].max() for b in batches)
    shuffled = np.random.default_rng(1).permutation(1000)
    padded_before = sum(32 * lengths[shuffled[i : i + 32]].max() for i in range(0, 1000, 32))
    assert padded < 0.75 * padded_before  # far less padding than random batches
    again = length_buckets(lengths, 32, np.random.default_rng(2))
    assert [b.tolist() for b in again] != [b.tolist() for b in batches]  # a new order every epoch


def test_minilm_precision_follows_the_cpu_and_is_part_of_the_scorers_identity(monkeypatch):
    from relm import machine
    from relm.scoring import empathy

    monkeypatch.setattr(machine, "cpu_bf16_speed", lambda: {"bf16_slowdown": 70.0})  # AVX2-only: emulated bf16
    slow = empathy.build("minilm")
    monkeypatch.setattr(machine, "cpu_bf16_speed", lambda: {"bf16_slowdown": 0.5})  # native bf16
    fast = empathy.build("minilm")
    assert slow.params["precision"] == "32-true" and fast.params["precision"] == "bf16-mixed"
    assert slow.identity != fast.identity
    assert empathy.build("minilm", precision="32-true").params["precision"] == "32-true"


def test_cross_validation_folds_by_seeker_and_resumes_from_cached_folds(tmp_path, tmp_cache, monkeypatch):
    # 18 seekers with a response each (texts made distinct: the loader merges repeated pairs)
    rows = [(f"s{i}", f"r{i}", f"{s} ({i})", f"{r} ({i})", *levels) for i, (_, _, s, r, *levels) in enumerate(ROWS * 3)]
    data = load_epitome(write_epitome(tmp_path / "epi", rows))
    found = empathy.cross_validate("tfidf", data, folds=3, seed=0, min_df=1)
    assert found["n"] == 18 and len(found["per_fold"]) == 3
    for mech in MECHANISMS:
        folds = [f[mech] for f in found["per_fold"]]
        assert sum(f["n"] for f in folds) == 18  # every pair held out exactly once
        assert found[mech]["macro_f1"] == pytest.approx(sum(f["macro_f1"] for f in folds) / 3)

    def refit(*args, **kwargs):
        raise AssertionError("a cached fold was fitted again")

    monkeypatch.setattr(empathy, "_fitted", refit)
    assert empathy.cross_validate("tfidf", data, folds=3, seed=0, min_df=1) == found  # resumed: nothing refitted
    with pytest.raises(AssertionError, match="fitted again"):
        empathy.cross_validate("tfidf", data, folds=3, seed=1, min_df=1)  # another seed: other folds


def test_figures_from_a_confusion_matrix_equal_sklearns():
    import numpy as np
    from sklearn.metrics import accuracy_score, confusion_matrix, f1_score

    from relm.scoring.empathy_base import figures_of

    rng = np.random.default_rng(0)
    gold, pred = rng.integers(0, 3, 60), rng.integers(0, 2, 60)  # level 2 never predicted: its F1 is 0
    got = figures_of(confusion_matrix(gold, pred, labels=[0, 1, 2]))
    assert got["accuracy"] == pytest.approx(accuracy_score(gold, pred)) and got["n"] == 60
    assert got["macro_f1"] == pytest.approx(f1_score(gold, pred, labels=[0, 1, 2], average="macro", zero_division=0))
    assert got["f1_per_level"]["2"] == 0.0
    # a level neither given nor predicted counts 0, as sklearn's zero_division=0
    assert figures_of([[0, 0, 0], [0, 4, 0], [0, 0, 0]])["macro_f1"] == pytest.approx(1 / 3)


def test_a_scorer_trained_on_all_rows_takes_its_validity_from_pooled_folds(tmp_path, tmp_cache, capsys):
    import numpy as np

    rows = [(f"s{i}", f"r{i}", f"{s} ({i})", f"{r} ({i})", *levels) for i, (_, _, s, r, *levels) in enumerate(ROWS * 3)]
    data = load_epitome(write_epitome(tmp_path / "epi", rows))
    whole = empathy.train("tfidf", data, seed=0, save=False, all_rows=True, cv_folds=3, min_df=1)
    split = empathy.train("tfidf", data, seed=0, save=False, min_df=1)
    assert whole.meta["n_train"] == 18 and whole.meta["n_val"] == 0 and split.meta["n_train"] < 18
    assert whole.identity != split.identity  # other training rows, another scorer
    cv = whole.meta["cross_validation"]
    assert cv["folds"] == 3 and "pooled" not in cv
    for mech in MECHANISMS:
        pooled = whole.meta["validation"][mech]
        assert pooled["n"] == 18 and np.sum(pooled["confusion"]) == 18  # every pair held out once, in one fold
        assert cv[mech]["macro_f1_sd"] >= 0
    with pytest.raises(RelmError, match="picks its epoch on held-out rows"):
        empathy.train("minilm", data, all_rows=True)
    folder = str(tmp_path / "epi")
    assert main(["scorer", "train", "--kind", "tfidf", "--data", folder, "--all-rows", "--folds", "3"]) == 0
    out = capsys.readouterr().out
    assert "3-fold cross-validation by seeker, the held-out folds pooled:" in out and "on 18 pairs" in out
    assert main(["scorer", "train", "--kind", "minilm", "--data", folder, "--all-rows"]) == 2
    assert main(["scorer", "eval", "--kind", "tfidf", "--data", folder]) == 2  # every pair was seen in training
    assert "nothing unseen to evaluate" in capsys.readouterr().err


def test_saving_a_trained_scorer_waits_for_a_sweep_reading_its_cache_entry(tmp_path, tmp_cache, capsys):
    """`relm scorer train` replaces the cache entry a sweep may be loading: it takes the entry's lock first, as
    `load_or_compute` does for the reader, so the sweep never finds the scorer half replaced."""
    import threading

    from relm.cache import CacheEntry

    rows = [(f"s{i}", f"r{i}", f"{s} ({i})", f"{r} ({i})", *levels) for i, (_, _, s, r, *levels) in enumerate(ROWS * 3)]
    data = load_epitome(write_epitome(tmp_path / "epi", rows))
    first = empathy.train("tfidf", data, seed=0, min_df=1)
    entry = CacheEntry(empathy.SCORER_STAGE, first.identity)
    reading, done, whole = threading.Event(), threading.Event(), []

    def sweep_reading() -> None:
        with entry.lock():
            reading.set()
            done.wait(30)
            whole.append(entry.ready())  # still whole at the end of the read

    reader = threading.Thread(target=sweep_reading)
    reader.start()
    assert reading.wait(30)
    threading.Timer(0.5, done.set).start()
    again = empathy.train("tfidf", data, seed=0, min_df=1)
    reader.join(30)
    assert whole == [True] and again.identity == first.identity and entry.ready()
    assert f"waiting for cache entry {entry.name}: another relm process is computing it" in capsys.readouterr().err
