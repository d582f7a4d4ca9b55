"""Ensembles: the averaging model class, greedy member selection, and `minbert ensemble` end to end."""
import json
import math
import re
import shutil
from pathlib import Path

import datasets
import numpy as np
import pytest
import torch
import yaml
from transformers import AutoModel, AutoModelForSequenceClassification, AutoTokenizer, BertTokenizer, pipeline

from hf_minbert import MinBertEnsembleConfig, MinBertEnsembleForMultitask, MinBertForMultitask
from hf_minbert.cli import main as minbert
from hf_minbert.ensemble import (
    average_all,
    average_scores,
    error_correlation,
    greedy_selection,
    held_out_scores,
    load_multitask_model,
)
from hf_minbert.metrics import leaderboard_score
from hf_minbert.modeling_minbert_ensemble import average_predictions, split_cross_encoded
from tests.helpers import random_batch, run_isolated, scoring_tiny_model, tiny_model, tiny_task_rows, write_task_files

WEIGHTS = {"sst": [1, 1], "para": [1, 0], "sts": [1, 3]}
WEIGHTS_SST_PARA = {"sst": [1, 1], "para": [1, 1]}


@pytest.fixture(scope="module")
def tokenizer(minilm_path):
    return AutoTokenizer.from_pretrained(minilm_path)


@pytest.fixture(scope="module")
def members():
    return [tiny_model(seed=0).eval(), tiny_model(seed=1).eval()]


@pytest.fixture(scope="module")
def ensemble(members):
    return MinBertEnsembleForMultitask.from_members(members, WEIGHTS).eval()


@pytest.fixture(scope="module")
def batch(members):
    return random_batch(members[0].config)


def _logits(model, batch, task):
    with torch.no_grad():
        return model(**batch, task=task).logits


# ------------------------------------------------------------------------------------------------------
# The model: averaged predictions behind ordinary logits
# ------------------------------------------------------------------------------------------------------


def test_softmax_of_classification_logits_is_the_average_of_member_probabilities(ensemble, members, batch):
    expected = sum(_logits(m, batch, "sst").softmax(-1) for m in members) / 2
    torch.testing.assert_close(_logits(ensemble, batch, "sst").softmax(-1), expected, rtol=0, atol=1e-6)


def test_sigmoid_of_binary_logit_is_the_weighted_average_of_member_probabilities(members, batch):
    ensemble = MinBertEnsembleForMultitask.from_members(members, {"para": [1, 3]}).eval()
    expected = (_logits(members[0], batch, "para").sigmoid() + 3 * _logits(members[1], batch, "para").sigmoid()) / 4
    torch.testing.assert_close(_logits(ensemble, batch, "para").sigmoid(), expected, rtol=0, atol=1e-6)


def test_regression_logits_are_the_weighted_average_score(ensemble, members, batch):
    expected = (_logits(members[0], batch, "sts") + 3 * _logits(members[1], batch, "sts")) / 4
    torch.testing.assert_close(_logits(ensemble, batch, "sts"), expected, rtol=0, atol=1e-6)


def test_stock_text_classification_answers_a_regression_default_ensembles_score_as_it_is(members, tokenizer):
    ensemble = MinBertEnsembleForMultitask.from_members(members, {"sts": [1, 1]}).eval()
    with torch.no_grad():
        score = ensemble(**tokenizer("a fine film", return_tensors="pt")).logits.item()
    answer = pipeline("text-classification", model=ensemble, tokenizer=tokenizer)("a fine film")
    assert ensemble.config.problem_type == "regression"
    assert answer == [{"label": "sts", "score": pytest.approx(score, abs=1e-5)}]


def test_a_task_runs_only_its_weighted_members(ensemble, members, batch):
    torch.testing.assert_close(_logits(ensemble, batch, "para"), _logits(members[0], batch, "para"), rtol=0, atol=1e-6)


def test_confident_members_average_to_finite_logits():
    logits = average_predictions("binary", [0.5, 0.5], [torch.tensor([200.0, -200.0]), torch.tensor([200.0, 200.0])])
    assert torch.isfinite(logits).all()
    torch.testing.assert_close(logits.sigmoid(), torch.tensor([1.0, 0.5]))


def test_labels_give_the_loss_of_the_averaged_prediction(ensemble, batch):
    labels = torch.tensor([0.5, 4.0, 2.5])
    output = ensemble(**batch, task="sts", labels=labels)
    torch.testing.assert_close(output.loss, torch.nn.functional.mse_loss(output.logits, labels))


def test_weights_are_normalized_per_task(ensemble):
    assert ensemble.config.task_weights == {"sst": [0.5, 0.5], "para": [1.0, 0.0], "sts": [0.25, 0.75]}


def test_a_member_without_the_task_head_is_refused(members):
    sst_only = tiny_model(tasks={"sst": MinBertForMultitask.config_class().tasks["sst"]})
    with pytest.raises(ValueError, match="task 'para': member 1 has no head for it"):
        MinBertEnsembleConfig(members=[members[0].config, sst_only.config], task_weights={"para": [1, 1]})


def test_members_that_disagree_on_a_tasks_meaning_are_refused(members):
    tasks = {name: dict(spec) for name, spec in members[0].config.tasks.items()}
    tasks["sts"]["label_range"] = [0.0, 1.0]
    other = tiny_model(tasks=tasks)
    with pytest.raises(ValueError, match="members disagree on label_range"):
        MinBertEnsembleConfig(members=[members[0].config, other.config], task_weights={"sts": [1, 1]})


def test_a_member_that_takes_part_in_no_task_is_refused(members):
    with pytest.raises(ValueError, match=r"member\(s\) \[1\] take part in no task"):
        MinBertEnsembleConfig(members=[m.config for m in members], task_weights={"sst": [1, 0]})


def test_a_default_task_the_ensemble_does_not_answer_is_refused(members):
    with pytest.raises(ValueError, match=r"default_task='sts' is not one of this model's tasks: sst, para"):
        MinBertEnsembleConfig(members=[m.config for m in members], task_weights=WEIGHTS_SST_PARA, default_task="sts")


def test_without_a_default_task_the_ensemble_answers_sst(members):
    config = MinBertEnsembleConfig(members=[m.config for m in members], task_weights=WEIGHTS_SST_PARA)
    assert config.default_task == "sst"


# ------------------------------------------------------------------------------------------------------
# Mixed pair encodings: a bi-encoder member inside an ensemble that reads cross-encoded pairs
# ------------------------------------------------------------------------------------------------------


