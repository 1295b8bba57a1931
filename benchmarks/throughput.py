"""Training and decoding throughput of `re-llm` at the `paper` preset's widths, lever by lever, with parity.

No Lightning and no Whisper in the timed loop: the module is built by the suite's own code (random weights,
fixed seed, Whisper-large-v2-wide frames of 100-250 steps), and an optimizer step is what Lightning runs for the
preset (bf16 autocast, accumulation, gradient clipping, AdamW and the warm-up schedule). For each training
configuration (`--train b2x8,b16x1`: micro-batch x accumulation, a global batch of 16) and lever set
(`--levers baseline,lean_lora,grouped_loss,compile,all`) it reports the median seconds per optimizer step after
warm-up, real tokens/s (attention mask), TFLOP/s (counted by torch's FlopCounterMode over a step) and MFU against
a matmul measured here, peak memory, the operators dispatched per micro-batch (forward and backward: aten ops not
inside another aten op, plus compiled kernels; on CUDA also GPU kernels and the profiler's GPU-busy fraction,
each kernel counted once), and parity: the first step's objective against the baseline's at b2x8 (the same
objective: the grouped loss makes b16x1 equal to it), within 2e-3 relative.

Decoding (`--decode-batches 1,4,32 --new-tokens 64`): greedy answers in `eager` (a dynamic KV cache) and `fast`
(`generate.static_cache`: a preallocated cache, the prompt prefix copied in; on CUDA transformers compiles the
step with CUDA graphs), tokens/s, operators per decoding step and the share of decoded tokens equal to eager's.

`--rehearse` runs the same code on the CPU at the paper's depth (32 layers) with narrow widths: operator counts
(which do not depend on width) and parity, on any machine. The JSON is rewritten after every section; sections
not started before `--deadline-s` are recorded as skipped.

  python benchmarks/throughput.py --device cpu --rehearse --steps 2 --decode-batches 1,4 --new-tokens 8
  python benchmarks/throughput.py --device cuda --deadline-s 420        # writes results/gpu/throughput-cuda.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import torch
from paper_width import QWEN_7B, REPLY, SENTENCES  # benchmarks/ is the script's folder

from relm.machine import dispatched_operators
from relm.provenance import cpu_description

# The paper's depth at narrow widths (`--rehearse`): operator counts do not depend on width.
QWEN_REHEARSAL = QWEN_7B | {
    "hidden_size": 64,
    "num_attention_heads": 4,
    "num_key_value_heads": 4,
    "intermediate_size": 128,
}
WIDTHS = {"paper": {"frames": 1280, "emotion": 1024}, "rehearsal": {"frames": 32, "emotion": 16}}
BATCHES = {"b2x8": (2, 8), "b16x1": (16, 1)}
# Every lever off: today's code (the `paper` preset turns them on; `paper-fp32` off).
OFF: dict[str, Any] = {
    "train.lean_lora": False,
    "train.loss_group_size": 0,
    "train.compile_layers": False,
    "train.pad_to_multiple": 0,
    "generate.static_cache": False,
}
LEVERS: dict[str, dict[str, Any]] = {
    "baseline": {},
    "lean_lora": {"train.lean_lora": True},
    "grouped_loss": {"train.loss_group_size": 2},  # at b16x1: the b2x8 objective in one micro-batch
    "compile": {"train.lean_lora": True, "train.compile_layers": True, "train.pad_to_multiple": 64},  # needs lean
}
LEVERS["all"] = {k: v for lever in list(LEVERS.values()) for k, v in lever.items()}
DECODE_MODES = {"eager": {"generate.static_cache": False}, "fast": {"generate.static_cache": True}}
PARITY_RTOL = 2e-3


def preset_for(device: torch.device, rehearse: bool, settings: dict):
    from relm.presets import load_preset

    return load_preset(
        "paper",
        {
            "runtime.device": str(device),
            "speech_init": "",  # no released checkpoint: LoRA, adapter and heads start new (lora_B at zero)
            "llm.model": "tiny-random",
            "llm.tiny": QWEN_REHEARSAL if rehearse else QWEN_7B,
            "llm.dtype": "bfloat16",
            "emotion_encoder.dim": WIDTHS["rehearsal" if rehearse else "paper"]["emotion"],
        }
        | OFF
        | settings,
    )


def make_items(n: int, rehearse: bool, seed: int = 0) -> list:
    from relm.data.schema import LABELS

    widths = WIDTHS["rehearsal" if rehearse else "paper"]
    g = torch.Generator().manual_seed(seed)
    return [
        {
            "utt_id": f"u{i}",
            "frames": torch.randn(
                int(torch.randint(100, 251, (1,), generator=g)), widths["frames"], generator=g
            ).half(),
            "emotion": torch.randn(widths["emotion"], generator=g),
            "avd": torch.rand(3, generator=g),
            "label": i % len(LABELS),
            "emotion_name": LABELS[i % len(LABELS)],
            "transcript": SENTENCES[i % len(SENTENCES)],
            "target": REPLY,
            "target_complete": True,
            "task": "response",
        }
        for i in range(n)
    ]


def build(device: torch.device, rehearse: bool, settings: dict):
    from relm.bench.training import build_module

    preset = preset_for(device, rehearse, settings)
    widths = WIDTHS["rehearsal" if rehearse else "paper"]
    return build_module("re-llm", preset, device, widths["frames"], widths["emotion"], 1000, seed=0), preset


class Clock:
    def __init__(self, device: torch.device):
        self.device = device

    def sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    def seconds(self, call) -> float:
        self.sync()
        start = time.perf_counter()
        call()
        self.sync()
        return time.perf_counter() - start


def matmul_peak_tflops(device: torch.device) -> float:
    """The bf16 matmul rate measured here: the MFU denominator."""
    size = 8192 if device.type == "cuda" else 1024
    a = torch.randn(size, size, device=device, dtype=torch.bfloat16)
    clock = Clock(device)
    clock.seconds(lambda: a @ a)
    seconds = min(clock.seconds(lambda: [a @ a for _ in range(5)]) / 5 for _ in range(3))
    return 2 * size**3 / seconds / 1e12


def train_config(device, rehearse, batch: str, lever: str, steps: int, warmup: int, peak: float) -> dict:
    """Optimizer steps of one configuration: the first step's objective (parity), then timed steps."""
    from torch.utils.flop_counter import FlopCounterMode

    micro, accumulate = BATCHES[batch]
    settings = LEVERS[lever] | {"train.batch_size": micro, "train.accumulate": accumulate}
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    module, preset = build(device, rehearse, settings)
    module.train()
    optim = module.configure_optimizers()
    opt, sched = optim["optimizer"], optim["lr_scheduler"]["scheduler"]
    params = [p for p in module.parameters() if p.requires_grad]
    pool = make_items(16 * (warmup + steps), rehearse)
    autocast = torch.autocast(device.type, dtype=torch.bfloat16)

    def micro_batch(items) -> torch.Tensor:
        with autocast:
            loss = module.losses(items)["loss"] / accumulate
        loss.backward()
        return loss.detach()

    def step(k: int) -> float:
        chunk = pool[16 * k : 16 * (k + 1)]
        objective = sum(micro_batch(chunk[i : i + micro]) for i in range(0, 16, micro))
        torch.nn.utils.clip_grad_norm_(params, preset.train.grad_clip)
        opt.step()
        sched.step()
        opt.zero_grad(set_to_none=True)
        return float(objective)

    clock = Clock(device)
    first = step(0)
    for k in range(1, warmup):
        step(k)
    times = [clock.seconds(lambda k=k: step(k)) for k in range(warmup, warmup + steps)]
    chunk = pool[:16]
    tokens = int(module.build(chunk, with_target=True, left_pad=False)["attention_mask"].sum())
    ops = dispatched_operators(device, lambda: micro_batch(chunk[:micro]))
    opt.zero_grad(set_to_none=True)
    with FlopCounterMode(display=False) as flops:  # last: compiled layers run eagerly under it
        for i in range(0, 16, micro):
            micro_batch(chunk[i : i + micro])
    opt.zero_grad(set_to_none=True)
    seconds = statistics.median(times)
    tflops = flops.get_total_flops() / seconds / 1e12
    out = {
        "batch": batch,
        "lever": lever,
        "settings": settings,
        "first_step_objective": first,
        "seconds_per_step": round(seconds, 4),
        "step_seconds": [round(t, 4) for t in times],
        "tokens_per_step": tokens,
        "tokens_per_second": round(tokens / seconds, 1),
        "tflop_per_step": round(flops.get_total_flops() / 1e12, 4),
        "tflops": round(tflops, 3),
        "mfu": round(tflops / peak, 4),
        "peak_memory_gib": round(torch.cuda.max_memory_allocated(device) / 2**30, 2) if device.type == "cuda" else None,
        "per_micro_batch": ops,
    }
    return out


