"""Qwen v1 (Qwen-7B-Chat, and the LLM inside BLSP-Emo) as a native transformers `Qwen2ForCausalLM`.

Qwen v1 is remote code written for transformers 4.32; relm runs no remote code. This module turns a
Qwen v1 checkpoint into a Qwen2 safetensors folder, following `../shared/reference/blsp-emo-checkpoint.md`
§5-6 (verified there against the original forward to 1e-7):

- weights: `transformer.wte` -> `model.embed_tokens`; per block `ln_1`/`ln_2` -> input/post-attention
  norms; the fused `attn.c_attn` splits into q, k, v thirds (weight and bias); `attn.c_proj` -> `o_proj`;
  **`mlp.w2` is the gate and `mlp.w1` the up projection**; `mlp.c_proj` -> `down_proj`; `ln_f` -> `norm`;
  `lm_head` stays untied;
- config: `intermediate_size` is Qwen v1's value halved (11008 for 7B), `head_dim` = `kv_channels`,
  RMSNorm eps from `layer_norm_epsilon`, plain RoPE (`rotary_emb_base`), no dynamic NTK or log-n scaling
  (they act only beyond `seq_length`, which relm's prompts never reach);
- tokenizer: `qwen.tiktoken` (base64 token, rank per line) becomes a byte-level BPE `tokenizer.json`
  with Qwen's split pattern and NFC normalisation; `<|endoftext|>` 151643, `<|im_start|>` 151644,
  `<|im_end|>` 151645 and `<|extra_0..204|>` follow the ranks; eos and pad are `<|endoftext|>`
  (generation_config.json), and the chat template writes ChatML as Qwen's `make_context` does.

Qwen v1 ignores `position_ids` (RoPE over the physical index, pads included); a caller that pads a
batch passes explicit `arange` positions to match it (§5, "Positions").
"""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path

import torch

from relm.errors import RelmError
from relm.models.checkpoints import read_weights