def test_splitting_a_cross_encoded_pair_gives_each_sentence_as_tokenized_alone(tokenizer):
    firsts, seconds = ["a fine film", "the dog sat on the mat"], ["is it good?", "a cat"]
    joint = tokenizer(firsts, seconds, padding=True, return_tensors="pt")
    (ids_a, mask_a), (ids_b, mask_b) = split_cross_encoded(joint["input_ids"], joint["attention_mask"], joint["token_type_ids"])
    alone_a = tokenizer(firsts, padding=True, return_tensors="pt")
    alone_b = tokenizer(seconds, padding=True, return_tensors="pt")
    assert torch.equal(ids_a, alone_a["input_ids"]) and torch.equal(mask_a, alone_a["attention_mask"])
    assert torch.equal(ids_b, alone_b["input_ids"]) and torch.equal(mask_b, alone_b["attention_mask"])


def test_a_bi_encoder_member_scores_the_sentences_of_a_cross_encoded_batch(members, tokenizer):
    tasks = {name: dict(spec) for name, spec in members[0].config.tasks.items()}
    tasks["sts"]["pair_encoding"] = "bi"
    bi = tiny_model(tasks=tasks, seed=2).eval()
    ensemble = MinBertEnsembleForMultitask.from_members([members[0], bi], {"sts": [1, 1]}).eval()
    assert ensemble.config.tasks["sts"]["pair_encoding"] == "cross"
    firsts, seconds = ["a fine film", "the dog sat on the mat"], ["is it good?", "a cat"]
    joint = dict(tokenizer(firsts, seconds, padding=True, return_tensors="pt"))
    a, b = tokenizer(firsts, padding=True, return_tensors="pt"), tokenizer(seconds, padding=True, return_tensors="pt")
    sides = {"input_ids_a": a["input_ids"], "attention_mask_a": a["attention_mask"],
             "input_ids_b": b["input_ids"], "attention_mask_b": b["attention_mask"]}
    expected = (_logits(members[0], joint, "sts") + _logits(bi, sides, "sts")) / 2
    torch.testing.assert_close(_logits(ensemble, joint, "sts"), expected, rtol=0, atol=1e-6)


# ------------------------------------------------------------------------------------------------------
# Saving and loading as one folder
# ------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def saved(ensemble, tokenizer, tmp_path_factory):
    folder = tmp_path_factory.mktemp("ensemble")
    ensemble.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def test_save_writes_one_folder_with_auto_map_and_the_code_it_imports(saved):
    config = json.loads((saved / "config.json").read_text())
    assert config["auto_map"]["AutoModel"] == "modeling_minbert_ensemble.MinBertEnsembleForMultitask"
    assert config["auto_map"]["AutoConfig"] == "modeling_minbert_ensemble.MinBertEnsembleConfig"
    names = {p.name for p in saved.iterdir()}
    assert {"model.safetensors", "modeling_minbert_ensemble.py", "modeling_minbert.py", "configuration_minbert.py"} <= names


def test_automodel_and_the_multitask_loader_reload_the_same_ensemble(saved, ensemble, batch):
    for model in (AutoModel.from_pretrained(saved), load_multitask_model(saved)):
        assert isinstance(model, MinBertEnsembleForMultitask)
        for task in ("sst", "para", "sts"):
            torch.testing.assert_close(_logits(model.eval(), batch, task), _logits(ensemble, batch, task), rtol=0, atol=1e-6)


def test_a_default_task_passed_to_from_pretrained_brings_its_labels(saved):
    model = AutoModel.from_pretrained(saved, default_task="sts")
    assert (model.config.id2label, model.config.problem_type) == ({0: "sts"}, "regression")


def test_num_labels_that_differ_from_the_ensembles_default_head_are_refused(saved):
    with pytest.raises(ValueError, match=r"num_labels=2 does not fit this checkpoint: its default head 'sst' answers 5"):
        AutoModelForSequenceClassification.from_pretrained(saved, num_labels=2)


def test_num_labels_that_agree_with_the_ensembles_default_head_load(saved):
    assert AutoModelForSequenceClassification.from_pretrained(saved, num_labels=5).config.num_labels == 5


@pytest.mark.parametrize("kernel", ["eager", "sdpa"])
def test_attn_implementation_chooses_every_members_attention(saved, kernel):
    model = AutoModel.from_pretrained(saved, attn_implementation=kernel)
    assert [member.config._attn_implementation for member in model.members] == [kernel, kernel]


def test_stock_text_classification_pipeline_answers_with_the_averaged_sst_probabilities(saved, members, tokenizer):
    result = pipeline("text-classification", model=str(saved), tokenizer=tokenizer, trust_remote_code=True)(
        "a fine film", top_k=None)
    inputs = tokenizer("a fine film", return_tensors="pt")
    averaged = sum(_logits(m, inputs, "sst").softmax(-1)[0] for m in members) / 2
    labels = members[0].config.tasks["sst"]["labels"]
    assert {r["label"]: r["score"] for r in result} == {
        label: pytest.approx(float(p), abs=1e-6) for label, p in zip(labels, averaged)
    }


PAIR = ("a gorgeous , witty film", "a fine and clever movie")


def _pair_logits(model, tokenizer, task):
    return _logits(model, tokenizer(*PAIR, return_tensors="pt"), task)[0]


def test_saved_ensemble_names_the_custom_pipelines_and_carries_their_code(saved):
    config = json.loads((saved / "config.json").read_text())
    assert set(config["custom_pipelines"]) == {"paraphrase-detection", "sentence-similarity", "minbert-multitask",
                                               "text-classification", "sentiment-analysis", "feature-extraction"}
    assert (saved / "pipelines.py").is_file()


def test_paraphrase_pipeline_answers_with_the_ensembles_probability(ensemble, members, tokenizer):
    answer = pipeline("paraphrase-detection", model=ensemble, tokenizer=tokenizer)(PAIR)
    probability = float(torch.sigmoid(_pair_logits(members[0], tokenizer, "para")))  # para weights: [1, 0]
    expected = ("paraphrase", probability) if probability > 0.5 else ("not paraphrase", 1 - probability)
    assert (answer["label"], answer["score"]) == (expected[0], pytest.approx(expected[1], abs=1e-6))


