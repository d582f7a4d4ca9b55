"""`minbert train` reads every training source a task has: by default the course's file plus the extra files
of the data folder when present (the treebank's phrases, Quora's extra pairs), or the files --train_sources
names; the log, metrics.json and the card say which files gave how many rows."""
import json

import pytest

from hf_minbert.cli import main as minbert
from hf_minbert.commands.train import DataArguments, always_rows, load_task_data, training_sources
from tests.helpers import tiny_task_rows, write_task_files
from tests.test_train_promises import TINY_RUN, base, tokenizer  # noqa: F401  (module fixtures)

TREES = ["(3 (2 a) (4 (4 witty) (2 film)))", "(1 (2 the) (1 (1 dull) (2 plot)))"]


@pytest.fixture(scope="module")
def course_data(tmp_path_factory):
    folder = tmp_path_factory.mktemp("course")
    write_task_files(folder, tiny_task_rows(n=16, seed=1), split="train")
    write_task_files(folder, tiny_task_rows(n=8, seed=2), split="dev")
    return folder


@pytest.fixture(scope="module")
def data_with_extras(tmp_path_factory, course_data):
    folder = tmp_path_factory.mktemp("extras")
    for path in course_data.iterdir():
        (folder / path.name).write_bytes(path.read_bytes())
    (folder / "sst-train-trees.txt").write_text("\n".join(TREES) + "\n")
    extra = tiny_task_rows(n=6, seed=3)["para"].map(lambda row: {"id": "x" + row["id"]})
    write_task_files(folder, {"para": extra}, split="train")
    (folder / "quora-train.csv").rename(folder / "quora-train-extra.csv")
    write_task_files(folder, {"para": tiny_task_rows(n=16, seed=1)["para"]}, split="train")
    return folder


def test_the_default_sources_are_the_course_files_when_no_extra_file_is_present(course_data):
    sources = training_sources(DataArguments(data_dir=str(course_data)), ["sst", "para", "sts"])
    assert {task: [path.name for path in paths] for task, paths in sources.items()} == {
        "sst": ["ids-sst-train.csv"], "para": ["quora-train.csv"], "sts": ["sts-train.csv"]}


def test_the_default_sources_add_the_trees_and_the_extra_quora_pairs_when_present(data_with_extras):
    sources = training_sources(DataArguments(data_dir=str(data_with_extras)), ["sst", "para", "sts"])
    assert [path.name for path in sources["sst"]] == ["ids-sst-train.csv", "sst-train-trees.txt"]
    assert [path.name for path in sources["para"]] == ["quora-train.csv", "quora-train-extra.csv"]


def test_extra_training_files_false_keeps_the_course_files_only(data_with_extras):
    args = DataArguments(data_dir=str(data_with_extras), extra_training_files=False)
    train, _, _ = load_task_data(args, ["sst", "para"])
    assert len(train["sst"]) == 16 and len(train["para"]) == 16


def test_the_trees_give_every_distinct_phrase_as_an_sst_row(data_with_extras):
    train, _, reports = load_task_data(DataArguments(data_dir=str(data_with_extras)), ["sst"])
    # 16 course sentences + the two trees' 5 labelled nodes each (sentence, phrases, words), all distinct
    assert len(train["sst"]) == 16 + 10
    assert reports[0].rows == len(train["sst"])


def test_train_sources_names_a_tasks_files(data_with_extras):
    args = DataArguments(data_dir=str(data_with_extras), train_sources=["para=quora-train-extra.csv"])
    train, _, _ = load_task_data(args, ["sst", "para"])
    assert len(train["para"]) == 6 and len(train["sst"]) > 16


def test_train_sources_for_a_task_not_trained_is_an_error(data_with_extras):
    args = DataArguments(data_dir=str(data_with_extras), train_sources=["sts=sts-train.csv"])
    with pytest.raises(ValueError, match="--train_sources: sts is not a training task"):
        training_sources(args, ["sst", "para"])


def test_a_missing_source_file_is_an_error_naming_it(data_with_extras):
    args = DataArguments(data_dir=str(data_with_extras), train_sources=["sst=ids-sst-train.csv,nope.txt"])
    with pytest.raises(ValueError, match="nope.txt: no such file"):
        training_sources(args, ["sst"])


def test_a_treebank_phrase_equal_to_a_dev_sentence_is_not_trained_on(data_with_extras, tmp_path):
    folder = tmp_path / "data"
    folder.mkdir()
    for path in data_with_extras.iterdir():
        (folder / path.name).write_bytes(path.read_bytes())
    dev = tiny_task_rows(n=8, seed=2)["sst"].map(lambda row, i: {"sentence": " witty film"} if i == 0 else row,
                                                with_indices=True)
    write_task_files(folder, {"sst": dev}, split="dev")
    train, _, _ = load_task_data(DataArguments(data_dir=str(folder)), ["sst"])
    assert "witty film" not in {" ".join(sentence.split()) for sentence in train["sst"]["sentence"]}


def test_a_tasks_first_source_rows_are_read_whole_every_epoch_by_default(data_with_extras):
    _, _, reports = load_task_data(DataArguments(data_dir=str(data_with_extras)), ["sst", "para", "sts"])
    assert always_rows(reports, DataArguments(data_dir=str(data_with_extras))) == {"sst": 16, "para": 16}


def test_first_source_every_epoch_false_lets_the_cap_apply_to_all_rows(data_with_extras):
    args = DataArguments(data_dir=str(data_with_extras), first_source_every_epoch=False)
    _, _, reports = load_task_data(args, ["sst"])
    assert always_rows(reports, args) == {}


def test_the_first_sources_rows_are_counted_among_the_rows_trained_on(data_with_extras):
    args = DataArguments(data_dir=str(data_with_extras), max_train_samples=10)
    _, _, reports = load_task_data(args, ["sst"])
    assert always_rows(reports, args) == {"sst": 10}


@pytest.mark.slow
def test_metrics_and_card_say_which_files_gave_how_many_rows(base, data_with_extras, tmp_path):  # noqa: F811
    output = tmp_path / "model"
    assert minbert(["train", "--model_name_or_path", str(base), "--data_dir", str(data_with_extras),
                    "--output_dir", str(output), *TINY_RUN]) == 0
    record = json.loads((output / "metrics.json").read_text())["training_data"]
    assert record["para"] == {"rows": 22, "overlapping_rows_dropped": 0,
                              "sources": {"quora-train.csv": 16, "quora-train-extra.csv": 6}}
    assert record["sst"]["sources"]["ids-sst-train.csv"] == 16
    card = (output / "README.md").read_text()
    assert "`quora-train-extra.csv` 6" in card and "`sst-train-trees.txt`" in card
