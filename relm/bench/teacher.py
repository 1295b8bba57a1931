"""Step 1: the frozen text LLM writes an expected response from transcript + gold emotion.

The preset states the prompt (`teacher.system`, `teacher.user`, `teacher.examples`): the
paper's continuation prompt (paper), or worked examples (cpu), or a fixed reply per emotion
(`template`, smoke's random models). Outputs go through the paper's cleaning rules (`clean`);
a dropped output leaves its utterance without a response target (counted). Results are
cached per (teacher identity, prompt, decoding) and per (transcript, emotion): resumable, and
the same sentence in the same emotion is generated once.
"""

from __future__ import annotations

import json
import re

import pandas as pd
import torch
from tqdm import tqdm

from relm.bench.stages import Stage
from relm.config import Preset, TeacherCfg
from relm.io import atomic_write_json
from relm.keys import content_key
from relm.models.llm import load_llm
from relm.runtime import resolve_device

TEACHER_VERSION = 2  # bump when generation changes what it produces (v2: raw outputs cached, cleaned on read)
DROP_PREFIXES = ("I'm sorry, but I cannot", "I'm sorry, but I'm not sure")
DROP_CONTAINS = ("as an ai language model", "i'm sorry, but i")


def messages_for(cfg: TeacherCfg, text: str, emotion: str) -> list[dict]:
    msgs = [{"role": "system", "content": cfg.system}]
    for emo, said, reply in cfg.examples:
        msgs += [
            {"role": "user", "content": cfg.user.format(emotion=emo, text=said)},
            {"role": "assistant", "content": reply},
        ]
    return msgs + [{"role": "user", "content": cfg.user.format(emotion=emotion, text=text)}]


def clean(text: str, truncated: bool) -> str | None:
    """The paper's cleaning rules; also trims a reply cut mid-sentence at the token limit."""
    text = text.strip().strip('"').strip()
    if not text or text.startswith(DROP_PREFIXES) or "I'm not sure what you" in text:
        return None
    if any(p in text.lower() for p in DROP_CONTAINS):
        return None
    text = text.split("\n")[0].strip().strip('"').strip()  # the first line, without its quotes
    if truncated:
        ends = [m.end() for m in re.finditer(r"[.!?](\s|$)", text)]
        text = text[: ends[-1]].strip() if ends else text
    return text or None


class Teacher:
    def __init__(self, cfg: TeacherCfg, model, tokenizer, identity: str):
        self.cfg, self.model, self.tok, self.identity = cfg, model, tokenizer, identity
        prompt = cfg.templates if cfg.prompt == "template" else messages_for(cfg, "{text}", "{emotion}")
        self.key = content_key(
            identity, cfg.prompt, cfg.max_new_tokens, cfg.repetition_penalty, prompt, TEACHER_VERSION
        )
        self.path = Stage.TEACHER.folder() / f"{self.key}.json"
        self.cache: dict = json.loads(self.path.read_text()) if self.path.is_file() else {}
        if self.tok is not None:
            self.tok.padding_side = "left"

    @staticmethod
    def item_key(text: str, emotion: str) -> str:
        return content_key(emotion, text)

    @torch.no_grad()
    def _generate(self, pairs: list[tuple[str, str]]) -> list[tuple[str, bool]]:
        if self.cfg.prompt == "template":
            return [(self.cfg.templates[e], False) for _, e in pairs]
        prompts = [
            self.tok.apply_chat_template(messages_for(self.cfg, t, e), tokenize=False, add_generation_prompt=True)
            for t, e in pairs
        ]
        enc = self.tok(prompts, return_tensors="pt", padding=True, add_special_tokens=False).to(self.model.device)
        self.model.eval()
        out = self.model.generate(
            **enc,
            max_new_tokens=self.cfg.max_new_tokens,
            min_new_tokens=1,
            do_sample=False,
            num_beams=1,
            repetition_penalty=self.cfg.repetition_penalty,
            pad_token_id=self.tok.pad_token_id,
        )
        new = out[:, enc["input_ids"].shape[1] :]
        texts = self.tok.batch_decode(new, skip_special_tokens=True)
        eos = {self.tok.eos_token_id, self.tok.convert_tokens_to_ids("<|im_end|>")}
        return [(t, not any(int(x) in eos for x in row)) for t, row in zip(texts, new)]

    def responses(self, pairs: list[tuple[str, str]], progress: bool = True) -> dict[str, tuple[str | None, bool]]:
        """{item_key: (cleaned response or None, whether generation hit the token limit)} for (transcript, emotion)."""
        todo = sorted({(t, e) for t, e in pairs if self.item_key(t, e) not in self.cache})
        bs = self.cfg.batch_size
        for i in tqdm(range(0, len(todo), bs), desc="step 1: teacher", unit="batch", disable=not progress):
            batch = todo[i : i + bs]
            for (t, e), (raw, truncated) in zip(batch, self._generate(batch)):
                self.cache[self.item_key(t, e)] = {"raw": raw, "truncated": truncated}
            atomic_write_json(self.path, self.cache)  # resumable after every batch
        # Raw outputs are cached and cleaned here, so a change to the cleaning rules always takes effect.
        out = {}
        for t, e in pairs:
            entry = self.cache[self.item_key(t, e)]
            out[self.item_key(t, e)] = (clean(entry["raw"], entry["truncated"]), bool(entry["truncated"]))
        return out


def teacher_targets(
    preset: Preset, df: pd.DataFrame, progress: bool, force: bool
) -> tuple[dict[str, str | None], set[str], dict]:
    """({utt_id: expected response or None}, {utt_ids whose generation hit the limit}, info) for the manifest."""
    cfg = preset.teacher
    if cfg.prompt == "template":
        llm, tok, identity = None, None, "template"
    else:
        llm_cfg = preset.llm if cfg.model == preset.llm.model else type(preset.llm)(model=cfg.model)
        llm, tok, identity = load_llm(llm_cfg)
        llm = llm.to(resolve_device(preset))
    teacher = Teacher(cfg, llm, tok, identity)
    if force:
        teacher.cache = {}
    pairs = list(zip(df["transcript"].fillna(""), df["emotion"]))
    out = teacher.responses(pairs, progress=progress)
    targets = {u: out[teacher.item_key(t, e)][0] for u, (t, e) in zip(df["utt_id"], pairs)}
    # As released: a target whose generation hit the limit gets no end-of-turn token, so models do not learn
    # to stop wherever the teacher was cut off.
    cut = {u for u, (t, e) in zip(df["utt_id"], pairs) if out[teacher.item_key(t, e)][1]}
    dropped = sum(v is None for v in targets.values())
    return (
        targets,
        cut,
        {
            "identity": identity,
            "hit_token_limit": len(cut),
            "prompt": cfg.prompt,
            "cache_key": teacher.key,
            "dropped_by_cleaning": dropped,
            "n": len(targets),
        },
    )
