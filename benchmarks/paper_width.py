"""`re-llm` of the `paper` preset at its real width, through the suite's own training and generation code
(`benchmarks/gpu_check.py --paper-width`): what a step costs on this GPU, how much memory it takes, and what one
ESD training run would take at that pace. With `profile`, where the time of a training micro-batch and of
decoding goes (torch.profiler), and decoding with audio-scoped LoRA skipped where masked against computed.

On its own: python benchmarks/paper_width.py [--device cuda] [--rehearse] [--profile] [--set KEY=VALUE ...]
(`--set train.batch_size=16 --set train.accumulate=1`: the same global batch in one micro-batch), which writes
results/gpu/paper-width-<device>[-<label>].json.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
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


def paper_width(
    device: torch.device,
    rehearse: bool,
    profile: bool = False,
    settings: dict | None = None,
    n_train: int = 48,
    answers: bool = True,
) -> dict:
    """`re-llm` of the `paper` preset at its real width, through the suite's own code: Whisper-large-v2's encoder
    on 30 s windows, a Qwen-7B-wide LLM in bf16 (random weights; a 600-token vocabulary, so the embedding and LM
    head's 1.2B parameters are left out), the w2v2 emotion width, LoRA r16 on every projection, batch 2 x 8, 3
    epochs, bf16-mixed; then greedy answers of the paper's length. Prints seconds per optimizer step, peak GPU
    memory, and what one ESD training run would take at that pace."""
    from relm.bench.generation import answer
    from relm.bench.records import Item
    from relm.bench.training import train_system
    from relm.data.schema import LABELS
    from relm.models.budget import training_budget
    from relm.models.speech_encoder import WhisperFrames
    from relm.presets import load_preset
    from relm.runtime import Runtime

    qwen, whisper = (QWEN_REHEARSAL, WHISPER_REHEARSAL) if rehearse else (QWEN_7B, WHISPER_LARGE_V2)
    overrides = {
        "runtime.device": str(device),
        "speech_init": "",  # no released checkpoint at hand: LoRA, adapter and heads start new
        "speech_encoder.model": "tiny-random",
        "speech_encoder.tiny": whisper,
        "llm.model": "tiny-random",
        "llm.tiny": qwen,
        "llm.dtype": "bfloat16",
    } | (settings or {})
    preset = load_preset("paper", overrides)
    runtime = Runtime(device, preset.train.precision, "set by the preset", torch.get_num_threads())
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
    items: list[Item] = [
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
            runtime,
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
    samples = preset.train.batch_size * preset.train.accumulate
    batch = module.build([it | {"task": "response"} for it in train[:samples]], with_target=True, left_pad=False)
    tokens_per_step = int(batch["attention_mask"].sum())  # real tokens, padding not counted
    start = time.perf_counter()
    rows = answer(module, test, preset, runtime, progress=False) if answers else []
    sync()
    generate = time.perf_counter() - start
    seconds_per_step = info["train_seconds"] / max(info["optimizer_steps_done"], 1)
    esd_steps = training_budget(ESD_TRAIN_UTTERANCES, preset)["steps"]
    out = {
        "rehearsal": rehearse,
        "settings": settings or {},
        "llm": qwen,
        "whisper": whisper,
        "llm_params_billion": round(sum(p.numel() for p in module.llm.parameters()) / 1e9, 2),
        "trainable_params_million": round(info["trainable_params"] / 1e6, 1),
        "whisper_build_seconds": round(built, 1),
        "whisper_seconds_per_utterance": round(encode / n, 4),
        "speech_frames_per_utterance": round(sum(len(f) for f in frames) / n, 1),
        "encoder_dim": encoder_dim,
        "optimizer_steps": info["optimizer_steps_done"],
        "samples_per_step": samples,
        "tokens_per_step": tokens_per_step,
        "seconds_per_step": round(seconds_per_step, 3),
        "tokens_per_second": round(tokens_per_step / seconds_per_step),
        "build_and_train_seconds": round(build_and_train, 1),
        "peak_gpu_memory_train_gib": round(train_peak, 2) if train_peak is not None else None,
        "answers": len(rows),
        "generate_seconds": round(generate, 1),
        "generate_tokens_max": len(test) * (preset.generate.max_new_tokens + preset.generate.ser_max_new_tokens),
        "peak_gpu_memory_gib": round(torch.cuda.max_memory_allocated(device) / 2**30, 2) if cuda else None,
        "esd_train_steps_3_epochs": esd_steps,
        "esd_train_hours_at_this_pace": round(esd_steps * seconds_per_step / 3600, 2),
    }
    if profile:
        out["profile"] = where_time_goes(module, train[:2], test[:4], device, sync)
    return out


def where_time_goes(module, train_batch: list, test_batch: list, device: torch.device, sync) -> dict:
    """A training micro-batch (forward and backward, no optimizer) and 32 decoding steps: timed, then profiled.
    Decoding is timed with audio-scoped LoRA skipped where it is masked to zero (`PositionMask`) and computed."""
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as torch_profile

    autocast = torch.autocast(device.type, dtype=torch.bfloat16)
    batch = [dict(it, task="response") for it in train_batch]

    def micro_batch():
        module.train()
        with autocast:
            loss = module.losses(batch)["loss"]
        loss.backward()
        module.zero_grad(set_to_none=True)

    def timed(call, repeats: int) -> float:
        call()  # warm-up
        sync()
        start = time.perf_counter()
        for _ in range(repeats):
            call()
        sync()
        return (time.perf_counter() - start) / repeats

    figures: dict = {"train_micro_batch_seconds": round(timed(micro_batch, 3), 4)}
    for skip in (False, True):
        module.position_mask.skip_unmasked = skip

        def decode():
            with autocast:
                module.generate(test_batch, "response", 32)

        figures[f"decode_32_tokens_seconds_lora_{'skipped' if skip else 'computed'}"] = round(timed(decode, 2), 3)
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    sort = "self_device_time_total" if device.type == "cuda" else "self_cpu_time_total"
    from relm.machine import dispatched_operators  # the GPU-busy share with each kernel counted once

    for name, call in (("train_micro_batch", micro_batch), ("decode_32_tokens", decode)):
        figures[name] = dispatched_operators(device, call)
        sync()
        with torch_profile(activities=activities) as prof:
            call()
            sync()
        table = prof.key_averages().table(sort_by=sort, row_limit=14, max_name_column_width=60)
        print(f"--- {name} ---\n{table}", flush=True)
        folder = Path("results/gpu")
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"profile-{name}-{device.type}.txt").write_text(table)
    return figures


def main() -> None:
    import yaml

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="auto", help="auto (cuda when present), cpu or cuda[:N]")
    parser.add_argument("--rehearse", action="store_true", help="1/16 width, 2 layers (a CPU dry run)")
    parser.add_argument("--profile", action="store_true", help="where a micro-batch's and decoding's time goes")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="a `paper` preset override")
    parser.add_argument("--no-answers", action="store_true", help="train only (no generation)")
    parser.add_argument("--label", default="", help="a name for this configuration in the output file's name")
    args = parser.parse_args()
    settings = {k: yaml.safe_load(v) for k, v in (item.split("=", 1) for item in args.set)}
    device = torch.device(args.device if args.device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu"))
    figures = paper_width(device, args.rehearse, args.profile, settings, answers=not args.no_answers)
    print(json.dumps(figures, indent=2))
    out = Path("results/gpu") / f"paper-width-{device.type}{'-' + args.label if args.label else ''}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(figures, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
