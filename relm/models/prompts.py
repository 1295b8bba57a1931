"""Each task's chat prompt (response, response at test time, SER), built from the preset and the corpus's classes."""

from __future__ import annotations

from relm.config import PromptCfg
from relm.models.llm import PromptParts, prompt_parts

RELEASE_ORDER = ("neutral", "sad", "angry", "happy", "surprise")  # as BLSP-Emo's SER prompt lists its options
RELEASE_OPTIONS = "neutral, sad, angry, happy, or surprise"


def ser_options(instruction: str, classes: tuple[str, ...]) -> str:
    """The SER instruction for a corpus's class set: `{options}`, or the release's listing of all five, becomes the
    corpus's classes in the release's order (IEMOCAP: "neutral, sad, angry, or happy")."""
    order = [c for c in RELEASE_ORDER if c in classes] + [c for c in classes if c not in RELEASE_ORDER]
    listing = " or ".join(order) if len(order) <= 2 else ", ".join(order[:-1]) + ", or " + order[-1]
    if "{options}" in instruction:
        return instruction.replace("{options}", listing)
    return instruction.replace(RELEASE_OPTIONS, listing)


def task_prompts(tokenizer, p: PromptCfg, speech: bool, classes: tuple[str, ...]) -> dict[str, PromptParts]:
    """The prompt of each task for a system that hears speech (or reads the transcript) on a corpus of `classes`."""
    ser_instruction = ser_options(p.ser_instruction if speech else p.ser_instruction_text, classes)
    eval_instruction = p.instruction if p.eval_instruction is None else p.eval_instruction
    return {
        "response": prompt_parts(tokenizer, p.system, p.instruction),
        "response_eval": prompt_parts(tokenizer, p.system, eval_instruction),
        "ser": prompt_parts(tokenizer, p.ser_system, ser_instruction),
    }
