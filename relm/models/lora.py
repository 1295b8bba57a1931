"""LoRA on the LLM (peft): BLSP's shared q/k/v `lora_A`, audio-scoped LoRA, and the lean forward.

Partial LoRA (BLSP's `lora_scope="audio"`) multiplies every LoRA branch by a per-position mask that is 1 at speech
positions: a forward hook on each `lora_B` multiplies its output, or, with `train.lean_lora`, `LeanLoraLinear`
multiplies its rank-r input (the same numbers: `lora_B` has no bias) and runs fewer kernels per call.
"""

from __future__ import annotations

from typing import Any

import torch
from peft.tuners.lora.layer import Linear as PeftLoraLinear
from torch import nn

from relm.config import LoraCfg
from relm.errors import RelmError

HFModel = Any  # a transformers PreTrainedModel or its peft wrapper

TARGETS = {
    "llama": ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
    "qwen2": ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
    "qwen": ["c_attn", "c_proj", "w1", "w2"],
}


def add_lora(model: HFModel, cfg: LoraCfg) -> HFModel:
    from peft import LoraConfig, get_peft_model

    targets = cfg.target_modules or TARGETS.get(model.config.model_type)
    if not targets:
        raise RelmError(
            f"no default LoRA targets for model type {model.config.model_type!r}; set lora.target_modules in the preset"
        )
    config = LoraConfig(
        r=cfg.r,
        lora_alpha=cfg.alpha,
        lora_dropout=cfg.dropout,
        target_modules=targets,
        bias="none",
        task_type="CAUSAL_LM",
    )
    model = get_peft_model(model, config)
    if cfg.shared_qkv_a:
        share_qkv_lora_a(model)
    return model


class SharedDropout(nn.Module):
    """One dropout mask for a layer's q, k and v LoRA inputs (BLSP's one dropout before the fused `c_attn`'s
    LoRA). Qwen2 calls q, k and v in turn on the same hidden states; peft may cast each call's input anew, so the
    mask, not the tensor, is shared: the first of every `sharers` calls draws it, the others reuse it."""

    def __init__(self, p: float, sharers: int):
        super().__init__()
        self.p, self.sharers = p, sharers
        self._mask: torch.Tensor | None = None
        self._served = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return x
        if self.sharers == 1:  # nothing to share (the lean forward reuses the product): no state across calls
            return nn.functional.dropout(x, self.p, True)
        if self._mask is None or self._served >= self.sharers or self._mask.shape != x.shape:
            self._mask = torch.empty_like(x).bernoulli_(1 - self.p).div_(1 - self.p)
            self._served = 0
        self._served += 1
        out = x * self._mask.to(x.dtype)
        if self._served == self.sharers:  # every sharer has it: hold nothing past this layer
            self._mask = None
        return out


def share_qkv_lora_a(model: HFModel) -> int:
    """Make each attention layer's q, k and v LoRA share one `lora_A` Linear (one Parameter, registered under q's
    name) and one dropout mask, as BLSP's LoRA on Qwen v1's fused `c_attn` has; returns the layers shared."""
    shared = 0
    for module in model.modules():
        parts: list[Any] = [getattr(module, n, None) for n in ("q_proj", "k_proj", "v_proj")]
        if not all(hasattr(p, "lora_A") for p in parts):
            continue
        q = parts[0]
        for adapter in q.lora_A:
            dropout = SharedDropout(getattr(q.lora_dropout[adapter], "p", 0.0), sharers=3)
            for p in parts:
                p.lora_A[adapter] = q.lora_A[adapter]
                p.lora_dropout[adapter] = dropout
        shared += 1
    if shared == 0:
        raise RelmError("lora.shared_qkv_a: no attention layer with q/k/v LoRA (lora.target_modules needs all three)")
    return shared


class PositionMask:
    """Holds the current (B, T) speech-position mask for partial LoRA hooks.

    A forward that runs no speech position (the prompt prefix, every generation step after the prefill) would
    multiply each LoRA branch by zero: there the branches are switched off instead (peft's `_disable_adapters`
    flag, set directly so that `requires_grad` is left alone), which gives the same outputs without computing
    them. On a 7B LLM that is 224 LoRA branches per decoding step."""

    def __init__(self, lora_layers: list[nn.Module]):
        self.lora_layers = lora_layers
        self.skip_unmasked = True  # False: compute the zeroed branches anyway (the previous method, benchmarks)
        self._off = False
        self.mask = None

    @property
    def mask(self) -> torch.Tensor | None:
        return self._mask

    @mask.setter
    def mask(self, value: torch.Tensor | None) -> None:
        """Set before each forward; the (B, T, 1) factor the lean forward multiplies by is made here, once, in the
        autocast dtype when autocast is on (the branch's dtype there)."""
        self._mask = value
        self._factor = None
        if value is not None:
            on = torch.is_autocast_enabled(value.device.type)
            self._factor = value.unsqueeze(-1).to(torch.get_autocast_dtype(value.device.type) if on else value.dtype)

    def factor(self, h: torch.Tensor) -> torch.Tensor | float:
        """What a LoRA branch's rank-r product `h` (B, T, r) is multiplied by: the mask, or 0 in a forward whose
        positions are not the mask's (generation steps after the prompt: text positions only)."""
        if self._factor is None or self._factor.shape[1] != h.shape[1]:
            return 0.0
        return self._factor if self._factor.dtype == h.dtype else self._factor.to(h.dtype)

    def hook(self, module, inputs, output):
        if self.mask is None or self.mask.shape[1] != output.shape[1]:
            return output * 0  # generation steps after the prompt: text positions only
        return output * self.mask.unsqueeze(-1).to(output.dtype)

    def before_forward(self, module, args, kwargs):
        """A pre-hook on the LLM's decoder: LoRA off for a forward without speech positions."""
        x = kwargs.get("inputs_embeds")
        if x is None:
            x = kwargs.get("input_ids", args[0] if args else None)
        off = self.skip_unmasked and (self.mask is None or x is None or self.mask.shape[1] != x.shape[1])
        if off != self._off:
            for layer in self.lora_layers:
                layer._disable_adapters = off
            self._off = off


