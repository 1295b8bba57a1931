"""The teacher's fast path (length-sorted items, the shared prompt prefix computed once) gives the same
replies as running every prompt whole."""

from __future__ import annotations

from relm.bench.teacher import Teacher
from relm.models.llm import load_llm
from relm.presets import load_preset


def test_prefix_cache_and_length_sorting_give_token_identical_replies():
    smoke, cpu = load_preset("smoke"), load_preset("cpu")
    llm, tok, identity = load_llm(smoke.llm)  # the fixed random tiny LLM
    cfg = cpu.teacher  # the worked-examples prompt: a long shared prefix
    cfg.max_new_tokens, cfg.batch_size = 12, 3
    teacher = Teacher(cfg, llm, tok, identity)
    pairs = sorted(
        {
            ("I lost my keys again.", "angry"),
            ("We won the cup!", "happy"),
            ("My cat died this morning and I cannot stop crying about it.", "sad"),
            ("Oh.", "surprise"),
            ("The meeting is at ten.", "neutral"),
            ("Nobody came to my party, not one person.", "sad"),
            ("What a day.", "neutral"),
        }
    )
    replies = {}
    for fast in (False, True):
        order, prefix = teacher.plan(pairs, fast=fast)
        assert sorted(order) == pairs
        if fast:
            assert prefix[0] > 50 and prefix[1] is not None  # system prompt and examples, once
            lengths = [len(x) for x in teacher._prompt_ids(order)]
            assert lengths == sorted(lengths)
        out = {}
        for i in range(0, len(order), cfg.batch_size):
            batch = order[i : i + cfg.batch_size]
            out |= dict(zip(batch, teacher._generate(batch, prefix)))
        replies[fast] = out
    assert replies[True] == replies[False]


def test_openers_start_each_reply_and_enter_the_cache_key_only_when_set():
    from relm.keys import content_key

    smoke, cpu = load_preset("smoke"), load_preset("cpu")
    llm, tok, identity = load_llm(smoke.llm)
    cfg = cpu.teacher
    cfg.max_new_tokens, cfg.batch_size, cfg.openers = 4, 4, {}
    plain = Teacher(cfg, llm, tok, identity)
    # A teacher without openers has no openers in its key; the key holds every decoding field and the dtype.
    from relm.bench.teacher import TEACHER_VERSION, messages_for

    without = content_key(
        identity,
        cfg.prompt,
        plain.decoding,
        plain.dtype,
        messages_for(cfg, "{text}", "{emotion}"),
        TEACHER_VERSION,
    )
    assert plain.key == without and plain.decoding["repetition_penalty"] == cfg.repetition_penalty
    cfg.openers = {"sad": "Oh no, you sound sad.", "neutral": "I see."}
    opened = Teacher(cfg, llm, tok, identity)
    assert opened.key != plain.key
    pairs = [("My cat is ill.", "sad"), ("The bus is late.", "neutral"), ("We won!", "happy")]
    replies = [raw for raw, _ in opened._generate(pairs)]
    assert replies[0].startswith("Oh no, you sound sad.") and replies[1].startswith("I see.")
    assert not replies[2].startswith(("Oh no", "I see"))  # no opener for happy: the model's own reply
