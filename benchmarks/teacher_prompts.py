"""Teacher prompt variants on synth-esd test pairs: ER/IP/EX (the sweep's tfidf scorer) and congruence.

An exploration for [empathy] item 4 (teacher targets worth imitating): each variant of
`benchmarks/teacher_prompts.json` overrides fields of the cpu preset's teacher; every variant writes
greedy replies for the same 60 test pairs. Prints the mean levels, congruence and three examples each.

Usage: python benchmarks/teacher_prompts.py [benchmarks/teacher_prompts.json] [--epitome DIR]
"""

from __future__ import annotations

import argparse
import copy
import json
import os
from pathlib import Path

from relm.bench.manifest import read_manifest
from relm.bench.scoring import SCORER_SEED
from relm.bench.teacher import Teacher, clean
from relm.models.llm import load_llm
from relm.presets import load_preset
from relm.scoring import empathy
from relm.scoring.congruence import congruence_row
from relm.scoring.epitome_data import load_epitome


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("variants", nargs="?", default=str(Path(__file__).with_name("teacher_prompts.json")))
    parser.add_argument("--epitome", default=str(Path(__file__).resolve().parents[2] / "shared/data/epitome"))
    parser.add_argument("--pairs", type=int, default=60)
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    preset = load_preset("cpu", {"runtime.device": "cpu"})
    test = read_manifest("synth-esd", None, {}, progress=False).df.query("split == 'test'")
    every = sorted(set(zip(test["transcript"].fillna(""), test["emotion"])))
    pairs = every[:: max(1, len(every) // args.pairs)][: args.pairs]
    llm, tok, identity = load_llm(type(preset.llm)(model=preset.teacher.model))
    scorer = empathy.load_or_train("tfidf", load_epitome(args.epitome), seed=SCORER_SEED)
    for name, fields in json.loads(Path(args.variants).read_text()).items():
        cfg = copy.deepcopy(preset.teacher)
        for key, value in fields.items():
            if not key.startswith("_"):  # "_..." keys document a variant
                setattr(cfg, key, value)
        teacher = Teacher(cfg, llm, tok, identity)
        order, prefix = teacher.plan(pairs)
        raw: dict = {}
        for i in range(0, len(order), cfg.batch_size):
            batch = order[i : i + cfg.batch_size]
            raw |= dict(zip(batch, teacher._generate(batch, prefix)))
        kept = [(p, text) for p in pairs if (text := clean(*raw[p]))]
        levels = scorer.score([p[0] for p, _ in kept], [t for _, t in kept])
        congruence = sum(congruence_row(t, p[1])["congruent"] for p, t in kept) / max(len(kept), 1)
        means = {m: round(float(v.mean()), 3) for m, v in levels.items()}
        print(f"{name}: kept {len(kept)}/{len(pairs)} {means} congruence {congruence:.3f}")
        for (text, emotion), reply in kept[:3]:
            print(f"    {emotion} | {text[:50]} -> {reply}")


if __name__ == "__main__":
    main()
