"""Corpus adapters on fixture trees in each real layout, and on the real RAVDESS subset."""

from __future__ import annotations

import json

import pytest

from relm.cli import main
from relm.data.corpora import ReadOptions, find_root, get_adapter
from relm.data.describe import describe
from relm.data.schema import COLUMNS, LABELS
from relm.errors import RelmError
from tests.conftest import shared_data
from tests.fixtures.corpora import make_esd, make_iemocap, make_msp, make_ravdess, tone


def test_iemocap_summary_lines_merge_and_speakers(tmp_path):
    m = get_adapter("iemocap").read(make_iemocap(tmp_path / "IEMOCAP_full_release"))
    df = m.df.set_index("utt_id")
    assert len(df) == 5 and list(df.columns) == [c for c in COLUMNS if c != "utt_id"]
    assert df.loc["Ses01F_impro01_M001", "emotion"] == "happy"  # exc merged into hap
    assert df.loc["Ses01F_impro01_M001", "speaker"] == "Ses01M"  # last component, not the dialog's F
    assert df.loc["Ses01F_impro01_M001", "valence"] == pytest.approx(0.75)  # [V, A, D] order, (4-1)/4
    assert df.loc["Ses01F_impro01_M001", "arousal"] == pytest.approx(0.875)
    assert df.loc["Ses05M_script01_1b_F000", "split"] == "test"
    assert set(df.loc[df.index.str.startswith("Ses01"), "split"]) <= {"train", "val"}
    assert df.loc["Ses01F_impro01_F000", "transcript"] == "Hello there number 0."
    assert m.skipped == {"class_not_in_set:fru": 1, "class_not_in_set:xxx": 1}
    loso = get_adapter("iemocap").read(tmp_path / "IEMOCAP_full_release", ReadOptions(protocol="loso-1"))
    assert set(loso.df.loc[loso.df.utt_id.str.startswith("Ses01"), "split"]) == {"test"}


def test_iemocap_unknown_code_names_file_and_line(tmp_path):
    root = make_iemocap(tmp_path / "iemo")
    label = next((root / "Session1" / "dialog" / "EmoEvaluation").glob("Ses*.txt"))
    label.write_text(label.read_text().replace("\tneu\t", "\tjoy\t"))
    with pytest.raises(RelmError, match=r"Ses01F_impro01\.txt:3: unknown emotion code 'joy'"):
        get_adapter("iemocap").read(root)


@pytest.mark.parametrize("split_level", [True, False])
def test_esd_encodings_malformed_lines_and_layouts(tmp_path, split_level):
    m = get_adapter("esd").read(make_esd(tmp_path / "esd", split_level))
    df = m.df
    assert sorted(df.speaker.unique()) == ["0011", "0012", "0016"]  # English only by default
    assert len(df) == 3 * 5 * 4 and m.skipped["malformed_transcript_line"] == 3
    assert df.loc[df.speaker == "0016", "transcript"].iloc[0] == "Café au lait, s'il vous plaît."
    assert df.loc[df.utt_id == "0011_000351", "split"].item() == "val"
    assert df.loc[df.utt_id == "0011_000371", "split"].item() == "test"
    assert df.loc[df.utt_id == "0011_000401", "split"].item() == "train"
    assert df.groupby("emotion").size().to_dict() == {lb: 12 for lb in LABELS}
    assert (df.gender[df.speaker == "0011"] == "male").all()


def test_esd_mandarin_gb2312_and_folds(tmp_path):
    root = make_esd(tmp_path / "esd")
    both = get_adapter("esd").read(root, ReadOptions(languages=("english", "mandarin")))
    assert both.df.loc[both.df.utt_id == "0001_000001", "transcript"].item() == "今天天气很好。"
    fold = get_adapter("esd").read(root, ReadOptions(protocol="speaker-fold-1"))
    assert set(fold.df.loc[fold.df.split == "test", "speaker"]) == {"0011", "0016"}
    with pytest.raises(RelmError, match="fold 4's test speakers"):
        get_adapter("esd").read(root, ReadOptions(protocol="speaker-fold-4"))


def test_esd_unknown_emotion_folder(tmp_path):
    root = make_esd(tmp_path / "esd")
    tone(root / "0011" / "Fear" / "0011_009999.wav")
    with pytest.raises(RelmError, match=r"0011: unknown emotion folder\(s\) \['Fear'\]"):
        get_adapter("esd").read(root)


