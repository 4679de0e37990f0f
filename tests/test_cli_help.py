"""Every option of every command says what it does in --help."""

import importlib

import click
import pytest
from click.testing import CliRunner

CLIS = {"gan-train": "ganforge.train_cli", "gan-export": "ganforge.export.cli", "gan-infer": "ganforge.inference.cli",
        "gan-bench": "ganforge.bench.cli", "gan-eval": "ganforge.evaluation.cli", "gan-serve": "ganforge.serve.cli"}


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
