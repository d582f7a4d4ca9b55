"""`minbert train CONFIG.json|yaml [--flag value ...]` (and `pretrain-mlm`): the file's values are read as the
command line reads the same values, a bad one is one line naming the file and the key (or the line) before
any data is read, and flags after the file override it."""
import json

import pytest

from hf_minbert.cli import main as minbert
from hf_minbert.commands import train as train_command
from hf_minbert.commands.train_arguments import parse_arguments
from tests.helpers import refused_calls


@pytest.fixture
def data_reads(monkeypatch):
    """The calls of `minbert train`'s data reader: a check made before any data is read leaves it empty."""
    return refused_calls(monkeypatch, train_command, "load_task_data")


def write_config(folder, name, values, output):
    """`values` plus an output folder as a JSON or YAML file (by `name`'s suffix)."""
    import yaml

    values = {"output_dir": str(output), **values}
    text = json.dumps(values) if name.endswith(".json") else yaml.safe_dump(values)
    (folder / name).write_text(text, encoding="utf-8")
    return folder / name


def one_error_line(capsys):
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("minbert train: "), lines
    return lines[0]


def test_a_yaml_number_written_1e_4_is_a_float_as_on_the_command_line(tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text(f"output_dir: {tmp_path / 'out'}\nlearning_rate: 1e-4\n", encoding="utf-8")  # YAML: a string
    training = parse_arguments([str(config)])[2]
    assert training.learning_rate == 1e-4 and isinstance(training.learning_rate, float)


def test_yaml_numbers_with_a_leading_zero_or_a_colon_read_as_on_the_command_line(tmp_path):
    config = tmp_path / "c.yaml"  # YAML 1.1: octal 34, base-60 90 and 750
    config.write_text(f"output_dir: {tmp_path / 'out'}\nseed: 042\nsave_steps: 7\nrun_name: 12:30\n", encoding="utf-8")
    training = parse_arguments([str(config)])[2]
    assert (training.seed, training.save_steps, training.run_name) == (42, 7, "12:30")


def test_a_yaml_integer_with_a_leading_zero_inside_a_mapping_is_the_decimal_integer(tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text(f"output_dir: {tmp_path / 'out'}\nlr_scheduler_type: warmup_stable_decay\n"
                      "lr_scheduler_kwargs: {num_decay_steps: 010}\n", encoding="utf-8")
    assert parse_arguments([str(config)])[2].lr_scheduler_kwargs == {"num_decay_steps": 10}


@pytest.mark.parametrize("key", ["run_name", "peft_config"])
def test_a_mapping_for_a_string_flag_that_is_not_per_task_is_refused_naming_it(tmp_path, key):
    config = tmp_path / "c.yaml"
    config.write_text(f"output_dir: {tmp_path / 'out'}\n{key}: {{a: 1}}\n", encoding="utf-8")
    with pytest.raises(ValueError, match=rf"{key}.*expected a string, got a mapping"):
        parse_arguments([str(config)])


@pytest.mark.parametrize("name", ["c.json", "c.yaml"])
def test_an_empty_config_file_gives_no_values(tmp_path, name):
    from hf_minbert.commands.config_file import read_config

    (tmp_path / name).write_text("\n", encoding="utf-8")
    assert read_config(tmp_path / name) == {}


def test_a_yaml_number_written_1e_6_inside_a_mapping_is_a_float_as_in_json(tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text(f"output_dir: {tmp_path / 'out'}\nlr_scheduler_type: cosine_with_min_lr\n"
                      "lr_scheduler_kwargs: {min_lr: 1e-6}\n", encoding="utf-8")
    assert parse_arguments([str(config)])[2].lr_scheduler_kwargs == {"min_lr": 1e-6}


@pytest.mark.parametrize("name", ["c.json", "c.yaml"])
@pytest.mark.parametrize("key, value, expected", [
    ("num_train_epochs", "three", "expected a number, got 'three'"),
    ("per_device_train_batch_size", 3.5, "expected a whole number, got 3.5"),
    ("bf16", "maybe", "expected true or false, got 'maybe'"),
    ("lr_scheduler_type", "sideways", "expected one of linear, cosine"),
    ("learning_rate", None, "expected a number, got null"),
])
def test_a_value_of_the_wrong_type_is_one_line_naming_the_file_and_key_before_the_data_is_read(
    tmp_path, capsys, data_reads, name, key, value, expected
):
    config = write_config(tmp_path, name, {key: value}, tmp_path / "out")
    assert minbert(["train", str(config)]) == 2
    assert one_error_line(capsys).startswith(f"minbert train: {config}: {key}: {expected}")
    assert data_reads == []


@pytest.mark.parametrize("name, text, where", [
    ("c.yaml", "num_train_epochs: 1\noutput_dir: [unclosed\n", ", line 3, column 1: not valid YAML: "),
    ("c.json", '{"num_train_epochs": 1,\n "output_dir": }\n', ", line 2, column 16: not valid JSON: "),
    ("c.yaml", "num_train_epochs: 1\nlearning_rate: 1e-4\nnum_train_epochs: 2\n",
     ", line 3: 'num_train_epochs' is given twice"),  # which value was meant cannot be told
    ("c.json", '{"num_train_epochs": 1, "num_train_epochs": 2}', ": 'num_train_epochs' is given twice"),
])
def test_a_syntax_error_or_a_key_given_twice_is_one_line_naming_the_file_and_where(
    tmp_path, capsys, data_reads, name, text, where
):
    config = tmp_path / name
    config.write_text(text, encoding="utf-8")
    assert minbert(["train", str(config)]) == 2
    assert one_error_line(capsys).startswith(f"minbert train: {config}{where}")
    assert data_reads == []


def test_null_for_a_setting_with_a_default_is_refused_naming_the_default(tmp_path, capsys, data_reads):
    config = tmp_path / "c.yaml"
    config.write_text("output_dir: null\n", encoding="utf-8")  # would train into transformers' own default folder
    assert minbert(["train", str(config)]) == 2
    assert one_error_line(capsys) == (f"minbert train: {config}: output_dir: null is not a setting; leave the key out "
                                      "for its default ('runs/minbert')")
    assert data_reads == []


def test_null_where_it_is_a_setting_is_read_as_none(tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text(f"output_dir: {tmp_path / 'out'}\nsave_total_limit: null\n", encoding="utf-8")  # keep all
    assert parse_arguments([str(config)])[2].save_total_limit is None


def test_yaml_merge_keys_read_as_yaml_means_them_a_written_key_overriding_a_merged_one(tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text(f"output_dir: {tmp_path / 'out'}\nsmart_weight: &w {{sst: 2, para: 6, sts: 8}}\n"
                      "task_weights:\n  <<: *w\n  sts: 4\n", encoding="utf-8")
    assert parse_arguments([str(config)])[2].task_weights == "sst=2,para=6,sts=4"


def test_an_unknown_key_is_named_with_the_file_and_the_nearest_flag(tmp_path, capsys, data_reads):
    config = write_config(tmp_path, "c.yaml", {"learning_rat": 1e-4}, tmp_path / "out")
    assert minbert(["train", str(config)]) == 2
    assert one_error_line(capsys) == (f"minbert train: {config}: unknown key 'learning_rat' "
                                      "(did you mean 'learning_rate'?)")
    assert data_reads == []


def test_a_config_files_suffix_is_read_in_any_case(tmp_path):
    config = tmp_path / "run.JSON"
    config.write_text(json.dumps({"output_dir": str(tmp_path / "out"), "learning_rate": 1e-4}), encoding="utf-8")
    assert parse_arguments([str(config)])[2].learning_rate == 1e-4


def test_flags_after_a_config_file_override_its_values(tmp_path):
    config = write_config(tmp_path, "c.yaml", {"learning_rate": "1e-4", "num_train_epochs": 2}, tmp_path / "out")
    training = parse_arguments([str(config), "--learning_rate", "3e-4"])[2]
    assert (training.learning_rate, training.num_train_epochs) == (3e-4, 2.0)


def test_a_config_file_after_flags_is_refused_saying_it_comes_first(tmp_path, capsys, data_reads):
    config = write_config(tmp_path, "c.yaml", {}, tmp_path / "out")
    assert minbert(["train", "--learning_rate", "3e-4", str(config)]) == 2
    assert f"{config}: a config file comes first, before any flag" in one_error_line(capsys)
    assert data_reads == []


@pytest.mark.parametrize("where", ["first", "last", "equals"])
def test_a_config_file_given_with_config_is_read_as_one_given_first(tmp_path, where):
    config = write_config(tmp_path, "c.yaml", {"learning_rate": "1e-4", "num_train_epochs": 2}, tmp_path / "out")
    argv = {"first": ["--config", str(config), "--learning_rate", "3e-4"],
            "last": ["--learning_rate", "3e-4", "--config", str(config)],
            "equals": ["--learning_rate", "3e-4", f"--config={config}"]}[where]
    training = parse_arguments(argv)[2]
    assert (training.learning_rate, training.num_train_epochs) == (3e-4, 2.0)


def test_two_config_files_are_refused_before_the_data_is_read(tmp_path, capsys, data_reads):
    config = write_config(tmp_path, "c.yaml", {}, tmp_path / "out")
    assert minbert(["train", str(config), "--config", str(config)]) == 2
    assert one_error_line(capsys) == "minbert train: give one config file: first, or with --config FILE"
    assert data_reads == []


def test_a_nested_mapping_as_a_tasks_value_is_refused_naming_the_file_and_key(tmp_path, capsys, data_reads):
    config = write_config(tmp_path, "c.yaml", {"train_sources": {"sst": {"a": "b"}}}, tmp_path / "out")
    assert minbert(["train", str(config)]) == 2
    assert f"{config}: train_sources: a task's value is a value or a list of values" in one_error_line(capsys)
    assert data_reads == []


def test_a_mapping_for_a_per_task_option_reads_as_its_task_value_pairs(tmp_path):
    config = write_config(tmp_path, "c.yaml", {"smart_weight": {"sst": 2, "para": 6}}, tmp_path / "out")
    training = parse_arguments([str(config)])[2]
    assert training.per_task("smart_weight", ["sst", "para", "sts"], 0.0) == {"sst": 2.0, "para": 6.0, "sts": 0.0}


def test_an_unquoted_yaml_no_is_the_string_a_strategy_flag_takes(tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text(f"output_dir: {tmp_path / 'out'}\neval_strategy: no\nsave_strategy: no\n", encoding="utf-8")
    training = parse_arguments([str(config)])[2]
    assert (training.eval_strategy, training.save_strategy) == ("no", "no")


def test_an_unquoted_yaml_no_is_false_for_a_boolean_flag(tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text(f"output_dir: {tmp_path / 'out'}\nbf16: no\n", encoding="utf-8")
    assert parse_arguments([str(config)])[2].bf16 is False


def test_a_mapping_for_a_per_task_list_option_reads_as_its_task_file_lists(tmp_path):
    values = {"train_sources": {"sst": ["a.csv", "b.csv"], "para": "c.csv"}}
    data = parse_arguments([str(write_config(tmp_path, "c.yaml", values, tmp_path / "out"))])[1]
    assert sorted(data.train_sources) == ["para=c.csv", "sst=a.csv,b.csv"]


def test_pretrain_mlm_reads_a_config_file_as_train_does(tmp_path):
    from hf_minbert.commands.pretrain_mlm import parse_arguments as parse_mlm_arguments

    config = tmp_path / "c.yaml"
    config.write_text(f"output_dir: {tmp_path / 'out'}\nlearning_rate: 1e-4\nmlm_probability: 0.2\n", encoding="utf-8")
    mlm, training = parse_mlm_arguments([str(config), "--mlm_probability", "0.3"])
    assert training.learning_rate == 1e-4 and isinstance(training.learning_rate, float)
    assert mlm.mlm_probability == 0.3


def test_a_path_starting_with_a_tilde_is_read_from_the_home_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    config = write_config(tmp_path, "c.yaml", {"data_dir": "~/data", "fold_teachers": ["~/a", "~/b"]}, "~/out")
    from hf_minbert.commands.distill import DistillationArguments

    _, data, training, _, distill = parse_arguments([str(config)], extra=(DistillationArguments,))
    assert data.data_dir == str(tmp_path / "data") and training.output_dir == str(tmp_path / "out")
    assert distill.fold_teachers == [str(tmp_path / "a"), str(tmp_path / "b")]
