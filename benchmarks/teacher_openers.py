"""Pick the cpu teacher's opener per emotion by a rule that never sees the evaluation scorer ([empathy] item 4).

Candidates: `teacher_openers.json`. Each candidate is scored as whole replies, the opener followed by each of
the six follow-up questions there, said to synth-esd *training* transcripts of that emotion (never test ones).
Rule, per emotion: among candidates the congruence detector reads as the gold emotion (none for neutral) in
every reply, the highest mean ER, then EX, of a tfidf scorer trained on half A of the EPITOME seekers
(`teacher_selection.half`). It replaces the cpu preset's current opener only when a tfidf scorer trained on the
disjoint half B scores it higher too (ER, then EX): without that check the A-best sad and neutral openers went
in, and the teacher's ER on the test replies fell from 1.696 to 1.650 (B had scored the neutral one 0.50 vs 1.00).

Usage: python benchmarks/teacher_openers.py [--epitome DIR] [--seekers 20]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from teacher_selection import half  # noqa: E402

from relm.bench.manifest import read_manifest  # noqa: E402
from relm.bench.scoring import SCORER_SEED  # noqa: E402
from relm.presets import load_preset  # noqa: E402
from relm.scoring import empathy  # noqa: E402
from relm.scoring.congruence import congruence_row  # noqa: E402
from relm.scoring.epitome_data import load_epitome  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epitome", default=str(Path(__file__).resolve().parents[2] / "shared/data/epitome"))
    parser.add_argument("--seekers", type=int, default=20, help="training transcripts per emotion")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    pool = json.loads(Path(__file__).with_name("teacher_openers.json").read_text())
    questions = pool["questions"]
    train = read_manifest("synth-esd", None, {}, progress=False).df.query("split == 'train'")
    data = load_epitome(args.epitome)
    selector = empathy.load_or_train("tfidf", half(data, 0), seed=SCORER_SEED)
    check = empathy.load_or_train("tfidf", half(data, 1), seed=SCORER_SEED)
    current = load_preset("cpu").teacher.openers
    chosen = {}
    for emotion, openers in pool["candidates"].items():
        said = sorted(set(train.loc[train["emotion"] == emotion, "transcript"].dropna()))[: args.seekers]
        seekers = [s for s in said for _ in questions]  # each transcript once per question, as in `replies`
        rows = []
        for opener in openers:
            replies = [f"{opener} {q}" for _ in said for q in questions]
            a, b = selector.score(seekers, replies), check.score(seekers, replies)
            congruent = all(congruence_row(r, emotion)["congruent"] for r in replies)
            rows.append((congruent, a["er"].mean(), a["ex"].mean(), b["er"].mean(), b["ex"].mean(), opener))
        rows.sort(key=lambda r: r[:3], reverse=True)
        best, now = rows[0], next((r for r in rows if r[5] == current.get(emotion)), None)
        chosen[emotion] = best[5] if now is None or best[3:5] > now[3:5] else now[5]
        print(f"{emotion} ({len(said)} training transcripts x {len(questions)} questions)")
        for congruent, aer, aex, ber, bex, opener in rows:
            mark = "*" if opener == chosen[emotion] else " "
            print(
                f" {mark} congruent {int(congruent)}  A: ER {aer:.2f} EX {aex:.2f}"
                f"  B: ER {ber:.2f} EX {bex:.2f}  {opener}"
            )
    print(json.dumps({"openers": chosen}, indent=2))


if __name__ == "__main__":
    main()
