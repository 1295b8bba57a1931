"""The `epitome` scorer kind pins EPITOME's released architecture (`src/models/models.py`, `src/train.py`) at tiny
width: the head's layers, the dropout sites, the unmasked seeker padding, the frozen seeker encoder, the loss."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from transformers import BertConfig, BertModel

from relm.errors import RelmError
from relm.scoring.empathy_epitome import EpitomeAttention, EpitomeBiEncoder, EpitomeHead
from tests.conftest import missing, shared_data


def _tiny() -> BertModel:
    cfg = BertConfig(vocab_size=50, hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32)
    return BertModel(cfg)


def _batch(n: int = 3, length: int = 6) -> dict:
    ids = torch.randint(1, 50, (n, length))
    mask = torch.ones(n, length, dtype=torch.long)
    mask[:, -2:] = 0  # two padded positions each
    return {"s_ids": ids, "s_mask": mask, "r_ids": ids.flip(1), "r_mask": mask}


def test_the_head_dropouts_and_initialisation_are_epitomes():
    torch.manual_seed(0)
    model = EpitomeBiEncoder(_tiny(), _tiny())
    head = model.empathy_classifier
    assert (
        isinstance(head, EpitomeHead) and head.dense.weight.shape == (16, 16) and head.out_proj.weight.shape == (3, 16)
    )
    assert head.dropout.p == 0.1 and model.dropout.p == 0.1 and model.attn.dropout.p == 0.1  # train.py --dropout 0.1
    assert model.rationale_classifier.weight.shape == (2, 16) and model.attn.heads == 1
    assert abs(float(model.attn.q_linear.weight.detach().std()) - 0.02) < 0.005
    assert float(head.dense.bias.abs().sum()) == 0
    x = torch.randn(4, 16)
    head.eval()
    manual = head.out_proj(torch.relu(head.dense(x)))  # dense -> ReLU -> projection (dropout off in eval)
    assert torch.allclose(head(x), manual)


def test_the_seeker_padding_is_not_masked_and_the_seeker_encoder_is_frozen():
    torch.manual_seed(0)
    attn = EpitomeAttention(16).eval()
    r, s = torch.randn(1, 4, 16), torch.randn(1, 6, 16)
    changed = s.clone()
    changed[:, -1] += 5.0  # a "padded" seeker position: EPITOME attends to it anyway
    assert not torch.allclose(attn(r, s, s), attn(r, changed, changed))
    model = EpitomeBiEncoder(_tiny(), _tiny())
    b = _batch()
    out = model(b)
    assert out["level"].shape == (3, 3) and out["rationale"].shape == (3, 6, 2)
    loss = model.loss(out, torch.tensor([0, 1, 2]), torch.zeros(3, 6, dtype=torch.long), b["r_mask"])
    loss.backward()
    assert all(p.grad is None for p in model.seeker_encoder.parameters())
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.responder_encoder.parameters())


def test_the_loss_is_half_level_half_rationale_over_real_tokens():
    level = torch.randn(2, 3)
    rationale = torch.randn(2, 4, 2)
    gold, tags = torch.tensor([2, 0]), torch.tensor([[1, 0, 1, 1], [0, 1, 0, 0]])
    mask = torch.tensor([[1, 1, 1, 0], [1, 1, 0, 0]])
    got = EpitomeBiEncoder.loss({"level": level, "rationale": rationale}, gold, tags, mask)
    keep = mask.bool()
    expected = 0.5 * nn.functional.cross_entropy(level, gold) + 0.5 * nn.functional.cross_entropy(
        rationale[keep], tags[keep]
    )
    assert torch.allclose(got, expected)


def test_class_weight_balanced_weighs_the_level_loss_as_sklearn_and_is_off_by_default():
    import numpy as np
    from sklearn.utils.class_weight import compute_class_weight

    from relm.errors import RelmError
    from relm.scoring.empathy_epitome import EpitomeScorer

    levels = [0] * 7 + [1] * 2 + [2]
    released, balanced = EpitomeScorer("epitome"), EpitomeScorer("epitome", class_weight="balanced")
    assert released._level_weight(levels, "er") is None and "class_weight" not in released.params  # as before
    expected = compute_class_weight("balanced", classes=np.arange(3), y=np.array(levels))
    assert torch.allclose(balanced._level_weight(levels, "er"), torch.tensor(expected, dtype=torch.float32))
    assert balanced._level_weight([0, 0, 2], "ip").tolist()[1] == pytest.approx(1.0)  # an absent level: never read
    # per mechanism (the cpu preset's): only the named ones are weighed; all three named is plain "balanced"
    some = EpitomeScorer("epitome", class_weight={"ex": "balanced", "ip": "balanced"})
    assert some.params["class_weight"] == {"ip": "balanced", "ex": "balanced"}  # EPITOME's order: one identity
    assert some._level_weight(levels, "er") is None
    assert torch.allclose(some._level_weight(levels, "ip"), balanced._level_weight(levels, "ip"))
    every = EpitomeScorer("epitome", class_weight=dict.fromkeys(("er", "ip", "ex"), "balanced"))
    assert every.params == balanced.params and "class_weight" not in EpitomeScorer("epitome", class_weight={}).params
    level, rationale = torch.randn(3, 3), torch.randn(3, 4, 2)
    gold, tags, mask = torch.tensor([0, 1, 2]), torch.zeros(3, 4, dtype=torch.long), torch.ones(3, 4)
    out = {"level": level, "rationale": rationale}
    weight = torch.tensor([0.2, 1.0, 5.0])
    got = balanced._loss(out, gold, tags, mask, weight)
    unweighted = balanced._loss(out, gold, tags, mask)
    manual = 0.5 * nn.functional.cross_entropy(level, gold, weight=weight) + 0.5 * nn.functional.cross_entropy(
        rationale.reshape(-1, 2), tags.reshape(-1)
    )
    assert torch.allclose(got, manual) and not torch.allclose(got, unweighted)
    for bad in ("inverse", {"er": "inverse"}, {"xx": "balanced"}):
        with pytest.raises(RelmError, match="class_weight is one of"):
            EpitomeScorer("epitome", class_weight=bad)


@pytest.mark.slow
def test_the_epitome_kind_trains_saves_and_reloads_on_a_few_rows(tmp_path):
    from relm.models.sources import status
    from relm.scoring import empathy
    from relm.scoring.epitome_data import load_epitome

    if not status("all-minilm-l6-v2")["ready"]:
        missing("all-minilm-l6-v2 not prepared (run make setup)")
    data = load_epitome(shared_data("epitome"))
    data.table = data.table.sample(48, random_state=0).reset_index(drop=True)
    scorer = empathy.train("epitome", data, seed=0, save=False, epochs=1)
    scorer.save(tmp_path / "s")
    again = empathy.load_folder(tmp_path / "s")
    pairs = data.table.head(8)
    first = scorer.score(pairs["seeker_post"].tolist(), pairs["response_post"].tolist())
    second = again.score(pairs["seeker_post"].tolist(), pairs["response_post"].tolist())
    assert all((first[m] == second[m]).all() and set(first[m]) <= {0, 1, 2} for m in first)
    assert scorer.meta["validation"]["er"]["n"] > 0 and scorer.params["encoder"] == "all-minilm-l6-v2"


def test_cross_validation_holds_each_pair_out_once_grouped_by_seeker(capsys, tmp_cache):
    import json

    import numpy as np

    from relm.cli import main

    data = shared_data("epitome")
    argv = ["scorer", "cv", "--kind", "tfidf", "--data", str(data), "--folds", "3", "--device", "cpu", "--json"]
    assert main(argv) == 0
    found = json.loads(capsys.readouterr().out)
    assert sum(f["er"]["n"] for f in found["per_fold"]) == found["n"]  # every pair held out exactly once
    from relm.scoring.empathy import build

    assert found["params"] == build("tfidf").params and found["device"] == "cpu" and "CPUs" in found["cpu"]
    assert found["provenance"]["libraries"]["scikit-learn"] and "git_hash" in found["provenance"]
    for mech in ("er", "ip", "ex"):
        per = [f[mech]["macro_f1"] for f in found["per_fold"]]
        assert found[mech]["macro_f1"] == pytest.approx(np.mean(per))
        assert found[mech]["macro_f1_sd"] == pytest.approx(np.std(per, ddof=1)) and found[mech]["macro_f1_sd"] > 0
    args = ["scorer", "cv", "--kind", "tfidf", "--data", str(data), "--folds", "3", "--json", "--mechanism", "ip"]
    assert main(args) == 0
    alone = json.loads(capsys.readouterr().out)  # IP alone: IP's figures of the run of all three, fold by fold
    assert "er" not in alone and [f["ip"] for f in alone["per_fold"]] == [f["ip"] for f in found["per_fold"]]
    assert main(["scorer", "cv", "--kind", "minilm", "--data", "/nonexistent", "--mechanism", "ip"]) == 2  # first
    assert "scorer kind 'minilm' trains the mechanisms together" in capsys.readouterr().err
    assert main(["scorer", "cv", "--kind", "tfidf", "--data", str(data), "--folds", "1"]) == 2
    assert main(["scorer", "train", "--kind", "tfidf", "--encoder", "x", "--data", str(data)]) == 2
    assert "relm scorer train: scorer kind 'tfidf' takes no encoder" in capsys.readouterr().err
    assert main(["scorer", "cv", "--kind", "tfidf", "--lr", "1e-4", "--data", str(data)]) == 2
    assert "relm scorer cv: scorer kind 'tfidf' takes no lr (it takes C, min_df)" in capsys.readouterr().err


def _encoder_folder(folder):
    """A tiny BERT config and word-piece tokenizer standing in for roberta-base (config and tokenizer only)."""
    from transformers import BertTokenizer

    words = "[PAD] [UNK] [CLS] [SEP] [MASK] i am so sorry to hear that what happened my dog died feel alone".split()
    folder.mkdir()
    (folder / "vocab.txt").write_text("\n".join(words) + "\n")
    BertTokenizer(str(folder / "vocab.txt")).save_pretrained(folder)
    BertConfig(
        vocab_size=len(words), hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32
    ).save_pretrained(folder)
    return folder


def test_an_authors_checkpoint_folder_loads_as_is(tmp_path, capsys):
    """EPITOME's `torch.save(model.state_dict())` names: encoders under `.roberta`, an unused `norm` layer."""
    from relm.cli import main
    from relm.errors import RelmError
    from relm.scoring.empathy import load_checkpoint

    enc = _encoder_folder(tmp_path / "enc")
    ckpt = tmp_path / "ckpt"
    ckpt.mkdir()
    cfg = BertConfig.from_pretrained(enc)
    originals = {}
    for seed, mech in enumerate(("ER", "IP", "EX")):
        torch.manual_seed(seed)
        model = EpitomeBiEncoder(BertModel(cfg), BertModel(cfg)).eval()
        for p in model.parameters():  # weights far from the N(0, 0.02) start, so each mechanism predicts differently
            p.data.normal_(0, 0.5)
        originals[mech.lower()] = model
        state = {
            k.replace("seeker_encoder.", "seeker_encoder.roberta.", 1).replace(
                "responder_encoder.", "responder_encoder.roberta.", 1
            ): v
            for k, v in model.state_dict().items()
        }
        state |= {"norm.alpha": torch.ones(16), "norm.bias": torch.zeros(16)}
        torch.save(state, ckpt / f"reddit_{mech}.pth")
    scorer = load_checkpoint(ckpt, encoder=str(enc))
    seekers = ["my dog died", "i feel so alone", "what happened"]
    responses = ["i am so sorry to hear that", "what happened to my dog", "sorry"]
    got = scorer.score(seekers, responses)
    s_ids, s_mask = scorer._tok(seekers)
    r_ids, r_mask = scorer._tok(responses)
    with torch.no_grad():
        for mech, model in originals.items():
            logits = model({"s_ids": s_ids, "s_mask": s_mask, "r_ids": r_ids, "r_mask": r_mask})["level"]
            assert (got[mech] == logits.argmax(-1).numpy()).all()
    assert len({tuple(v) for v in got.values()}) > 1  # the three files are not read as one
    assert scorer.meta["data_hash"].startswith("checkpoint:") and scorer.identity.startswith("epitome-")

    pairs = tmp_path / "pairs.csv"
    pairs.write_text("seeker_post,response_post\n" + "".join(f'"{s}","{r}"\n' for s, r in zip(seekers, responses)))
    assert main(["scorer", "score", "--input", str(pairs), "--checkpoint", str(ckpt), "--encoder", str(enc)]) == 0
    assert "3 responses scored by epitome-" in capsys.readouterr().out

    (ckpt / "reddit_EX.pth").rename(ckpt / "other.pth")
    with pytest.raises(RelmError, match="needs one .pth/.pt/.bin file naming EX"):
        load_checkpoint(ckpt, encoder=str(enc))
    state["extra.weight"] = torch.zeros(1)
    torch.save(state, ckpt / "reddit_EX.pth")
    with pytest.raises(RelmError, match=r"reddit_EX.pth: not an EPITOME bi-encoder over this encoder \(unexpected"):
        load_checkpoint(ckpt, encoder=str(enc))


