"""Best-of-N teacher targets, selected by a criterion that is not the evaluation scorer ([empathy] item 4).

For synth-esd test pairs the cpu teacher (with the prompt variant named by --variant from
teacher_prompts.json) writes its greedy reply plus N-1 sampled ones. A candidate's selection score is
2 x congruent (the lexicon detector names the gold emotion) + ER + EX of a tfidf scorer trained on one half
of the EPITOME seekers (half A) + 1 when it has 8-40 words; ties keep the greedy reply. The chosen replies
are scored by a tfidf scorer trained on the other half (half B, disjoint from the selector) and by the
sweep's own scorer, next to text-zs's answers to the same utterances (from a finished cpu sweep).

Usage: python benchmarks/teacher_selection.py --run results/runs/latest [--variant three-mechanisms] [--n 8]
"""

from __future__ import annotations

import argparse
import copy
import json
import os
from pathlib import Path

import numpy as np
import torch

from relm.bench.scoring import SCORER_SEED
from relm.bench.teacher import Teacher, clean
from relm.io import read_jsonl
from relm.keys import content_key
from relm.models.llm import load_llm
from relm.presets import load_preset
from relm.scoring import empathy, stats
from relm.scoring.congruence import congruence_row
from relm.scoring.epitome_data import EpitomeData, load_epitome


def half(data: EpitomeData, which: int) -> EpitomeData:
    """The rows of the seekers in one half (by a hash of the seeker post), with their own data hash."""
    keep = [int(content_key(s), 16) % 2 == which for s in data.table["seeker_post"]]
    return EpitomeData(data.table[keep].reset_index(drop=True), content_key(data.data_hash, "half", which))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", default="results/runs/latest", help="a finished cpu sweep on synth-esd")
    parser.add_argument("--variant", default="three-mechanisms")
    parser.add_argument("--n", type=int, default=8, help="candidates per item (1 greedy + n-1 sampled)")
    parser.add_argument("--temperature", type=float, default=0.8)
    parser.add_argument("--epitome", default=str(Path(__file__).resolve().parents[2] / "shared/data/epitome"))
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    preset = load_preset("cpu", {"runtime.device": "cpu"})
    rows = read_jsonl(next(Path(args.run).glob("synth-esd/text-zs/seed0/responses.jsonl")))
    pairs = sorted({(r["transcript"], r["gold_emotion"]) for r in rows})
    cfg = copy.deepcopy(preset.teacher)
    for key, value in json.loads(Path(__file__).with_name("teacher_prompts.json").read_text())[args.variant].items():
        if not key.startswith("_"):  # "_..." keys document a variant
            setattr(cfg, key, value)
    llm, tok, identity = load_llm(type(preset.llm)(model=cfg.model))
    teacher = Teacher(cfg, llm, tok, identity)
    order, prefix = teacher.plan(pairs)
    candidates: dict[tuple[str, str], list[str | None]] = {p: [] for p in pairs}
    for k in range(args.n):
        sampling = None if k == 0 else {"temperature": args.temperature, "top_p": 0.95}
        torch.manual_seed(k)
        for i in range(0, len(order), cfg.batch_size):
            batch = order[i : i + cfg.batch_size]
            for p, (raw, cut) in zip(batch, teacher._generate(batch, prefix, sampling)):
                candidates[p].append(clean(raw, cut))
    data = load_epitome(args.epitome)
    selector = empathy.load_or_train("tfidf", half(data, 0), seed=SCORER_SEED)
    judge = empathy.load_or_train("tfidf", half(data, 1), seed=SCORER_SEED)
    sweep_scorer = empathy.load_or_train("tfidf", data, seed=SCORER_SEED)

    def pick(pair) -> str | None:
        texts = [c for c in candidates[pair] if c]
        if not texts:
            return None
        levels = selector.score([pair[0]] * len(texts), texts)
        score = [
            2 * congruence_row(t, pair[1])["congruent"]
            + levels["er"][i]
            + levels["ex"][i]
            + (8 <= len(t.split()) <= 40)
            for i, t in enumerate(texts)
        ]
        return texts[int(np.argmax(score))]  # argmax keeps the first (greedy) on ties

    chosen = {p: pick(p) for p in pairs}
    greedy = {p: candidates[p][0] for p in pairs}
    zs = [
        r for r in rows if chosen[(r["transcript"], r["gold_emotion"])] and greedy[(r["transcript"], r["gold_emotion"])]
    ]
    print(
        f"{len(pairs)} pairs, {len(zs)} of {len(rows)} test utterances with a teacher reply; "
        f"n={args.n}, variant {args.variant}"
    )
    for name, scorer in (("half B (disjoint from the selector)", judge), ("the sweep's scorer", sweep_scorer)):
        ref = scorer.score([r["transcript"] for r in zs], [r["response"] for r in zs])
        for label, replies in (("greedy", greedy), ("best-of-n", chosen)):
            texts = [str(replies[(r["transcript"], r["gold_emotion"])]) for r in zs]
            ours = scorer.score([r["transcript"] for r in zs], texts)
            out = []
            for m in ("er", "ex"):
                test = stats.compare(ours[m], ref[m], n_resamples=5000)
                out.append(
                    f"{m.upper()} {test['mean_a']:.3f} vs text-zs {test['mean_b']:.3f} (p {test['p_permutation']:.4f})"
                )
            print(f"  {name}, {label}: " + "; ".join(out))
    for label, replies in (("greedy", greedy), ("best-of-n", chosen)):
        congruent = [
            congruence_row(str(replies[(r["transcript"], r["gold_emotion"])]), r["gold_emotion"])["congruent"]
            for r in zs
        ]
        print(f"  congruence {label}: {np.mean(congruent):.3f} vs text-zs {np.mean([r['congruent'] for r in zs]):.3f}")
    for p in pairs[:3]:
        print(f"  {p[1]} | {p[0][:50]}\n     greedy: {greedy[p]}\n     chosen: {chosen[p]}")


if __name__ == "__main__":
    main()
