"""A task of one's own declared on the command line: `minbert train --task_schema FILE` registers the file's data
schema and gives the task a fresh head of the kind its labels need, so that a first training needs no Python."""
import json
from pathlib import Path

import pytest

from hf_minbert import MinBertConfig
from hf_minbert.commands.head_options import task_specs
from hf_minbert.commands.task_schema_files import FILE_SCHEMAS, declare_tasks, fresh_head, read_task_schema_file
from hf_minbert.commands.train_arguments import ModelArguments
from hf_minbert.data import TASK_SCHEMAS, TaskSchema
from tests.helpers import tiny_task_rows, write_task_files
from tests.test_custom_tasks import NLI, nli_rows
from tests.test_train_promises import TINY_RUN, base, tokenizer, train  # noqa: F401  (module fixtures)

NLI_FILE = {"name": "nli", "text_columns": ["premise", "hypothesis"], "label_column": "label", "label_dtype": "int64",
            "label_values": [0, 1, 2], "labels": ["entailment", "neutral", "contradiction"]}


@pytest.fixture(autouse=True)
def registered_schemas():
    """Each test starts and ends with the schemas registered before it (a file registers its task globally)."""
    before, by_files = dict(TASK_SCHEMAS), dict(FILE_SCHEMAS)
    yield
    TASK_SCHEMAS.clear()
    TASK_SCHEMAS.update(before)
    FILE_SCHEMAS.clear()
    FILE_SCHEMAS.update(by_files)


def schema_file(folder, values=NLI_FILE, name="nli.json"):
    path = folder / name
    path.write_text(json.dumps(values))
    return str(path)


def test_a_schema_file_reads_as_the_schema_and_the_heads_class_names(tmp_path):
    schema, labels = read_task_schema_file(schema_file(tmp_path))
    assert schema == NLI and labels == ["entailment", "neutral", "contradiction"]


def test_a_schema_file_named_from_the_home_folder_is_found(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))  # as --task_schema=~/nli.json or a config file leaves it unexpanded
    path = schema_file(tmp_path)
    schema, _ = read_task_schema_file(f"~/{Path(path).name}")
    assert schema == NLI


def test_a_yaml_schema_file_reads_as_the_same_schema(tmp_path):
    (tmp_path / "nli.yaml").write_text("name: nli\ntext_columns: [premise, hypothesis]\nlabel_column: label\n"
                                       "label_dtype: int64\nlabel_values: [0, 1, 2]\n")
    assert read_task_schema_file(str(tmp_path / "nli.yaml"))[0] == NLI


@pytest.mark.parametrize("values, head", [
    ({"text_columns": ["text"], "label_values": [0, 1, 2]},
     {"pair_encoding": "single", "kind": "classification", "labels": ["0", "1", "2"]}),
    ({"label_dtype": "float64", "label_values": [0.0, 1.0]},
     {"pair_encoding": "cross", "kind": "binary", "labels": ["0", "1"]}),
    ({"label_dtype": "float64", "label_values": None, "label_range": [1, 10]},
     {"pair_encoding": "cross", "kind": "regression", "label_range": [1, 10]}),
])
def test_a_fresh_head_has_the_kind_the_schemas_labels_need(tmp_path, values, head):
    schema, _ = read_task_schema_file(schema_file(tmp_path, {**NLI_FILE, "labels": None, **values}))
    assert fresh_head(schema, None, "f") == head


@pytest.mark.parametrize("values, problem", [
    ({"label_values": [1, 2, 3]}, "a class head's labels are the class numbers 0..C-1"),
    ({"labels": ["yes", "no"]}, "labels names each of the 3 label values"),
    ({"label_colum": "label"}, r"unknown key\(s\) \['label_colum'\]"),
    ({"label_dtype": "int32"}, "TaskSchema 'nli': label_dtype must be"),
    ({"name": "sst"}, "task 'sst' already has another data schema"),
], ids=["classes not 0..C-1", "a name per label", "unknown key", "schema that cannot describe rows",
        "a course task's name"])
def test_a_bad_schema_file_is_refused_naming_the_file(tmp_path, values, problem):
    path = schema_file(tmp_path, {**NLI_FILE, **values})
    with pytest.raises(ValueError, match=rf"^--task_schema {path}: {problem}"):
        declare_tasks([path], {})


def test_a_checkpoint_head_that_cannot_learn_from_the_files_rows_is_refused(tmp_path):
    path = schema_file(tmp_path)
    binary = {"nli": {"kind": "binary", "labels": ["no", "yes"], "pair_encoding": "cross"}}
    with pytest.raises(ValueError, match=rf"^--task_schema {path}: the checkpoint's nli head cannot learn from its rows"):
        declare_tasks([path], binary)


def test_a_declared_task_joins_the_default_tasks(tmp_path):
    specs = task_specs(ModelArguments(task_schema=[schema_file(tmp_path)]), MinBertConfig().tasks)
    assert list(specs) == ["sst", "para", "sts", "nli"]


