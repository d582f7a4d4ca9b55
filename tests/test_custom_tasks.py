"""A task of one's own: with its data schema registered, its raw rows are checked, trained on, scored and
predicted like the course tasks'; without one, or with a schema its head cannot learn from, the trainer says so
when it is built."""
import random

import datasets
import pytest
import torch

from hf_minbert.data import TASK_SCHEMAS, TaskSchema, head_mismatch, register_task_schema
from tests.helpers import WORDS, tiny_model, tiny_task_rows
from tests.test_trainer import _args, tokenizer  # noqa: F401  (module fixture)
from trainers import MultitaskTrainer

NLI = TaskSchema("nli", ("premise", "hypothesis"), "label", "int64", label_values=(0, 1, 2))
NLI_HEAD = {"kind": "classification", "labels": ["entailment", "neutral", "contradiction"], "pair_encoding": "cross"}


@pytest.fixture
def nli():
    register_task_schema(NLI)
    yield NLI
    TASK_SCHEMAS.pop("nli")


def nli_rows(n=24, seed=0):
    rng = random.Random(seed)

    def sentence():
        return " ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 9)))

    return datasets.Dataset.from_dict({"premise": [sentence() for _ in range(n)],
                                       "hypothesis": [sentence() for _ in range(n)],
                                       "label": [rng.randint(0, 2) for _ in range(n)]})


def _nli_trainer(tmp_path, tokenizer, head=NLI_HEAD, **datasets_by_role):  # noqa: F811
    rows = {"nli": nli_rows()}
    return MultitaskTrainer(model=tiny_model(tasks={"nli": head}), args=_args(tmp_path), processing_class=tokenizer,
                            **({"train_dataset": rows, "eval_dataset": rows} | datasets_by_role))


@pytest.mark.slow
def test_a_registered_task_trains_from_its_raw_rows(tmp_path, tokenizer, nli):  # noqa: F811
    trainer = _nli_trainer(tmp_path, tokenizer)
    before = {name: p.detach().clone() for name, p in trainer.model.named_parameters()}
    trainer.train()
    assert any(not torch.equal(before[name], p) for name, p in trainer.model.named_parameters())
    assert any("loss_nli" in entry for entry in trainer.state.log_history)


def test_a_registered_task_is_scored_by_its_schemas_metric(tmp_path, tokenizer, nli):  # noqa: F811
    metrics = _nli_trainer(tmp_path, tokenizer).evaluate()
    assert 0.0 <= metrics["eval_nli_accuracy"] <= 1.0 and "eval_overall" not in metrics


def test_a_registered_task_is_predicted_as_class_probabilities_with_its_labels(tmp_path, tokenizer, nli):  # noqa: F811
    rows = nli_rows()
    output = _nli_trainer(tmp_path, tokenizer).predict({"nli": rows})["nli"]
    assert output.predictions.shape == (len(rows), 3) and output.label_ids.tolist() == list(rows["label"])


def test_a_bad_label_of_a_registered_task_is_refused_naming_its_row(tmp_path, tokenizer, nli):  # noqa: F811
    labels = list(nli_rows()["label"])
    labels[4] = 3
    rows = nli_rows().remove_columns("label").add_column("label", labels)
    with pytest.raises(ValueError, match="^train_dataset: task 'nli', row 4, column 'label': label 3 is not one"):
        _nli_trainer(tmp_path, tokenizer, train_dataset={"nli": rows}, eval_dataset=None)


@pytest.mark.parametrize("schema, head, label, problem", [
    # -100 is skipped by cross-entropy alone; a binary head's loss would stop training at the row's step
    (TaskSchema("yes_no", ("sentence",), "label", "int64", label_values=(0, 1)), "binary", -100, "label -100"),
    # a soft target is a binary head's; a two-class head's cross-entropy needs class numbers
    (TaskSchema("yes_no", ("sentence",), "label", "float64", label_values=(0.0, 1.0)), "classification", 0.5,
     "label 0.5"),
    # whole-number labels would cut a soft target: refused for a binary head too
    (TaskSchema("yes_no", ("sentence",), "label", "int64", label_values=(0, 1)), "binary", 0.5, "label 0.5"),
])
def test_a_training_label_only_another_kind_of_head_could_learn_from_is_refused_naming_its_row(
        tmp_path, tokenizer, schema, head, label, problem):  # noqa: F811
    register_task_schema(schema)
    try:
        labels = [0, 1, 0, 1, 0, 1]
        labels[3] = label
        rows = datasets.Dataset.from_dict({"sentence": ["a fine film"] * 6, "label": labels})
        spec = {"kind": head, "labels": ["no", "yes"], "pair_encoding": "single"}
        with pytest.raises(ValueError, match=f"^train_dataset: task 'yes_no', row 3, column 'label': {problem}"):
            MultitaskTrainer(model=tiny_model(tasks={"yes_no": spec}), args=_args(tmp_path), processing_class=tokenizer,
                             train_dataset={"yes_no": rows})
    finally:
        TASK_SCHEMAS.pop("yes_no")


