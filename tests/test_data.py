"""Task data: CS224N file readers (schema, irregular quoting, bad rows), Hub layouts, tokenization,
padding and length grouping."""
import json

import datasets
import numpy as np
import pandas as pd
import pytest
import torch

from hf_minbert.data import (
    DataError,
    MultitaskDataCollator,
    assign_folds,
    example_lengths,
    length_grouped_sampler,
    length_sorted_batches,
    load_hub_task,
    read_task_file,
    read_task_splits,
    rows_outside_fold,
    tokenize_for_sequence_classification,
    tokenize_task,
)
from tests.conftest import SHARED_DATA
from tests.helpers import word_tokenizer

WORDS = "a fine film is it how so why not the cat sat on mat dull . ? ,".split()


def write_file(folder, name, lines):
    """Write a task file exactly as given: tab-separated lines, first field the unnamed index."""
    path = folder / name
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


SST_LINES = [
    "\tid\tsentence\tsentiment",
    "0\tsst-0\t It 's a fine film .\t3",
    "1\tsst-1\t The `` Conan '' film is dull .\t0",
    "2\tsst-2\t\" \"\"\"\"\"\" I vaguely remember Ben .\"\t4",
]
QUORA_LINES = [
    "\tid\tsentence1\tsentence2\tis_duplicate",
    "318737\tq-0\t\"\"\"Which is it? Do I need \"\"\"\"the\"\"\"\" here?\"\"\"\tWhich one?\t0.0",
    "33201\tq-1\tHow can I be good?\tHow can I be better?\t1.0",
]
# Reproduces quora-train.csv's two rows with unbalanced quotes in the source: no label after parsing.
QUORA_UNLABELLED_LINES = [
    "65479\tq-2\tAny idea of dresses?\t\"\"\"Where can I find a dress?\"\t",
    "264614\tq-3\t\"\"\"Given a set of busy time intervals?\"\t\t",
]
STS_LINES = [
    "\tid\tsentence1\tsentence2\tsimilarity",
    "5739\tsts-0\tUN chief welcomes elections\tUN chief condemns attack\t1.0",
    "7729\tsts-1\tTwo black dogs play.\tTwo black dogs are playing.\t4.6",
]
CFIMDB_LINES = ["\tid\tsentence\tsentiment", "0\tc-0\t I was never quite sure .\t0", "1\tc-1\t A fine film .\t1"]
SST_TEST_LINES = [
    "0\t\tid\tsentence",
    "1\t0.0\tsst-t0\t Effective but too-tepid biopic",
    "2\t1.0\tsst-t1\t A fine film .",
]


# ------------------------------------------------------------------------------------------------------
# CS224N files: schema per task
# ------------------------------------------------------------------------------------------------------


def test_sst_file_reads_into_id_sentence_and_integer_sentiment(tmp_path):
    dataset, report = read_task_file(write_file(tmp_path, "ids-sst-dev.csv", SST_LINES), "sst")
    assert dataset.column_names == ["id", "sentence", "sentiment"]
    assert dataset["id"] == ["sst-0", "sst-1", "sst-2"]
    assert dataset["sentiment"] == [3, 0, 4] and dataset.features["sentiment"].dtype == "int64"
    assert report.rows == 3 and not report.skipped


def test_sst_sentence_keeps_its_text_exactly_including_the_leading_space(tmp_path):
    dataset, _ = read_task_file(write_file(tmp_path, "ids-sst-dev.csv", SST_LINES), "sst")
    assert dataset["sentence"][1] == " The `` Conan '' film is dull ."


def test_quora_file_reads_is_duplicate_as_float_zero_or_one(tmp_path):
    dataset, _ = read_task_file(write_file(tmp_path, "quora-dev.csv", QUORA_LINES), "para")
    assert dataset.column_names == ["id", "sentence1", "sentence2", "is_duplicate"]
    assert dataset["is_duplicate"] == [0.0, 1.0] and dataset.features["is_duplicate"].dtype == "float64"


def test_sts_file_reads_similarity_as_float(tmp_path):
    dataset, _ = read_task_file(write_file(tmp_path, "sts-dev.csv", STS_LINES), "sts")
    assert dataset.column_names == ["id", "sentence1", "sentence2", "similarity"]
    assert dataset["similarity"] == [1.0, 4.6]


def test_cfimdb_file_reads_binary_sentiment(tmp_path):
    dataset, _ = read_task_file(write_file(tmp_path, "ids-cfimdb-dev.csv", CFIMDB_LINES), "cfimdb")
    assert dataset["sentiment"] == [0, 1]


def test_a_cfimdb_file_given_as_sst_data_is_an_error_naming_the_file_and_its_task(tmp_path):
    path = write_file(tmp_path, "ids-cfimdb-train.csv", CFIMDB_LINES)  # same columns, 0/1 are valid sst grades
    with pytest.raises(DataError, match=r"ids-cfimdb-train\.csv: named like cfimdb's files .*given as sst data"):
        read_task_file(path, "sst")


def test_an_sst_file_given_as_cfimdb_data_is_an_error_naming_the_file_and_its_task(tmp_path):
    with pytest.raises(DataError, match=r"ids-sst-dev\.csv: named like sst's files .*given as cfimdb data"):
        read_task_file(write_file(tmp_path, "ids-sst-dev.csv", CFIMDB_LINES), "cfimdb")


