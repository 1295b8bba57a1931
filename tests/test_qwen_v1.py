"""Qwen v1 -> native Qwen2: weights against a reference Qwen v1 forward written from the checkpoint notes
(../shared/reference/blsp-emo-checkpoint.md §5), the tokenizer against tiktoken's algorithm, and the
cached conversion a model name resolves to."""

from __future__ import annotations

import json
import math

import pytest
import regex
import torch
from safetensors.torch import save_file

from relm.models import qwen_v1, tiny_checkpoints

TINY = tiny_checkpoints.QWEN_V1 | {"vocab_size": 300, "seq_length": 64}  # no tokenizer here: a smaller vocab


def tiny_v1_state(seed: int = 0) -> dict[str, torch.Tensor]:
    return tiny_checkpoints.qwen_v1_state(TINY, seed)


def reference_v1_logits(state: dict[str, torch.Tensor], ids: torch.Tensor) -> torch.Tensor:
    """Qwen v1's forward as the notes state it: fused q/k/v, half-split RoPE over the physical index,
    fp32 RMSNorm, MLP c_proj(w1(x) * silu(w2(x)))."""
    h, heads, d = TINY["hidden_size"], TINY["num_attention_heads"], TINY["kv_channels"]
    eps = TINY["layer_norm_epsilon"]

    def rms(x, weight):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * weight

    inv = 1.0 / (TINY["rotary_emb_base"] ** (torch.arange(0, d, 2).float() / d))
    pos = torch.arange(ids.shape[1]).float()
    freqs = torch.outer(pos, inv)
    cos, sin = torch.cat([freqs, freqs], -1).cos(), torch.cat([freqs, freqs], -1).sin()

    def rope(x):
        half = torch.cat([-x[..., d // 2 :], x[..., : d // 2]], -1)
        return x * cos + half * sin

    x = state["transformer.wte.weight"][ids]
    length = ids.shape[1]
    causal = torch.full((length, length), float("-inf")).triu(1)
    for n in range(TINY["num_hidden_layers"]):
        p = f"transformer.h.{n}."
        qkv = rms(x, state[p + "ln_1.weight"]) @ state[p + "attn.c_attn.weight"].T + state[p + "attn.c_attn.bias"]
        q, k, v = (t.view(*t.shape[:2], heads, d).transpose(1, 2) for t in qkv.split(h, dim=-1))
        att = (rope(q) @ rope(k).transpose(-1, -2)) / math.sqrt(d) + causal
        out = (att.softmax(-1) @ v).transpose(1, 2).reshape(*x.shape)
        x = x + out @ state[p + "attn.c_proj.weight"].T
        y = rms(x, state[p + "ln_2.weight"])
        mlp = (y @ state[p + "mlp.w1.weight"].T) * torch.nn.functional.silu(y @ state[p + "mlp.w2.weight"].T)
        x = x + mlp @ state[p + "mlp.c_proj.weight"].T
    return rms(x, state["transformer.ln_f.weight"]) @ state["lm_head.weight"].T


def native_model(state):
    from transformers import Qwen2Config, Qwen2ForCausalLM

    model = Qwen2ForCausalLM(Qwen2Config(**qwen_v1.qwen2_config(TINY))).eval()
    loaded = model.load_state_dict(qwen_v1.convert_state_dict(state), strict=True)
    assert not loaded.missing_keys and not loaded.unexpected_keys
    return model


def test_converted_weights_give_qwen_v1_logits():
    state = tiny_v1_state()
    ids = torch.tensor([[5, 17, 42, 99, 3, 250, 7]])
    with torch.no_grad():
        ours = native_model(state)(ids).logits
    torch.testing.assert_close(ours, reference_v1_logits(state, ids), atol=1e-5, rtol=1e-4)
    assert qwen_v1.qwen2_config(TINY)["intermediate_size"] == 24


def test_swapping_gate_and_up_breaks_parity():
    """The check above can fail: with w1 and w2 swapped (the natural guess), the logits differ."""
    state = tiny_v1_state()
    swapped = dict(state)
    for n in range(TINY["num_hidden_layers"]):
        p = f"transformer.h.{n}.mlp."
        swapped[p + "w1.weight"], swapped[p + "w2.weight"] = state[p + "w2.weight"], state[p + "w1.weight"]
    ids = torch.tensor([[5, 17, 42, 99]])
    with torch.no_grad():
        assert not torch.allclose(native_model(swapped)(ids).logits, reference_v1_logits(state, ids), atol=1e-3)


def test_blsp_prefix_and_lora_keys():
    state = {f"qwen_model.model.{k}": v for k, v in tiny_v1_state().items()}
    state["qwen_model.model.transformer.h.0.attn.c_attn.lora_A.default.weight"] = torch.zeros(4, 32)
    state["whisper_model.conv1.weight"] = torch.zeros(1)
    out = qwen_v1.convert_state_dict(state, prefix="qwen_model.model.")
    assert "model.layers.0.self_attn.q_proj.bias" in out and not any("lora" in k for k in out)
    with pytest.raises(Exception, match="no Qwen v1 weights under the prefix"):
        qwen_v1.convert_state_dict(state, prefix="nothing.")


# ---- tokenizer ---------------------------------------------------------------------------------------


def tiny_tiktoken(path) -> dict[bytes, int]:
    return tiny_checkpoints.write_tiktoken(path)


def tiktoken_encode(ranks: dict[bytes, int], text: str) -> list[int]:
    """tiktoken's algorithm: split by the pattern, then per piece merge the lowest-ranked adjacent pair."""
    out = []
    for piece in regex.findall(qwen_v1.PAT_STR, text):
        data = piece.encode()
        if data in ranks:
            out.append(ranks[data])
            continue
        parts = [bytes([b]) for b in data]
        while True:
            pairs = [(ranks.get(parts[i] + parts[i + 1]), i) for i in range(len(parts) - 1)]
            pairs = [p for p in pairs if p[0] is not None]
            if not pairs:
                break
            _, i = min(pairs)
            parts[i : i + 2] = [parts[i] + parts[i + 1]]
        out += [ranks[p] for p in parts]
    return out


def test_tokenizer_matches_tiktoken_and_places_the_special_tokens(tmp_path):
    ranks = tiny_tiktoken(tmp_path / "qwen.tiktoken")
    tok = qwen_v1.build_tokenizer(tmp_path / "qwen.tiktoken")
    for text in ["hello world", "Hello, world!! 123\n\nhell o", "I'm here.  Really?", "café 12 hellohello"]:
        assert tok(text, add_special_tokens=False)["input_ids"] == tiktoken_encode(ranks, text), text
        assert tok.decode(tok(text, add_special_tokens=False)["input_ids"]) == text
    first = len(ranks)
    assert tok.convert_tokens_to_ids(["<|endoftext|>", "<|im_start|>", "<|im_end|>"]) == [first, first + 1, first + 2]
    assert tok.eos_token_id == tok.pad_token_id == first
    prompt = tok.apply_chat_template(
        [{"role": "system", "content": "S"}, {"role": "user", "content": "U"}],
        tokenize=False,
        add_generation_prompt=True,
    )
    assert prompt == "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nU<|im_end|>\n<|im_start|>assistant\n"


def test_a_qwen_v1_folder_resolves_to_its_cached_native_conversion(tmp_path, tmp_cache, monkeypatch):
    from relm.models.sources import resolve

    src = tmp_path / "qwen-v1"
    src.mkdir()
    (src / "config.json").write_text(json.dumps(TINY))
    save_file(tiny_v1_state(), str(src / "model.safetensors"))
    tiny_tiktoken(src / "qwen.tiktoken")
    monkeypatch.setenv("RELM_MODEL_QWEN_7B_CHAT", str(src))
    first = resolve("qwen-7b-chat")
    assert first.source == "local+native" and (first.path / "tokenizer.json").is_file()
    assert json.loads((first.path / "config.json").read_text())["model_type"] == "qwen2"
    again = resolve("qwen-7b-chat")
    assert again.path == first.path and again.identity == first.identity  # converted once
    from transformers import AutoModelForCausalLM

    from relm.cli import main

    assert main(["models", "convert", "qwen-7b-chat", "--force"]) == 0  # the command converts again
    assert resolve("qwen-7b-chat").path == first.path
    model = AutoModelForCausalLM.from_pretrained(first.path, dtype=torch.float32).eval()
    ids = torch.tensor([[5, 17, 42]])
    with torch.no_grad():
        torch.testing.assert_close(model(ids).logits, reference_v1_logits(tiny_v1_state(), ids), atol=1e-5, rtol=1e-4)
