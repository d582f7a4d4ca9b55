"""`minbert evaluate` end to end on a tiny random model, and the evaluation core the trainer reuses."""
import json
import re
import shutil

import datasets
import numpy as np
import pytest
import torch
from transformers import BertConfig, BertModel

from hf_minbert import MinBertConfig, MinBertForMultitask
from hf_minbert.cli import main as minbert
from hf_minbert.data import read_task_file
from hf_minbert.evaluation import (
    evaluate_model,
    evaluate_task,
    gold_labels,
    predict_task,
    predictions_to_labels,
    read_prediction_file,
    score_task,
)
from tests.helpers import word_tokenizer

WORDS = "a the cat dog sat ran on mat park film fine dull good bad is it how why so not very . ?".split()

SST_DEV = [
    "\tid\tsentence\tsentiment",
    "0\tsst-0\t a fine film .\t3",
    "1\tsst-1\t a dull film .\t1",
    "2\tsst-2\t\" \"\"\"\"\"\" a very very bad film .\"\t0",
    "3\tsst-3\t good .\t4",
    "4\tsst-4\t the film is not so good , not so bad .\t2",
    "5\tsst-5\t the cat sat on the mat\t2",
]
SST_TEST = ["0\t\tid\tsentence", "1\t0.0\tsst-t0\t a good film .", "2\t1.0\tsst-t1\t a bad dog ."]
QUORA_DEV = [
    "\tid\tsentence1\tsentence2\tis_duplicate",
    "11\tq-0\thow is the film?\tis the film good?\t1.0",
    "12\tq-1\twhy is it so?\thow is the dog?\t0.0",
    "13\tq-2\t\"\"\"is a dog \"\"\"\"good\"\"\"\"?\"\"\"\tis the dog good?\t1.0",
    "14\tq-3\tthe cat sat on the mat?\ta dog ran in the park?\t0.0",
]
STS_DEV = [
    "\tid\tsentence1\tsentence2\tsimilarity",
    "21\tsts-0\tthe cat sat on the mat\ta cat sat on a mat\t4.6",
    "22\tsts-1\ta dog ran\tthe film is dull\t0.2",
    "23\tsts-2\ta good film\ta fine film\t3.8",
    "24\tsts-3\tthe dog sat\tthe cat ran\t1.4",
    "25\tsts-4\tit is very good\tit is not good\t1.0",
]
STS_TEST = ["\tid\tsentence1\tsentence2", "31\tsts-t0\ta dog\tthe dog", "32\tsts-t1\tthe park\ta film"]


def tiny_model(seed=0):
    torch.manual_seed(seed)
    config = MinBertConfig(vocab_size=120, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                           intermediate_size=64, max_position_embeddings=64)
    model = MinBertForMultitask(config).eval()
    # A random head answers near 0, so most similarity scores would clip to 0: too constant to correlate.
    model.heads["sts"].layers[-1].bias.data.fill_(2.5)
    return model


def write_lines(path, lines):
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def saved_model(tmp_path_factory):
    folder = tmp_path_factory.mktemp("model")
    tiny_model().save_pretrained(folder)
    word_tokenizer(WORDS).save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("data")
    write_lines(folder / "ids-sst-dev.csv", SST_DEV)
    write_lines(folder / "ids-sst-test-student.csv", SST_TEST)
    write_lines(folder / "quora-dev.csv", QUORA_DEV)  # no quora-test-student.csv, as in ../shared/data
    write_lines(folder / "sts-dev.csv", STS_DEV)
    write_lines(folder / "sts-test-student.csv", STS_TEST)
    return folder


@pytest.fixture(scope="module")
def evaluated(saved_model, data_dir, tmp_path_factory):
    """One `minbert evaluate` run shared by the tests that inspect its outputs."""
    output_dir = tmp_path_factory.mktemp("out")
    status = minbert(["evaluate", "--model", str(saved_model), "--data_dir", str(data_dir),
                      "--output_dir", str(output_dir), "--batch_size", "2", "--no_progress"])
    assert status == 0
    return output_dir


def test_without_data_dir_the_course_files_are_read_where_minbert_train_reads_them(
        saved_model, data_dir, tmp_path, monkeypatch):
    shutil.copytree(data_dir, tmp_path / "shared" / "data")
    (tmp_path / "work").mkdir()
    monkeypatch.chdir(tmp_path / "work")  # ../shared/data, minbert train's default, is the copy
    status = minbert(["evaluate", "--model", str(saved_model), "--output_dir", "out", "--batch_size", "2", "--no_progress"])
    assert status == 0 and (tmp_path / "work" / "out" / "metrics.json").is_file()


def read_rows(data_dir, name, task):
    return read_task_file(data_dir / name, task)[0]


# ------------------------------------------------------------------------------------------------------
# minbert evaluate: outputs
# ------------------------------------------------------------------------------------------------------


