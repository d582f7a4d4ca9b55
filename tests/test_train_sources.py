"""`minbert train` reads every training source a task has: by default the course's file plus the extra files
of the data folder when present (the treebank's phrases, Quora's extra pairs), or the files --train_sources
names; the log, metrics.json and the card say which files gave how many rows."""
import hashlib
import json
import logging

import pytest
from datasets import concatenate_datasets

from hf_minbert.cli import main as minbert
from hf_minbert.commands.train_arguments import DataArguments
from hf_minbert.commands.train_data import always_rows, load_task_data, training_data_record, training_sources
from hf_minbert.data import DataError
from tests.helpers import refused_calls, tiny_task_rows, write_task_files
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


def test_a_folder_by_an_extra_files_name_is_refused_not_left_out(tmp_path, course_data):
    for path in course_data.iterdir():
        (tmp_path / path.name).write_bytes(path.read_bytes())
    (tmp_path / "sst-train-trees.txt").mkdir()
    with pytest.raises(ValueError, match=r"sst training source .*sst-train-trees.txt: not a file"):
        training_sources(DataArguments(data_dir=str(tmp_path)), ["sst", "para", "sts"])


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


@pytest.mark.parametrize("value", ["cola=x.csv", "sst=", "sst"])
def test_a_malformed_train_sources_value_is_an_error_naming_the_flag(data_with_extras, value):
    args = DataArguments(data_dir=str(data_with_extras), train_sources=[value])
    with pytest.raises(ValueError, match="^--train_sources: "):
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
    assert {key: record["para"][key] for key in ("rows", "overlapping_rows_dropped", "sources")} == {
        "rows": 22, "overlapping_rows_dropped": 0, "sources": {"quora-train.csv": 16, "quora-train-extra.csv": 6}}
    assert record["sst"]["sources"]["ids-sst-train.csv"] == 16
    card = (output / "README.md").read_text()
    assert "`quora-train-extra.csv` 6" in card and "`sst-train-trees.txt`" in card


def copy_of(folder, tmp_path):
    copy = tmp_path / "data"
    copy.mkdir()
    for path in folder.iterdir():
        (copy / path.name).write_bytes(path.read_bytes())
    return copy


def test_dev_rows_named_among_a_tasks_train_sources_are_not_trained_on(course_data, tmp_path):
    folder = copy_of(course_data, tmp_path)
    dev = tiny_task_rows(n=8, seed=2)["sst"].map(lambda row: {"id": "dev-" + row["id"]})  # ids no train row has
    write_task_files(folder, {"sst": dev}, split="dev")
    args = DataArguments(data_dir=str(folder), train_sources=["sst=ids-sst-train.csv,ids-sst-dev.csv"])
    train, _, _ = load_task_data(args, ["sst"])
    assert len(train["sst"]) == 16 and not set(dev["sentence"]) & set(train["sst"]["sentence"])


def test_a_training_pair_equal_to_a_dev_pair_in_either_order_is_not_trained_on(course_data, tmp_path):
    folder = copy_of(course_data, tmp_path)
    dev = tiny_task_rows(n=8, seed=2)["sts"]
    swapped = dev.select([0]).map(lambda row: {"id": "t-swapped", "sentence1": row["sentence2"],
                                               "sentence2": row["sentence1"]})
    write_task_files(folder, {"sts": concatenate_datasets([tiny_task_rows(n=16, seed=1)["sts"], swapped])}, "train")
    train, _, _ = load_task_data(DataArguments(data_dir=str(folder)), ["sts"])
    assert len(train["sts"]) == 16 and "t-swapped" not in train["sts"]["id"]


def test_dropping_training_rows_equal_to_dev_rows_is_a_warning_naming_the_task_and_count(course_data, caplog):
    args = DataArguments(data_dir=str(course_data), train_sources=["sst=ids-sst-train.csv,ids-sst-dev.csv"])
    with caplog.at_level(logging.INFO, logger="minbert.train"):
        load_task_data(args, ["sst"])
    warnings = [record.getMessage() for record in caplog.records if record.levelno == logging.WARNING]
    assert any(message.startswith("sst: dropped 8 training row(s) whose text equals a row of the dev file")
               and "ids-sst-dev.csv 8" in message for message in warnings)


def test_the_training_data_record_counts_the_dev_rows_dropped(course_data):
    args = DataArguments(data_dir=str(course_data), train_sources=["sst=ids-sst-train.csv,ids-sst-dev.csv"])
    _, _, reports = load_task_data(args, ["sst"])
    assert training_data_record(reports, args)["sst"]["dev_rows_dropped"] == 8


def test_a_task_whose_every_training_row_is_a_dev_row_is_an_error_naming_it(course_data):
    args = DataArguments(data_dir=str(course_data), train_sources=["sts=sts-dev.csv"])
    with pytest.raises(DataError, match=r"sts: no training rows left in .*sts-dev\.csv"):
        load_task_data(args, ["sst", "sts"])


def test_a_task_named_twice_in_train_sources_is_a_one_line_error_naming_the_flag_and_task(capsys):
    code = minbert(["train", "--train_sources", "sst=a.tsv", "sst=b.tsv", "--output_dir", "unused"])
    error = capsys.readouterr().err.strip()
    assert code == 2 and "\n" not in error
    assert "--train_sources names sst 2 times; list its files once, comma-separated: sst=a.tsv,b.tsv" in error


