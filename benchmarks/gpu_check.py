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

# The `paper` preset's real widths: Qwen-7B-Chat as the native Qwen2 it is converted to, Whisper-large-v2's encoder.
QWEN_7B = {
    "hidden_size": 4096,
    "num_hidden_layers": 32,
    "num_attention_heads": 32,
    "num_key_value_heads": 32,
    "intermediate_size": 11008,
    "max_position_embeddings": 8192,
    "rope_theta": 10000.0,
}
WHISPER_LARGE_V2 = {
    "d_model": 1280,
    "encoder_layers": 32,
    "encoder_attention_heads": 20,
    "encoder_ffn_dim": 5120,
    "num_mel_bins": 80,
}
# A CPU rehearsal of the same code at 1/16 width and 2 layers (`--rehearse`).
QWEN_REHEARSAL = QWEN_7B | {
    "hidden_size": 256,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 4,
    "intermediate_size": 688,
}
WHISPER_REHEARSAL = WHISPER_LARGE_V2 | {
    "d_model": 80,
    "encoder_layers": 2,
    "encoder_attention_heads": 4,
    "encoder_ffn_dim": 320,
}
ESD_TRAIN_UTTERANCES = 15000  # ESD English: 10 speakers x 5 emotions x 300 training utterances
SENTENCES = [
    "I can't believe they cancelled the concert after we waited in line for three hours.",
    "My sister just called to say she got the job she wanted for years.",
    "The doctor said the results will not be ready until next week.",
    "Someone scratched my car in the parking lot and drove away without a note.",
]
REPLY = (
    "Oh no, that sounds so disappointing after all that waiting. It makes sense that you feel let down and "
    "frustrated right now. What were you looking forward to most about the evening?"
)
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
    from relm.runtime import matmul_gflops

    return {"name": "cpu", "threads": torch.get_num_threads(), "float32_matmul_gflops": matmul_gflops()}


def placement(preset, device: torch.device) -> dict:
    """Train 2 steps of re-llm with Lightning; every parameter must stay on the device; then answer."""
    from relm.bench.generation import answer
    from relm.bench.training import train_system
    from relm.data.schema import LABELS

    items = [
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
            items,
            items[:2],
            preset.speech_encoder.tiny["d_model"],
            preset.emotion_encoder.dim,
            0,
            Path(logs),
            progress=False,
        )
    off = sorted({str(p.device) for p in module.parameters()} - {str(device)})
    rows = answer(module, items[:4], preset, progress=False)
    return {
        "steps": info["steps"],
        "seconds": round(time.perf_counter() - start, 1),
        "parameters_off_device_after_fit": off,
        "answered": len(rows),
    }


