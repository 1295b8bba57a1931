"""The released BLSP-Emo checkpoint (`cwang621/blsp-emo`) split into relm's native modules.

Layout and semantics: `../shared/reference/blsp-emo-checkpoint.md` §1-5. One flat state dict (two bf16
`.bin` shards) holds four models; this module maps each onto the module relm builds, with no remote code:

- `whisper_model.*` -> transformers `WhisperEncoder` keys, unchanged (§2);
- `adapter.*` (BLSP's Subsampler) -> `relm.models.adapter.SubsamplingAdapter`: `subsampler.conv_layers.i`
  -> `convs.i`, `fc1`/`fc2` -> `fc1`/`fc2`, `speech_ln` -> `norm` (§3);
- `qwen_model.model.*` -> `Qwen2ForCausalLM` through `relm.models.qwen_v1.convert_state_dict` (§5);
- the masked partial LoRA (r 16, alpha 16, 5 Linears per block) -> PEFT names on that Qwen2: the fused
  `c_attn`'s A is shared by q, k and v and its B splits into thirds; `attn.c_proj` -> `o_proj`,
  `w2` -> `gate_proj`, `w1` -> `up_proj`, `mlp.c_proj` -> `down_proj` (§5, "LoRA mapping");
- `hidden2emotion.weight` [5, H], the bias-free emotion head on the masked mean of the adapter output (§7).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import torch

from relm.errors import RelmError
from relm.models.qwen_v1 import convert_state_dict

QWEN_PREFIX = "qwen_model.model."
LORA = re.compile(
    r"^qwen_model\.model\.transformer\.h\.(\d+)\.(attn\.c_attn|attn\.c_proj|mlp\.w1|mlp\.w2|mlp\.c_proj)\.lora_([AB])\.default\.weight$"
)
LORA_TARGETS = {
    "attn.c_proj": "self_attn.o_proj",
    "mlp.w2": "mlp.gate_proj",
    "mlp.w1": "mlp.up_proj",
    "mlp.c_proj": "mlp.down_proj",
}
ADAPTER = {
    "adapter.fc1.weight": "fc1.weight",
    "adapter.fc2.weight": "fc2.weight",
    "adapter.speech_ln.weight": "norm.weight",
    "adapter.speech_ln.bias": "norm.bias",
}


@dataclass
class BlspParts:
    """The checkpoint's four models, keyed for relm's modules."""

    whisper: dict[str, torch.Tensor] = field(default_factory=dict)
    adapter: dict[str, torch.Tensor] = field(default_factory=dict)
    llm: dict[str, torch.Tensor] = field(default_factory=dict)
    lora: dict[str, torch.Tensor] = field(default_factory=dict)  # PEFT names on the Qwen2 model
    emotion_head: torch.Tensor | None = None


def lora_to_peft(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """BLSP's LoRA keys -> `base_model.model.model.layers.N.<module>.lora_{A,B}.default.weight`."""
    out: dict[str, torch.Tensor] = {}
    for key, tensor in state.items():
        m = LORA.match(key)
        if not m:
            continue
        layer, module, ab = m.groups()
        base = f"base_model.model.model.layers.{layer}."
        if module == "attn.c_attn":
            if ab == "A":  # one A, copied: q, k and v see the same down-projection
                for part in ("q_proj", "k_proj", "v_proj"):
                    out[f"{base}self_attn.{part}.lora_A.default.weight"] = tensor.clone()
            else:
                if tensor.shape[0] % 3:
                    raise RelmError(f"{key}: {tensor.shape[0]} rows do not split into q, k and v")
                for part, chunk in zip(("q_proj", "k_proj", "v_proj"), tensor.chunk(3, dim=0)):
                    out[f"{base}self_attn.{part}.lora_B.default.weight"] = chunk.clone()
        else:
            out[f"{base}{LORA_TARGETS[module]}.lora_{ab}.default.weight"] = tensor
    return out


def split_checkpoint(state: dict[str, torch.Tensor]) -> BlspParts:
    """Every key of the checkpoint goes to exactly one part; an unknown key is an error naming it."""
    parts = BlspParts()
    for key, tensor in state.items():
        if key.startswith("whisper_model."):
            parts.whisper[key.removeprefix("whisper_model.")] = tensor
        elif key in ADAPTER:
            parts.adapter[ADAPTER[key]] = tensor
        elif m := re.match(r"^adapter\.subsampler\.conv_layers\.(\d+)\.(weight|bias)$", key):
            parts.adapter[f"convs.{m.group(1)}.{m.group(2)}"] = tensor
        elif key == "hidden2emotion.weight":
            parts.emotion_head = tensor
        elif not key.startswith(QWEN_PREFIX):
            raise RelmError(f"{key}: not a BLSP-Emo weight relm knows how to load")
    parts.llm = convert_state_dict(state, prefix=QWEN_PREFIX)
    parts.lora = lora_to_peft(state)
    lora_keys = sum(1 for k in state if ".lora_" in k)
    if lora_keys and not parts.lora:
        raise RelmError("the checkpoint's LoRA keys match none of c_attn, c_proj, w1, w2 (lora_scope 'audio')")
    return parts
