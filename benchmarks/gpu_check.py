"""A short, prepared check of the `paper` preset's code path on a GPU machine (runs on a CPU too).

1. The device: name, memory, bf16 support, and a bf16 matmul's TFLOP/s (or float32 GFLOP/s on a CPU).
2. Placement: a `re-llm` module of `paper-tiny` trains 2 steps with Lightning and every parameter is still on
   the device afterwards (Lightning's teardown used to move it back to the CPU), then answers there.
3. The `paper-tiny` sweep (paper prompts, 30 s Whisper windows, audio-scoped LoRA, bf16-mixed) end to end on
   the device, on a tone corpus in ESD's layout written here (no espeak-ng needed on a bare GPU box; the
   stage-0 encoder is a frozen random one, as no second corpus is at hand). Checks results.json's device and
   peak GPU memory and prints the stage times.
4. With --paper-width: `re-llm` at the paper's real width through the same code (see `paper_width`): seconds
   per optimizer step, tokens/s, peak GPU memory, generation time, and an ESD training run's hours at that pace.

Prints the figures and writes results/gpu/<device>.json. Usage:
  python benchmarks/gpu_check.py [--device auto|cpu|cuda] [--epitome DIR] [--paper-width [--rehearse]]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

EMOTIONS = {"Neutral": 140.0, "Happy": 220.0, "Angry": 260.0, "Sad": 110.0, "Surprise": 300.0}
SPLITS = {"evaluation": range(1, 3), "test": range(21, 25), "train": range(51, 57)}


def tone_corpus(root: Path, speakers=("0011", "0012")) -> None:
    """ESD's layout (`<spk>/<Emotion>/<split>/<spk>_NNNNNN.wav`, `<spk>/<spk>.txt`) with pitched noise bursts."""
    rng = np.random.default_rng(0)
    for spk in speakers:
        lines = []
        for e_index, (emotion, f0) in enumerate(EMOTIONS.items()):
            for split, numbers in SPLITS.items():
                folder = root / spk / emotion / split
                folder.mkdir(parents=True, exist_ok=True)
                for n in numbers:
                    utt = f"{spk}_{e_index * 350 + n:06d}"
                    t = np.arange(int(16000 * rng.uniform(1.0, 2.0))) / 16000
                    wave = 0.3 * np.sin(2 * np.pi * f0 * t * (1 + 0.05 * np.sin(3 * t))) + 0.02 * rng.normal(
                        size=t.size
                    )
                    sf.write(folder / f"{utt}.wav", wave.astype(np.float32), 16000)
                    lines.append(f"{utt}\tSentence number {n} from speaker {spk}.\t{emotion}")
        (root / spk / f"{spk}.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")


def device_facts(device: torch.device) -> dict:
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        a = torch.randn(8192, 8192, device=device, dtype=torch.bfloat16)
        a @ a
        torch.cuda.synchronize()
        start = time.perf_counter()
        for _ in range(10):
            a @ a
        torch.cuda.synchronize()
        tflops = 2 * 8192**3 * 10 / (time.perf_counter() - start) / 1e12
        return {
            "name": props.name,
            "memory_gib": round(props.total_memory / 2**30, 1),
            "bf16": torch.cuda.is_bf16_supported(),
            "bf16_matmul_tflops": round(tflops, 1),
        }
    from relm.machine import matmul_gflops

    return {"name": "cpu", "threads": torch.get_num_threads(), "float32_matmul_gflops": matmul_gflops()}