def test_a_file_named_for_a_task_with_other_columns_is_left_to_the_column_check(tmp_path):
    lines = ["\tid\tsentence1\tsentence2\tis_duplicate", "0\tq-0\tA dog.\tA cat.\t0.0"]
    dataset, _ = read_task_file(write_file(tmp_path, "sts-like-pairs.csv", lines), "para")
    assert dataset["is_duplicate"] == [0.0]


def test_test_student_file_with_extra_float_column_reads_without_labels(tmp_path):
    dataset, _ = read_task_file(write_file(tmp_path, "ids-sst-test-student.csv", SST_TEST_LINES), "sst")
    assert dataset.column_names == ["id", "sentence"]
    assert dataset["id"] == ["sst-t0", "sst-t1"]
    assert dataset["sentence"][0] == " Effective but too-tepid biopic"


def test_sts_test_student_file_reads_without_labels(tmp_path):
    lines = ["\tid\tsentence1\tsentence2", "735\tsts-t0\tA band is performing.\tA band is playing."]
    dataset, _ = read_task_file(write_file(tmp_path, "sts-test-student.csv", lines), "sts")
    assert dataset.column_names == ["id", "sentence1", "sentence2"]


def test_labelled_false_ignores_a_label_column_that_is_present(tmp_path):
    dataset, _ = read_task_file(write_file(tmp_path, "ids-sst-dev.csv", SST_LINES), "sst", labelled=False)
    assert dataset.column_names == ["id", "sentence"]


def test_read_task_splits_reads_train_dev_and_unlabelled_test(tmp_path):
    write_file(tmp_path, "ids-sst-train.csv", SST_LINES)
    write_file(tmp_path, "ids-sst-dev.csv", SST_LINES[:2])
    write_file(tmp_path, "ids-sst-test-student.csv", SST_TEST_LINES)
    splits, reports = read_task_splits(tmp_path, "sst", splits=("train", "dev", "test"))
    assert {name: len(split) for name, split in splits.items()} == {"train": 3, "dev": 1, "test": 2}
    assert "sentiment" not in splits["test"].column_names
    assert reports["train"].rows == 3


# ------------------------------------------------------------------------------------------------------
# Irregular quoting
# ------------------------------------------------------------------------------------------------------


def test_doubled_quotes_inside_a_quoted_field_read_as_the_course_csv_reader_did(tmp_path):
    dataset, _ = read_task_file(write_file(tmp_path, "quora-dev.csv", QUORA_LINES), "para")
    assert dataset["sentence1"][0] == '"Which is it? Do I need ""the"" here?"'


def test_a_quoted_field_opening_with_a_space_and_quote_runs_reads_as_one_sentence(tmp_path):
    dataset, _ = read_task_file(write_file(tmp_path, "ids-sst-dev.csv", SST_LINES), "sst")
    assert dataset["sentence"][2] == ' """ I vaguely remember Ben .'
    assert dataset["sentiment"][2] == 4


def sst_rows_with_an_unclosed_quote(rows, quote_line):
    """An SST file of `rows` rows whose sentence on `quote_line` (header = line 1) opens a quote it never closes."""
    lines = [SST_LINES[0]] + [f"{i}\tsst-{i}\t A fine film number {i} .\t{i % 5}" for i in range(rows)]
    lines[quote_line - 1] = lines[quote_line - 1].replace("\t A fine", '\t"A fine')
    return lines


def test_a_quote_never_closed_is_an_error_naming_the_line_and_column_where_it_opens(tmp_path):
    path = write_file(tmp_path, "ids-sst-dev.csv", sst_rows_with_an_unclosed_quote(40, quote_line=4))
    with pytest.raises(DataError, match=r"ids-sst-dev\.csv, line 4, column 'sentence': a quote opened in this field"):
        read_task_file(path, "sst")


def test_an_unclosed_quote_costs_its_own_row_only_not_the_rows_after_it(tmp_path):
    path = write_file(tmp_path, "ids-sst-dev.csv", sst_rows_with_an_unclosed_quote(40, quote_line=4))
    dataset, report = read_task_file(path, "sst", skip_bad_rows=True)
    assert len(dataset) == 39 and report.skipped_lines == [4]
    assert dataset["id"][3] == "sst-4"  # the row after the bad line reads normally


def test_an_unclosed_quote_in_a_long_file_is_named_at_its_own_line(tmp_path):
    # A quote left open ends with its own line, not at the next quote character further down (line 957 here).
    lines = sst_rows_with_an_unclosed_quote(1200, quote_line=4)
    lines[956] = lines[956].replace(" .\t", ' " .\t')
    with pytest.raises(DataError, match=r"line 4, column 'sentence'"):
        read_task_file(write_file(tmp_path, "ids-sst-dev.csv", lines), "sst")


def test_a_field_opening_with_a_quote_that_closes_before_the_field_ends_is_a_bad_row_naming_it(tmp_path):
    # The csv module would read '"Titanic" is great .' as 'Titanic is great .', both quotes dropped silently.
    lines = [SST_LINES[0], "0\tsst-0\t A fine film .\t3", '1\tsst-1\t"Titanic" is great .\t4']
    with pytest.raises(DataError, match=r"ids-sst-dev\.csv, line 3, column 'sentence': the quote opening this field "
                                        r"closes at character 17, before the field ends"):
        read_task_file(write_file(tmp_path, "ids-sst-dev.csv", lines), "sst")


