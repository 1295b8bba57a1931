"""Summaries of a manifest: counts per split, class and speaker; durations; skips."""

from __future__ import annotations

from relm.data.schema import LABELS, Manifest


def describe(manifest: Manifest) -> dict:
    df = manifest.df
    dur = df["duration"].dropna()
    by_split_class = df.groupby(["split", "emotion"]).size().unstack(fill_value=0)
    return {
        "dataset": manifest.dataset,
        "root": manifest.root,
        "protocol": manifest.protocol,
        "n_files_seen": int(len(df) + sum(manifest.skipped.values())),
        "n_utterances": int(len(df)),
        "n_speakers": int(df["speaker"].nunique()),
        "per_class": {lb: int((df["emotion"] == lb).sum()) for lb in LABELS if (df["emotion"] == lb).any()},
        "per_split": {s: int(n) for s, n in df["split"].value_counts().sort_index().items()},
        "per_split_class": {s: {c: int(n) for c, n in row.items() if n} for s, row in by_split_class.iterrows()},
        "per_speaker": {s: int(n) for s, n in df["speaker"].value_counts().sort_index().items()},
        "duration_s": {
            "total": round(float(dur.sum()), 1),
            "mean": round(float(dur.mean()), 2) if len(dur) else None,
            "min": round(float(dur.min()), 2) if len(dur) else None,
            "max": round(float(dur.max()), 2) if len(dur) else None,
        },
        "with_transcript": int((df["transcript"].fillna("") != "").sum()),
        "avd_source": manifest.avd_source,
        "skipped": dict(sorted(manifest.skipped.items())),
        "skipped_examples": manifest.skipped_examples,
    }


def format_description(d: dict) -> str:
    lines = [
        f"{d['dataset']} at {d['root']} (protocol {d['protocol']}): {d['n_files_seen']} seen, "
        f"{d['n_utterances']} utterances kept, "
        f"{d['n_speakers']} speakers, {d['duration_s']['total'] / 3600:.2f} h "
        f"(mean {d['duration_s']['mean']} s, {d['duration_s']['min']}-{d['duration_s']['max']} s)",
        f"  transcripts: {d['with_transcript']}/{d['n_utterances']}; A/V/D: {d['avd_source']}",
    ]
    classes = list(d["per_class"])
    lines.append("  split    " + " ".join(f"{c:>9}" for c in classes) + "     total")
    for split, n in d["per_split"].items():
        row = d["per_split_class"].get(split, {})
        lines.append(f"  {split:8} " + " ".join(f"{row.get(c, 0):9d}" for c in classes) + f" {n:9d}")
    lines.append("  speakers: " + ", ".join(f"{s} {n}" for s, n in d["per_speaker"].items()))
    if d["skipped"]:
        lines.append("  skipped: " + ", ".join(f"{k} {v}" for k, v in d["skipped"].items()))
        for reason, examples in d["skipped_examples"].items():
            for ex in examples[:1]:
                lines.append(f"    e.g. {reason}: {ex}")
    else:
        lines.append("  skipped: nothing")
    return "\n".join(lines)
