"""What every ganforge command shares on its command line: ``--version``.

Ground floor and torch-free; click is imported by the commands that use it.
"""

from __future__ import annotations

from ganforge import __version__


def version_option(prog: str):
    """``--version``: ``PROG VERSION`` (ganforge's version), then exit 0."""
    import click

    return click.version_option(__version__, "--version", prog_name=prog, message="%(prog)s %(version)s",
                                help="Show ganforge's version and exit.")
