"""The committed smoke baseline that `relm check` gates CI on, and the sweep that makes it.

`python scripts/make_smoke_baseline.py` reruns that sweep (the same small synth corpus,
smoke preset and EPITOME data the tests use) and rewrites the file; commit it when a
change is meant to move the metrics.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

from relm.data.synth import PRETRAIN, SynthConfig

BASELINE = Path(__file__).resolve().parents[2] / "results" / "baselines" / "smoke-synth-esd.json"
SMOKE_SYNTH = SynthConfig(speakers=["0011", "0015"], n_val=2, n_test=4, n_train=6)
# The smoke preset's stage-0 pre-training corpus: 2 other voices x 6 other sentences x 5 emotions.
SMOKE_PRETRAIN = replace(PRETRAIN, speakers=["0014", "0018"], n_val=1, n_test=1, n_train=4)
TOLERANCES = {"er": 0.15, "ip": 0.15, "ex": 0.15, "ua": 0.1, "wa": 0.1, "macro_f1": 0.1, "ua_head": 0.1}


def write_baseline(sweep_dir: Path, path: Path = BASELINE) -> None:
    """Keep a sweep's metrics, identity and the per-metric tolerances."""
    res = json.loads((sweep_dir / "results.json").read_text())
    keep = {
        "sweep_id": res["sweep_id"],
        "preset_hash": res["preset_hash"],
        "metrics": res["metrics"],
        "scorer": {"identity": res["scorer"].get("identity")},
        "provenance": {"git_hash": res["provenance"]["git_hash"]},
        "tolerances": TOLERANCES,
    }
    path.write_text(json.dumps(keep, indent=2, sort_keys=True) + "\n")
