"""How the `paper` preset stands to the released RE-LLM recipe, element by element: one source for
`docs/fidelity.md` (`python -m relm.fidelity > docs/fidelity.md`; a test keeps the two equal), for the
`fidelity` record of results.json and for the recipe line of report.md.

An element with a `switch` (a dotted preset field) and a `release` value is checked on every preset: a preset
whose value differs deviates from the release there. Elements without a switch are fixed in the code; their
row says what relm does and why. Sources: `../shared/reference/re-llm-paper.md` (paper, release scripts),
`blsp-emo-checkpoint.md` (BLSP-Emo), and the release's `scripts/train_RELLM.sh`, `generate_RELLM.py`,
`clean_noise_examples.py` and DeepSpeed config as read for issue #23.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from importlib import resources
from typing import Any

import yaml

from relm.config import Preset
from relm.results import FidelityInfo

UNKNOWN = "unknown"  # a released value nobody could establish: never counted as a deviation


@dataclass(frozen=True)
class Element:
    element: str
    paper: str  # what the paper says ("silent" where it says nothing)
    release: str  # what the authors' released code does
    relm: str  # what relm's `paper` preset does
    switch: str = ""  # the preset field that selects it ("" where the code fixes it)
    released_value: Any = UNKNOWN  # the switch's value that reproduces the release
    why: str = ""  # for relm's own choices: why


def _load() -> tuple[Element, ...]:
    rows = yaml.safe_load((resources.files("relm") / "fidelity.yaml").read_text(encoding="utf-8"))
    return tuple(Element(**row) for row in rows)


ELEMENTS = _load()


def value_at(preset: Preset, switch: str) -> Any:
    obj: Any = preset
    for part in switch.split("."):
        obj = getattr(obj, part)
    return obj


def _same(value: Any, release: Any) -> bool:
    if isinstance(release, list) and isinstance(value, list):
        return sorted(map(str, value)) == sorted(map(str, release))
    if isinstance(release, float) and isinstance(value, int | float) and not isinstance(value, bool):
        return abs(value - release) <= 1e-12 * max(1.0, abs(release))
    return bool(value == release)


def fidelity(preset: Preset) -> FidelityInfo:
    """The `fidelity` record of results.json: every switch's value, and where the preset leaves the release."""
    switches: dict[str, Any] = {}
    deviations: list[dict[str, Any]] = []
    for e in ELEMENTS:
        if not e.switch:
            continue
        value = value_at(preset, e.switch)
        switches[e.switch] = value
        if e.released_value != UNKNOWN and not _same(value, e.released_value):
            deviations.append({"element": e.element, "switch": e.switch, "value": value, "release": e.released_value})
    return {"recipe": "release" if not deviations else "deviates", "switches": switches, "deviations": deviations}


def recipe_line(record: dict) -> str:
    """One line for report.md: which recipe ran."""
    if not record.get("deviations"):
        return "Recipe: the release recipe (every switch in docs/fidelity.md at its released value)."
    devs = record["deviations"]
    if len(devs) > 8:  # a preset of its own (cpu, smoke): the names; values in results.json `fidelity.deviations`
        listed = ", ".join(d["switch"] for d in devs)
    else:
        listed = ", ".join(f"{d['switch']}={d['value']!r} (release {d['release']!r})" for d in devs)
    return f"Recipe: deviates from the release in {len(devs)} switch(es) (docs/fidelity.md): {listed}."


def _cell(value: Any) -> str:
    text = UNKNOWN if value == UNKNOWN else f"`{value!r}`"
    return text.replace("|", "\\|")


def markdown() -> str:
    from relm.presets import load_preset

    paper, fp32 = load_preset("paper"), load_preset("paper-fp32")
    rows = [
        "# Fidelity: the `paper` preset against the released RE-LLM recipe",
        "",
        "Generated from `relm/fidelity.py` (`python -m relm.fidelity > docs/fidelity.md`; a test keeps it current).",
        "One row per element: what the paper says, what the authors' released code does, what relm's `paper` preset",
        "does, the preset switch that selects it and the switch's released value. results.json records every switch",
        "(`fidelity.switches`) and each deviation (`fidelity.deviations`); report.md says in one line which recipe",
        "ran.",
        "",
        f"`paper` deviates in: {', '.join(d['switch'] for d in fidelity(paper)['deviations']) or 'nothing'} "
        "(bf16 and the speed levers, benchmarks/throughput.py). `paper-fp32` deviates in: "
        f"{', '.join(d['switch'] for d in fidelity(fp32)['deviations']) or 'nothing'}.",
        "",
        "| # | element | paper | release | relm `paper` | switch | released value | why (relm's own choices) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for i, e in enumerate(ELEMENTS, 1):
        switch = f"`{e.switch}`" if e.switch else "(code)"
        release = _cell(e.released_value) if e.switch else "-"
        cells = [str(i), e.element, e.paper, e.release, e.relm, switch, release, e.why]
        rows.append("| " + " | ".join(c.replace("\n", " ") for c in cells) + " |")
    return "\n".join(rows) + "\n"


if __name__ == "__main__":
    sys.stdout.write(markdown())
