"""The committed smoke baselines that `relm check` gates on, and the sweeps that make them.

- `smoke-synth-esd.json`: the documented command, `make bench PRESET=smoke` (the default generated
  synth-esd corpus); `make check-smoke` runs it and gates it, `make smoke-baseline` rewrites the file.
- `smoke-synth-esd-tests.json`: the small synth corpus the test suite sweeps;
  `python scripts/make_smoke_baseline.py` rewrites it.

Commit a baseline when a change is meant to move the metrics.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

from relm.data.synth import PRETRAIN, SynthConfig
from relm.metrics.table import METRICS

BASELINES = Path(__file__).resolve().parents[2] / "results" / "baselines"
BASELINE = BASELINES / "smoke-synth-esd-tests.json"  # the test suite's sweep
MAKE_BENCH_BASELINE = BASELINES / "smoke-synth-esd.json"  # `make bench PRESET=smoke`
SMOKE_SYNTH = SynthConfig(speakers=["0011", "0015"], n_val=2, n_test=4, n_train=6)
# The smoke preset's stage-0 pre-training corpus: 2 other voices x 6 other sentences x 5 emotions.
SMOKE_PRETRAIN = replace(PRETRAIN, speakers=["0014", "0018"], n_val=1, n_test=1, n_train=4)
TOLERANCES = {n: m.tolerance for n, m in METRICS.items() if m.gated and m.tolerance is not None}  # the metric table's


def write_baseline(sweep_dir: Path, path: Path = BASELINE) -> None:
    """Keep a sweep's metrics, identity and the per-metric tolerances."""
    res = json.loads((sweep_dir / "results.json").read_text())
    keep = {
        "sweep_id": res["sweep_id"],
        "preset_hash": res["preset_hash"],
        "metrics": res["metrics"],
        "data": {d: {"content_hash": info.get("content_hash"), "n": info.get("n")} for d, info in res["data"].items()},
        "scorer": {"identity": res["scorer"].get("identity")},
        "provenance": {"git_hash": res["provenance"]["git_hash"]},
        "tolerances": TOLERANCES,
    }
    path.write_text(json.dumps(keep, indent=2, sort_keys=True) + "\n")
