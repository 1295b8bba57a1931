"""Read a dataset's manifest for a sweep: generated on first use when built in, capped per split for small presets."""

from __future__ import annotations

from relm.data.corpora import ReadOptions, find_root, get_adapter
from relm.data.corpora.base import stable_fraction
from relm.data.schema import Manifest


def read_manifest(
    name: str, root: str | None, caps: dict[str, int], protocol: str | None = None, progress: bool = True
) -> Manifest:
    """The corpus's utterances; `caps` keeps a stable subset of at most N utterances per split."""
    manifest = get_adapter(name).read(find_root(name, root, progress), ReadOptions(protocol=protocol))
    df = manifest.df
    for split, cap in caps.items():
        part = df[df["split"] == split]
        if len(part) > cap:
            keep = sorted(part["utt_id"], key=lambda u: stable_fraction(u, 0))[:cap]
            df = df[(df["split"] != split) | df["utt_id"].isin(keep)]
    manifest.df = df.reset_index(drop=True)
    return manifest
