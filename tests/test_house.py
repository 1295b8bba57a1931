"""The shape of the house: registries, one metric table, small files, no cycles, a generated schema doc."""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import pytest

from relm.cli import main
from relm.data.corpora import DATASETS
from relm.errors import RelmError
from relm.metrics.table import METRICS, metric_names
from relm.models.system_table import SYSTEMS
from relm.registry import Registry
from relm.results import schema_markdown
from relm.scoring.empathy import SCORERS
from tests.conftest import ROOT

PACKAGE = ROOT / "relm"
# The modules that register systems, datasets and scorer kinds: the only ones allowed to spell their names.
REGISTERING = {PACKAGE / "models/system_table.py", PACKAGE / "data/corpora/__init__.py", PACKAGE / "scoring/empathy.py"}


def _modules() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def _string_literals(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef)
        and node.body
        and isinstance(node.body[0], ast.Expr)
    }
    return {
        n.value
        for n in ast.walk(tree)
        if isinstance(n, ast.Constant) and isinstance(n.value, str) and id(n) not in docstrings
    }


def test_registry_suggests_the_closest_name():
    reg: Registry[int] = Registry("colour")
    reg.register("green", 1)
    reg.register("grey", lazy="math:pi")
    assert reg.get("green") == 1 and abs(reg.get("grey") - 3.14159) < 1e-5
    with pytest.raises(RelmError, match=r"unknown colour 'gren'; did you mean 'green'\? \(known: green, grey\)"):
        reg.get("gren")
    with pytest.raises(RelmError, match="registered twice"):
        reg.register("green", 2)
    with pytest.raises(RelmError, match="did you mean 're-llm'"):
        SYSTEMS.get("rellm")


def test_no_module_outside_the_registries_names_a_system_dataset_or_scorer():
    names = set(SYSTEMS.names()) | set(DATASETS.names()) | set(SCORERS.names())
    offenders = []
    for path in _modules():
        if path in REGISTERING:
            continue
        hits = _string_literals(path) & names
        offenders += [f"{path.relative_to(ROOT)}: {sorted(hits)}"] if hits else []
    assert not offenders, offenders


def test_no_file_in_the_package_is_over_300_lines():
    long = {str(p.relative_to(ROOT)): n for p in _modules() if (n := len(p.read_text().splitlines())) > 300}
    assert not long, long


def _imports(path: Path) -> set[str]:
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.add(node.module)
            out |= {f"{node.module}.{a.name}" for a in node.names}
        elif isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
    return out