def paper_width(device: torch.device, rehearse: bool, n_train: int = 48) -> dict:
    """`re-llm` of the `paper` preset at its real width, through the suite's own code: Whisper-large-v2's encoder
    on 30 s windows, a Qwen-7B-wide LLM in bf16 (random weights; a 600-token vocabulary, so the embedding and LM
    head's 1.2B parameters are left out), the w2v2 emotion width, LoRA r16 on every projection, batch 2 x 8, 3
    epochs, bf16-mixed; then greedy answers of the paper's length. Prints seconds per optimizer step, peak GPU
    memory, and what one ESD training run would take at that pace."""
    from relm.bench.generation import answer
    from relm.bench.training import train_system
    from relm.data.schema import LABELS
    from relm.models.speech_encoder import WhisperFrames
    from relm.presets import load_preset

    qwen, whisper = (QWEN_REHEARSAL, WHISPER_REHEARSAL) if rehearse else (QWEN_7B, WHISPER_LARGE_V2)
    overrides = {
        "runtime.device": str(device),
        "speech_init": "",  # no released checkpoint at hand: LoRA, adapter and heads start new
        "speech_encoder.model": "tiny-random",
        "speech_encoder.tiny": whisper,
        "llm.model": "tiny-random",
        "llm.tiny": qwen,
        "llm.dtype": "bfloat16",
    }
    preset = load_preset("paper", overrides)
    cuda = device.type == "cuda"
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    rng = np.random.default_rng(0)
    n = n_train + 8 + 8  # train, validation, test
    waves = [rng.normal(scale=0.1, size=int(16000 * rng.uniform(2.0, 5.0))).astype(np.float32) for _ in range(n)]
    start = time.perf_counter()
    encoder = WhisperFrames.build(preset.speech_encoder).to(device)
    sync()
    built = time.perf_counter() - start
    start = time.perf_counter()
    frames = [f for i in range(0, n, 16) for f in encoder(waves[i : i + 16])]  # the features stage's batch
    sync()
    encode = time.perf_counter() - start
    del encoder
    items = [
        {
            "utt_id": f"u{i}",
            "frames": frames[i].half(),
            "emotion": torch.randn(preset.emotion_encoder.dim),
            "avd": torch.rand(3),
            "label": i % len(LABELS),
            "emotion_name": LABELS[i % len(LABELS)],
            "transcript": SENTENCES[i % len(SENTENCES)],
            "target": REPLY,
            "target_complete": True,
        }
        for i in range(n)
    ]
    train, val, test = items[:n_train], items[n_train : n_train + 8], items[n_train + 8 :]
    if cuda:
        torch.cuda.reset_peak_memory_stats(device)
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as logs:
        module, info = train_system(
            "re-llm",
            preset,
            train,
            val,
            encoder_dim := frames[0].shape[-1],
            preset.emotion_encoder.dim,
            0,
            Path(logs),
            progress=False,
        )
    sync()
    build_and_train = time.perf_counter() - start
    train_peak = torch.cuda.max_memory_allocated(device) / 2**30 if cuda else None
    batch = module.build([it | {"task": "response"} for it in train[:2]], with_target=True, left_pad=False)
    tokens_per_step = int(batch["attention_mask"].sum()) * preset.train.accumulate
    start = time.perf_counter()
    rows = answer(module, test, preset, progress=False)
    sync()
    generate = time.perf_counter() - start
    per_step = info["train_seconds"] / max(info["optimizer_steps_done"], 1)
    t = preset.train
    esd_steps = -(-ESD_TRAIN_UTTERANCES // (t.batch_size * t.accumulate)) * t.epochs
    return {
        "rehearsal": rehearse,
        "llm": qwen,
        "whisper": whisper,
        "llm_params_billion": round(sum(p.numel() for p in module.llm.parameters()) / 1e9, 2),
        "trainable_params_million": round(info["trainable_params"] / 1e6, 1),
        "whisper_build_seconds": round(built, 1),
        "whisper_seconds_per_utterance": round(encode / n, 4),
        "speech_frames_per_utterance": round(sum(len(f) for f in frames) / n, 1),
        "encoder_dim": encoder_dim,
        "optimizer_steps": info["optimizer_steps_done"],
        "samples_per_step": t.batch_size * t.accumulate,
        "tokens_per_step": tokens_per_step,
        "seconds_per_step": round(per_step, 3),
        "tokens_per_second": round(tokens_per_step / per_step),
        "build_and_train_seconds": round(build_and_train, 1),
        "peak_gpu_memory_train_gib": round(train_peak, 2) if train_peak is not None else None,
        "answers": len(rows),
        "generate_seconds": round(generate, 1),
        "generate_tokens_max": len(test) * (preset.generate.max_new_tokens + preset.generate.ser_max_new_tokens),
        "peak_gpu_memory_gib": round(torch.cuda.max_memory_allocated(device) / 2**30, 2) if cuda else None,
        "esd_train_steps_3_epochs": esd_steps,
        "esd_train_hours_at_this_pace": round(esd_steps * per_step / 3600, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="auto", help="auto (cuda when present), cpu or cuda[:N]")
    parser.add_argument("--epitome", default=str(Path(__file__).resolve().parents[2] / "shared/data/epitome"))
    parser.add_argument("--paper-width", action="store_true", help="also train re-llm at the paper's real width")
    parser.add_argument("--rehearse", action="store_true", help="run --paper-width at 1/16 width (a CPU dry run)")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("WANDB_MODE", "disabled")
    from relm.bench.sweep import SweepConfig, run_sweep
    from relm.presets import load_preset
    from relm.runtime import resolve_device

    overrides = {"runtime.device": args.device, "emotion_encoder.pretrain_corpus": ""}
    preset = load_preset("paper-tiny", overrides)
    device = resolve_device(preset)
    figures: dict = {"device": device_facts(device), "placement": placement(preset, device)}
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
        figures["paper_width"] = paper_width(device, args.rehearse)
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
