"""The four systems through the real code path at smoke size (and the paper preset, shrunk)."""

from __future__ import annotations

import csv

import pytest
import torch

from relm.bench.dataset import DatasetBundle
from relm.bench.generation import answer
from relm.bench.training import train_system
from relm.data.schema import LABELS, Manifest
from relm.errors import RelmError
from relm.models.adapter import SubsamplingAdapter
from relm.models.llm import load_llm, next_token_loss
from relm.models.systems import SystemLitModule
from relm.presets import load_preset
from tests.conftest import runtime_of

SPEECH_DIM, EMO_DIM = 32, 16


def fake_items(n: int, seed: int = 0) -> list[dict]:
    """Items whose frames carry the label (so speech systems can learn it), transcripts do not."""
    g = torch.Generator().manual_seed(seed)
    items = []
    for i in range(n):
        label = i % len(LABELS)
        frames = torch.randn(48 + (i % 4) * 8, SPEECH_DIM, generator=g) * 0.5
        frames[:, label] += 2.0
        items.append(
            {
                "utt_id": f"u{i:03d}",
                "frames": frames,
                "emotion": torch.randn(EMO_DIM, generator=g),
                "avd": torch.rand(3, generator=g),
                "label": label,
                "emotion_name": LABELS[label],
                "transcript": "I got the results of my exam today.",
                "target": "I am sorry to hear that. How are you feeling?",
            }
        )
    return items


@pytest.fixture(scope="module")
def smoke():
    return load_preset("smoke")


def _losses(log_dir):
    rows = list(csv.DictReader(open(next(log_dir.rglob("metrics.csv")))))
    return [float(r["train/loss"]) for r in rows if r.get("train/loss")]


@pytest.mark.parametrize("system", ["text", "speech", "re-llm"])
def test_system_trains_loss_falls_and_answers(system, smoke, tmp_path):
    module, info = train_system(
        system,
        smoke,
        runtime_of(smoke),
        fake_items(40),
        fake_items(10, 1),
        SPEECH_DIM,
        EMO_DIM,
        0,
        tmp_path,
        progress=False,
    )
    assert info["steps"] == 30
    losses = _losses(tmp_path)
    assert len(losses) >= 5 and sum(losses[-2:]) / 2 < sum(losses[:2]) / 2, losses
    rows = answer(module, fake_items(4, 2), smoke, runtime_of(smoke), progress=False)
    assert len(rows) == 4 and all(isinstance(r["response"], str) and isinstance(r["ser_answer"], str) for r in rows)
    assert (rows[0]["ser_head"] in LABELS) == (system != "text")


def test_text_zs_trains_nothing_and_answers(smoke, tmp_path):
    module, info = train_system(
        "text-zs", smoke, runtime_of(smoke), fake_items(8), [], SPEECH_DIM, EMO_DIM, 0, tmp_path, progress=False
    )
    assert info["steps"] == 0 and info["trainable_params"] == 0
    assert len(answer(module, fake_items(3), smoke, runtime_of(smoke), progress=False)) == 3


def _module(system, preset, seed=0):
    torch.manual_seed(seed)
    llm, tok, _ = load_llm(preset.llm)
    torch.manual_seed(seed)
    return SystemLitModule(system, preset, llm, tok, SPEECH_DIM, EMO_DIM)


def test_ablations_sit_between_speech_and_re_llm(smoke):
    """Without embedding and A/V/D loss RE-LLM is `speech`; each ablation removes exactly one part."""
    speech, noemb, noaux = _module("speech", smoke), _module("re-llm-noemb", smoke), _module("re-llm-noaux", smoke)
    shapes = lambda m: {n: tuple(p.shape) for n, p in m.named_parameters() if p.requires_grad}  # noqa: E731
    items = [dict(it, task="response") for it in fake_items(4)]
    a, b = speech.losses(items), noemb.losses(items)
    assert shapes(noemb) == shapes(speech) | {"avd_head.weight": (3, 32)}
    assert all(torch.allclose(a[k], b[k]) for k in ("response_ce", "ser_ce")) and "avd_mse" in b  # same init + A/V/D
    assert "avd_mse" not in noaux.losses(items) and noaux.adapter.convs[0].in_channels == SPEECH_DIM + EMO_DIM
    full = _module("re-llm", smoke)
    assert shapes(full) == shapes(noaux) | {"avd_head.weight": (3, 32)}
    assert full.adapter.convs[0].in_channels == SPEECH_DIM + EMO_DIM and "avd_mse" in full.losses(items)