def test_similarity_pipeline_answers_with_the_weighted_average_score(ensemble, members, tokenizer):
    answer = pipeline("sentence-similarity", model=ensemble, tokenizer=tokenizer)(PAIR)
    scores = [float(_pair_logits(m, tokenizer, "sts").reshape(())) for m in members]
    assert answer == {"score": pytest.approx(min(max((scores[0] + 3 * scores[1]) / 4, 0.0), 5.0), abs=1e-6)}


LONG_PAIR = ("a gorgeous , witty , seductive movie that keeps its wit to the end", "a fine film")


def _mixed_sts_ensemble():
    """STS bi-encoded by one member and cross-encoded by the other."""
    bi_tasks = {**tiny_model().config.tasks, "sts": {"kind": "regression", "label_range": [0.0, 5.0],
                                                     "pair_encoding": "bi"}}
    members = [tiny_model(seed=0, tasks=bi_tasks).eval(), tiny_model(seed=1).eval()]
    return members, MinBertEnsembleForMultitask.from_members(members, WEIGHTS).eval()


def test_a_long_pair_cut_to_max_length_is_answered_with_the_average_of_the_members_own_answers(tokenizer):
    members, ensemble = _mixed_sts_ensemble()

    def ask(model):
        return pipeline("sentence-similarity", model=model, tokenizer=tokenizer)(LONG_PAIR, max_length=10)["score"]

    assert ask(ensemble) == pytest.approx((ask(members[0]) + 3 * ask(members[1])) / 4, abs=1e-6)


def test_an_ensembles_dev_scores_are_those_of_its_members_own_predictions_cut_to_max_length(tokenizer):
    from hf_minbert.evaluation import predict_task

    members, ensemble = _mixed_sts_ensemble()
    rows = datasets.Dataset.from_dict({"id": ["a", "b"], "sentence1": [LONG_PAIR[0], "a dog"],
                                       "sentence2": [LONG_PAIR[1], "the dog runs"], "similarity": [3.0, 4.0]})
    scores = [predict_task(model, tokenizer, rows, "sts", max_length=10, progress=False).scores
              for model in (ensemble, *members)]
    np.testing.assert_allclose(scores[0], (scores[1] + 3 * scores[2]) / 4, atol=1e-6)


def test_multitask_pipeline_answers_every_head_of_the_ensemble_and_sst_per_sentence(ensemble, members, tokenizer):
    answer = pipeline("minbert-multitask", model=ensemble, tokenizer=tokenizer)([PAIR, PAIR[1]], batch_size=2)
    assert set(answer[0]) == {"sst", "para", "sts"} and set(answer[1]) == {"sst"}
    averaged = sum(_logits(m, tokenizer(PAIR[1], return_tensors="pt"), "sst").softmax(-1)[0] for m in members) / 2
    assert answer[0]["sst"][1]["score"] == pytest.approx(float(averaged.max()), abs=1e-6)
    assert answer[1]["sst"] == [answer[0]["sst"][1]]


# ------------------------------------------------------------------------------------------------------
# Greedy forward selection
# ------------------------------------------------------------------------------------------------------

GOLD = [1.0, 1.0, 0.0, 0.0]
GOOD_A = [0.9, 0.4, 0.1, 0.1]  # 3/4 right
GOOD_B = [0.4, 0.9, 0.1, 0.1]  # 3/4 right; averaged with A: 4/4
NEUTRAL = [0.9, 0.45, 0.6, 0.1]  # 2/4 alone; A + B + it still 4/4
HARMFUL = [0.1, 0.1, 0.9, 0.9]  # 0/4; A + B + it: 2/4


def test_selection_starts_from_the_best_single_model_and_adds_the_one_that_helps():
    selection = greedy_selection("para", "binary", [HARMFUL, GOOD_A, GOOD_B], GOLD, names=["h", "a", "b"])
    assert [name for name, _ in selection.steps] == ["a", "b"]
    assert selection.score == 1.0 and selection.counts == [0, 1, 1]


def test_selection_without_replacement_adds_a_model_that_leaves_the_score_unchanged():
    selection = greedy_selection("para", "binary", [GOOD_A, GOOD_B, NEUTRAL], GOLD)
    assert selection.counts == [1, 1, 1] and selection.score == 1.0


def test_selection_with_replacement_stops_at_a_tie():
    selection = greedy_selection("para", "binary", [GOOD_A, GOOD_B, NEUTRAL], GOLD, with_replacement=True)
    assert selection.counts == [1, 1, 0]


def test_selection_with_replacement_can_pick_a_model_twice():
    gold = [1.0, 1.0, 1.0, 0.0, 0.0, 0.0]
    strong = [0.45, 0.3, 0.7, 0.3, 0.55, 0.3]  # 3/6; + weak: 4/6; twice + weak: 5/6
    weak = [0.9, 0.1, 0.3, 0.7, 0.3, 0.7]
    assert greedy_selection("para", "binary", [strong, weak], gold, with_replacement=True).counts == [2, 1]
    assert greedy_selection("para", "binary", [strong, weak], gold).counts == [1, 1]


def test_max_members_caps_the_number_of_picks():
    selection = greedy_selection("para", "binary", [GOOD_A, GOOD_B, NEUTRAL], GOLD, max_members=2)
    assert sum(selection.counts) == 2


def test_selection_scores_similarity_by_pearson_correlation():
    gold = [0.0, 1.0, 2.0, 3.0, 4.0]
    noisy_high = [0.0, 1.0, 2.0, 3.0, 9.0]
    noisy_low = [0.0, 1.0, 2.0, 3.0, 0.5]
    selection = greedy_selection("sts", "regression", [noisy_high, noisy_low], gold)
    assert selection.counts == [1, 1]
    assert selection.score == pytest.approx(np.corrcoef(average_scores([noisy_high, noisy_low]), gold)[0, 1])


@pytest.mark.slow
def test_held_out_scores_remove_the_luck_of_picking_on_the_scored_rows():
    # Twenty coin-flipping "models": on the rows that pick them they look better than chance; on unseen rows
    # they are coins again.
    rng = np.random.default_rng(0)
    gold = rng.integers(0, 2, 400)
    noise = [rng.random(400) for _ in range(20)]
    in_sample = greedy_selection("para", "binary", noise, gold).score
    ensemble, single = held_out_scores("para", "binary", noise, gold)
    assert in_sample - ensemble > 0.04
    assert abs(ensemble - 0.5) < 0.05 and abs(single - 0.5) < 0.05


