"""gan-serve --workers N: the sessions split the cores, so that together they never oversubscribe them;
--threads / GANFORGE_THREADS give each session that many. Fake core counts: the real machine's do not
matter here."""

from __future__ import annotations

import pytest

from ganforge import threads
from ganforge.serve.config import ServeConfig
from ganforge.serve.model import ServedModel
from tests.serve.conftest import IMAGE


@pytest.fixture
def cores(monkeypatch):
    """This process has ``cores(n)`` idle cores, and the tiny test model counts as one big enough to split."""
    for name in ("GANFORGE_THREADS", "OMP_NUM_THREADS", "LOCAL_WORLD_SIZE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(threads, "TINY_WORK", 0)
    monkeypatch.setattr(threads, "_current", threads.current())
    threads.use(None)

    def have(n: int) -> None:
        monkeypatch.setattr(threads, "_cores", lambda: n)
        monkeypatch.setattr(threads, "_measured_idle", lambda total, window: float(total))

    yield have
    threads.use(None)


def _sessions(workers: int) -> tuple[ServedModel, list[int]]:
    served = ServedModel(ServeConfig(model=str(IMAGE), workers=workers, device="cpu"))
    return served, [g.session.get_session_options().intra_op_num_threads for g in served.generators]


@pytest.mark.parametrize(("n_cores", "workers", "each"), [(8, 1, 8), (8, 2, 4), (8, 3, 2), (8, 4, 2), (2, 4, 1)])
def test_each_session_gets_its_share_of_the_cores(cores, n_cores, workers, each):
    cores(n_cores)
    served, intra = _sessions(workers)
    assert intra == [each] * workers  # onnxruntime's own options, as each session was opened
    assert served.threads.intra == each
    assert served.describe()["sessions"] == workers
    assert served.describe()["threads_per_session"]["intra_op"] == each
    line = served.sessions_text()
    assert line.startswith(f"{workers} session{'s' if workers > 1 else ''} of the model, each on threads: {each} "
                           "intra-op, 1 inter-op (")
    if workers > 1:
        assert f"to each of {workers} sessions" in line


def test_threads_or_the_environment_give_each_session_that_many(cores, monkeypatch):
    cores(8)
    threads.use(3)
    served, intra = _sessions(4)
    assert intra == [3, 3, 3, 3] and served.threads.source == "option"
    threads.use(None)
    monkeypatch.setenv("GANFORGE_THREADS", "5")
    served, intra = _sessions(2)
    assert intra == [5, 5] and "GANFORGE_THREADS=5" in served.sessions_text()