def restrict_lora_to_speech(model: HFModel, lean: bool = False) -> PositionMask:
    """Audio-scoped LoRA: a hook on every `lora_B` output, or (`lean`) the mask applied by `LeanLoraLinear`."""
    from peft.tuners.lora import LoraLayer

    layers: list[nn.Module] = [m for m in model.modules() if isinstance(m, LoraLayer)]  # type: ignore[misc]
    pm = PositionMask(layers)
    n = 0
    for name, module in model.named_modules():
        if name.split(".")[-2:-1] == ["lora_B"] and isinstance(module, nn.Linear):
            if not lean:
                module.register_forward_hook(pm.hook)
            n += 1
    if n == 0:
        raise RelmError("partial LoRA: no lora_B layers found")
    model.get_base_model().get_decoder().register_forward_pre_hook(pm.before_forward, with_kwargs=True)
    return pm


class SharedProduct:
    """q, k and v of one layer run on the same hidden states, with one `lora_A` and one dropout mask
    (`lora.shared_qkv_a`): the first computes the masked rank-r product, the other two reuse it."""

    def __init__(self, sharers: int):
        self.sharers = sharers
        self._x: torch.Tensor | None = None
        self._h: torch.Tensor | None = None
        self._left = 0

    def take(self, x: torch.Tensor) -> torch.Tensor | None:
        if not self._left or self._x is not x:
            return None
        h = self._h
        self._left -= 1
        if not self._left:  # every sharer has it: hold nothing past this layer
            self._x = self._h = None
        return h

    def put(self, x: torch.Tensor, h: torch.Tensor) -> None:
        self._x, self._h, self._left = x, h, self.sharers - 1


class LeanLoraLinear(PeftLoraLinear):
    """peft's LoRA Linear, the same outputs with fewer kernels per call (`train.lean_lora`): the speech mask
    multiplies the rank-r product before `lora_B` (not `lora_B`'s wide output), the input is not cast to the
    adapter's dtype where autocast casts it anyway, a scaling of 1 is not multiplied, and q, k and v reuse one
    product where they share `lora_A`. Other cases (merged, mixed adapters, variants) run peft's forward."""

    position_mask: PositionMask | None = None
    shared: SharedProduct | None = None

    def forward(self, x: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
        if self.disable_adapters or self.merged or self.lora_variant or "adapter_names" in kwargs:
            return super().forward(x, *args, **kwargs)
        result = self.base_layer(x, *args, **kwargs)
        for name in self.active_adapters:
            if name not in self.lora_A:
                continue
            h = self.shared.take(x) if self.shared is not None else None
            if h is None:
                inputs, weight = x, self.lora_A[name].weight
                assert isinstance(weight, torch.Tensor)
                if x.dtype != weight.dtype and not torch.is_autocast_enabled(x.device.type):
                    inputs = x.to(weight.dtype)
                h = self.lora_A[name](self.lora_dropout[name](inputs))
                if self.position_mask is not None:
                    h = h * self.position_mask.factor(h)
                if self.shared is not None:
                    self.shared.put(x, h)
            out = self.lora_B[name](h)
            if self.scaling[name] != 1:
                out = out * self.scaling[name]
            result = result + out if out.dtype == result.dtype else (result + out).to(result.dtype)
        return result


def make_lean(model: HFModel, position_mask: PositionMask | None) -> int:
    """Turn every peft LoRA Linear of `model` into a `LeanLoraLinear` (same parameters and names); returns how many."""
    n = 0
    for module in model.modules():
        if type(module) is PeftLoraLinear:
            module.__class__ = LeanLoraLinear
            lean: Any = module
            lean.position_mask = position_mask
            n += 1
        parts: list[Any] = [getattr(module, p, None) for p in ("q_proj", "k_proj", "v_proj")]
        if all(hasattr(p, "lora_A") for p in parts) and all(
            parts[0].lora_A[a] is p.lora_A[a] for p in parts[1:] for a in parts[0].lora_A
        ):
            shared = SharedProduct(sharers=3)
            for p in parts:
                p.shared = shared
            for dropout in parts[0].lora_dropout.values():
                if isinstance(dropout, SharedDropout):
                    dropout.sharers = 1  # only the first of q, k, v draws: a fresh mask each call, as before
    if n == 0:
        raise RelmError("train.lean_lora: the LLM has no peft LoRA Linear")
    return n
