"""The Stanford Sentiment Treebank's trees (PTB bracket format) read into the sst schema as labelled phrases:
every node a phrase, treebank tokens kept, options, evaluation sentences dropped, malformed lines named."""
import json

import pandas as pd
import pytest

from hf_minbert.data import (
    DataError,
    PhraseOptions,
    TreeSyntaxError,
    load_hub_sst_trees,
    parse_tree,
    read_task_file,
    read_tree_file,
)
from tests.conftest import SHARED_DATA

# Two trees, on lines 1 and 2; they share the phrases " A film", " A" and " film".
TREE_LINES = [
    "(3 (2 (2 A) (2 film)) (4 (3 (2 is) (4 great)) (2 .)))",
    "(1 (2 (2 A) (2 film)) (1 (2 -LRB-) (1 (2 it) (1 (2 's) (0 dull)))))",
]


def write_trees(folder, lines, name="sst-train-trees.txt"):
    path = folder / name
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


def phrases_of(dataset):
    return dict(zip(dataset["sentence"], dataset["sentiment"]))


# ------------------------------------------------------------------------------------------------------
# One tree
# ------------------------------------------------------------------------------------------------------


def test_every_labelled_node_is_a_phrase_with_its_label_root_first():
    phrases = parse_tree(TREE_LINES[0])
    assert [(phrase.text, phrase.label) for phrase in phrases] == [
        (" A film is great .", 3),
        (" A film", 2), (" A", 2), (" film", 2),
        (" is great .", 4), (" is great", 3), (" is", 2), (" great", 4), (" .", 2),
    ]


def test_a_phrase_counts_its_words():
    assert [phrase.tokens for phrase in parse_tree(TREE_LINES[0])][:3] == [5, 2, 1]


def test_treebank_tokens_are_kept_as_the_csv_files_write_them():
    # -LRB-, 's, `` and \/ as in ids-sst-train.csv; a no-break space inside a word does not split it.
    tree = "(2 (2 -LRB-) (2 (2 `` Conan '') (2 (2 's) (2 8\u00a01\\/2))))"
    assert parse_tree(tree)[0].text == " -LRB- `` Conan '' 's 8\u00a01\\/2"


@pytest.mark.parametrize(
    "line, character, problem",
    [
        ("(3 (2 A) (2 film)", 18, "the line ends with the bracket opened at character 1 still open"),
        ("(3 (2 A) (2 film)))", 19, "text after the tree closed at character 18"),
        ("(3 (2 A)) (2 film)", 11, "text after the tree closed at character 9"),
        ("(3 (x A) (2 film))", 5, "expected a label 0..4 after '(', found 'x'"),
        ("(3 (5 A) (2 film))", 5, "expected a label 0..4 after '(', found '5'"),
        ("(3 (2) (2 film))", 6, "the node opened at character 4 holds no word"),
        ("A (2 film)", 1, "word 'A' outside any bracket"),
        ("", 1, "empty line: expected a tree"),
    ],
)
def test_a_malformed_tree_names_the_character_where_its_brackets_break(line, character, problem):
    with pytest.raises(TreeSyntaxError) as caught:
        parse_tree(line)
    assert (caught.value.character, caught.value.problem) == (character, problem)


# ------------------------------------------------------------------------------------------------------
# A tree file
# ------------------------------------------------------------------------------------------------------


def test_a_tree_file_reads_into_the_sst_schema(tmp_path):
    dataset, report = read_tree_file(write_trees(tmp_path, TREE_LINES))
    assert dataset.column_names == ["id", "sentence", "sentiment"]
    assert dataset.features["sentiment"].dtype == "int64"
    assert (report.trees, report.phrases) == (2, 9 + 11)


def test_a_tab_between_nodes_separates_them_as_a_space_does():
    assert parse_tree("(3 (2 The)\t(2 Rock))") == parse_tree("(3 (2 The) (2 Rock))")


def test_a_no_break_space_inside_a_word_stays_in_it():
    assert parse_tree("(2 8\xa01\\/2)")[0].text == " 8\xa01\\/2"


def test_the_tree_read_report_holds_the_sha256_of_the_bytes_read(tmp_path):
    import hashlib

    path = write_trees(tmp_path, TREE_LINES)
    _, report = read_tree_file(path)
    assert report.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()


def test_phrase_ids_name_the_line_and_the_node_in_pre_order(tmp_path):
    dataset, _ = read_tree_file(write_trees(tmp_path, TREE_LINES))
    ids = dict(zip(dataset["sentence"], dataset["id"]))
    assert ids[" A film is great ."] == "sst-train-trees-1-0"
    assert ids[" is great"] == "sst-train-trees-1-5"
    assert ids[" -LRB- it 's dull"] == "sst-train-trees-2-4"


def test_roots_only_gives_one_row_per_tree_with_the_same_ids(tmp_path):
    dataset, _ = read_tree_file(write_trees(tmp_path, TREE_LINES), options=PhraseOptions(roots_only=True))
    assert dataset[:] == {
        "id": ["sst-train-trees-1-0", "sst-train-trees-2-0"],
        "sentence": [" A film is great .", " A film -LRB- it 's dull"],
        "sentiment": [3, 1],
    }


