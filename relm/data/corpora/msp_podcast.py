"""MSP-PODCAST (Lotfian & Busso): `Labels/labels_consensus.csv` (or the old `labels_concensus.csv`).

Columns are taken by name. 5 classes N/H/A/S/U; F/D/C/O/X are skipped and counted.
Train / Development (`Validation` in old releases) / Test1; Test2 is skipped and Test3
(no labels) is counted as unlabelled. Speakers may be `Unknown`. A/V/D (1-7) -> 0-1.
Audio is `Audios/<FileName>` (also `Audios/Audios/` or `Audios/audio_files/`).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from relm.data.corpora.base import CorpusAdapter, ReadOptions, label_or_none
from relm.data.schema import Manifest
from relm.errors import RelmError

CODES = {
    "N": "neutral",
    "H": "happy",
    "A": "angry",
    "S": "sad",
    "U": "surprise",
    "F": None,
    "D": None,
    "C": None,
    "O": None,
    "X": None,
}
SPLITS = {"Train": "train", "Development": "val", "Validation": "val", "Test1": "test"}
NEEDED = ("FileName", "EmoClass", "EmoAct", "EmoVal", "EmoDom", "Split_Set")


class MspPodcast(CorpusAdapter):
    protocols = ("test1",)
    how_to_get = (
        "MSP-PODCAST is licensed by UT Dallas (ecs.utdallas.edu/research/researchlabs/msp-lab); "
        "the root holds Audios/, Labels/ and Transcripts/."
    )
    layout = "Labels/labels_consensus.csv, Audios/<FileName>, Transcripts/<stem>.txt"

    @staticmethod
    def _labels_file(root: Path) -> Path:
        for name in ("labels_consensus.csv", "labels_concensus.csv"):
            if (root / "Labels" / name).is_file():
                return root / "Labels" / name
        raise RelmError(f"msp-podcast: no Labels/labels_consensus.csv (or labels_concensus.csv) under {root}")

    @staticmethod
    def _audio_dir(root: Path) -> Path:
        for sub in ("Audios/Audios", "Audios/audio_files", "Audios"):
            if (root / sub).is_dir() and any((root / sub).glob("*.wav")):
                return root / sub
        raise RelmError(f"msp-podcast: no .wav files in {root / 'Audios'}")

    def _rows(self, root: Path, protocol: str, options: ReadOptions, manifest: Manifest) -> list[dict]:
        path = self._labels_file(root)
        try:
            labels = pd.read_csv(path, dtype=str, keep_default_na=False)
        except (pd.errors.ParserError, UnicodeDecodeError, OSError) as exc:
            raise RelmError(f"{path}: unreadable label file ({exc})") from None
        missing = [c for c in NEEDED if c not in labels.columns]
        if missing:
            raise RelmError(f"{path}: missing column(s) {missing}")
        audio = self._audio_dir(root)
        manifest.avd_source = "annotations"
        rows = []
        for i, rec in enumerate(labels.to_dict("records"), start=2):
            split = SPLITS.get(rec["Split_Set"])
            if rec["Split_Set"] == "Test3" or rec["EmoClass"] == "":
                manifest.skip("unlabelled", rec["FileName"])
                continue
            if split is None:
                manifest.skip(f"split_not_used:{rec['Split_Set']}", rec["FileName"])
                continue
            label = label_or_none(rec["EmoClass"], CODES, set(CODES), f"{path}:{i}")
            if label is None:
                manifest.skip(f"class_not_in_set:{rec['EmoClass']}", rec["FileName"])
                continue
            wav = audio / rec["FileName"]
            if not wav.is_file():
                manifest.skip("missing_wav", str(wav))
                continue
            tr = root / "Transcripts" / f"{Path(rec['FileName']).stem}.txt"
            try:
                avd = {
                    k: (float(rec[c]) - 1) / 6
                    for k, c in (("arousal", "EmoAct"), ("valence", "EmoVal"), ("dominance", "EmoDom"))
                }
            except ValueError:
                raise RelmError(f"{path}:{i}: non-numeric EmoAct/EmoVal/EmoDom") from None
            speaker = rec.get("SpkrID", "") or "Unknown"
            rows.append(
                {
                    "utt_id": Path(rec["FileName"]).stem,
                    "path": str(wav),
                    "transcript": tr.read_text(encoding="utf-8", errors="replace").strip() if tr.is_file() else "",
                    "emotion": label,
                    "orig_label": rec["EmoClass"],
                    "speaker": speaker if speaker != "Unknown" else f"Unknown:{Path(rec['FileName']).stem}",
                    "gender": (rec.get("Gender") or "Unknown").lower(),
                    "split": split,
                    **avd,
                }
            )
        return rows
