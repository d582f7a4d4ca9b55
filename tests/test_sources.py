"""Several training sources per task: read by format, concatenated in the task schema, overlaps between
sources dropped and reported (never counted twice), and the default sources of a data folder."""
import json

import pytest

from hf_minbert.data import (
    DataError,
    PhraseOptions,
    default_training_sources,
    parse_sources,
    parse_task_sources,
    read_task_file,
    read_training_sources,
    task_schema,
)
from tests.conftest import SHARED_DATA

SST_HEADER = "\tid\tsentence\tsentiment"
QUORA_HEADER = "\tid\tsentence1\tsentence2\tis_duplicate"


def write(folder, name, lines):
    path = folder / name
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


def write_sst_csv_and_trees(folder):
    """A CSV of two sentences and the trees of the same two sentences: the trees' roots are the CSV rows."""
    write(folder, "ids-sst-train.csv", [SST_HEADER, "0\ts-0\t A film is great .\t3", "1\ts-1\t Dull .\t0"])
    trees = ["(3 (2 (2 A) (2 film)) (4 (3 (2 is) (4 great)) (2 .)))", "(0 (0 Dull) (2 .))"]
    write(folder, "sst-train-trees.txt", trees)


def test_sst_csv_and_its_trees_combine_with_the_roots_dropped_as_overlaps(tmp_path):
    write_sst_csv_and_trees(tmp_path)
    dataset, report = read_training_sources("sst", "ids-sst-train.csv,sst-train-trees.txt", data_dir=tmp_path)
    csv, trees = report.sources
    assert dataset["id"][:2] == ["s-0", "s-1"]  # the first source's rows are the ones kept
    assert (csv.kept, trees.rows_read, trees.kept) == (2, 11, 9)
    assert trees.overlaps == {str(tmp_path / "ids-sst-train.csv"): 2} and trees.same_text == 2
    assert len(dataset) == report.rows == 11 and report.overlapping_rows == 2


def test_combined_rows_have_exactly_the_task_schema(tmp_path):
    write_sst_csv_and_trees(tmp_path)
    dataset, _ = read_training_sources("sst", "ids-sst-train.csv,sst-train-trees.txt", data_dir=tmp_path)
    assert dataset.features == task_schema("sst").features(labelled=True)


def test_the_first_source_listed_wins_an_overlap(tmp_path):
    write_sst_csv_and_trees(tmp_path)
    dataset, report = read_training_sources("sst", "sst-train-trees.txt,ids-sst-train.csv", data_dir=tmp_path)
    assert "s-0" not in dataset["id"] and report.sources[1].kept == 0


def test_a_pair_repeated_in_the_other_order_is_an_overlap(tmp_path):
    write(tmp_path, "quora-train.csv", [QUORA_HEADER, "1\tq-1\tHow?\tWhy?\t1.0", "2\tq-2\tA?\tB?\t0.0"])
    write(tmp_path, "quora-train-extra.csv", [QUORA_HEADER, "3\tq-3\tWhy?\t How? \t1.0", "4\tq-4\tC?\tD?\t0.0"])
    dataset, report = read_training_sources("para", "quora-train.csv,quora-train-extra.csv", data_dir=tmp_path)
    assert dataset["id"] == ["q-1", "q-2", "q-4"]
    assert report.sources[1].same_text == 1


def test_a_pair_differing_from_an_earlier_one_in_case_accents_and_spacing_is_an_overlap(tmp_path):
    # The base models are uncased: both rows reach the model as the same ids, here with opposite labels.
    write(tmp_path, "quora-train.csv", [QUORA_HEADER, '1\tq-1\tWhat is "Quora"?\tIs it a café?\t1.0'])
    write(tmp_path, "quora-train-extra.csv", [QUORA_HEADER, '2\tq-2\twhat is " QUORA " ?\tis it a Cafe?\t0.0'])
    dataset, report = read_training_sources("para", "quora-train.csv,quora-train-extra.csv", data_dir=tmp_path)
    assert dataset["id"] == ["q-1"]
    assert (report.sources[1].same_text, report.sources[1].label_conflicts) == (1, 1)


def test_a_training_row_equal_to_an_evaluation_row_but_for_case_is_dropped(tmp_path):
    write(tmp_path, "ids-sst-train.csv", [SST_HEADER, "0\ts-0\t this is it .\t2", "1\ts-1\t Dull .\t0"])
    dataset, report = read_training_sources("sst", "ids-sst-train.csv", data_dir=tmp_path, exclude_texts=["This is it."])
    assert dataset["id"] == ["s-1"] and report.evaluation_rows_dropped == 1


