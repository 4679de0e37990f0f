"""gan-train --list shows every config key of every variant with its type and its real default."""

from __future__ import annotations

import dataclasses
import re
import types
import typing

import pytest
from click.testing import CliRunner

pytest.importorskip("torch")

from ganforge.train_cli import main  # noqa: E402
from ganforge.training import VARIANTS, get_variant  # noqa: E402
from ganforge.training.config import coerce, field_types  # noqa: E402

ROW = re.compile(r"^  (\S+) {2,}(\S.*?) {2,}(\S.*)$")


def _expected_type(tp) -> str:
    """The type's name as a user reads it, worked out here from the annotation."""
    args = typing.get_args(tp)
    if typing.get_origin(tp) in (typing.Union, types.UnionType) and type(None) in args:
        (inner,) = [a for a in args if a is not type(None)]
        return _expected_type(inner) + " or null"
    if typing.get_origin(tp) is list:
        return "list of " + _expected_type(args[0])
    return {int: "int", float: "float", str: "str", bool: "bool", dict: "dict"}[typing.get_origin(tp) or tp]


def _sections(output: str) -> dict[str, dict[str, tuple[str, str]]]:
    """variant name -> key -> (type, default) as --list printed them."""
    sections: dict[str, dict[str, tuple[str, str]]] = {}
    current = None
    for line in output.splitlines():
        if line and not line.startswith(("Each", " ")) and " (" in line:
            current = sections.setdefault(line.split(" (")[0], {})
        elif current is not None and (match := ROW.match(line)) and match[1] != "key":
            current[match[1]] = (match[2], match[3])
    return sections


def test_list_shows_every_key_of_every_variant_with_its_type_and_default():
    result = CliRunner().invoke(main, ["--list"])
    assert result.exit_code == 0, result.output
    sections = _sections(result.output)
    variants = {**VARIANTS, "custom": get_variant("custom")}
    assert set(sections) == set(variants)
    for name, variant in variants.items():
        cls, rows = variant.config_cls, sections[name]
        fields = {f.name: f for f in dataclasses.fields(cls)}
        assert set(rows) == set(fields), (name, set(fields) ^ set(rows))
        hints = field_types(cls)
        for key, f in fields.items():
            default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
            shown_type, shown = rows[key]
            assert shown_type == _expected_type(hints[key]), (name, key)
            # what is shown is the default, in the form --set takes back ("" is an empty value in a shell)
            back = coerce(key, "" if shown == '""' else shown, hints[key])
            assert back == default and type(back) is type(default), (name, key, shown, default)
        for alias, key in cls.ALIASES.items():
            assert f"{alias} = {key}" in result.output


def test_list_shows_a_variants_own_default_not_the_base_ones():
    sections = _sections(CliRunner().invoke(main, ["--list"]).output)
    assert sections["sine"]["epochs"] == ("int", str(VARIANTS["sine"].config_cls().epochs))
    assert sections["sine"]["g_hidden"] == ("list of int", "[32, 64]")
    assert sections["sine"]["augment"] == ("str", '""') and sections["sine"]["data"] == ("str or null", "null")
    assert {s["epochs"] for s in sections.values()} != {("int", "10")}  # the variants redeclare it
