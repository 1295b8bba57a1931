"""The metric table (`METRICS`) and the local `evaluate` modules (`evaluate.load(relm.metrics.path("uar"))`)."""

from pathlib import Path

from relm.metrics.table import EMPATHY_MECHANISMS, METRICS, Metric, metric_names, register_metric, tested_metrics


def path(name: str) -> str:
    """Folder of the local evaluate module `name` ("uar" or "epitome"), usable offline."""
    return str(Path(__file__).parent / name)


__all__ = ["EMPATHY_MECHANISMS", "METRICS", "Metric", "metric_names", "path", "register_metric", "tested_metrics"]
