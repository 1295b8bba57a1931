"""The systems a sweep can run, and the role each plays in the comparison (no torch import here).

| system       | LLM input                                   | trained                        | losses |
| text-zs      | transcript                                  | nothing                        | -      |
| text         | transcript                                  | LoRA                           | response CE |
| speech       | adapter(Whisper frames)                     | adapter, LoRA, SER head        | + SER CE |
| re-llm       | adapter([Whisper frames ; emotion emb.])    | adapter, LoRA, SER, A/V/D head | + SER CE + A/V/D MSE |
| re-llm-noemb | adapter(Whisper frames)                     | adapter, LoRA, SER, A/V/D head | + SER CE + A/V/D MSE |
| re-llm-noaux | adapter([Whisper frames ; emotion emb.])    | adapter, LoRA, SER head        | + SER CE |
| blsp-emo     | adapter(Whisper frames)                     | nothing (the released weights) | -      |

With a preset's `speech_init` (paper: the BLSP-Emo release), every speech system starts from it: its LoRA
and emotion head, and its adapter where the input is Whisper alone (speech); RE-LLM's fusion adapter reads
[Whisper ; emotion] and starts new, as the release does. `blsp-emo` is that checkpoint evaluated as is.

The confirmatory family is the proposed system against each `paper_baseline` on the metric
table's confirmatory metrics; every other comparison (the fine-tuned `text` baseline, the
ablations) is exploratory.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from relm.plugins import load_plugins
from relm.registry import Registry

Role = Literal["proposed", "baseline", "zero_shot", "ablation"]
ROLE_COLOURS: dict[str, str] = {"zero_shot": "#999", "baseline": "#69c", "ablation": "#c96", "proposed": "#c33"}
EXTERNAL_COLOUR = "#6a6"  # `relm evaluate --responses`: a system relm did not run


@dataclass(frozen=True)
class SystemSpec:
    name: str
    role: Role  # proposed: compared against every other system; zero_shot: the teacher's reference
    speech: bool  # the LLM hears speech tokens (adapter over Whisper frames)
    emotion_input: bool  # the adapter also reads the utterance's emotion embedding
    avd_loss: bool  # an A/V/D head on the pooled adapter output is trained (auxiliary loss)
    trains: bool  # False: zero-shot, nothing is trained
    paper_baseline: bool = False  # a baseline of the paper's hypotheses (confirmatory comparisons)
    in_default_sweep: bool = True
    description: str = ""
    colour: str = ""  # its bars in the plots; empty: its role's colour (`ROLE_COLOURS`)

    def __post_init__(self) -> None:
        if not self.colour:
            object.__setattr__(self, "colour", ROLE_COLOURS[self.role])

    @property
    def needs_speech_init(self) -> bool:
        """A released speech-LLM evaluated as is (speech, nothing trained): the preset needs `speech_init`."""
        return self.speech and not self.trains


SYSTEMS: Registry[SystemSpec] = Registry("system")
for _spec in (
    SystemSpec(
        "text-zs",
        "zero_shot",
        speech=False,
        emotion_input=False,
        avd_loss=False,
        trains=False,
        paper_baseline=True,
        description="the LLM answers the transcript zero-shot",
    ),
    SystemSpec(
        "text",
        "baseline",
        speech=False,
        emotion_input=False,
        avd_loss=False,
        trains=True,
        description="text-only LLM fine-tuned with LoRA on the transcript",
    ),
    SystemSpec(
        "speech",
        "baseline",
        speech=True,
        emotion_input=False,
        avd_loss=False,
        trains=True,
        paper_baseline=True,
        description="speech-LLM (BLSP-Emo style): Whisper -> adapter -> LLM + LoRA, SER head",
    ),
    SystemSpec(
        "re-llm",
        "proposed",
        speech=True,
        emotion_input=True,
        avd_loss=True,
        trains=True,
        description="RE-LLM: speech-LLM + emotion embedding + A/V/D loss",
    ),
    SystemSpec(
        "blsp-emo",
        "baseline",
        speech=True,
        emotion_input=False,
        avd_loss=False,
        trains=False,
        paper_baseline=True,
        in_default_sweep=False,
        description="the released BLSP-Emo speech-LLM as is (needs a preset with speech_init: paper, paper-tiny)",
    ),
    SystemSpec(
        "re-llm-noemb",
        "ablation",
        speech=True,
        emotion_input=False,
        avd_loss=True,
        trains=True,
        in_default_sweep=False,
        description="RE-LLM without the emotion embedding (A/V/D loss only)",
    ),
    SystemSpec(
        "re-llm-noaux",
        "ablation",
        speech=True,
        emotion_input=True,
        avd_loss=False,
        trains=True,
        in_default_sweep=False,
        description="RE-LLM without the A/V/D loss (emotion embedding only)",
    ),
):
    SYSTEMS.register(_spec.name, _spec)


def get_system(name: str) -> SystemSpec:
    return SYSTEMS.get(name)


def systems_with_role(role: Role, among: list[str] | None = None) -> list[str]:
    names = among if among is not None else SYSTEMS.names()
    return [n for n in names if n in SYSTEMS and SYSTEMS.get(n).role == role]  # external systems have no role


def needs_speech_init(name: str) -> bool:
    return get_system(name).needs_speech_init


def default_systems() -> list[str]:
    return [n for n, s in SYSTEMS.items() if s.in_default_sweep]


def ablation_systems() -> list[str]:
    return systems_with_role("ablation")


load_plugins("relm.systems")  # last: a plugin's systems come after relm's own