def test_there_is_no_import_cycle():
    modules = {".".join(p.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__"): p for p in _modules()}
    graph = {m: {i for i in _imports(p) if i in modules and i != m} for m, p in modules.items()}
    state: dict[str, int] = {}

    def visit(m: str, stack: list[str]) -> None:
        state[m] = 1
        for n in graph[m]:
            if state.get(n) == 1:
                pytest.fail("import cycle: " + " -> ".join(stack[stack.index(n) :] + [m, n]))
            if n not in state:
                visit(n, stack + [m])
        state[m] = 2

    for m in graph:
        if m not in state:
            visit(m, [])


def test_tests_are_imported_by_nothing_outside_tests():
    for folder in ("relm", "scripts", "benchmarks"):
        for path in (ROOT / folder).rglob("*.py"):
            assert not any(i == "tests" or i.startswith("tests.") for i in _imports(path)), path


def test_the_schema_doc_is_generated_from_the_typed_dicts():
    doc = (ROOT / "docs" / "results-schema.md").read_text()
    assert doc == schema_markdown(), "run: python -m relm.results > docs/results-schema.md"


def test_the_metric_table_holds_each_fact_once():
    assert metric_names(gated=True) == ["er", "ip", "ex", "ua", "wa", "macro_f1", "ua_head"]
    assert METRICS.get("wa").p_key == "p_permutation" and metric_names(confirmatory=True) == ["er", "ex", "ua"]
    assert METRICS.get("ua_head").primary_p({"p_permutation": 0.1}) is None
    assert [n for n, m in METRICS.items() if not m.higher_is_better] == [
        "incongruence",
        "repeat_rate",
        "off_topic_rate",
    ]
    assert metric_names(family="replies", headline=False, gated=False) == [
        "distinct_1",
        "distinct_2",
        "repeat_rate",
        "reply_words",
        "relevance",
        "off_topic_rate",
    ]


def test_relm_ls_lists_systems_with_roles(capsys):
    assert main(["ls", "systems", "--json"]) == 0
    rows = {r["name"]: r["role"] for r in json.loads(capsys.readouterr().out)}
    assert rows == {
        "text-zs": "zero_shot",
        "text": "baseline",
        "speech": "baseline",
        "re-llm": "proposed",
        "re-llm-noemb": "ablation",
        "re-llm-noaux": "ablation",
        "blsp-emo": "baseline",
    }
    for what in ("datasets", "presets", "scorers", "models", "encoders", "metrics"):
        assert main(["ls", what]) == 0
        out = capsys.readouterr().out
        assert len(out.splitlines()) >= 3, what
    assert re.search(
        r"tfidf\s+relm\.scoring\.empathy_tfidf:TfidfScorer", main(["ls", "scorers"]) or capsys.readouterr().out
    )


def test_every_command_line_option_has_help_text():
    import argparse

    from relm.cli import build_parser

    def walk(parser: argparse.ArgumentParser, where: str):
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, sub in action.choices.items():
                    yield from walk(sub, f"{where} {name}")
            elif not isinstance(action, argparse._HelpAction):
                yield where, action

    missing = [f"{where} {a.option_strings or a.dest}" for where, a in walk(build_parser(), "relm") if not a.help]
    assert not missing, missing


def test_version(capsys):
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.startswith("relm ")


def test_the_architecture_doc_is_generated_and_no_room_imports_upward():
    from relm.architecture import LAYERS, markdown, module_names, room_of, upward_imports

    assert (ROOT / "docs/architecture.md").read_text() == markdown(), (
        "run: python -m relm.architecture > docs/architecture.md"
    )
    assert all(room_of(name) is not None for name in module_names())  # every module sits in a room
    assert room_of("relm.bench.sweep").name == "bench" and room_of("relm.metrics.uar.uar").name == "evaluate-modules"
    assert upward_imports() == []
    rank = {room.name: i for i, room in enumerate(LAYERS)}
    assert rank["models"] < rank["scoring"] < rank["bench"] < rank["commands"]


def test_the_runtime_is_resolved_only_in_its_own_module():
    calls = []
    for path in _modules():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) in ("resolve_device", "choose_precision"):
                calls.append(str(path.relative_to(ROOT)))
    assert set(calls) == {"relm/runtime.py"}, calls


def test_results_are_validated_strictly_against_the_schema_before_writing(tmp_path):
    import json

    from relm.bench.publish import finish
    from relm.bench.stages import StageTimer
    from relm.results import validate_results

    good = {"sweep_id": "s", "seeds": [0], "precision": {"train_and_generate": "32-true"}, "threads": 2}
    validate_results(good, "results.json")
    with pytest.raises(RelmError, match=r"results.json: results do not match relm/results.py at devcie: Extra inputs"):
        validate_results(good | {"devcie": "cpu"}, "results.json")
    with pytest.raises(RelmError, match=r"at seeds.0: Input should be a valid integer"):
        validate_results(json.loads(json.dumps(good | {"seeds": ["0"]})), "results.json")  # a number written as text
    with pytest.raises(RelmError, match=r"at data.d.teacher: Input should be a valid dictionary"):
        validate_results(good | {"data": {"d": {"teacher": "x"}}}, "results.json")
    with pytest.raises(RelmError, match="typo_key"):
        finish(good | {"typo_key": 1}, StageTimer(), tmp_path / "sweep", tmp_path)  # type: ignore[arg-type]
    assert not (tmp_path / "sweep").exists()  # refused before anything was written


def test_a_bad_root_writes_nothing_even_where_precision_auto_would_measure_the_cpu(tmp_path, tmp_cache, capsys):
    from relm.cli import main

    (tmp_path / "empty").mkdir()
    args = ["bench", "--preset", "cpu", "--dataset", "esd", "--root", str(tmp_path / "empty"), "--no-wandb", "--quiet"]
    assert main([*args, "--out", str(tmp_path / "runs")]) == 2
    err = capsys.readouterr().err
    assert err.count("relm: error:") == 1 and ("is empty" in err or "is not available" in err), err
    assert not tmp_cache.exists() and not (tmp_path / "runs").exists()  # no machine/precision-*.json either
