"""EPITOME empathy levels (0/1/2) of responses: mean level and level distribution, per mechanism."""

import evaluate
import numpy as np

import datasets

_DESCRIPTION = """Summarises EPITOME levels (Sharma et al. 2020) that a relm empathy scorer assigned:
the mean level (the RE-LLM paper's ER/EX numbers) and the share of each level."""

_KWARGS = """
Args:
    predictions (list of int): levels 0, 1 or 2 of one mechanism (ER, IP or EX).
    gold_levels (list of int, optional): gold levels; when given, accuracy and macro-F1 too.
Returns:
    mean_level, level_share (list of 3 floats) [, accuracy, macro_f1]
"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS)
class Epitome(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation="",
            inputs_description=_KWARGS,
            features=datasets.Features({"predictions": datasets.Value("int32")}),
        )

    def _compute(self, predictions, gold_levels=None):
        pred = np.asarray(predictions, dtype=int)
        if np.any((pred < 0) | (pred > 2)):
            raise ValueError("EPITOME levels must be 0, 1 or 2")
        out = {
            "mean_level": float(pred.mean()) if len(pred) else float("nan"),
            "level_share": [float(np.mean(pred == k)) if len(pred) else 0.0 for k in (0, 1, 2)],
        }
        if gold_levels is not None:
            from sklearn.metrics import f1_score

            ref = np.asarray(gold_levels, dtype=int)
            out["accuracy"] = float(np.mean(pred == ref))
            out["macro_f1"] = float(f1_score(ref, pred, labels=[0, 1, 2], average="macro", zero_division=0))
        return out
