"""The BLSP-Emo checkpoint layout (../shared/reference/blsp-emo-checkpoint.md §1) split into relm's modules:
a synthetic tiny state dict with exactly the release's key families loads strictly into each module."""

from __future__ import annotations

import pytest
import torch

from relm.config import AdapterCfg
from relm.errors import RelmError
from relm.models import qwen_v1, tiny_checkpoints
from relm.models.adapter import SubsamplingAdapter
from relm.models.blsp_emo import lora_to_peft, split_checkpoint
from tests.conftest import runtime_of
from tests.test_qwen_v1 import TINY

D, E, F, M, P = 16, 2, 32, 80, 1500  # Whisper: width, layers, ffn, mel bins, positions
H, N, INNER, A, C, R = 32, 2, 24, 8, 5, 4  # Qwen width/layers/(I/2), adapter inner, emotions, LoRA rank


def tiny_blsp_state() -> dict[str, torch.Tensor]:
    """The release's key families at a width other than paper-tiny's (2 Whisper layers, LoRA rank 4)."""
    whisper = {"d_model": D, "encoder_layers": E, "encoder_attention_heads": 2, "encoder_ffn_dim": F, "num_mel_bins": M}
    return tiny_checkpoints.blsp_state(qwen=TINY, whisper=whisper, adapter_inner=A, lora_r=R)


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


# ---- the loader on a release-layout folder, into the systems (paper-tiny's stand-in) --------------------


@pytest.fixture
def tiny_preset(tmp_cache):
    from relm.presets import load_preset

    return load_preset("paper-tiny", {"runtime.device": "cpu"})


def test_the_generated_release_folder_reads_back_every_key_in_bf16(tmp_cache):
    from relm.models import blsp_emo, tiny_checkpoints
    from relm.models.sources import resolve

    folder = resolve("tiny-blsp-emo").path
    index = __import__("json").loads((folder / "pytorch_model.bin.index.json").read_text())
    assert sorted(set(index["weight_map"].values())) == [
        "pytorch_model-00001-of-00002.bin",
        "pytorch_model-00002-of-00002.bin",
    ]
    config, state = blsp_emo.read_checkpoint(folder)
    e, n = tiny_checkpoints.WHISPER["encoder_layers"], tiny_checkpoints.QWEN_V1["num_hidden_layers"]
    assert len(state) == 7 + 15 * e + 3 + 18 * n + 11 and config["lora_scope"] == "audio"
    assert {t.dtype for t in state.values()} == {torch.bfloat16}
    (folder / "pytorch_model-00002-of-00002.bin").rename(folder / "gone.bin")
    with pytest.raises(RelmError, match="listed in the index but missing"):
        blsp_emo.read_checkpoint(folder)


def test_speech_systems_start_from_the_checkpoint_and_blsp_emo_is_it_as_is(tiny_preset):
    from relm.bench.training import build_module
    from relm.models import blsp_emo

    init = blsp_emo.load("tiny-blsp-emo")
    speech = build_module("speech", tiny_preset, runtime_of(tiny_preset).device, 32, 16, total_steps=10, seed=0)
    assert speech.loaded_from_init == ["lora", "adapter", "ser_head"]
    own = dict(speech.llm.named_parameters(remove_duplicate=False))  # q, k and v share one lora_A (shared_qkv_a)
    assert all(torch.equal(own[k], v.float()) for k, v in init.parts.lora.items())
    assert all(torch.equal(speech.adapter.state_dict()[k], v.float()) for k, v in init.parts.adapter.items())
    assert torch.equal(speech.ser_head.weight, init.parts.emotion_head.float())
    relm = build_module("re-llm", tiny_preset, runtime_of(tiny_preset).device, 32, 16, total_steps=10, seed=0)
    assert relm.loaded_from_init == ["lora", "ser_head"]  # the fusion adapter reads [Whisper ; emotion]: new
    assert relm.adapter.convs[0].weight.shape[1] == 32 + 16
    released = build_module("blsp-emo", tiny_preset, runtime_of(tiny_preset).device, 32, 16, total_steps=10, seed=0)
    assert released.loaded_from_init == ["lora", "adapter", "ser_head"]
    assert not any(p.requires_grad for p in released.parameters())  # evaluated as is
    text = build_module("text", tiny_preset, runtime_of(tiny_preset).device, 32, 16, total_steps=10, seed=0)
    assert text.loaded_from_init == [] and "speech_init" not in text.identity


def test_masked_lora_is_the_base_model_outside_speech_and_acts_at_speech_positions(tiny_preset):
    """Checklist §8.6: with an all-zero mask the model is the base LLM; the mask turns LoRA on per position."""
    from relm.bench.training import build_module
    from relm.models.llm import load_llm

    module = build_module(
        "blsp-emo", tiny_preset, runtime_of(tiny_preset).device, 32, 16, total_steps=10, seed=0
    ).eval()
    base, _, _ = load_llm(tiny_preset.llm)
    embeds = base.get_input_embeddings()(torch.tensor([[5, 17, 42, 99, 7]]))
    with torch.no_grad():
        plain = base.eval()(inputs_embeds=embeds).logits
        module.position_mask.mask = torch.zeros(1, 5)
        torch.testing.assert_close(module.llm(inputs_embeds=embeds).logits, plain, atol=1e-6, rtol=1e-5)
        module.position_mask.mask = torch.tensor([[0.0, 1.0, 1.0, 0.0, 0.0]])
        masked = module.llm(inputs_embeds=embeds).logits
    assert torch.allclose(masked[:, 0], plain[:, 0], atol=1e-6)  # before the speech: causal, untouched
    assert not torch.allclose(masked[:, 1:], plain[:, 1:], atol=1e-4)


def test_a_checkpoint_over_another_llm_or_without_one_is_one_error(tiny_preset):
    from relm.bench.training import build_module
    from relm.presets import load_preset

    other = load_preset(
        "paper-tiny", {"runtime.device": "cpu", "llm.model": "tiny-random", "llm.tiny": {"hidden_size": 32}}
    )
    with pytest.raises(RelmError, match="LLM weights differ from the preset's llm 'tiny-random'"):
        build_module("speech", other, runtime_of(other).device, 32, 16, total_steps=10, seed=0)
    smoke = load_preset("smoke")
    with pytest.raises(RelmError, match="needs a preset with speech_init"):
        build_module("blsp-emo", smoke, runtime_of(smoke).device, 32, 16, total_steps=10, seed=0)
