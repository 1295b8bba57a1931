"""Regenerate a committed smoke baseline (commit it when a change is meant to move the metrics).

- no argument: results/baselines/smoke-synth-esd-tests.json, from exactly the sweep tests/test_bench.py
  runs (same small synth corpus, preset, EPITOME data) in a temporary cache;
- `--from RUN_DIR`: results/baselines/smoke-synth-esd.json, from a finished sweep
  (`make smoke-baseline` runs `make bench PRESET=smoke` and then this).
Usage: .venv/bin/python scripts/make_smoke_baseline.py [--epitome DIR] [--from RUN_DIR]
"""

import argparse
import os
import tempfile
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--epitome", default=str(Path(__file__).resolve().parents[2] / "shared/data/epitome"))
parser.add_argument("--from", dest="run_dir", help="a finished `make bench PRESET=smoke` sweep folder")
args = parser.parse_args()

if args.run_dir:
    from relm.bench.baseline import MAKE_BENCH_BASELINE, write_baseline

    write_baseline(Path(args.run_dir).resolve(), MAKE_BENCH_BASELINE)
    print(f"wrote {MAKE_BENCH_BASELINE}")
    raise SystemExit(0)

with tempfile.TemporaryDirectory() as tmp:
    os.environ["RELM_CACHE"] = str(Path(tmp) / "cache")
    from relm.bench.baseline import BASELINE, SMOKE_PRETRAIN, SMOKE_SYNTH, write_baseline
    from relm.bench.preparation import SweepConfig
    from relm.bench.sweep import run_sweep
    from relm.data.synth import generate

    generate(Path(tmp) / "synth", SMOKE_SYNTH, progress=False)
    generate(Path(tmp) / "pretrain", SMOKE_PRETRAIN, progress=False)
    os.environ["RELM_SYNTH_PRETRAIN_ROOT"] = str(Path(tmp) / "pretrain")
    sweep_dir = run_sweep(
        SweepConfig(
            datasets=["synth-esd"],
            preset="smoke",
            roots={"synth-esd": str(Path(tmp) / "synth")},
            epitome=args.epitome,
            out_root=Path(tmp) / "runs",
            progress=False,
            tracking=False,
        )
    )
    write_baseline(sweep_dir, BASELINE)
    print(f"wrote {BASELINE}")
    print((sweep_dir / "report.md").read_text().split("## Paired")[0])
