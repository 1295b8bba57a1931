"""The `[throughput]` levers: each gives the baseline's numbers (bit for bit where it is bookkeeping), at tiny width."""

from __future__ import annotations

import pytest
import torch

from relm.errors import RelmError
from relm.machine import dispatched_operators
from relm.models.lora import LeanLoraLinear
from relm.presets import load_preset
from tests.test_systems import _module, _paper_at_smoke_width, fake_items


@pytest.fixture(scope="module")
def smoke():
    return load_preset("smoke")


def _paper(smoke, **levers):
    """The paper preset (audio-scoped LoRA, shared q/k/v lora_A) at smoke width with its speed levers off but
    `levers`, without dropout so that outputs compare exactly, in float32."""
    off = {"train.lean_lora": False, "train.pad_to_multiple": 0, "generate.static_cache": False}
    return _paper_at_smoke_width(smoke, off | {"lora.dropout": 0.0, "llm.dtype": "float32"} | levers)


def _with_lora_weights(module):
    """LoRA's B starts at zero, which would hide a wrong branch: give every branch weight."""
    torch.manual_seed(3)
    with torch.no_grad():
        for name, p in module.llm.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.3)
    return module


def _loss_and_grads(module, items):
    module.train()
    module.zero_grad()
    loss = module.losses(items)["loss"]
    loss.backward()
    return loss.detach(), {n: p.grad.clone() for n, p in module.named_parameters() if p.grad is not None}


def _operators(call) -> int:
    return dispatched_operators(torch.device("cpu"), call)["operators"]


def _relative(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a - b).abs().max() / b.abs().max().clamp(min=1e-12)).item()


def test_lean_lora_gives_the_same_loss_and_gradients_with_fewer_operators(smoke):
    items = [dict(it, task="response") for it in fake_items(4)]
    base = _with_lora_weights(_module("re-llm", _paper(smoke)))
    lean = _with_lora_weights(_module("re-llm", _paper(smoke, **{"train.lean_lora": True})))
    layers = [m for m in lean.llm.modules() if isinstance(m, LeanLoraLinear)]
    assert layers and all(m.position_mask is lean.position_mask for m in layers)
    assert sum(m.shared is not None for m in layers) == 3 * lean.llm.config.num_hidden_layers  # q, k, v
    (loss_a, grads_a), (loss_b, grads_b) = _loss_and_grads(base, items), _loss_and_grads(lean, items)
    assert torch.equal(loss_a, loss_b)  # the mask moved before lora_B (no bias): the same numbers
    assert grads_a.keys() == grads_b.keys() and any("lora_A" in n for n in grads_a)
    assert max(_relative(grads_b[n], grads_a[n]) for n in grads_a) < 1e-5  # one q/k/v product: summation order
    calls = []
    for name, sub in lean.llm.named_modules():
        if name.endswith("q_proj.lora_A.default"):
            sub.register_forward_hook(lambda m, i, o: calls.append(1))
    lean.losses(items)
    assert len(calls) == lean.llm.config.num_hidden_layers  # shared lora_A: one product per layer, not three
    ops_base = _operators(lambda: base.losses(items)["loss"].backward())
    ops_lean = _operators(lambda: lean.losses(items)["loss"].backward())
    assert ops_lean < 0.9 * ops_base, (ops_lean, ops_base)


def test_lean_lora_answers_as_before(smoke):
    batch = fake_items(3, 2)
    answers = []
    for lean in (False, True):
        module = _with_lora_weights(_module("re-llm", _paper(smoke, **{"train.lean_lora": lean})))
        answers.append([module.generate(batch, task, 6) for task in ("response", "ser")])
    assert answers[0] == answers[1]