def test_held_out_scores_of_a_candidate_that_is_always_right_are_perfect():
    gold = np.array([0, 1] * 10)
    assert held_out_scores("para", "binary", [gold * 0.8 + 0.1, np.full(20, 0.7)], gold, folds=4) == (1.0, 1.0)


def test_held_out_scores_need_two_folds_with_rows_to_spare():
    with pytest.raises(ValueError, match="at least 2 folds"):
        held_out_scores("para", "binary", [GOOD_A], GOLD, folds=1)
    with pytest.raises(ValueError, match="too few for 3 folds"):
        held_out_scores("para", "binary", [GOOD_A], GOLD, folds=3)


def test_predictions_of_the_wrong_length_are_refused():
    with pytest.raises(ValueError, match="3 dev predictions for 4 dev rows"):
        greedy_selection("para", "binary", [GOOD_A[:3]], GOLD, names=["short"])
    with pytest.raises(ValueError, match="3 dev predictions for 4 dev rows"):
        average_all("para", "binary", [GOOD_A, GOOD_A[:3]], GOLD, names=["full", "short"])


def test_averaging_all_keeps_a_harmful_model_that_greedy_selection_leaves_out():
    selection = average_all("para", "binary", [GOOD_A, GOOD_B, HARMFUL], GOLD, names=["a", "b", "h"])
    assert selection.counts == [1, 1, 1] and selection.weights == pytest.approx([1 / 3] * 3)
    assert selection.steps == [("a", 0.75), ("b", 1.0), ("h", 0.5)]  # the running average as each joins


@pytest.mark.slow
def test_held_out_scores_of_averaging_all_do_not_improve_on_noise():
    # Averaging coins chooses nothing on the dev rows, so it cannot look better than chance there either.
    rng = np.random.default_rng(0)
    gold = rng.integers(0, 2, 400)
    noise = [rng.random(400) for _ in range(20)]
    in_sample = average_all("para", "binary", noise, gold).score
    ensemble, _ = held_out_scores("para", "binary", noise, gold, method="all")
    assert abs(in_sample - 0.5) < 0.05 and abs(ensemble - 0.5) < 0.05


def test_models_wrong_on_the_same_rows_have_error_correlation_one():
    sure, unsure = [0.9, 0.9, 0.1, 0.9], [0.6, 0.7, 0.4, 0.8]  # both wrong on the last row only
    assert error_correlation("para", "binary", [sure, unsure], GOLD, names=["a", "b"]) == {
        "pairs": {"a ~ b": pytest.approx(1.0)}, "mean": pytest.approx(1.0)}


def test_similarity_errors_are_those_of_the_clipped_predictions_as_scored():
    from hf_minbert.ensemble import member_errors

    assert member_errors("regression", [-1.0, 2.5, 5.5], [0.0, 2.0, 5.0], (0.0, 5.0)).tolist() == [0.0, 0.5, 0.0]


def test_error_correlation_of_labels_is_the_correlation_of_wrong_rows():
    gold = [0, 1, 2, 0, 1, 2]
    one_hot = np.eye(3)
    a = one_hot[[1, 2, 2, 0, 1, 2]]  # wrong on rows 0, 1
    b = one_hot[[1, 1, 0, 0, 1, 2]]  # wrong on rows 0, 2
    # errors (1,1,0,0,0,0) and (1,0,1,0,0,0): covariance 1/6 − 1/9, variances 2/9: r = 1/4
    assert error_correlation("sst", "classification", [a, b], gold)["mean"] == pytest.approx(0.25)


def test_error_correlation_of_similarity_is_the_correlation_of_residuals():
    gold = np.array([2.0, 2.5, 3.0, 2.5])  # every prediction below within 0-5, where no clipping changes it
    alike = [gold + [1, -1, 1, -1], gold + [2, -2, 2, -2]]
    unlike = gold + [1, 1, -1, -1]
    assert error_correlation("sts", "regression", alike, gold)["mean"] == pytest.approx(1.0)
    assert error_correlation("sts", "regression", [alike[0], unlike], gold)["mean"] == pytest.approx(0.0)


def test_a_model_right_everywhere_has_no_error_correlation_and_the_mean_leaves_it_out():
    perfect = [0.9, 0.9, 0.1, 0.1]
    result = error_correlation("para", "binary", [GOOD_A, GOOD_B, perfect], GOLD, names=["a", "b", "p"])
    assert result["pairs"]["a ~ p"] is None and result["pairs"]["b ~ p"] is None
    assert result["mean"] == pytest.approx(result["pairs"]["a ~ b"])
    assert error_correlation("para", "binary", [perfect, perfect], GOLD)["mean"] is None


# ------------------------------------------------------------------------------------------------------
# minbert ensemble, end to end
# ------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def candidate_dirs(tmp_path_factory, tokenizer):
    folders = []
    for seed in range(3):
        folder = tmp_path_factory.mktemp(f"candidate{seed}")
        scoring_tiny_model(seed=seed).save_pretrained(folder)
        tokenizer.save_pretrained(folder)
        folders.append(str(folder))
    return folders


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("data")
    write_task_files(folder, tiny_task_rows(n=16, seed=3), split="dev")
    return folder


