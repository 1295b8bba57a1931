"""Every shipped config parses; overrides and unknown keys behave."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from relm.config import Preset
from relm.errors import RelmError
from relm.presets import PRESETS, help_text, load_preset

SHIPPED = [PRESETS.get(name) for name in PRESETS]


def test_the_three_presets_ship():
    assert {p.stem for p in SHIPPED} >= {"smoke", "cpu", "paper", "paper-tiny"}


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.stem)
def test_every_shipped_preset_parses(path: Path):
    preset = load_preset(path.stem)
    assert isinstance(preset, Preset) and preset.name == path.stem
    assert set(yaml.safe_load(path.read_text())) - {"extends"} <= set(preset.to_dict())


def test_paper_preset_carries_the_papers_hyperparameters():
    t = load_preset("paper").train
    assert (t.lr, t.weight_decay, t.warmup_steps, t.batch_size * t.accumulate, t.epochs) == (2e-5, 0.05, 200, 16, 3)
    lora = load_preset("paper").lora
    assert (lora.r, lora.alpha, lora.dropout, lora.scope) == (16, 16, 0.05, "audio")
    assert load_preset("paper").train.precision.startswith("bf16")


def test_overrides_and_errors():
    assert load_preset("smoke", {"train.max_steps": 3}).train.max_steps == 3
    with pytest.raises(RelmError, match=r"unknown key\(s\) \['bogus'\]"):
        load_preset("smoke", {"train.bogus": 1})
    with pytest.raises(RelmError, match="unknown preset 'huge'"):
        load_preset("huge")
    with pytest.raises(RelmError, match="did you mean 'smoke'"):
        load_preset("smoek")
    assert load_preset("cpu").hash() != load_preset("smoke").hash()


def test_the_scorer_kinds_parameters_and_cross_validation_are_checked_before_work(tmp_path):
    from relm.bench.preparation import SweepConfig, prepare_sweep

    paper = load_preset("paper")
    assert paper.scorer == "epitome" and paper.scorer_params == {"encoder": "roberta-base"}
    assert load_preset("smoke", {"scorer_params": {"C": 0.5}}).scorer_params == {"C": 0.5}
    bad = SweepConfig(preset="smoke", overrides={"scorer_params": {"encoder": "roberta-base"}}, out_root=tmp_path)
    with pytest.raises(RelmError, match=r"=\{\}\): scorer kind 'tfidf' takes no encoder \(it takes C, min_df\)"):
        prepare_sweep(bad)
    with pytest.raises(RelmError, match="scorer_cv_folds must be 0 \\(none\\) or at least 2, got 1"):
        load_preset("smoke", {"scorer_cv_folds": 1})


def test_a_preset_extends_another_and_a_cycle_is_one_error(tmp_path):
    (tmp_path / "mine.yaml").write_text("extends: paper\nname: mine\ntrain: {select: best, lr: 0.0001}\n")
    mine, paper = load_preset(str(tmp_path / "mine.yaml")), load_preset("paper")
    assert (mine.name, mine.train.select, mine.train.lr) == ("mine", "best", 0.0001)
    assert mine.train.warmup == paper.train.warmup == "log" and mine.llm == paper.llm  # the rest is paper's
    (tmp_path / "loop.yaml").write_text(f"extends: {tmp_path / 'loop.yaml'}\nname: loop\n")
    with pytest.raises(RelmError, match="without cycles"):
        load_preset(str(tmp_path / "loop.yaml"))
    with pytest.raises(RelmError, match="train.select must be one of"):
        load_preset("paper", {"train.select": "median"})


def test_a_users_own_yaml_file_is_a_preset(tmp_path):
    text = PRESETS.get("smoke").read_text().replace("name: smoke", "name: mine")
    (tmp_path / "mine.yaml").write_text(text)
    assert load_preset(str(tmp_path / "mine.yaml")).name == "mine"
    (tmp_path / "bad.yaml").write_text(text.replace("  instruction: ", "  instruction: ''\n  old: "))
    with pytest.raises(RelmError, match="bad.yaml"):
        load_preset(str(tmp_path / "bad.yaml"))
    with pytest.raises(RelmError, match="preset file not found"):
        load_preset(str(tmp_path / "absent.yaml"))


def test_every_preset_field_has_help():
    text = help_text()
    for line in text.splitlines():
        if not line.rstrip().endswith(":"):  # a section heading
            assert line.split("): ", 1)[1].strip(), f"no docstring: {line}"
    assert "max_steps (default -1): The training budget in optimizer steps" in text


def test_paper_tiny_is_the_paper_preset_at_toy_width():
    """Every setting that decides the code path is the paper's; only sizes, models and budgets shrink."""
    paper, tiny = load_preset("paper"), load_preset("paper-tiny")
    assert tiny.speech_encoder.pad_to_30s == paper.speech_encoder.pad_to_30s is True
    assert tiny.prompts == paper.prompts and tiny.teacher.prompt == paper.teacher.prompt == "paper"
    assert (tiny.teacher.system, tiny.teacher.user) == (paper.teacher.system, paper.teacher.user)
    assert tiny.lora.scope == paper.lora.scope == "audio" and tiny.train.precision == paper.train.precision
    assert (tiny.adapter.kernel, tiny.adapter.stride, tiny.adapter.n_conv) == (
        paper.adapter.kernel,
        paper.adapter.stride,
        paper.adapter.n_conv,
    )
    assert paper.runtime.device == "cuda" and tiny.runtime.device == "auto"
    assert not paper.llm.trust_remote_code  # Qwen v1 runs as its native conversion
    # The stand-ins have the released layouts: Qwen v1 converted natively, BLSP-Emo read by the same loader.
    assert (paper.llm.model, paper.speech_init) == ("qwen-7b-chat", "blsp-emo-release")
    assert (tiny.llm.model, tiny.speech_init) == ("tiny-qwen-v1", "tiny-blsp-emo")
    assert tiny.lora.target_modules == paper.lora.target_modules and tiny.lora.r == paper.lora.r
    levers = lambda p: (p.train.loss_group_size, p.train.lean_lora, p.train.pad_to_multiple, p.generate.static_cache)  # noqa: E731
    assert levers(tiny) == levers(paper) and tiny.train.accumulate == paper.train.accumulate == 1
    assert paper.train.compile_layers and not tiny.train.compile_layers  # compiling: tests/test_levers.py