def test_metrics_json_has_exactly_the_issue_layout(evaluated):
    metrics = json.loads((evaluated / "metrics.json").read_text())
    assert list(metrics) == ["sst", "para", "sts", "overall", "mean", "skipped_rows"]
    assert set(metrics["sst"]) == {"accuracy"} and set(metrics["para"]) == {"accuracy"} and metrics["skipped_rows"] == []
    assert set(metrics["sts"]) == {"pearson", "spearman"}


def test_metrics_json_agrees_exactly_with_a_recomputation_from_the_prediction_files(evaluated, data_dir):
    metrics = json.loads((evaluated / "metrics.json").read_text())
    recomputed = {}
    for task, gold_file in (("sst", "ids-sst-dev.csv"), ("para", "quora-dev.csv"), ("sts", "sts-dev.csv")):
        ids, predicted = read_prediction_file(evaluated / f"{task}-dev-output.csv", task)
        gold = read_rows(data_dir, gold_file, task)
        label_of = dict(zip(gold["id"], gold_labels(gold, task)))
        recomputed[task] = score_task(task, predicted, [label_of[row_id] for row_id in ids])
        assert recomputed[task] == metrics[task]
    sst, para, sts = metrics["sst"]["accuracy"], metrics["para"]["accuracy"], metrics["sts"]["pearson"]
    assert metrics["overall"] == (sst + para + (sts + 1) / 2) / 3
    assert metrics["mean"] == (sst + para + sts) / 3


def test_prediction_files_use_the_course_submission_format(evaluated):
    sst_lines = (evaluated / "sst-dev-output.csv").read_text().splitlines()
    assert sst_lines[0] == "id \t Predicted_Sentiment "
    row_id, value = sst_lines[1].split(" , ")
    assert row_id == "sst-0" and value.strip() in {"0", "1", "2", "3", "4"}
    assert (evaluated / "para-dev-output.csv").read_text().splitlines()[0] == "id \t Predicted_Is_Paraphrase "
    sts_lines = (evaluated / "sts-dev-output.csv").read_text().splitlines()
    assert sts_lines[0] == "id \t Predicted_Similiarity "  # the course's spelling, kept on purpose
    float(sts_lines[1].split(" , ")[1])


def test_a_prediction_file_reads_back_an_id_holding_the_formats_separator(tmp_path):
    from hf_minbert.evaluation import write_prediction_file

    write_prediction_file(tmp_path / "sts.csv", "sts", ["a , b", "c"], [4.25, 1.0])
    assert read_prediction_file(tmp_path / "sts.csv", "sts") == (["a , b", "c"], [4.25, 1.0])


def test_prediction_rows_follow_the_input_order_despite_length_sorted_batches(evaluated, data_dir):
    ids, _ = read_prediction_file(evaluated / "sst-dev-output.csv", "sst")
    assert ids == read_rows(data_dir, "ids-sst-dev.csv", "sst")["id"]


def test_test_predictions_are_written_for_unlabelled_files(evaluated):
    ids, labels = read_prediction_file(evaluated / "sst-test-output.csv", "sst")
    assert ids == ["sst-t0", "sst-t1"] and all(label in range(5) for label in labels)
    assert read_prediction_file(evaluated / "sts-test-output.csv", "sts")[0] == ["sts-t0", "sts-t1"]


def test_an_absent_default_test_file_is_reported_and_skipped(saved_model, data_dir, tmp_path, capsys):
    assert minbert(["evaluate", "--model", str(saved_model), "--data_dir", str(data_dir), "--output_dir",
                    str(tmp_path), "--tasks", "para", "--no_progress"]) == 0
    assert "no para test file at" in capsys.readouterr().out
    assert not (tmp_path / "para-test-output.csv").exists()


def test_the_printed_table_shows_each_file_and_the_overall_scores(saved_model, data_dir, tmp_path, capsys):
    minbert(["evaluate", "--model", str(saved_model), "--data_dir", str(data_dir), "--output_dir", str(tmp_path),
             "--no_progress"])
    printed = capsys.readouterr().out
    assert re.search(r"^sst\s+dev\s+6\s+0\s+0\s+accuracy 0\.\d{4}$", printed, re.MULTILINE)
    assert re.search(r"^sts\s+test\s+2\s+0\s+0\s+\(no labels\)$", printed, re.MULTILINE)
    assert re.search(r"^overall, leaderboard: .* \d\.\d{4}$", printed, re.MULTILINE)
    assert re.search(r"^mean: .* \d\.\d{4}$", printed, re.MULTILINE)


# ------------------------------------------------------------------------------------------------------
# minbert evaluate: other files, bad input
# ------------------------------------------------------------------------------------------------------


