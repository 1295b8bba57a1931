"""The CTranslate2 reader and the Whisper name map, on small files the tests write."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from transformers import WhisperConfig, WhisperForConditionalGeneration

from relm.errors import RelmError
from relm.models.convert import whisper_from_ct2
from relm.models.ct2 import read_ct2, write_ct2


def test_round_trip_tensors_aliases_and_scalars(tmp_path):
    tensors = {
        "a/weight": np.arange(12, dtype=np.float16).reshape(3, 4),
        "a/bias": np.array([1.5, -2.0], dtype=np.float32),
        "n/num_heads": np.array(6, dtype=np.int16),
        "flag": np.array(1, dtype=np.int8),
    }
    write_ct2(tmp_path / "model.bin", "TestSpec", tensors, aliases={"b/weight": "a/weight"}, revision=3)
    m = read_ct2(tmp_path / "model.bin")
    assert (m.spec, m.revision, m.version) == ("TestSpec", 3, 6)
    for name, arr in tensors.items():
        assert m.tensors[name].dtype == arr.dtype
        np.testing.assert_array_equal(m.tensors[name], arr)
    np.testing.assert_array_equal(m.tensors["b/weight"], tensors["a/weight"])
    assert int(m.get("n/num_heads")) == 6


@pytest.mark.parametrize("cut", [3, 20, -5])
def test_truncated_file_is_a_clear_error(tmp_path, cut):
    write_ct2(tmp_path / "m.bin", "S", {"w": np.ones((4, 4), np.float32)})
    data = (tmp_path / "m.bin").read_bytes()
    (tmp_path / "m.bin").write_bytes(data[:cut])
    with pytest.raises(RelmError, match="truncated"):
        read_ct2(tmp_path / "m.bin")


def test_not_a_ct2_file(tmp_path):
    (tmp_path / "m.bin").write_bytes(b"GGUF\x03\x00\x00\x00" + b"\0" * 64)
    with pytest.raises(RelmError, match="not a CTranslate2 model"):
        read_ct2(tmp_path / "m.bin")


def _to_ct2_names(model: WhisperForConditionalGeneration) -> dict[str, np.ndarray]:
    """The inverse of relm's name map, written the way CTranslate2's converter fuses weights."""
    sd = {k: v.detach().numpy().astype(np.float16) for k, v in model.state_dict().items()}
    d = model.config.d_model
    out: dict[str, np.ndarray] = {}

    def norm(dst, src):
        out[f"{dst}/gamma"], out[f"{dst}/beta"] = sd[f"{src}.weight"], sd[f"{src}.bias"]

    def lin(dst, src):
        out[f"{dst}/weight"], out[f"{dst}/bias"] = sd[f"{src}.weight"], sd[f"{src}.bias"]

    def fuse(dst, src, names):
        out[f"{dst}/weight"] = np.concatenate([sd[f"{src}.{n}.weight"] for n in names])
        out[f"{dst}/bias"] = np.concatenate([sd.get(f"{src}.{n}.bias", np.zeros(d, np.float16)) for n in names])

    e, dd = "model.encoder", "model.decoder"
    lin("encoder/conv1", f"{e}.conv1")
    lin("encoder/conv2", f"{e}.conv2")
    out["encoder/position_encodings/encodings"] = sd[f"{e}.embed_positions.weight"]
    norm("encoder/layer_norm", f"{e}.layer_norm")
    out["encoder/num_heads"] = np.array(model.config.encoder_attention_heads, np.int16)
    out["decoder/num_heads"] = np.array(model.config.decoder_attention_heads, np.int16)
    for i in range(model.config.encoder_layers):
        s, t = f"encoder/layer_{i}", f"{e}.layers.{i}"
        fuse(f"{s}/self_attention/linear_0", f"{t}.self_attn", ("q_proj", "k_proj", "v_proj"))
        lin(f"{s}/self_attention/linear_1", f"{t}.self_attn.out_proj")
        norm(f"{s}/self_attention/layer_norm", f"{t}.self_attn_layer_norm")
        lin(f"{s}/ffn/linear_0", f"{t}.fc1")
        lin(f"{s}/ffn/linear_1", f"{t}.fc2")
        norm(f"{s}/ffn/layer_norm", f"{t}.final_layer_norm")
    out["decoder/embeddings/weight"] = sd[f"{dd}.embed_tokens.weight"]
    out["decoder/position_encodings/encodings"] = sd[f"{dd}.embed_positions.weight"]
    norm("decoder/layer_norm", f"{dd}.layer_norm")
    for i in range(model.config.decoder_layers):
        s, t = f"decoder/layer_{i}", f"{dd}.layers.{i}"
        fuse(f"{s}/self_attention/linear_0", f"{t}.self_attn", ("q_proj", "k_proj", "v_proj"))
        lin(f"{s}/self_attention/linear_1", f"{t}.self_attn.out_proj")
        norm(f"{s}/self_attention/layer_norm", f"{t}.self_attn_layer_norm")
        lin(f"{s}/attention/linear_0", f"{t}.encoder_attn.q_proj")
        fuse(f"{s}/attention/linear_1", f"{t}.encoder_attn", ("k_proj", "v_proj"))
        lin(f"{s}/attention/linear_2", f"{t}.encoder_attn.out_proj")
        norm(f"{s}/attention/layer_norm", f"{t}.encoder_attn_layer_norm")
        lin(f"{s}/ffn/linear_0", f"{t}.fc1")
        lin(f"{s}/ffn/linear_1", f"{t}.fc2")
        norm(f"{s}/ffn/layer_norm", f"{t}.final_layer_norm")
    return out


def test_whisper_name_map_reproduces_logits(tmp_path):
    torch.manual_seed(0)
    cfg = WhisperConfig(
        vocab_size=96,
        num_mel_bins=8,
        d_model=16,
        encoder_layers=2,
        decoder_layers=2,
        encoder_attention_heads=2,
        decoder_attention_heads=2,
        encoder_ffn_dim=32,
        decoder_ffn_dim=32,
        max_source_positions=20,
        max_target_positions=12,
        pad_token_id=90,
        bos_token_id=90,
        eos_token_id=90,
        decoder_start_token_id=91,
    )
    ref = WhisperForConditionalGeneration(cfg).eval()
    with torch.no_grad():  # k_proj has no bias in Whisper; randomise everything else
        for p in ref.parameters():
            p.copy_(torch.randn_like(p) * 0.2)
        ref = ref.half().float()  # the file stores float16
    write_ct2(
        tmp_path / "model.bin",
        "WhisperSpec",
        _to_ct2_names(ref),
        aliases={"decoder/projection/weight": "decoder/embeddings/weight"},
    )
    specials = {"eos_id": 90, "sot_id": 91, "no_timestamps_id": 92}
    got = whisper_from_ct2(read_ct2(tmp_path / "model.bin"), specials).eval()
    feats = torch.randn(2, 8, 40)
    tokens = torch.tensor([[1, 5, 7, 9], [2, 3, 4, 6]])
    with torch.no_grad():
        a = ref(input_features=feats, decoder_input_ids=tokens).logits
        b = got(input_features=feats, decoder_input_ids=tokens).logits
    torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-4)
    assert got.proj_out.weight.data_ptr() == got.model.decoder.embed_tokens.weight.data_ptr()
