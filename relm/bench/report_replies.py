"""The report's view of what the replies are: diversity and relevance per system (and the teacher's targets),
collapse warnings, and sample replies side by side (`relm.scoring.responses`)."""

from __future__ import annotations

import re

from relm.bench.formatting import fmt
from relm.scoring.responses import COLLAPSE_DISTINCT_FRACTION, COLLAPSE_REPEAT_RATE, OFF_TOPIC_QUANTILE

MARKDOWN = re.compile(r"([\\`*_\[\]<>|#~])")


def _cell(text) -> str:
    """A reply as a table cell: Markdown's special characters escaped, so a reply shows as written."""
    return "n/a" if text is None else MARKDOWN.sub(r"\\\1", str(text)).replace("\n", " ")


def collapse_lines(results: dict) -> list[str]:
    """One bold sentence per system whose replies collapsed (shown under the paper-style table)."""
    teacher = results.get("teacher_replies", {})
    return [
        f"- **{d}, {system}: {row['collapse']}**"
        for d, systems in results["metrics"].items()
        for system, row in [("teacher targets", teacher.get(d, {})), *systems.items()]
        if row.get("collapse")
    ]


def reply_rows(results: dict) -> list[str]:
    lines = [
        "| dataset | replies of | distinct replies / sentences | distinct-1 | distinct-2 [95% CI] | repeat rate "
        "| words | relevance | off-topic |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for d, systems in results["metrics"].items():
        teacher = results.get("teacher_replies", {}).get(d)
        rows = ([("teacher targets", teacher)] if teacher and teacher.get("n") else []) + list(systems.items())
        for who, m in rows:
            if m.get("distinct_2") is None:
                continue
            ci = m.get("distinct_2_ci95")
            ci_text = f" [{fmt(ci[0])}, {fmt(ci[1])}]" if ci else ""
            lines.append(
                f"| {d} | {who} | {fmt(m.get('distinct_replies'), 0)} / {fmt(m.get('distinct_transcripts'), 0)} | "
                f"{fmt(m.get('distinct_1'))} | {fmt(m.get('distinct_2'))}{ci_text} | {fmt(m.get('repeat_rate'))} | "
                f"{fmt(m.get('reply_words'), 1)} | {fmt(m.get('relevance'))} | {fmt(m.get('off_topic_rate'))} |"
            )
    return lines


def sample_rows(samples: list[dict], systems: list[str]) -> list[str]:
    head = "| said | gold emotion | teacher target | " + " | ".join(systems) + " |"
    lines = [head, "|" + "---|" * (3 + len(systems))]
    for s in samples:
        replies = [_cell(s["replies"].get(system)) for system in systems]
        lines.append(
            f"| {_cell(s['transcript'])} | {s['emotion']} | {_cell(s.get('target'))} | " + " | ".join(replies) + " |"
        )
    return lines


def replies_section(results: dict) -> list[str]:
    if not any(
        row.get("distinct_2") is not None for systems in results["metrics"].values() for row in systems.values()
    ):
        return []
    out = [
        "## Replies",
        "",
        "What the replies are: distinct-n (unique word n-grams over all, pooled), the share of replies also given to a "
        f"different sentence (repeat rate), mean words, relevance (MiniLM cosine of reply and transcript) and the "
        f"share of replies no closer to their transcript than the {OFF_TOPIC_QUANTILE:.0%} point of shuffled pairs "
        f"(off-topic). A system is flagged as collapsed below {COLLAPSE_DISTINCT_FRACTION:g} distinct replies per "
        f"distinct sentence or above a repeat rate of {COLLAPSE_REPEAT_RATE:g}.",
        "",
        *reply_rows(results),
    ]
    for d, samples in results.get("reply_samples", {}).items():
        if samples:
            systems = list(samples[0]["replies"])
            out += ["", f"### Sample replies: {d} (seed 0)", "", *sample_rows(samples, systems)]
    return out + [""]


def sample_comparison(a: dict, b: dict) -> list[str]:
    """`relm compare`: the same sample utterances answered in sweep A and sweep B, system by system."""
    out: list[str] = []
    for d, samples_a in a.get("reply_samples", {}).items():
        by_id = {s["utt_id"]: s for s in b.get("reply_samples", {}).get(d, [])}
        shared = [(s, by_id[s["utt_id"]]) for s in samples_a if s["utt_id"] in by_id]
        if not shared:
            continue
        out += [f"Sample replies, {d}:", "", "| said | gold emotion | system | A | B |", "|---|---|---|---|---|"]
        for sa, sb in shared:
            for system in [s for s in sa["replies"] if s in sb["replies"]]:
                out.append(
                    f"| {_cell(sa['transcript'])} | {sa['emotion']} | {system} | {_cell(sa['replies'][system])} | "
                    f"{_cell(sb['replies'][system])} |"
                )
        out.append("")
    return out