def test_truncated_examples_are_counted_in_the_table(saved_model, data_dir, tmp_path, capsys):
    # With 8 tokens, 2 SST dev sentences ("a very very bad film ." and "the film is not so good ...") are cut.
    assert minbert(["evaluate", "--model", str(saved_model), "--data_dir", str(data_dir), "--output_dir",
                    str(tmp_path), "--tasks", "sst", "--max_length", "8", "--no_progress"]) == 0
    assert re.search(r"^sst\s+dev\s+6\s+0\s+2\s+accuracy", capsys.readouterr().out, re.MULTILINE)


def test_max_length_below_a_pairs_special_tokens_is_an_error_naming_the_option(saved_model, data_dir, tmp_path, capsys):
    # the tokenizer cannot cut a pair below [CLS] [SEP] [SEP]: pairs would be scored whole, single sentences empty
    assert minbert(["evaluate", "--model", str(saved_model), "--data_dir", str(data_dir), "--output_dir",
                    str(tmp_path), "--max_length", "2"]) == 2
    assert "--max_length: max_length=2: give at least 3 tokens" in capsys.readouterr().err


def test_max_length_beyond_the_models_positions_is_an_error_naming_the_option(saved_model, data_dir, tmp_path, capsys):
    assert minbert(["evaluate", "--model", str(saved_model), "--data_dir", str(data_dir), "--output_dir",
                    str(tmp_path), "--max_length", "100"]) == 2
    assert "--max_length: max_length=100 exceeds the model's max_position_embeddings=64" in capsys.readouterr().err


def test_a_users_own_labelled_file_can_replace_a_dev_set(saved_model, data_dir, tmp_path):
    own = write_lines(tmp_path / "my-sts.csv", STS_DEV[:1] + STS_DEV[3:])
    status = minbert(["evaluate", "--model", str(saved_model), "--tasks", "sts", "--sts_dev", str(own),
                      "--sts_test", str(data_dir / "sts-test-student.csv"), "--output_dir", str(tmp_path / "out"),
                      "--no_progress"])
    assert status == 0
    assert read_prediction_file(tmp_path / "out" / "sts-dev-output.csv", "sts")[0] == ["sts-2", "sts-3", "sts-4"]
    assert list(json.loads((tmp_path / "out" / "metrics.json").read_text())) == ["sts", "skipped_rows"]


def test_a_dev_file_too_short_to_correlate_is_refused_before_any_prediction(saved_model, data_dir, tmp_path, capsys):
    # It would otherwise be refused after writing the other tasks' predictions, without metrics.json.
    short = write_lines(tmp_path / "my-sts.csv", STS_DEV[:2])
    status = minbert(["evaluate", "--model", str(saved_model), "--sts_dev", str(short), "--data_dir", str(data_dir),
                      "--output_dir", str(tmp_path / "out"), "--no_progress"])
    assert status == 2 and not (tmp_path / "out").exists()
    assert capsys.readouterr().err.strip() == (
        f"minbert evaluate: {short}: a correlation needs at least 2 scored rows, got 1")


def test_a_tokenizer_larger_than_the_word_table_is_refused_before_any_prediction(saved_model, data_dir, tmp_path,
                                                                                 minilm_path, capsys):
    status = minbert(["evaluate", "--model", str(saved_model), "--tokenizer", minilm_path, "--data_dir", str(data_dir),
                      "--output_dir", str(tmp_path / "out"), "--no_progress"])
    assert status == 2 and not (tmp_path / "out").exists()
    assert capsys.readouterr().err.strip() == (
        f"minbert evaluate: {minilm_path}: its tokenizer has 30522 tokens but the model's word table 120 rows; "
        "is the tokenizer another model's?")


def test_another_tokenizer_that_fits_the_word_table_but_reads_other_ids_is_refused(saved_model, data_dir, tmp_path,
                                                                                   capsys):
    other = tmp_path / "other-tokenizer"
    word_tokenizer(list(reversed(WORDS))).save_pretrained(other)  # as many words, other ids
    status = minbert(["evaluate", "--model", str(saved_model), "--tokenizer", str(other), "--data_dir", str(data_dir),
                      "--output_dir", str(tmp_path / "out"), "--no_progress"])
    assert status == 2 and not (tmp_path / "out").exists()
    assert "its vocabulary differs from the tokenizer saved with --model" in capsys.readouterr().err


def test_tokenizer_gives_the_words_to_a_model_folder_that_lacks_them(saved_model, data_dir, tmp_path):
    import shutil

    partial = tmp_path / "partial"
    shutil.copytree(saved_model, partial)
    for name in ("tokenizer.json", "vocab.txt"):
        (partial / name).unlink(missing_ok=True)
    status = minbert(["evaluate", "--model", str(partial), "--tokenizer", str(saved_model), "--data_dir",
                      str(data_dir), "--output_dir", str(tmp_path / "out"), "--no_progress"])
    assert status == 0


def test_the_models_own_tokenizer_given_with_tokenizer_scores(saved_model, data_dir, tmp_path):
    status = minbert(["evaluate", "--model", str(saved_model), "--tokenizer", str(saved_model), "--data_dir",
                      str(data_dir), "--output_dir", str(tmp_path / "out"), "--no_progress"])
    assert status == 0