CONVERTER_VERSION = 2  # v2: the source's generation_config.json fields kept
PAT_STR = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)
SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", *(f"<|extra_{i}|>" for i in range(205))]
# Qwen's make_context: system, then each turn, then the assistant's opening (with its newline).
CHAT_TEMPLATE = (
    "{% if messages[0]['role'] != 'system' %}{{ '<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n' }}"
    "{% endif %}{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + "
    "'<|im_end|>\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)
BLOCK = re.compile(r"^h\.(\d+)\.(.+)$")


def is_qwen_v1(config: dict) -> bool:
    return config.get("model_type") == "qwen" or "QWenLMHeadModel" in (config.get("architectures") or [])


def qwen2_config(v1: dict, endoftext_id: int = 151643) -> dict:
    """The Qwen2Config fields equivalent to a Qwen v1 config (`endoftext_id`: the number of BPE ranks)."""
    missing = [
        k for k in ("hidden_size", "num_attention_heads", "num_hidden_layers", "intermediate_size") if k not in v1
    ]
    if missing:
        raise RelmError(f"Qwen v1 config.json lacks {missing}")
    heads = v1["num_attention_heads"]
    head_dim = v1.get("kv_channels", v1["hidden_size"] // heads)
    if head_dim * heads != v1["hidden_size"]:
        raise RelmError(f"Qwen v1 config: kv_channels {head_dim} x {heads} heads != hidden_size {v1['hidden_size']}")
    if v1.get("rotary_pct", 1.0) != 1.0:
        raise RelmError(f"Qwen v1 config: rotary_pct {v1['rotary_pct']} (only full-width RoPE converts exactly)")
    return {
        "architectures": ["Qwen2ForCausalLM"],
        "model_type": "qwen2",
        "vocab_size": v1.get("vocab_size", 151936),
        "hidden_size": v1["hidden_size"],
        "intermediate_size": v1["intermediate_size"] // 2,  # v1 counts w1 and w2 together
        "num_hidden_layers": v1["num_hidden_layers"],
        "num_attention_heads": heads,
        "num_key_value_heads": heads,
        "head_dim": head_dim,
        "hidden_act": "silu",
        "max_position_embeddings": v1.get("seq_length", 8192),
        "rms_norm_eps": v1.get("layer_norm_epsilon", 1e-6),
        "rope_parameters": {"rope_type": "default", "rope_theta": float(v1.get("rotary_emb_base", 10000.0))},
        "tie_word_embeddings": False,
        "attention_dropout": 0.0,
        "use_sliding_window": False,
    } | (
        {"bos_token_id": endoftext_id, "eos_token_id": endoftext_id, "pad_token_id": endoftext_id}
        if endoftext_id < v1.get("vocab_size", 151936)
        else {}
    )


def convert_state_dict(state: dict[str, torch.Tensor], prefix: str = "") -> dict[str, torch.Tensor]:
    """Qwen v1 keys under `prefix` (e.g. `qwen_model.model.` inside BLSP-Emo) -> Qwen2 keys; LoRA keys are
    not taken (BLSP-Emo's masked LoRA is loaded separately). Every base key must be used exactly once."""
    out: dict[str, torch.Tensor] = {}
    used = set()
    if f"{prefix}transformer.wte.weight" not in state:
        raise RelmError(f"no Qwen v1 weights under the prefix {prefix!r} (no {prefix}transformer.wte.weight)")
    hidden = state[f"{prefix}transformer.wte.weight"].shape[1]
    simple = {
        "transformer.wte.weight": "model.embed_tokens.weight",
        "transformer.ln_f.weight": "model.norm.weight",
        "lm_head.weight": "lm_head.weight",
    }
    per_block = {
        "ln_1.weight": "input_layernorm.weight",
        "ln_2.weight": "post_attention_layernorm.weight",
        "attn.c_proj.weight": "self_attn.o_proj.weight",
        "mlp.w2.weight": "mlp.gate_proj.weight",
        "mlp.w1.weight": "mlp.up_proj.weight",
        "mlp.c_proj.weight": "mlp.down_proj.weight",
    }
    for key, tensor in state.items():
        if not key.startswith(prefix) or "lora_" in key:
            continue
        name = key[len(prefix) :]
        if name in simple:
            out[simple[name]] = tensor
        elif (m := BLOCK.match(name.removeprefix("transformer."))) and name.startswith("transformer."):
            layer, rest = m.groups()
            base = f"model.layers.{layer}."
            if rest in per_block:
                out[base + per_block[rest]] = tensor
            elif rest in ("attn.c_attn.weight", "attn.c_attn.bias"):
                kind = rest.rsplit(".", 1)[1]
                if tensor.shape[0] != 3 * hidden:
                    raise RelmError(f"{key}: expected {3 * hidden} rows (q, k, v), got {tensor.shape[0]}")
                for part, chunk in zip(("q_proj", "k_proj", "v_proj"), tensor.split(hidden, dim=0)):
                    out[f"{base}self_attn.{part}.{kind}"] = chunk.clone()
            else:
                raise RelmError(f"{key}: not a Qwen v1 weight relm knows how to convert")
        else:
            raise RelmError(f"{key}: not a Qwen v1 weight relm knows how to convert")
        used.add(key)
    if not used:
        raise RelmError(f"no Qwen v1 weights under the prefix {prefix!r}")
    return out


def _bytes_to_unicode() -> dict[int, str]:
    """GPT-2's reversible byte -> printable character table (what byte-level BPE vocabularies are written in)."""
    keep = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), 256))
    chars, extra = keep[:], 0
    for b in range(256):
        if b not in keep:
            keep.append(b)
            chars.append(256 + extra)
            extra += 1
    return dict(zip(keep, map(chr, chars)))


def read_tiktoken(path: Path) -> dict[bytes, int]:
    """`qwen.tiktoken`: one `base64(token) rank` per line."""
    ranks: dict[bytes, int] = {}
    for n, line in enumerate(path.read_text(encoding="ascii").splitlines(), 1):
        if not line.strip():
            continue
        try:
            token, rank = line.split()
            ranks[base64.b64decode(token)] = int(rank)
        except ValueError:
            raise RelmError(f"{path}:{n}: expected 'base64-token rank'") from None
    if sorted(ranks.values()) != list(range(len(ranks))):
        raise RelmError(f"{path}: the ranks are not 0..{len(ranks) - 1} without gaps")
    return ranks


