"""RAVDESS speech (Livingstone & Russo 2018): `Actor_NN/03-01-EE-II-SS-RR-AA.wav`.

Five of its eight emotions map onto the suite's labels; calm, fearful and disgust are
skipped (counted). Speaker-independent split by actor: actor n goes to test when
n % 5 == 0, to val when n % 5 == 4, else train (both genders in every split).
"""

from __future__ import annotations

from pathlib import Path

from relm.data.corpora.base import CorpusAdapter, ReadOptions, label_or_none, visible_files
from relm.data.schema import Manifest
from relm.errors import RelmError

EMOTIONS = {
    "01": "neutral",
    "02": None,
    "03": "happy",
    "04": "sad",
    "05": "angry",
    "06": None,
    "07": None,
    "08": "surprise",
}
NAMES = {
    "01": "neutral",
    "02": "calm",
    "03": "happy",
    "04": "sad",
    "05": "angry",
    "06": "fearful",
    "07": "disgust",
    "08": "surprised",
}
STATEMENTS = {"01": "Kids are talking by the door.", "02": "Dogs are sitting by the door."}


def actor_split(actor: int) -> str:
    return "test" if actor % 5 == 0 else "val" if actor % 5 == 4 else "train"


class Ravdess(CorpusAdapter):
    protocols = ("actor-split",)
    how_to_get = (
        "Download Audio_Speech_Actors_01-24.zip from Zenodo record 1188976 and unpack it "
        "so the root holds Actor_01 ... Actor_24."
    )
    layout = "Actor_NN/03-01-EE-II-SS-RR-AA.wav"

    def _rows(self, root: Path, protocol: str, options: ReadOptions, manifest: Manifest) -> list[dict]:
        actors = sorted(p for p in root.glob("Actor_*") if p.is_dir())
        if not actors:
            raise RelmError(f"ravdess: no Actor_NN folders under {root}; expected {self.layout}")
        rows = []
        for folder in actors:
            for wav in visible_files(folder, "*.wav"):
                parts = wav.stem.split("-")
                if len(parts) != 7 or not all(p.isdigit() and len(p) == 2 for p in parts):
                    manifest.skip("unparseable_name", str(wav))
                    continue
                modality, _channel, emo, intensity, statement, rep, actor = parts
                if modality != "03":  # 01/02 are video files of the audio-visual release
                    manifest.skip("not_audio_only", str(wav))
                    continue
                label = label_or_none(emo, EMOTIONS, set(EMOTIONS), str(wav))
                if label is None:
                    manifest.skip(f"class_not_in_set:{NAMES[emo]}", str(wav))
                    continue
                n = int(actor)
                rows.append(
                    {
                        "utt_id": wav.stem,
                        "path": str(wav),
                        "transcript": STATEMENTS.get(statement, ""),
                        "emotion": label,
                        "orig_label": f"{emo}:{NAMES[emo]}:intensity{intensity}:rep{rep}",
                        "speaker": f"Actor_{actor}",
                        "gender": "male" if n % 2 else "female",
                        "split": actor_split(n),
                    }
                )
        return rows
