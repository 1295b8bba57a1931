"""Known answers for `relm compare` and `relm check`: built results with known per-utterance differences, their
p values against scipy's exact tests, and `relm check` at its tolerance boundary and on a missing metric."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from scipy import stats as sps

from relm.bench.regression import compare_data
from relm.cli import main

# 12 test utterances; B answers like A except where noted, so A - B is known item by item.
ER_A = [2, 2, 1, 2, 1, 2, 2, 1, 2, 2, 1, 2]
ER_B = [1, 1, 1, 0, 1, 2, 1, 0, 1, 2, 1, 1]  # A - B: mean +8/12, seven items differ, none downwards
GOLD = ["happy", "sad", "angry", "neutral"] * 3
SER_A = GOLD  # A is right on every utterance
SER_B = ["happy", "sad", "angry", "sad"] * 3  # B misses every neutral one (3 of 12)


def _sweep(folder: Path, sweep_id: str, er: list[int], ser: list[str]) -> Path:
    rows = [
        {
            "id": f"u{i:02d}",
            "transcript": f"sentence {i}",
            "gold_emotion": GOLD[i],
            "response": "reply",
            "ser_label": ser[i],
            "er": er[i],
            "ip": 0,
            "ex": 1,
        }
        for i in range(len(er))
    ]
    run = folder / "d" / "s" / "seed0"
    run.mkdir(parents=True)
    (run / "responses.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    ua = float(np.mean([np.mean([s == g for s, g in zip(ser, GOLD) if g == c]) for c in sorted(set(GOLD))]))
    results = {
        "sweep_id": sweep_id,
        "preset": {"name": "smoke"},
        "seeds": [0],
        "systems": ["s"],
        "datasets": ["d"],
        "scorer": {"identity": "tfidf-x"},
        "provenance": {"git_hash": "0" * 40},
        "metrics": {"d": {"s": {"er": float(np.mean(er)), "ip": 0.0, "ex": 1.0, "ua": ua, "n": len(er)}}},
        "runs": {"d": {"s": ["d/s/seed0"]}},
    }
    (folder / "results.json").write_text(json.dumps(results))
    return folder


def test_compare_gives_the_known_differences_and_scipys_exact_p(tmp_path, capsys):
    a = _sweep(tmp_path / "a", "A", ER_A, SER_A)
    b = _sweep(tmp_path / "b", "B", ER_B, SER_B)
    rows = {r["metric"]: r for r in compare_data(a, b)["rows"]}
    er = rows["er"]
    assert er["difference"] == pytest.approx(8 / 12) and er["n_items"] == 12 and er["n_seeds"] == [1, 1]
    exact = sps.permutation_test(
        (np.array(ER_A, float), np.array(ER_B, float)),
        lambda x, y: np.mean(x - y),
        permutation_type="samples",
        n_resamples=np.inf,
    ).pvalue  # every one of the 2^12 sign flips
    assert exact == pytest.approx(2 / 2**7)  # by hand: 7 items differ, all upwards; only all-up or all-down flips tie
    assert er["p"] == pytest.approx(exact, abs=0.01)  # relm: 5,000 seeded sign flips
    assert 0 < er["ci95"][0] <= 8 / 12 <= er["ci95"][1]
    assert rows["ua"]["difference"] == pytest.approx(1.0 - 0.75)  # B's recall on neutral is 0: UA 3/4
    assert rows["ip"]["p"] == 1.0 and rows["ip"]["difference"] == 0.0  # identical items: nothing to test
    assert main(["compare", str(a), str(b)]) == 0
    out = capsys.readouterr().out
    assert f"| d | s | er | 1.667 | 1.000 | +0.667 | [{er['ci95'][0]:+.3f}, {er['ci95'][1]:+.3f}] |" in out
    assert "| preset.name |" not in out and "| 12 x (1, 1) |" in out


def _check(tmp_path: Path, capsys, baseline: dict, current: dict, *extra: str) -> tuple[int, str]:
    (tmp_path / "base.json").write_text(json.dumps(baseline))
    (tmp_path / "run.json").write_text(json.dumps(current))
    rc = main(["check", str(tmp_path / "run.json"), "--baseline", str(tmp_path / "base.json"), *extra])
    return rc, capsys.readouterr().out


@pytest.mark.parametrize(
    ("current", "extra", "rc", "status"),
    [
        (0.85, (), 0, "| -0.150 | 0.15 | ok |"),  # exactly the tolerance (the metric table's, for ER)
        (0.849, (), 1, "| -0.151 | 0.15 | REGRESSED |"),
        (0.849, ("--tolerance", "er=0.2"), 0, "| -0.151 | 0.2 | ok |"),
        (1.3, (), 0, "| +0.300 | 0.15 | ok |"),  # a rise never fails
        (None, (), 1, "| n/a | n/a | 0.15 | MISSING |"),
    ],
    ids=["at-tolerance", "beyond", "tolerance-override", "rise", "missing"],
)
def test_check_at_the_tolerance_boundary_and_on_a_missing_metric(tmp_path, capsys, current, extra, rc, status):
    baseline = {"metrics": {"d": {"s": {"er": 1.0, "n": 12}}}}
    row = {"n": 12} | ({} if current is None else {"er": current})
    got, out = _check(tmp_path, capsys, baseline, {"metrics": {"d": {"s": row}}}, *extra)
    assert got == rc, out
    line = next(line for line in out.splitlines() if line.startswith("| d | s | er |"))
    assert line.endswith(status), line
    assert ("PASS" in out) == (rc == 0)
