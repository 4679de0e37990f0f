"""ganforge.progress: a line at the set interval on a fake clock (never wall time), the final line with
the whole run's time and how right the time-left figures were; training prints them to its log."""

from __future__ import annotations

import re

import pytest

from ganforge import progress
from ganforge.errors import GanforgeError


class Clock:
    """A slowed fake clock: every read is ``step`` seconds after the last."""

    def __init__(self, step: float):
        self.t, self.step = 0.0, step

    def __call__(self) -> float:
        self.t += self.step
        return self.t


def test_a_line_at_the_interval_and_an_honest_end():
    lines = []
    meter = progress.Meter(20, every=30, clock=Clock(7), write=lines.append, per=10, epochs=2)
    for _ in range(20):
        meter.step(32)
    # the meter reads the clock when made (7 s) and at each step (7 s later each): a line once 30 s
    # have passed since the last, at steps 5 (42 s), 10, 15, 20
    assert [int(re.match(r"steps (\d+)/20", line).group(1)) for line in lines] == [5, 10, 15, 20]
    assert lines[0].startswith("steps 5/20 (epoch 1/2 at 50%), ")
    assert "samples/s, about 1m45s left" in lines[0]
    assert "(epoch 2/2 at 50%)" in lines[2]
    end = meter.final()
    assert end.startswith("2m27s in all (20 steps, 4 samples/s); the time left was right: of 3 figures the worst")


def test_an_estimate_that_was_wrong_is_called_off():
    clock = Clock(1)
    lines = []
    meter = progress.Meter(10, every=3, clock=clock, write=lines.append)
    for i in range(10):
        if i == 5:
            clock.step = 20  # the work slowed down after the first estimates
        meter.step()
    assert lines and "the time left was off" in meter.final()


def test_a_short_run_says_it_ended_before_an_estimate():
    meter = progress.Meter(3, every=30, clock=Clock(1), write=pytest.fail)
    for _ in range(3):
        meter.step()
    assert meter.final() == "4.0s in all; it ended before a time-left figure was due"


def test_no_lines_when_told_but_the_estimates_are_still_kept():
    meter = progress.Meter(10, every=2, clock=Clock(1), write=pytest.fail, lines=False)
    for _ in range(10):
        meter.step()
    assert "the time left was right" in meter.final()


def test_sample_lines_for_generate_callbacks(monkeypatch):
    monkeypatch.setattr(progress, "now", Clock(10))
    lines = []
    callback = progress.sample_lines("gan-infer", write=lines.append)
    for done in range(1000, 10001, 1000):
        callback(done, 10000)
    # the clock: 10 s when made, 20 s for the meter, then 10 s a call: lines at 2,000, 5,000 and 8,000
    assert lines[0] == "gan-infer: samples 2,000/10,000 (20%), 67 samples/s, about 2m00s left"
    assert lines[-1].startswith("gan-infer: 2m00s in all (10,000 samples")


def test_the_interval_comes_from_the_environment(monkeypatch):
    monkeypatch.setenv(progress.ENV, "5")
    assert progress.interval() == 5.0
    for bad in ("0", "-3", "soon", "nan", "inf"):
        monkeypatch.setenv(progress.ENV, bad)
        with pytest.raises(GanforgeError, match="GANFORGE_PROGRESS_SECONDS must be a number of seconds > 0"):
            progress.interval()
    monkeypatch.delenv(progress.ENV)
    assert progress.interval() == progress.INTERVAL_S


def test_durations():
    assert [progress.duration(s) for s in (3.21, 65, 3600 * 2 + 180)] == ["3.2s", "1m05s", "2h03m"]


def test_training_writes_a_line_every_interval_to_its_log_and_says_the_run_at_the_end(tmp_path, monkeypatch):
    pytest.importorskip("torch")
    from ganforge.training import train

    monkeypatch.setattr(progress, "now", Clock(7))  # every step reads it once: a slowed run
    result = train("sine", epochs=2, sets=["n_rows=320"], runs_dir=tmp_path, progress=False)  # 10 steps an epoch
    log = (result.run_dir / "train.log").read_text()
    lines = re.findall(r"steps (\d+)/20 \(epoch (\d)/2 at (\d+)%\), [\d,]+ samples/s, about \S+ left", log)
    assert [int(s) for s, _, _ in lines] == [5, 10, 15]  # (and 20/20, with no time left to give)
    assert lines[2][1:] == ("2", "50")
    assert re.search(r"run: 2m\d\ds in all \(20 steps, \d+ samples/s\); the time left was right", log)


