"""ESD (Zhou et al. 2021): `<spk>/<Emotion>/[train|evaluation|test/]<spk>_NNNNNN.wav`.

Each speaker has `<spk>/<spk>.txt` (`id<TAB>text<TAB>emotion`) in its own encoding
(UTF-8, UTF-16, gb2312, latin-1 in the release): the encoding is sniffed (BOM, then
UTF-8, then gb18030 for Mandarin speakers or cp1252/latin-1 for English ones). Lines
that do not split into three fields are skipped and counted. Without the split level,
the split follows ESD's block offsets (evaluation 1-20, test 21-50, train 51-350).
"""

from __future__ import annotations

import unicodedata
from pathlib import Path

from relm.data.corpora.base import CorpusAdapter, ReadOptions, visible_files
from relm.data.schema import Manifest
from relm.errors import RelmError

EMOTIONS = {"Neutral": "neutral", "Happy": "happy", "Angry": "angry", "Sad": "sad", "Surprise": "surprise"}
CHINESE = {"中立": "Neutral", "生气": "Angry", "快乐": "Happy", "伤心": "Sad", "惊喜": "Surprise"}
MALE = {"0004", "0005", "0006", "0008", "0010", "0011", "0012", "0013", "0014", "0020"}
ENGLISH = {f"{i:04d}" for i in range(11, 21)}
SPLIT_FOLDERS = {"train": "train", "evaluation": "val", "test": "test"}
# EmoBox's speaker-independent folds (4 test speakers each, languages mixed).
FOLDS = {
    1: {"0005", "0011", "0016", "0018"},
    2: {"0012", "0014", "0015", "0019"},
    3: {"0003", "0004", "0006", "0009"},
    4: {"0007", "0008", "0013", "0020"},
    5: {"0001", "0002", "0010", "0017"},
}


def decode_transcripts(raw: bytes, path: Path, mandarin: bool) -> tuple[str, int]:
    """Sniff the encoding of a speaker's transcript file: (text, lines decoded in another encoding).

    A file that is UTF-8 except for some lines (an edited copy) is decoded line by line: the UTF-8
    lines as UTF-8, the others in the legacy encoding, and those are counted, so no UTF-8 line ever
    turns into mojibake ("CafÃ©") unnoticed.
    """
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        return raw.decode("utf-16"), 0
    if raw.startswith(b"\xef\xbb\xbf"):
        return raw.decode("utf-8-sig"), 0
    if len(raw) > 4 and raw[1::2].count(0) > len(raw) // 4:  # BOM-less UTF-16LE
        return raw.decode("utf-16-le"), 0
    legacy = "gb18030" if mandarin else "cp1252"
    try:
        return raw.decode("utf-8"), 0
    except UnicodeDecodeError:
        pass
    lines = raw.split(b"\n")
    utf8_lines = sum(1 for ln in lines if not ln.isascii() and _is_utf8(ln))
    if utf8_lines == 0:  # a legacy file throughout
        for encoding in (legacy, "latin-1"):
            try:
                return raw.decode(encoding), 0
            except UnicodeDecodeError:
                continue
        raise RelmError(f"{path}: cannot decode transcript file")  # latin-1 never fails; kept for clarity
    out, other = [], 0
    for ln in lines:
        if _is_utf8(ln):
            out.append(ln.decode("utf-8"))
        else:
            other += 1
            out.append(ln.decode(legacy, errors="replace"))
    return "\n".join(out), other


def _is_utf8(line: bytes) -> bool:
    try:
        line.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def offset_split(utt_number: int) -> str:
    offset = (utt_number - 1) % 350 + 1
    return "val" if offset <= 20 else "test" if offset <= 50 else "train"


class Esd(CorpusAdapter):
    protocols = ("official", *(f"speaker-fold-{k}" for k in FOLDS))
    how_to_get = (
        "ESD is research-only: sign the licence at github.com/HLTSingapore/Emotional-Speech-Data "
        "and unpack 'Emotion Speech Dataset/' (speaker folders 0001-0020) as the root; "
        "or run `relm data synth` for a synthetic corpus in ESD's layout."
    )
    layout = "<spk>/<spk>.txt and <spk>/<Emotion>/[train|evaluation|test/]<spk>_NNNNNN.wav"

    def _transcripts(self, folder: Path, manifest: Manifest) -> dict[str, str]:
        spk = folder.name
        path = folder / f"{spk}.txt"
        if not path.is_file():
            manifest.skip("missing_transcript_file", str(path))
            return {}
        try:
            raw = path.read_bytes()
        except OSError as exc:
            raise RelmError(f"{path}: unreadable transcript file ({exc.strerror})") from None
        text, other = decode_transcripts(raw, path, mandarin=spk not in ENGLISH)
        for _ in range(other):
            manifest.skip("transcript_line_not_utf8_kept", str(path))  # counted; decoded in the legacy encoding
        out = {}
        for line in text.splitlines():
            if not line.strip():
                continue
            fields = line.strip("\ufeff").rstrip("\r").split("\t")
            if len(fields) != 3 or not fields[0].strip().startswith(spk):
                manifest.skip("malformed_transcript_line", f"{path}: {line[:60]!r}")
                continue
            utt, sentence, emotion = (f.strip() for f in fields)
            emotion = CHINESE.get(emotion, emotion)
            if emotion not in EMOTIONS:
                raise RelmError(f"{path}: unknown emotion {emotion!r} on the line for {utt}")
            out[utt] = unicodedata.normalize("NFKC", sentence)
        return out

    def _rows(self, root: Path, protocol: str, options: ReadOptions, manifest: Manifest) -> list[dict]:
        speakers = sorted(p for p in root.iterdir() if p.is_dir() and p.name.isdigit() and len(p.name) == 4)
        if not speakers:
            raise RelmError(f"esd: no speaker folders (0001-0020) under {root}; expected {self.layout}")
        langs = set(options.languages)
        fold = int(protocol.rsplit("-", 1)[1]) if protocol.startswith("speaker-fold") else None
        rows = []
        for folder in speakers:
            spk = folder.name
            language = "english" if spk in ENGLISH else "mandarin"
            if language not in langs:
                continue
            transcripts = self._transcripts(folder, manifest)
            emotion_dirs = [d for d in folder.iterdir() if d.is_dir()]
            unknown = [d.name for d in emotion_dirs if d.name not in EMOTIONS]
            if unknown:
                raise RelmError(f"{folder}: unknown emotion folder(s) {unknown}; expected {list(EMOTIONS)}")
            for emo_dir in sorted(emotion_dirs):
                for wav in visible_files(emo_dir, "**/*.wav"):
                    utt = wav.stem
                    if utt not in transcripts:
                        manifest.skip("no_transcript", str(wav))
                        continue
                    parent = wav.parent.name
                    split = SPLIT_FOLDERS.get(parent) or offset_split(int(utt.rsplit("_", 1)[1]))
                    if fold is not None:
                        split = "test" if spk in FOLDS[fold] else split if split == "val" else "train"
                    rows.append(
                        {
                            "utt_id": utt,
                            "path": str(wav),
                            "transcript": transcripts[utt],
                            "emotion": EMOTIONS[emo_dir.name],
                            "orig_label": emo_dir.name,
                            "speaker": spk,
                            "gender": "male" if spk in MALE else "female",
                            "split": split,
                        }
                    )
        if fold is not None and not any(r["split"] == "test" for r in rows):
            raise RelmError(
                f"esd: fold {fold}'s test speakers {sorted(FOLDS[fold])} are not under {root} "
                f"(languages {sorted(langs)})"
            )
        return rows
