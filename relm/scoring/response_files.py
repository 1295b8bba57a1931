"""Responses from outside relm: files a researcher brings to be scored, read strictly.

`read_pairs` (for `relm scorer score`): CSV or JSONL with `seeker_post` and `response_post` (EPITOME's
names) or `transcript` and `response` (relm's), and optionally `gold_emotion`.
`read_system_answers` (for `relm evaluate --responses`): JSONL with `id`, `response` and optionally
`ser_answer`, one line per test utterance of a run.
Every problem is one error naming the file and the row (1-based data rows; line numbers for JSONL).
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from relm.data.schema import LABELS
from relm.errors import RelmError

PAIR_COLUMNS = (("seeker_post", "response_post"), ("transcript", "response"))


def _text(path: Path) -> str:
    if not path.is_file():
        raise RelmError(f"{path}: no such file")
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise RelmError(f"{path}: line {line} is not UTF-8 (byte {exc.start}); re-save the file as UTF-8") from None
    if not text.strip():
        raise RelmError(f"{path}: the file is empty")
    return text


def _records(path: Path) -> list[tuple[str, dict]]:
    """(where, record) per row: `line N` of a JSONL file, `row N` of a CSV."""
    text = _text(path)
    if path.suffix.lower() in (".jsonl", ".json", ".ndjson"):
        out = []
        for n, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as exc:
                raise RelmError(f"{path}: line {n} is not JSON ({exc.msg})") from None
            if not isinstance(rec, dict):
                raise RelmError(f"{path}: line {n} is not a JSON object")
            out.append((f"line {n}", rec))
        return out
    try:
        rows = list(csv.DictReader(io.StringIO(text)))
    except csv.Error as exc:
        raise RelmError(f"{path}: unreadable CSV ({exc})") from None
    if not rows:
        raise RelmError(f"{path}: a header but no rows")
    return [(f"row {n}", dict(r)) for n, r in enumerate(rows, 1)]


def read_pairs(path: str | Path) -> list[dict]:
    """[{seeker, response, gold_emotion or None}] in file order."""
    path = Path(path)
    records = _records(path)
    keys = set(records[0][1])
    names = next((pair for pair in PAIR_COLUMNS if set(pair) <= keys), None)
    if names is None:
        raise RelmError(
            f"{path}: needs columns seeker_post and response_post (or transcript and response); found {sorted(keys)}"
        )
    out = []
    for where, rec in records:
        missing = [c for c in names if rec.get(c) is None]
        if missing:
            raise RelmError(f"{path}: {where} lacks {', '.join(missing)}")
        gold = rec.get("gold_emotion") or None
        if gold is not None and gold not in LABELS:
            raise RelmError(f"{path}: {where}: gold_emotion {gold!r} is not one of {list(LABELS)}")
        out.append({"seeker": str(rec[names[0]]), "response": str(rec[names[1]]), "gold_emotion": gold})
    return out


def read_system_answers(path: str | Path, test_ids: list[str]) -> dict[str, dict]:
    """{utterance id: {response, ser_answer}} covering exactly a run's test utterances."""
    path = Path(path)
    answers: dict[str, dict] = {}
    for where, rec in _records(path):
        if "id" not in rec or "response" not in rec:
            raise RelmError(f"{path}: {where} needs `id` and `response`")
        uid = str(rec["id"])
        if uid in answers:
            raise RelmError(f"{path}: {where}: id {uid!r} appears twice")
        answers[uid] = {"response": str(rec["response"]), "ser_answer": str(rec.get("ser_answer") or "")}
    missing, extra = sorted(set(test_ids) - set(answers)), sorted(set(answers) - set(test_ids))
    if missing or extra:
        raise RelmError(
            f"{path}: {len(answers)} answers for {len(test_ids)} test utterances: {len(missing)} missing "
            f"(e.g. {missing[:3]}), {len(extra)} not in the run's test set (e.g. {extra[:3]})"
        )
    return answers