def test_training_on_a_terminal_keeps_its_bar_and_the_log_still_gets_the_lines(tmp_path, monkeypatch):
    pytest.importorskip("torch")
    pytest.importorskip("tqdm")
    from ganforge.training import train

    monkeypatch.setattr(progress, "now", Clock(7))
    result = train("sine", epochs=1, sets=["n_rows=320"], runs_dir=tmp_path, progress=True)
    log = (result.run_dir / "train.log").read_text()
    assert "steps 5/10 (epoch 1/1 at 50%)" in log and "run: " in log


def test_gan_infer_off_a_terminal_writes_lines_and_the_run_at_the_end(tmp_path, monkeypatch):
    from pathlib import Path

    from click.testing import CliRunner

    from ganforge.inference.cli import main

    monkeypatch.setattr(progress, "now", Clock(40))  # every progress call is 40 s after the last
    model = Path(__file__).parent / "data" / "tiny-image.onnx"
    result = CliRunner().invoke(main, ["--model", str(model), "--n", "200", "--batch-size", "50", "--out",
                                       str(tmp_path / "x.npy")])
    assert result.exit_code == 0, result.output
    lines = [line for line in result.output.splitlines() if line.startswith("gan-infer:")]
    assert lines[0].startswith("gan-infer: samples 50/200 (25%), ")
    assert re.match(r"gan-infer: \dm\d\ds in all \(200 samples", lines[-1])


def test_a_short_gan_infer_says_nothing_more(tmp_path):
    from pathlib import Path

    from click.testing import CliRunner

    from ganforge.inference.cli import main

    model = Path(__file__).parent / "data" / "tiny-image.onnx"
    result = CliRunner().invoke(main, ["--model", str(model), "--n", "8", "--out", str(tmp_path / "x.npy")])
    assert result.exit_code == 0 and "gan-infer:" not in result.output


def test_the_evaluator_training_writes_a_line_at_the_interval(monkeypatch):
    torch = pytest.importorskip("torch")
    from ganforge.evaluation import images
    from ganforge.training.datasets import ImageData

    monkeypatch.setattr(progress, "now", Clock(40))
    data = ImageData(torch.randint(0, 256, (40, 1, 8, 8), dtype=torch.uint8), torch.arange(40) % 2, ["a", "b"],
                     "fake")
    lines = []
    images._fit_evaluator(data, "classes", ["a", "b"], "fp", seed=0, steps=3, batch=8, progress=lines.append)
    assert any(line.startswith("  evaluator: steps 1/3 (33%)") for line in lines), lines


def test_the_evaluator_says_each_tenth_once_when_tenths_come_quicker_than_the_interval(monkeypatch):
    torch = pytest.importorskip("torch")
    from ganforge.evaluation import images
    from ganforge.training.datasets import ImageData

    monkeypatch.setattr(progress, "now", Clock(4))  # a tenth (2 steps) takes about 12 s: its line is enough
    data = ImageData(torch.randint(0, 256, (40, 1, 8, 8), dtype=torch.uint8), torch.arange(40) % 2, ["a", "b"],
                     "fake")
    lines = []
    images._fit_evaluator(data, "classes", ["a", "b"], "fp", seed=0, steps=20, batch=8, progress=lines.append)
    assert sum(line.startswith("  evaluator ") and "%" in line for line in lines) == 9, lines
    assert not any(line.startswith("  evaluator: ") for line in lines), lines


def test_gan_bench_writes_a_line_while_it_times(monkeypatch):
    from pathlib import Path

    from ganforge.bench import run_bench

    monkeypatch.setattr(progress, "now", Clock(40))
    lines = []
    run_bench(Path(__file__).parent / "data" / "tiny-image.onnx", backends=("onnxruntime-cpu",), batch_sizes=(1, 2),
              budget_s=0.01, max_repeats=3, cold=False, note=lines.append)
    assert any(line.startswith("gan-bench: batch sizes 0/2 (0%)") for line in lines), lines


def test_int8_calibration_writes_a_line_at_the_interval(monkeypatch, capsys):
    pytest.importorskip("onnxruntime.quantization")
    import numpy as np

    from ganforge.export import onnx_format

    monkeypatch.setattr(progress, "now", Clock(40))
    reader = onnx_format._reader([{"z": np.zeros((1, 2), np.float32)}] * 3)
    while reader.get_next() is not None:
        pass
    err = capsys.readouterr().err
    assert "int8 calibration: batches 1/3 (33%)" in err, err