def test_a_declared_tasks_fresh_head_takes_the_head_flags_beside_a_trained_checkpoints_heads(tmp_path):
    args = ModelArguments(task_schema=[schema_file(tmp_path)], tasks="sst,nli", head_layers="nli=2")
    specs = task_specs(args, MinBertConfig().tasks, recipe_defaults=False)
    assert specs["nli"]["head_layers"] == 2 and specs["nli"]["kind"] == "classification"


def test_minbert_train_adds_a_declared_task_to_a_trained_checkpoint(tmp_path, base):  # noqa: F811
    data = _nli_data(tmp_path / "data")
    write_task_files(data, tiny_task_rows(n=8, seed=1), split="train")
    write_task_files(data, tiny_task_rows(n=8, seed=2), split="dev")
    assert train(base, data, tmp_path / "trained", "--tasks", "sst", "--architecture", "multitask") == 0
    assert train(tmp_path / "trained", data, tmp_path / "out", "--tasks", "sst,nli",
                 "--task_schema", schema_file(tmp_path)) == 0
    assert sorted(json.loads((tmp_path / "out" / "config.json").read_text())["tasks"]) == ["nli", "sst"]


def _nli_data(folder):
    folder.mkdir()
    for split, seed in (("train", 0), ("dev", 1)):
        lines = ["\tid\tpremise\thypothesis\tlabel", *(f"{i}\tn{i}\t{r['premise']}\t{r['hypothesis']}\t{r['label']}"
                                                     for i, r in enumerate(nli_rows(n=12, seed=seed)))]
        (folder / f"nli-{split}.csv").write_text("\n".join(lines) + "\n")
    return folder


def test_minbert_train_trains_a_task_declared_by_a_schema_file(tmp_path, base):  # noqa: F811
    data = _nli_data(tmp_path / "data")
    assert train(base, data, tmp_path / "out", "--tasks", "nli", "--task_schema", schema_file(tmp_path)) == 0
    head = json.loads((tmp_path / "out" / "config.json").read_text())["tasks"]["nli"]
    assert head["kind"] == "classification" and head["labels"] == NLI_FILE["labels"]
    assert TaskSchema(**head["data_schema"]) == NLI  # another process reads and scores it as trained
    assert "accuracy" in json.loads((tmp_path / "out" / "metrics.json").read_text())["nli"]


def test_scores_that_are_not_scored_by_correlation_are_refused_naming_the_file(tmp_path):
    path = schema_file(tmp_path, {**NLI_FILE, "labels": None, "label_dtype": "float64", "label_values": None,
                                  "label_range": [0, 1], "metric": "accuracy"})
    with pytest.raises(ValueError, match=rf"^--task_schema {path}: its fresh nli head cannot learn from its rows: "
                                         r".*scored by correlation"):
        declare_tasks([path], {})


def test_a_new_task_for_a_checkpoint_whose_tasks_own_layers_is_refused_before_the_data_is_read(
        tmp_path, base, monkeypatch):  # noqa: F811
    from hf_minbert.commands import train as train_command
    from tests.helpers import refused_calls

    data = _nli_data(tmp_path / "data")
    write_task_files(data, tiny_task_rows(n=8, seed=1), split="train")
    write_task_files(data, tiny_task_rows(n=8, seed=2), split="dev")
    assert train(base, data, tmp_path / "trained", "--tasks", "sst", "--architecture", "cerbertus", "--task_specific_layers", "1") == 0
    refused_calls(monkeypatch, train_command, "load_task_data")
    flags = ["--tasks", "sst,nli", "--task_schema", schema_file(tmp_path), "--output_dir", str(tmp_path / "out")]
    with pytest.raises(ValueError, match=r"^new task\(s\) nli: .* is a cerbertus model, each of its tasks owning encoder layers"):
        train_command.main(["--model_name_or_path", str(tmp_path / "trained"), "--data_dir", str(data), *flags,
                            *TINY_RUN])


def test_two_files_declaring_one_task_are_refused_naming_both(tmp_path):
    first, second = schema_file(tmp_path), schema_file(tmp_path, name="again.json")
    with pytest.raises(ValueError, match=rf"^--task_schema {first} and {second} both declare task 'nli'"):
        declare_tasks([first, second], {})


def test_a_later_file_replaces_the_schema_an_earlier_file_registered_in_the_process(tmp_path):
    declare_tasks([schema_file(tmp_path, {**NLI_FILE, "label_column": "lable"}, name="typo.json")], {})
    declare_tasks([schema_file(tmp_path)], {})
    assert TASK_SCHEMAS["nli"] == NLI