def test_a_model_folder_without_its_tokenizer_files_is_refused_before_any_prediction(saved_model, data_dir,
                                                                                     tmp_path, capsys):
    # AutoTokenizer would build a tokenizer of special tokens alone from config.json: every word [UNK].
    bare = tmp_path / "bare"
    bare.mkdir()
    for name in ("config.json", "model.safetensors"):
        shutil.copy(saved_model / name, bare / name)
    status = minbert(["evaluate", "--model", str(bare), "--data_dir", str(data_dir), "--output_dir",
                      str(tmp_path / "out"), "--no_progress"])
    assert status == 2 and not (tmp_path / "out").exists()
    assert capsys.readouterr().err.strip().startswith(f"minbert evaluate: {bare}: its tokenizer holds 5 special tokens")


def _copy_of(saved_model, folder, weights=True):
    shutil.copytree(saved_model, folder, ignore=None if weights else shutil.ignore_patterns("*.safetensors"))
    return folder


def test_a_config_that_does_not_fit_the_weights_is_one_line_naming_the_folder(saved_model, data_dir, tmp_path, capsys):
    edited = _copy_of(saved_model, tmp_path / "edited")
    config = json.loads((edited / "config.json").read_text())
    (edited / "config.json").write_text(json.dumps({**config, "hidden_size": 64, "intermediate_size": 128}))
    status = minbert(["evaluate", "--model", str(edited), "--data_dir", str(data_dir), "--output_dir",
                      str(tmp_path / "out"), "--no_progress"])
    assert status == 2 and capsys.readouterr().err.strip().splitlines()[-1] == (
        f"minbert evaluate: --model {edited}: its weights' sizes differ from those its config.json gives (an edited "
        "config.json, or another model's weights?)")


def test_a_corrupt_pytorch_model_bin_is_one_line_naming_the_folder(saved_model, data_dir, tmp_path, capsys):
    corrupt = _copy_of(saved_model, tmp_path / "corrupt", weights=False)
    (corrupt / "pytorch_model.bin").write_bytes(b"garbage")
    status = minbert(["evaluate", "--model", str(corrupt), "--data_dir", str(data_dir), "--output_dir",
                      str(tmp_path / "out"), "--no_progress"])
    assert status == 2 and capsys.readouterr().err.strip().splitlines()[-1].startswith(
        f"minbert evaluate: --model {corrupt}: cannot read its weights (truncated or corrupt?)")


def test_an_output_dir_that_is_a_file_is_refused_before_the_model_loads(saved_model, data_dir, tmp_path, capsys,
                                                                       monkeypatch):
    import hf_minbert.commands.evaluate as evaluate_command

    monkeypatch.setattr(evaluate_command, "load_multitask_model", lambda *a, **k: pytest.fail("loaded first"))
    (tmp_path / "afile").write_text("x")
    status = minbert(["evaluate", "--model", str(saved_model), "--data_dir", str(data_dir), "--output_dir",
                      str(tmp_path / "afile"), "--no_progress"])
    assert status == 2 and capsys.readouterr().err.strip() == (
        f"minbert evaluate: --output_dir {tmp_path / 'afile'} is a file, not a folder")


def test_a_pytorch_model_bin_cut_short_is_one_line_naming_the_folder(saved_model, data_dir, tmp_path, capsys):
    from hf_minbert import MinBertForMultitask

    cut = _copy_of(saved_model, tmp_path / "cut", weights=False)
    torch.save(MinBertForMultitask.from_pretrained(saved_model).state_dict(), cut / "pytorch_model.bin")
    (cut / "pytorch_model.bin").write_bytes((cut / "pytorch_model.bin").read_bytes()[:-4096])
    status = minbert(["evaluate", "--model", str(cut), "--data_dir", str(data_dir), "--output_dir",
                      str(tmp_path / "out"), "--no_progress"])
    assert status == 2 and capsys.readouterr().err.strip().splitlines()[-1].startswith(
        f"minbert evaluate: --model {cut}: cannot read its weights (truncated or corrupt?)")


def test_a_tokenizer_folder_without_a_tokenizer_is_not_called_missing(saved_model, data_dir, tmp_path, capsys):
    status = minbert(["evaluate", "--model", str(saved_model), "--tokenizer", str(data_dir), "--data_dir", str(data_dir),
                      "--output_dir", str(tmp_path / "out"), "--no_progress"])
    error = capsys.readouterr().err.strip()
    assert status == 2 and error.startswith(f"minbert evaluate: cannot load the model or tokenizer from {saved_model} / "
                                            f"{data_dir}: ") and "no such directory" not in error