def placement(preset, runtime) -> dict:
    """Train 2 steps of re-llm with Lightning; every parameter must stay on the device; then answer."""
    from relm.bench.generation import answer
    from relm.bench.records import Item
    from relm.bench.training import train_system
    from relm.data.schema import LABELS

    items: list[Item] = [
        {
            "utt_id": f"u{i}",
            "frames": torch.randn(50, preset.speech_encoder.tiny["d_model"]).half(),
            "emotion": torch.randn(preset.emotion_encoder.dim),
            "avd": torch.rand(3),
            "label": i % len(LABELS),
            "emotion_name": LABELS[i % len(LABELS)],
            "transcript": "hello there",
            "target": "That sounds hard.",
            "target_complete": True,
        }
        for i in range(8)
    ]
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as logs:
        module, info = train_system(
            "re-llm",
            preset,
            runtime,
            items,
            items[:2],
            preset.speech_encoder.tiny["d_model"],
            preset.emotion_encoder.dim,
            0,
            Path(logs),
            progress=False,
        )
    device = runtime.device
    on = lambda d: d.type == device.type and device.index in (None, d.index)  # noqa: E731 ("cuda" is cuda:0 here)
    off = sorted({str(p.device) for p in module.parameters() if not on(p.device)})
    rows = answer(module, items[:4], preset, runtime, progress=False)
    return {
        "steps": info["steps"],
        "seconds": round(time.perf_counter() - start, 1),
        "parameters_off_device_after_fit": off,
        "answered": len(rows),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="auto", help="auto (cuda when present), cpu or cuda[:N]")
    parser.add_argument("--epitome", default=str(Path(__file__).resolve().parents[2] / "shared/data/epitome"))
    parser.add_argument("--paper-width", action="store_true", help="also train re-llm at the paper's real width")
    parser.add_argument("--rehearse", action="store_true", help="run --paper-width at 1/16 width (a CPU dry run)")
    parser.add_argument("--profile", action="store_true", help="--paper-width: where a step's time goes")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("WANDB_MODE", "disabled")
    from relm.bench.preparation import SweepConfig
    from relm.bench.sweep import run_sweep
    from relm.presets import load_preset
    from relm.runtime import resolve_runtime

    overrides = {"runtime.device": args.device, "emotion_encoder.pretrain_corpus": ""}
    preset = load_preset("paper-tiny", overrides)
    runtime = resolve_runtime(preset)
    device = runtime.device
    figures: dict = {"device": device_facts(device), "placement": placement(preset, runtime)}
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["RELM_CACHE"] = str(Path(tmp) / "cache")
        tone_corpus(Path(tmp) / "esd")
        start = time.perf_counter()
        sweep_dir = run_sweep(
            SweepConfig(
                datasets=["esd"],
                preset="paper-tiny",
                roots={"esd": str(Path(tmp) / "esd")},
                epitome=args.epitome if Path(args.epitome).is_dir() else None,
                out_root=Path(tmp) / "runs",
                overrides=overrides,
                progress=False,
                tracking=False,
            )
        )
        res = json.loads((sweep_dir / "results.json").read_text())
        figures["sweep"] = {
            "wall_seconds": round(time.perf_counter() - start, 1),
            "device": res["device"],
            "precision": res["precision"],
            "timings_s": res["timings_s"],
            "peak_gpu_memory_gib": res["peak_gpu_memory_gib"],
            "peak_rss_gib": res["peak_rss_gib"],
            "n": res["data"]["esd"]["n"],
        }
    if args.paper_width:
        from paper_width import paper_width  # benchmarks/paper_width.py

        figures["paper_width"] = paper_width(device, args.rehearse, args.profile)
        print(json.dumps(figures["paper_width"], indent=2), flush=True)
    problems = []
    if figures["placement"]["parameters_off_device_after_fit"]:
        problems.append(
            f"parameters left {device} after fit: {figures['placement']['parameters_off_device_after_fit']}"
        )
    if not figures["sweep"]["device"].startswith(device.type):
        problems.append(f"the sweep ran on {figures['sweep']['device']}, not {device}")
    if device.type == "cuda" and not figures["sweep"]["peak_gpu_memory_gib"]:
        problems.append("no GPU memory recorded")
    figures["problems"] = problems
    print(json.dumps(figures, indent=2))
    out = Path("results/gpu") / f"{device.type}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(figures, indent=2) + "\n")
    print(f"{'FAIL' if problems else 'OK'}: wrote {out}")
    raise SystemExit(1 if problems else 0)


if __name__ == "__main__":
    main()