def test_a_declared_task_that_tasks_leaves_out_is_refused(tmp_path):
    args = ModelArguments(task_schema=[schema_file(tmp_path)], tasks="sst")
    with pytest.raises(ValueError, match="^--task_schema declares nli, which --tasks sst does not name"):
        task_specs(args, MinBertConfig().tasks)


def test_an_unknown_task_names_the_flag_that_declares_one(tmp_path):
    with pytest.raises(ValueError, match=r"unknown task\(s\) \['nli'\].*\(a task of one's own: --task_schema FILE\)"):
        task_specs(ModelArguments(tasks="nli"), MinBertConfig().tasks)


def test_a_config_file_holding_the_schema_itself_is_told_the_flag_takes_a_file(tmp_path):
    with pytest.raises(ValueError, match=r"^--task_schema name=nli: no such file \(the flag takes a JSON or YAML file"):
        read_task_schema_file("name=nli")


def test_a_distilled_student_gets_a_head_like_its_teachers_for_a_task_of_ones_own(tmp_path, base):  # noqa: F811
    data = _nli_data(tmp_path / "data")
    assert train(base, data, tmp_path / "teacher", "--tasks", "nli", "--task_schema", schema_file(tmp_path)) == 0
    TASK_SCHEMAS.pop("nli"), FILE_SCHEMAS.pop("nli")  # as in a fresh process, which has no file
    assert train(base, data, tmp_path / "student", "--teacher", str(tmp_path / "teacher"), command="distill") == 0
    heads = json.loads((tmp_path / "student" / "config.json").read_text())["tasks"]
    assert list(heads) == ["nli"] and heads["nli"]["labels"] == NLI_FILE["labels"]


def test_the_card_of_a_model_of_ones_own_tasks_names_them_and_their_score_range(tmp_path, base):  # noqa: F811
    data = _nli_data(tmp_path / "data")
    rate = {**NLI_FILE, "name": "rate", "file_prefix": "nli", "label_dtype": "float64", "label_values": None,
            "label_range": [0, 2], "metric": "correlation", "labels": None}
    assert train(base, data, tmp_path / "out", "--tasks", "rate", "--task_schema", schema_file(tmp_path, rate)) == 0
    card = (tmp_path / "out" / "README.md").read_text()
    assert "Research and teaching: rate, English only" in card and "rate's scores to its label range, 0–2" in card
    assert "CS224N default project" not in card and "SST labels" not in card


def test_class_names_other_than_a_trained_heads_are_refused_naming_the_file(tmp_path):
    path = schema_file(tmp_path)
    trained = {"nli": {"kind": "classification", "labels": ["e", "n", "c"], "pair_encoding": "cross"}}
    with pytest.raises(ValueError, match=rf"^--task_schema {path}: labels .* differ from the checkpoint's nli head's"):
        declare_tasks([path], trained)


def test_class_names_follow_the_class_numbers_whatever_order_the_file_lists_the_values_in(tmp_path):
    schema, labels = read_task_schema_file(schema_file(tmp_path, {**NLI_FILE, "label_values": [1, 0], "labels": ["pos", "neg"]}))
    assert fresh_head(schema, labels, "f")["labels"] == ["neg", "pos"]


def test_a_file_cannot_replace_a_course_tasks_schema_after_declaring_it_unchanged(tmp_path):
    course = {"name": "sst", "text_columns": ["sentence"], "label_column": "sentiment", "label_dtype": "int64",
              "label_values": [0, 1, 2, 3, 4], "file_prefix": "ids-sst", "prediction_header": "Predicted_Sentiment"}
    declare_tasks([schema_file(tmp_path, course, name="sst.json")], MinBertConfig().tasks)
    other = schema_file(tmp_path, {**course, "prediction_header": "Other"}, name="other.json")
    with pytest.raises(ValueError, match=rf"^--task_schema {other}: task 'sst' already has another data schema"):
        declare_tasks([other], MinBertConfig().tasks)


def test_a_course_task_a_trained_checkpoint_lacks_gets_the_recipes_fresh_head():
    nli = {"kind": "classification", "labels": ["e", "n", "c"], "pair_encoding": "cross"}
    trained = MinBertConfig(tasks={"nli": nli}).tasks
    specs = task_specs(ModelArguments(tasks="nli,sst,sts"), trained, recipe_defaults=False)
    assert specs["sst"]["labels"][0] == "negative" and specs["sts"]["pair_encoding"] == "bi"


def test_a_fresh_course_head_for_a_trained_checkpoint_gets_the_recipes_pair_fields_for_its_encoding():
    nli = {"kind": "classification", "labels": ["e", "n", "c"], "pair_encoding": "cross"}
    trained = MinBertConfig(tasks={"nli": nli}).tasks
    args = ModelArguments(tasks="nli,para,sts", pair_encoding="para=bi,sts=cross")
    specs = task_specs(args, trained, recipe_defaults=False)
    assert specs["para"]["average_pair_orders"] is False and specs["sts"]["cosine_feature"] is True
