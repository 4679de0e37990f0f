"""``train(..., threads=N)`` is ``gan-train --threads N`` from Python: the choice (source "option")
reaches torch, train.log and config.json; a bad count is one line before a run folder exists."""

import json

import pytest
import torch

from ganforge import threads
from ganforge.errors import GanforgeError
from ganforge.training import train
from tests.conftest import tiny_sets


@pytest.fixture(autouse=True)
def _restore(monkeypatch):
    """torch's thread count as this process has it counts as ganforge's own, and comes back after."""
    before = torch.get_num_threads()
    monkeypatch.setattr(threads, "_torch_set", before)
    monkeypatch.setattr(threads, "_current", None)
    monkeypatch.delenv("GANFORGE_THREADS", raising=False)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    threads.use(None)
    yield
    torch.set_num_threads(before)


def test_threads_keyword_is_the_option(tmp_path):
    run = train("sine", epochs=1, sets=tiny_sets("sine"), runs_dir=tmp_path, progress=False, device="cpu",
                threads=2)  # sine alone would take one: a tiny model
    choice = threads.current()
    assert (choice.intra, choice.source) == (2, "option") and torch.get_num_threads() == 2
    log = (run.run_dir / "train.log").read_text()
    assert "threads: 2 intra-op, 1 inter-op (--threads 2" in log
    assert json.loads((run.run_dir / "config.json").read_text())["threads"] == 2


@pytest.mark.parametrize("value", [0, -1, "two", 1.5, True])
def test_a_bad_thread_count_is_one_line_before_a_run_exists(tmp_path, value):
    with pytest.raises(GanforgeError, match=r"^threads must be a whole number >= 1 \(threads to compute on\), got "):
        train("sine", epochs=1, sets=tiny_sets("sine"), runs_dir=tmp_path / "runs", progress=False, device="cpu",
              threads=value)
    assert not (tmp_path / "runs").exists()
