"""Step 1: the frozen text LLM writes an expected response from transcript + gold emotion.

The preset states the prompt (`teacher.system`, `teacher.user`, `teacher.examples`): the
paper's continuation prompt (paper), or worked examples (cpu), or a fixed reply per emotion
(`template`, smoke's random models). Decoding (`teacher.decoding`) is the release's (the model folder's
generation_config.json, only greedy and the lengths overridden) or relm's (the file's repetition penalty
replaced by the preset's). Outputs go through the cleaning rules (`teacher.clean`: the release's five
drop rules, or relm's, which also trim the reply); a dropped output leaves its utterance without a
response target (counted), and so does an empty transcript. Raw outputs are one cache entry
(`relm.cache`) per (teacher identity, dtype, prompt, every effective decoding field) and set of (transcript,
emotion) pairs, `<cache>/teacher/<key>/responses.json`; the same sentence in the same emotion is
generated once. Until the entry is complete, each finished batch is appended to
`<cache>/partial/teacher-<key>.jsonl`, so a killed sweep resumes where it stopped.
"""

from __future__ import annotations

import copy
import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd
import torch
from tqdm import tqdm

from relm.bench.stages import Stage
from relm.bench.teacher_decoding import clean, decoding_record, generation_config, release_clean
from relm.cache import CacheEntry, load_or_compute
from relm.config import Preset, TeacherCfg
from relm.io import atomic_write_json
from relm.keys import content_key
from relm.models.llm import load_llm
from relm.paths import cache_dir
from relm.results import TeacherInfo

if TYPE_CHECKING:
    from transformers import DynamicCache

RESPONSES_FILE = "responses.json"
# Bump when generation changes what it produces (v3: the key holds every decoding field and the dtype).
TEACHER_VERSION = 3


def messages_for(cfg: TeacherCfg, text: str, emotion: str) -> list[dict]:
    msgs = [{"role": "system", "content": cfg.system}]
    for emo, said, reply in cfg.examples:
        msgs += [
            {"role": "user", "content": cfg.user.format(emotion=emo, text=said)},
            {"role": "assistant", "content": reply},
        ]
    return msgs + [{"role": "user", "content": cfg.user.format(emotion=emotion, text=text)}]