@pytest.fixture(scope="module")
def command_ensemble(candidate_dirs, data_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("command") / "ensemble"
    assert minbert(["ensemble", "--models", *candidate_dirs, "--output_dir", str(out), "--data_dir", str(data_dir),
                    "--batch_size", "4", "--no_progress"]) == 0
    return out


@pytest.mark.slow
def test_ensemble_command_saves_a_folder_that_evaluate_scores_as_the_selection_reported(
    command_ensemble, data_dir, tmp_path
):
    out, scored = command_ensemble, tmp_path / "scored"
    selection = json.loads((out / "ensemble_selection.json").read_text())
    assert set(selection["tasks"]) == {"sst", "para", "sts"}
    for record in selection["tasks"].values():
        assert record["dev_score"] >= max(record["single_scores"].values())
    assert minbert(["evaluate", "--model", str(out), "--data_dir", str(data_dir), "--output_dir", str(scored),
                    "--no_progress"]) == 0
    reported, evaluated = json.loads((out / "metrics.json").read_text()), json.loads((scored / "metrics.json").read_text())
    for task in ("sst", "para", "sts"):  # the model averages in float32, selection in float64
        assert evaluated[task] == pytest.approx(reported[task], abs=1e-5)
    assert selection["tasks"]["sst"]["dev_score"] == pytest.approx(evaluated["sst"]["accuracy"])


def test_ensemble_command_records_the_folder_its_models_are_relative_to(command_ensemble):
    # --models as given, and the folder they were given in: `minbert distill` finds them from anywhere.
    selection = json.loads((command_ensemble / "ensemble_selection.json").read_text())
    assert selection["working_dir"] == str(Path.cwd())


def test_ensemble_command_records_how_selection_scores_on_dev_rows_that_did_not_choose(command_ensemble):
    selection = json.loads((command_ensemble / "ensemble_selection.json").read_text())
    held_out = {task: record["held_out"] for task, record in selection["tasks"].items()}
    assert all(record["folds"] == 2 and set(record) == {"ensemble", "best_single", "folds"} for record in held_out.values())
    parts = [held_out[task]["ensemble"] for task in ("sst", "para", "sts")]
    assert selection["held_out_overall"]["ensemble"] == pytest.approx(leaderboard_score(*parts))
    card = (command_ensemble / "README.md").read_text()
    assert f"sst {held_out['sst']['ensemble']:.4f} against {held_out['sst']['best_single']:.4f}" in card


def test_ensemble_command_records_and_reports_how_alike_each_pair_of_candidates_errs(command_ensemble):
    selection = json.loads((command_ensemble / "ensemble_selection.json").read_text())
    for record in selection["tasks"].values():
        pairs = record["error_correlation"]["pairs"]
        assert len(pairs) == 3 and all(-1 <= r <= 1 for r in pairs.values())  # three candidates
        assert record["error_correlation"]["mean"] == pytest.approx(np.mean(list(pairs.values())))
    card = (command_ensemble / "README.md").read_text()
    assert f"sst {selection['tasks']['sst']['error_correlation']['mean']:.2f}" in card.split("How alike")[1]


@pytest.mark.slow
def test_ensemble_command_on_too_few_dev_rows_to_cross_fit_still_saves_the_ensemble(candidate_dirs, tmp_path):
    (tmp_path / "data").mkdir()
    write_task_files(tmp_path / "data", tiny_task_rows(n=3, seed=4), split="dev")
    out = tmp_path / "out"
    assert minbert(["ensemble", "--models", *candidate_dirs, "--output_dir", str(out), "--data_dir",
                    str(tmp_path / "data"), "--no_progress"]) == 0
    selection = json.loads((out / "ensemble_selection.json").read_text())
    assert (out / "model.safetensors").is_file() and "held_out_overall" not in selection
    assert not any("held_out" in record for record in selection["tasks"].values())


def test_ensemble_command_refuses_fewer_than_two_held_out_folds(candidate_dirs, data_dir, tmp_path, capsys):
    status = minbert(["ensemble", "--models", *candidate_dirs, "--output_dir", str(tmp_path / "out"),
                      "--data_dir", str(data_dir), "--held_out_folds", "1"])
    assert status == 2 and "--held_out_folds must be at least 2" in capsys.readouterr().err


@pytest.mark.slow
def test_ensemble_command_with_selection_all_averages_every_model_and_says_the_dev_score_is_fair(
    candidate_dirs, data_dir, tmp_path
):
    out = tmp_path / "average"
    assert minbert(["ensemble", "--selection", "all", "--models", *candidate_dirs, "--output_dir", str(out),
                    "--data_dir", str(data_dir), "--no_progress"]) == 0
    selection = json.loads((out / "ensemble_selection.json").read_text())
    assert selection["selection"] == "all" and selection["members"] == candidate_dirs
    for record in selection["tasks"].values():
        assert record["members"] == pytest.approx({path: 1 / 3 for path in candidate_dirs})
    assert MinBertEnsembleForMultitask.from_pretrained(out).config.task_weights["sst"] == pytest.approx([1 / 3] * 3)
    card = (out / "README.md").read_text()
    assert "every member weighted equally" in card and "optimistic" not in card and "as fair as a single" in card
    assert "(the best single model chosen on the other parts" in card


@pytest.mark.slow
def test_ensemble_command_records_and_states_the_max_length_its_scores_were_read_at(candidate_dirs, data_dir, tmp_path):
    out = tmp_path / "short"
    assert minbert(["ensemble", "--selection", "all", "--models", *candidate_dirs, "--output_dir", str(out),
                    "--data_dir", str(data_dir), "--max_length", "8", "--no_progress"]) == 0
    assert json.loads((out / "ensemble_selection.json").read_text())["max_length"] == 8
    assert "scored on inputs cut to 8 tokens (`minbert ensemble --max_length`)" in (out / "README.md").read_text()


def test_ensemble_command_refuses_greedy_options_with_selection_all(candidate_dirs, data_dir, tmp_path, capsys):
    status = minbert(["ensemble", "--selection", "all", "--max_members", "2", "--models", *candidate_dirs,
                      "--output_dir", str(tmp_path / "out"), "--data_dir", str(data_dir)])
    assert status == 2 and "apply to --selection greedy" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_ensemble_command_writes_a_card_with_the_metrics_and_each_members_weights_and_dev_scores(command_ensemble):
    card = (command_ensemble / "README.md").read_text()
    selection = json.loads((command_ensemble / "ensemble_selection.json").read_text())
    metrics = json.loads((command_ensemble / "metrics.json").read_text())
    assert "tags:" in card and "- ensemble" in card and "## Members" in card and "optimistic" in card
    assert f"{metrics['sst']['accuracy']:.4f}" in card
    for member in selection["members"]:
        row = next(line for line in card.splitlines() if line.startswith(f"| `{Path(member).name}` |"))
        sst = selection["tasks"]["sst"]
        if member in sst["members"]:
            assert f"{sst['members'][member]:.2f} ({sst['single_scores'][member]:.3f})" in row


def _dev_sets_line(card):
    return " ".join(card.split("Dev sets: ", 1)[1].split("\n\n", 1)[0].split())


def test_ensemble_command_records_each_dev_file_it_scored_with_its_rows_and_sha256(command_ensemble, data_dir):
    from huggingface_hub.utils.sha import sha_fileobj

    dev_data = json.loads((command_ensemble / "metrics.json").read_text())["dev_data"]
    for task, name in (("sst", "ids-sst-dev.csv"), ("para", "quora-dev.csv"), ("sts", "sts-dev.csv")):
        with open(data_dir / name, "rb") as file:
            assert dev_data[task] == {"file": name, "rows": 16, "sha256": sha_fileobj(file).hex()}


def test_ensemble_card_names_the_dev_files_it_was_scored_on(command_ensemble):
    card = (command_ensemble / "README.md").read_text()
    assert _dev_sets_line(card).startswith("sst: `ids-sst-dev.csv` (16 rows scored), para: `quora-dev.csv` (16 rows "
                                           "scored), and sts: `sts-dev.csv` (16 rows scored).")
    datasets_named = {entry["dataset"]["name"] for entry in yaml.safe_load(card.split("---")[1])["model-index"][0]["results"]}
    assert "sst dev set (ids-sst-dev.csv)" in datasets_named and not any("not recorded" in name for name in datasets_named)


def test_ensemble_card_scored_on_the_course_dev_files_states_the_cs224n_splits(command_ensemble, tmp_path):
    from model_cards import regenerate_model_card
    from model_cards.card import COURSE_FILES

    folder = shutil.copytree(command_ensemble, tmp_path / "ensemble")
    metrics = json.loads((folder / "metrics.json").read_text())
    metrics["dev_data"] = {task: {"file": record["file"], "rows": COURSE_FILES[task].dev_rows,
                                  "sha256": COURSE_FILES[task].dev_sha256} for task, record in metrics["dev_data"].items()}
    (folder / "metrics.json").write_text(json.dumps(metrics))
    card = str(regenerate_model_card(folder))
    assert _dev_sets_line(card).startswith("the CS224N splits — SST dev (1,101 sentences), STS dev (863 pairs)")
    types = {entry["dataset"]["type"] for entry in yaml.safe_load(card.split("---")[1])["model-index"][0]["results"]}
    assert {"SetFit/sst5", "cs224n-sts"} <= types  # STS's dev pairs are no split of STS-B on the Hub


@pytest.mark.slow
def test_ensemble_card_usage_snippet_runs_where_hf_minbert_is_not_installed(command_ensemble):
    snippet = re.search(r"```python\n(.*?)```", (command_ensemble / "README.md").read_text(), flags=re.S).group(1)
    sentiment, paraphrase, similarity, multitask, *logits = run_isolated(snippet, cwd=command_ensemble).strip().splitlines()
    assert sentiment.startswith("[{'label': ") and paraphrase.startswith("{'label': ")
    assert similarity.startswith("{'score': ") and multitask.startswith("{'sst': [{'label': ")
    assert logits[0].startswith("tensor([[")


def test_minbert_push_sends_an_ensemble_folder_with_its_card_and_pipeline_code(command_ensemble, hub_calls, token):
    assert minbert(["push", str(command_ensemble), "--repo_id", "someone/minbert-ensemble"]) == 0
    pushed = {op.path_in_repo for op in hub_calls[1][4]}
    assert {"README.md", "pipelines.py", "modeling_minbert_ensemble.py", "modeling_minbert.py", "metrics.json",
            "ensemble_selection.json"} <= pushed
    assert 'model_id = "someone/minbert-ensemble"' in (command_ensemble / "README.md").read_text()


def test_ensemble_command_refuses_models_with_different_tokenizers(candidate_dirs, data_dir, tmp_path, capsys):
    other = tmp_path / "other"
    tiny_model(seed=5).save_pretrained(other)
    BertTokenizer(vocab={t: i for i, t in enumerate(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "film"])}).save_pretrained(other)
    status = minbert(["ensemble", "--models", candidate_dirs[0], str(other), "--output_dir", str(tmp_path / "out"),
                      "--data_dir", str(data_dir), "--no_progress"])
    assert status == 2
    assert "tokenizes differently" in capsys.readouterr().err