def test_the_training_data_record_names_each_file_by_its_path_inside_the_data_folder(course_data, tmp_path):
    folder = copy_of(course_data, tmp_path)
    for name, seed in (("a", 5), ("b", 6)):
        (folder / name).mkdir()
        write_task_files(folder / name, {"sst": tiny_task_rows(n=20, seed=seed)["sst"]}, split="train")
        (folder / name / "ids-sst-train.csv").rename(folder / name / "train.tsv")
    args = DataArguments(data_dir=str(folder), train_sources=["sst=a/train.tsv,b/train.tsv"])
    _, _, reports = load_task_data(args, ["sst"])
    assert training_data_record(reports, args)["sst"]["sources"] == {"a/train.tsv": 20, "b/train.tsv": 20}


def test_a_file_with_more_bad_rows_than_the_default_share_is_an_error_naming_it(course_data, tmp_path):
    folder = copy_of(course_data, tmp_path)
    ten_point = tiny_task_rows(n=16, seed=1)["sts"].map(lambda row: {"similarity": row["similarity"] * 2})
    write_task_files(folder, {"sts": ten_point}, split="train")  # an STS file scored 0..10
    with pytest.raises(DataError, match=r"sts-train\.csv: \d+ of 16 rows are bad, more than the share "
                                        r"max_bad_row_share=0\.05 allows"):
        load_task_data(DataArguments(data_dir=str(folder)), ["sts"])


@pytest.mark.parametrize("share", [-0.1, 1.5, float("nan")])
def test_a_max_bad_row_share_outside_zero_to_one_is_refused(share):
    with pytest.raises(ValueError, match="--max_bad_row_share is a share of a file's rows, in"):
        DataArguments(max_bad_row_share=share)


def test_the_training_data_record_states_the_rows_trained_on_after_the_cap_and_the_held_out_fold(course_data):
    args = DataArguments(data_dir=str(course_data), num_folds=3, held_out_fold=0, max_train_samples=10)
    train, _, reports = load_task_data(args, ["sst"])
    record = training_data_record(reports, args)["sst"]
    assert record["rows_trained"] == sum(record["sources_trained"].values()) == len(train["sst"]) < 10
    assert record["rows"] == record["sources"]["ids-sst-train.csv"] == 16  # the rows the file gave


def test_the_training_data_record_names_the_held_out_fold_and_the_cap(course_data):
    args = DataArguments(data_dir=str(course_data), num_folds=3, held_out_fold=0, max_train_samples=10)
    _, _, reports = load_task_data(args, ["sst"])
    assert training_data_record(reports, args)["sst"]["selection"] == {
        "max_train_samples": 10, "num_folds": 3, "held_out_fold": 0, "fold_seed": 0}


def test_the_training_data_record_holds_each_training_files_sha256(data_with_extras):
    args = DataArguments(data_dir=str(data_with_extras))
    _, _, reports = load_task_data(args, ["para"])
    assert training_data_record(reports, args)["para"]["sha256"] == {
        name: hashlib.sha256((data_with_extras / name).read_bytes()).hexdigest()
        for name in ("quora-train.csv", "quora-train-extra.csv")}


def test_the_training_data_record_names_the_dev_file_its_rows_scored_and_its_sha256(course_data):
    args = DataArguments(data_dir=str(course_data), max_eval_samples=5)
    _, _, reports = load_task_data(args, ["sts"])
    assert training_data_record(reports, args)["sts"]["dev"] == {
        "file": "sts-dev.csv", "rows": 5, "sha256": hashlib.sha256((course_data / "sts-dev.csv").read_bytes()).hexdigest()}


def test_each_file_is_credited_with_its_own_rows_among_the_capped_rows(data_with_extras):
    args = DataArguments(data_dir=str(data_with_extras), max_train_samples=20)
    _, _, reports = load_task_data(args, ["para"])
    assert training_data_record(reports, args)["para"]["sources_trained"] == {"quora-train.csv": 16,
                                                                        "quora-train-extra.csv": 4}


def test_a_dev_file_named_by_flag_is_read_instead_of_the_data_folders(course_data, tmp_path):
    write_task_files(tmp_path, {"sst": tiny_task_rows(n=5, seed=7)["sst"]}, split="dev")
    args = DataArguments(data_dir=str(course_data), sst_dev=str(tmp_path / "ids-sst-dev.csv"))
    _, dev, reports = load_task_data(args, ["sst", "sts"])
    assert (len(dev["sst"]), len(dev["sts"])) == (5, 8) and reports[1].source == str(tmp_path / "ids-sst-dev.csv")


def test_a_dev_file_named_by_flag_takes_part_in_the_dev_row_check(course_data, tmp_path):
    write_task_files(tmp_path, {"sst": tiny_task_rows(n=16, seed=1)["sst"].select(range(3))}, split="dev")
    args = DataArguments(data_dir=str(course_data), sst_dev=str(tmp_path / "ids-sst-dev.csv"))
    train, _, _ = load_task_data(args, ["sst"])
    assert len(train["sst"]) == 13  # the course's 16 train rows less the 3 the dev file repeats


def test_a_missing_dev_file_is_an_error_naming_its_flag_before_any_file_is_read(course_data, monkeypatch):
    import hf_minbert.data

    calls = refused_calls(monkeypatch, hf_minbert.data, "read_task_file")
    args = DataArguments(data_dir=str(course_data), sts_dev="nowhere/sts-dev.csv")
    with pytest.raises(ValueError, match=r"^--sts_dev nowhere/sts-dev\.csv: no such file$"):
        load_task_data(args, ["sst", "sts"])
    assert calls == []
