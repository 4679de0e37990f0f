"""Shared fixtures: tiny seeded runs trained once per session, on data the code makes itself."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("PYTHONWARNINGS", "ignore::DeprecationWarning")

# Tiny configs per registered variant: a few seconds of CPU each.
TINY = {
    "sine": {"n_rows": 96, "batch_size": 32, "sample_count": 4},
}


def tiny_sets(variant: str) -> list[str]:
    return [f"{k}={v}" for k, v in TINY[variant].items()]


@pytest.fixture(scope="session")
def sine_run(tmp_path_factory):
    """A 3-epoch sine run, shared read-only by tests that only inspect or export it."""
    from ganforge.training import train

    runs = tmp_path_factory.mktemp("runs")
    result = train("sine", epochs=3, sets=tiny_sets("sine"), runs_dir=runs, progress=False, device="cpu")
    return result


@pytest.fixture(scope="session")
def sine_export(sine_run, tmp_path_factory):
    from ganforge.export import export

    out = tmp_path_factory.mktemp("export")
    return export(sine_run.run_dir, formats="all", out_dir=out)
