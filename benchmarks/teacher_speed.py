"""Teacher (step 1) speed: the previous method against the current one, in one process, same items.

Previous: items in text order, batches of 32, every batch runs its whole prompt (system prompt + worked
examples + item). Current: the preset's batch size, items sorted by prompt length (little padding), and the
prefix every prompt shares computed once as a KV cache that each batch copies. Float32 both: the replies
must be token-identical. Prints seconds, the speed-up and how many replies are identical,
and writes results/perf/teacher-<preset>.json.

Usage: python benchmarks/teacher_speed.py [--preset cpu] [--items 64] [--dataset synth-esd]
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from pathlib import Path

import torch

from relm.bench.manifest import read_manifest
from relm.bench.teacher import Teacher
from relm.io import atomic_write_json
from relm.machine import matmul_gflops
from relm.models.llm import load_llm
from relm.presets import load_preset
from relm.provenance import cpu_description


def run(teacher: Teacher, pairs: list[tuple[str, str]], fast: bool) -> tuple[float, list[str]]:
    start = time.perf_counter()
    order, prefix = teacher.plan(sorted(pairs), fast=fast)
    bs = teacher.cfg.batch_size
    out = {}
    for i in range(0, len(order), bs):
        batch = order[i : i + bs]
        for pair, (raw, _) in zip(batch, teacher._generate(batch, prefix)):
            out[pair] = raw
    return time.perf_counter() - start, [out[p] for p in sorted(pairs)]


PREVIOUS_BATCH = 32  # the cpu preset's teacher and generation batch before length sorting and prefix reuse


def measure(preset_name: str, items: int = 64, dataset: str = "synth-esd") -> dict:
    """The previous and the current teacher method on the same items, in this process."""
    preset = load_preset(preset_name, {"runtime.device": "cpu"})
    df = read_manifest(dataset, None, {}, progress=False).df
    pairs = sorted(set(zip(df["transcript"].fillna(""), df["emotion"])))[:items]
    llm, tok, identity = load_llm(type(preset.llm)(model=preset.teacher.model))
    teacher = Teacher(preset.teacher, llm, tok, identity)
    previous = Teacher(dataclasses.replace(preset.teacher, batch_size=PREVIOUS_BATCH), llm, tok, identity)
    gflops = matmul_gflops()
    run(teacher, pairs[:8], fast=True)  # warm-up
    before_s, before = run(previous, pairs, fast=False)
    after_s, after = run(teacher, pairs, fast=True)
    prefix_tokens = teacher.plan(pairs)[1][0]
    return {
        "preset": preset_name,
        "teacher": identity,
        "items": len(pairs),
        "batch_size": teacher.cfg.batch_size,
        "previous_batch_size": PREVIOUS_BATCH,
        "shared_prefix_tokens": prefix_tokens,
        "previous_seconds": round(before_s, 2),
        "current_seconds": round(after_s, 2),
        "speedup": round(before_s / after_s, 2),
        "identical_replies": sum(a == b for a, b in zip(before, after)),
        "cpu": cpu_description(),
        "threads": torch.get_num_threads(),
        "precision": "float32",
        "matmul_gflops": gflops,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="cpu")
    parser.add_argument("--items", type=int, default=64)
    parser.add_argument("--dataset", default="synth-esd")
    args = parser.parse_args()
    figures = measure(args.preset, args.items, args.dataset)
    for k, v in figures.items():
        print(f"{k:22} {v}")
    atomic_write_json(Path("results/perf") / f"teacher-{args.preset}.json", figures)


if __name__ == "__main__":
    main()