def test_raw_rows_of_a_task_without_a_schema_are_refused_naming_the_way_to_give_one(tmp_path, tokenizer):  # noqa: F811
    with pytest.raises(ValueError, match="^train_dataset: task 'nli' has no data schema.*register_task_schema"):
        _nli_trainer(tmp_path, tokenizer, eval_dataset=None)


def test_a_schema_whose_classes_the_head_does_not_have_is_refused(tmp_path, tokenizer, nli):  # noqa: F811
    two_classes = {**NLI_HEAD, "labels": ["entailment", "not entailment"]}
    with pytest.raises(ValueError, match="^train_dataset: task 'nli': its head has 2 classes"):
        _nli_trainer(tmp_path, tokenizer, head=two_classes)


def test_a_course_task_whose_head_disagrees_with_its_data_is_refused_before_training(tmp_path, tokenizer):  # noqa: F811
    three_grades = {"kind": "classification", "labels": ["negative", "neutral", "positive"], "pair_encoding": "single"}
    with pytest.raises(ValueError, match="task 'sst': its head has 3 classes.*0, 1, 2, 3, 4"):
        MultitaskTrainer(model=tiny_model(tasks={"sst": three_grades}), args=_args(tmp_path), processing_class=tokenizer,
                         train_dataset={"sst": tiny_task_rows()["sst"]})


@pytest.mark.parametrize("head, problem", [
    ({**NLI_HEAD, "pair_encoding": "single"}, "its rows hold sentence pairs but its head reads single sentences"),
    ({"kind": "regression", "pair_encoding": "cross"}, "its head predicts scores"),
    ({"kind": "binary", "labels": ["no", "yes"], "pair_encoding": "cross"}, "its head is binary"),
])
def test_a_head_that_cannot_learn_from_a_schemas_rows_is_named_with_the_reason(head, problem):
    spec = tiny_model(tasks={"nli": head}).config.task_spec("nli")
    assert problem in head_mismatch(NLI, spec)


def test_a_name_registered_with_another_schema_is_refused_unless_replacing_is_asked(nli):
    other = TaskSchema("nli", ("premise", "hypothesis"), "gold", "int64", label_values=(0, 1, 2))
    with pytest.raises(ValueError, match="task 'nli' already has a data schema"):
        register_task_schema(other)
    assert register_task_schema(NLI) is NLI  # the same schema again is no conflict
    register_task_schema(other, exist_ok=True)
    assert TASK_SCHEMAS["nli"].label_column == "gold"


@pytest.mark.parametrize("fields, problem", [
    (dict(name="my task"), "the name must be an identifier"),
    (dict(text_columns=("a", "b", "c")), "text_columns must be a tuple"),
    (dict(label_column="premise"), "must be distinct"),
    (dict(text_columns=("input_ids", "hypothesis")), "none of .*input_ids"),
    (dict(text_columns=("id",)), "none of .*id"),
    (dict(label_dtype="int32"), "label_dtype must be"),
    (dict(label_range=(0.0, 1.0)), "one of them"),
    (dict(metric="f1"), "metric must be"),
    (dict(label_values=None, label_range=(0.0, 1.0)), "need label_dtype='float64'"),
    (dict(label_values=(1,)), "two or more distinct numbers"),
    (dict(label_values=("yes", "no")), "two or more distinct numbers"),
    (dict(label_values=(0, 0.5, 1)), "whole-number label_values"),
    (dict(name="overall"), "name the dev metrics beside the tasks' own"),
    (dict(name="tasks_overall"), "name the dev metrics beside the tasks' own"),
    (dict(name="dev_data"), "name the dev metrics beside the tasks' own"),
    (dict(text_columns=(1,)), "text_columns must be a tuple of one column name"),
    (dict(label_column=["label"]), "label_column must be a string"),
    (dict(prediction_header=["a"]), "prediction_header must be a string"),
    (dict(label_values=4), "label_values must be a list of numbers"),
    (dict(label_dtype="float64", label_values=None, label_range=("1", "10")), "two finite numbers"),
    (dict(label_dtype="float64", label_values=None, label_range=(1, float("inf"))), "two finite numbers"),
])
def test_a_schema_that_cannot_describe_rows_is_refused_naming_the_field(fields, problem):
    settings = dict(name="nli", text_columns=("premise", "hypothesis"), label_column="label", label_dtype="int64",
                    label_values=(0, 1, 2)) | fields
    with pytest.raises(ValueError, match=problem):
        TaskSchema(**settings)


