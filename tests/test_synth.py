"""The synthetic ESD-format corpus: layout, determinism, and the ESD adapter reading it."""

from __future__ import annotations

import hashlib

import pytest
import soundfile as sf

from relm.data.corpora import get_adapter
from relm.data.synth import SynthConfig, generate, load_sentences, plan
from relm.errors import RelmError
from tests.conftest import need_tool

SMALL = SynthConfig(speakers=["0011", "0015"], n_val=1, n_test=2, n_train=3)


def test_sentence_bank():
    sentences = load_sentences()
    assert len(sentences) >= 150 and len(set(sentences)) == len(sentences)
    assert sum(s.startswith(("I ", "My ")) for s in sentences) > 50  # first-person situations


def test_plan_is_deterministic_and_follows_esd_blocks():
    a, b = plan(SMALL), plan(SMALL)
    assert a == b and len(a) == 2 * 5 * 6
    ids = {j["utt"]: j["split"] for j in a}
    assert ids["0011_000001"] == "evaluation" and ids["0011_000021"] == "test" and ids["0011_000051"] == "train"
    assert ids["0011_000351"] == "evaluation"  # Angry block starts at 351
    texts = {(j["speaker"], j["utt"][-3:]): j["sentence"] for j in a if j["emotion"] == "Neutral"}
    assert all(
        j["sentence"] == texts[(j["speaker"], f"{int(j['utt'][-6:]) % 350:03d}")] for j in a if int(j["utt"][-6:]) % 350
    )  # same sentence in every emotion
    assert plan(SynthConfig(seed=1, **{k: v for k, v in vars(SMALL).items() if k != "seed"})) != a


def test_bad_config():
    with pytest.raises(RelmError, match="unknown speaker"):
        plan(SynthConfig(speakers=["0001"]))
    with pytest.raises(RelmError, match="1-20 val"):
        plan(SynthConfig(n_val=21))


def test_generate_round_trips_through_the_esd_adapter(tmp_path):
    need_tool("espeak-ng")
    need_tool("sox")
    root = tmp_path / "synth-esd"
    summary = generate(root, SMALL, progress=False)
    assert summary["n_utterances"] == 60
    wav = root / "0011" / "Sad" / "train" / "0011_001101.wav"
    info = sf.info(str(wav))
    assert (info.samplerate, info.channels, info.subtype) == (16000, 1, "PCM_16")
    assert (root / "0015" / "0015.txt").read_bytes().decode("utf-8").count("\t") == 2 * 30
    m = get_adapter("esd").read(root)
    assert len(m.df) == 60 and m.df.groupby("split").size().to_dict() == {"test": 20, "train": 30, "val": 10}
    assert m.df.transcript.str.len().min() > 10
    # deterministic: a second corpus with the same seed is byte-identical
    again = generate(tmp_path / "again", SMALL, progress=False)
    assert again["n_utterances"] == 60
    digest = lambda r: hashlib.sha256(b"".join(p.read_bytes() for p in sorted(r.rglob("*.wav")))).hexdigest()  # noqa: E731
    assert digest(root) == digest(tmp_path / "again")