def test_a_named_file_that_does_not_exist_is_an_error(saved_model, tmp_path, capsys):
    status = minbert(["evaluate", "--model", str(saved_model), "--tasks", "sst", "--sst_dev", str(tmp_path / "nope.csv"),
                      "--sst_test", str(tmp_path / "nope-test.csv"), "--output_dir", str(tmp_path / "out")])
    assert status == 2
    assert f"sst data file not found: {tmp_path / 'nope.csv'}" in capsys.readouterr().err


def test_a_bad_row_fails_naming_file_line_and_column(saved_model, tmp_path, capsys):
    bad = write_lines(tmp_path / "sst-bad.csv", SST_DEV + ["6\tsst-6\t a film .\t7"])
    status = minbert(["evaluate", "--model", str(saved_model), "--tasks", "sst", "--sst_dev", str(bad),
                      "--sst_test", str(bad), "--output_dir", str(tmp_path / "out")])
    assert status == 2
    assert "sst-bad.csv, line 8, column 'sentiment'" in capsys.readouterr().err


def test_skip_bad_rows_scores_the_rest_and_reports_the_count(saved_model, tmp_path, capsys):
    bad = write_lines(tmp_path / "sst-bad.csv", SST_DEV + ["6\tsst-6\t a film .\t7"])
    status = minbert(["evaluate", "--model", str(saved_model), "--tasks", "sst", "--sst_dev", str(bad),
                      "--sst_test", str(bad), "--output_dir", str(tmp_path / "out"), "--skip_bad_rows",
                      "--no_progress"])
    assert status == 0
    assert "skipped 1 bad row(s): line 8, column 'sentiment'" in capsys.readouterr().out
    assert len(read_prediction_file(tmp_path / "out" / "sst-dev-output.csv", "sst")[0]) == 6
    skipped = json.loads((tmp_path / "out" / "metrics.json").read_text())["skipped_rows"]
    assert [(record["file"], record["count"]) for record in skipped] == [(str(bad), 1)]  # the dev file: the test file has no labels to be bad


def test_an_earlier_runs_predictions_this_run_does_not_write_are_removed(saved_model, data_dir, tmp_path, capsys):
    evaluate = ["evaluate", "--model", str(saved_model), "--data_dir", str(data_dir), "--output_dir", str(tmp_path),
                "--no_progress"]
    assert minbert(evaluate) == 0 and (tmp_path / "sts-test-output.csv").is_file()
    assert minbert([*evaluate, "--tasks", "sst"]) == 0
    assert sorted(path.name for path in tmp_path.glob("*-output.csv")) == ["sst-dev-output.csv", "sst-test-output.csv"]
    assert f"removed {tmp_path / 'sts-test-output.csv'}: an earlier run's predictions" in capsys.readouterr().out


@pytest.fixture
def sst_only_model(tmp_path):
    config = MinBertConfig(vocab_size=120, hidden_size=32, num_hidden_layers=1, num_attention_heads=4,
                           intermediate_size=64, max_position_embeddings=64,
                           tasks={"sst": MinBertConfig().tasks["sst"]})
    MinBertForMultitask(config).save_pretrained(tmp_path / "sst-only")
    word_tokenizer(WORDS).save_pretrained(tmp_path / "sst-only")
    return tmp_path / "sst-only"


def test_a_task_the_model_has_no_head_for_is_an_error(sst_only_model, tmp_path, data_dir, capsys):
    status = minbert(["evaluate", "--model", str(sst_only_model), "--data_dir", str(data_dir),
                      "--output_dir", str(tmp_path / "out"), "--tasks", "sst", "para", "sts"])
    assert status == 2
    assert "has no head for ['para', 'sts']" in capsys.readouterr().err


def test_by_default_a_model_is_scored_on_its_own_tasks(sst_only_model, tmp_path, data_dir):
    assert minbert(["evaluate", "--model", str(sst_only_model), "--data_dir", str(data_dir),
                    "--output_dir", str(tmp_path / "out"), "--no_progress"]) == 0
    assert set(json.loads((tmp_path / "out" / "metrics.json").read_text())) == {"sst", "skipped_rows"}


@pytest.mark.parametrize("record, kind", [("training_config.json", "a trained model"),
                                          ("ensemble_selection.json", "an ensemble")])
def test_an_output_dir_holding_a_models_record_is_refused_before_reading_data(saved_model, tmp_path, capsys,
                                                                              monkeypatch, record, kind):
    from hf_minbert.commands import evaluate as evaluate_command
    from tests.helpers import refused_calls

    reads = refused_calls(monkeypatch, evaluate_command, "read_files")
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / record).write_text("{}")
    status = minbert(["evaluate", "--model", str(saved_model), "--sst_dev", "unused.csv", "--tasks", "sst",
                      "--output_dir", str(tmp_path / "model")])
    assert status == 2 and reads == []
    assert f"holds {kind} whose metrics.json is its record" in capsys.readouterr().err


