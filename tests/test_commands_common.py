"""What the `minbert` commands share (hf_minbert/commands/common.py, the dispatcher in hf_minbert/cli.py)."""
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


def test_a_flag_of_one_value_given_again_overrides_the_first():
    from hf_minbert.commands.train_arguments import parse_arguments

    training = parse_arguments(["--output_dir", "out", "--seed", "1", "--seed", "2"])[2]
    assert training.seed == 2