def decode_config(device, rehearse, mode: str, batches: list[int], new_tokens: int, repeats: int) -> dict:
    """Greedy decoding of `new_tokens` per row (stop tokens disabled, so every row decodes them all)."""
    module, preset = build(device, rehearse, LEVERS["all"] | DECODE_MODES[mode])
    module.stop = [module.llm.config.vocab_size + 1]  # never produced: each row decodes `new_tokens`
    ids: dict[int, list[str]] = {}
    module.tokenizer.batch_decode = lambda out, **_: [" ".join(map(str, row.tolist())) for row in out]
    autocast = torch.autocast(device.type, dtype=torch.bfloat16)
    clock = Clock(device)
    out: dict[str, Any] = {"mode": mode, "settings": DECODE_MODES[mode], "new_tokens": new_tokens}
    for b in batches:
        items = make_items(b, rehearse, seed=1)

        def run(b: int = b, items: list = items) -> None:
            with autocast:
                ids[b] = module.generate(items, "response", new_tokens)

        run()  # warm-up (and, on CUDA with the static cache, compilation)
        seconds = statistics.median(clock.seconds(run) for _ in range(repeats))
        ops = dispatched_operators(device, run)
        out[str(b)] = {
            "seconds": round(seconds, 4),
            "tokens_per_second": round(b * new_tokens / seconds, 1),
            "operators_per_step": round(ops["operators"] / new_tokens, 1),
        } | ({"gpu_kernels_per_step": round(ops["gpu_kernels"] / new_tokens, 1)} if "gpu_kernels" in ops else {})
    out["_ids"] = ids
    return out