def test_an_output_dir_below_a_file_is_refused_before_reading_data(saved_model, tmp_path, capsys, monkeypatch):
    from hf_minbert.commands import evaluate as evaluate_command
    from tests.helpers import refused_calls

    reads = refused_calls(monkeypatch, evaluate_command, "read_files")
    (tmp_path / "afile").write_text("x")
    status = minbert(["evaluate", "--model", str(saved_model), "--sst_dev", "unused.csv", "--tasks", "sst",
                      "--output_dir", str(tmp_path / "afile" / "scores")])
    assert status == 2 and reads == []
    assert capsys.readouterr().err.strip() == (
        f"minbert evaluate: --output_dir {tmp_path / 'afile' / 'scores'}: {tmp_path / 'afile'} is a file, not a folder")


def _sts_predictions(saved_model, dev_file, output_dir, *flags):
    status = minbert(["evaluate", "--model", str(saved_model), "--tasks", "sts", "--sts_dev", str(dev_file),
                      "--sts_test", str(dev_file), "--output_dir", str(output_dir), "--no_progress", *flags])
    assert status == 0
    return read_prediction_file(output_dir / "sts-dev-output.csv", "sts")[1]


def test_average_pair_orders_scores_a_pair_the_same_in_either_order(tmp_path):
    saved_model = tmp_path / "model"
    torch.manual_seed(0)  # wide initial weights: at BERT's initializer_range a random head answers nearly constantly
    MinBertForMultitask(MinBertConfig(vocab_size=120, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                                      intermediate_size=64, initializer_range=0.5)).save_pretrained(saved_model)
    word_tokenizer(WORDS).save_pretrained(saved_model)
    swapped = [STS_DEV[0]] + ["\t".join(line.split("\t")[i] for i in (0, 1, 3, 2, 4)) for line in STS_DEV[1:]]
    given, reversed_ = write_lines(tmp_path / "given.csv", STS_DEV), write_lines(tmp_path / "swapped.csv", swapped)
    plain = [_sts_predictions(saved_model, path, tmp_path / path.stem) for path in (given, reversed_)]
    averaged = [_sts_predictions(saved_model, path, tmp_path / f"{path.stem}-averaged", "--average_pair_orders", "sts")
                for path in (given, reversed_)]
    assert max(abs(a - b) for a, b in zip(*plain)) > 1e-3, "the random cross-encoder should depend on the order"
    assert averaged[0] == pytest.approx(averaged[1], abs=1e-5)


def test_average_pair_orders_on_a_single_sentence_head_is_an_error(saved_model, data_dir, tmp_path, capsys):
    status = minbert(["evaluate", "--model", str(saved_model), "--data_dir", str(data_dir),
                      "--output_dir", str(tmp_path / "out"), "--average_pair_orders", "sst"])
    assert status == 2
    assert "--average_pair_orders sst: only a cross-encoded sentence pair has an order" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


@pytest.fixture(scope="module")
def plain_bert(tmp_path_factory):
    """A standard BERT checkpoint (transformers' BertModel): an encoder, no task heads."""
    folder = tmp_path_factory.mktemp("bert")
    torch.manual_seed(0)
    config = BertConfig(vocab_size=120, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                        intermediate_size=64, max_position_embeddings=64)
    BertModel(config).save_pretrained(folder)
    word_tokenizer(WORDS).save_pretrained(folder)
    return folder


def test_a_checkpoint_without_trained_heads_is_refused_before_any_output(plain_bert, data_dir, tmp_path, capsys):
    status = minbert(["evaluate", "--model", str(plain_bert), "--data_dir", str(data_dir),
                      "--output_dir", str(tmp_path / "out"), "--no_progress"])
    assert status == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"minbert evaluate: {plain_bert} holds no trained head for sst, para, sts")
    assert "--allow_untrained_heads" in err and len(err.splitlines()) == 1
    assert not (tmp_path / "out").exists()


def test_allow_untrained_heads_scores_them_and_says_they_are_untrained(plain_bert, data_dir, tmp_path, capsys):
    status = minbert(["evaluate", "--model", str(plain_bert), "--data_dir", str(data_dir), "--tasks", "sst",
                      "--output_dir", str(tmp_path / "out"), "--no_progress", "--allow_untrained_heads"])
    assert status == 0
    assert "note: scoring untrained (randomly initialized) heads: sst" in capsys.readouterr().out
    assert (tmp_path / "out" / "sst-dev-output.csv").is_file()


def test_offline_a_missing_folder_that_could_be_a_hub_id_is_no_such_directory_nor_cached(
        data_dir, tmp_path, capsys, monkeypatch):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)  # "runs/missing": a relative path, or the Hub id of user "runs"
    status = minbert(["evaluate", "--model", "runs/missing", "--data_dir", str(data_dir), "--output_dir", "out"])
    assert status == 2
    assert capsys.readouterr().err.strip() == ("minbert evaluate: --model runs/missing: no such directory, nor a Hub "
                                               "model of that id in the cache (HF_HUB_OFFLINE is set)")


