"""The offline model copies are real: SmolLM2 answers, Whisper tiny.en transcribes speech."""

from __future__ import annotations

import subprocess

import jiwer
import pytest
import soundfile as sf
import torch
import torchaudio

from relm.errors import RelmError
from relm.models import sources
from tests.conftest import missing, need_tool

pytestmark = pytest.mark.slow


def _ready(name: str):
    if not sources.status(name)["ready"]:
        missing(f"{name} not prepared (run make setup)")
    try:
        return sources.resolve(name)
    except RelmError as exc:
        missing(str(exc))


def test_smollm2_answers_a_chat_prompt():
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = _ready("smollm2-135m-instruct").path
    tok = AutoTokenizer.from_pretrained(path)
    model = AutoModelForCausalLM.from_pretrained(path).eval()
    msgs = [{"role": "user", "content": "What is the capital of France? Answer in one sentence."}]
    ids = tok.apply_chat_template(msgs, add_generation_prompt=True, return_tensors="pt", return_dict=True)
    with torch.no_grad():
        out = model.generate(**ids, max_new_tokens=24, do_sample=False)
    answer = tok.decode(out[0, ids["input_ids"].shape[1] :], skip_special_tokens=True)
    assert "paris" in answer.lower(), answer


SENTENCES = [
    "Kids are talking by the door.",
    "I can't believe you did that to me again.",
    "My best friend moved to another city last week.",
    "Please put the groceries on the kitchen table.",
    "The weather is going to change tomorrow morning.",
]


def test_whisper_tiny_en_transcribes_espeak_speech(tmp_path):
    from transformers import WhisperForConditionalGeneration, WhisperProcessor
    from transformers.models.whisper.english_normalizer import BasicTextNormalizer

    espeak = need_tool("espeak-ng")
    path = _ready("whisper-tiny.en").path
    waves = []
    for i, text in enumerate(SENTENCES):
        wav = tmp_path / f"{i}.wav"
        subprocess.run([espeak, "-v", "en-us", "-s", "150", "-w", str(wav), text], check=True)
        audio, sr = sf.read(wav, dtype="float32")
        waves.append(torchaudio.functional.resample(torch.from_numpy(audio), sr, 16000).numpy())
    proc = WhisperProcessor.from_pretrained(path)
    model = WhisperForConditionalGeneration.from_pretrained(path).eval()
    feats = proc(waves, sampling_rate=16000, return_tensors="pt").input_features
    with torch.no_grad():
        ids = model.generate(feats, max_new_tokens=40)
    hyps = proc.batch_decode(ids, skip_special_tokens=True)
    norm = BasicTextNormalizer()
    wer = jiwer.wer([norm(s) for s in SENTENCES], [norm(h) for h in hyps])
    print(f"whisper-tiny.en WER on {len(SENTENCES)} espeak-ng sentences: {wer:.3f}; {hyps}")
    assert wer <= 0.25, hyps