def write_numbered_sst(folder, name, sentences):
    """An SST file whose ids are 0, 1, ... as a file numbered on its own has them."""
    lines = [SST_HEADER, *(f"{i}\t{i}\t {sentence}\t{i % 5}" for i, sentence in enumerate(sentences))]
    return write(folder, name, lines)


def test_rows_sharing_only_their_ids_with_an_earlier_source_are_kept(tmp_path):
    write_numbered_sst(tmp_path, "my-sst-a.tsv", [f"first file sentence {i} ." for i in range(20)])
    write_numbered_sst(tmp_path, "my-sst-b.tsv", [f"second file sentence {i} ." for i in range(20)])
    dataset, report = read_training_sources("sst", "my-sst-a.tsv,my-sst-b.tsv", data_dir=tmp_path)
    assert len(dataset) == 40 and report.overlapping_rows == 0


def test_the_report_counts_the_rows_that_share_only_an_id_with_an_earlier_source(tmp_path):
    write_numbered_sst(tmp_path, "my-sst-a.tsv", [f"first file sentence {i} ." for i in range(20)])
    write_numbered_sst(tmp_path, "my-sst-b.tsv", [f"second file sentence {i} ." for i in range(20)])
    _, report = read_training_sources("sst", "my-sst-a.tsv,my-sst-b.tsv", data_dir=tmp_path)
    assert report.sources[1].shared_ids == 20
    assert "20 kept sharing only an id (not the text) with an earlier file's row" in str(report)


def test_a_row_repeating_an_earlier_rows_text_and_id_is_an_overlap_counted_as_same_id(tmp_path):
    write(tmp_path, "quora-train.csv", [QUORA_HEADER, "1\tq-1\tHow?\tWhy?\t1.0"])
    write(tmp_path, "quora-train-extra.csv", [QUORA_HEADER, "3\tq-1\tHow?\tWhy?\t1.0", "4\tq-4\tC?\tD?\t0.0"])
    dataset, report = read_training_sources("para", "quora-train.csv,quora-train-extra.csv", data_dir=tmp_path)
    assert dataset["id"] == ["q-1", "q-4"] and (report.sources[1].same_id, report.sources[1].same_text) == (1, 0)


def test_a_training_row_equal_to_an_evaluation_row_is_dropped_from_a_table_source(tmp_path):
    write(tmp_path, "ids-sst-train.csv", [SST_HEADER, "0\ts-0\t A film is great .\t3", "1\ts-1\t Dull .\t0"])
    dataset, report = read_training_sources("sst", "ids-sst-train.csv", data_dir=tmp_path,
                                            exclude_texts=[" Dull  ."])
    assert dataset["id"] == ["s-0"] and report.sources[0].evaluation_rows == 1


def test_a_training_pair_equal_to_an_evaluation_pair_in_the_other_order_is_dropped(tmp_path):
    write(tmp_path, "quora-train.csv", [QUORA_HEADER, "1\tq-1\tHow?\tWhy?\t1.0", "2\tq-2\tA?\tB?\t0.0"])
    dataset, report = read_training_sources("para", "quora-train.csv", data_dir=tmp_path,
                                            exclude_texts=[("Why?", "How?")])
    assert dataset["id"] == ["q-2"] and report.evaluation_rows_dropped == 1


def test_the_evaluation_rows_dropped_count_the_tree_readers_phrases_too(tmp_path):
    write_sst_csv_and_trees(tmp_path)
    _, report = read_training_sources("sst", "ids-sst-train.csv,sst-train-trees.txt", data_dir=tmp_path,
                                      exclude_texts=[" Dull ."])
    csv, trees = report.sources
    assert (csv.evaluation_rows_dropped, trees.evaluation_rows_dropped) == (1, 1)  # the CSV row, the tree's root
    assert report.as_dict()["evaluation_rows_dropped"] == 2


def test_a_task_whose_every_training_row_equals_an_evaluation_row_is_an_error(tmp_path):
    write(tmp_path, "ids-sst-dev.csv", [SST_HEADER, "0\ts-0\t Dull .\t0"])
    with pytest.raises(DataError, match=r"sst: no training rows left in .*ids-sst-dev\.csv"):
        read_training_sources("sst", "ids-sst-dev.csv", data_dir=tmp_path, exclude_texts=[" Dull ."])


