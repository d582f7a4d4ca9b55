"""What the `minbert` commands share (hf_minbert/commands/common.py, the dispatcher in hf_minbert/cli.py)."""
from pathlib import Path

import pytest

from hf_minbert.cli import main as minbert
from hf_minbert.commands.common import first_line


def test_first_line_of_an_error_is_its_first_non_blank_line_stripped():
    assert first_line(OSError("\n  Can't load the config.  \nTraceback (most recent call last):\n ...")) == "Can't load the config."


def test_first_line_of_an_error_without_a_message_is_its_type_name():
    assert first_line(ValueError()) == "ValueError"
    assert first_line(ValueError(" \n ")) == "ValueError"


@pytest.mark.parametrize("argv, flag", [
    (["ensemble", "--models", "a", "b", "--models", "c", "--output_dir", "out"], "--models"),
    (["evaluate", "--model", "m", "--tasks", "sst", "--tasks", "sts"], "--tasks"),
    (["train", "--train_sources", "sst=a.csv", "--train_sources=para=b.csv"], "--train_sources"),
    (["distill", "--fold_teachers", "a", "b", "--fold_teachers", "c"], "--fold_teachers"),
])
def test_a_list_flag_given_twice_is_refused_in_one_line_before_any_work(argv, flag, capsys):
    assert minbert(argv) == 2
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        f"minbert {argv[0]}: {flag} is given twice (the second would drop the first's values): give all its values "
        f"after one {flag}")


@pytest.mark.parametrize("argv", [
    ["ensemble", "--models", "a", "b", "--tasks", "sst", "sts", "sst", "--output_dir", "out"],
    ["evaluate", "--model", "m", "--tasks", "sst", "sst", "--output_dir", "out"],
    ["pretrain-mlm", "--tasks", "sst,sst", "--output_dir", "out"],
    ["train", "--tasks", "sst,para,sst", "--output_dir", "out"],
], ids=lambda argv: argv[0])
def test_a_task_named_twice_is_refused_in_one_line_before_any_work(argv, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert minbert(argv) == 2
    assert capsys.readouterr().err.strip().splitlines()[-1] == f"minbert {argv[0]}: --tasks: sst named twice"
    assert not (tmp_path / "out").exists()


def test_a_flag_of_one_value_given_again_overrides_the_first():
    from hf_minbert.commands.train_arguments import parse_arguments

    training = parse_arguments(["--output_dir", "out", "--seed", "1", "--seed", "2"])[2]
    assert training.seed == 2


def test_a_path_flag_given_with_a_tilde_after_its_equals_sign_is_read_from_the_home_folder(tmp_path, monkeypatch):
    from hf_minbert.commands.train_arguments import parse_arguments

    monkeypatch.setenv("HOME", str(tmp_path))
    data = parse_arguments(["--output_dir", "out", "--data_dir=~/data", "--sst_dev", "~/dev.csv"])[1]
    assert (data.data_dir, data.sst_dev) == (str(tmp_path / "data"), str(tmp_path / "dev.csv"))


def test_a_training_file_given_with_a_tilde_is_the_home_folders_not_the_data_folders(tmp_path, monkeypatch):
    from hf_minbert.data.sources import parse_task_sources

    monkeypatch.setenv("HOME", str(tmp_path))
    assert parse_task_sources("sst=ids-sst-train.csv,~/trees.txt", "data") == (
        "sst", [Path("data/ids-sst-train.csv"), tmp_path / "trees.txt"])


def test_a_command_reads_a_quoted_tilde_in_a_path_as_the_home_folder(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("HOME", str(tmp_path))
    assert minbert(["card", "~/no-such-model"]) == 2
    assert str(tmp_path / "no-such-model") in capsys.readouterr().err


def test_a_checkpoint_path_given_with_a_tilde_from_python_is_loaded_from_the_home_folder(tmp_path, monkeypatch):
    from hf_minbert.commands.train_arguments import ModelArguments, model_path

    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / "base").mkdir()
    assert model_path(ModelArguments(model_name_or_path="~/base")) == str(tmp_path / "base")


def test_a_tokenizer_the_commands_load_saves_the_names_of_its_inputs(tmp_path, minilm_path):
    # transformers 5.0-5.2 load a remote-code model's tokenizer as a generic one returning only the inputs its
    # config names: without token_type_ids a sentence pair reads as one sentence
    import json

    from hf_minbert.commands.common import load_tokenizer

    load_tokenizer(minilm_path).save_pretrained(tmp_path)
    saved = json.loads((tmp_path / "tokenizer_config.json").read_text())
    assert saved["model_input_names"] == ["input_ids", "token_type_ids", "attention_mask"]


def test_an_interrupted_training_command_says_in_one_line_where_its_checkpoints_are(monkeypatch, capsys):
    import hf_minbert.commands.train as train_command

    def interrupted(argv):
        raise KeyboardInterrupt

    monkeypatch.setattr(train_command, "main", interrupted)
    assert minbert(["train", "--output_dir", "out"]) == 130
    assert capsys.readouterr().err.strip() == (
        "minbert train: interrupted; --output_dir is as it was, and the checkpoints saved so far are in "
        "<output_dir>.partial: continue with --resume_from_checkpoint <output_dir>.partial/checkpoint-N")


@pytest.mark.parametrize("flag", [["--output_dir", "{out}"], ["--output_dir={out}"]])
def test_an_interrupted_training_command_names_its_last_checkpoint_where_it_saved_one(monkeypatch, capsys, tmp_path, flag):
    import hf_minbert.commands.train as train_command

    for step in (2, 10):  # the last by step, not by name
        (tmp_path / "out.partial" / f"checkpoint-{step}").mkdir(parents=True)

    def interrupted(argv):
        raise KeyboardInterrupt

    monkeypatch.setattr(train_command, "main", interrupted)
    assert minbert(["train", *(part.format(out=tmp_path / "out") for part in flag)]) == 130
    assert capsys.readouterr().err.strip() == (
        f"minbert train: interrupted; --output_dir is as it was, and the checkpoints saved so far are in "
        f"{tmp_path / 'out.partial'}: continue with --resume_from_checkpoint {tmp_path / 'out.partial' / 'checkpoint-10'}")


@pytest.mark.parametrize("command", [
    ["evaluate", "--model", "{adapters}", "--output_dir", "{out}"],
    ["train", "--model_name_or_path", "{adapters}", "--output_dir", "{out}"],
    ["serve", "{adapters}"],
    ["distill", "--teacher", "{adapters}", "--output_dir", "{out}"],
    ["pretrain-mlm", "--model_name_or_path", "{adapters}", "--output_dir", "{out}"],
    ["ensemble", "--models", "{adapters}", "{adapters}2", "--output_dir", "{out}"],
    ["demo", "--model", "{adapters}"],
    ["card", "{adapters}"],
])
@pytest.mark.parametrize("layout", ["adapter_config.json", "sst/adapter_config.json"])
def test_a_folder_of_peft_adapters_is_refused_naming_the_exported_model_to_pass_instead(command, layout, tmp_path, capsys):
    adapters = tmp_path / "model" / "adapter"
    (adapters / layout).parent.mkdir(parents=True)
    (adapters / layout).write_text('{"peft_type": "LORA"}')
    argv = [part.format(adapters=adapters, out=tmp_path / "out") for part in command]
    assert minbert(argv) == 2
    error = capsys.readouterr().err.strip()
    assert f"{adapters}: PEFT adapters, not a model: pass the exported model folder" in error
    assert len(error.splitlines()) == 1