@pytest.mark.parametrize("old", [False, True])
def test_msp_podcast_releases(tmp_path, old):
    m = get_adapter("msp-podcast").read(make_msp(tmp_path / "msp", old_release=old))
    df = m.df.set_index("utt_id")
    assert sorted(df.emotion) == sorted(["neutral", "happy", "angry", "sad", "surprise"])
    assert df.loc["MSP-PODCAST_0003_0001", "split"] == "val"
    assert df.loc["MSP-PODCAST_0001_0008", "arousal"] == pytest.approx((2.2 - 1) / 6)
    assert df.loc["MSP-PODCAST_0001_0008", "transcript"] == "so I went to the store"
    assert df.loc["MSP-PODCAST_0002_0002", "speaker"].startswith("Unknown")
    assert m.skipped == {"class_not_in_set:C": 1, "split_not_used:Test2": 1, "unlabelled": 1}


def test_msp_missing_columns(tmp_path):
    root = make_msp(tmp_path / "msp")
    (root / "Labels" / "labels_consensus.csv").write_text("FileName,EmoClass\nA.wav,N\n")
    with pytest.raises(RelmError, match="labels_consensus.csv: missing column"):
        get_adapter("msp-podcast").read(root)


def test_ravdess_fixture_and_corrupt_file(tmp_path):
    root = make_ravdess(tmp_path / "rav")
    (root / "Actor_01" / "03-01-03-02-01-01-01.wav").write_bytes(b"RIFF\x00\x00not a wav")
    m = get_adapter("ravdess").read(root)
    assert m.skipped["unreadable_audio"] == 1 and len(m.df) == 4 * 9 - 1
    assert set(m.df.loc[m.df.speaker == "Actor_05", "split"]) == {"test"}
    with pytest.raises(RelmError, match="03-01-03-02-01-01-01.wav: unreadable audio"):
        get_adapter("ravdess").read(root, ReadOptions(strict_audio=True))


def test_ravdess_unknown_emotion_code(tmp_path):
    root = make_ravdess(tmp_path / "rav")
    tone(root / "Actor_01" / "03-01-09-01-01-01-01.wav")
    with pytest.raises(RelmError, match="03-01-09-01-01-01-01.wav: unknown emotion code '09'"):
        get_adapter("ravdess").read(root)


@pytest.mark.parametrize("dataset", ["iemocap", "esd", "msp-podcast", "ravdess"])
def test_missing_empty_and_wrong_layout_roots(tmp_path, dataset):
    adapter = get_adapter(dataset)
    with pytest.raises(RelmError, match="does not exist"):
        adapter.read(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(RelmError, match="is empty"):
        adapter.read(tmp_path / "empty")
    (tmp_path / "wrong" / "stuff").mkdir(parents=True)
    (tmp_path / "wrong" / "stuff" / "readme.txt").write_text("hi")
    with pytest.raises(RelmError, match=dataset):
        adapter.read(tmp_path / "wrong")


def test_find_root_says_where_it_looked(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(RelmError, match=r"looked in datasets/esd.*RELM_ESD_ROOT.*synth-esd"):
        find_root("esd")


def test_cli_describe_json_and_error_line(tmp_path, capsys):
    root = make_ravdess(tmp_path / "rav")
    assert main(["data", "describe", "--dataset", "ravdess", "--root", str(root), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert {"n_utterances", "n_speakers", "per_class", "per_split", "skipped"} <= set(info)
    assert main(["data", "describe", "--dataset", "ravdess", "--root", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "corpus not found" in err[0]


def test_real_ravdess_subset():
    root = shared_data("ravdess")
    info = describe(get_adapter("ravdess").read(root))
    assert info["n_files_seen"] == 240 and info["n_speakers"] == 16
    assert info["per_class"] == {"neutral": 16, "happy": 32, "angry": 32, "sad": 32, "surprise": 32}
    assert info["skipped"] == {
        "class_not_in_set:calm": 32,
        "class_not_in_set:disgust": 32,
        "class_not_in_set:fearful": 32,
    }
    assert set(info["per_split"]) == {"train", "val", "test"}


def test_a_transcript_file_mixing_utf8_and_latin1_never_turns_into_mojibake(tmp_path):
    from relm.data.corpora.esd import decode_transcripts

    raw = "0011_000001\tCafé au lait.\tNeutral\n".encode() + "0011_000002\tCafé noir.\tHappy\n".encode("latin-1")
    text, other = decode_transcripts(raw, tmp_path / "0011.txt", mandarin=False)
    assert "Café au lait." in text and "Café noir." in text and "Ã" not in text and other == 1
    legacy = "0011_000002\tCafé noir.\tHappy\n".encode("latin-1")
    assert decode_transcripts(legacy, tmp_path / "0011.txt", mandarin=False) == ("0011_000002\tCafé noir.\tHappy\n", 0)
