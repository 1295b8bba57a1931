"""`synth-esd`: an espeak-ng corpus in ESD's exact layout, where only acoustics carry emotion.

Layout: `<spk>/<spk>.txt` (ESD's `id<TAB>text<TAB>Emotion`, in ESD's per-speaker encodings),
`<spk>/<Emotion>/<train|evaluation|test>/<spk>_NNNNNN.wav` (16 kHz, 16-bit mono), ids in
ESD's blocks of 350 per emotion with ESD's offsets (evaluation 1-20, test 21-50, train 51+).
Every speaker says the same sentences in all five emotions; emotion is carried by
per-emotion prosody presets (pitch, rate, amplitude, word gap) with per-utterance jitter,
so classes overlap somewhat. Deterministic for a seed; resumable (finished files are kept).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from relm.errors import RelmError
from relm.io import atomic_write_bytes, atomic_write_json

SENTENCES_FILE = Path(__file__).with_name("synth_sentences.txt")
BLOCK = {"Neutral": 0, "Angry": 350, "Happy": 700, "Sad": 1050, "Surprise": 1400}
# espeak-ng flags per emotion: pitch (-p), words per minute (-s), amplitude (-a), word gap (-g, 10 ms).
PRESETS = {
    "Neutral": {"p": 50, "s": 165, "a": 100, "g": 1},
    "Happy": {"p": 72, "s": 190, "a": 130, "g": 0},
    "Angry": {"p": 60, "s": 200, "a": 185, "g": 0},
    "Sad": {"p": 28, "s": 125, "a": 60, "g": 4},
    "Surprise": {"p": 86, "s": 175, "a": 140, "g": 1},
}
JITTER = {"p": 7, "s": 18, "a": 20, "g": 1}
# Speaker id -> (voice, gender, transcript encoding as in the ESD release).
SPEAKERS = {
    "0011": ("en-us+m3", "male", "utf-8"),
    "0012": ("en-us+m7", "male", "utf-16"),
    "0013": ("en-gb+m1", "male", "utf-16"),
    "0015": ("en-us+f3", "female", "utf-8"),
    "0016": ("en-us+f5", "female", "latin-1"),
    "0017": ("en-gb+f2", "female", "latin-1"),
    # synth-pretrain: other accents and voice variants, so no benchmark voice is heard in stage 0
    "0014": ("en-gb-scotland+m4", "male", "utf-8"),
    "0018": ("en-029+f1", "female", "utf-16"),
    "0019": ("en-us-nyc+f4", "female", "utf-8"),
    "0020": ("en-gb-x-rp+m5", "male", "latin-1"),
}
BENCHMARK_SPEAKERS = ["0011", "0012", "0013", "0015", "0016", "0017"]
PRETRAIN_SPEAKERS = ["0014", "0018", "0019", "0020"]
PRETRAIN_SENTENCES = "synth_pretrain_sentences.txt"


@dataclass
class SynthConfig:
    seed: int = 0
    speakers: list[str] = field(default_factory=lambda: list(BENCHMARK_SPEAKERS))
    n_val: int = 5  # sentences per speaker (each spoken in all 5 emotions)
    n_test: int = 8
    n_train: int = 37
    workers: int = 2
    sentences: str = SENTENCES_FILE.name  # a sentence file next to this module

    def check(self) -> None:
        unknown = [s for s in self.speakers if s not in SPEAKERS]
        if unknown:
            raise RelmError(f"synth: unknown speaker id(s) {unknown}; choose from {list(SPEAKERS)}")
        if not (0 < self.n_val <= 20 and 0 < self.n_test <= 30 and 0 < self.n_train <= 300):
            raise RelmError("synth: need 1-20 val, 1-30 test and 1-300 train sentences per speaker (ESD's blocks)")


# synth-pretrain: 4 other voices x 38 other sentences x 5 emotions = 760 utterances (stage 0 trains on 600).
PRETRAIN = SynthConfig(speakers=PRETRAIN_SPEAKERS, n_val=4, n_test=4, n_train=30, sentences=PRETRAIN_SENTENCES)


def load_sentences(name: str = SENTENCES_FILE.name) -> list[str]:
    lines = SENTENCES_FILE.with_name(name).read_text(encoding="utf-8").splitlines()
    return [ln.strip() for ln in lines if ln.strip() and not ln.startswith("#")]


def plan(cfg: SynthConfig) -> list[dict]:
    """Every utterance to make: speaker, emotion, id, split, text, espeak flags."""
    cfg.check()
    sentences = load_sentences(cfg.sentences)
    order = np.random.default_rng(cfg.seed).permutation(len(sentences))
    pools = {"evaluation": order[:20], "test": order[20:50], "train": order[50:]}
    counts = {"evaluation": cfg.n_val, "test": cfg.n_test, "train": cfg.n_train}
    offsets = {"evaluation": 1, "test": 21, "train": 51}
    if cfg.n_train > len(pools["train"]):
        raise RelmError(f"synth: only {len(pools['train'])} train sentences available")
    jobs = []
    for k, spk in enumerate(cfg.speakers):
        voice, _, _ = SPEAKERS[spk]
        for split, pool in pools.items():
            chosen = np.random.default_rng([cfg.seed, k, len(split)]).choice(pool, counts[split], replace=False)
            for j, sent_idx in enumerate(chosen):
                for e, (emotion, base) in enumerate(PRESETS.items()):
                    rng = np.random.default_rng([cfg.seed, k, int(sent_idx), e])
                    flags = {f: int(round(v + rng.uniform(-JITTER[f], JITTER[f]))) for f, v in base.items()}
                    flags["g"] = max(0, flags["g"])
                    number = BLOCK[emotion] + offsets[split] + j
                    jobs.append(
                        {
                            "speaker": spk,
                            "voice": voice,
                            "emotion": emotion,
                            "split": split,
                            "utt": f"{spk}_{number:06d}",
                            "sentence": sentences[int(sent_idx)],
                            "flags": flags,
                        }
                    )
    return jobs


def _espeak_job(job: dict, out_root: Path, espeak: str, sox: str) -> None:
    final = out_root / job["speaker"] / job["emotion"] / job["split"] / f"{job['utt']}.wav"
    if final.is_file():
        return
    final.parent.mkdir(parents=True, exist_ok=True)
    f = job["flags"]
    # sox -R -D: repeatable, no dither, so the corpus is byte-identical for a seed.
    with tempfile.TemporaryDirectory(dir=final.parent) as tmp:
        raw, res = Path(tmp) / "raw.wav", Path(tmp) / "out.wav"
        subprocess.run(
            [
                espeak,
                "-v",
                job["voice"],
                "-p",
                str(f["p"]),
                "-s",
                str(f["s"]),
                "-a",
                str(f["a"]),
                "-g",
                str(f["g"]),
                "-w",
                str(raw),
                job["sentence"],
            ],
            check=True,
            capture_output=True,
        )
        subprocess.run(
            [sox, "-R", "-D", str(raw), "-r", "16000", "-b", "16", "-c", "1", str(res)], check=True, capture_output=True
        )
        res.replace(final)


def _transcript_files(jobs: list[dict], out_root: Path) -> None:
    by_spk: dict[str, list[dict]] = {}
    for job in jobs:
        by_spk.setdefault(job["speaker"], []).append(job)
    for spk, rows in by_spk.items():
        lines = [f"{r['utt']}\t{r['sentence']}\t{r['emotion']}" for r in sorted(rows, key=lambda r: r["utt"])]
        if spk == "0012":  # ESD's real files hold a few lines that do not split into three fields
            lines.append(f"{spk}_001751\tA stray line without its emotion")
        encoding = SPEAKERS[spk][2]
        atomic_write_bytes(out_root / spk / f"{spk}.txt", ("\n".join(lines) + "\n").encode(encoding))


def generate(out_root: str | Path, cfg: SynthConfig | None = None, progress: bool = True) -> dict:
    """Generate (or finish) the corpus under `out_root`; returns a summary with timings."""
    cfg = cfg or SynthConfig()
    espeak, sox = shutil.which("espeak-ng"), shutil.which("sox")
    if not espeak or not sox:
        missing = [n for n, p in (("espeak-ng", espeak), ("sox", sox)) if not p]
        raise RelmError(
            f"synth needs {' and '.join(missing)}: sudo apt-get install -y espeak-ng sox "
            "(make setup does this when it can)"
        )
    out_root = Path(out_root)
    stamp = out_root / "synth.json"
    if stamp.is_file() and json.loads(stamp.read_text()).get("config") == asdict(cfg):
        return json.loads(stamp.read_text())
    jobs = plan(cfg)
    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=cfg.workers) as pool:
        futures = [pool.submit(_espeak_job, job, out_root, espeak, sox) for job in jobs]
        for fut in tqdm(futures, desc="synth corpus", unit="utt", disable=not progress):
            try:
                fut.result()
            except subprocess.CalledProcessError as exc:
                raise RelmError(f"synth: {exc.cmd[0]} failed: {exc.stderr.decode(errors='replace')[:200]}") from None
    _transcript_files(jobs, out_root)
    summary = {
        "config": asdict(cfg),
        "n_utterances": len(jobs),
        "seconds": round(time.perf_counter() - start, 1),
        "speakers": {s: SPEAKERS[s][:2] for s in cfg.speakers},
        "presets": PRESETS,
        "jitter": JITTER,
    }
    atomic_write_json(stamp, summary)
    return summary
