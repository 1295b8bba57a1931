"""The BLSP-Emo checkpoint layout (../shared/reference/blsp-emo-checkpoint.md §1) split into relm's modules:
a synthetic tiny state dict with exactly the release's key families loads strictly into each module."""

from __future__ import annotations

import pytest
import torch

from relm.config import AdapterCfg
from relm.errors import RelmError
from relm.models import qwen_v1
from relm.models.adapter import SubsamplingAdapter
from relm.models.blsp_emo import lora_to_peft, split_checkpoint
from tests.test_qwen_v1 import TINY, tiny_v1_state

D, E, F, M, P = 16, 2, 32, 80, 1500  # Whisper: width, layers, ffn, mel bins, positions
H, N, INNER, A, C, R = 32, 2, 24, 8, 5, 4  # Qwen width/layers/(I/2), adapter inner, emotions, LoRA rank


def tiny_blsp_state() -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(1)

    def w(*shape):
        return torch.randn(*shape, generator=g) * 0.1

    s = {
        "whisper_model.conv1.weight": w(D, M, 3),
        "whisper_model.conv1.bias": w(D),
        "whisper_model.conv2.weight": w(D, D, 3),
        "whisper_model.conv2.bias": w(D),
        "whisper_model.embed_positions.weight": w(P, D),
        "whisper_model.layer_norm.weight": w(D),
        "whisper_model.layer_norm.bias": w(D),
    }
    for e in range(E):
        p = f"whisper_model.layers.{e}."
        for proj in ("q", "v", "out"):
            s |= {f"{p}self_attn.{proj}_proj.weight": w(D, D), f"{p}self_attn.{proj}_proj.bias": w(D)}
        s[f"{p}self_attn.k_proj.weight"] = w(D, D)  # no bias
        for norm in ("self_attn_layer_norm", "final_layer_norm"):
            s |= {f"{p}{norm}.weight": w(D), f"{p}{norm}.bias": w(D)}
        s |= {f"{p}fc1.weight": w(F, D), f"{p}fc1.bias": w(F), f"{p}fc2.weight": w(D, F), f"{p}fc2.bias": w(D)}
    s |= {f"qwen_model.model.{k}": v for k, v in tiny_v1_state().items()}
    shapes = {"attn.c_attn": (H, 3 * H), "attn.c_proj": (H, H), "mlp.w1": (H, INNER), "mlp.w2": (H, INNER)}
    shapes["mlp.c_proj"] = (INNER, H)
    for n in range(N):
        for module, (fan_in, fan_out) in shapes.items():
            p = f"qwen_model.model.transformer.h.{n}.{module}."
            s |= {p + "lora_A.default.weight": w(R, fan_in), p + "lora_B.default.weight": w(fan_out, R)}
    for i, out in enumerate((2 * D, 2 * D, 2 * H)):
        s |= {
            f"adapter.subsampler.conv_layers.{i}.weight": w(out, D, 5),
            f"adapter.subsampler.conv_layers.{i}.bias": w(out),
        }
    s |= {"adapter.fc1.weight": w(A, H), "adapter.fc2.weight": w(H, A)}
    s |= {"adapter.speech_ln.weight": w(H), "adapter.speech_ln.bias": w(H), "hidden2emotion.weight": w(C, H)}
    return s


def test_the_key_count_is_the_releases_formula():
    assert len(tiny_blsp_state()) == 7 + 15 * E + 3 + 18 * N + 11


def test_each_part_loads_strictly_into_relms_module():
    from transformers import WhisperConfig
    from transformers.models.whisper.modeling_whisper import WhisperEncoder

    parts = split_checkpoint(tiny_blsp_state())
    whisper = WhisperEncoder(
        WhisperConfig(d_model=D, encoder_layers=E, encoder_attention_heads=2, encoder_ffn_dim=F, num_mel_bins=M)
    )
    whisper.load_state_dict(parts.whisper, strict=True)
    adapter = SubsamplingAdapter(D, H, AdapterCfg(inner_dim=A, kernel=5, stride=2, n_conv=3))
    adapter.load_state_dict(parts.adapter, strict=True)
    assert parts.emotion_head is not None and parts.emotion_head.shape == (C, H)

    from peft import LoraConfig, get_peft_model
    from transformers import Qwen2Config, Qwen2ForCausalLM

    llm = Qwen2ForCausalLM(Qwen2Config(**qwen_v1.qwen2_config(TINY)))
    llm.load_state_dict(parts.llm, strict=True)
    targets = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
    peft = get_peft_model(llm, LoraConfig(r=R, lora_alpha=R, target_modules=targets))
    lora_names = {n for n, _ in peft.named_parameters() if "lora_" in n}
    assert set(parts.lora) == lora_names  # every LoRA weight of the 7 targets x N blocks, nothing else
    missing, unexpected = peft.load_state_dict(parts.lora, strict=False)
    assert not unexpected and not (set(missing) & lora_names)


def test_the_fused_qkv_lora_splits_exactly():
    """q, k and v share c_attn's A and take thirds of its B: their deltas stack to the fused delta."""
    state = tiny_blsp_state()
    lora = lora_to_peft(state)
    base = "qwen_model.model.transformer.h.0.attn.c_attn."
    fused = state[base + "lora_B.default.weight"] @ state[base + "lora_A.default.weight"]
    parts = [
        lora[f"base_model.model.model.layers.0.self_attn.{p}.lora_B.default.weight"]
        @ lora[f"base_model.model.model.layers.0.self_attn.{p}.lora_A.default.weight"]
        for p in ("q_proj", "k_proj", "v_proj")
    ]
    torch.testing.assert_close(torch.cat(parts), fused)
    up = lora["base_model.model.model.layers.1.mlp.up_proj.lora_B.default.weight"]
    assert torch.equal(up, state["qwen_model.model.transformer.h.1.mlp.w1.lora_B.default.weight"])  # w1 is up


def test_an_unknown_key_is_one_error():
    state = tiny_blsp_state() | {"cformer.query": torch.zeros(1)}
    with pytest.raises(RelmError, match="cformer.query: not a BLSP-Emo weight"):
        split_checkpoint(state)