def _tiny_encoder_folder(folder):
    """`_encoder_folder` with random tiny BERT weights, so that the epitome kind can train over it."""
    from transformers import BertModel

    _encoder_folder(folder)
    torch.manual_seed(0)
    BertModel(BertConfig.from_pretrained(folder)).save_pretrained(folder)
    return folder


def test_one_mechanism_alone_gets_the_model_it_gets_beside_the_others(tmp_path):
    """Each mechanism's model starts from the same seed and sees the rows in the same order, so validating IP alone
    (`relm scorer cv --mechanism ip`) costs a third and gives IP's figures of a run of all three."""
    import pandas as pd

    from relm.scoring import empathy

    encoder = str(_tiny_encoder_folder(tmp_path / "enc"))
    words = ["i am so sorry", "what happened", "my dog died", "i feel alone", "so sorry to hear that"]
    rows = [
        {"seeker_post": words[i % 5], "response_post": words[(i * 3 + 1) % 5], "er": i % 3, "ip": (i // 2) % 3}
        | {"ex": (i // 3) % 3, "er_rationales": "", "ip_rationales": words[(i * 3 + 1) % 5], "ex_rationales": ""}
        for i in range(20)
    ]
    table = pd.DataFrame(rows)
    kw = {"epochs": 1, "batch_size": 8, "max_len": 8, "lr": 1e-3}
    both = empathy._fitted("epitome", table, table.iloc[:0], 0, "cpu", encoder=encoder, **kw)
    alone = empathy._fitted("epitome", table, table.iloc[:0], 0, "cpu", ("ip",), encoder=encoder, **kw)
    assert set(alone.models) == {"ip"} and set(both.models) == {"er", "ip", "ex"}
    for name, value in both.models["ip"].state_dict().items():
        assert torch.equal(value, alone.models["ip"].state_dict()[name]), name
    assert set(empathy.evaluate(alone, table)) == {"ip"}
    with pytest.raises(RelmError, match="trains the mechanisms together"):
        empathy.cross_validate("minilm", None, mechanisms=("ip",))  # type: ignore[arg-type]


def test_bf16_precision_is_a_recorded_switch():
    from relm.scoring.empathy_epitome import EpitomeScorer

    assert "precision" not in EpitomeScorer("epitome").params  # EPITOME's float32: the released identity
    assert EpitomeScorer("epitome", precision="bf16-mixed").params["precision"] == "bf16-mixed"
    with pytest.raises(RelmError, match="precision is one of"):
        EpitomeScorer("epitome", precision="auto")