def test_a_field_quoted_whole_with_its_quotes_doubled_keeps_its_quotes(tmp_path):
    lines = [SST_LINES[0], '0\tsst-0\t"""Titanic"" is great ."\t4']
    dataset, report = read_task_file(write_file(tmp_path, "ids-sst-dev.csv", lines), "sst")
    assert dataset["sentence"] == ['"Titanic" is great .'] and not report.skipped


def test_a_latin_1_file_is_an_error_naming_the_line_and_character_of_the_first_bad_byte(tmp_path):
    path = tmp_path / "ids-sst-dev.csv"
    text = "\n".join(SST_LINES[:3] + ["3\tsst-3\t A caf\u00e9 film .\t2", "4\tsst-4\t Na\u00efve .\t1"]) + "\n"
    path.write_bytes(text.encode("latin-1"))
    with pytest.raises(DataError, match=r"ids-sst-dev\.csv, line 4, character 15: not UTF-8 text \(byte 0xe9\)"):
        read_task_file(path, "sst")


def test_crlf_line_endings_and_a_byte_order_mark_read_like_plain_lines(tmp_path):
    path = tmp_path / "ids-sst-dev.csv"
    path.write_bytes(("\ufeff" + "\r\n".join(SST_LINES) + "\r\n").encode("utf-8"))
    dataset, _ = read_task_file(path, "sst")
    assert dataset["id"] == ["sst-0", "sst-1", "sst-2"] and dataset["sentence"][0] == " It 's a fine film ."


def test_blank_lines_after_the_last_row_hold_no_row(tmp_path):
    dataset, report = read_task_file(write_file(tmp_path, "ids-sst-dev.csv", SST_LINES + ["", "  ", ""]), "sst")
    assert report.rows == 3 and not report.skipped


def test_blank_lines_between_rows_hold_no_row_and_the_lines_after_them_keep_their_numbers(tmp_path):
    lines = SST_LINES[:2] + ["", " \t "] + SST_LINES[2:3] + ["4\tsst-4\t Fine .\t9"]
    with pytest.raises(DataError, match=r"ids-sst-dev\.csv, line 6, column 'sentiment'"):
        read_task_file(write_file(tmp_path, "ids-sst-dev.csv", lines), "sst")
    dataset, report = read_task_file(write_file(tmp_path, "ids-sst-dev.csv", lines[:-1]), "sst")
    assert dataset["id"] == ["sst-0", "sst-1"] and not report.skipped


def test_a_utf_16_file_is_refused_as_utf_16_with_or_without_its_byte_order_mark(tmp_path):
    path = tmp_path / "ids-sst-dev.csv"
    for encoding in ("utf-16", "utf-16-le"):
        path.write_bytes("\n".join(SST_LINES).encode(encoding))
        with pytest.raises(DataError, match=r"ids-sst-dev\.csv: UTF-16 text .*`iconv -f utf-16 -t utf-8`"):
            read_task_file(path, "sst")


def test_a_gzip_compressed_file_is_refused_as_compressed(tmp_path):
    import gzip

    path = tmp_path / "ids-sst-dev.csv"
    path.write_bytes(gzip.compress("\n".join(SST_LINES).encode("utf-8")))
    with pytest.raises(DataError, match=r"ids-sst-dev\.csv: gzip-compressed, not text: decompress it first"):
        read_task_file(path, "sst")


def test_a_nul_character_inside_a_sentence_is_not_taken_for_utf_16(tmp_path):
    lines = SST_LINES[:2] + ["2\tsst-2\t A\x00 fine film .\t3"]
    dataset, _ = read_task_file(write_file(tmp_path, "ids-sst-dev.csv", lines), "sst")
    assert dataset["sentence"][-1] == " A\x00 fine film ."


# ------------------------------------------------------------------------------------------------------
# Bad input: errors name file, line and column; --skip_bad_rows skips and counts
# ------------------------------------------------------------------------------------------------------


def test_quora_row_with_empty_label_is_an_error_naming_file_line_and_column(tmp_path):
    path = write_file(tmp_path, "quora-train.csv", QUORA_LINES + QUORA_UNLABELLED_LINES)
    with pytest.raises(DataError, match=r"quora-train\.csv, line 4, column 'is_duplicate': empty label"):
        read_task_file(path, "para")


def test_skip_bad_rows_drops_the_unlabelled_quora_rows_and_reports_them(tmp_path):
    path = write_file(tmp_path, "quora-train.csv", QUORA_LINES + QUORA_UNLABELLED_LINES)
    dataset, report = read_task_file(path, "para", skip_bad_rows=True)
    assert dataset["id"] == ["q-0", "q-1"]
    assert [bad.location for bad in report.skipped] == ["line 4", "line 5"]
    assert "skipped 2 bad row(s)" in str(report)


def test_missing_file_is_an_error_naming_it(tmp_path):
    with pytest.raises(FileNotFoundError, match="sts data file not found: .*sts-dev.csv"):
        read_task_file(tmp_path / "sts-dev.csv", "sts")


