"""Performance figures for a preset (default cpu): prints them and writes results/perf/<preset>[-<precision>].json.

- machine: the CPU, measured float32 matmul throughput (GFLOP/s) on all threads, the precision chosen;
- one re-llm training step (batch 8, 35-token responses): seconds, against the previous loss (the LM head
  over every position, `labels=`) in the same process, and achieved FLOP/s
  (6 x LLM params x tokens, a standard estimate) over the float32 matmul peak and over the peak of the
  precision used (a bf16 matmul's measured speed-up applied);
- generation of test answers (responses and SER, `answer`): the previous method (items in their order,
  batches of 32, the whole prompt per batch) against the current one (the preset's batch size,
  length-sorted batches, the prompt prefix's cache computed once), same items, this process, and how
  many answers are identical (under bf16 autocast a different batching changes some tokens);
- the teacher: its previous method against the current one (`teacher_speed.py`), this process;
- batched vs one-at-a-time greedy tokens/s, and peak resident memory of this process.

Usage: python benchmarks/perf.py [--preset cpu] [--steps 3] [--precision 32-true] [--items 64]
"""

from __future__ import annotations

import argparse
import resource
import time
from pathlib import Path

import teacher_speed  # this folder's teacher benchmark
import torch

from relm.bench.generation import answer
from relm.bench.manifest import read_manifest
from relm.bench.records import Item
from relm.bench.training import build_module
from relm.data.schema import LABELS
from relm.io import atomic_write_json
from relm.machine import cpu_bf16_speed, matmul_gflops
from relm.presets import load_preset
from relm.provenance import cpu_description
from relm.runtime import resolve_runtime

TARGET = (
    "That is so frustrating, no wonder you are angry. What do you plan to do about it now, "
    "and is there anything I can do to help you get through this?"
)


def items(n: int, speech_dim: int, emo_dim: int, seconds: float = 2.7) -> list[Item]:
    frames = int(seconds * 50)
    return [
        {
            "utt_id": f"u{i}",
            "frames": torch.randn(frames, speech_dim),
            "emotion": torch.randn(emo_dim),
            "avd": torch.rand(3),
            "label": i % 5,
            "emotion_name": LABELS[i % 5],
            "task": "response",
            "transcript": "My landlord is raising the rent again.",
            "target": TARGET,
            "target_complete": True,
        }
        for i in range(n)
    ]


