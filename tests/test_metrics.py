"""Metric modules (loaded by local path) against numpy/scipy, the two overall scores, and scoring helpers."""
import math

import numpy as np
import pytest
from scipy import stats

from hf_minbert.evaluation import predictions_to_labels, score_task
from hf_minbert.metrics import (
    METRIC_NAMES,
    leaderboard_score,
    load_metric,
    mean_score,
    metric_path,
    tasks_overall,
    with_overall_scores,
)

RNG = np.random.default_rng(224)
PREDICTED_SCORES = RNG.uniform(0, 5, size=200)
GOLD_SCORES = np.clip(PREDICTED_SCORES + RNG.normal(0, 1.5, size=200), 0, 5).round(1)


@pytest.mark.parametrize("name", METRIC_NAMES)
def test_each_metric_is_a_module_file_shipped_in_the_package(name):
    path = metric_path(name)
    assert path.is_file() and path.name == f"{name}.py" and path.parent.parent.name == "metrics"


def test_unknown_metric_name_lists_the_shipped_ones():
    with pytest.raises(ValueError, match="accuracy, correlation"):
        metric_path("f1")


def test_accuracy_equals_numpy_mean_of_matches():
    predictions = RNG.integers(0, 5, size=300)
    references = RNG.integers(0, 5, size=300)
    result = load_metric("accuracy").compute(predictions=predictions.tolist(), references=references.tolist())
    assert result == {"accuracy": float(np.mean(predictions == references))}


def test_accuracy_takes_the_hub_accuracy_s_normalize_and_sample_weight():
    accuracy = load_metric("accuracy")
    predictions, references, weights = [0, 1, 2, 2], [0, 1, 1, 2], [1.0, 2.0, 3.0, 4.0]
    assert accuracy.compute(predictions=predictions, references=references, normalize=False) == {"accuracy": 3.0}
    weighted = accuracy.compute(predictions=predictions, references=references, sample_weight=weights)
    assert weighted == {"accuracy": pytest.approx(7.0 / 10.0)}


def test_accuracy_refuses_a_weight_count_that_differs_from_the_examples():
    with pytest.raises(ValueError, match="sample_weight has 2 weights for 3 examples"):
        load_metric("accuracy").compute(predictions=[0, 1, 1], references=[0, 1, 0], sample_weight=[1.0, 1.0])


def test_pearson_equals_the_course_np_corrcoef_exactly_and_scipy_closely():
    result = load_metric("correlation").compute(predictions=PREDICTED_SCORES.tolist(), references=GOLD_SCORES.tolist())
    assert result["pearson"] == np.corrcoef(PREDICTED_SCORES, GOLD_SCORES)[1][0]
    assert result["pearson"] == pytest.approx(stats.pearsonr(PREDICTED_SCORES, GOLD_SCORES).statistic, abs=1e-12)


def test_spearman_equals_scipy_spearmanr():
    result = load_metric("correlation").compute(predictions=PREDICTED_SCORES.tolist(), references=GOLD_SCORES.tolist())
    assert result["spearman"] == stats.spearmanr(PREDICTED_SCORES, GOLD_SCORES).statistic


def test_correlation_keeps_float64_precision():
    # float32 storage would move the scores by ~1e-7 and break exact recomputation from prediction files.
    predictions = [1.0 + 1e-12, 2.0, 3.0 + 3e-12]
    result = load_metric("correlation").compute(predictions=predictions, references=[1.0, 2.0, 3.5])
    assert result["pearson"] == np.corrcoef(np.array(predictions), [1.0, 2.0, 3.5])[1][0]


def test_correlation_of_constant_predictions_is_nan():
    result = load_metric("correlation").compute(predictions=[2.5] * 4, references=[0.0, 1.0, 2.0, 3.0])
    assert math.isnan(result["pearson"]) and math.isnan(result["spearman"])


def test_leaderboard_score_reproduces_seed_000_overall_test_score():
    assert round(leaderboard_score(0.557, 0.896, 0.876), 3) == 0.797


def test_mean_score_reproduces_seed_002_test_mean():
    assert round(mean_score(54.75, 90.25, 90.83), 2) == 78.61


def test_overall_scores_are_added_when_all_three_tasks_are_scored():
    metrics = {"sst": {"accuracy": 0.5}, "para": {"accuracy": 0.8}, "sts": {"pearson": 0.6, "spearman": 0.5}}
    result = with_overall_scores(metrics)
    assert result["overall"] == (0.5 + 0.8 + (0.6 + 1) / 2) / 3
    assert result["mean"] == (0.5 + 0.8 + 0.6) / 3


def test_tasks_overall_over_the_three_tasks_is_the_leaderboard_score():
    metrics = {"sst": {"accuracy": 0.5}, "para": {"accuracy": 0.8}, "sts": {"pearson": 0.6, "spearman": 0.5}}
    assert tasks_overall(metrics) == pytest.approx(leaderboard_score(0.5, 0.8, 0.6))


def test_tasks_overall_averages_whichever_tasks_were_scored():
    assert tasks_overall({"cfimdb": {"accuracy": 0.9}, "sts": {"pearson": 0.6}}) == pytest.approx((0.9 + 0.8) / 2)


def test_overall_scores_are_left_out_when_a_task_is_missing():
    result = with_overall_scores({"sst": {"accuracy": 0.5}, "sts": {"pearson": 0.6, "spearman": 0.5}})
    assert "overall" not in result and "mean" not in result


def test_score_task_para_compares_class_numbers_with_float_gold_labels():
    assert score_task("para", [1, 0, 1, 1], [1.0, 0.0, 0.0, 1.0]) == {"accuracy": 0.75}


def test_score_task_sts_gives_pearson_and_spearman():
    result = score_task("sts", PREDICTED_SCORES.tolist(), GOLD_SCORES.tolist())
    assert set(result) == {"pearson", "spearman"}


def test_score_task_rejects_fractional_class_predictions():
    with pytest.raises(ValueError, match="'sst'.*class numbers"):
        score_task("sst", [0.5, 1.0], [0, 1])


def test_score_task_rejects_length_mismatch():
    with pytest.raises(ValueError, match="3 predictions for 2 gold labels"):
        score_task("sst", [0, 1, 2], [0, 1])


def test_classification_labels_are_the_argmax_class():
    assert predictions_to_labels([[0.1, 0.7, 0.2], [0.6, 0.3, 0.1]], "classification") == [1, 0]


def test_binary_label_is_one_only_above_probability_one_half():
    assert predictions_to_labels([0.2, 0.5, 0.5000001, 0.9], "binary") == [0, 0, 1, 1]


def test_regression_labels_are_the_scores_as_python_floats():
    labels = predictions_to_labels(np.array([1.25, 4.5], dtype=np.float32), "regression")
    assert labels == [1.25, 4.5] and all(type(label) is float for label in labels)


def test_regression_labels_are_clipped_to_the_label_range_where_given():
    assert predictions_to_labels(np.array([-0.4, 2.5, 5.2]), "regression", (0.0, 5.0)) == [0.0, 2.5, 5.0]


def test_metrics_json_writes_an_undefined_pearson_as_null(tmp_path):
    import json

    from hf_minbert.evaluation import write_metrics_json

    write_metrics_json(tmp_path / "metrics.json", {"sts": {"pearson": float("nan"), "spearman": 0.5}})
    text = (tmp_path / "metrics.json").read_text()
    assert "NaN" not in text
    assert json.loads(text) == {"sts": {"pearson": None, "spearman": 0.5}}
