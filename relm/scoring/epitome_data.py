"""Read the EPITOME annotation CSVs (Sharma et al. 2020) into one clean table.

The three files (ER, IP, EX) list the same (seeker, response) pairs row by row; the text
cells differ in whitespace between files, 61 rows repeat a pair and 10 of those carry
conflicting ER levels (see the data's SOURCE.md). We therefore key rows by whitespace-
collapsed text, keep one copy of exact repeats, and drop a pair whose copies disagree on
a level (it is ambiguous as training or test data); both are counted, never silent.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
from dataclasses import dataclass, field, replace
from pathlib import Path

import pandas as pd

from relm.errors import RelmError
from relm.keys import content_key
from relm.metrics.table import EMPATHY_MECHANISMS

MECHANISMS = EMPATHY_MECHANISMS  # "er", "ip", "ex": one spelling, in tables, scorers and results
FILES = {
    "er": "emotional-reactions-reddit.csv",
    "ip": "interpretations-reddit.csv",
    "ex": "explorations-reddit.csv",
}
COLUMNS = ("sp_id", "rp_id", "seeker_post", "response_post", "level")
_WS = re.compile(r"\s+")


def norm_text(text: str) -> str:
    return _WS.sub(" ", str(text)).strip()


def pair_key(seeker: str, response: str) -> str:
    """A stable id for a (seeker, response) pair, robust to whitespace differences."""
    return content_key(norm_text(seeker), norm_text(response))


@dataclass
class EpitomeData:
    table: pd.DataFrame  # sp_id, seeker_post, response_post, key, er, ip, ex
    data_hash: str
    skipped: dict[str, int] = field(default_factory=dict)
    source: str = ""


def default_dir() -> Path:
    return Path(os.environ.get("RELM_EPITOME_DIR") or "datasets/epitome")


def check_epitome_folder(folder: Path) -> None:
    """An `--epitome` folder that is not there: one error line."""
    if not folder.is_dir():
        raise RelmError(f"--epitome {folder}: no such folder (it holds the three EPITOME CSVs)")


def _read_csv(path: Path, raw: bytes) -> pd.DataFrame:
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise RelmError(
            f"{path}: not UTF-8 (byte {exc.start}: {raw[exc.start : exc.start + 1]!r}); re-save the file as UTF-8"
        ) from None
    try:
        df = pd.read_csv(io.StringIO(text), dtype={"sp_id": str, "rp_id": str}, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise RelmError(f"{path}: unreadable CSV ({exc})") from None
    missing = [c for c in COLUMNS if c not in df.columns]
    if missing:
        raise RelmError(f"{path}: missing column(s) {', '.join(missing)}; expected {', '.join(COLUMNS)}")
    return df


def load_epitome(folder: str | os.PathLike | None = None) -> EpitomeData:
    """Load and join the three mechanism files of an EPITOME folder. A process reads a folder's CSVs once for as long
    as their bytes stay the same (a sweep's start asks for them four times); each call gets its own copy."""
    folder = Path(folder) if folder else default_dir()
    if not folder.is_dir():
        raise RelmError(
            f"EPITOME folder {folder} not found; pass --data DIR or set RELM_EPITOME_DIR "
            "(the CSVs come from github.com/behavioral-data/Empathy-Mental-Health, dataset/)"
        )
    raw = {}
    for mech in MECHANISMS:
        path = folder / FILES[mech]
        if not path.is_file():
            raise RelmError(f"{path}: missing EPITOME file for {mech.upper()}")
        raw[mech] = path.read_bytes()
    data_hash = hashlib.sha256(b"".join(raw.values())).hexdigest()  # = updating with each file in turn, as before
    memo_key = (str(folder), data_hash)
    if memo_key not in _LOADED:
        _LOADED[memo_key] = _parse(folder, raw, data_hash)
    found = _LOADED[memo_key]
    return replace(found, table=found.table.copy(), skipped=dict(found.skipped))


_LOADED: dict[tuple[str, str], EpitomeData] = {}  # (folder, hash of its CSVs' bytes) -> the rows parsed from them


def _parse(folder: Path, raw: dict[str, bytes], data_hash: str) -> EpitomeData:
    """The three CSVs' bytes, checked, cleaned and joined on the pair key."""
    skipped = {"empty_response": 0, "bad_level": 0, "duplicate": 0, "conflicting": 0}
    per_mech = {}
    for mech in MECHANISMS:
        path = folder / FILES[mech]
        df = _read_csv(path, raw[mech])
        level = pd.to_numeric(df["level"], errors="coerce")
        bad = ~level.isin([0, 1, 2])
        if bad.any():
            rows = (df.index[bad][:3] + 2).tolist()  # +2: header line and 1-based numbering
            raise RelmError(f"{path}: {int(bad.sum())} level(s) outside 0/1/2 (lines {rows})")
        df = df.assign(
            level=level.astype(int),
            seeker_post=df["seeker_post"].map(norm_text),
            response_post=df["response_post"].map(norm_text),
        )
        empty = df["response_post"].eq("")
        skipped["empty_response"] = max(skipped["empty_response"], int(empty.sum()))
        df = df[~empty]
        df["key"] = [pair_key(s, r) for s, r in zip(df["seeker_post"], df["response_post"])]
        per_mech[mech] = df
    table = None
    for mech, df in per_mech.items():
        levels = df.groupby("key")["level"].agg(lambda s: s.iloc[0] if s.nunique() == 1 else -1)
        first = df.drop_duplicates("key").set_index("key")
        part = first[["sp_id", "seeker_post", "response_post"]].join(levels.rename(mech))
        part[f"{mech}_rationales"] = first.get("rationales", "")
        cols = [mech, f"{mech}_rationales"]
        table = part if table is None else table.join(part[cols], how="inner")
    assert table is not None  # MECHANISMS is not empty
    n_rows = len(per_mech[MECHANISMS[0]])
    conflicting = (table[list(MECHANISMS)] < 0).any(axis=1)
    skipped["conflicting"] = int(conflicting.sum())
    skipped["duplicate"] = n_rows - len(table)
    table = table[~conflicting].reset_index()
    if table.empty:
        raise RelmError(f"{folder}: no usable rows after cleaning ({skipped})")
    return EpitomeData(table=table, data_hash=data_hash, skipped=skipped, source=str(folder))


def split_by_seeker(table: pd.DataFrame, val_fraction: float = 0.2, seed: int = 0):
    """Train/validation split grouped by seeker post, so no post straddles the two."""
    from sklearn.model_selection import GroupShuffleSplit

    gss = GroupShuffleSplit(n_splits=1, test_size=val_fraction, random_state=seed)
    train_idx, val_idx = next(gss.split(table, groups=table["sp_id"]))
    return table.iloc[train_idx].reset_index(drop=True), table.iloc[val_idx].reset_index(drop=True)