def test_missing_column_is_an_error_naming_file_and_column(tmp_path):
    lines = ["\tid\tsentence1\tsimilarity", "0\tsts-0\tA dog.\t2.0"]
    with pytest.raises(DataError, match=r"sts-dev\.csv, line 1 \(header\): missing column 'sentence2'"):
        read_task_file(write_file(tmp_path, "sts-dev.csv", lines), "sts")


def test_labelled_true_requires_the_label_column(tmp_path):
    path = write_file(tmp_path, "ids-sst-test-student.csv", SST_TEST_LINES)
    with pytest.raises(DataError, match="missing column 'sentiment'"):
        read_task_file(path, "sst", labelled=True)


@pytest.mark.parametrize(
    "task, name, header, row, column, problem",
    [
        ("sst", "ids-sst-dev.csv", SST_LINES[0], "9\tsst-9\t A film .\t5", "sentiment", "not one of the task's labels"),
        ("sst", "ids-sst-dev.csv", SST_LINES[0], "9\tsst-9\t A film .\t2.5", "sentiment", "not one of the task's labels"),
        ("para", "quora-dev.csv", QUORA_LINES[0], "9\tq-9\tA?\tB?\t2.0", "is_duplicate", "not one of the task's labels"),
        ("sts", "sts-dev.csv", STS_LINES[0], "9\tsts-9\tA.\tB.\t5.5", "similarity", r"outside the task's range"),
        ("sts", "sts-dev.csv", STS_LINES[0], "9\tsts-9\tA.\tB.\tnan", "similarity", "is not a number"),
        ("sts", "sts-dev.csv", STS_LINES[0], "9\tsts-9\tA.\tB.\thigh", "similarity", "is not a number"),
        ("sts", "sts-dev.csv", STS_LINES[0], "9\tsts-9\tA.\tB.\t0_5", "similarity", "is not a number"),
        ("sst", "ids-sst-dev.csv", SST_LINES[0], "9\tsst-9\t A film .\t\u0663", "sentiment", "is not a number"),
        ("sts", "sts-dev.csv", STS_LINES[0], "9\tsts-9\t  \tB.\t1.0", "sentence1", "empty sentence"),
        ("sst", "ids-sst-dev.csv", SST_LINES[0], "9\tsst-9\t \u200b\u200d \t1", "sentence", "empty sentence"),
        ("sst", "ids-sst-dev.csv", SST_LINES[0], "9\tsst-9\t \ufffd\ufffd\t1", "sentence", "empty sentence"),
        ("sst", "ids-sst-dev.csv", SST_LINES[0], "9\tsst-9\t\x01\x7f\t1", "sentence", "empty sentence"),
        ("sst", "ids-sst-dev.csv", SST_LINES[0], "9\tsst-9\t \u0301\u0301\t1", "sentence", "empty sentence"),
        ("sst", "ids-sst-dev.csv", SST_LINES[0], "9\tsst-9\t \ue000\t1", "sentence", "empty sentence"),
        ("sst", "ids-sst-dev.csv", SST_LINES[0], "9\t\t A film .\t1", "id", "empty id"),
        ("sst", "ids-sst-dev.csv", SST_LINES[0], "9\tsst-0\t A film .\t1", "id", "repeats the id of line 2"),
        ("sst", "ids-sst-dev.csv", SST_LINES[0], "9\t sst-0 \t A film .\t1", "id", "repeats the id of line 2"),
    ],
)
def test_bad_value_is_an_error_naming_file_line_and_column(tmp_path, task, name, header, row, column, problem):
    first_row = {"sst": SST_LINES[1], "para": QUORA_LINES[1], "sts": STS_LINES[1]}[task]
    path = write_file(tmp_path, name, [header, first_row, row])
    with pytest.raises(DataError, match=rf"{name}, line 3, column '{column}': .*{problem}"):
        read_task_file(path, task)


def test_plainly_written_numbers_are_labels(tmp_path):
    lines = [STS_LINES[0], *(f"{i}\tsts-{i}\tA.\tB.\t{score}" for i, score in enumerate(["3", " 2.5 ", "+1", ".5", "4e0"]))]
    dataset, _ = read_task_file(write_file(tmp_path, "sts-dev.csv", lines), "sts")
    assert dataset["similarity"] == [3.0, 2.5, 1.0, 0.5, 4.0]


def test_an_enclosing_mark_the_tokenizer_reads_as_a_token_is_a_sentence(tmp_path):
    lines = [SST_LINES[0], "0\tsst-0\t \u20dd\t1"]  # U+20DD, an enclosing circle: [UNK], not nothing
    dataset, _ = read_task_file(write_file(tmp_path, "ids-sst-dev.csv", lines), "sst")
    assert dataset["sentence"] == [" \u20dd"]


def test_ids_are_kept_without_surrounding_spaces_as_prediction_files_are_read(tmp_path):
    lines = [SST_LINES[0], "0\t sst-0 \t A film .\t1"]
    dataset, _ = read_task_file(write_file(tmp_path, "ids-sst-dev.csv", lines), "sst")
    assert dataset["id"] == ["sst-0"]