class Teacher:
    def __init__(self, cfg: TeacherCfg, model, tokenizer, identity: str):
        self.cfg, self.model, self.tok, self.identity = cfg, model, tokenizer, identity
        prompt = cfg.templates if cfg.prompt == "template" else messages_for(cfg, "{text}", "{emotion}")
        self.generation = generation_config(cfg, model) if model is not None else None
        self.decoding = decoding_record(self.generation)
        self.dtype = str(next(model.parameters()).dtype).removeprefix("torch.") if model is not None else "none"
        self.key = content_key(
            identity,
            cfg.prompt,
            self.decoding,
            self.dtype,
            prompt,
            TEACHER_VERSION,
            *([cfg.openers] if cfg.openers else []),
        )
        self.cache: dict = {}
        if self.tok is not None:
            self.tok.padding_side = "left"

    @staticmethod
    def item_key(text: str, emotion: str) -> str:
        return content_key(emotion, text)

    def entry(self, pairs: list[tuple[str, str]]) -> CacheEntry:
        return CacheEntry(Stage.TEACHER.value, content_key(self.key, sorted({self.item_key(t, e) for t, e in pairs})))

    def _prompt_ids(self, pairs: list[tuple[str, str]]) -> list[list[int]]:
        prompts = [
            self.tok.apply_chat_template(messages_for(self.cfg, t, e), tokenize=False, add_generation_prompt=True)
            + self.cfg.openers.get(e, "")
            for t, e in pairs
        ]
        return self.tok(prompts, add_special_tokens=False)["input_ids"]

    def _prefix_cache(self, ids: list[list[int]]) -> tuple[int, DynamicCache | None]:
        """(P, KV cache of the first P tokens): the longest token prefix every prompt shares (the system
        prompt and the worked examples), computed once instead of once per item."""
        length = min(len(x) for x in ids) - 1  # at least one token of each prompt is left to run
        first = ids[0]
        for other in ids[1:]:
            length = next((i for i in range(length) if other[i] != first[i]), length)
        if length < 1:
            return 0, None
        with torch.no_grad():
            out = self.model(torch.tensor([first[:length]], device=self.model.device), use_cache=True)
        return length, out.cache

    @torch.no_grad()
    def _generate(
        self,
        pairs: list[tuple[str, str]],
        prefix: tuple[int, DynamicCache | None] = (0, None),
        sampling: dict | None = None,
    ) -> list[tuple[str, bool]]:
        """Greedy replies for a batch (or sampled ones, with `sampling` = generate's temperature/top_p); with
        `prefix`, its shared tokens come from the cache, not recomputed."""
        if self.cfg.prompt == "template":
            return [(self.cfg.templates[e], False) for _, e in pairs]
        ids = self._prompt_ids(pairs)
        shared, cache = prefix
        rest = [x[shared:] for x in ids]
        width = max(len(x) for x in rest)
        pad = self.tok.pad_token_id
        # The shared prefix, then each item's own tokens left-padded: pads sit between the two, masked out.
        input_ids = torch.tensor([ids[0][:shared] + [pad] * (width - len(x)) + x for x in rest])
        mask = torch.tensor([[1] * shared + [0] * (width - len(x)) + [1] * len(x) for x in rest])
        kwargs = {}
        if cache is not None:
            batch_cache = copy.deepcopy(cache)
            batch_cache.batch_repeat_interleave(len(pairs))
            kwargs["cache"] = batch_cache
        self.model.eval()
        out = self.model.generate(
            input_ids=input_ids.to(self.model.device),
            attention_mask=mask.to(self.model.device),
            generation_config=self.generation,
            pad_token_id=pad,
            **kwargs,
            **({"do_sample": True} | sampling if sampling else {}),
        )
        new = out[:, input_ids.shape[1] :]
        texts = self.tok.batch_decode(new, skip_special_tokens=True)
        texts = [self.cfg.openers.get(e, "") + t for t, (_, e) in zip(texts, pairs)]  # the reply as a whole
        eos = {self.tok.eos_token_id, self.tok.convert_tokens_to_ids("<|im_end|>")}
        return [(t, not any(int(x) in eos for x in row)) for t, row in zip(texts, new)]

    def plan(self, todo: list[tuple[str, str]], fast: bool = True) -> tuple[list[tuple[str, str]], tuple]:
        """(the items in generation order, the shared prefix): sorted by prompt length so batches carry little
        padding, and the prefix computed once (`fast`); else in the given order, each batch running it again."""
        if not fast or self.tok is None or len(todo) < 2:
            return todo, (0, None)
        ids = self._prompt_ids(todo)
        order = sorted(range(len(todo)), key=lambda i: (len(ids[i]), todo[i]))
        return [todo[i] for i in order], self._prefix_cache(ids)

    def _generate_all(self, pairs: list[tuple[str, str]], partial: Path, progress: bool) -> dict:
        """Raw outputs for every pair, resuming from (and appending each batch to) the partial file."""
        done = read_partial(partial)
        todo, prefix = self.plan(sorted({(t, e) for t, e in pairs if self.item_key(t, e) not in done}))
        bs = self.cfg.batch_size
        partial.parent.mkdir(parents=True, exist_ok=True)
        with open(partial, "a", encoding="utf-8") as fh:
            for i in tqdm(range(0, len(todo), bs), desc="step 1: teacher", unit="batch", disable=not progress):
                batch = todo[i : i + bs]
                for (t, e), (raw, truncated) in zip(batch, self._generate(batch, prefix)):
                    done[self.item_key(t, e)] = {"raw": raw, "truncated": truncated}
                    fh.write(json.dumps({"item": self.item_key(t, e), "raw": raw, "truncated": truncated}) + "\n")
                fh.flush()
                os.fsync(fh.fileno())  # resumable after every batch
        return {self.item_key(t, e): done[self.item_key(t, e)] for t, e in pairs}

    def responses(
        self, pairs: list[tuple[str, str]], progress: bool = True, force: bool = False
    ) -> dict[str, tuple[str | None, bool]]:
        """{item_key: (cleaned response or None, whether generation hit the token limit)} for (transcript, emotion)."""
        entry = self.entry(pairs)
        partial = cache_dir() / "partial" / f"teacher-{entry.key}.jsonl"
        if force:
            partial.unlink(missing_ok=True)

        def compute(folder: Path) -> dict:
            raw = self._generate_all(pairs, partial, progress)
            atomic_write_json(folder / RESPONSES_FILE, raw)
            return raw

        self.cache = load_or_compute(
            entry,
            lambda folder: read_responses(folder, pairs, self.item_key),
            compute,
            force=force,
            inputs={"teacher": self.key, "n_pairs": len(set(pairs))},
        )
        partial.unlink(missing_ok=True)
        # Raw outputs are cached and cleaned here, so a change to the cleaning rules always takes effect.
        out = {}
        for t, e in pairs:
            item = self.cache[self.item_key(t, e)]
            out[self.item_key(t, e)] = (clean(item["raw"], item["truncated"], self.cfg.clean), bool(item["truncated"]))
        return out

    def changed_by_relm_rules(self, pairs: list[tuple[str, str]]) -> int:
        """Distinct replies (after `responses`) that relm's cleaning rules would change or drop where the release's
        rules keep them as generated."""
        raw = [self.cache[self.item_key(t, e)] for t, e in set(pairs)]
        return sum(clean(r["raw"], r["truncated"], "relm") != release_clean(r["raw"]) for r in raw)


