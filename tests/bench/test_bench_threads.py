"""gan-bench's torch peers compute on the threads ganforge chooses, on the onnxruntime sessions' budget,
and the report says what each backend used. A fake torch model stands in for a checkpoint's G, and
the cores are faked: what the machine has does not matter here."""

from __future__ import annotations

import shutil
import warnings
from pathlib import Path

import pytest

from ganforge import threads
from ganforge.bench import backends as B
from ganforge.bench.report import markdown
from ganforge.bench.run import run_bench

torch = pytest.importorskip("torch")
TINY = Path(__file__).resolve().parents[1] / "data" / "tiny-image.onnx"  # latent 8 -> [3, 8, 8]


def _fake_generator():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(8, 192), torch.nn.Unflatten(1, (3, 8, 8)), torch.nn.Tanh()).eval()


@pytest.fixture
def run_dir(tmp_path, monkeypatch):
    """A run folder: the ONNX file in export/ beside a TorchScript of the fake G, and a checkpoint that
    checkpoint.load/build_generator turn into the fake G."""
    from ganforge.training import checkpoint

    (tmp_path / "export").mkdir()
    (tmp_path / "checkpoints").mkdir()
    shutil.copy(TINY, tmp_path / "export" / "generator.onnx")
    (tmp_path / "checkpoints" / "last.pt").write_bytes(b"fake")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # torch.jit's deprecation notices: gan-export still writes .ts
        torch.jit.save(torch.jit.script(_fake_generator()), str(tmp_path / "export" / "generator.ts"))
    monkeypatch.setattr(checkpoint, "load", lambda path: {"fake": str(path)})
    monkeypatch.setattr(checkpoint, "build_generator", lambda state: (_fake_generator(), None, None))
    return tmp_path


@pytest.fixture
def cores(monkeypatch):
    """``cores(n)``: this process has n idle cores; torch's count before is ganforge's own setting (the
    user set none), and it is put back after."""
    before = torch.get_num_threads()
    for name in ("GANFORGE_THREADS", "OMP_NUM_THREADS", "LOCAL_WORLD_SIZE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(threads, "_torch_set", before)
    monkeypatch.setattr(threads, "_current", threads.current())
    threads.use(None)

    def have(n: int, big: bool = True) -> None:
        monkeypatch.setattr(threads, "_cores", lambda: n)
        monkeypatch.setattr(threads, "_measured_idle", lambda total, window: float(total))
        if big:  # the fake model counts as one big enough to split
            monkeypatch.setattr(threads, "TINY_WORK", 0)

    yield have
    threads.use(None)
    torch.set_num_threads(before)


def test_the_torch_backends_set_the_threads_chosen_for_the_models_size(run_dir, cores):
    n = 3 if torch.get_num_threads() != 3 else 4  # not what torch has now, so that setting it shows
    cores(n)
    eager = B.torch_eager_backend(run_dir / "checkpoints" / "last.pt")
    assert torch.get_num_threads() == n
    assert eager.info["threads"] == {"intra_op": n, "inter_op": torch.get_num_interop_threads(),
                                     "reason": eager.info["threads"]["reason"]}
    assert eager.info["threads"]["reason"].startswith(f"{n} cores available")
    torch.set_num_threads(1)
    threads._torch_set = 1  # as though ganforge had set it: not the user's
    script = B.torchscript_backend(run_dir / "export" / "generator.ts")
    assert torch.get_num_threads() == n and script.info["threads"]["intra_op"] == n


def test_a_tiny_torch_model_gets_one_thread_and_says_why(run_dir, cores):
    cores(4, big=False)
    eager = B.torch_eager_backend(run_dir / "checkpoints" / "last.pt")
    params = sum(p.numel() for p in _fake_generator().parameters())
    assert torch.get_num_threads() == 1
    assert eager.info["threads"]["reason"] == f"a tiny model: {params:,} parameters"


def test_every_backend_is_timed_on_the_same_threads_and_the_report_says_them(run_dir, cores):
    n = 3 if torch.get_num_threads() != 3 else 4
    cores(n)
    report = run_bench(run_dir / "export" / "generator.onnx", backends=("ganforge", "onnxruntime-cpu", "torch-eager",
                                                                        "torchscript"),
                       batch_sizes=(1, 2), budget_s=0.01, max_repeats=3, cold=False, provider="onnxruntime")
    by = {b["name"]: b for b in report["backends"]}
    assert set(by) == {"ganforge", "onnxruntime-cpu", "torch-eager", "torchscript"}, report["skipped"]
    assert {name: b["threads"]["intra_op"] for name, b in by.items()} == dict.fromkeys(by, n)
    assert torch.get_num_threads() == n  # what the torch backends were timed on
    table = markdown(report)
    for name, b in by.items():
        assert f"| {n}: {b['threads']['reason']} |" in table.split(f"| {name} | {b['load_s']:.3f} |")[1].split("\n")[0]