def test_a_model_directory_that_does_not_exist_is_no_such_directory(data_dir, tmp_path, capsys):
    missing = tmp_path / "no-model-here"
    status = minbert(["evaluate", "--model", str(missing), "--data_dir", str(data_dir), "--output_dir", str(tmp_path)])
    assert status == 2
    assert capsys.readouterr().err.strip() == f"minbert evaluate: --model {missing}: no such directory"


@pytest.mark.parametrize("flags, error", [
    (["--tasks", "para", "--sst_dev", "nothere.csv"], "--sst_dev: sst is not among the tasks scored (para)"),
    (["--tasks", "para", "--sts_test", "nothere.csv"], "--sts_test: sts is not among the tasks scored (para)"),
    (["--tasks", "sst", "--average_pair_orders", "para"], "--average_pair_orders para: para is not among the tasks scored (sst)"),
])
def test_a_file_or_option_for_a_task_not_scored_is_refused_before_reading_data(
        saved_model, data_dir, tmp_path, capsys, flags, error):
    status = minbert(["evaluate", "--model", str(saved_model), "--data_dir", str(data_dir),
                      "--output_dir", str(tmp_path / "out"), *flags])
    assert status == 2 and capsys.readouterr().err.strip() == f"minbert evaluate: {error}"


@pytest.mark.parametrize("device, reason", [
    ("gpu0", "not a torch device (cpu, cuda, cuda:1, mps, ...)"),
    ("cuda:99", "this torch cannot use that device ("),  # no CUDA here, or no 100th GPU
    ("meta", "holds no data to compute with"),
])
def test_a_device_torch_cannot_use_is_one_line_naming_the_flag_before_reading_data(
    saved_model, data_dir, tmp_path, capsys, monkeypatch, device, reason
):
    from hf_minbert.commands import evaluate as evaluate_command

    reads = []
    monkeypatch.setattr(evaluate_command, "read_task_file", lambda *args, **kwargs: reads.append(args))
    status = minbert(["evaluate", "--model", str(saved_model), "--data_dir", str(data_dir),
                      "--output_dir", str(tmp_path / "out"), "--device", device])
    error = capsys.readouterr().err.strip().splitlines()
    assert status == 2 and len(error) == 1 and error[0].startswith(f"minbert evaluate: --device {device}: {reason}")
    assert reads == [] and not (tmp_path / "out").exists()


def test_a_truncated_weights_file_is_an_error_naming_it(saved_model, data_dir, tmp_path, capsys):
    broken = tmp_path / "broken"
    shutil.copytree(saved_model, broken)
    weights = broken / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    status = minbert(["evaluate", "--model", str(broken), "--data_dir", str(data_dir), "--output_dir", str(tmp_path)])
    assert status == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"minbert evaluate: --model {broken}: cannot read {weights} (truncated or corrupt?)")
    assert len(err.splitlines()) == 1


# ------------------------------------------------------------------------------------------------------
# The evaluation core
# ------------------------------------------------------------------------------------------------------


def sts_dev_rows():
    return datasets.Dataset.from_dict({
        "id": ["a", "b", "c", "d"],
        "sentence1": ["a dog", "the cat sat on the mat", "a good film", "it is"],
        "sentence2": ["the dog ran in the park", "a cat", "a very fine film", "it is not"],
        "similarity": [1.0, 3.5, 4.0, 2.0],
    })


def test_predictions_do_not_depend_on_batch_size_or_length_sorting():
    model, rows = tiny_model(), sts_dev_rows()
    one_by_one = predict_task(model, word_tokenizer(WORDS), rows, "sts", batch_size=1, progress=False)
    batched = predict_task(model, word_tokenizer(WORDS), rows, "sts", batch_size=3, progress=False)
    assert one_by_one.ids == batched.ids == ["a", "b", "c", "d"]
    assert np.allclose(one_by_one.scores, batched.scores, atol=1e-5)


def test_classification_predictions_are_class_probabilities():
    rows = datasets.Dataset.from_dict({"id": ["x", "y"], "sentence": ["a fine film", "a dull film ."]})
    predictions = predict_task(tiny_model(), word_tokenizer(WORDS), rows, "sst", progress=False)
    assert predictions.scores.shape == (2, 5)
    assert np.allclose(predictions.scores.sum(axis=1), 1.0)


def test_paraphrase_predictions_are_probabilities_matching_the_logit_sign():
    rows = datasets.Dataset.from_dict({"id": ["x"], "sentence1": ["a dog"], "sentence2": ["the dog"]})
    model, tokenizer = tiny_model(), word_tokenizer(WORDS)
    predictions = predict_task(model, tokenizer, rows, "para", progress=False)
    encoded = tokenizer(["a dog"], ["the dog"], return_tensors="pt")
    with torch.no_grad():
        logit = model(**encoded, task="para").logits[0].item()
    assert predictions.scores[0] == pytest.approx(torch.sigmoid(torch.tensor(logit)).item(), abs=1e-6)
    assert predictions_to_labels(predictions.scores, "binary") == [int(logit > 0)]