@pytest.mark.parametrize("system", ["re-llm", "text"])
def test_grouped_loss_is_the_accumulated_micro_batch_objective(smoke, system):
    """One batch of 6 in groups of 2 = three micro-batches of 2 averaged (what Lightning's accumulation optimises),
    loss and gradients, though the rows' target lengths differ."""
    # One frame count: the adapter's last step reads past a shorter utterance's end (its convolutions' bias), so a
    # micro-batch's padding moves speech tokens slightly, in both methods alike.
    items = [dict(it, task="response", frames=it["frames"][:48]) for it in fake_items(6)]
    items[1]["target"], items[4]["target"] = "Yes.", "Oh no, that is hard. What happened next, and how are you?"
    no_dropout = {"lora.dropout": 0.0}
    accumulated = _with_lora_weights(_module(system, load_preset("smoke", no_dropout)))
    accumulated.train()
    accumulated.zero_grad()
    parts = [accumulated.losses(items[i : i + 2])["loss"] / 3 for i in range(0, 6, 2)]
    for part in parts:
        part.backward()
    expected = sum(p.detach() for p in parts)
    expected_grads = {n: p.grad.clone() for n, p in accumulated.named_parameters() if p.grad is not None}
    grouped_preset = load_preset("smoke", no_dropout | {"train.loss_group_size": 2})
    grouped = _with_lora_weights(_module(system, grouped_preset))
    loss, grads = _loss_and_grads(grouped, items)
    assert torch.allclose(loss, expected, rtol=1e-6), (loss, expected)
    assert grads.keys() == expected_grads.keys()
    assert max(_relative(grads[n], expected_grads[n]) for n in grads) < 1e-5
    plain, _ = _loss_and_grads(_with_lora_weights(_module(system, load_preset("smoke", no_dropout))), items)
    assert not torch.allclose(plain, expected, rtol=1e-4)  # the token mean over all six weights them otherwise


def test_padding_to_a_multiple_changes_only_the_length(smoke):
    items = [dict(it, task="response") for it in fake_items(3)]
    plain = _with_lora_weights(_module("re-llm", _paper(smoke)))
    padded = _with_lora_weights(_module("re-llm", _paper(smoke, **{"train.pad_to_multiple": 32})))
    a, b = plain.build(items, True, False), padded.build(items, True, False)
    assert b["attention_mask"].shape[1] % 32 == 0 and b["attention_mask"].shape[1] > a["attention_mask"].shape[1]
    n = a["attention_mask"].shape[1]
    assert torch.equal(a["attention_mask"], b["attention_mask"][:, :n]) and not b["attention_mask"][:, n:].any()
    assert torch.equal(a["labels"], b["labels"][:, :n]) and torch.equal(a["inputs_embeds"], b["inputs_embeds"][:, :n])
    assert torch.allclose(plain.losses(items)["loss"], padded.losses(items)["loss"], rtol=1e-5)


def test_host_built_batches_put_every_token_where_it_belongs(smoke):
    module = _module("re-llm", _paper(smoke))
    items = [dict(it, task="response") for it in fake_items(3)]
    items[0]["target"] = "Yes."
    b = module.build(items, True, False)
    table = module.llm.get_input_embeddings()
    parts = module.prompts["response"]
    speech, lengths = module.speech_tokens(items)
    for i, it in enumerate(items):
        target = module.tokenizer(it["target"], add_special_tokens=False)["input_ids"] + module.target_end
        p, m = len(parts.prefix), int(lengths[i])
        length = p + m + len(parts.suffix) + len(target)
        assert int(b["attention_mask"][i].sum()) == length and b["attention_mask"][i, :length].all()
        assert b["labels"][i, length - len(target) : length].tolist() == target
        assert (b["labels"][i, : length - len(target)] == -100).all()
        assert torch.equal(b["inputs_embeds"][i, :p], table(torch.tensor(parts.prefix)))
        assert torch.equal(b["inputs_embeds"][i, p : p + m], speech[i, :m])
        assert b["speech_mask"][i].sum() == m and b["speech_mask"][i, p : p + m].all()