def build_tokenizer(tiktoken_file: Path):
    """A `PreTrainedTokenizerFast` equal to Qwen v1's tiktoken tokenizer (byte-level BPE, merges by rank)."""
    from tokenizers import Regex, Tokenizer, decoders, normalizers, pre_tokenizers
    from tokenizers.models import BPE
    from transformers import PreTrainedTokenizerFast

    ranks = read_tiktoken(tiktoken_file)
    table = _bytes_to_unicode()

    def text(b: bytes) -> str:
        return "".join(table[x] for x in b)

    vocab = {text(token): rank for token, rank in ranks.items()}
    # tiktoken merges the adjacent pair whose concatenation has the lowest rank; as BPE merges, every split
    # of a token into two tokens is a merge with the token's own rank as its priority.
    merges = sorted(
        (rank, ranks[token[:i]], ranks[token[i:]], text(token[:i]), text(token[i:]))
        for token, rank in ranks.items()
        for i in range(1, len(token))
        if token[:i] in ranks and token[i:] in ranks
    )
    bpe = BPE(
        vocab=vocab,
        merges=[(m[3], m[4]) for m in merges],
        fuse_unk=False,
        byte_fallback=False,
        ignore_merges=True,  # like tiktoken, a piece that is itself a token is that token
    )
    tok = Tokenizer(bpe)
    tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(PAT_STR), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    tok.decoder = decoders.ByteLevel()
    first = len(ranks)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok)
    fast.add_special_tokens({"additional_special_tokens": SPECIAL_TOKENS})
    ids = list(fast.convert_tokens_to_ids(SPECIAL_TOKENS))  # type: ignore[arg-type]
    if ids != list(range(first, first + len(SPECIAL_TOKENS))):
        raise RelmError(f"{tiktoken_file}: special tokens did not land at ids {first}.. (got {ids[:3]}..)")
    fast.eos_token = fast.pad_token = "<|endoftext|>"
    fast.chat_template = CHAT_TEMPLATE
    return fast


def convert_folder(src: Path, out: Path) -> None:
    """A Qwen v1 checkpoint folder (config.json, `*.bin` or `*.safetensors` shards, qwen.tiktoken) -> a native
    Qwen2 folder (config.json, safetensors shards, tokenizer files, generation_config.json)."""
    from huggingface_hub import save_torch_state_dict

    config = json.loads((src / "config.json").read_text())
    if not is_qwen_v1(config):
        raise RelmError(f"{src}: config.json is not a Qwen v1 model (model_type {config.get('model_type')!r})")
    converted = convert_state_dict(read_weights(src))
    out.mkdir(parents=True, exist_ok=True)
    save_torch_state_dict(converted, str(out), max_shard_size="5GB")
    tiktoken_file = src / "qwen.tiktoken"
    if not tiktoken_file.is_file():
        raise RelmError(f"{src}: no qwen.tiktoken (the tokenizer's BPE ranks)")
    tokenizer = build_tokenizer(tiktoken_file)
    endoftext, im_end = tokenizer.convert_tokens_to_ids(["<|endoftext|>", "<|im_end|>"])
    native = qwen2_config(config, endoftext) | {
        "dtype": str(next(iter(converted.values())).dtype).removeprefix("torch.")
    }
    (out / "config.json").write_text(json.dumps(native, indent=2) + "\n")
    # The source's decoding fields (Qwen-7B-Chat: repetition penalty 1.1, top-p ...) are kept: the release's
    # teacher decodes with them (`teacher.decoding: release`); the special tokens are the native tokenizer's.
    source = src / "generation_config.json"
    fields = json.loads(source.read_text()) if source.is_file() else {}
    fields |= {"bos_token_id": endoftext, "eos_token_id": [endoftext, im_end], "pad_token_id": endoftext}
    (out / "generation_config.json").write_text(json.dumps(fields, indent=2) + "\n")
    tokenizer.save_pretrained(str(out))
    (out / "relm-conversion.json").write_text(
        json.dumps({"from": str(src), "converter": f"relm.models.qwen_v1 v{CONVERTER_VERSION}"}) + "\n"
    )
