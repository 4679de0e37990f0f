"""Every option of every command says what it does in --help."""

import importlib
import re

import click
import pytest
from click.testing import CliRunner

CLIS = {"gan-train": "ganforge.train_cli", "gan-export": "ganforge.export.cli", "gan-infer": "ganforge.inference.cli",
        "gan-bench": "ganforge.bench.cli", "gan-eval": "ganforge.evaluation.cli", "gan-serve": "ganforge.serve.cli",
        "gan-directions": "ganforge.directions.cli"}


def test_every_installed_command_is_checked_here():
    import configparser
    from pathlib import Path

    cfg = configparser.ConfigParser()
    cfg.read(Path(__file__).resolve().parents[1] / "setup.cfg")
    scripts = dict(line.split(" = ") for line in cfg["options.entry_points"]["console_scripts"].strip().splitlines())
    assert {name: target.split(":")[0] for name, target in scripts.items()} == CLIS


@pytest.mark.parametrize("name", CLIS)
def test_every_option_has_help_text(name):
    command = importlib.import_module(CLIS[name]).main
    assert command.help and len(command.help.split()) >= 5, f"{name} has no description"
    bare = [p.opts[0] for p in command.params if isinstance(p, click.Option) and len((p.help or "").split()) < 3]
    assert not bare, f"{name}: options without help text: {bare}"
    result = CliRunner().invoke(command, ["--help"])
    assert result.exit_code == 0 and "Usage:" in result.output
    assert "TEXT" not in result.output.split("--data")[1].split("\n")[0] if "--data" in result.output else True


@pytest.mark.parametrize("name", CLIS)
def test_every_command_says_its_version(name):
    import ganforge

    result = CliRunner().invoke(importlib.import_module(CLIS[name]).main, ["--version"])
    assert result.exit_code == 0 and result.output == f"{name} {ganforge.__version__}\n"


# a default said in the prose, as "(default: x)", "Default: x", "auto (default; ...)" or "default auto"
# (not openvino-default, a backend's name)
WORD_DEFAULT = re.compile(r"\(default\b|(?<![-\w])default\s*[:;]|(?<![-\w])default (?:auto|-?\d)", re.IGNORECASE)


def _options(name):
    command = importlib.import_module(CLIS[name]).main
    ctx = command.make_context(name, [], resilient_parsing=True)  # --out required, and so on: not checked here
    return command, ctx, [p for p in command.params if isinstance(p, click.Option)]


@pytest.mark.parametrize("name", CLIS)
def test_every_default_is_shown_in_help(name):
    command, ctx, options = _options(name)
    assert command.context_settings.get("show_default") is True  # the shared CONTEXT_SETTINGS
    for option in options:
        _, text = option.get_help_record(ctx) or ("", "")
        default = option.get_default(ctx, call=False)
        if option.is_flag or default in (None, click.core.UNSET) or option.multiple:
            continue
        shown = re.search(r"\[default: (.*?)[;\]]", text)  # "[default: 64; x>=1]": a range may follow
        assert shown and shown[1] == str(default), f"{name} {option.opts[0]}: default {default!r} not shown: {text}"


@pytest.mark.parametrize("name", CLIS)
def test_a_chosen_default_is_said_in_words_and_nowhere_else(name):
    command, ctx, options = _options(name)
    for option in options:
        _, text = option.get_help_record(ctx) or ("", "")
        assert "[default: None]" not in text and "[default: ()]" not in text, (name, option.opts[0])
        # a default is said once, in the brackets; none hides in the prose any more
        assert not WORD_DEFAULT.search(option.help or ""), f"{name} {option.opts[0]}: a default in its help text (say it with show_default)"
        if isinstance(option.show_default, str):
            assert f"[default: ({option.show_default})" in text
    said = {o.opts[0] for o in options if isinstance(o.show_default, str)}
    assert "--threads" in said  # every command: chosen, and the help says from what
    output = " ".join(CliRunner().invoke(command, ["--help"]).output.split())  # as wrapped, unwrapped
    assert "[default: (chosen from the model's size and the idle cores)]" in output


def test_the_chosen_defaults_say_what_chooses_them():
    words = {name: {o.opts[0]: o.show_default for o in _options(name)[2] if isinstance(o.show_default, str)}
             for name in CLIS}
    assert words["gan-train"]["--epochs"] == words["gan-train"]["--seed"] == "the variant's: gan-train --list"
    assert words["gan-infer"]["--model"].startswith("the latest run's export/generator.onnx")
    assert words["gan-infer"]["--provider"].startswith("auto") and words["gan-infer"]["--nrow"] == "square"
    assert words["gan-bench"]["--backends"].startswith("all that can run here")
    assert words["gan-export"]["--out"] == "<run>/export"