def read_partial(path: Path) -> dict:
    """The batches a killed run finished; a line cut by the kill is dropped (and generated again)."""
    done: dict = {}
    if not path.is_file():
        return done
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            row = json.loads(line)
            done[row["item"]] = {"raw": str(row["raw"]), "truncated": bool(row["truncated"])}
        except (ValueError, KeyError, TypeError):
            continue
    return done


def read_responses(folder: Path, pairs: list[tuple[str, str]], item_key) -> dict:
    raw = json.loads((folder / RESPONSES_FILE).read_text(encoding="utf-8"))
    for t, e in pairs:
        item = raw[item_key(t, e)]  # KeyError: damaged, recomputed
        if not isinstance(item.get("raw"), str):
            raise ValueError(f"{RESPONSES_FILE}: item {item_key(t, e)} has no raw text")
    return raw


def teacher_targets(
    preset: Preset, df: pd.DataFrame, device: torch.device, progress: bool, force: bool
) -> tuple[dict[str, str | None], set[str], TeacherInfo]:
    """({utt_id: expected response or None}, {utt_ids whose generation hit the limit}, info) for the manifest."""
    cfg = preset.teacher
    if cfg.prompt == "template":
        llm, tok, identity = None, None, "template"
    else:
        llm_cfg = preset.llm if cfg.model == preset.llm.model else type(preset.llm)(model=cfg.model)
        llm, tok, identity = load_llm(llm_cfg)
        llm = llm.to(device)
    teacher = Teacher(cfg, llm, tok, identity)
    everything = list(zip(df["utt_id"], df["transcript"].fillna("").astype(str), df["emotion"]))
    # An empty transcript would give every such utterance the teacher's one reply to nothing: no target.
    empty = {u for u, t, _ in everything if not t.strip()}
    if empty:
        print(
            f"relm: warning: {len(empty)} utterance(s) have an empty transcript; they get no teacher target",
            file=sys.stderr,
        )
    pairs = [(t, e) for u, t, e in everything if u not in empty]
    out = teacher.responses(pairs, progress=progress, force=force)
    targets: dict[str, str | None] = {
        u: None if u in empty else out[teacher.item_key(t, e)][0] for u, t, e in everything
    }
    # As released: a target whose generation hit the limit gets no end-of-turn token, so models do not learn
    # to stop wherever the teacher was cut off.
    cut = {u for u, t, e in everything if u not in empty and out[teacher.item_key(t, e)][1]}
    dropped = sum(targets[u] is None for u, _, _ in everything if u not in empty)
    return (
        targets,
        cut,
        {
            "identity": identity,
            "hit_token_limit": len(cut),
            "prompt": cfg.prompt,
            "openers": dict(cfg.openers),  # the words each reply starts with, per emotion (none: {})
            "cache_key": teacher.key,
            "entry": teacher.entry(pairs).name,
            "dropped_by_cleaning": dropped,
            "clean": cfg.clean,
            "changed_by_relm_rules": teacher.changed_by_relm_rules(pairs) if pairs else 0,
            "empty_transcripts": len(empty),
            "decoding": teacher.decoding,
            "dtype": teacher.dtype,
            "n": len(targets),
        },
    )
