"""The schema of results.json (TypedDicts; the docstring under each key is its documentation) and its builder.

`relm bench` and `relm evaluate` build results through the same functions (`new_results`,
`add_run`, `aggregate`), and `docs/results-schema.md` is generated from this file
(`python -m relm.results > docs/results-schema.md`; a test keeps the two equal).
"""

from __future__ import annotations

import functools
import sys
from typing import Any

from pydantic import ConfigDict, TypeAdapter, ValidationError, with_config
from typing_extensions import TypedDict  # pydantic reads its keys on Python 3.11

from relm.docstrings import attribute_fields
from relm.errors import RelmError
from relm.provenance import Provenance

SCHEMA_VERSION = 1


@with_config(ConfigDict(extra="forbid"))
class ScorerInfo(TypedDict, total=False):
    available: bool
    """False when no EPITOME data was found: empathy metrics are then null."""
    identity: str
    """`kind@datahash-seed` of the scorer that produced every ER/IP/EX level."""
    kind: str
    """Scorer kind (`relm ls scorers`)."""
    params: dict[str, Any]
    """The kind's parameters (part of the identity)."""
    seed: int
    """The scorer's training seed."""
    training_data_hash: str
    """sha256 of the three EPITOME CSVs it was trained on."""
    training_data: str
    """Folder of those CSVs."""
    validation: dict[str, dict[str, Any]]
    """Per mechanism (er, ip, ex): held-out `accuracy`, `macro_f1`, `n` and `confusion` (rows: gold level 0-2,
    columns: predicted) on unseen seekers."""
    cross_validation: dict[str, Any]
    """With `scorer_cv_folds`: `folds`, `n` pairs, and per mechanism the mean and sd over folds grouped by seeker of
    held-out `accuracy` and `macro_f1` (`accuracy_sd`, `macro_f1_sd`), and `macro_f1_batched` (EPITOME's
    batch-averaged reading: its released train.py averages macro-F1 over test batches of 32)."""
    reason: str
    """Why the scorer is unavailable."""


@with_config(ConfigDict(extra="forbid"))
class FidelityInfo(TypedDict):
    recipe: str
    """`release` when every switch of `docs/fidelity.md` has its released value, else `deviates`."""
    switches: dict[str, Any]
    """Every switch of `docs/fidelity.md` (a dotted preset field) and its value in this sweep."""
    deviations: list[dict[str, Any]]
    """Each switch whose value differs from the release's: `element`, `switch`, `value`, `release`."""


@with_config(ConfigDict(extra="forbid"))
class TeacherInfo(TypedDict):
    identity: str
    """The teacher LLM's identity (file hash or hub revision), or `template`."""
    prompt: str
    """Prompt style: paper, fewshot or template."""
    openers: dict[str, str]
    """Per emotion, the words each teacher reply starts with (`teacher.openers`; empty: none)."""
    cache_key: str
    """Key of the teacher's cache entry."""
    dropped_by_cleaning: int
    """Responses the cleaning rules dropped (those utterances train without a response target)."""
    clean: str
    """The cleaning rules applied (`teacher.clean`): release (five drop rules) or relm (also trims)."""
    changed_by_relm_rules: int
    """Distinct replies that relm's rules would have changed or dropped where the release's keep them as generated
    (0 difference means the choice did not matter here)."""
    empty_transcripts: int
    """Utterances with an empty transcript: reported and left without a teacher target."""
    decoding: dict[str, Any]
    """Every effective decoding field (those unlike transformers' defaults, and the ones relm sets)."""
    entry: str
    """The teacher's cache entry (`teacher/<entry>` under RELM_CACHE)."""
    dtype: str
    """The teacher's weight dtype (`none` for a template teacher)."""
    hit_token_limit: int
    """Responses whose generation hit `max_new_tokens`: their targets get no end-of-turn token, as released."""
    n: int
    """Utterances given to the teacher."""


@with_config(ConfigDict(extra="forbid"))
class DataInfo(TypedDict, total=False):
    data_hash: str
    """The cache key of the data: manifest rows (ids, paths, labels, splits, transcripts, speakers, durations,
    A/V/D) and each audio file's size and mtime (sha256 with `--verify`); local to this copy of the corpus."""
    content_hash: str
    """The data wherever it lies: ids, labels, splits, transcripts, speakers, A/V/D and each audio file's sha256,
    no paths or mtimes. `relm check` refuses a baseline whose content hash differs."""
    n: dict[str, int]
    """Utterances per split."""
    avd_targets: str
    """Where the A/V/D regression targets came from: annotations, or which pseudo-targets."""
    emotion_encoder: dict[str, Any]
    """`kind` and `trained_on` (a corpus, or `none` for a random encoder); for a stage-0 encoder also its
    weights, seed, targets, loss per epoch, held-out `val_mse` and `overlap` (speakers and sentences shared
    with the benchmark: 0)."""
    teacher: TeacherInfo
    """Step-1 teacher (sweeps only)."""
    skipped: dict[str, int]
    """Adapter skip counts by reason."""
    manifest: str
    """Parquet file of the exact utterance table used."""
    root: str
    """The corpus folder that was read (resolved)."""
    split: str
    """`relm evaluate` only: the split answered (`all` for a corpus the systems did not train on)."""


