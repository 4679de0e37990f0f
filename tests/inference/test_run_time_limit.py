"""A per-run time limit (ganforge.inference.watchdog): a model whose graph never ends (a Loop of
10^12 iterations) is stopped and its run fails in one line, in gan-infer, gan-eval and gan-bench;
a normal model is not touched by it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from click.testing import CliRunner
from onnx import TensorProto, helper, numpy_helper

from ganforge.errors import GanforgeError
from ganforge.inference import Generator, watchdog
from ganforge.inference.cli import main
from tests.data.make_tiny_models import build

TINY = Path(__file__).resolve().parents[1] / "data" / "tiny-image.onnx"


def endless(path: Path) -> Path:
    """tiny-image's graph with its noise first passed through a Loop of 10^12 iterations."""
    model = build(8, (3, 8, 8), "image", seed=0)
    body = helper.make_graph(
        [helper.make_node("Identity", ["cond_in"], ["cond_out"]), helper.make_node("Identity", ["v_in"], ["v_out"])],
        "body", [helper.make_tensor_value_info("i", TensorProto.INT64, []),
                 helper.make_tensor_value_info("cond_in", TensorProto.BOOL, []),
                 helper.make_tensor_value_info("v_in", TensorProto.FLOAT, None)],
        [helper.make_tensor_value_info("cond_out", TensorProto.BOOL, []),
         helper.make_tensor_value_info("v_out", TensorProto.FLOAT, None)])
    g = model.graph
    g.initializer.extend([numpy_helper.from_array(np.array(10**12, np.int64), "trips"),
                          numpy_helper.from_array(np.array(True), "go")])
    g.node[0].input[0] = "z_looped"
    g.node.insert(0, helper.make_node("Loop", ["trips", "go", "z"], ["z_looped"], body=body))
    onnx.save_model(model, str(path))
    return path


def test_an_endless_model_is_stopped_at_the_limit(tmp_path, monkeypatch):
    monkeypatch.setenv(watchdog.RUN_SECONDS_ENV, "0.5")
    gen = Generator(endless(tmp_path / "loop.onnx"), device="cpu")
    with pytest.raises(watchdog.RunTimeout, match=r"loop.onnx on a batch of 4 ran past the time limit of 0.5 s a run "
                                                  r"and was stopped: .* \(GANFORGE_RUN_SECONDS=3600\)$"):
        gen.generate(4, seed=0, batch_size=4)
    monkeypatch.delenv(watchdog.RUN_SECONDS_ENV)
    normal = Generator(TINY, device="cpu")
    assert np.isfinite(normal.generate(64, seed=1)).all()  # the default limit: nothing to see


def test_gan_infer_says_it_in_one_line(tmp_path, monkeypatch):
    monkeypatch.setenv(watchdog.RUN_SECONDS_ENV, "0.3")
    model = endless(tmp_path / "loop.onnx")
    got = CliRunner().invoke(main, ["--model", str(model), "--n", "2", "--out", str(tmp_path / "g.png"),
                                    "--device", "cpu"])
    assert got.exit_code == 1 and got.output.count("\n") == 1 and "ran past the time limit" in got.output
    assert not (tmp_path / "g.png").exists()


@pytest.mark.parametrize("text", ["0", "-1", "abc", "nan", "1e99", "9" * 50])
def test_a_limit_that_is_no_time_is_one_line(monkeypatch, text):
    monkeypatch.setenv(watchdog.RUN_SECONDS_ENV, text)
    with pytest.raises(GanforgeError, match=r"^GANFORGE_RUN_SECONDS=.* is not a time limit"):
        Generator(TINY, device="cpu").generate(2)


def test_many_runs_share_one_watchdog_thread():
    import threading

    gen = Generator(TINY, device="cpu")
    for _ in range(50):
        gen.generate(3, seed=2, batch_size=1)
    assert sum(t.name == "ganforge-run-watchdog" for t in threading.enumerate()) == 1


def test_gan_eval_and_gan_bench_stop_it_too(tmp_path, monkeypatch):
    from ganforge.bench import run_bench
    from ganforge.evaluation import evaluate
    from ganforge.evaluation import images as E
    from tests.fakedata import write_idx

    monkeypatch.setattr(E, "CACHE", tmp_path / "cache")

    monkeypatch.setenv(watchdog.RUN_SECONDS_ENV, "0.3")
    model = endless(tmp_path / "loop.onnx")
    with pytest.raises(GanforgeError, match="ran past the time limit"):
        evaluate(model, n=10, data=write_idx(tmp_path / "idx", n=40), evaluator_steps=5)
    with pytest.raises(GanforgeError, match="ran past the time limit"):
        run_bench(model, batch_sizes=(1,), budget_s=0.01, max_repeats=1, cold=False, backends=("onnxruntime-cpu",))