def test_sources_are_named_by_their_path_inside_the_data_folder(tmp_path):
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        write_numbered_sst(tmp_path / folder, "train.tsv", [f"{folder} sentence {i} ." for i in range(3)])
    _, report = read_training_sources("sst", "a/train.tsv,b/train.tsv", data_dir=tmp_path)
    assert report.rows_per_source() == {"a/train.tsv": 3, "b/train.tsv": 3}


def test_a_tree_source_with_too_many_malformed_trees_is_an_error_naming_the_share(tmp_path):
    write(tmp_path, "sst-train-trees.txt", ["(0 (0 Dull) (2 .))", "(0 (0 Dull) (2 .)", "(3 (3 Fine) (2 .)"])
    with pytest.raises(DataError, match=r"sst-train-trees\.txt: 2 of 3 trees are bad, more than the share "
                                        r"max_bad_row_share=0\.05 allows .*first: line 2: malformed tree"):
        read_training_sources("sst", "sst-train-trees.txt", data_dir=tmp_path, skip_bad_rows=True,
                              max_bad_row_share=0.05)


def test_an_overlap_with_another_label_is_counted_as_a_label_conflict(tmp_path):
    write(tmp_path, "quora-train.csv", [QUORA_HEADER, "1\tq-1\tHow?\tWhy?\t1.0"])
    write(tmp_path, "quora-train-extra.csv", [QUORA_HEADER, "3\tq-3\tHow?\tWhy?\t0.0", "4\tq-4\tC?\tD?\t0.0"])
    _, report = read_training_sources("para", "quora-train.csv,quora-train-extra.csv", data_dir=tmp_path)
    assert report.sources[1].label_conflicts == 1
    assert "1 with another label" in str(report)


def test_repeats_inside_one_source_are_kept_as_the_data_has_them(tmp_path):
    write(tmp_path, "quora-train.csv", [QUORA_HEADER, "1\tq-1\tHow?\tWhy?\t1.0", "2\tq-2\tHow?\tWhy?\t1.0"])
    write(tmp_path, "quora-train-extra.csv", [QUORA_HEADER, "4\tq-4\tC?\tD?\t0.0"])
    dataset, report = read_training_sources("para", "quora-train.csv,quora-train-extra.csv", data_dir=tmp_path)
    assert len(dataset) == 3 and report.sources[0].read.repeated_texts == 1 and report.overlapping_rows == 0


def test_phrase_options_and_evaluation_sentences_apply_to_tree_sources(tmp_path):
    write_sst_csv_and_trees(tmp_path)
    dataset, report = read_training_sources(
        "sst", "ids-sst-train.csv,sst-train-trees.txt", data_dir=tmp_path,
        phrase_options=PhraseOptions(min_tokens=2), exclude_texts=[" is great"],
    )
    assert " is great" not in dataset["sentence"] and " film" not in dataset["sentence"]
    assert report.sources[1].read.excluded == ["sst-train-trees-1-5"]


def test_bad_rows_of_a_source_are_reported_with_their_lines(tmp_path):
    write(tmp_path, "quora-train.csv", [QUORA_HEADER, "1\tq-1\tHow?\tWhy?\t1.0", "2\tq-2\tA?\tB?\t"])
    write(tmp_path, "quora-train-extra.csv", [QUORA_HEADER, "4\tq-4\tC?\tD?\t0.0"])
    _, report = read_training_sources("para", "quora-train.csv,quora-train-extra.csv", data_dir=tmp_path,
                                      skip_bad_rows=True)
    assert report.sources[0].bad_rows == 1 and report.sources[0].read.skipped_lines == [3]
    assert "1 bad row(s) skipped, first at 3" in str(report)


def test_the_report_summary_is_json_ready_and_names_each_source(tmp_path):
    write_sst_csv_and_trees(tmp_path)
    _, report = read_training_sources("sst", "ids-sst-train.csv,sst-train-trees.txt", data_dir=tmp_path)
    summary = json.loads(json.dumps(report.as_dict()))
    trees = summary["sources"][str(tmp_path / "sst-train-trees.txt")]
    assert summary["rows"] == 11 and (trees["rows_read"], trees["rows_kept"]) == (11, 9)
    assert (trees["read"]["phrases"], trees["read"]["duplicates"]) == (12, 1)  # " ." is in both trees