def test_adapter_is_the_papers_shape():
    adapter = SubsamplingAdapter(2304, 4096)
    assert sum(p.numel() for p in adapter.parameters()) == 204_760_064  # 204.8 M, as computed from the release
    out, lengths = adapter(torch.randn(1, 64, 2304), torch.tensor([64]))
    assert out.shape == (1, 8, 4096) and lengths.tolist() == [8]


def test_bad_inputs_are_clear_errors(smoke, tmp_path):
    speech = _module("speech", smoke)
    short = fake_items(1)[0] | {"frames": torch.randn(3, SPEECH_DIM), "task": "response"}
    with pytest.raises(RelmError, match="audio too short for the adapter"):
        speech.losses([short])
    text = _module("text", smoke)
    with pytest.raises(RelmError, match="empty transcript"):
        text.losses([fake_items(1)[0] | {"transcript": "  ", "task": "response"}])
    import pandas as pd

    df = pd.DataFrame([{"utt_id": "x", "emotion": "fear", "transcript": "hi", "split": "test"}])
    bundle = DatasetBundle(
        "d",
        Manifest(df, "d", ".", "p"),
        "h",
        {"x": torch.zeros(8, 2)},
        {"x": torch.zeros(2)},
        {"x": torch.zeros(3)},
        "none",
        {},
    )
    with pytest.raises(RelmError, match="outside the class set"):
        bundle.items("test")
    speech.save_trained(tmp_path / "speech.safetensors")
    with pytest.raises(RelmError, match="checkpoint is for"):
        _module("re-llm", smoke).load_trained(tmp_path / "speech.safetensors")
    other = load_preset("smoke", {"name": "other"})
    with pytest.raises(RelmError, match="checkpoint is for"):
        _module("speech", other).load_trained(tmp_path / "speech.safetensors")
    again = _module("speech", smoke, seed=1)
    again.load_trained(tmp_path / "speech.safetensors")
    assert torch.equal(again.adapter.fc1.weight, speech.adapter.fc1.weight)


def _paper_at_smoke_width(smoke, overrides: dict):
    """The paper preset with the smoke preset's tiny random models, its layers uncompiled unless asked (compiling
    takes half a minute on a CPU: tests/test_levers.py checks it)."""
    return load_preset(
        "paper",
        {
            "llm": smoke.llm.__dict__ | {"trust_remote_code": False},
            "lora.target_modules": None,
            "speech_encoder": smoke.speech_encoder.__dict__,
            "emotion_encoder": smoke.emotion_encoder.__dict__,
            "adapter.inner_dim": 16,
            "train.compile_layers": False,
        }
        | overrides,
    )


def test_paper_preset_wiring_at_tiny_width(smoke, tmp_path):
    """The paper preset's code path (partial LoRA, bf16-mixed, accumulation) with tiny random models."""
    paper = _paper_at_smoke_width(
        smoke,
        {
            "train.max_steps": 3,
            "train.warmup_steps": 1,
            "train.devices": 1,
            "generate.max_new_tokens": 4,
            "generate.ser_max_new_tokens": 4,
            "runtime.device": "cpu",
            "speech_init": "",  # the BLSP-Emo start has its own tests (test_blsp_emo.py)
        },
    )
    t = paper.train
    assert paper.lora.scope == "audio" and (t.batch_size, t.accumulate, t.loss_group_size) == (16, 1, 2)
    assert t.lean_lora and paper.generate.static_cache  # the paper's levers but compilation
    module, info = train_system(
        "re-llm",
        paper,
        runtime_of(paper),
        fake_items(48),
        fake_items(4, 1),
        SPEECH_DIM,
        EMO_DIM,
        0,
        tmp_path,
        progress=False,
    )
    assert module.position_mask is not None and info["steps"] == 3
    assert len(answer(module, fake_items(2), paper, runtime_of(paper), progress=False)) == 2


