"""What every ganforge command shares on its command line: ``--version``, ``-h``/``--help``, and a help
that shows every option's default.

Ground floor and torch-free; click is imported by the commands that use it.
"""

from __future__ import annotations

from ganforge import __version__

# every command's click context: -h as --help, and each option's default shown as "[default: ...]";
# an option whose default is chosen at run time (None in click) says how in words, with
# ``show_default="..."`` on the option
CONTEXT_SETTINGS = {"help_option_names": ["-h", "--help"], "show_default": True}
LATEST_MODEL = "the latest run's export/generator.onnx, else the newest run's that has one"


def version_option(prog: str):
    """``--version``: ``PROG VERSION`` (ganforge's version), then exit 0."""
    import click

    return click.version_option(__version__, "--version", prog_name=prog, message="%(prog)s %(version)s",
                                help="Show ganforge's version and exit.")