def test_a_sentence_longer_than_the_csv_modules_field_limit_is_read_whole(tmp_path):
    long_sentence = " a" * 100_000
    lines = SST_LINES + [f"3\tsst-3\t{long_sentence}\t2"]
    dataset, _ = read_task_file(write_file(tmp_path, "ids-sst-train.csv", lines), "sst")
    assert dataset["sentence"][-1] == long_sentence


def test_the_read_report_holds_the_sha256_of_the_bytes_read(tmp_path):
    import hashlib

    path = write_file(tmp_path, "ids-sst-train.csv", SST_LINES)
    _, report = read_task_file(path, "sst")
    assert report.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()


def test_row_with_wrong_field_count_is_an_error_naming_the_line(tmp_path):
    path = write_file(tmp_path, "ids-sst-dev.csv", SST_LINES + ["3\tsst-3\t A film .\t1\textra"])
    with pytest.raises(DataError, match=r"line 5: 5 tab-separated fields where the header has 4"):
        read_task_file(path, "sst")


def test_the_read_report_gives_the_skipped_count_and_first_lines_for_logs_and_metrics(tmp_path):
    path = write_file(tmp_path, "quora-train.csv", QUORA_LINES + QUORA_UNLABELLED_LINES)
    _, report = read_task_file(path, "para", skip_bad_rows=True)
    summary = report.as_dict(limit=1)
    assert (report.skipped_count, report.skipped_lines) == (2, [4, 5])
    assert summary["skipped_rows"] == 2 and summary["skipped_lines"] == [4]
    assert summary["first_skipped"] == ["line 4, column 'is_duplicate': empty label"]
    json.dumps(summary)


def test_a_header_naming_a_column_twice_is_an_error_naming_it(tmp_path):
    lines = ["\tid\tsentence1\tsentence2\tsimilarity\tsimilarity"] + [line + "\t0.0" for line in STS_LINES[1:]]
    with pytest.raises(DataError, match=r"sts-dev\.csv, line 1 \(header\): column 'similarity' appears 2 times"):
        read_task_file(write_file(tmp_path, "sts-dev.csv", lines), "sts")


def test_file_whose_rows_are_all_bad_is_an_error_naming_the_first_even_when_skipping(tmp_path):
    path = write_file(tmp_path, "quora-train.csv", QUORA_LINES[:1] + QUORA_UNLABELLED_LINES)
    with pytest.raises(DataError, match=r"no usable para rows \(2 bad rows skipped; the first: line 2, column "
                                        r"'is_duplicate': empty label\)"):
        read_task_file(path, "para", skip_bad_rows=True)


def sts_lines_on_a_0_to_10_scale(rows=20):
    """An STS file scored 0..10, not 0..5: its most similar pairs are out of the task's range."""
    return [STS_LINES[0], *(f"{i}\tsts-{i}\tA dog runs {i}.\tA dog is running {i}.\t{i % 11}" for i in range(rows))]


def test_more_bad_rows_than_the_allowed_share_is_an_error_naming_the_file_count_and_first_bad_row(tmp_path):
    path = write_file(tmp_path, "sts-train.csv", sts_lines_on_a_0_to_10_scale())
    with pytest.raises(DataError, match=r"sts-train\.csv: 8 of 20 rows are bad, more than the share "
                                        r"max_bad_row_share=0\.05 allows \(--max_bad_row_share\); first: line 8, "
                                        r"column 'similarity': label '6' is outside the task's range"):
        read_task_file(path, "sts", skip_bad_rows=True, max_bad_row_share=0.05)


def test_bad_rows_within_the_allowed_share_are_skipped_and_reported(tmp_path):
    path = write_file(tmp_path, "quora-train.csv", QUORA_LINES + QUORA_UNLABELLED_LINES)
    dataset, report = read_task_file(path, "para", skip_bad_rows=True, max_bad_row_share=0.5)
    assert len(dataset) == 2 and report.skipped_count == 2


def test_repeated_texts_are_kept_and_counted(tmp_path):
    lines = SST_LINES + ["3\tsst-3\t It 's a fine film .\t3"]
    dataset, report = read_task_file(write_file(tmp_path, "ids-sst-train.csv", lines), "sst")
    assert len(dataset) == 4 and report.repeated_texts == 1


# ------------------------------------------------------------------------------------------------------
# The real files in ../shared/data
# ------------------------------------------------------------------------------------------------------

README_ROWS = {  # file -> (task, rows in /work/shared/data/README.md)
    "ids-sst-train.csv": ("sst", 8544),
    "ids-sst-dev.csv": ("sst", 1101),
    "ids-sst-test-student.csv": ("sst", 2210),
    "sts-train.csv": ("sts", 6040),
    "sts-dev.csv": ("sts", 863),
    "sts-test-student.csv": ("sts", 1725),
    "quora-dev.csv": ("para", 5000),
    "ids-cfimdb-train.csv": ("cfimdb", 1707),
    "ids-cfimdb-dev.csv": ("cfimdb", 245),
    "ids-cfimdb-test-student.csv": ("cfimdb", 488),
}
needs_shared_data = pytest.mark.skipif(
    not SHARED_DATA.is_dir(), reason=f"the course data folder {SHARED_DATA} is absent on this machine"
)


@needs_shared_data
@pytest.mark.parametrize("name", README_ROWS)
def test_real_file_has_the_readme_row_count(name):
    task, rows = README_ROWS[name]
    dataset, report = read_task_file(SHARED_DATA / name, task)
    assert len(dataset) == rows and not report.skipped


