"""The stages of a sweep: one name each for `--force`, the timers and the cache folders.

Words used throughout `relm.bench`:
- sweep: one `relm bench` invocation, datasets x systems x seeds, written to `results/runs/<sweep id>/`;
- run: one (dataset, system, seed): train (unless zero-shot), answer the test split, score;
- cache entry: one stage's output under `RELM_CACHE/<stage>/<content key>`, reused while its key matches.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from enum import StrEnum
from pathlib import Path

from relm.errors import RelmError
from relm.paths import cache_dir


class Stage(StrEnum):
    MANIFEST = "manifest"  # read the corpus (cheap; never cached)
    FEATURES = "features"  # frozen Whisper frames and emotion embeddings per utterance
    STAGE0 = "stage0"  # train the compact emotion encoder on A/V/D targets, then freeze it
    TEACHER = "teacher"  # step 1: the text LLM writes the expected responses
    TRAIN = "train"  # step 2: train one system and answer the test split (one cache entry per run)
    SCORE = "score"  # EPITOME levels and SER metrics of the answers (and the scorer itself)

    def folder(self) -> Path:
        """Where this stage's cache entries live."""
        return cache_dir() / self.value


SCORERS_TIMING = "scorers"  # `score:scorers` in timings_s: loading or training the sweep's scorers

FORCEABLE = (Stage.FEATURES, Stage.STAGE0, Stage.TEACHER, Stage.TRAIN, Stage.SCORE)
# What each stage's output feeds: forcing a stage redoes it and everything downstream of it.
DOWNSTREAM = {
    Stage.STAGE0: {Stage.FEATURES},
    Stage.FEATURES: {Stage.TRAIN},
    Stage.TEACHER: {Stage.TRAIN},
    Stage.TRAIN: {Stage.SCORE},
    Stage.SCORE: set(),
}


def parse_force(values: set[str] | list[str]) -> set[Stage]:
    """`--force` names -> the stages to redo (with everything downstream); an unknown name is one error line."""
    names = {s.value: s for s in FORCEABLE}
    bad = sorted(set(values) - set(names))
    if bad:
        raise RelmError(f"--force takes stages {list(names)}, not {bad}")
    todo, out = [names[v] for v in values], set()
    while todo:
        stage = todo.pop()
        if stage not in out:
            out.add(stage)
            todo += DOWNSTREAM[stage]
    return out


class StageTimer:
    """Wall seconds per stage label (`features`, or `train:re-llm` for one system's runs)."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)

    @contextmanager
    def __call__(self, stage: Stage, detail: str = "") -> Iterator[None]:
        label = f"{stage.value}:{detail}" if detail else stage.value
        start = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[label] += time.perf_counter() - start

    def rounded(self) -> dict[str, float]:
        return {k: round(v, 1) for k, v in self.seconds.items()}