def answer_speed(system: str, preset, runtime, overrides: dict, speech_dim: int, emo_dim: int, n: int) -> dict:
    """`answer` on n test-like items (2-5 s of speech, real synth-esd sentences of varied length): the previous
    method against the current one, same module and items, this process."""
    module = build_module(system, preset, runtime.device, speech_dim, emo_dim, total_steps=100, seed=0)
    sentences = sorted(set(read_manifest("synth-esd", None, {}, progress=False).df["transcript"].dropna()))
    test = items(n, speech_dim, emo_dim)
    for i, it in enumerate(test):
        it["frames"] = torch.randn(100 + (i * 37) % 150, speech_dim)
        it["transcript"] = sentences[(i * 7) % len(sentences)]
    answer(module, test[:4], preset, runtime, progress=False)  # warm-up
    out: dict = {}
    previous = load_preset(preset.name, {"generate.batch_size": teacher_speed.PREVIOUS_BATCH} | overrides)
    for name, setting, fast in (("previous", previous, False), ("current", preset, True)):
        start = time.perf_counter()
        out[name] = answer(module, test, setting, runtime, progress=False, fast=fast)
        out[f"{name}_seconds"] = round(time.perf_counter() - start, 2)
    same = sum(
        a["response"] == b["response"] and a["ser_answer"] == b["ser_answer"]
        for a, b in zip(out["previous"], out["current"])
    )
    return {
        "items": n,
        "batch_size": preset.generate.batch_size,
        "previous_batch_size": teacher_speed.PREVIOUS_BATCH,
        "previous_seconds": out["previous_seconds"],
        "current_seconds": out["current_seconds"],
        "speedup": round(out["previous_seconds"] / out["current_seconds"], 2),
        "identical_answers": same,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="cpu")
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--items", type=int, default=64, help="test items for the generation and teacher figures")
    ap.add_argument("--precision", help="override train.precision (e.g. 32-true: the path of a CPU without bf16)")
    args = ap.parse_args()
    overrides = {"train.precision": args.precision} if args.precision else {}
    preset = load_preset(args.preset, overrides)
    runtime = resolve_runtime(preset)
    peak = matmul_gflops()
    dims = {"whisper-tiny.en": 384, "whisper-large-v2": 1280}
    speech_dim = dims.get(preset.speech_encoder.model, preset.speech_encoder.tiny.get("d_model", 384))
    emo_dim = preset.emotion_encoder.dim
    module = build_module("re-llm", preset, runtime.device, speech_dim, emo_dim, total_steps=100, seed=0)
    opt = module.configure_optimizers()["optimizer"]
    batch = items(8, speech_dim, emo_dim)
    n_tokens = module.build(batch, with_target=True, left_pad=False)["attention_mask"].sum().item()
    n_target = len(module.tokenizer(TARGET)["input_ids"])
    import contextlib

    precision, why = runtime.precision, runtime.precision_why
    autocast = (lambda: torch.autocast("cpu", dtype=torch.bfloat16)) if runtime.bf16 else contextlib.nullcontext
    times: dict[bool, list[float]] = {False: [], True: []}
    for _ in range(args.steps + 1):
        for target_only in (False, True):  # interleaved: the previous loss (logits everywhere), then the current
            module.target_logits_only = target_only
            start = time.perf_counter()
            with autocast():
                loss = module.losses(batch)["loss"]
            opt.zero_grad()
            loss.backward()
            opt.step()
            times[target_only].append(time.perf_counter() - start)
    step, previous_step = min(times[True][1:]), min(times[False][1:])
    llm_params = sum(p.numel() for p in module.llm.parameters())
    flops = 6 * llm_params * n_tokens  # forward + backward through the (frozen + LoRA) LLM
    bf16_speedup = 1 / cpu_bf16_speed()["bf16_slowdown"] if runtime.bf16 else 1.0
    generation = {
        s: answer_speed(s, preset, runtime, overrides, speech_dim, emo_dim, args.items) for s in ("text-zs", "re-llm")
    }
    teacher = teacher_speed.measure(args.preset, args.items)
    gen_items = items(8, speech_dim, emo_dim)
    with autocast():
        start = time.perf_counter()
        out = module.generate(gen_items, "response", 32)
        batched_s = time.perf_counter() - start
        batched_tok = sum(len(module.tokenizer(o)["input_ids"]) for o in out)
        start, single_tok = time.perf_counter(), 0
        for it in gen_items[:3]:
            single_tok += len(module.tokenizer(module.generate([it], "response", 32)[0])["input_ids"])
        single_s = time.perf_counter() - start
    res = {
        "preset": args.preset,
        "threads": torch.get_num_threads(),
        "matmul_gflops": round(peak, 1),
        "train_step_s": round(step, 3),
        "train_step_tokens": int(n_tokens),
        "target_tokens": n_target,
        "train_step_gflops": round(flops / step / 1e9, 1),
        "train_step_previous_s": round(previous_step, 3),  # the LM head over every position (`labels=`)
        "train_step_speedup": round(previous_step / step, 3),
        "fraction_of_matmul_peak": round(flops / step / 1e9 / peak, 3),
        "fraction_of_precision_peak": round(flops / step / 1e9 / (peak * bf16_speedup), 3),
        "generation": generation,
        "generation_speedup": round(
            sum(g["previous_seconds"] for g in generation.values())
            / sum(g["current_seconds"] for g in generation.values()),
            2,
        ),
        "teacher_speedup": teacher["speedup"],
        "teacher": teacher,
        "cpu": cpu_description(),
        "precision": precision,
        "precision_why": why,
        "generate_batched_tok_s": round(batched_tok / batched_s, 1),
        "generate_single_tok_s": round(single_tok / single_s, 1),
        "batched_speedup": round((batched_tok / batched_s) / (single_tok / single_s), 2),
        "peak_rss_gib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 2),
    }
    for k, v in res.items():
        print(f"{k:28} {v}")
    name = args.preset + (f"-{args.precision}" if args.precision else "")  # a forced precision keeps its own file
    atomic_write_json(Path("results/perf") / f"{name}.json", res)


if __name__ == "__main__":
    main()