# ------------------------------------------------------------------------------------------------------
# Naming sources
# ------------------------------------------------------------------------------------------------------


def test_a_spec_names_files_inside_the_data_folder(tmp_path):
    assert parse_sources("a.csv, b.txt", data_dir=tmp_path) == [tmp_path / "a.csv", tmp_path / "b.txt"]


def test_a_task_sources_flag_value_is_task_equals_files(tmp_path):
    assert parse_task_sources("para=quora-train.csv,quora-train-extra.csv", tmp_path) == (
        "para", [tmp_path / "quora-train.csv", tmp_path / "quora-train-extra.csv"]
    )


@pytest.mark.parametrize(
    "value, message",
    [
        ("quora-train.csv", r"expected task=file\[,file...\]"),
        ("qqp=quora-train.csv", "unknown task 'qqp'"),
        ("para=a.csv,,b.csv", "empty source name"),
    ],
)
def test_a_malformed_task_sources_value_is_refused_with_its_reason(value, message):
    with pytest.raises(ValueError, match=message):
        parse_task_sources(value)


def test_a_source_of_unknown_format_is_refused_before_reading_anything(tmp_path):
    with pytest.raises(ValueError, match=r"extra\.json: cannot tell the format from the extension '\.json'"):
        read_training_sources("para", "extra.json", data_dir=tmp_path)


def test_a_tree_file_is_refused_for_a_task_other_than_sst(tmp_path):
    with pytest.raises(ValueError, match="holds sst phrases, not para rows"):
        read_training_sources("para", "sst-train-trees.txt", data_dir=tmp_path)


def test_a_source_listed_twice_is_refused(tmp_path):
    with pytest.raises(ValueError, match="listed twice"):
        read_training_sources("para", "quora-train.csv,quora-train.csv", data_dir=tmp_path)


def test_a_missing_source_file_is_an_error_naming_it(tmp_path):
    write(tmp_path, "quora-train.csv", [QUORA_HEADER, "1\tq-1\tHow?\tWhy?\t1.0"])
    with pytest.raises(FileNotFoundError, match=r"quora-train-extra\.csv"):
        read_training_sources("para", "quora-train.csv,quora-train-extra.csv", data_dir=tmp_path)


def test_a_malformed_tree_source_is_an_error_naming_its_line(tmp_path):
    write(tmp_path, "ids-sst-train.csv", [SST_HEADER, "0\ts-0\t Dull .\t0"])
    write(tmp_path, "sst-train-trees.txt", ["(0 (0 Dull) (2 .))", "(0 (0 Dull) (2 .)"])
    with pytest.raises(DataError, match=r"sst-train-trees\.txt, line 2: malformed tree at character 18"):
        read_training_sources("sst", "ids-sst-train.csv,sst-train-trees.txt", data_dir=tmp_path)


# ------------------------------------------------------------------------------------------------------
# Default sources of a data folder
# ------------------------------------------------------------------------------------------------------


def test_default_sources_add_the_extra_files_that_are_present(tmp_path):
    write(tmp_path, "quora-train-extra.csv", [QUORA_HEADER])
    write(tmp_path, "sst-train-trees.txt", ["(0 (0 Dull) (2 .))"])
    sources = default_training_sources(tmp_path)
    assert sources["sst"] == [tmp_path / "ids-sst-train.csv", tmp_path / "sst-train-trees.txt"]
    assert sources["para"] == [tmp_path / "quora-train.csv", tmp_path / "quora-train-extra.csv"]
    assert sources["sts"] == [tmp_path / "sts-train.csv"]


def test_default_sources_are_the_course_files_alone_when_the_extras_are_absent(tmp_path):
    sources = default_training_sources(tmp_path, tasks=("sst", "para"))
    assert sources == {"sst": [tmp_path / "ids-sst-train.csv"], "para": [tmp_path / "quora-train.csv"]}


# ------------------------------------------------------------------------------------------------------
# The real files in ../shared/data
# ------------------------------------------------------------------------------------------------------

needs_extras = pytest.mark.skipif(
    not (SHARED_DATA / "quora-train-extra.csv").is_file(), reason="quora-train-extra.csv is absent on this machine"
)


@pytest.mark.slow
@needs_extras
def test_real_quora_sources_give_the_readme_28719_pairs_without_overlap():
    sources = default_training_sources(SHARED_DATA, tasks=("para",))["para"]
    dataset, report = read_training_sources("para", sources, skip_bad_rows=True)
    assert len(dataset) == 28719 and report.overlapping_rows == 0


