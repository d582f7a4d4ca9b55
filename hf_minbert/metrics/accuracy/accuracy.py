"""Accuracy: the fraction of predicted labels equal to the reference labels (SST, Quora, CFIMDB).

An `evaluate` metric module shipped inside hf_minbert and loaded by local path, because the Hub's own
`accuracy` script cannot be fetched offline. Computed as the course's evaluation code did:
`mean(predictions == references)`.
"""
import datasets
import evaluate
import numpy as np

_DESCRIPTION = """
Accuracy is the proportion of examples whose predicted label equals the reference label:
mean(predictions == references). Labels are class numbers (integers).
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions (`list` of `int`): predicted class numbers.
    references (`list` of `int`): gold class numbers, as many as predictions.
    normalize (`bool`, default True): the fraction of correct examples; False: their (weighted) count.
    sample_weight (`list` of `float`, optional): one weight per example; default 1 each.
Returns:
    accuracy (`float`): in [0, 1], or a count with normalize=False.
Examples:
    >>> accuracy = evaluate.load("hf_minbert/metrics/accuracy/accuracy.py")
    >>> accuracy.compute(predictions=[0, 1, 2, 2], references=[0, 1, 1, 2])
    {'accuracy': 0.75}
    >>> accuracy.compute(predictions=[0, 1, 2, 2], references=[0, 1, 1, 2], normalize=False)
    {'accuracy': 3.0}
"""

_CITATION = ""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class Accuracy(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features(
                {"predictions": datasets.Value("int64"), "references": datasets.Value("int64")}
            ),
        )

    def _compute(self, predictions, references, normalize=True, sample_weight=None):
        # The keyword arguments of the Hub's `accuracy` (scikit-learn's accuracy_score), so that it drops in.
        if len(predictions) == 0:
            raise ValueError("accuracy of zero examples is undefined")
        matches = np.asarray(predictions, dtype=np.int64) == np.asarray(references, dtype=np.int64)
        weights = np.ones(len(matches)) if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
        if weights.shape != matches.shape:
            raise ValueError(f"sample_weight has {weights.size} weights for {matches.size} examples")
        correct = float(weights[matches].sum())
        return {"accuracy": correct / float(weights.sum()) if normalize else correct}