@pytest.mark.slow
def test_ensemble_command_refuses_an_ensemble_as_a_candidate(candidate_dirs, data_dir, saved, tmp_path, capsys):
    status = minbert(["ensemble", "--models", candidate_dirs[0], str(saved), "--output_dir", str(tmp_path / "out"),
                      "--data_dir", str(data_dir), "--no_progress"])
    assert status == 2
    assert "is already an ensemble" in capsys.readouterr().err


@pytest.fixture
def predictions_made(monkeypatch):
    """The calls of `minbert ensemble`'s predictor: a check made before predicting leaves it empty."""
    from hf_minbert.commands import ensemble as ensemble_command

    calls = []
    monkeypatch.setattr(ensemble_command, "predict_task", lambda *args, **kwargs: calls.append(args))
    return calls


def test_ensemble_command_refuses_candidates_whose_heads_differ_before_predicting(
    candidate_dirs, data_dir, tokenizer, tmp_path, capsys, predictions_made
):
    from hf_minbert import MinBertConfig

    tasks = MinBertConfig().tasks
    tasks["sst"] = {**tasks["sst"], "labels": ["negative", "neutral", "positive"]}
    three_class = tmp_path / "three-class"
    tiny_model(tasks=tasks, seed=6).save_pretrained(three_class)
    tokenizer.save_pretrained(three_class)
    capsys.readouterr()  # the save's progress bar
    status = minbert(["ensemble", "--models", candidate_dirs[0], str(three_class), "--output_dir", str(tmp_path / "out"),
                      "--data_dir", str(data_dir), "--no_progress"])
    assert status == 2 and predictions_made == []
    assert capsys.readouterr().err.strip() == (
        f"minbert ensemble: the --models' sst heads differ, so their sst answers cannot be averaged: "
        f"{candidate_dirs[0]}: 5-class classification; {three_class}: 3-class classification")


def test_ensemble_command_refuses_candidates_whose_word_tables_differ_before_predicting(
    candidate_dirs, data_dir, tokenizer, tmp_path, capsys, predictions_made
):
    wider = tmp_path / "wider"
    model = tiny_model(seed=7)
    model.resize_token_embeddings(30528)  # the same tokenizer, a word table padded to a multiple of 8
    model.save_pretrained(wider)
    tokenizer.save_pretrained(wider)
    capsys.readouterr()
    status = minbert(["ensemble", "--models", candidate_dirs[0], str(wider), "--output_dir", str(tmp_path / "out"),
                      "--data_dir", str(data_dir), "--no_progress"])
    assert status == 2 and predictions_made == []
    assert capsys.readouterr().err.strip() == (
        f"minbert ensemble: the --models' word tables differ in size, so they cannot read the same input ids: "
        f"{candidate_dirs[0]}: 30522; {wider}: 30528")