@needs_shared_data
def test_real_quora_train_has_15214_rows_of_which_two_without_label_are_skipped_and_reported():
    dataset, report = read_task_file(SHARED_DATA / "quora-train.csv", "para", skip_bad_rows=True)
    assert len(dataset) + len(report.skipped) == 15214
    assert [(bad.location, bad.column) for bad in report.skipped] == [
        ("line 1935", "is_duplicate"),
        ("line 10690", "sentence2"),  # its label is empty too; the first problem in column order is named
    ]


@needs_shared_data
def test_real_quora_train_loads_under_the_default_share_of_bad_rows():
    dataset, report = read_task_file(SHARED_DATA / "quora-train.csv", "para", skip_bad_rows=True,
                                     max_bad_row_share=0.05)
    assert (len(dataset), report.skipped_count) == (15212, 2)


@needs_shared_data
def test_real_repeated_sentences_match_the_readme_with_sts_pairs_repeated_in_the_other_order():
    # The data's README counts 30 STS pairs repeated as written; 13 more repeat a pair with its sentences swapped,
    # which is the same similarity example (as the overlaps between sources count it).
    _, sst = read_task_file(SHARED_DATA / "ids-sst-train.csv", "sst")
    _, sts = read_task_file(SHARED_DATA / "sts-train.csv", "sts")
    assert (sst.repeated_texts, sts.repeated_texts) == (10, 30 + 13)


# ------------------------------------------------------------------------------------------------------
# The same tasks from the Hub: local copies laid out like the Hub repositories, through load_dataset
# ------------------------------------------------------------------------------------------------------


def write_jsonl(path, rows):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")


def test_setfit_sst5_layout_maps_text_and_label_onto_the_sst_schema(tmp_path):
    rows = [
        {"text": "a fine film", "label": 3, "label_text": "positive"},
        {"text": "dull", "label": 0, "label_text": "very negative"},
    ]
    for split in ("train", "validation", "test"):
        write_jsonl(tmp_path / "sst5" / f"{split}.jsonl", rows)
    dataset, report = load_hub_task("sst", "dev", path=str(tmp_path / "sst5"), cache_dir=str(tmp_path / "cache"))
    assert dataset.column_names == ["id", "sentence", "sentiment"]
    assert dataset[:] == {"id": ["validation-0", "validation-1"], "sentence": ["a fine film", "dull"], "sentiment": [3, 0]}
    assert "split 'validation'" in report.source


GLUE_README = """---
configs:
- config_name: qqp
  data_files:
  - split: train
    path: qqp/train-*
  - split: validation
    path: qqp/validation-*
  - split: test
    path: qqp/test-*
---
"""


def write_glue_qqp(folder):
    (folder / "qqp").mkdir(parents=True)
    (folder / "README.md").write_text(GLUE_README, encoding="utf-8")
    for split, labels in (("train", [1, 0]), ("validation", [0, 1]), ("test", [-1, -1])):
        frame = pd.DataFrame(
            {"question1": ["how?", "why?"], "question2": ["how so?", "why not?"], "label": labels, "idx": [7, 8]}
        )
        frame.to_parquet(folder / "qqp" / f"{split}-00000-of-00001.parquet")


def test_glue_qqp_layout_maps_questions_label_and_idx_onto_the_para_schema(tmp_path):
    write_glue_qqp(tmp_path / "glue")
    dataset, _ = load_hub_task("para", "train", path=str(tmp_path / "glue"), cache_dir=str(tmp_path / "cache"))
    assert dataset[:] == {
        "id": ["7", "8"], "sentence1": ["how?", "why?"], "sentence2": ["how so?", "why not?"], "is_duplicate": [1.0, 0.0]
    }


def test_glue_qqp_test_split_loads_unlabelled(tmp_path):
    write_glue_qqp(tmp_path / "glue")
    dataset, _ = load_hub_task("para", "test", path=str(tmp_path / "glue"), cache_dir=str(tmp_path / "cache"))
    assert dataset.column_names == ["id", "sentence1", "sentence2"]


def test_stsb_layout_scales_the_0_1_score_onto_0_5_similarity(tmp_path):
    rows = [
        {"sentence1": "a cat sat", "sentence2": "the cat sat", "score": 0.76},
        {"sentence1": "a", "sentence2": "b", "score": 0.0},
    ]
    for split in ("train", "validation", "test"):
        write_jsonl(tmp_path / "stsb" / f"{split}.jsonl", rows)
    dataset, _ = load_hub_task("sts", "train", path=str(tmp_path / "stsb"), cache_dir=str(tmp_path / "cache"))
    assert dataset["similarity"] == [0.76 * 5, 0.0]
    assert dataset["id"] == ["train-0", "train-1"]


def test_stsb_scores_stored_as_text_are_scaled_as_numbers_are(tmp_path):
    rows = [{"sentence1": "a cat sat", "sentence2": "the cat sat", "score": "0.5"}]
    write_jsonl(tmp_path / "stsb" / "train.jsonl", rows)
    dataset, _ = load_hub_task("sts", "train", path=str(tmp_path / "stsb"), cache_dir=str(tmp_path / "cache"))
    assert dataset["similarity"] == [2.5]