def test_ctrl_c_during_training_is_a_keyboard_interrupt_not_lightnings_exit(smoke, tmp_path, monkeypatch):
    def interrupted(self, items, batch_idx):
        raise KeyboardInterrupt

    monkeypatch.setattr(SystemLitModule, "training_step", interrupted)
    with pytest.raises(KeyboardInterrupt):
        train_system(
            "text", smoke, runtime_of(smoke), fake_items(8), [], SPEECH_DIM, EMO_DIM, 0, tmp_path, progress=False
        )
    import signal

    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_release_fidelity_empty_test_instruction_and_no_end_of_turn_after_a_cut_target(smoke):
    preset = load_preset("smoke", {"prompts.eval_instruction": ""})
    module = _module("speech", preset)
    train, test = module.prompts["response"], module.prompts["response_eval"]
    assert len(test.prefix) < len(train.prefix) and test.suffix == train.suffix
    assert _module("speech", smoke).prompts["response_eval"] == _module("speech", smoke).prompts["response"]
    item = fake_items(1)[0] | {"task": "response", "target": "I see."}
    whole = module.build([item], with_target=True, left_pad=False)["labels"][0].tolist()
    cut = module.build([item | {"target_complete": False}], with_target=True, left_pad=False)["labels"][0].tolist()
    assert whole[-1] == module.target_end[-1] and cut == whole[: -len(module.target_end)]


@pytest.mark.parametrize("system", ["text-zs", "text", "re-llm"])
def test_prefix_reuse_and_length_order_give_the_same_tokens(system, smoke, monkeypatch):
    """`answer`'s fast path (length-sorted batches, the prompt prefix's cache computed once) is token-identical to
    the previous method (the items' order, the whole prompt per batch), in the items' order."""
    module = _module(system, smoke)
    torch.manual_seed(1)
    with torch.no_grad():  # larger random weights: outputs that depend on the prompt, so a mix-up shows
        for param in module.llm.parameters():
            param.normal_(0, 0.5)
    # Compare token ids, not text: the random tiny model's tokens often decode to nothing.
    ids_text = lambda out, **_: [" ".join(map(str, row.tolist())) for row in out]  # noqa: E731
    monkeypatch.setattr(module.tokenizer, "batch_decode", ids_text)
    items = fake_items(7, 3)
    for i, it in enumerate(items):  # prompts of different lengths, so sorting and padding both matter
        it["transcript"] = " ".join(["I got the results of my exam today."] * (1 + i % 3))
    preset = load_preset("smoke", {"generate.batch_size": 3, "train.precision": "32-true"})
    fast = answer(module, items, preset, runtime_of(preset), progress=False, fast=True)
    slow = answer(module, items, preset, runtime_of(preset), progress=False, fast=False)
    assert [r["id"] for r in fast] == [it["utt_id"] for it in items]
    assert [(r["response"], r["ser_answer"]) for r in fast] == [(r["response"], r["ser_answer"]) for r in slow]
    assert all(r["response"] for r in fast) and len({r["response"] for r in fast}) > 1
    assert len(module._prefix_kv) == 2  # one cache per prompt (response, SER), reused by every batch


