"""IEMOCAP (Busso et al. 2008): `SessionN/dialog/EmoEvaluation/<dialog>.txt` summary lines.

Only the summary files directly in `EmoEvaluation/` are read (its sub-folders hold
per-evaluator labels); `._*` files are skipped. 4 classes: neu, hap+exc (merged), ang,
sad; the other codes are skipped and counted. The speaker is the session plus the F/M
of the utterance id's last component. V/A/D (1-5) are scaled to 0-1.
"""

from __future__ import annotations

import re
from pathlib import Path

from relm.data.corpora.base import CorpusAdapter, ReadOptions, label_or_none, stable_fraction, visible_files
from relm.data.schema import Manifest
from relm.errors import RelmError

SUMMARY = re.compile(r"^\[(\d+\.\d+) - (\d+\.\d+)\]\t(\w+)\t(\w+)\t\[(\d+\.\d+), (\d+\.\d+), (\d+\.\d+)\]$")
TRANSCRIPT = re.compile(r"^(Ses0[1-5][MF]_\S+?_[MF][X\d]{2}\d) \[[\d.]+-[\d.]+\]:(.*)$")
TAGS = re.compile(r"\[[A-Z]+\]|<[^>]*>")
CODES = {
    "neu": "neutral",
    "hap": "happy",
    "exc": "happy",
    "ang": "angry",
    "sad": "sad",
    "fru": None,
    "fea": None,
    "sur": None,
    "dis": None,
    "oth": None,
    "xxx": None,
}


class Iemocap(CorpusAdapter):
    protocols = ("session5-test", *(f"loso-{k}" for k in range(1, 6)))
    how_to_get = (
        "IEMOCAP is licensed by USC SAIL (sail.usc.edu/iemocap); unpack IEMOCAP_full_release/ "
        "so the root holds Session1 ... Session5."
    )
    layout = "SessionN/dialog/EmoEvaluation/<dialog>.txt and SessionN/sentences/wav/<dialog>/<utt>.wav"
    classes = ("neutral", "happy", "angry", "sad")  # the usual four (excited merged into happy), no surprise

    def _transcripts(self, session: Path, manifest: Manifest) -> dict[str, str]:
        out = {}
        for path in visible_files(session / "dialog" / "transcriptions", "*.txt"):
            for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
                if m := TRANSCRIPT.match(line.strip()):
                    out[m.group(1)] = " ".join(TAGS.sub(" ", m.group(2)).split())
        return out

    def _rows(self, root: Path, protocol: str, options: ReadOptions, manifest: Manifest) -> list[dict]:
        sessions = sorted(p for p in root.glob("Session[1-5]") if p.is_dir())
        if not sessions:
            raise RelmError(f"iemocap: no Session1..5 folders under {root}; expected {self.layout}")
        test_session = 5 if protocol == "session5-test" else int(protocol.split("-")[1])
        manifest.avd_source = "annotations"
        rows = []
        for session in sessions:
            number = int(session.name[-1])
            label_dir = session / "dialog" / "EmoEvaluation"
            files = visible_files(label_dir, "*.txt")
            if not files:
                raise RelmError(f"{label_dir}: no summary label files; expected {self.layout}")
            transcripts = self._transcripts(session, manifest)
            for path in files:
                try:
                    lines = path.read_text(encoding="utf-8").splitlines()
                except (OSError, UnicodeDecodeError) as exc:
                    raise RelmError(f"{path}: unreadable label file ({exc})") from None
                for line_no, line in enumerate(lines, 1):
                    if not line.startswith("["):
                        continue
                    m = SUMMARY.match(line.rstrip("\r\n"))
                    if not m:
                        manifest.skip("malformed_label_line", f"{path}:{line_no}")
                        continue
                    _, _, utt, code, v, a, d = m.groups()
                    label = label_or_none(code, CODES, set(CODES), f"{path}:{line_no}")
                    if label is None:
                        manifest.skip(f"class_not_in_set:{code}", utt)
                        continue
                    wav = session / "sentences" / "wav" / utt[:-5] / f"{utt}.wav"
                    if not wav.is_file():
                        manifest.skip("missing_wav", str(wav))
                        continue
                    split = (
                        "test"
                        if number == test_session
                        else "val"
                        if stable_fraction(utt, options.split_seed) < 0.1
                        else "train"
                    )
                    rows.append(
                        {
                            "utt_id": utt,
                            "path": str(wav),
                            "transcript": transcripts.get(utt, ""),
                            "emotion": label,
                            "orig_label": code,
                            "speaker": f"Ses0{number}{utt.split('_')[-1][0]}",
                            "gender": "female" if utt.split("_")[-1][0] == "F" else "male",
                            "split": split,
                            "valence": (float(v) - 1) / 4,
                            "arousal": (float(a) - 1) / 4,
                            "dominance": (float(d) - 1) / 4,
                        }
                    )
        return rows