def test_a_schemas_labels_given_as_a_list_are_kept_as_the_same_tuple():
    listed = TaskSchema("nli", ["premise", "hypothesis"], "label", "int64", label_values=[0, 1, 2])
    assert listed == NLI and hash(listed) == hash(NLI)


def test_tokenized_training_rows_need_no_schema_that_suits_their_head(tmp_path, tokenizer):  # noqa: F811
    three_grades = {"kind": "classification", "labels": ["negative", "neutral", "positive"], "pair_encoding": "single"}
    encoded = tokenizer(["a fine film", "a dull plot"])
    rows = datasets.Dataset.from_dict({**encoded, "labels": [0, 2]})
    MultitaskTrainer(model=tiny_model(tasks={"sst": three_grades}), args=_args(tmp_path), processing_class=tokenizer,
                     train_dataset={"sst": rows})


def test_a_task_of_ones_own_names_its_files_and_prediction_column_after_itself():
    assert NLI.file_name("dev") == "nli-dev.csv" and NLI.prediction_header == "Predicted_label"


# --- a task of one's own travels with the model ---------------------------------------------------------------


@pytest.fixture
def nli_folder(tmp_path, tokenizer, nli):  # noqa: F811
    """A model with an nli head, saved by a trainer that read nli rows (no training needed to record them)."""
    trainer = _nli_trainer(tmp_path, tokenizer)
    trainer.save_model(str(tmp_path / "model"))
    return tmp_path / "model"


def test_a_model_saved_by_a_trainer_carries_its_task_of_ones_own_data_schema(nli_folder):
    import json

    tasks = json.loads((nli_folder / "config.json").read_text())["tasks"]
    assert TaskSchema(**tasks["nli"]["data_schema"]) == NLI


def test_a_course_tasks_head_carries_no_data_schema(tmp_path, tokenizer):  # noqa: F811
    trainer = MultitaskTrainer(model=tiny_model(), args=_args(tmp_path), processing_class=tokenizer,
                               train_dataset=tiny_task_rows())
    assert all(spec["data_schema"] is None for spec in trainer.model.config.tasks.values())


