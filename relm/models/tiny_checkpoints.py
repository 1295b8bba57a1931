"""Small random checkpoints in the layouts the paper's models are released in, so that the `paper-tiny`
preset runs the paper's loading code on any machine: `tiny-qwen-v1` (Qwen-7B-Chat's remote-code layout,
converted to a native Qwen2 by `relm.models.qwen_v1` like the real one) and `tiny-blsp-emo` (the BLSP-Emo
release: two bf16 `.bin` shards and their index, `config.json` with nested configs, `qwen.tiktoken`, read
by `relm.models.blsp_emo`). Key families and shapes follow ../shared/reference/blsp-emo-checkpoint.md §1.

The weights are random (seeded): what they say means nothing, only that the code paths load and run.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path

import torch

# Qwen v1 config at toy width. vocab: 268 BPE ranks + the 208 special tokens of Qwen's tokenizer, padded.
QWEN_V1 = {
    "model_type": "qwen",
    "architectures": ["QWenLMHeadModel"],
    "hidden_size": 32,
    "num_attention_heads": 4,
    "kv_channels": 8,
    "num_hidden_layers": 2,
    "intermediate_size": 48,  # v1 counts w1 and w2 together: each is 24 wide
    "vocab_size": 512,
    "layer_norm_epsilon": 1e-6,
    "rotary_emb_base": 10000,
    "rotary_pct": 1.0,
    "seq_length": 2048,
}
# BLSP-Emo's other parts at toy width; `paper-tiny` sets its Whisper, adapter and LoRA to these.
WHISPER = {"d_model": 32, "encoder_layers": 1, "encoder_attention_heads": 2, "encoder_ffn_dim": 64, "num_mel_bins": 80}
WHISPER_POSITIONS = 1500
ADAPTER_INNER, CONV_KERNEL, LORA_R, LORA_ALPHA, EMOTIONS = 16, 5, 16, 16, 5
MERGED = [b"he", b"ll", b"hell", b"hello", b" w", b"or", b" wor", b"ld", b" world", b"12", b"!!", b"\n\n"]


def tiktoken_ranks() -> dict[bytes, int]:
    """Every byte, then a few merges: a valid `qwen.tiktoken` that encodes any text."""
    return {bytes([b]): b for b in range(256)} | {t: 256 + i for i, t in enumerate(MERGED)}


def write_tiktoken(path: Path) -> dict[bytes, int]:
    ranks = tiktoken_ranks()
    path.write_text("".join(f"{base64.b64encode(t).decode()} {r}\n" for t, r in ranks.items()))
    return ranks


def _weights(seed: int, scale: float):
    g = torch.Generator().manual_seed(seed)
    return lambda *shape: torch.randn(*shape, generator=g) * scale


def qwen_v1_state(config: dict = QWEN_V1, seed: int = 0) -> dict[str, torch.Tensor]:
    """A Qwen v1 (`QWenLMHeadModel`) state dict: fused c_attn with bias, w1/w2/c_proj MLP, untied lm_head."""
    w = _weights(seed, 0.2)
    h, inner, v = config["hidden_size"], config["intermediate_size"] // 2, config["vocab_size"]
    state = {"transformer.wte.weight": w(v, h), "transformer.ln_f.weight": 1 + w(h), "lm_head.weight": w(v, h)}
    for n in range(config["num_hidden_layers"]):
        p = f"transformer.h.{n}."
        state |= {
            p + "ln_1.weight": 1 + w(h),
            p + "ln_2.weight": 1 + w(h),
            p + "attn.c_attn.weight": w(3 * h, h),
            p + "attn.c_attn.bias": w(3 * h),
            p + "attn.c_proj.weight": w(h, h),
            p + "mlp.w1.weight": w(inner, h),
            p + "mlp.w2.weight": w(inner, h),
            p + "mlp.c_proj.weight": w(h, inner),
        }
    return state


def blsp_state(
    qwen: dict = QWEN_V1,
    whisper: dict = WHISPER,
    adapter_inner: int = ADAPTER_INNER,
    lora_r: int = LORA_R,
    seed: int = 1,
    qwen_seed: int = 0,
) -> dict[str, torch.Tensor]:
    """The BLSP-Emo state dict: `whisper_model.*`, `qwen_model.model.*` (the Qwen v1 of `qwen_seed`, with LoRA
    on c_attn, attn.c_proj, w1, w2, mlp.c_proj), `adapter.*` (Subsampler) and `hidden2emotion.weight`."""
    w = _weights(seed, 0.1)
    d, m, f = whisper["d_model"], whisper["num_mel_bins"], whisper["encoder_ffn_dim"]
    h, inner = qwen["hidden_size"], qwen["intermediate_size"] // 2
    s = {
        "whisper_model.conv1.weight": w(d, m, 3),
        "whisper_model.conv1.bias": w(d),
        "whisper_model.conv2.weight": w(d, d, 3),
        "whisper_model.conv2.bias": w(d),
        "whisper_model.embed_positions.weight": w(WHISPER_POSITIONS, d),
        "whisper_model.layer_norm.weight": 1 + w(d),
        "whisper_model.layer_norm.bias": w(d),
    }
    for e in range(whisper["encoder_layers"]):
        p = f"whisper_model.layers.{e}."
        for proj in ("q", "v", "out"):
            s |= {f"{p}self_attn.{proj}_proj.weight": w(d, d), f"{p}self_attn.{proj}_proj.bias": w(d)}
        s[f"{p}self_attn.k_proj.weight"] = w(d, d)  # Whisper's k_proj has no bias
        for norm in ("self_attn_layer_norm", "final_layer_norm"):
            s |= {f"{p}{norm}.weight": 1 + w(d), f"{p}{norm}.bias": w(d)}
        s |= {f"{p}fc1.weight": w(f, d), f"{p}fc1.bias": w(f), f"{p}fc2.weight": w(d, f), f"{p}fc2.bias": w(d)}
    s |= {f"qwen_model.model.{k}": v for k, v in qwen_v1_state(qwen, qwen_seed).items()}
    fans = {"attn.c_attn": (h, 3 * h), "attn.c_proj": (h, h), "mlp.w1": (h, inner), "mlp.w2": (h, inner)}
    fans["mlp.c_proj"] = (inner, h)
    for n in range(qwen["num_hidden_layers"]):
        for module, (fan_in, fan_out) in fans.items():
            p = f"qwen_model.model.transformer.h.{n}.{module}."
            s |= {p + "lora_A.default.weight": w(lora_r, fan_in), p + "lora_B.default.weight": w(fan_out, lora_r)}
    for i, out in enumerate((2 * d, 2 * d, 2 * h)):
        s |= {
            f"adapter.subsampler.conv_layers.{i}.weight": w(out, d, CONV_KERNEL),
            f"adapter.subsampler.conv_layers.{i}.bias": w(out),
        }
    s |= {"adapter.fc1.weight": w(adapter_inner, h), "adapter.fc2.weight": w(h, adapter_inner)}
    s |= {"adapter.speech_ln.weight": 1 + w(h), "adapter.speech_ln.bias": w(h)}
    return s | {"hidden2emotion.weight": w(EMOTIONS, h)}


# Qwen-7B-Chat's generation_config.json: the teacher's decoding as released reads it (`teacher.decoding`).
QWEN_V1_GENERATION = {
    "chat_format": "chatml",
    "eos_token_id": 151643,
    "pad_token_id": 151643,
    "max_window_size": 6144,
    "max_new_tokens": 512,
    "do_sample": True,
    "top_k": 0,
    "top_p": 0.8,
    "repetition_penalty": 1.1,
}


def write_qwen_v1_folder(folder: Path) -> None:
    """`config.json`, `generation_config.json`, `pytorch_model.bin` and `qwen.tiktoken`, as Qwen-7B-Chat ships
    them (remote code)."""
    (folder / "config.json").write_text(json.dumps(QWEN_V1, indent=2) + "\n")
    (folder / "generation_config.json").write_text(json.dumps(QWEN_V1_GENERATION, indent=2) + "\n")
    torch.save(qwen_v1_state(), folder / "pytorch_model.bin")
    write_tiktoken(folder / "qwen.tiktoken")


def write_blsp_folder(folder: Path) -> None:
    """The BLSP-Emo release's files: bf16 weights in two `.bin` shards plus their index, `config.json`
    (the release's fields, nested Whisper and Qwen configs), `qwen.tiktoken`."""
    state = {k: v.to(torch.bfloat16) for k, v in blsp_state().items()}
    keys = sorted(state)
    shards = {"pytorch_model-00001-of-00002.bin": keys[: len(keys) // 2]}
    shards["pytorch_model-00002-of-00002.bin"] = keys[len(keys) // 2 :]
    for name, names in shards.items():
        torch.save({k: state[k] for k in names}, folder / name)
    index = {
        "metadata": {"total_size": sum(t.numel() * 2 for t in state.values())},
        "weight_map": {k: name for name, names in shards.items() for k in names},
    }
    (folder / "pytorch_model.bin.index.json").write_text(json.dumps(index, indent=2) + "\n")
    config = {
        "architectures": ["Blsp2Model"],
        "model_type": "blsp2",
        "adapter_type": "subsampler",
        "conv_kernel_sizes": ",".join([str(CONV_KERNEL)] * 3),
        "adapter_inner_dim": ADAPTER_INNER,
        "adapter_hidden_layers": 0,
        "kd_temperature": 2,
        "num_emotions": EMOTIONS,
        "lora_scope": "audio",
        "lora_config": {
            "r": LORA_R,
            "lora_alpha": LORA_ALPHA,
            "lora_dropout": 0.05,
            "target_modules": ["c_attn", "c_proj", "w1", "w2"],
            "bias": "none",
        },
        "whisper_config": WHISPER | {"max_source_positions": WHISPER_POSITIONS, "model_type": "whisper"},
        "qwen_config": QWEN_V1,
    }
    (folder / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    write_tiktoken(folder / "qwen.tiktoken")
