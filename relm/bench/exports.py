"""Tidy exports of a sweep for pandas: `samples.parquet`, `metrics.parquet` and each dataset's manifest.

`samples.parquet`: one row per (dataset, system, seed, utterance), keyed by `utt_id` (a string) with
the manifest's columns (`emotion` is the gold label) and the run's answer, parsed SER label, EPITOME
levels and congruence. `metrics.parquet`: one row per (dataset, system, seed, metric). The manifest
of every dataset is copied to `manifests/<dataset>.parquet`, so `samples` joins it on `utt_id`.
"""

from __future__ import annotations

import io
import shutil
from pathlib import Path

import pandas as pd

from relm.io import atomic_write_bytes, read_jsonl
from relm.metrics.table import METRICS, row_columns

ANSWER_COLUMNS = ["response", "ser_answer", "ser_label", "ser_head", "response_emotion"]  # + each metric's column


def _parquet(path: Path, df: pd.DataFrame) -> None:
    buf = io.BytesIO()
    df.to_parquet(buf, index=False)
    atomic_write_bytes(path, buf.getvalue())


def write_exports(sweep_dir: Path, results: dict) -> None:
    samples, metrics = [], []
    for dataset, by_system in results["runs"].items():
        source = results["data"].get(dataset, {}).get("manifest")
        manifest = pd.read_parquet(source) if source and Path(source).is_file() else None
        if manifest is not None:
            (sweep_dir / "manifests").mkdir(exist_ok=True)
            shutil.copyfile(source, sweep_dir / "manifests" / f"{dataset}.parquet")
        for system, folders in by_system.items():
            for seed, folder in zip(results["seeds"], folders, strict=False):
                rows = pd.DataFrame(read_jsonl(sweep_dir / folder / "responses.jsonl"))
                rows = rows.rename(columns={"id": "utt_id"}).drop(
                    columns=["gold_emotion", "transcript"], errors="ignore"
                )
                keep = ["utt_id", *[c for c in [*ANSWER_COLUMNS, *row_columns()] if c in rows]]
                part = rows[keep].assign(dataset=dataset, system=system, seed=seed)
                if manifest is not None:
                    part = part.merge(manifest, on="utt_id", how="left", validate="one_to_one")
                samples.append(part)
            for seed, run in zip(results["seeds"], results["metrics_by_seed"][dataset][system], strict=False):
                metrics += [
                    {"dataset": dataset, "system": system, "seed": seed, "metric": m, "value": run.get(m)}
                    for m in METRICS.names()
                    if run.get(m) is not None
                ]
    if samples:
        df = pd.concat(samples, ignore_index=True)
        df["utt_id"] = df["utt_id"].astype("string")
        lead = ["dataset", "system", "seed", "utt_id"]
        _parquet(sweep_dir / "samples.parquet", df[lead + [c for c in df.columns if c not in lead]])
    _parquet(
        sweep_dir / "metrics.parquet", pd.DataFrame(metrics, columns=["dataset", "system", "seed", "metric", "value"])
    )