def test_ensemble_command_refuses_candidates_saved_in_different_precisions_before_predicting(
    candidate_dirs, data_dir, tokenizer, tmp_path, capsys, predictions_made
):
    bf16 = tmp_path / "bf16"
    MinBertForMultitask.from_pretrained(candidate_dirs[1]).to(torch.bfloat16).save_pretrained(bf16)
    tokenizer.save_pretrained(bf16)
    capsys.readouterr()
    status = minbert(["ensemble", "--models", str(bf16), candidate_dirs[0], "--output_dir", str(tmp_path / "out"),
                      "--data_dir", str(data_dir), "--no_progress"])
    assert status == 2 and predictions_made == []
    assert capsys.readouterr().err.strip() == (
        f"minbert ensemble: the --models are saved in different precisions, and their ensemble would hold them all in "
        f"the first's (each scored in its own): {bf16}: bfloat16; {candidate_dirs[0]}: float32; save them in one")


def test_an_ensemble_of_members_in_different_precisions_is_refused():
    members = [tiny_model(seed=1), tiny_model(seed=2).to(torch.bfloat16)]
    with pytest.raises(ValueError, match=r"different precisions \(torch.float32, torch.bfloat16\)"):
        MinBertEnsembleForMultitask.from_members(members, {"sts": [1, 1]})


def test_ensemble_command_refuses_a_plain_encoder_without_trained_heads_before_predicting(
    candidate_dirs, data_dir, tokenizer, tmp_path, capsys, predictions_made
):
    from hf_minbert import MinBertModel

    encoder = tmp_path / "encoder"
    MinBertModel(tiny_model(seed=8).config).save_pretrained(encoder)  # e.g. a `minbert pretrain-mlm` base
    tokenizer.save_pretrained(encoder)
    capsys.readouterr()
    status = minbert(["ensemble", "--models", candidate_dirs[0], str(encoder), "--output_dir", str(tmp_path / "out"),
                      "--data_dir", str(data_dir), "--no_progress"])
    assert status == 2 and predictions_made == []
    assert capsys.readouterr().err.strip() == (
        f"minbert ensemble: {encoder}: a MinBertModel without trained task heads: a candidate must be a trained "
        "multitask model (minbert train's output)")


def test_ensemble_command_refuses_one_folder_named_twice_in_two_spellings(candidate_dirs, data_dir, tmp_path, capsys,
                                                                          predictions_made):
    again = str(Path(candidate_dirs[0]) / ".." / Path(candidate_dirs[0]).name) + "/"
    status = minbert(["ensemble", "--models", candidate_dirs[0], candidate_dirs[1], again, "--output_dir",
                      str(tmp_path / "out"), "--data_dir", str(data_dir), "--selection", "all", "--no_progress"])
    assert status == 2 and predictions_made == []
    assert capsys.readouterr().err.strip() == (
        f"minbert ensemble: --models lists a folder twice: {candidate_dirs[0]} and {again}")


def test_ensemble_command_refuses_sts_dev_rows_that_cannot_give_a_correlation_before_predicting(
    candidate_dirs, tmp_path, capsys, predictions_made
):
    data = tmp_path / "data"
    data.mkdir()
    rows = tiny_task_rows(n=4, seed=3)
    rows["sts"] = rows["sts"].map(lambda row: {**row, "similarity": 3.0})
    write_task_files(data, rows, split="dev")
    capsys.readouterr()  # the map's progress bar
    status = minbert(["ensemble", "--models", *candidate_dirs[:2], "--output_dir", str(tmp_path / "out"),
                      "--data_dir", str(data), "--no_progress"])
    assert status == 2 and predictions_made == []
    assert capsys.readouterr().err.strip() == (
        f"minbert ensemble: {data / 'sts-dev.csv'}: every label is 3, so the correlation is undefined")


def test_ensemble_command_refuses_a_model_folder_without_weights_before_predicting(
    candidate_dirs, data_dir, tmp_path, capsys, predictions_made
):
    hollow = tmp_path / "hollow"
    hollow.mkdir()
    (hollow / "config.json").write_text((Path(candidate_dirs[0]) / "config.json").read_text())
    status = minbert(["ensemble", "--models", candidate_dirs[0], str(hollow), "--output_dir", str(tmp_path / "out"),
                      "--data_dir", str(data_dir), "--no_progress"])
    assert status == 2 and predictions_made == []
    assert capsys.readouterr().err.strip().startswith(f"minbert ensemble: {hollow} holds no weights")


def test_ensemble_command_on_a_model_folder_that_does_not_exist_is_no_such_directory(
    candidate_dirs, data_dir, tmp_path, capsys, predictions_made
):
    status = minbert(["ensemble", "--models", candidate_dirs[0], str(tmp_path / "nowhere"), "--output_dir",
                      str(tmp_path / "out"), "--data_dir", str(data_dir)])
    assert status == 2 and predictions_made == []
    assert capsys.readouterr().err.strip() == f"minbert ensemble: --models {tmp_path / 'nowhere'}: no such directory"


def test_ensemble_command_refuses_a_device_torch_cannot_use_naming_the_flag(
    candidate_dirs, data_dir, tmp_path, capsys, predictions_made
):
    status = minbert(["ensemble", "--models", *candidate_dirs, "--output_dir", str(tmp_path / "out"),
                      "--data_dir", str(data_dir), "--device", "gpu0"])
    assert status == 2 and predictions_made == []
    assert capsys.readouterr().err.strip() == "minbert ensemble: --device gpu0: not a torch device (cpu, cuda, cuda:1, mps, ...)"


# ------------------------------------------------------------------------------------------------------
# minbert ensemble's output folder: checked before predicting, written aside, never silently replaced
# ------------------------------------------------------------------------------------------------------


def ensemble_into(output, models, data_dir, *flags):
    return minbert(["ensemble", "--models", *map(str, models), "--output_dir", str(output), "--data_dir", str(data_dir),
                    "--batch_size", "8", "--no_progress", *flags])


@pytest.fixture
def model_folder(candidate_dirs, tmp_path):
    """A saved model (a copy of the first candidate) in a folder of this test's own."""
    return Path(shutil.copytree(candidate_dirs[0], tmp_path / "model"))


def files_of(folder):
    return {path.relative_to(folder): path.read_bytes() for path in sorted(folder.rglob("*")) if path.is_file()}


