"""The LLM, its tokenizer, LoRA (peft), and chat prompts with a speech span.

Prompts are rendered with the tokenizer's chat template around a placeholder, then split
so speech embeddings can be spliced in (`PromptParts`). Partial LoRA (BLSP's
`lora_scope="audio"`) multiplies every LoRA branch's output by a per-position mask that
is 1 at speech positions, via forward hooks on peft's `lora_B` layers.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from relm.config import LLMCfg, LoraCfg
from relm.errors import RelmError

Batch = Sequence[Mapping[str, Any]]  # a batch of items (`relm.bench.records.Item`), each with its `task`
HFModel = Any  # a transformers PreTrainedModel or its peft wrapper: its submodules are known only at run time

SPEECH = "<|speech|>"
CHATML = (
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + "
    "'<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)
TARGETS = {
    "llama": ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
    "qwen2": ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
    "qwen": ["c_attn", "c_proj", "w1", "w2"],
}


def tiny_tokenizer(texts: list[str] | None = None, vocab_size: int = 600):
    """A byte-level BPE tokenizer trained here, with ChatML specials (smoke preset)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    from relm.data.synth import load_sentences

    corpus = (texts or []) + load_sentences() + ["neutral sad angry happy surprise I am sorry to hear that."] * 5
    # The BPE trainer's parallel merge counting breaks ties differently run to run; train serially.
    previous = os.environ.get("TOKENIZERS_PARALLELISM")
    os.environ["TOKENIZERS_PARALLELISM"] = "false"
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    try:
        tok.train_from_iterator(
            corpus,
            trainers.BpeTrainer(
                show_progress=False,
                vocab_size=vocab_size,
                special_tokens=specials,
                initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
            ),
        )
    finally:
        if previous is None:
            os.environ.pop("TOKENIZERS_PARALLELISM", None)
        else:
            os.environ["TOKENIZERS_PARALLELISM"] = previous
    out = PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token="<|im_start|>", eos_token="<|im_end|>", pad_token="<|endoftext|>"
    )
    out.chat_template = CHATML
    return out


def load_llm(cfg: LLMCfg, device: torch.device | None = None):
    """(model, tokenizer, identity) for a registry name; a `random` model is a random Qwen2 built from `cfg.tiny`,
    in `cfg.dtype`, on `device` when given (a 7B-wide stand-in is built where it runs, not in host float32)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer, Qwen2Config, Qwen2ForCausalLM

    from relm.models.sources import resolve

    res = resolve(cfg.model)
    if res.source == "random":
        torch.manual_seed(0)
        tok = tiny_tokenizer()
        config = Qwen2Config(
            vocab_size=len(tok),
            tie_word_embeddings=True,
            pad_token_id=tok.pad_token_id,
            eos_token_id=tok.eos_token_id,
            bos_token_id=tok.bos_token_id,
            **cfg.tiny,
        )
        dtype = getattr(torch, cfg.dtype)
        if dtype == torch.float32 and device in (None, torch.device("cpu")):
            return Qwen2ForCausalLM(config), tok, f"{res.identity}-qwen2"  # the tiny presets' fixed model
        with torch.device(device or "cpu"):
            model = Qwen2ForCausalLM._from_config(config, dtype=dtype)
        return model, tok, f"{res.identity}-qwen2-{cfg.dtype}-{torch.device(device or 'cpu').type}"
    kw = {"trust_remote_code": cfg.trust_remote_code}
    tok = AutoTokenizer.from_pretrained(res.path, **kw)
    model = AutoModelForCausalLM.from_pretrained(res.path, dtype=getattr(torch, cfg.dtype), **kw)
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    if tok.chat_template is None:
        tok.chat_template = CHATML
    return model, tok, res.identity


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
        self.mask: torch.Tensor | None = None
        self.lora_layers = lora_layers
        self.skip_unmasked = True  # False: compute the zeroed branches anyway (the previous method, benchmarks)
        self._off = False

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


def restrict_lora_to_speech(model: HFModel) -> PositionMask:
    from peft.tuners.lora import LoraLayer

    layers: list[nn.Module] = [m for m in model.modules() if isinstance(m, LoraLayer)]  # type: ignore[misc]
    pm = PositionMask(layers)
    n = 0
    for name, module in model.named_modules():
        if name.split(".")[-2:-1] == ["lora_B"] and isinstance(module, nn.Linear):
            module.register_forward_hook(pm.hook)
            n += 1
    if n == 0:
        raise RelmError("partial LoRA: no lora_B layers found")
    model.get_base_model().get_decoder().register_forward_pre_hook(pm.before_forward, with_kwargs=True)
    return pm


@dataclass
class PromptParts:
    """Token ids before and after the speech span (or the transcript, for text systems)."""

    prefix: list[int]
    suffix: list[int]


def prompt_parts(tokenizer, system: str, instruction: str) -> PromptParts:
    messages = [{"role": "system", "content": system}, {"role": "user", "content": instruction + SPEECH}]
    text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    if text.count(SPEECH) != 1:
        raise RelmError("chat template lost the speech placeholder")
    before, after = text.split(SPEECH)
    enc = lambda s: tokenizer(s, add_special_tokens=False)["input_ids"]  # noqa: E731
    return PromptParts(enc(before), enc(after))


def end_of_turn_ids(tokenizer) -> list[int]:
    return (
        [tokenizer.convert_tokens_to_ids("<|im_end|>")]
        if "<|im_end|>" in tokenizer.get_vocab()
        else [tokenizer.eos_token_id]
    )


def target_end_ids(tokenizer, style: str) -> list[int]:
    """What closes a complete training target: `<|im_end|>`, or the release's `<|im_end|>\\n<|endoftext|>`."""
    if style == "release" and {"<|im_end|>", "<|endoftext|>"} <= tokenizer.get_vocab().keys():
        return tokenizer("<|im_end|>\n<|endoftext|>", add_special_tokens=False)["input_ids"]
    return end_of_turn_ids(tokenizer)


def stop_ids(tokenizer, style: str) -> list[int]:
    """Tokens that end an answer: `<|im_end|>`, or the release's `<|im_end|>`, `<|im_start|>`, `<|endoftext|>`."""
    if style != "release":
        return end_of_turn_ids(tokenizer)
    vocab = tokenizer.get_vocab()
    found = [vocab[t] for t in ("<|im_end|>", "<|im_start|>", "<|endoftext|>") if t in vocab]
    return found or end_of_turn_ids(tokenizer)


def next_token_loss(llm: HFModel, b: dict, target_logits_only: bool = True) -> torch.Tensor:
    """Mean next-token cross-entropy over the target tokens (`b["labels"]`, -100 elsewhere): the loss `labels=`
    gives. `target_logits_only` runs the LM head only where a target token follows, since the prompt's positions
    need no logits over the whole vocabulary; else the LLM's own `labels=` path (the reference, in the tests)."""
    if not target_logits_only:
        return llm(inputs_embeds=b["inputs_embeds"], attention_mask=b["attention_mask"], labels=b["labels"]).loss
    base = llm.get_base_model() if hasattr(llm, "get_base_model") else llm
    hidden = base.get_decoder()(inputs_embeds=b["inputs_embeds"], attention_mask=b["attention_mask"])
    labels = b["labels"][:, 1:]
    keep = labels != -100
    logits = base.get_output_embeddings()(hidden.last_hidden_state[:, :-1][keep])
    return nn.functional.cross_entropy(logits.float(), labels[keep])