def test_a_hub_copy_with_more_bad_rows_than_the_share_allows_is_an_error_naming_the_share(tmp_path):
    # A copy whose scores are already on 0-5: scaled by 5, every score above 1 breaks the range.
    rows = [{"sentence1": f"a cat sat {i}", "sentence2": "the cat sat", "score": float(i)} for i in range(5)]
    write_jsonl(tmp_path / "stsb" / "train.jsonl", rows)
    with pytest.raises(DataError, match=r"3 of 5 rows are bad, more than the share max_bad_row_share=0.1 allows"):
        load_hub_task("sts", "train", path=str(tmp_path / "stsb"), cache_dir=str(tmp_path / "cache"),
                      skip_bad_rows=True, max_bad_row_share=0.1)


def test_hub_row_with_a_non_text_sentence_is_an_error_naming_the_row_and_column(tmp_path):
    rows = [{"text": "a fine film", "label": 3}, {"text": None, "label": 1}]
    write_jsonl(tmp_path / "sst5" / "train.jsonl", rows)
    with pytest.raises(DataError, match=r"split 'train', row 1, column 'sentence': expected text, got NoneType"):
        load_hub_task("sst", "train", path=str(tmp_path / "sst5"), cache_dir=str(tmp_path / "cache"))


# ------------------------------------------------------------------------------------------------------
# Tokenization, truncation counts, padding, length grouping
# ------------------------------------------------------------------------------------------------------


def sst_rows(sentences, labels=None):
    columns = {"id": [f"s{i}" for i in range(len(sentences))], "sentence": sentences}
    if labels is not None:
        columns["sentiment"] = labels
    return datasets.Dataset.from_dict(columns)


def sts_rows(pairs, scores):
    first, second = zip(*pairs)
    ids = [f"p{i}" for i in range(len(pairs))]
    return datasets.Dataset.from_dict({"id": ids, "sentence1": list(first), "sentence2": list(second), "similarity": scores})


def test_single_sentences_become_cls_sentence_sep_with_integer_labels():
    tokenized, _ = tokenize_task(sst_rows(["a fine film"], [3]), word_tokenizer(WORDS), "sst")
    tokenizer = word_tokenizer(WORDS)
    assert set(tokenized.column_names) == {"input_ids", "token_type_ids", "attention_mask", "labels"}
    assert tokenizer.convert_ids_to_tokens(tokenized[0]["input_ids"]) == ["[CLS]", "a", "fine", "film", "[SEP]"]
    assert tokenized[0]["labels"] == 3 and tokenized.features["labels"].dtype == "int64"


def test_rows_for_a_stock_classifier_keep_only_its_inputs_with_float_labels_for_one_output():
    pairs = sts_rows([("how is it", "a fine film")], [2.5])
    regression = tokenize_for_sequence_classification(pairs, word_tokenizer(WORDS), "sts", num_labels=1)
    assert set(regression.column_names) == {"input_ids", "token_type_ids", "attention_mask", "labels"}
    assert regression[0]["token_type_ids"] == [0, 0, 0, 0, 0, 1, 1, 1, 1] and regression[0]["labels"] == 2.5
    classes = tokenize_for_sequence_classification(sst_rows(["a fine film"], [3]), word_tokenizer(WORDS), "sst", 5)
    assert classes[0]["labels"] == 3 and classes.features["labels"].dtype == "int64"


def test_cross_encoded_pair_marks_the_second_sentence_with_token_type_one():
    tokenized, _ = tokenize_task(sts_rows([("how is it", "a fine film")], [2.5]), word_tokenizer(WORDS), "sts")
    assert tokenized[0]["token_type_ids"] == [0, 0, 0, 0, 0, 1, 1, 1, 1]
    assert tokenized.features["labels"].dtype == "float32"


def test_bi_encoding_tokenizes_each_sentence_alone_into_a_and_b_columns():
    tokenized, _ = tokenize_task(sts_rows([("how is it", "a film")], [2.5]), word_tokenizer(WORDS), "sts", pair_encoding="bi")
    assert set(tokenized.column_names) == {"input_ids_a", "attention_mask_a", "input_ids_b", "attention_mask_b", "labels"}
    assert len(tokenized[0]["input_ids_a"]) == 5 and len(tokenized[0]["input_ids_b"]) == 4


def test_with_sides_adds_a_and_b_columns_to_a_cross_encoded_pair():
    tokenized, _ = tokenize_task(sts_rows([("how is it", "a film")], [2.5]), word_tokenizer(WORDS), "sts", with_sides=True)
    assert {"input_ids", "input_ids_a", "input_ids_b"} <= set(tokenized.column_names)


def test_truncation_counts_exactly_the_examples_longer_than_max_length():
    sentences = ["a", "a fine film is", "a fine film is fine", "the cat sat on the mat"]  # 3, 6, 7, 8 tokens
    tokenized, report = tokenize_task(sst_rows(sentences), word_tokenizer(WORDS), "sst", max_length=6)
    assert (report.truncated, report.examples) == (2, 4)
    assert max(len(ids) for ids in tokenized["input_ids"]) == 6
    assert "2 of 4 examples truncated at max_length=6" in str(report)