def test_audio_scoped_lora_is_skipped_where_masked_and_gives_the_same_tokens(smoke, monkeypatch):
    """With `lora.scope: audio`, a forward without speech positions (prompt prefix, decoding steps) switches the
    LoRA branches off instead of zeroing them: the same tokens, and lora_B runs only in the prefills."""
    paper = _paper_at_smoke_width(
        smoke,
        {
            "generate.max_new_tokens": 6,
            "generate.ser_max_new_tokens": 3,
            "generate.batch_size": 3,
            "train.precision": "32-true",
            "runtime.device": "cpu",
            "speech_init": "",
        },
    )
    module = _module("re-llm", paper)
    torch.manual_seed(1)
    with torch.no_grad():  # LoRA's B starts at zero: give every branch weight, so a skipped one would show
        for param in module.llm.parameters():
            param.normal_(0, 0.5)
    calls = []
    for name, sub in module.llm.named_modules():
        if name.endswith("lora_B.default"):
            sub.register_forward_hook(lambda m, i, o: calls.append(o.shape[1]))
    ids_text = lambda out, **_: [" ".join(map(str, row.tolist())) for row in out]  # noqa: E731
    monkeypatch.setattr(module.tokenizer, "batch_decode", ids_text)
    batch = fake_items(3, 2)  # the same batches both ways: a different padding alone can flip a near-tie
    outputs, counts = [], []
    for skip in (True, False):
        module.position_mask.skip_unmasked = skip
        calls.clear()
        outputs.append([module.generate(batch, task, 6, reuse_prefix=True) for task in ("response", "ser")])
        counts.append(list(calls))
    assert outputs[0] == outputs[1] and len(set(outputs[0][0])) > 1
    assert all(n > 1 for n in counts[0])  # prefills only: no single-token decoding step ran a LoRA branch
    assert 1 in counts[1] and len(counts[0]) < len(counts[1]) / 2
    answer(module, batch, paper, runtime_of(paper), progress=False, fast=False)
    assert module.position_mask.skip_unmasked is False  # `answer`'s previous method computes every branch
    items = [dict(it, task="response") for it in fake_items(2)]
    module.train()
    calls.clear()
    assert module.losses(items)["loss"].requires_grad and len(calls) == len(module.position_mask.lora_layers)


@pytest.mark.parametrize("system", ["text", "re-llm", "re-llm-audio-lora"])
def test_target_only_logits_give_the_labels_loss_and_its_gradients(system, smoke):
    """The LM head over target positions only: the same loss and trainable gradients as the LLM's `labels=` path."""
    preset = _paper_at_smoke_width(smoke, {}) if system == "re-llm-audio-lora" else smoke
    module = _module(system.removesuffix("-audio-lora"), preset)
    if system == "re-llm-audio-lora":
        assert module.position_mask is not None  # the decoder pre-hook runs in both paths
    items = [dict(it, task="response") for it in fake_items(6)]
    items[1]["target"] = "Yes."  # targets of different lengths: right padding after the shorter one
    b = module.build(items, with_target=True, left_pad=False)
    if module.position_mask is not None:
        module.position_mask.mask = b["speech_mask"]
    grads = []
    for target_only in (True, False):
        module.zero_grad()
        torch.manual_seed(0)  # the paper preset's LoRA dropout draws the same masks in both paths
        loss = next_token_loss(module.llm, b, target_only)
        loss.backward(retain_graph=True)
        grads.append((loss.detach(), {n: p.grad.clone() for n, p in module.named_parameters() if p.grad is not None}))
    (ours, ours_grad), (ref, ref_grad) = grads
    assert torch.allclose(ours, ref, atol=1e-6), (ours, ref)
    assert ours_grad.keys() == ref_grad.keys() and any("lora" in n for n in ours_grad)
    # Equal up to float32 summation order: the largest difference within 1e-4 of each gradient's scale (a zero
    # gradient, as lora_A's while lora_B starts at zero, must stay zero: no 0/0 that compares as not-greater).
    bad = {
        n: d
        for n in ours_grad
        if (d := ((ours_grad[n] - ref_grad[n]).abs().max() / ref_grad[n].abs().max().clamp(min=1e-12)).item()) > 1e-4
    }
    assert not bad, bad
