"""What the `minbert` commands share (hf_minbert/commands/common.py)."""
from hf_minbert.commands.common import first_line


def test_first_line_of_an_error_is_its_first_non_blank_line_stripped():
    assert first_line(OSError("\n  Can't load the config.  \nTraceback (most recent call last):\n ...")) == "Can't load the config."


def test_first_line_of_an_error_without_a_message_is_its_type_name():
    assert first_line(ValueError()) == "ValueError"
    assert first_line(ValueError(" \n ")) == "ValueError"