@with_config(ConfigDict(extra="forbid"))
class Comparison(TypedDict, total=False):
    mean_a: float | None
    """Metric of system a (the proposed system)."""
    mean_b: float | None
    """Metric of system b."""
    relative_improvement: float | None
    """(a - b) / b in percent, as the paper reports."""
    absolute_difference: float
    """a - b (UA)."""
    p_wilcoxon: float | None
    """Wilcoxon signed-rank p on per-utterance scores with scipy's defaults (zero differences dropped, two-sided),
    the paper's test; not the primary test. For UA: on per-utterance correctness."""
    p_wilcoxon_zsplit: float | None
    """The same test keeping zero differences (`zero_method="zsplit"`), relm's previous figure."""
    p_permutation: float | None
    """The primary test: paired permutation p over utterances (sign flips of per-utterance differences;
    for UA, a and b swapped per utterance with all its seeds)."""
    ci95: list[float | None]
    """Paired bootstrap 95% CI of a - b, resampling utterances."""
    n_items: int
    """Test utterances paired (the unit of replication)."""
    n_seeds_a: int
    """Distinct seeds of system a averaged per utterance (1 for a system whose seeds answered identically)."""
    n_seeds_b: int
    """Distinct seeds of system b."""
    confirmatory: bool
    """True for a hypothesis of the declared family (`hypotheses`)."""
    p_holm: float
    """Confirmatory only: primary p, Holm-adjusted within the dataset's family."""
    p_bh: float
    """Exploratory only: primary p, Benjamini-Hochberg-adjusted over the dataset's exploratory tests."""
    robust: bool
    """Empathy metrics, with `scorer_seeds` > 1 or an agreement scorer: the sign and the significance (adjusted
    p < 0.05) are the same under every other scorer."""
    by_scorer: dict[str, dict[str, float | None]]
    """Empathy metrics: the difference and the adjusted p under each other scorer (`seed N`, `agreement (kind)`)."""


