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

import functools
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import torch

from relm.errors import RelmError
from relm.models.checkpoints import read_weights
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


PEFT_LORA = re.compile(
    r"^base_model\.model\.model\.layers\.(\d+)\.(self_attn|mlp)\.(\w+)\.lora_([AB])\.default\.weight$"
)
QKV = ("q_proj", "k_proj", "v_proj")


def peft_to_lora(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """PEFT names on the Qwen2 model -> BLSP's LoRA keys (the inverse of `lora_to_peft`): q, k and v must share
    one A (`lora.shared_qkv_a`; a state without k's and v's A, as a deduplicated one, shares q's), and their Bs
    stack into the fused `c_attn`'s."""
    back = {v: k for k, v in LORA_TARGETS.items()}
    layers: dict[str, dict[str, torch.Tensor]] = {}
    out: dict[str, torch.Tensor] = {}
    for key, tensor in state.items():
        m = PEFT_LORA.match(key)
        if not m:
            continue
        layer, block, module, ab = m.groups()
        base = f"{QWEN_PREFIX}transformer.h.{layer}."
        if module in QKV:
            layers.setdefault(layer, {})[f"{module}.{ab}"] = tensor
        else:
            out[f"{base}{back[f'{block}.{module}']}.lora_{ab}.default.weight"] = tensor
    for layer, parts in layers.items():
        base = f"{QWEN_PREFIX}transformer.h.{layer}.attn.c_attn."
        a = parts["q_proj.A"]
        if any(not torch.equal(parts.get(f"{p}.A", a), a) for p in QKV[1:]):
            raise RelmError(
                f"layer {layer}: q, k and v have different lora_A; BLSP's layout has one (lora.shared_qkv_a)"
            )
        out[f"{base}lora_A.default.weight"] = a
        out[f"{base}lora_B.default.weight"] = torch.cat([parts[f"{p}.B"] for p in QKV])
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


def read_checkpoint(folder: Path) -> tuple[dict, dict[str, torch.Tensor]]:
    """(config.json, flat state dict) of a BLSP-Emo folder (the release: `.bin` shards and their index)."""
    folder = Path(folder)
    config_file = folder / "config.json"
    if not config_file.is_file():
        raise RelmError(f"{folder}: no config.json (not a BLSP-Emo checkpoint folder)")
    return json.loads(config_file.read_text()), read_weights(folder)


@dataclass
class SpeechInit:
    """What a speech system starts from: the checkpoint's parts, its config and its identity."""

    parts: BlspParts
    config: dict
    identity: str
    name: str


@functools.lru_cache(maxsize=1)
def load(name: str) -> SpeechInit:
    """The registered checkpoint `name` (`blsp-emo-release`, `tiny-blsp-emo`), read once per process."""
    from relm.models.sources import resolve

    where = resolve(name)
    config, state = read_checkpoint(where.path)
    parts = split_checkpoint(state)
    if config.get("lora_scope", "audio") != "audio":
        raise RelmError(f"{where.path}: lora_scope {config.get('lora_scope')!r}; relm loads the released 'audio'")
    return SpeechInit(parts, config, where.identity, name)


def check_same_llm(init: SpeechInit, llm: torch.nn.Module, llm_name: str) -> None:
    """BLSP-Emo keeps its LLM frozen, so its Qwen weights must be the preset's LLM: compare every tensor."""
    own = llm.state_dict()
    wrong = [k for k, v in init.parts.llm.items() if k not in own or own[k].shape != v.shape]
    wrong = wrong or [k for k, v in init.parts.llm.items() if not torch.equal(own[k].to(v.dtype), v)]
    if wrong:
        raise RelmError(
            f"speech_init {init.name}: its LLM weights differ from the preset's llm {llm_name!r} "
            f"({len(wrong)} tensors, e.g. {wrong[0]}); BLSP-Emo starts from that LLM, frozen"
        )


def load_into(module, init: SpeechInit) -> list[str]:
    """Copy the checkpoint's LoRA, adapter (when its input is Whisper alone) and emotion head into a built
    `SystemLitModule`; returns what was loaded. A part whose shapes do not fit is one error naming it."""
    loaded = []
    own = dict(module.llm.named_parameters(remove_duplicate=False))  # a shared q/k/v lora_A under each name
    missing = [k for k in init.parts.lora if k not in own]
    if missing:
        raise RelmError(
            f"speech_init {init.name}: LoRA weight {missing[0]} has no place in the model (lora.target_modules "
            "must be the release's q/k/v/o/gate/up/down, scope audio)"
        )
    with torch.no_grad():
        for key, value in init.parts.lora.items():
            if own[key].shape != value.shape:
                raise RelmError(
                    f"speech_init {init.name}: {key} is {tuple(value.shape)}, the model's {tuple(own[key].shape)} "
                    "(lora.r must be the release's)"
                )
            own[key].copy_(value)
        loaded.append("lora")
        adapter = getattr(module, "adapter", None)
        if adapter is not None and not module.use_emotion:
            mine = adapter.state_dict()
            if {k: tuple(v.shape) for k, v in mine.items()} != {
                k: tuple(v.shape) for k, v in init.parts.adapter.items()
            }:
                raise RelmError(
                    f"speech_init {init.name}: its adapter does not fit this one (speech features, adapter.inner_dim "
                    "and the LLM width must be the release's)"
                )
            adapter.load_state_dict({k: v.to(mine[k].dtype) for k, v in init.parts.adapter.items()})
            loaded.append("adapter")
        head = init.parts.emotion_head
        if head is not None and getattr(module, "ser_head", None) is not None:
            module.ser_head.weight.copy_(head.to(module.ser_head.weight.dtype))  # same label order (§7)
            loaded.append("ser_head")
    return loaded