@pytest.mark.slow
@needs_extras
def test_real_sst_sources_drop_the_trees_roots_as_repeats_of_the_csv_sentences():
    sources = default_training_sources(SHARED_DATA, tasks=("sst",))["sst"]
    _, report = read_training_sources("sst", sources)
    csv, trees = report.sources
    assert csv.kept == 8544 and trees.same_id == 0
    # The CSV's 8534 distinct sentences, their roots carrying their labels, and two inner phrases that are
    # sentences of the CSV to an uncased model: " stay away ." (as "Stay away .", label 0) and " no. ." (label 2,
    # the CSV's "No. ." 1: the CSV's label is kept, the conflict counted).
    assert trees.overlaps == {csv.source: 8534 + 2}
    assert trees.label_conflicts == 1


@pytest.mark.slow
@pytest.mark.skipif(not SHARED_DATA.is_dir(), reason="the course data folder is absent on this machine")
@pytest.mark.parametrize("task, dropped", [("sst", 1), ("sts", 17)])
def test_real_course_train_files_repeat_few_dev_rows_which_are_dropped(task, dropped):
    """ids-sst-train.csv holds one sentence of ids-sst-dev.csv; sts-train.csv 17 pairs of sts-dev.csv (13 in the
    same order, 4 swapped). quora-train.csv and quora-train-extra.csv hold none of quora-dev.csv's pairs."""
    schema = task_schema(task)
    dev, _ = read_task_file(SHARED_DATA / schema.file_name("dev"), task)
    texts = list(zip(*(dev[column] for column in schema.text_columns)))
    _, report = read_training_sources(task, [SHARED_DATA / schema.file_name("train")], exclude_texts=texts)
    assert report.evaluation_rows_dropped == dropped


@pytest.fixture
def entailment():
    """A pair task whose label depends on the order: (b, a) is another example than (a, b)."""
    from hf_minbert.data import TASK_SCHEMAS, TaskSchema, register_task_schema

    register_task_schema(TaskSchema("rte", ("premise", "hypothesis"), "label", "int64", label_values=(0, 1)))
    yield
    TASK_SCHEMAS.pop("rte")


def test_a_pair_of_an_ordered_task_in_the_other_order_is_another_row(tmp_path, entailment):
    header = "\tid\tpremise\thypothesis\tlabel"
    write(tmp_path, "rte-train.csv", [header, "1\tr-1\tA man sleeps.\tA person sleeps.\t1"])
    write(tmp_path, "rte-more.csv", [header, "2\tr-2\tA person sleeps.\tA man sleeps.\t0"])
    dataset, report = read_training_sources("rte", "rte-train.csv,rte-more.csv", data_dir=tmp_path)
    assert dataset["id"] == ["r-1", "r-2"] and report.overlapping_rows == 0


def test_a_pair_of_an_ordered_task_in_the_other_order_than_an_evaluation_pair_is_kept(tmp_path, entailment):
    header = "\tid\tpremise\thypothesis\tlabel"
    write(tmp_path, "rte-train.csv", [header, "1\tr-1\tA man sleeps.\tA person sleeps.\t1"])
    dataset, report = read_training_sources("rte", "rte-train.csv", data_dir=tmp_path,
                                            exclude_texts=[("A person sleeps.", "A man sleeps.")])
    assert dataset["id"] == ["r-1"] and report.evaluation_rows_dropped == 0


def test_only_a_symmetric_pair_task_is_marked_symmetric():
    assert task_schema("para").symmetric and task_schema("sts").symmetric and not task_schema("sst").symmetric
    from hf_minbert.data import TaskSchema

    with pytest.raises(ValueError, match="True only for a pair task"):
        TaskSchema("mine", ("text",), "label", "int64", label_values=(0, 1), symmetric=True)


def test_the_dev_overlap_benchmark_finds_a_dev_pair_repeated_in_training_in_either_order():
    import datasets

    from tests.helpers import load_benchmark

    benchmark = load_benchmark("dev_overlap")
    train = datasets.Dataset.from_dict({"sentence1": ["A cat sat.", "B"], "sentence2": ["A dog ran.", "C"]})
    dev = datasets.Dataset.from_dict({"sentence1": ["A dog ran.", "D"], "sentence2": ["A cat  sat.", "E"]})
    assert benchmark.repeated_in_training(train, dev).tolist() == [True, False]