@pytest.mark.parametrize("flags", [[], ["--overwrite_output_dir"]], ids=["plain", "overwrite"])
def test_ensemble_command_refuses_an_output_dir_that_is_one_of_the_models_and_leaves_it_as_it_was(
    candidate_dirs, model_folder, data_dir, tmp_path, monkeypatch, capsys, flags
):
    before = files_of(model_folder)
    monkeypatch.chdir(tmp_path)  # the same folder, named another way: a relative path against an absolute one
    status = ensemble_into("model", [model_folder, candidate_dirs[1]], data_dir, *flags)
    assert status == 2 and files_of(model_folder) == before
    assert capsys.readouterr().err.strip() == (
        f"minbert ensemble: --output_dir model is one of --models ({model_folder}), which replacing the folder would delete")


def test_ensemble_command_refuses_an_output_dir_holding_a_model_before_predicting(
    candidate_dirs, model_folder, data_dir, capsys, predictions_made
):
    before = files_of(model_folder)
    assert ensemble_into(model_folder, candidate_dirs[1:], data_dir) == 2
    assert predictions_made == [] and files_of(model_folder) == before
    assert capsys.readouterr().err.strip() == (
        f"minbert ensemble: --output_dir {model_folder} already holds a model (config.json, model.safetensors): "
        "pass --overwrite_output_dir to replace it, or choose another folder")


def test_ensemble_command_refuses_an_output_dir_that_is_a_file_before_predicting(
    candidate_dirs, data_dir, tmp_path, capsys, predictions_made
):
    (tmp_path / "out").write_text("notes")
    assert ensemble_into(tmp_path / "out", candidate_dirs[:2], data_dir) == 2
    assert predictions_made == []
    assert capsys.readouterr().err.strip() == f"minbert ensemble: --output_dir {tmp_path / 'out'} is a file, not a folder"


def test_ensemble_command_refuses_an_unfinished_ensemble_naming_overwrite_output_dir_before_predicting(
    candidate_dirs, data_dir, tmp_path, capsys, predictions_made
):
    (tmp_path / "out.partial").mkdir()
    assert ensemble_into(tmp_path / "out", candidate_dirs[:2], data_dir) == 2
    assert predictions_made == []
    assert capsys.readouterr().err.strip() == (
        f"minbert ensemble: {tmp_path / 'out.partial'} holds an unfinished run: pass --overwrite_output_dir to discard it")


@pytest.mark.slow
def test_ensemble_command_with_overwrite_output_dir_replaces_the_whole_folder(
    candidate_dirs, model_folder, data_dir, tmp_path
):
    (model_folder / "notes.txt").write_text("from the old model")
    assert ensemble_into(model_folder, candidate_dirs[1:], data_dir, "--overwrite_output_dir") == 0
    assert (model_folder / "ensemble_selection.json").is_file() and not (model_folder / "notes.txt").exists()
    assert isinstance(AutoModel.from_pretrained(model_folder), MinBertEnsembleForMultitask)
    assert not (tmp_path / "model.partial").exists() and not (tmp_path / "model.replaced").exists()


@pytest.mark.slow
def test_ensemble_command_failing_while_writing_leaves_no_output_folder(candidate_dirs, data_dir, tmp_path, monkeypatch):
    from hf_minbert.commands import ensemble as ensemble_command

    def fail(*args, **kwargs):
        raise OSError("no space left on device")

    monkeypatch.setattr(ensemble_command, "regenerate_model_card", fail)
    assert ensemble_into(tmp_path / "out", candidate_dirs[:2], data_dir) == 2
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
def test_ensemble_command_writes_an_undefined_metric_as_null_in_strict_json(
    candidate_dirs, data_dir, tmp_path, monkeypatch
):
    from hf_minbert.commands import ensemble as ensemble_command

    def pearson_undefined(task, predictions, gold):  # as for predictions that are all the same
        scores = score_task(task, predictions, gold)
        return {**scores, "pearson": math.nan} if task == "sts" else scores

    score_task = ensemble_command.score_task
    monkeypatch.setattr(ensemble_command, "score_task", pearson_undefined)
    monkeypatch.setattr(ensemble_command, "regenerate_model_card", lambda *args, **kwargs: None)  # metrics.json alone is tested here
    assert ensemble_into(tmp_path / "out", candidate_dirs[:2], data_dir) == 0

    def refuse(constant):
        raise AssertionError(f"{constant} is not JSON")

    metrics = json.loads((tmp_path / "out" / "metrics.json").read_text(), parse_constant=refuse)
    assert metrics["sts"]["pearson"] is None and metrics["sts"]["spearman"] is not None


def test_a_cosine_feature_member_gets_the_sentences_split_from_the_joint_input(tokenizer):
    from hf_minbert import MinBertConfig

    tasks = MinBertConfig().tasks
    tasks["sts"] = {**tasks["sts"], "cosine_feature": True}
    cosine_member, plain_member = tiny_model(tasks=tasks, seed=4).eval(), tiny_model(seed=5).eval()
    ensemble = MinBertEnsembleForMultitask.from_members([cosine_member, plain_member], {"sts": [1.0, 1.0]}).eval()
    joint = tokenizer(["a good film"], ["a great movie"], return_tensors="pt")
    a, b = tokenizer(["a good film"], return_tensors="pt"), tokenizer(["a great movie"], return_tensors="pt")
    with torch.no_grad():
        alone = cosine_member(**joint, input_ids_a=a["input_ids"], attention_mask_a=a["attention_mask"],
                              input_ids_b=b["input_ids"], attention_mask_b=b["attention_mask"], task="sts").logits
        expected = (alone + plain_member(**joint, task="sts").logits) / 2
        torch.testing.assert_close(ensemble(**joint, task="sts").logits, expected, rtol=0, atol=1e-5)


def test_the_tasks_to_ensemble_default_to_every_head_of_the_models_the_courses_first(tmp_path):
    from hf_minbert.commands.ensemble import models_tasks

    for name, tasks in (("a", ["nli", "sts"]), ("b", ["sst", "topic"])):
        (tmp_path / name).mkdir()
        (tmp_path / name / "config.json").write_text(json.dumps({"tasks": {task: {} for task in tasks}}))
    assert models_tasks([str(tmp_path / "a"), str(tmp_path / "b")]) == ["sst", "sts", "nli", "topic"]


def test_an_ensemble_of_bf16_members_is_bf16_as_they_answered():
    members = [tiny_model(seed=0).to(torch.bfloat16), tiny_model(seed=1).to(torch.bfloat16)]
    ensemble = MinBertEnsembleForMultitask.from_members(members, WEIGHTS)
    assert {parameter.dtype for parameter in ensemble.parameters()} == {torch.bfloat16}
