"""relm's architecture as data: its rooms in layers, one sweep's data flow, and the import rule between rooms.

`python -m relm.architecture > docs/architecture.md` writes the living description (a test keeps it current,
and another checks the import rule against the code). A room is a folder of `relm/` (or a group of the
top-level modules); each module's role is the first line of its own docstring.
"""

from __future__ import annotations

import ast
import sys
from dataclasses import dataclass
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent


@dataclass(frozen=True)
class Room:
    name: str
    modules: tuple[str, ...]
    """dotted module prefixes (`relm.data` is the folder and everything in it)"""
    role: str


# Bottom to top: a room imports only rooms below it (and itself).
LAYERS: tuple[Room, ...] = (
    Room(
        "foundation",
        (
            "relm.errors",
            "relm.keys",
            "relm.paths",
            "relm.io",
            "relm.registry",
            "relm.docstrings",
            "relm.console",
            "relm.batching",
            "relm.cache",
            "relm.config",
            "relm.config_history",
            "relm.provenance",
            "relm.machine",
            "relm.plugins",
        ),
        "errors, content keys, atomic writes, the registry, the cache, the config dataclasses, machine speed",
    ),
    Room("data", ("relm.data",), "corpora adapters, manifests, audio, the synthetic corpus"),
    Room("presets", ("relm.presets",), "the shipped presets and their strict loader"),
    Room("models", ("relm.models",), "model sources, the LLM and encoders, the systems on one LightningModule"),
    Room("metrics", ("relm.metrics",), "the metric table: each metric's facts in one entry"),
    Room("scoring", ("relm.scoring",), "SER parsing, EPITOME scorers, reply metrics, paired statistics"),
    Room(
        "evaluate-modules",
        ("relm.metrics.uar", "relm.metrics.epitome"),
        "Hugging Face `evaluate` modules over relm's scoring (`evaluate.load(relm.metrics.path(...))`)",
    ),
    Room(
        "records",
        ("relm.runtime", "relm.results", "relm.fidelity"),
        "a sweep's runtime, the results schema, the recipe against the release",
    ),
    Room("bench", ("relm.bench",), "the sweep's stages, one concern per file; only `sweep.py` knows them all"),
    Room("commands", ("relm.commands", "relm.cli", "relm.architecture", "relm"), "the command line"),
)

# One sweep, in order: (what happens, the module that does it).
FLOW: tuple[tuple[str, str], ...] = (
    (
        "Validate every input (systems, corpora roots, protocol, folders, EPITOME, preset, strategy), then resolve the "
        "one `Runtime` (device, precision, threads); nothing is written before",
        "relm.bench.preparation",
    ),
    ("Train (or load) the empathy scorer on the EPITOME rows, cached by its identity", "relm.bench.scoring"),
    ("Read the corpus through its adapter into a manifest; check and skip bad audio", "relm.bench.manifest"),
    ("Frozen Whisper frames per utterance, cached by content", "relm.bench.features"),
    (
        "Stage 0: the emotion encoder (trained on a disjoint corpus, or pretrained), then its embeddings and A/V/D",
        "relm.bench.stage0",
    ),
    (
        "Step 1: the teacher LLM writes each utterance's expected reply (cached, cleaned as the release does)",
        "relm.bench.teacher",
    ),
    (
        "Step 2: train each system and seed (Lightning), validate and select weights, then answer the test split",
        "relm.bench.training",
    ),
    (
        "Score each run: parsed SER, UA/WA, EPITOME levels, congruence, reply diversity and relevance",
        "relm.bench.scoring",
    ),
    ("Paired, utterance-clustered comparisons; Holm on the declared family, BH on the rest", "relm.bench.comparisons"),
    (
        "Validate results.json against the schema, write it, the report, exports and plots; point `latest`",
        "relm.bench.publish",
    ),
    ("Log runs and the sweep's summary to W&B (offline by default)", "relm.bench.tracking"),
)


def room_of(module: str) -> Room | None:
    """The room a dotted module name belongs to (the longest matching prefix)."""
    best: tuple[int, Room] | None = None
    for room in LAYERS:
        for prefix in room.modules:
            if (module == prefix or module.startswith(prefix + ".")) and (best is None or len(prefix) > best[0]):
                best = (len(prefix), room)
    return best[1] if best else None


def module_names() -> dict[str, Path]:
    return {
        ".".join(p.relative_to(PACKAGE.parent).with_suffix("").parts).removesuffix(".__init__"): p
        for p in sorted(PACKAGE.rglob("*.py"))
    }


def _imported(path: Path) -> set[str]:
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.add(node.module)
        elif isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
    return {m for m in out if m == "relm" or m.startswith("relm.")}


def upward_imports() -> list[str]:
    """Every import of a room above the importing module's own: the rule's violations (empty when kept)."""
    rank = {room.name: i for i, room in enumerate(LAYERS)}
    out = []
    for name, path in module_names().items():
        here = room_of(name)
        for target in sorted(_imported(path)):
            there = room_of(target)
            if here and there and rank[there.name] > rank[here.name]:
                out.append(f"{name} ({here.name}) imports {target} ({there.name})")
    return out


def _first_line(path: Path) -> str:
    doc = ast.get_docstring(ast.parse(path.read_text())) or ""
    first = doc.split("\n\n")[0].replace("\n", " ").strip()
    return first.replace("|", "\\|")


def markdown() -> str:
    lines = [
        "# Architecture",
        "",
        "Generated from `relm/architecture.py` (`python -m relm.architecture > docs/architecture.md`); the module",
        "lines are each module's own docstring. `tests/test_house.py` checks that this page is current and that",
        "no module imports a room above its own.",
        "",
        "## Rooms, bottom to top",
        "",
        "A room imports only itself and the rooms before it in this list; `relm.bench.sweep` is the one module",
        "that knows every stage. Extension points (systems, metrics, corpora, scorer kinds) are registries",
        "(`docs/extending.md`).",
        "",
        "| # | room | what it holds | modules |",
        "|---|---|---|---|",
    ]
    for i, room in enumerate(LAYERS, 1):
        lines.append(f"| {i} | {room.name} | {room.role} | {', '.join(f'`{m}`' for m in room.modules)} |")
    lines += ["", "## One sweep's data flow", ""]
    for i, (what, module) in enumerate(FLOW, 1):
        lines.append(f"{i}. {what} (`{module}`)")
    lines += [
        "",
        "Every stage's output is a cache entry keyed by everything it was made from, written atomically and",
        "verified on read; an interrupted sweep, started again, redoes only unfinished stages.",
        "",
        "## Modules",
        "",
    ]
    names = module_names()
    for room in LAYERS:
        members = [n for n in names if room_of(n) is room]
        lines += [f"### {room.name}", "", "| module | role |", "|---|---|"]
        lines += [f"| `{n}` | {_first_line(names[n])} |" for n in members]
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


if __name__ == "__main__":
    sys.stdout.write(markdown())
