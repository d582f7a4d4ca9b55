"""Pearson and Spearman correlation between predicted and gold similarity scores (STS).

An `evaluate` metric module shipped inside hf_minbert and loaded by local path (the Hub's `pearsonr` and
`spearmanr` scripts cannot be fetched offline). Pearson is `np.corrcoef(predictions, references)[1, 0]`,
exactly what the course's evaluation code computed (the matrix is not always exactly symmetric in floating
point, so the element matters in the last bit); Spearman is `scipy.stats.spearmanr`. Scores are
float64 throughout so that a recomputation from written prediction files agrees bit for bit.
"""
import datasets
import evaluate
import numpy as np
from scipy import stats

_DESCRIPTION = """
Pearson's r (linear correlation) and Spearman's rho (rank correlation) between predicted and reference
scores. Both are NaN when either side is constant, because a correlation is then undefined.
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions (`list` of `float`): predicted scores.
    references (`list` of `float`): gold scores, as many as predictions.
Returns:
    pearson (`float`): in [-1, 1], or NaN when a side is constant.
    spearman (`float`): in [-1, 1], or NaN when a side is constant.
Examples:
    >>> correlation = evaluate.load("hf_minbert/metrics/correlation/correlation.py")
    >>> correlation.compute(predictions=[1.0, 2.0, 3.0], references=[1.0, 2.0, 4.0])["spearman"]
    1.0
"""

_CITATION = ""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class Correlation(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features(
                {"predictions": datasets.Value("float64"), "references": datasets.Value("float64")}
            ),
        )

    def _compute(self, predictions, references):
        if len(predictions) < 2:
            raise ValueError(f"a correlation needs at least 2 examples, got {len(predictions)}")
        predictions = np.asarray(predictions, dtype=np.float64)
        references = np.asarray(references, dtype=np.float64)
        if np.ptp(predictions) == 0 or np.ptp(references) == 0:
            # numpy and scipy would warn and return NaN; say so without the noise.
            return {"pearson": float("nan"), "spearman": float("nan")}
        return {
            "pearson": float(np.corrcoef(predictions, references)[1, 0]),
            "spearman": float(stats.spearmanr(predictions, references).statistic),
        }
