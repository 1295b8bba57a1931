"""Local `evaluate` modules: `evaluate.load(relm.metrics.path("uar"))` works offline."""

from pathlib import Path


def path(name: str) -> str:
    """Folder of the local evaluate module `name` ("uar" or "epitome")."""
    return str(Path(__file__).parent / name)
