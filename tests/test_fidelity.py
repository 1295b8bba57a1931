"""The release recipe's switches (docs/fidelity.md), each checked at tiny width."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from scipy import stats as sps

from relm.bench.comparisons import compare_systems
from relm.bench.teacher import Teacher, teacher_targets
from relm.bench.teacher_decoding import clean
from relm.bench.training import train_system
from relm.fidelity import ELEMENTS, fidelity, markdown, recipe_line
from relm.models.blsp_emo import lora_to_peft, peft_to_lora
from relm.models.llm import stop_ids, target_end_ids, tiny_tokenizer
from relm.models.lora import add_lora
from relm.presets import load_preset
from tests.conftest import runtime_of
from tests.test_systems import EMO_DIM, SPEECH_DIM, _module, fake_items

ROOT = Path(__file__).resolve().parents[1]


def test_the_fidelity_doc_is_generated_current_and_complete():
    assert (ROOT / "docs" / "fidelity.md").read_text() == markdown(), "run: python -m relm.fidelity > docs/fidelity.md"
    assert len(ELEMENTS) >= 25
    switches = [e.switch for e in ELEMENTS if e.switch]
    paper = load_preset("paper")
    assert len(switches) == len(set(switches)) and all(s in fidelity(paper)["switches"] for s in switches)


def test_the_paper_presets_carry_the_release_switches():
    paper = load_preset("paper")
    t = paper.train
    assert (t.select, t.warmup, t.devices, t.val_per_epoch, t.target_end) == ("last", "log", 1, 1, "release")
    assert "ser_head" in t.freeze and paper.teacher.clean == "release" and paper.teacher.decoding == "release"
    assert paper.lora.shared_qkv_a and paper.generate.stop == "release"
    speed = {  # the speed levers: the release's objective in one micro-batch, fused and launch-light kernels
        "train.batch_size": (16, 2),
        "train.accumulate": (1, 8),
        "train.lean_lora": (True, False),
        "train.compile_layers": (True, False),
        "train.pad_to_multiple": (64, 0),
        "generate.static_cache": (True, False),
    }
    precision = {"llm.dtype": ("bfloat16", "float32"), "train.precision": ("bf16-mixed", "32-true")}
    deviations = {d["switch"]: (d["value"], d["release"]) for d in fidelity(paper)["deviations"]}
    assert deviations == precision | speed and t.loss_group_size == 2
    fp32 = load_preset("paper-fp32")
    assert (fp32.llm.dtype, fp32.train.precision, fp32.name) == ("float32", "32-true", "paper-fp32")
    assert fidelity(fp32) == fidelity(paper) | {"recipe": "release", "deviations": []} | {
        "switches": fidelity(paper)["switches"] | {k: release for k, (_, release) in (precision | speed).items()}
    }
    assert recipe_line(fidelity(fp32)).startswith("Recipe: the release recipe")
    assert "train.precision='bf16-mixed' (release '32-true')" in recipe_line(fidelity(paper))
    # the cpu presets keep what they measured best, and their results say so
    assert load_preset("cpu").train.select == "last" and fidelity(load_preset("cpu"))["recipe"] == "deviates"


def test_select_last_answers_with_the_final_weights_and_validates_once_per_epoch(tmp_path, monkeypatch):
    from relm.bench import callbacks

    preset = load_preset(
        "smoke",
        {
            "train.select": "last",
            "train.val_per_epoch": 1,
            "train.max_steps": -1,
            "train.epochs": 3,
            "train.accumulate": 2,
            "train.ser_prompt_fraction": 0.0,
        },
    )
    final: dict = {}
    step_end = callbacks.ValidateAndSelect.on_train_batch_end

    def snapshot(self, trainer, module, *args):
        step_end(self, trainer, module, *args)
        if trainer.global_step == trainer.max_steps:  # the weights right after the last optimizer step
            final.update({n: p.detach().clone() for n, p in module.named_parameters() if p.requires_grad})

    monkeypatch.setattr(callbacks.ValidateAndSelect, "on_train_batch_end", snapshot)
    # 20 items in micro-batches of 4: 5 per pass, 3 optimizer steps per pass (the last one accumulates one)
    module, info = train_system(
        "speech",
        preset,
        runtime_of(preset),
        fake_items(20),
        fake_items(8, 1),
        SPEECH_DIM,
        EMO_DIM,
        0,
        tmp_path,
        progress=False,
    )
    assert info["steps"] == 9 and info["optimizer_steps_done"] == 9
    assert [s for s, _ in info["val_history"]] == [3, 6, 9]  # once per epoch, counted in optimizer steps
    assert info["selected_step"] == 9 and info["last_val_loss"] == pytest.approx(info["val_history"][-1][1], abs=1e-6)
    own = dict(module.named_parameters())
    assert final and all(torch.equal(own[n].cpu(), v.cpu()) for n, v in final.items())


def test_select_best_puts_back_a_copy_of_the_best_validations_weights(tmp_path, monkeypatch):
    """The snapshot is a copy: relm's earlier one was a view of the live CPU parameters (`.cpu()` of a CPU tensor
    is itself), so on a CPU it always answered with the last weights."""
    from relm.bench import callbacks

    snaps: dict = {}
    validate = callbacks.ValidateAndSelect.validate

    def snapshot(self, trainer, module):
        validate(self, trainer, module)
        snaps[trainer.global_step] = {n: p.detach().clone() for n, p in module.named_parameters() if p.requires_grad}

    monkeypatch.setattr(callbacks.ValidateAndSelect, "validate", snapshot)
    overrides = {"train.select": "best", "train.max_steps": 30, "train.val_every_steps": 4, "train.lr": 0.05}
    # 8 training items: the validation loss turns back up (lowest at step 16 here)
    module, info = train_system(
        "speech",
        (p := load_preset("smoke", overrides)),
        runtime_of(p),
        fake_items(8),
        fake_items(10, 1),
        SPEECH_DIM,
        EMO_DIM,
        0,
        tmp_path,
    )
    steps = [s for s, _ in info["val_history"]]
    assert steps == [4, 8, 12, 16, 20, 24, 28, 30] and info["best_val_loss"] == min(v for _, v in info["val_history"])
    chosen = info["selected_step"]
    assert chosen == min(info["val_history"], key=lambda sv: sv[1])[0] and chosen != 30, info["val_history"]
    own = dict(module.named_parameters())
    assert all(torch.equal(own[n], v) for n, v in snaps[chosen].items())
    assert not all(torch.equal(own[n], v) for n, v in snaps[30].items())


def test_release_cleaning_keeps_a_reply_as_generated():
    multi = ' "I hear you.\nWhat happened next"'
    assert clean(multi, truncated=True, rules="release") == multi
    assert clean(multi, truncated=True, rules="relm") == "I hear you."
    for noise in ("I'm sorry, but I cannot help.", "As an AI language model, no.", "I'm not sure what you mean"):
        assert clean(noise, False, "release") is None and clean(noise, False, "relm") is None


def _stand_in_folder(folder: Path, penalty: float) -> Path:
    from transformers import Qwen2Config, Qwen2ForCausalLM

    torch.manual_seed(0)
    tok = tiny_tokenizer()
    config = Qwen2Config(
        vocab_size=len(tok),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=2,
        pad_token_id=tok.pad_token_id,
        eos_token_id=tok.eos_token_id,
        tie_word_embeddings=True,
    )
    model = Qwen2ForCausalLM(config)
    with torch.no_grad():  # large tied embeddings: greedy decoding repeats the last token unless penalised
        model.model.embed_tokens.weight.mul_(50)
    model.save_pretrained(folder)
    tok.save_pretrained(folder)
    fields = {"do_sample": True, "top_p": 0.8, "repetition_penalty": penalty, "eos_token_id": tok.eos_token_id}
    (folder / "generation_config.json").write_text(json.dumps(fields))  # as Qwen-7B-Chat ships its sampling fields
    return folder


def test_the_teacher_decodes_with_the_model_folders_generation_config_and_records_it(tmp_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    cfg = load_preset("paper").teacher
    cfg.max_new_tokens = 12
    replies, teachers = {}, {}
    for penalty in (1.0, 20.0):
        folder = _stand_in_folder(tmp_path / str(penalty), penalty)
        model, tok = AutoModelForCausalLM.from_pretrained(folder), AutoTokenizer.from_pretrained(folder)
        tok.chat_template = tiny_tokenizer().chat_template
        teacher = Teacher(cfg, model, tok, "stand-in")
        assert teacher.decoding["repetition_penalty"] == penalty and teacher.decoding["top_p"] == 0.8
        assert teacher.decoding["do_sample"] is False and teacher.decoding["max_new_tokens"] == 12
        assert teacher.dtype == "float32"
        replies[penalty] = teacher._generate([("I lost my keys.", "sad")])[0][0]
        teachers[penalty] = teacher
    assert replies[1.0] != replies[20.0]  # the file's penalty reached the decoding
    assert teachers[1.0].key != teachers[20.0].key  # and the cache key
    relm_rules = Teacher(cfg.__class__(**{**cfg.__dict__, "decoding": "relm"}), model, tok, "stand-in")
    assert relm_rules.decoding["repetition_penalty"] == cfg.repetition_penalty  # the preset's, file ignored


def test_an_empty_transcript_gets_no_teacher_target(capsys):
    smoke = load_preset("smoke")
    df = pd.DataFrame(
        {"utt_id": ["a", "b", "c"], "transcript": ["I won!", "  ", None], "emotion": ["happy", "sad", "angry"]}
    )
    targets, _, info = teacher_targets(smoke, df, runtime_of(smoke).device, progress=False, force=False)
    assert targets["a"] and targets["b"] is None and targets["c"] is None
    assert info["empty_transcripts"] == 2 and info["dtype"] == "none" and info["clean"] == "relm"
    assert "2 utterance(s) have an empty transcript" in capsys.readouterr().err


def test_a_frozen_ser_head_gets_no_gradient_while_its_loss_trains_the_adapter():
    preset = load_preset("smoke", {"train.freeze": ["ser_head"]})
    module = _module("re-llm", preset)
    assert not module.ser_head.weight.requires_grad and "ser_head.weight" not in module.trained_state()
    losses = module.losses([dict(it, task="response") for it in fake_items(4)])
    losses["ser_ce"].backward()
    assert module.ser_head.weight.grad is None
    assert module.adapter.fc1.weight.grad is not None and module.adapter.fc1.weight.grad.abs().sum() > 0


def test_log_warmup_is_deepspeeds_formula():
    preset = load_preset("smoke", {"train.warmup": "log", "train.warmup_steps": 200, "train.lr": 2e-5})
    module = _module("text", preset)
    module.total_steps = 2800
    conf = module.configure_optimizers()
    opt, sched = conf["optimizer"], conf["lr_scheduler"]["scheduler"]
    lrs = []
    for _ in range(5):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    # DeepSpeed WarmupDecayLR, warmup_type log: min_lr + (max_lr - min_lr) * log(it + 1) / log(warmup_num_steps)
    assert lrs == pytest.approx([2e-5 * math.log(it + 1) / math.log(200) for it in range(5)], rel=1e-12)
    assert lrs[0] == 0.0


def _tiny_mha_llm():
    from transformers import Qwen2Config, Qwen2ForCausalLM

    torch.manual_seed(0)
    config = Qwen2Config(
        vocab_size=64,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=2,
    )
    return Qwen2ForCausalLM(config)


def test_q_k_v_share_one_lora_a_and_one_dropout_mask_and_round_trip_blsps_layout():
    from relm.config import LoraCfg

    cfg = LoraCfg(r=4, alpha=4, dropout=0.5, target_modules=["q_proj", "k_proj", "v_proj", "o_proj"])
    llm = add_lora(_tiny_mha_llm(), LoraCfg(**{**cfg.__dict__, "shared_qkv_a": True}))
    attn = llm.base_model.model.model.layers[0].self_attn
    a = [getattr(attn, n).lora_A["default"].weight for n in ("q_proj", "k_proj", "v_proj")]
    assert a[0] is a[1] is a[2]
    trainable = [n for n, p in llm.named_parameters() if p.requires_grad]
    assert sum(".lora_A." in n and "self_attn" in n and "o_proj" not in n for n in trainable) == 2  # one per layer
    seen: list[torch.Tensor] = []
    hook = attn.q_proj.lora_A["default"].register_forward_hook(lambda m, i, o: seen.append(i[0].detach()))
    llm.train()
    llm(input_ids=torch.randint(0, 64, (2, 6)))
    hook.remove()
    assert len(seen) == 3 and torch.equal(seen[0], seen[1]) and torch.equal(seen[0], seen[2])  # one mask
    assert (seen[0] == 0).any()  # dropout did act
    separate = add_lora(_tiny_mha_llm(), cfg)
    assert separate.base_model.model.model.layers[0].self_attn.k_proj.lora_A["default"].weight is not (
        separate.base_model.model.model.layers[0].self_attn.q_proj.lora_A["default"].weight
    )
    # BLSP's layout: one c_attn A, q/k/v Bs stacked; both directions are exact
    for p in llm.parameters():
        if p.requires_grad:
            torch.nn.init.normal_(p)
    peft = {n: p.detach() for n, p in llm.named_parameters(remove_duplicate=False) if ".lora_" in n}
    blsp = peft_to_lora(peft)
    assert sum(".c_attn.lora_A." in k for k in blsp) == 2
    back = lora_to_peft(blsp)
    assert back.keys() == peft.keys() and all(torch.equal(back[k], peft[k]) for k in peft)
    assert all(torch.equal(peft_to_lora(back)[k], v) for k, v in blsp.items())


def test_release_target_end_and_stop_tokens():
    tok = tiny_tokenizer()
    assert tok.decode(target_end_ids(tok, "release")) == "<|im_end|>\n<|endoftext|>"
    assert tok.decode(target_end_ids(tok, "im_end")) == "<|im_end|>"
    assert set(tok.convert_ids_to_tokens(stop_ids(tok, "release"))) == {"<|im_end|>", "<|im_start|>", "<|endoftext|>"}
    module = _module("speech", load_preset("smoke", {"train.target_end": "release"}))
    item = fake_items(1)[0] | {"task": "response", "target": "I see."}
    labels = module.build([item], with_target=True, left_pad=False)["labels"][0].tolist()
    assert tok.decode(labels[-3:]) == "<|im_end|>\n<|endoftext|>"


def _tiny_w2v2_folder(folder: Path) -> Path:
    from safetensors.torch import save_file
    from transformers import Wav2Vec2Config, Wav2Vec2FeatureExtractor, Wav2Vec2Model

    torch.manual_seed(0)
    config = Wav2Vec2Config(  # the layout of wav2vec2-large-robust: layer-norm front end, stable layer norm
        hidden_size=16,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=32,
        conv_dim=(8, 8, 8, 8, 8, 8, 8),
        feat_extract_norm="layer",
        do_stable_layer_norm=True,
        num_conv_pos_embeddings=16,
        num_conv_pos_embedding_groups=2,
    )
    state = {f"wav2vec2.{k}": v for k, v in Wav2Vec2Model(config).state_dict().items()}
    state |= {"classifier.dense.weight": torch.randn(16, 16), "classifier.dense.bias": torch.zeros(16)}
    state |= {"classifier.out_proj.weight": torch.randn(3, 16), "classifier.out_proj.bias": torch.zeros(3)}
    folder.mkdir()
    config.save_pretrained(folder)
    save_file({k: v.contiguous() for k, v in state.items()}, str(folder / "model.safetensors"))
    Wav2Vec2FeatureExtractor(return_attention_mask=True, do_normalize=True).save_pretrained(folder)
    return folder


def test_w2v2_pooling_gives_an_utterance_the_same_vector_alone_and_padded(tmp_path):
    from relm.models.emotion_encoder import W2v2Dimensional

    encoder = W2v2Dimensional(str(_tiny_w2v2_folder(tmp_path / "w2v2")))
    rng = np.random.default_rng(0)
    short = rng.standard_normal(16000 + 123).astype(np.float32)
    long = rng.standard_normal(3 * len(short)).astype(np.float32)
    alone, avd_alone = encoder.embed([short])
    batched, avd_batched = encoder.embed([short, long])
    assert torch.allclose(alone[0], batched[0], atol=1e-5) and torch.allclose(avd_alone[0], avd_batched[0], atol=1e-5)
    # the frame count is the conv front end's, one less than ceil(samples / 320) here
    frames = int(encoder.wav2vec2._get_feat_extract_output_lengths(torch.tensor(len(short))))
    assert frames == math.ceil(len(short) / 320) - 1


def test_p_wilcoxon_is_scipys_default_on_the_same_pairs():
    rng = np.random.default_rng(3)
    ids = [f"u{i}" for i in range(60)]

    def rows(levels):
        return [
            {"id": u, "response": "r", "ser_label": "sad", "gold_emotion": "sad", "er": int(v)}
            for u, v in zip(ids, levels)
        ]

    a, b = rng.integers(0, 3, 60), rng.integers(0, 3, 60)
    out = compare_systems([rows(a)], [rows(b)])["er"]
    assert out["p_wilcoxon"] == pytest.approx(sps.wilcoxon(a, b).pvalue, rel=1e-12)
    assert out["p_wilcoxon_zsplit"] == pytest.approx(sps.wilcoxon(a, b, zero_method="zsplit").pvalue, rel=1e-12)
    assert json.dumps(out)  # plain numbers, for results.json
