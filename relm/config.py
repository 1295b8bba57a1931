"""Presets (smoke / cpu / paper) as dataclasses loaded from `benchmarks/presets/*.yaml`.

One code path serves every size: a preset only changes model names, widths and
hyperparameters. `load_preset(name, overrides)` applies dotted overrides
(`{"train.max_steps": 5}`) and rejects unknown keys.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from relm.errors import RelmError

PRESET_DIR = Path(__file__).resolve().parents[1] / "benchmarks" / "presets"


@dataclass
class SpeechEncoderCfg:
    model: str = "whisper-tiny.en"  # registry name, or "tiny-random"
    pad_to_30s: bool = False  # Whisper's native 30 s window (paper) or the utterance's own length
    tiny: dict = field(default_factory=dict)  # WhisperConfig kwargs for "tiny-random"


@dataclass
class EmotionEncoderCfg:
    kind: str = "compact"  # "compact" (trained in stage 0), "w2v2" (audeering), "tiny-random"
    model: str = ""  # registry name for w2v2
    dim: int = 128
    epochs: int = 20
    lr: float = 2e-3
    pseudo_avd: str = "category-table"  # for corpora without A/V/D: "category-table" or "encoder"


@dataclass
class LLMCfg:
    model: str = "smollm2-135m-instruct"  # registry name, or "tiny-random"
    dtype: str = "float32"
    trust_remote_code: bool = False  # Qwen-7B-Chat (v1) needs it; never on by default
    tiny: dict = field(default_factory=dict)


@dataclass
class LoraCfg:
    r: int = 8
    alpha: int = 16
    dropout: float = 0.05
    scope: str = "all"  # "all" positions, or "audio": LoRA active only at speech positions (BLSP)
    target_modules: list[str] | None = None  # None: by architecture


@dataclass
class AdapterCfg:
    inner_dim: int = 512
    kernel: int = 5
    stride: int = 2
    n_conv: int = 3


@dataclass
class TeacherCfg:
    model: str = "smollm2-135m-instruct"
    prompt: str = "fewshot"  # "paper" (continuation prompt) or "fewshot" (cpu)
    max_new_tokens: int = 48
    repetition_penalty: float = 1.2
    batch_size: int = 16


@dataclass
class TrainCfg:
    lr: float = 2e-4
    weight_decay: float = 0.05
    warmup_steps: int = 20
    batch_size: int = 8
    accumulate: int = 1
    epochs: int = 1
    max_steps: int = -1  # -1: run the epochs
    precision: str = "32-true"
    strategy: str = "auto"
    devices: Any = 1
    grad_clip: float = 1.0
    val_fraction: float = 0.1  # only when the corpus has no val split
    max_val_items: int = 0  # >0: a seeded subset of the val items for checkpoint selection (CPU time)
    ser_prompt_fraction: float = 0.0  # share of training samples that ask the SER prompt (see DESIGN note)
    loss_weights: dict = field(default_factory=lambda: {"response": 1.0, "ser": 1.0, "avd": 1.0})


@dataclass
class GenerateCfg:
    max_new_tokens: int = 48
    ser_max_new_tokens: int = 8
    batch_size: int = 16


@dataclass
class PromptCfg:
    # The paper's strings (RE-LLM repo, BLSP-Emo); presets may override the instruction.
    system: str = ("You are a helpful assistant. Your response should fulfill requests with empathy "
                   "toward user's emotion tone.")
    instruction: str = "Continue the following sentence based on the conveyed emotion tone in a coherent style: "
    ser_system: str = "You are a helpful assistant."
    ser_instruction: str = ("Please identify the emotion tone of the speech provided below. Select from the "
                            "following options: neutral, sad, angry, happy, or surprise.\n\nSpeech: ")


@dataclass
class Preset:
    name: str = "cpu"
    speech_encoder: SpeechEncoderCfg = field(default_factory=SpeechEncoderCfg)
    emotion_encoder: EmotionEncoderCfg = field(default_factory=EmotionEncoderCfg)
    llm: LLMCfg = field(default_factory=LLMCfg)
    lora: LoraCfg = field(default_factory=LoraCfg)
    adapter: AdapterCfg = field(default_factory=AdapterCfg)
    teacher: TeacherCfg = field(default_factory=TeacherCfg)
    train: TrainCfg = field(default_factory=TrainCfg)
    generate: GenerateCfg = field(default_factory=GenerateCfg)
    prompts: PromptCfg = field(default_factory=PromptCfg)
    scorer: str = "tfidf"
    threads: int = 0  # torch CPU threads; 0 = all cores. 1 makes CPU float sums bit-reproducible (smoke, CI)
    max_utterances: dict = field(default_factory=dict)  # per split cap, e.g. {"train": 64} (smoke)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def hash(self, *sections: str) -> str:
        """Hash of the whole preset, or of the named sections (stage cache keys)."""
        d = self.to_dict()
        part = {s: d[s] for s in sections} if sections else d
        return hashlib.sha256(json.dumps(part, sort_keys=True).encode()).hexdigest()[:12]


def _build(cls, data: dict, where: str):
    if not isinstance(data, dict):
        raise RelmError(f"{where}: expected a mapping, got {type(data).__name__}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise RelmError(f"{where}: unknown key(s) {unknown}; known: {sorted(fields)}")
    kwargs = {}
    for name, value in data.items():
        sub = fields[name].default_factory if fields[name].default_factory is not dataclasses.MISSING else None
        if sub is not None and dataclasses.is_dataclass(sub):
            kwargs[name] = _build(sub, value, f"{where}.{name}")
        else:
            kwargs[name] = value
    return cls(**kwargs)


def _set_dotted(data: dict, key: str, value) -> None:
    parts = key.split(".")
    node = data
    for p in parts[:-1]:
        node = node.setdefault(p, {})
    node[parts[-1]] = value


def load_preset(name_or_path: str, overrides: dict | None = None) -> Preset:
    path = Path(name_or_path)
    if not path.suffix:
        path = PRESET_DIR / f"{name_or_path}.yaml"
    if not path.is_file():
        known = sorted(p.stem for p in PRESET_DIR.glob("*.yaml"))
        raise RelmError(f"unknown preset {name_or_path!r}; known presets: {known}")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise RelmError(f"{path}: invalid YAML ({exc})") from None
    for key, value in (overrides or {}).items():
        _set_dotted(data, key, value)
    return _build(Preset, data, path.name)
