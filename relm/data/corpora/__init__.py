"""Corpus adapters by dataset name; `synth-esd` is read by the ESD adapter unchanged."""

from __future__ import annotations

import os
from pathlib import Path

from relm.data.corpora.base import CorpusAdapter, ReadOptions
from relm.data.corpora.esd import Esd
from relm.data.corpora.iemocap import Iemocap
from relm.data.corpora.msp_podcast import MspPodcast
from relm.data.corpora.ravdess import Ravdess
from relm.errors import RelmError

ADAPTERS: dict[str, type[CorpusAdapter]] = {
    "iemocap": Iemocap, "esd": Esd, "msp-podcast": MspPodcast, "ravdess": Ravdess, "synth-esd": Esd,
}


def get_adapter(dataset: str) -> CorpusAdapter:
    try:
        return ADAPTERS[dataset]()
    except KeyError:
        raise RelmError(f"unknown dataset {dataset!r}; choose from {sorted(ADAPTERS)}") from None


def find_root(dataset: str, root: str | os.PathLike | None = None) -> Path:
    """`root`, else env RELM_<DATASET>_ROOT, else datasets/<dataset>; an error says where it looked."""
    env = "RELM_" + dataset.upper().replace("-", "_") + "_ROOT"
    candidates = [Path(root)] if root else [Path(p) for p in (os.environ.get(env),) if p] + \
        [Path("datasets") / dataset]
    for path in candidates:
        if path.is_dir():
            return path
    adapter = get_adapter(dataset)
    looked = ", ".join(str(p) for p in candidates)
    hint = "" if dataset == "synth-esd" else " To try the pipeline without it, use --dataset synth-esd."
    raise RelmError(f"{dataset}: corpus not found (looked in {looked}; set --root or {env}). "
                    f"{adapter.how_to_get}{hint}")


__all__ = ["ADAPTERS", "ReadOptions", "find_root", "get_adapter"]