def agreement(eager: dict, fast: dict) -> dict:
    """Share of decoded tokens equal to eager's, per batch size."""
    out = {}
    for b, rows in eager.items():
        pairs = [(x, y) for r, s in zip(rows, fast[b]) for x, y in zip(r.split(), s.split())]
        out[str(b)] = round(sum(x == y for x, y in pairs) / max(len(pairs), 1), 4)
    return out


def parity(train: list[dict]) -> None:
    """Each configuration's first objective against the baseline's with the same objective: b2x8's (every
    lever at b2x8, and at b16x1 those with the grouped loss), else b16x1's baseline (a different weighting)."""
    by = {(r["batch"], r["lever"]): r["first_step_objective"] for r in train if "first_step_objective" in r}
    for r in train:
        if "first_step_objective" not in r:
            continue
        grouped = r["settings"].get("train.loss_group_size", 0) > 0
        ref_key = ("b2x8", "baseline") if r["batch"] == "b2x8" or grouped else (r["batch"], "baseline")
        ref = by.get(ref_key)
        if ref is None:
            continue
        rel = abs(r["first_step_objective"] - ref) / abs(ref)
        r["parity"] = {"against": "/".join(ref_key), "relative_difference": rel, "ok": rel <= PARITY_RTOL}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="auto", help="auto (cuda when present), cpu or cuda[:N]")
    parser.add_argument("--rehearse", action="store_true", help="the paper's depth at narrow widths (any CPU)")
    parser.add_argument("--train", default="b2x8,b16x1", help=f"training configurations, of {list(BATCHES)}")
    parser.add_argument("--levers", default=",".join(LEVERS), help=f"lever sets, of {list(LEVERS)}")
    parser.add_argument("--steps", type=int, default=5, help="timed optimizer steps per configuration")
    parser.add_argument("--warmup", type=int, default=2, help="optimizer steps before timing (the first: parity)")
    parser.add_argument("--decode-batches", default="1,4,32", help="decoding batch sizes ('' skips decoding)")
    parser.add_argument("--new-tokens", type=int, default=64, help="tokens decoded per row")
    parser.add_argument("--repeats", type=int, default=2, help="timed decoding runs per batch size")
    parser.add_argument("--deadline-s", type=float, default=0, help="start no section after this many seconds")
    parser.add_argument("--label", default="", help="a name for this run in the output file's name")
    args = parser.parse_args()
    import torch._inductor.config

    from relm.errors import RelmError
    from relm.models.compiling import compile_available

    torch._inductor.config.cpp.enable_kernel_profile = True  # compiled CPU kernels show in the profiler: counted
    device = torch.device(args.device if args.device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu"))
    batches, levers = args.train.split(","), args.levers.split(",")
    unknown = [b for b in batches if b not in BATCHES] + [lever for lever in levers if lever not in LEVERS]
    if unknown:
        raise SystemExit(f"throughput.py: unknown configuration or lever {unknown[0]!r}")
    if compile_available(device):
        levers = [lever for lever in levers if "train.compile_layers" not in LEVERS[lever]]
    start = time.perf_counter()
    out_path = Path("results/gpu") / f"throughput-{device.type}{'-' + args.label if args.label else ''}.json"
    out_path.parent.mkdir(parents=True, exist_ok=True)
    report: dict[str, Any] = {
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else cpu_description(),
        "torch": torch.__version__,
        "rehearsal": args.rehearse,
        "llm": QWEN_REHEARSAL if args.rehearse else QWEN_7B,
        "precision": "bf16-mixed, bf16 LLM weights",
        "command": " ".join(sys.argv),
        "train": [],
        "decode": [],
    }
    if reason := compile_available(device):
        report["compile_unavailable"] = reason

    def save() -> None:
        from relm.io import atomic_write_json

        atomic_write_json(out_path, report)

    def due() -> bool:
        return bool(args.deadline_s) and time.perf_counter() - start > args.deadline_s

    report["matmul_peak_tflops_bf16"] = peak = round(matmul_peak_tflops(device), 3)
    for batch in batches:
        for lever in levers:
            if due():
                report["train"].append({"batch": batch, "lever": lever, "skipped": "deadline"})
                continue
            try:
                row = train_config(device, args.rehearse, batch, lever, args.steps, args.warmup, peak)
            except (RelmError, RuntimeError) as e:  # one configuration failing (memory) does not end the run
                row = {"batch": batch, "lever": lever, "error": str(e).splitlines()[0][:300]}
            report["train"].append(row)
            parity(report["train"])
            print(json.dumps(row), flush=True)
            save()
    decode_batches = [int(b) for b in args.decode_batches.split(",") if b]
    ids = {}
    for mode in DECODE_MODES if decode_batches else ():
        if due():
            report["decode"].append({"mode": mode, "skipped": "deadline"})
            continue
        row = decode_config(device, args.rehearse, mode, decode_batches, args.new_tokens, args.repeats)
        ids[mode] = row.pop("_ids")
        if mode != "eager" and "eager" in ids:
            row["token_agreement_with_eager"] = agreement(ids["eager"], ids[mode])
        report["decode"].append(row)
        print(json.dumps(row), flush=True)
        save()
    report["summary"] = summary(report)
    report["seconds"] = round(time.perf_counter() - start, 1)
    save()
    print(json.dumps(report["summary"], indent=2))
    print(f"wrote {out_path}")


def summary(report: dict) -> dict:
    rows = {(r["batch"], r["lever"]): r for r in report["train"] if "per_micro_batch" in r}
    out: dict[str, Any] = {"parity_ok": all(r.get("parity", {}).get("ok", False) for r in rows.values())}
    for batch in BATCHES:
        base, best = rows.get((batch, "baseline")), rows.get((batch, "all"))
        if base and best:
            out[f"{batch}_operators_all_over_baseline"] = round(
                best["per_micro_batch"]["operators"] / base["per_micro_batch"]["operators"], 3
            )
            out[f"{batch}_speedup_all_over_baseline"] = round(base["seconds_per_step"] / best["seconds_per_step"], 2)
    if rows:
        top = max(rows.values(), key=lambda r: r["tokens_per_second"])
        out["best_training"] = {k: top[k] for k in ("batch", "lever", "tokens_per_second", "mfu")}
    return out


if __name__ == "__main__":
    main()
