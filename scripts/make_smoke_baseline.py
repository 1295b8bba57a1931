"""Regenerate results/baselines/smoke-synth-esd.json (commit it when a change is meant to move the metrics).

Runs exactly the sweep that tests/test_bench.py runs (same synth corpus, preset, EPITOME data) in a
temporary cache, then keeps its metrics and the per-metric tolerances used by `relm check`.
Usage: .venv/bin/python scripts/make_smoke_baseline.py [EPITOME_DIR]
"""

import os
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

with tempfile.TemporaryDirectory() as tmp:
    os.environ["RELM_CACHE"] = str(Path(tmp) / "cache")
    from relm.bench.baseline import SMOKE_PRETRAIN, SMOKE_SYNTH, write_baseline
    from relm.bench.sweep import SweepConfig, run_sweep
    from relm.data.synth import generate

    epitome = sys.argv[1] if len(sys.argv) > 1 else str(Path(__file__).resolve().parents[2] / "shared/data/epitome")
    generate(Path(tmp) / "synth", SMOKE_SYNTH, progress=False)
    generate(Path(tmp) / "pretrain", SMOKE_PRETRAIN, progress=False)
    os.environ["RELM_SYNTH_PRETRAIN_ROOT"] = str(Path(tmp) / "pretrain")
    roots = {"synth-esd": str(Path(tmp) / "synth")}
    sweep_dir = run_sweep(
        SweepConfig(
            datasets=["synth-esd"],
            preset="smoke",
            roots=roots,
            epitome=epitome,
            out_root=Path(tmp) / "runs",
            progress=False,
            tracking=False,
        )
    )
    write_baseline(sweep_dir)
    print((sweep_dir / "report.md").read_text().split("## Paired")[0])