@with_config(ConfigDict(extra="forbid"))
class Results(TypedDict, total=False):
    schema_version: int
    """Version of this schema."""
    sweep_id: str
    """Run folder name: `<preset>-<datasets>-<key of systems, seeds, preset>` (the same command resumes it)."""
    preset: dict[str, Any]
    """The full preset after overrides."""
    preset_hash: str
    """Content key of `preset`."""
    datasets: list[str]
    """Datasets of the sweep."""
    systems: list[str]
    """Systems of the sweep (`relm ls systems`)."""
    seeds: list[int]
    """Seeds `0..N-1`."""
    scorer: ScorerInfo
    """The empathy scorer behind every ER/IP/EX number."""
    provenance: Provenance
    """Code and library versions."""
    protocols: dict[str, str]
    """`<dataset>:<protocol>` per dataset, e.g. `iemocap:session5-test`."""
    data: dict[str, DataInfo]
    """Per dataset: what was read and prepared."""
    metrics: dict[str, dict[str, dict[str, Any]]]
    """[dataset][system][metric]: mean over seeds (`relm ls metrics`); `<metric>_sd` with several seeds;
    `n`, `n_unparseable`, `er_levels`..."""
    metrics_by_seed: dict[str, dict[str, list[dict[str, Any]]]]
    """[dataset][system]: one `metrics.json` per seed, with confusion matrices, A/V/D fit, response lengths
    and `train` (items, steps, parameters, seconds)."""
    comparisons: dict[str, dict[str, dict[str, Comparison]]]
    """[dataset]["<proposed> vs <other>"][metric]: paired tests over the test utterances."""
    hypotheses: dict[str, list[dict[str, Any]]]
    """[dataset]: the confirmatory family, each `{comparison, metric, test}`: the proposed system against
    each paper baseline on ER, EX and UA. Everything else is exploratory."""
    scorer_agreement: dict[str, dict[str, Any]]
    """[dataset]: the preset's `agreement_scorer` on the same replies: `kappa` per mechanism, `n` replies,
    and `direction_disagreements` (comparisons whose sign flips under the other scorer)."""
    congruence_detector: dict[str, Any]
    """The reply-emotion detector behind `congruence`, measured on hand-labelled replies: `accuracy`, `n`,
    `per_source` (each system's outputs, edge cases)."""
    teacher_reference: dict[str, dict[str, Any]]
    """[dataset]: the step-1 targets scored like a system and compared with the zero-shot system (a = teacher)."""
    teacher_replies: dict[str, dict[str, Any]]
    """[dataset]: the step-1 targets of the test utterances measured like a system's replies (`distinct_1`,
    `distinct_2` with `_ci95`, `repeat_rate`, `reply_words`, `relevance`, `off_topic_rate` and its threshold,
    `distinct_replies`, `distinct_transcripts`, `collapse`, `n`) and `samples`: the utterances of the report's
    sample table (3 transcripts, one per emotion) with their target."""
    reply_samples: dict[str, list[dict[str, Any]]]
    """[dataset]: the sample table: per utterance `utt_id`, `transcript`, `emotion`, `target` and `replies`
    ({system: its seed-0 reply})."""
    runs: dict[str, dict[str, list[str]]]
    """[dataset][system]: run folders (relative) with `responses.jsonl`, `metrics.json` and training logs."""
    timings_s: dict[str, float]
    """Wall seconds per stage (`manifest`, `features`, `stage0`, `teacher`, `train:<system>`, `score`)."""
    peak_rss_gib: float
    """Peak resident memory of the process."""
    calibration: dict[str, Any]
    """`matmul_gflops`: this machine's float32 matmul throughput, measured in the same process, and the threads."""
    cost_gflop_eq: int
    """Sum of `timings_s` x `matmul_gflops`: the sweep's cost in GFLOP-equivalents, comparable across machines."""
    cost_share: dict[str, float]
    """Each stage's share of the sweep's time."""
    peak_gpu_memory_gib: float | None
    """Peak CUDA memory allocated by torch (`torch.cuda.max_memory_allocated`), null without a GPU."""
    cache_entries: list[str]
    """Every cache entry (`<stage>/<key>` under RELM_CACHE) the sweep read or wrote; `relm cache gc` keeps these."""
    device: str
    """The device every stage ran on (`runtime.device` resolved)."""
    threads: int
    """torch's intra-op threads (preset `threads`, else every core)."""
    stand_ins: list[str]
    """Models with random or generated weights standing in for real ones (toy presets): their metrics mean nothing."""
    precision: dict[str, str]
    """`train_and_generate` (`train.precision` resolved: auto picks bf16 only where it is native), `features`
    (the frozen encoders), `teacher` (the teacher's weight dtype; `none` for a template teacher) and `why`."""
    fidelity: FidelityInfo
    """The preset against the released RE-LLM recipe (`docs/fidelity.md`)."""
    scorer_robustness: dict[str, dict[str, Any]]
    """Per dataset: the other scorers that rescored the replies, each empathy metric's spread over scorer seeds
    per system, and the scorer-fragile comparisons (`relm.bench.robustness`)."""
    evaluated_from: str
    """`relm evaluate` only: the sweep whose trained systems answered."""
    trained_on: str
    """`relm evaluate` only: the dataset those systems were trained on."""


def validate_results(results: Any, where: str) -> None:
    """One error line unless `results` (as read back from its JSON) matches the schema above: keys, nesting and
    types, strictly (a number written as a string fails). Checked before results.json is written."""
    try:
        _adapter().validate_python(results, strict=True)
    except ValidationError as exc:
        first = exc.errors()[0]
        at = ".".join(str(p) for p in first["loc"])
        raise RelmError(f"{where}: results do not match relm/results.py at {at}: {first['msg']}") from None


@functools.cache
def _adapter() -> TypeAdapter:
    return TypeAdapter(Results)


def schema_markdown() -> str:
    """docs/results-schema.md, generated from the TypedDicts above."""
    lines = [
        "# `results.json`, key by key",
        "",
        "Generated from `relm/results.py` (`python -m relm.results > docs/results-schema.md`). Written",
        "atomically to `results/runs/<sweep-id>/results.json` by `relm bench` and `relm evaluate`;",
        "`results/runs/latest` points at the newest sweep folder. Metric names and facts: `relm ls metrics`.",
        "",
    ]
    for cls in (Results, DataInfo, TeacherInfo, FidelityInfo, ScorerInfo, Comparison, Provenance):
        lines += [f"## `{cls.__name__}`", "", "| key | type | meaning |", "|---|---|---|"]
        for key, (hint, doc) in attribute_fields(cls).items():
            cell = hint.replace("|", "\\|")  # a bare | would split the Markdown cell
            lines.append(f"| `{key}` | `{cell}` | {doc} |")
        lines.append("")
    lines += ["`results/baselines/*.json` keep `metrics` plus per-metric absolute `tolerances` for `relm check`."]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.stdout.write(schema_markdown())
