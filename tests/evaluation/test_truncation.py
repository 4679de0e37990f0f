"""gan-eval --truncation: the samples of each threshold scored, the curve written and drawn."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from ganforge.errors import GanforgeError
from ganforge.evaluation import evaluate
from ganforge.evaluation import images as E
from ganforge.evaluation.cli import main
from ganforge.evaluation.truncation import parse_thresholds, truncation_curve
from ganforge.inference import Control, Generator
from tests.fakedata import write_idx

MODEL = Path(__file__).resolve().parents[1] / "data" / "tiny-gray.onnx"


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setattr(E, "CACHE", tmp_path / "cache")


def test_evaluate_scores_the_truncated_samples(tmp_path, monkeypatch):
    data = write_idx(tmp_path / "idx", n=60)
    seen = []
    real_generate = Generator.generate

    def spy(self, n, seed=0, batch_size=None, labels=None, start=0, *, control=None):
        seen.append(control)
        return real_generate(self, n, seed, batch_size, labels, start, control=control)

    monkeypatch.setattr(Generator, "generate", spy)
    report = evaluate(MODEL, data=data, n=20, evaluator_steps=10, truncation=0.5)
    assert report["truncation"] == 0.5 and seen == [Control(0.5)]
    plain = evaluate(MODEL, data=data, n=20, evaluator_steps=10)
    assert "truncation" not in plain and seen[-1] is None
    assert report["generated"]["frechet_distance"] != plain["generated"]["frechet_distance"]


def test_the_curve_scores_each_threshold_and_none_and_draws_them(tmp_path):
    data = write_idx(tmp_path / "idx", n=60)
    curve = truncation_curve(MODEL, [1.5, 0.5], data=data, n=20, evaluator_steps=10, out_dir=tmp_path / "eval")
    assert [p["truncation"] for p in curve["points"]] == [0.5, 1.5, None]
    assert set(curve["floor"]) == {"frechet_distance", "precision", "recall", "coverage"}
    assert set(curve["monotonic"]) == {"precision", "recall"}
    saved = json.loads((tmp_path / "eval" / "truncation.json").read_text())
    assert saved["points"] == curve["points"]
    text = (tmp_path / "eval" / "truncation.md").read_text()
    assert "| 0.5 |" in text and "| none |" in text and "| floor |" in text and "truncation.png" in text
    with Image.open(tmp_path / "eval" / "truncation.png") as png:
        assert png.size[0] > 400 and len(np.unique(np.asarray(png.convert("L")))) > 10  # a drawn plot


def test_gan_eval_truncation_from_the_command_line(tmp_path):
    data = write_idx(tmp_path / "idx", n=60)
    got = CliRunner().invoke(main, [str(MODEL), "--data", str(data), "--n", "20", "--truncation", "0.5,1",
                                    "--out", str(tmp_path / "eval")], catch_exceptions=False)
    assert got.exit_code == 0, got.output
    lines = [line for line in got.output.splitlines() if line.startswith(("truncation", "floor", "report"))]
    assert [line.split(":")[0] for line in lines] == ["truncation   0.5", "truncation     1", "truncation  none",
                                                      "floor (real vs real)", "report"]
    got = CliRunner().invoke(main, [str(MODEL), "--data", str(data), "--truncation", "0.5,zero"])
    assert got.exit_code == 1 and "--truncation must be a number above 0" in got.output


@pytest.mark.parametrize("text, words", [("", "takes thresholds"), ("1,1", "given twice"), ("-1", "must be above 0"),
                                         (",".join(["1"] * 40), "at most 32")])
def test_bad_thresholds_are_one_line(text, words):
    with pytest.raises(GanforgeError, match=words):
        parse_thresholds(text)
