"""The teacher's decoding settings and its cleaning rules (the release's, or relm's stricter ones)."""

from __future__ import annotations

import copy
import re
from typing import TYPE_CHECKING

from relm.config import TeacherCfg

if TYPE_CHECKING:
    from transformers import GenerationConfig

DROP_PREFIXES = ("I'm sorry, but I cannot", "I'm sorry, but I'm not sure")
DROP_CONTAINS = ("as an ai language model", "i'm sorry, but i")


def release_clean(text: str) -> str | None:
    """The release's `clean_noise_examples.py`: drop a reply matching one of five noise patterns, else keep it
    as generated."""
    probe = text.strip()
    if not probe or probe.startswith(DROP_PREFIXES) or "I'm not sure what you" in probe:
        return None
    if any(p in probe.lower() for p in DROP_CONTAINS):
        return None
    return text


def clean(text: str, truncated: bool, rules: str = "relm") -> str | None:
    """`rules` release: `release_clean`. relm: the same drops, then quotes stripped, the first line kept, and a
    reply cut mid-sentence at the token limit trimmed back to its last sentence end."""
    if rules == "release":
        return release_clean(text)
    text = text.strip().strip('"').strip()
    if release_clean(text) is None:
        return None
    text = text.split("\n")[0].strip().strip('"').strip()  # the first line, without its quotes
    if truncated:
        ends = [m.end() for m in re.finditer(r"[.!?](\s|$)", text)]
        text = text[: ends[-1]].strip() if ends else text
    return text or None


def generation_config(cfg: TeacherCfg, model) -> GenerationConfig:
    """What the teacher decodes with: the model's own generation config (its folder's generation_config.json),
    with the release's overrides (greedy, `max_new_tokens`, at least one new token) and, for `decoding: relm`,
    the preset's repetition penalty."""
    config = copy.deepcopy(model.generation_config)
    config.update(do_sample=False, num_beams=1, max_new_tokens=cfg.max_new_tokens, min_new_tokens=1)
    if cfg.decoding == "relm":
        config.update(repetition_penalty=cfg.repetition_penalty)
    return config


def decoding_record(config: GenerationConfig | None) -> dict:
    """Every decoding field that differs from transformers' defaults, plus the ones relm sets (results, cache key)."""
    if config is None:
        return {"template": True}
    out = {k: v for k, v in config.to_diff_dict().items() if k != "transformers_version"}
    for name in ("do_sample", "num_beams", "max_new_tokens", "min_new_tokens", "repetition_penalty"):
        out[name] = getattr(config, name)
    return dict(sorted(out.items()))
