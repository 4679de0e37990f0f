"""errors.printable: what an outside string becomes before it reaches a terminal (issue 29)."""

import click
import pytest

from ganforge.errors import GanforgeError, cli_errors, first_line, printable


@pytest.mark.parametrize("text, shown", [
    ("plain, é and 日本 stay", "plain, é and 日本 stay"),
    ("two\nlines\r\tand a tab", r"two\nlines\r\tand a tab"),
    ("\x1b[2J\x1b[31mred", r"\x1b[2J\x1b[31mred"),
    ("c1 \x9b control, bell \x07, nul \x00", r"c1 \x9b control, bell \x07, nul \x00"),
    ("lone \ud800 and escaped \udcff surrogates", r"lone \ud800 and escaped \udcff surrogates"),
    ("line\u2028separator", r"line\u2028separator"),
])
def test_printable_escapes_what_a_terminal_would_act_on(text, shown):
    assert printable(text) == shown
    printable(text).encode("utf-8")  # no lone surrogate left to fail the write


def test_printable_cuts_before_it_escapes():
    assert printable("abcdefghij", 6) == "abc..." and printable("abc", 6) == "abc"


def test_first_line_and_cli_errors_keep_one_line():
    assert first_line(ValueError("bad \x1b[2J name\nsecond line")) == r"bad \x1b[2J name"
    with pytest.raises(click.ClickException) as caught:
        with cli_errors():
            raise GanforgeError("unknown label 'x'; this model knows: 0=two\nlines")
    assert caught.value.message == r"unknown label 'x'; this model knows: 0=two\nlines"