def test_bf16_predictions_stay_close_to_float32():
    model, rows = tiny_model(), sts_dev_rows()
    full = predict_task(model, word_tokenizer(WORDS), rows, "sts", progress=False)
    half = predict_task(model, word_tokenizer(WORDS), rows, "sts", bf16=True, progress=False)
    assert np.allclose(full.scores, half.scores, atol=0.05)


def test_prediction_leaves_a_training_model_in_training_mode():
    model = tiny_model().train()
    predict_task(model, word_tokenizer(WORDS), sts_dev_rows(), "sts", progress=False)
    assert model.training


def test_max_length_beyond_the_models_positions_is_refused():
    with pytest.raises(ValueError, match="max_length=100 exceeds the model's max_position_embeddings=64"):
        predict_task(tiny_model(), word_tokenizer(WORDS), sts_dev_rows(), "sts", max_length=100, progress=False)


def test_similarity_labels_are_clipped_to_the_label_range_as_the_pipeline_answers():
    from transformers import pipeline

    model, tokenizer, rows = tiny_model(), word_tokenizer(WORDS), sts_dev_rows()
    model.heads["sts"].layers[-1].bias.data.fill_(-1.0)  # pushed below 0, where no gold label lies
    result = evaluate_task(model, tokenizer, rows, "sts")
    assert (result.predictions.scores < 0).any() and min(result.labels) == 0.0
    similarity = pipeline("sentence-similarity", model=model, tokenizer=tokenizer)
    answers = [similarity((a, b))["score"] for a, b in zip(rows["sentence1"], rows["sentence2"])]
    assert result.labels == pytest.approx(answers, abs=1e-6)


def test_evaluate_model_scores_each_task_and_adds_the_overall_scores():
    sst = datasets.Dataset.from_dict({"id": ["x", "y"], "sentence": ["a fine film", "a dull film"], "sentiment": [3, 1]})
    para = datasets.Dataset.from_dict({"id": ["p"], "sentence1": ["a dog"], "sentence2": ["the dog"], "is_duplicate": [1.0]})
    metrics = evaluate_model(tiny_model(), word_tokenizer(WORDS), {"sst": sst, "para": para, "sts": sts_dev_rows()})
    assert list(metrics) == ["sst", "para", "sts", "overall", "mean"]


def test_a_head_named_unlike_its_task_scores_that_tasks_rows():
    tasks = {"sts_bi": {"kind": "regression", "label_range": [0, 5], "pair_encoding": "bi"}}
    config = MinBertConfig(vocab_size=120, hidden_size=32, num_hidden_layers=1, num_attention_heads=4,
                           intermediate_size=64, max_position_embeddings=64, tasks=tasks)
    metrics = evaluate_model(MinBertForMultitask(config), word_tokenizer(WORDS), {"sts": sts_dev_rows()},
                             heads={"sts": "sts_bi"})
    assert set(metrics) == {"sts"} and set(metrics["sts"]) == {"pearson", "spearman"}


def test_a_head_of_another_kind_is_refused_for_a_tasks_rows():
    with pytest.raises(ValueError, match="task 'sts' scored by head 'para': its head is binary"):
        evaluate_model(tiny_model(), word_tokenizer(WORDS), {"sts": sts_dev_rows()}, heads={"sts": "para"})


def test_evaluate_model_refuses_unlabelled_rows_before_predicting():
    rows = datasets.Dataset.from_dict({"id": ["x"], "sentence": ["a fine film"]})
    with pytest.raises(ValueError, match="task 'sst': the rows have no 'sentiment' column"):
        evaluate_model(tiny_model(), word_tokenizer(WORDS), {"sst": rows})


def test_reading_a_prediction_file_with_the_wrong_header_names_file_and_line(tmp_path):
    path = write_lines(tmp_path / "sts-dev-output.csv", ["id \t Predicted_Sentiment ", "a , 1 "])
    with pytest.raises(ValueError, match=r"sts-dev-output\.csv, line 1: expected header"):
        read_prediction_file(path, "sts")


def test_the_table_keeps_its_columns_for_a_task_name_longer_than_the_course_names():
    from types import SimpleNamespace

    from hf_minbert.commands.evaluate import format_table

    def row(task):
        result = SimpleNamespace(metrics={"accuracy": 0.5}, predictions=SimpleNamespace(truncation=SimpleNamespace(truncated=0)))
        return task, "dev", SimpleNamespace(rows=8, skipped=[]), result

    lines = format_table([row("sst"), row("entailment_long")], {}).splitlines()
    assert len({line.index("dev") for line in lines[2:4]}) == 1 and lines[3].startswith("entailment_long dev")