@pytest.mark.slow
def test_a_fresh_process_evaluates_a_saved_task_of_ones_own(nli_folder, tmp_path):
    import subprocess
    import sys

    rows = nli_rows(seed=3)
    lines = ["\tid\tpremise\thypothesis\tlabel", *(f"{i}\tn-{i}\t{r['premise']}\t{r['hypothesis']}\t{r['label']}"
                                                 for i, r in enumerate(rows))]
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "nli-dev.csv").write_text("\n".join(lines) + "\n")
    proc = subprocess.run([sys.executable, "-m", "hf_minbert.cli", "evaluate", "--model", str(nli_folder), "--data_dir",
                           str(tmp_path / "data"), "--output_dir", str(tmp_path / "scores"), "--no_progress"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    import json

    assert 0 <= json.loads((tmp_path / "scores" / "metrics.json").read_text())["nli"]["accuracy"] <= 1


def test_a_saved_schema_other_than_the_one_registered_here_is_refused_naming_the_folder(nli_folder, nli):
    from hf_minbert.ensemble import load_multitask_model

    register_task_schema(TaskSchema("nli", ("premise", "hypothesis"), "gold", "int64", label_values=(0, 1, 2)),
                         exist_ok=True)
    with pytest.raises(ValueError, match=f"^{nli_folder}: task 'nli' was trained on rows of the schema"):
        load_multitask_model(nli_folder)


@pytest.mark.parametrize("columns", [("premise", "hypothesis"), ("question", "sentence")])
def test_a_pipeline_reads_a_dict_input_by_the_saved_schemas_text_columns(tmp_path, tokenizer, columns):  # noqa: F811
    # ("question", "sentence"), as GLUE's QNLI names them: 'sentence' alone would read as a single sentence.
    from tests.helpers import in_process_pipelines

    schema = TaskSchema("nli", columns, "label", "int64", label_values=(0, 1, 2))
    register_task_schema(schema)
    try:
        rows = nli_rows().rename_columns(dict(zip(("premise", "hypothesis"), columns)))
        model = MultitaskTrainer(model=tiny_model(tasks={"nli": NLI_HEAD}), args=_args(tmp_path),
                                 processing_class=tokenizer, train_dataset={"nli": rows}).model
        answer = in_process_pipelines(model, tokenizer)("minbert-multitask")
        row = {columns[0]: "a cat sat", columns[1]: "a dog ran", "label": 1}
        assert answer(row) == answer(("a cat sat", "a dog ran"))
    finally:
        TASK_SCHEMAS.pop("nli")


def test_an_ensemble_of_a_tasks_models_keeps_its_data_schema(nli_folder, nli, tmp_path):
    from hf_minbert import MinBertEnsembleForMultitask, MinBertForMultitask

    members = [MinBertForMultitask.from_pretrained(nli_folder) for _ in range(2)]
    ensemble = MinBertEnsembleForMultitask.from_members(members, {"nli": [0.5, 0.5]})
    ensemble.save_pretrained(tmp_path / "ensemble")
    reloaded = MinBertEnsembleForMultitask.from_pretrained(tmp_path / "ensemble")
    assert TaskSchema(**reloaded.config.tasks["nli"]["data_schema"]) == NLI


@pytest.mark.parametrize("command, flag", [("evaluate", "--model"), ("ensemble", "--models")])
def test_a_command_names_a_saved_task_of_ones_own_in_a_process_that_never_registered_it(
        nli_folder, nli, tmp_path, command, flag):
    from hf_minbert.cli import main as minbert

    TASK_SCHEMAS.pop("nli")  # as in a fresh process
    (tmp_path / "data").mkdir()
    rows = nli_rows(seed=3)
    lines = ["\tid\tpremise\thypothesis\tlabel", *(f"{i}\tn-{i}\t{r['premise']}\t{r['hypothesis']}\t{r['label']}"
                                                 for i, r in enumerate(rows))]
    (tmp_path / "data" / "nli-dev.csv").write_text("\n".join(lines) + "\n")
    others = ["--output_dir", str(tmp_path / "out"), "--data_dir", str(tmp_path / "data"), "--tasks", "nli"]
    others += ["--no_progress"] if command == "evaluate" else ["--selection", "all"]
    assert minbert([command, flag, str(nli_folder), *others]) == 0
    assert TASK_SCHEMAS["nli"] == NLI


def test_a_pipeline_reads_text_and_text_pair_as_a_pair_beside_a_single_text_column_of_ones_own(tmp_path, tokenizer):  # noqa: F811
    from tests.helpers import in_process_pipelines

    register_task_schema(TaskSchema("topic", ("text",), "label", "int64", label_values=(0, 1, 2)))
    try:
        rows = datasets.Dataset.from_dict({"text": ["a cat sat", "a dog ran"], "label": [0, 2]})
        topic = {"kind": "classification", "labels": ["x", "y", "z"], "pair_encoding": "single"}
        tasks = {"topic": topic, "para": tiny_model().config.tasks["para"]}
        model = MultitaskTrainer(model=tiny_model(tasks=tasks), args=_args(tmp_path), processing_class=tokenizer,
                                 train_dataset={"topic": rows}).model
        answer = in_process_pipelines(model, tokenizer)("minbert-multitask")
        assert "para" in answer({"text": "a cat sat", "text_pair": "a dog ran"})
        assert list(answer({"text": "a cat sat"})) == ["topic"]
    finally:
        TASK_SCHEMAS.pop("topic")


def test_swapping_the_pairs_of_a_task_whose_order_matters_is_refused(tmp_path, tokenizer, nli):  # noqa: F811
    with pytest.raises(ValueError, match="^--pair_swap_probability nli: nli's label depends on the order"):
        MultitaskTrainer(model=tiny_model(tasks={"nli": NLI_HEAD}), args=_args(tmp_path, pair_swap_probability="0.5"),
                         processing_class=tokenizer, train_dataset={"nli": nli_rows()})


def test_a_head_without_a_data_schema_is_saved_without_the_field(tmp_path):
    # as before the field existed: an earlier release's config code refuses a field it does not know
    import json

    tiny_model().config.save_pretrained(tmp_path)
    specs = json.loads((tmp_path / "config.json").read_text())["tasks"]
    assert not any("data_schema" in spec for spec in specs.values())


def test_a_missing_dev_file_of_a_task_of_ones_own_names_no_flag_it_does_not_have(tmp_path, nli):
    from hf_minbert.commands.train_arguments import DataArguments
    from hf_minbert.commands.train_data import dev_files

    with pytest.raises(ValueError, match=r"^nli dev file \S+nli-dev.csv: no such file$"):
        dev_files(DataArguments(data_dir=str(tmp_path)), ["nli"])
    with pytest.raises(ValueError, match=r"\(name another with --sst_dev\): no such file$"):
        dev_files(DataArguments(data_dir=str(tmp_path)), ["sst"])


def test_a_schema_of_scores_is_scored_by_correlation_unless_it_says_otherwise():
    scores = TaskSchema("rate", ("text",), "score", "float64", label_range=(1.0, 10.0))
    assert scores.metric == "correlation" and NLI.metric == "accuracy"


def test_evaluate_help_with_a_model_lists_its_task_of_ones_own(nli_folder, nli, capsys):
    from hf_minbert.cli import main as minbert

    TASK_SCHEMAS.pop("nli")  # as in a fresh process
    with pytest.raises(SystemExit):
        minbert(["evaluate", "--model", str(nli_folder), "--help"])
    assert "--tasks {sst,para,sts,cfimdb,nli}" in " ".join(capsys.readouterr().out.split())
