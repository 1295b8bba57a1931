"""Read a dataset's manifest for a sweep: generated on first use when built in, capped per split for small presets."""

from __future__ import annotations

from relm.data.audio_checks import drop_bad_audio
from relm.data.corpora import ReadOptions, find_root, get_adapter
from relm.data.corpora.base import stable_fraction
from relm.data.schema import Manifest


def read_manifest(
    name: str,
    root: str | None,
    caps: dict[str, int],
    protocol: str | None = None,
    progress: bool = True,
    strict_audio: bool = False,
) -> Manifest:
    """The corpus's utterances; `caps` keeps a stable subset of at most N utterances per split; the audio
    of the kept ones is checked (`relm.data.audio_checks`): a bad file is skipped and counted, or fatal."""
    options = ReadOptions(protocol=protocol, strict_audio=strict_audio)
    manifest = get_adapter(name).read(find_root(name, root, progress), options)
    df = manifest.df
    for split, cap in caps.items():
        part = df[df["split"] == split]
        if len(part) > cap:
            keep = sorted(part["utt_id"], key=lambda u: stable_fraction(u, 0))[:cap]
            df = df[(df["split"] != split) | df["utt_id"].isin(keep)]
    manifest.df = df.reset_index(drop=True)
    drop_bad_audio(manifest, options.bounds, strict_audio, progress)
    return manifest
