"""Step 1: the frozen text LLM writes an expected response from transcript + gold emotion.

`paper`: RE-LLM's continuation prompt, greedy, 48 new tokens. `fewshot` (cpu): a chat
prompt that names the feeling and asks one open question, with three worked examples
and a repetition penalty, because SmolLM2-135M given the paper's prompt mostly repeats
the transcript back. Outputs go through the paper's cleaning rules (`clean`); a dropped
output leaves its utterance without a response target (counted). Results are cached per
(teacher identity, prompt, decoding) and per (transcript, emotion): resumable, and the
same sentence in the same emotion is generated once.
"""

from __future__ import annotations

import hashlib
import json
import re

import torch
from tqdm import tqdm

from relm.config import PromptCfg, TeacherCfg
from relm.errors import RelmError
from relm.io import atomic_write_json
from relm.paths import cache_dir

PAPER_USER = "Continue the following sentence that reflects a '{emotion}' emotion tone in a coherent style: {text}"
FEWSHOT_SYSTEM = ("You are a caring friend. Reply in one or two short sentences: first name the feeling you hear "
                  "in their voice, then ask one open question about it.")
FEWSHOT_USER = 'They say, sounding {emotion}: "{text}"'
FEWSHOT_EXAMPLES = [
    ("sad", "My cat has been sick for three days.",
     "That sounds really worrying, and I can hear how sad you are. How is your cat doing today?"),
    ("angry", "They cancelled my flight again without telling me.",
     "That is so frustrating, no wonder you are angry. What are you going to do now?"),
    ("happy", "I finally passed my driving test!",
     "Congratulations, you sound so happy and proud! Where will you drive first?"),
]
# `template` (smoke preset only): a fixed reply per emotion, so tiny random models have a learnable target.
TEMPLATES = {
    "neutral": "I see. How do you feel about that?",
    "happy": "That is wonderful news, I am so happy for you! What are you looking forward to most?",
    "angry": "That is so frustrating, no wonder you are angry. What happened?",
    "sad": "I am so sorry, that sounds really hard. How are you coping?",
    "surprise": "Wow, that is a real surprise! How did you find out?",
}
DROP_PREFIXES = ("I'm sorry, but I cannot", "I'm sorry, but I'm not sure")
DROP_CONTAINS = ("as an ai language model", "i'm sorry, but i")


def messages_for(cfg: TeacherCfg, prompts: PromptCfg, text: str, emotion: str) -> list[dict]:
    if cfg.prompt not in ("paper", "fewshot", "template"):
        raise RelmError(f"unknown teacher prompt {cfg.prompt!r}; choose paper, fewshot or template")
    if cfg.prompt == "paper":
        return [{"role": "system", "content": prompts.system},
                {"role": "user", "content": PAPER_USER.format(emotion=emotion, text=text)}]
    msgs = [{"role": "system", "content": FEWSHOT_SYSTEM}]
    for emo, said, reply in FEWSHOT_EXAMPLES:
        msgs += [{"role": "user", "content": FEWSHOT_USER.format(emotion=emo, text=said)},
                 {"role": "assistant", "content": reply}]
    return msgs + [{"role": "user", "content": FEWSHOT_USER.format(emotion=emotion, text=text)}]


def clean(text: str, truncated: bool) -> str | None:
    """The paper's cleaning rules; also trims a reply cut mid-sentence at the token limit."""
    text = text.strip().strip('"').strip()
    if not text or text.startswith(DROP_PREFIXES) or "I'm not sure what you" in text:
        return None
    if any(p in text.lower() for p in DROP_CONTAINS):
        return None
    text = text.split("\n")[0].strip()
    if truncated:
        ends = [m.end() for m in re.finditer(r"[.!?](\s|$)", text)]
        text = text[: ends[-1]].strip() if ends else text
    return text or None


class Teacher:
    def __init__(self, cfg: TeacherCfg, prompts: PromptCfg, model, tokenizer, identity: str):
        self.cfg, self.prompts, self.model, self.tok, self.identity = cfg, prompts, model, tokenizer, identity
        key = json.dumps([identity, cfg.prompt, cfg.max_new_tokens, cfg.repetition_penalty,
                          messages_for(cfg, prompts, "{text}", "{emotion}")])
        self.key = hashlib.sha256(key.encode()).hexdigest()[:16]
        self.path = cache_dir() / "teacher" / f"{self.key}.json"
        self.cache: dict = json.loads(self.path.read_text()) if self.path.is_file() else {}
        if self.tok is not None:
            self.tok.padding_side = "left"

    @staticmethod
    def item_key(text: str, emotion: str) -> str:
        return hashlib.sha1(f"{emotion}\x1f{text}".encode()).hexdigest()[:16]

    @torch.no_grad()
    def _generate(self, pairs: list[tuple[str, str]]) -> list[tuple[str, bool]]:
        if self.cfg.prompt == "template":
            return [(TEMPLATES[e], False) for _, e in pairs]
        prompts = [self.tok.apply_chat_template(messages_for(self.cfg, self.prompts, t, e), tokenize=False,
                                                add_generation_prompt=True) for t, e in pairs]
        enc = self.tok(prompts, return_tensors="pt", padding=True, add_special_tokens=False)
        self.model.eval()
        out = self.model.generate(**enc, max_new_tokens=self.cfg.max_new_tokens, min_new_tokens=1,
                                  do_sample=False, num_beams=1, repetition_penalty=self.cfg.repetition_penalty,
                                  pad_token_id=self.tok.pad_token_id)
        new = out[:, enc["input_ids"].shape[1]:]
        texts = self.tok.batch_decode(new, skip_special_tokens=True)
        eos = {self.tok.eos_token_id, self.tok.convert_tokens_to_ids("<|im_end|>")}
        return [(t, not any(int(x) in eos for x in row)) for t, row in zip(texts, new)]

    def responses(self, pairs: list[tuple[str, str]], progress: bool = True) -> dict[str, str | None]:
        """{item_key: cleaned response or None} for (transcript, emotion) pairs."""
        todo = sorted({(t, e) for t, e in pairs if self.item_key(t, e) not in self.cache})
        bs = self.cfg.batch_size
        for i in tqdm(range(0, len(todo), bs), desc="step 1: teacher", unit="batch", disable=not progress):
            batch = todo[i : i + bs]
            for (t, e), (raw, truncated) in zip(batch, self._generate(batch)):
                self.cache[self.item_key(t, e)] = {"raw": raw, "clean": clean(raw, truncated)}
            atomic_write_json(self.path, self.cache)  # resumable after every batch
        return {self.item_key(t, e): self.cache[self.item_key(t, e)]["clean"] for t, e in pairs}
