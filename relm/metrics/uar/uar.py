"""Unweighted average recall (UA) for speech emotion recognition, as an `evaluate` module."""

import evaluate

import datasets
from relm.scoring.ser import unweighted_accuracy

_DESCRIPTION = """UA: the mean of per-class recalls over the classes present in the references
(the standard SER 'unweighted accuracy'); WA (plain accuracy) is returned alongside."""

_KWARGS = """
Args:
    predictions (list of str or int): predicted labels; an unparseable answer is its own label.
    references (list of str or int): gold labels.
Returns:
    uar (float), wa (float)
"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS)
class Uar(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation="",
            inputs_description=_KWARGS,
            features=datasets.Features(
                {"predictions": datasets.Value("string"), "references": datasets.Value("string")}
            ),
        )

    def _compute(self, predictions, references):
        wa = sum(p == r for p, r in zip(predictions, references)) / max(1, len(references))
        return {"uar": unweighted_accuracy(references, predictions), "wa": float(wa)}