def test_min_tokens_drops_short_phrases_but_never_a_whole_sentence(tmp_path):
    lines = ["(4 great)", *TREE_LINES]
    dataset, report = read_tree_file(write_trees(tmp_path, lines), options=PhraseOptions(min_tokens=3))
    assert sorted(phrases_of(dataset)) == sorted(
        [" great", " A film is great .", " is great .", " A film -LRB- it 's dull", " -LRB- it 's dull",
         " it 's dull"]
    )
    assert report.short == 7 + 8  # inner phrases of under 3 words: 7 in the first tree, 8 in the second


def test_exact_duplicates_are_dropped_by_default_and_counted(tmp_path):
    dataset, report = read_tree_file(write_trees(tmp_path, TREE_LINES))
    assert len(dataset) == 20 - 3 and report.duplicates == 3  # " A film", " A", " film" appear in both trees
    assert len(set(dataset["sentence"])) == len(dataset)


def test_duplicates_are_kept_and_counted_as_repeats_when_asked(tmp_path):
    dataset, report = read_tree_file(write_trees(tmp_path, TREE_LINES), options=PhraseOptions(drop_duplicates=False))
    assert len(dataset) == 20 and report.repeated_texts == 3 and report.duplicates == 0


def test_a_phrase_seen_with_two_labels_keeps_the_first_and_is_reported(tmp_path):
    lines = ["(3 (2 A) (3 film))", "(1 (1 film) (2 flop))"]
    dataset, report = read_tree_file(write_trees(tmp_path, lines))
    assert phrases_of(dataset)[" film"] == 3
    assert report.label_conflicts == [(" film", "sst-train-trees-1-2", 3, "sst-train-trees-2-1", 1)]
    assert "1 repeating a phrase with another label" in str(report)


def test_phrases_equal_to_an_evaluation_sentence_are_dropped_and_counted(tmp_path):
    evaluation = [" is great .", "A  film"]  # whitespace does not matter
    dataset, report = read_tree_file(write_trees(tmp_path, TREE_LINES), exclude_sentences=evaluation)
    assert " is great ." not in phrases_of(dataset) and " A film" not in phrases_of(dataset)
    assert report.excluded == ["sst-train-trees-1-1", "sst-train-trees-1-4"]
    assert report.excluded_texts == 2


def test_a_phrase_equal_to_an_evaluation_sentence_but_for_case_and_spacing_is_dropped(tmp_path):
    dataset, report = read_tree_file(write_trees(tmp_path, TREE_LINES), exclude_sentences=["IS GREAT."])
    assert " is great ." not in phrases_of(dataset) and report.excluded == ["sst-train-trees-1-4"]


def test_a_repeat_of_a_phrase_left_out_as_an_evaluation_sentence_counts_as_a_duplicate_not_as_another_row_left_out(
        tmp_path):
    # "A film" opens both trees: one row is left out for equalling the evaluation sentence, the second is a duplicate.
    dataset, report = read_tree_file(write_trees(tmp_path, TREE_LINES), exclude_sentences=["A film"])
    kept_all, all_report = read_tree_file(write_trees(tmp_path, TREE_LINES, "all.txt"))
    assert report.excluded == ["sst-train-trees-1-1"] and report.duplicates == all_report.duplicates
    assert len(kept_all) - len(dataset) == len(report.excluded)


def test_with_duplicates_kept_every_phrase_equal_to_an_evaluation_sentence_is_left_out_and_counted(tmp_path):
    options = PhraseOptions(drop_duplicates=False)
    dataset, report = read_tree_file(write_trees(tmp_path, TREE_LINES), options=options, exclude_sentences=["A film"])
    assert report.excluded == ["sst-train-trees-1-1", "sst-train-trees-2-1"] and report.excluded_texts == 1


def test_a_malformed_line_is_an_error_naming_file_line_and_character(tmp_path):
    path = write_trees(tmp_path, [TREE_LINES[0], "(3 (2 A) (2 film)", TREE_LINES[1]])
    with pytest.raises(DataError, match=r"sst-train-trees\.txt, line 2: malformed tree at character 18: the line ends"):
        read_tree_file(path)


def test_skip_bad_rows_skips_a_malformed_line_and_reports_its_number(tmp_path):
    path = write_trees(tmp_path, [TREE_LINES[0], "(3 (2 A) (2 film)", TREE_LINES[1]])
    dataset, report = read_tree_file(path, skip_bad_rows=True)
    assert report.trees == 2 and report.skipped_lines == [2]
    assert " A film -LRB- it 's dull" in phrases_of(dataset)


def test_a_tree_file_that_is_not_utf8_names_the_line_of_the_first_bad_byte(tmp_path):
    path = tmp_path / "trees.txt"
    path.write_bytes((TREE_LINES[0] + "\n(3 (2 A) (3 caf\u00e9))\n").encode("latin-1"))
    with pytest.raises(DataError, match=r"trees\.txt, line 2, character 16: not UTF-8 text"):
        read_tree_file(path)