def test_truncation_of_either_bi_encoder_side_counts_the_pair_once():
    pairs = [("the cat sat on the mat", "the cat sat on the mat"), ("a", "a")]
    _, report = tokenize_task(sts_rows(pairs, [5.0, 5.0]), word_tokenizer(WORDS), "sts", pair_encoding="bi", max_length=5)
    assert report.truncated == 1


def test_single_encoding_of_a_pair_task_is_refused():
    with pytest.raises(ValueError, match="'sts' has sentence pairs: pair_encoding 'single'"):
        tokenize_task(sts_rows([("a", "b")], [1.0]), word_tokenizer(WORDS), "sts", pair_encoding="single")


def test_collator_pads_the_joint_and_each_side_group_to_its_own_longest():
    pairs = [("how is it", "a"), ("a", "the cat sat on the mat")]
    tokenized, _ = tokenize_task(sts_rows(pairs, [1.0, 4.0]), word_tokenizer(WORDS), "sts", with_sides=True)
    batch = MultitaskDataCollator(word_tokenizer(WORDS))([tokenized[0], tokenized[1]])
    assert batch["input_ids"].shape == (2, 10)
    assert batch["input_ids_a"].shape == (2, 5) and batch["input_ids_b"].shape == (2, 8)
    assert batch["attention_mask_b"].tolist()[0] == [1, 1, 1, 0, 0, 0, 0, 0]
    assert batch["labels"].dtype == torch.float32 and batch["labels"].tolist() == [1.0, 4.0]


def test_collator_gives_class_labels_as_int64():
    tokenized, _ = tokenize_task(sst_rows(["a", "a fine film"], [1, 4]), word_tokenizer(WORDS), "sst")
    batch = MultitaskDataCollator(word_tokenizer(WORDS))([tokenized[0], tokenized[1]])
    assert batch["labels"].dtype == torch.int64 and batch["input_ids"].shape == (2, 5)


def test_example_length_of_a_bi_encoded_pair_is_its_longer_side():
    pairs = [("a", "the cat sat on the mat"), ("how is it", "a")]
    tokenized, _ = tokenize_task(sts_rows(pairs, [1.0, 2.0]), word_tokenizer(WORDS), "sts", pair_encoding="bi")
    assert example_lengths(tokenized) == [8, 5]


def test_length_sorted_batches_cover_every_index_once_longest_first():
    lengths = [3, 9, 5, 9, 1]
    batches = length_sorted_batches(lengths, batch_size=2)
    assert batches == [[1, 3], [2, 0], [4]]


def test_length_grouped_sampler_yields_a_permutation_with_the_longest_example_first():
    sentences = ["a " * n for n in (1, 7, 3, 2, 9, 4, 1, 5)]
    tokenized, _ = tokenize_task(sst_rows(sentences), word_tokenizer(WORDS), "sst")
    order = list(length_grouped_sampler(tokenized, batch_size=2, generator=torch.Generator().manual_seed(0)))
    assert sorted(order) == list(range(8))
    assert order[0] == 4  # transformers puts the longest example in the first batch


# ------------------------------------------------------------------------------------------------------
# Folds (out-of-fold distillation teachers)
# ------------------------------------------------------------------------------------------------------


def test_folds_are_balanced_and_depend_only_on_the_row_count_the_fold_count_and_the_seed():
    folds = assign_folds(10, 3, seed=5)
    assert sorted(np.bincount(folds)) == [3, 3, 4]
    np.testing.assert_array_equal(folds, assign_folds(10, 3, seed=5))
    assert not np.array_equal(assign_folds(100, 2, seed=0), assign_folds(100, 2, seed=1))


def test_rows_outside_a_fold_are_every_other_folds_rows_in_order():
    folds = assign_folds(9, 3, seed=0)
    outside = rows_outside_fold(9, 3, held_out_fold=1, seed=0)
    np.testing.assert_array_equal(outside, [row for row in range(9) if folds[row] != 1])


def test_one_fold_more_folds_than_rows_and_a_fold_out_of_range_are_refused():
    with pytest.raises(ValueError, match="at least 2"):
        assign_folds(10, 1)
    with pytest.raises(ValueError, match="3 rows cannot fill 4 folds"):
        assign_folds(3, 4)
    with pytest.raises(ValueError, match=r"held_out_fold must lie in 0 .. 1, got 2"):
        rows_outside_fold(10, 2, held_out_fold=2)


@pytest.mark.parametrize("content", [b"\n", b"a\n"])
def test_a_file_of_a_few_bytes_is_not_taken_for_utf_16(tmp_path, content):
    path = tmp_path / "ids-sst-dev.csv"
    path.write_bytes(content)
    with pytest.raises(DataError) as error:
        read_task_file(path, "sst")
    assert "UTF-16" not in str(error.value)


def test_an_unlabelled_test_file_reads_a_field_opening_with_a_quote_as_the_course_does(tmp_path):
    # Every id of a test file needs its prediction: the row is read, not refused.
    lines = ["\tid\tsentence", '0\tsst-t0\t"Hi" there friend']
    dataset, report = read_task_file(write_file(tmp_path, "ids-sst-test-student.csv", lines), "sst")
    assert dataset["id"] == ["sst-t0"] and dataset["sentence"] == ["Hi there friend"] and not report.skipped
