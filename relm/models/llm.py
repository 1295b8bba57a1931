"""The LLM, its tokenizer, chat prompts with a speech span, and the response loss (LoRA: `relm.models.lora`).

Prompts are rendered with the tokenizer's chat template around a placeholder, then split
so speech embeddings can be spliced in (`PromptParts`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from relm.config import LLMCfg
from relm.errors import RelmError

Batch = Sequence[Mapping[str, Any]]  # a batch of items (`relm.bench.records.Item`), each with its `task`
HFModel = Any  # a transformers PreTrainedModel or its peft wrapper: its submodules are known only at run time

SPEECH = "<|speech|>"
CHATML = (
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + "
    "'<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)


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


def next_token_loss(llm: HFModel, b: dict, target_logits_only: bool = True, group_size: int = 0) -> torch.Tensor:
    """Mean next-token cross-entropy over the target tokens (`b["labels"]`, -100 elsewhere): the loss `labels=`
    gives. `target_logits_only` runs the LM head only where a target token follows, since the prompt's positions
    need no logits over the whole vocabulary; else the LLM's own `labels=` path (the reference, in the tests).

    `group_size` > 0: the rows are taken in consecutive groups of that many, and the loss is the mean over groups
    of each group's token mean: a batch of 16 in groups of 2 has the objective of 8 accumulated micro-batches of 2
    (Lightning averages their token means), in one forward."""
    if not target_logits_only:
        if group_size:
            raise RelmError("train.loss_group_size needs the target-logits loss")
        return llm(inputs_embeds=b["inputs_embeds"], attention_mask=b["attention_mask"], labels=b["labels"]).loss
    base = llm.get_base_model() if hasattr(llm, "get_base_model") else llm
    hidden = base.get_decoder()(inputs_embeds=b["inputs_embeds"], attention_mask=b["attention_mask"], use_cache=False)
    labels = b["labels"][:, 1:]
    keep = labels != -100
    logits = base.get_output_embeddings()(hidden.last_hidden_state[:, :-1][keep])
    if not group_size:
        return nn.functional.cross_entropy(logits.float(), labels[keep])
    per_token = nn.functional.cross_entropy(logits.float(), labels[keep], reduction="none")
    n_rows = labels.shape[0]
    row = torch.arange(n_rows, device=labels.device)
    group = row // group_size
    token_sums = per_token.new_zeros(n_rows).index_add_(0, row[:, None].expand_as(labels)[keep], per_token)
    sums = per_token.new_zeros(-(-n_rows // group_size)).index_add_(0, group, token_sums)
    counts = per_token.new_zeros(len(sums)).index_add_(0, group, keep.sum(1).to(per_token.dtype))
    scored = counts > 0  # a group without target tokens does not count (no boolean indexing: no host sync)
    return (sums / counts.clamp_min(1)).sum() / scored.sum()
