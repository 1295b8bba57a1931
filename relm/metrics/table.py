"""The metric table: every fact about a metric lives in its one `register_metric` call.

`family` groups metrics for reports (empathy or ser); `primary_test` names the paired test
whose p-value a comparison adjusts and reports first (None: the metric is not tested);
`gated` metrics are checked by `relm check`, within `tolerance` of a baseline; `confirmatory`
metrics belong to the paper's hypotheses (the proposed system against each paper baseline),
Holm-adjusted per dataset; every other tested metric is exploratory and BH-adjusted;
`headline` metrics are columns of the paper-style table; `plot` metrics get a bar chart.
`item_key` is the per-reply column (in responses.jsonl) whose mean over seeds is the tested
item score; `row` computes it for a metric relm does not compute itself (a plugin's): the
metric is then the mean of `row` over the run's scored replies. Other packages register
metrics through the `relm.metrics` entry point (`relm.plugins`, `docs/extending.md`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from relm.plugins import load_plugins
from relm.registry import Registry

Family = Literal["empathy", "ser", "congruence", "replies"]
PrimaryTest = Literal["permutation"]


@dataclass(frozen=True)
class Metric:
    name: str
    higher_is_better: bool
    primary_test: PrimaryTest | None
    gated: bool
    family: Family
    description: str
    headline: bool = True
    confirmatory: bool = False
    item_key: str | None = None  # the per-utterance row field whose seed average is the tested item score
    tolerance: float | None = None  # `relm check`: the largest drop (absolute) a baseline accepts
    plot: str | None = None  # a bar chart with this y-axis label (scaled 0..`plot_top`)
    plot_top: float = 1.0
    row: Callable[[Mapping[str, Any]], float] | None = None  # a plugin metric: its value for one scored reply

    def __post_init__(self) -> None:
        if self.row is not None and self.item_key is None:
            object.__setattr__(self, "item_key", self.name)  # a computed metric's column is its name

    @property
    def p_key(self) -> str | None:
        """The comparison field that holds this metric's primary p-value."""
        return None if self.primary_test is None else f"p_{self.primary_test}"

    def primary_p(self, comparison: dict) -> float | None:
        return None if self.p_key is None else comparison.get(self.p_key)


METRICS: Registry[Metric] = Registry("metric")


def register_metric(name: str, **facts) -> Metric:
    metric = Metric(name, **facts)
    METRICS.register(name, metric)
    return metric


EMPATHY_MECHANISMS = ("er", "ip", "ex")  # EPITOME: Emotional Reaction, Interpretation, Exploration
for _mech, _title in zip(EMPATHY_MECHANISMS, ("Emotional Reaction", "Interpretation", "Exploration"), strict=True):
    register_metric(
        _mech,
        higher_is_better=True,
        primary_test="permutation",
        gated=True,
        family="empathy",
        confirmatory=_mech != "ip",  # the paper's empathy claims are on ER and EX
        item_key=_mech,
        tolerance=0.15,
        plot="mean level (0-2)",
        plot_top=2.0,
        description=f"mean EPITOME {_title} level (0-2) of the test responses",
    )
register_metric(
    "ua",
    higher_is_better=True,
    primary_test="permutation",
    gated=True,
    family="ser",
    confirmatory=True,
    tolerance=0.1,
    plot="unweighted accuracy",
    description="unweighted accuracy (macro recall) of the parsed generative SER answer",
)
register_metric(
    "wa",
    higher_is_better=True,
    primary_test="permutation",
    gated=True,
    family="ser",
    headline=False,
    item_key="correct",
    tolerance=0.1,
    description="weighted accuracy (plain accuracy) of the parsed generative SER answer",
)
register_metric(
    "macro_f1",
    higher_is_better=True,
    primary_test=None,
    gated=True,
    family="ser",
    headline=False,
    tolerance=0.1,
    description="macro-F1 of the parsed generative SER answer over the gold classes",
)
register_metric(
    "congruence",
    higher_is_better=True,
    primary_test="permutation",
    gated=False,
    family="congruence",
    item_key="congruent",
    description="share of replies naming the speaker's gold emotion (naming none counts for a neutral speaker)",
)
register_metric(
    "incongruence",
    higher_is_better=False,
    primary_test="permutation",
    gated=False,
    family="congruence",
    headline=False,
    item_key="incongruent",
    description="share of replies naming an emotion other than the speaker's gold emotion",
)
register_metric(
    "emotion_named",
    higher_is_better=True,
    primary_test="permutation",
    gated=False,
    family="congruence",
    headline=False,
    item_key="emotion_named",
    description="share of replies that name or react to any emotion",
)
register_metric(
    "ua_head",
    higher_is_better=True,
    primary_test=None,
    gated=True,
    family="ser",
    tolerance=0.1,
    description="unweighted accuracy of the SER head on the pooled adapter output (speech systems)",
)

# What the replies are (relm.scoring.responses): per-reply columns get paired tests (exploratory).
for _name, _higher, _key, _description in (
    ("distinct_1", True, None, "unique words over all words of all replies (corpus-level; jackknife CI in _ci95)"),
    ("distinct_2", True, None, "unique word bigrams over all bigrams of all replies (corpus-level)"),
    ("repeat_rate", False, "repeated", "share of replies that are also the system's reply to a different sentence"),
    ("reply_words", True, "reply_words", "mean reply length in words (descriptive: longer is not better by itself)"),
    ("relevance", True, "relevance", "cosine of reply and transcript in all-MiniLM-L6-v2's sentence space"),
    ("off_topic_rate", False, "off_topic", "share of replies no closer to their transcript than to others' (95th pct)"),
):
    register_metric(
        _name,
        higher_is_better=_higher,
        primary_test="permutation" if _key else None,
        gated=False,
        family="replies",
        headline=False,
        item_key=_key,
        description=_description,
    )


def metric_names(**facts: object) -> list[str]:
    """Names of the metrics whose attributes equal `facts`, in table order (e.g. gated=True)."""
    return [n for n, m in METRICS.items() if all(getattr(m, k) == v for k, v in facts.items())]


def tested_metrics() -> list[str]:
    return [n for n, m in METRICS.items() if m.primary_test is not None]


def computed_metrics() -> list[str]:
    """Metrics relm computes from their `row` function (registered by plugins), in table order."""
    return [n for n, m in METRICS.items() if m.row is not None]


def row_columns() -> list[str]:
    """Every per-reply column a metric reads (its `item_key`), in table order."""
    return list(dict.fromkeys(m.item_key for _, m in METRICS.items() if m.item_key))


load_plugins("relm.metrics")  # last: a plugin's metrics come after relm's own