def test_the_tree_report_summary_is_json_ready(tmp_path):
    _, report = read_tree_file(write_trees(tmp_path, TREE_LINES), exclude_sentences=[" is great ."])
    summary = json.loads(json.dumps(report.as_dict()))
    assert summary["phrases"] == 20 and summary["duplicates"] == 3 and summary["excluded"] == 1


def test_min_tokens_below_one_is_refused():
    with pytest.raises(ValueError, match="min_tokens must be at least 1, got 0"):
        PhraseOptions(min_tokens=0)


# ------------------------------------------------------------------------------------------------------
# The treebank from the Hub: stanfordnlp/sst, config "ptb", laid out locally and read through load_dataset
# ------------------------------------------------------------------------------------------------------

SST_README = """---
configs:
- config_name: ptb
  data_files:
  - split: train
    path: ptb/train-*
  - split: validation
    path: ptb/validation-*
  - split: test
    path: ptb/test-*
---
"""


def write_sst_ptb(folder, trees):
    (folder / "ptb").mkdir(parents=True)
    (folder / "README.md").write_text(SST_README, encoding="utf-8")
    for split in ("train", "validation", "test"):
        pd.DataFrame({"ptb_tree": trees}).to_parquet(folder / "ptb" / f"{split}-00000-of-00001.parquet")


def test_stanfordnlp_sst_ptb_layout_maps_each_tree_row_to_its_phrases(tmp_path):
    write_sst_ptb(tmp_path / "sst", TREE_LINES)
    dataset, report = load_hub_sst_trees("train", path=str(tmp_path / "sst"), cache_dir=str(tmp_path / "cache"))
    assert dataset.column_names == ["id", "sentence", "sentiment"]
    assert dataset[0] == {"id": "train-0-0", "sentence": " A film is great .", "sentiment": 3}
    assert len(dataset) == 17 and report.trees == 2 and "split 'train'" in report.source


def test_hub_trees_dev_split_reads_the_validation_split_with_options(tmp_path):
    write_sst_ptb(tmp_path / "sst", TREE_LINES)
    dataset, _ = load_hub_sst_trees("dev", path=str(tmp_path / "sst"), cache_dir=str(tmp_path / "cache"),
                                    options=PhraseOptions(roots_only=True))
    assert dataset["id"] == ["validation-0-0", "validation-1-0"]


def test_a_malformed_hub_tree_is_an_error_naming_the_row(tmp_path):
    write_sst_ptb(tmp_path / "sst", [TREE_LINES[0], "(3 (2 A) (2 film)"])
    with pytest.raises(DataError, match=r"split 'train', row 1: malformed tree at character 18"):
        load_hub_sst_trees("train", path=str(tmp_path / "sst"), cache_dir=str(tmp_path / "cache"))


def test_a_hub_dataset_without_the_tree_column_is_an_error_naming_the_column(tmp_path):
    folder = tmp_path / "sst"
    write_sst_ptb(folder, TREE_LINES)
    for parquet in (folder / "ptb").iterdir():
        pd.DataFrame({"sentence": ["a"]}).to_parquet(parquet)
    with pytest.raises(ValueError, match=r"missing column 'ptb_tree'"):
        load_hub_sst_trees("train", path=str(folder), cache_dir=str(tmp_path / "cache"))


# ------------------------------------------------------------------------------------------------------
# The real treebank file in ../shared/data
# ------------------------------------------------------------------------------------------------------

needs_trees = pytest.mark.skipif(
    not (SHARED_DATA / "sst-train-trees.txt").is_file(), reason="sst-train-trees.txt is absent on this machine"
)


@pytest.mark.slow
@needs_trees
def test_real_treebank_roots_are_the_csv_sentences_with_their_labels():
    roots, report = read_tree_file(SHARED_DATA / "sst-train-trees.txt",
                                   options=PhraseOptions(roots_only=True, drop_duplicates=False))
    sentences, _ = read_task_file(SHARED_DATA / "ids-sst-train.csv", "sst")
    assert roots[:] == {**sentences[:], "id": roots["id"][:]}  # same sentences and labels, in the same order
    assert report.trees == 8544


@pytest.mark.slow
@needs_trees
def test_real_treebank_has_the_readme_phrase_counts_and_three_dev_sentences_inside():
    # The README's two dev sentences inside training trees, and a third that differs from its phrase in case
    # alone ("This is it ." and "this is it ."): one text to an uncased model.
    dev, _ = read_task_file(SHARED_DATA / "ids-sst-dev.csv", "sst")
    dataset, report = read_tree_file(SHARED_DATA / "sst-train-trees.txt", exclude_sentences=dev["sentence"])
    assert report.label_conflicts == [] and not report.skipped
    assert report.excluded_texts == 3
    assert len(dataset) + report.excluded_texts == 159274  # distinct labelled phrases, as the README says