@pytest.mark.parametrize("preset_name", ["smoke", "paper"])
def test_static_cache_decodes_the_eager_tokens(smoke, preset_name, monkeypatch):
    answers = []
    for static in (False, True):
        preset = _paper(smoke) if preset_name == "paper" else load_preset("smoke")
        preset.generate.static_cache = static
        module = _module("re-llm", preset)
        with torch.no_grad():  # large random weights: rows that differ, so a misplaced cache entry would show
            for param in module.llm.parameters():
                param.normal_(0, 0.5)
        monkeypatch.setattr(
            module.tokenizer, "batch_decode", lambda out, **_: [" ".join(map(str, r.tolist())) for r in out]
        )
        batch = fake_items(3, 2)
        answers.append(
            [module.generate(batch, t, 8, reuse_prefix=r) for t in ("response", "ser") for r in (True, False)]
        )
    assert answers[0] == answers[1] and len(set(answers[0][0])) > 1


def test_lever_settings_are_validated(smoke):
    with pytest.raises(RelmError, match="compile_layers needs train.lean_lora"):
        load_preset("paper", {"train.compile_layers": True, "train.lean_lora": False})
    with pytest.raises(RelmError, match="loss_group_size"):
        load_preset("smoke", {"train.loss_group_size": -1})
    from relm.bench.distributed import check_strategy

    with pytest.raises(RelmError, match="compile_layers runs in one process"):
        check_strategy(load_preset("paper"), 2)
    check_strategy(load_preset("paper-fp32"), 2)  # uncompiled: DDP as before


@pytest.mark.slow
def test_compiled_layers_keep_the_loss_and_run_eagerly_for_evaluation(smoke):
    """Regional torch.compile (training only): the step-1 loss within 2e-3 of eager; eval mode runs eagerly."""
    pytest.importorskip("torch._inductor")
    from relm.models.compiling import compile_available

    if reason := compile_available(torch.device("cpu")):
        pytest.skip(reason)
    items = [dict(it, task="response") for it in fake_items(4)]
    lean = {"train.lean_lora": True, "lora.dropout": 0.05}
    eager = _with_lora_weights(_module("re-llm", _paper(smoke, **lean)))
    compiled = _with_lora_weights(
        _module("re-llm", _paper(smoke, **lean, **{"train.compile_layers": True, "train.pad_to_multiple": 16}))
    )
    assert compiled.compiled is not None and eager.compiled is None
    torch.manual_seed(0)
    (loss_a, _), (loss_b, grads) = _loss_and_grads(eager, items), _loss_and_grads(compiled, items)
    assert torch.isfinite(loss_b) and abs(loss_b - loss_a) / loss_a < 2e-3, (loss_a, loss_b)
    assert all(torch.isfinite(g).all() for g in grads.values())
    compiled.eval()
    assert all(layer._compiled_call_impl is None for layer in compiled.compiled.layers)
    compiled.train()
    assert all(layer._compiled_call_impl is not None for layer in compiled.compiled.layers)


@pytest.mark.slow
def test_the_paper_presets_levers_train_through_lightning(smoke, tmp_path):
    """Every lever of `paper` (compiled layers included) through Lightning's loop, validation and answers."""
    from relm.bench.generation import answer
    from relm.bench.training import train_system
    from relm.models.compiling import compile_available
    from tests.conftest import runtime_of
    from tests.test_systems import EMO_DIM, SPEECH_DIM

    if reason := compile_available(torch.device("cpu")):
        pytest.skip(reason)
    paper = _paper_at_smoke_width(
        smoke,
        {"train.compile_layers": True, "train.max_steps": 2, "train.warmup_steps": 1, "runtime.device": "cpu"}
        | {"speech_init": "", "generate.max_new_tokens": 4, "generate.ser_max_new_tokens": 4},
    )
    module, info = train_system(
        "re-llm",
        paper,
        runtime_of(paper),
        fake_items(32),
        fake_items(4, 1),
        SPEECH_DIM,
        EMO_DIM,
        0,
        tmp_path,
        progress=False,
    )
    assert info["optimizer_steps_done"] == 2 and module.compiled is not None
    assert info["val_history"] and all(torch.isfinite(torch.tensor(v)) for _, v in info["val_history"])
    assert len(answer(module, fake_items(2), paper, runtime_of(paper), progress=False)) == 2
