"""The systems a sweep can run, and the role each plays in the comparison (no torch import here).

| system  | LLM input                                     | trained                          | losses |
| text-zs | transcript                                    | nothing                          | -      |
| text    | transcript                                    | LoRA                             | response CE |
| speech  | adapter(Whisper frames)                       | adapter, LoRA, SER head          | response CE + SER CE |
| re-llm  | adapter([Whisper frames ; emotion embedding]) | adapter, LoRA, SER + A/V/D heads | + A/V/D MSE |
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from relm.registry import Registry

Role = Literal["proposed", "baseline", "zero_shot", "ablation"]


@dataclass(frozen=True)
class SystemSpec:
    name: str
    role: Role  # proposed: compared against every other system; zero_shot: the teacher's reference
    speech: bool  # the LLM hears speech tokens (adapter over Whisper frames)
    emotion: bool  # the adapter also reads the emotion embedding, and an A/V/D head is trained
    trains: bool  # False: zero-shot, nothing is trained
    in_default_sweep: bool = True
    description: str = ""


SYSTEMS: Registry[SystemSpec] = Registry("system")
for _spec in (
    SystemSpec(
        "text-zs",
        "zero_shot",
        speech=False,
        emotion=False,
        trains=False,
        description="the LLM answers the transcript zero-shot",
    ),
    SystemSpec(
        "text",
        "baseline",
        speech=False,
        emotion=False,
        trains=True,
        description="text-only LLM fine-tuned with LoRA on the transcript",
    ),
    SystemSpec(
        "speech",
        "baseline",
        speech=True,
        emotion=False,
        trains=True,
        description="speech-LLM (BLSP-Emo style): Whisper -> adapter -> LLM + LoRA, SER head",
    ),
    SystemSpec(
        "re-llm",
        "proposed",
        speech=True,
        emotion=True,
        trains=True,
        description="RE-LLM: speech-LLM + emotion embedding + A/V/D loss",
    ),
):
    SYSTEMS.register(_spec.name, _spec)


def get_system(name: str) -> SystemSpec:
    return SYSTEMS.get(name)


def systems_with_role(role: Role, among: list[str] | None = None) -> list[str]:
    names = among if among is not None else SYSTEMS.names()
    return [n for n in names if SYSTEMS.get(n).role == role]


def default_systems() -> list[str]:
    return [n for n, s in SYSTEMS.items() if s.in_default_sweep]
