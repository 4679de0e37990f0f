"""--threads on every command reaches the choice; a bad value is one line; -v and train.log say it."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from ganforge import threads
from ganforge.bench.cli import main as bench_main
from ganforge.evaluation.cli import main as eval_main
from ganforge.export.cli import main as export_main
from ganforge.inference.cli import main as infer_main
from ganforge.serve.cli import main as serve_main
from ganforge.train_cli import main as train_main

DATA = Path(__file__).parent / "data"
COMMANDS = {"gan-train": train_main, "gan-export": export_main, "gan-infer": infer_main, "gan-eval": eval_main,
            "gan-bench": bench_main, "gan-serve": serve_main}


@pytest.fixture(autouse=True)
def _reset(monkeypatch):
    """No --threads; and torch's thread count as this process has it counts as ganforge's own
    setting, not the user's: these tests set and restore it by hand, as no user of one command does."""
    torch = pytest.importorskip("torch")
    monkeypatch.setattr(threads, "_torch_set", torch.get_num_threads())
    threads.use(None)
    yield
    threads.use(None)


@pytest.mark.parametrize("name", COMMANDS)
def test_every_command_has_threads_and_refuses_a_bad_count_in_one_line(name):
    command = COMMANDS[name]
    assert "--threads" in CliRunner().invoke(command, ["--help"]).output
    result = CliRunner().invoke(command, ["--threads", "zero"])
    assert result.exit_code == 2
    error = [line for line in result.output.splitlines() if line.startswith("Error")]
    assert error == ["Error: Invalid value for '--threads': --threads must be a whole number >= 1 (threads to "
                     "compute on), got 'zero'"]
    assert "Traceback" not in result.output


def test_gan_infer_threads_reach_the_session_and_v_says_so(tmp_path, monkeypatch):
    monkeypatch.delenv("GANFORGE_THREADS", raising=False)
    seen = []
    real = threads.apply_ort

    def spy(options, choice):
        out = real(options, choice)
        seen.append((options.intra_op_num_threads, options.inter_op_num_threads))
        return out

    monkeypatch.setattr(threads, "apply_ort", spy)
    result = CliRunner().invoke(infer_main, ["--model", str(DATA / "tiny-image.onnx"), "--n", "4", "--out",
                                             str(tmp_path / "g.png"), "--threads", "3", "-v"])
    assert result.exit_code == 0, result.output
    assert seen and all(s == (3, 1) for s in seen)
    assert "threads: 3 intra-op, 1 inter-op (--threads 3" in result.output


def test_gan_infer_without_threads_chooses_and_says_why(tmp_path, monkeypatch):
    monkeypatch.delenv("GANFORGE_THREADS", raising=False)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    result = CliRunner().invoke(infer_main, ["--model", str(DATA / "tiny-image.onnx"), "--n", "4", "--out",
                                             str(tmp_path / "g.png"), "-v"])
    assert result.exit_code == 0, result.output
    assert "threads: 1 intra-op, 1 inter-op (a tiny model: about" in result.output


def test_gan_infer_reads_ganforge_threads(tmp_path, monkeypatch):
    monkeypatch.setenv("GANFORGE_THREADS", "2")
    result = CliRunner().invoke(infer_main, ["--model", str(DATA / "tiny-image.onnx"), "--n", "4", "--out",
                                             str(tmp_path / "g.png"), "-v"])
    assert result.exit_code == 0, result.output
    assert "threads: 2 intra-op, 1 inter-op (GANFORGE_THREADS=2" in result.output
    monkeypatch.setenv("GANFORGE_THREADS", "many")
    result = CliRunner().invoke(infer_main, ["--model", str(DATA / "tiny-image.onnx"), "--n", "4", "--out",
                                             str(tmp_path / "g.png")])
    assert result.exit_code == 1
    assert result.output.strip().splitlines()[-1] == ("Error: GANFORGE_THREADS must be a whole number >= 1 (threads "
                                                      "to compute on), got 'many'")


def test_gan_train_threads_reach_torch_and_train_log(tmp_path, monkeypatch):
    torch = pytest.importorskip("torch")
    before = torch.get_num_threads()
    try:
        result = CliRunner().invoke(train_main, ["sine", "--epochs", "1", "--runs-dir", str(tmp_path), "--set",
                                                 "n_rows=64", "--threads", "2"])
        assert result.exit_code == 0, result.output
        assert torch.get_num_threads() == 2
        log = (tmp_path / "latest" / "train.log").read_text()
        assert "threads: 2 intra-op, 1 inter-op (--threads 2" in log
    finally:
        torch.set_num_threads(before)


def test_gan_train_chooses_one_thread_for_the_sine_mlp(tmp_path, monkeypatch):
    monkeypatch.delenv("GANFORGE_THREADS", raising=False)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    torch = pytest.importorskip("torch")
    before = torch.get_num_threads()
    try:
        result = CliRunner().invoke(train_main, ["sine", "--epochs", "1", "--runs-dir", str(tmp_path), "--set",
                                                 "n_rows=64"])
        assert result.exit_code == 0, result.output
        log = (tmp_path / "latest" / "train.log").read_text()
        assert "threads: 1 intra-op, 1 inter-op (a tiny model: 8,577 parameters x 32)" in log, [l for l in log.splitlines() if "threads" in l]
    finally:
        torch.set_num_threads(before)


def test_a_resumed_run_keeps_the_threads_its_config_json_recorded(tmp_path, monkeypatch):
    import json

    torch = pytest.importorskip("torch")
    monkeypatch.delenv("GANFORGE_THREADS", raising=False)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    before = torch.get_num_threads()
    try:
        args = ["sine", "--runs-dir", str(tmp_path), "--set", "n_rows=64"]
        assert CliRunner().invoke(train_main, [*args, "--epochs", "1"]).exit_code == 0
        config = tmp_path / "latest" / "config.json"
        assert json.loads(config.read_text())["threads"] == 1
        config.write_text(json.dumps({**json.loads(config.read_text()), "threads": 2}))  # as if a busy run's
        result = CliRunner().invoke(train_main, ["--resume", "latest", "--runs-dir", str(tmp_path), "--epochs", "2"])
        assert result.exit_code == 0, result.output
        assert "threads: 2 intra-op, 1 inter-op (the run's own 2: a resume computes as the run did)" in \
            (tmp_path / "latest" / "train.log").read_text()
        assert json.loads(config.read_text())["threads"] == 2
        # and a run's config.json still works as --config
        result = CliRunner().invoke(train_main, ["--config", str(config), "--epochs", "1", "--runs-dir",
                                                 str(tmp_path / "again")])
        assert result.exit_code == 0, result.output
    finally:
        torch.set_num_threads(before)


def test_openvino_compiles_with_the_threads():
    pytest.importorskip("openvino")
    from ganforge.inference import runtimes

    threads.use(2)
    runner = runtimes.OpenVinoRunner(DATA / "tiny-image.onnx", "x", "fp32")
    assert runner.compiled.get_property("INFERENCE_NUM_THREADS") == 2
