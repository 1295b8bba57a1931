"""How numbers read in reports and `relm compare`: one place, so every table prints them alike."""

from __future__ import annotations

import numpy as np


def fmt(v, digits: int = 3) -> str:
    return "n/a" if v is None or (isinstance(v, float) and np.isnan(v)) else f"{v:.{digits}f}"


def fmt_p(p) -> str:
    """A p-value as a reader expects it: 4 decimals, or `< 0.001`."""
    return "n/a" if p is None else "< 0.001" if p < 0.001 else f"{p:.4f}"
