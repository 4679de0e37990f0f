"""gan-eval never scores what is not a number: a model's NaN samples (one in many, or only in
batches larger than one) and an evaluator with NaN weights are one-line errors, never a report
of `frechet_distance nan` and precision 0."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from onnx import TensorProto, helper, numpy_helper

from ganforge.errors import GanforgeError
from ganforge.evaluation import evaluate
from ganforge.evaluation import images as E
from tests.data.make_tiny_models import build
from tests.fakedata import write_idx

GRAY = Path(__file__).resolve().parents[1] / "data" / "tiny-gray.onnx"


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setattr(E, "CACHE", tmp_path / "cache")


def nan_where(path: Path, condition: str) -> Path:
    """tiny-gray's graph with x replaced by NaN where ``condition`` holds: "first" (z[0, 0] > 2.5: about
    one sample in 160) or "batch" (every sample of a batch larger than one)."""
    model = build(8, (1, 8, 8), "image", seed=2)
    g = model.graph
    out = g.output[0].name
    g.node[-1].output[0] = "x_ok"
    nan = numpy_helper.from_array(np.full((1, 1, 8, 8), np.nan, np.float32), "nan")
    g.initializer.append(nan)
    if condition == "first":
        g.initializer.extend([numpy_helper.from_array(np.array([0], np.int64), "i0"),
                              numpy_helper.from_array(np.array([1], np.int64), "i1"),
                              numpy_helper.from_array(np.array(2.5, np.float32), "edge")])
        g.node.extend([helper.make_node("Slice", ["z", "i0", "i1", "i1"], ["z0"]),
                       helper.make_node("Greater", ["z0", "edge"], ["hot"]),
                       helper.make_node("Unsqueeze", ["hot", "two"], ["hot4"]),
                       helper.make_node("Where", ["hot4", "nan", "x_ok"], [out])])
        g.initializer.append(numpy_helper.from_array(np.array([2, 3], np.int64), "two"))
    else:
        g.initializer.extend([numpy_helper.from_array(np.array(1, np.int64), "one")])
        g.node.extend([helper.make_node("Shape", ["z"], ["zs"], start=0, end=1),
                       helper.make_node("Squeeze", ["zs"], ["b"]),
                       helper.make_node("Greater", ["b", "one"], ["big"]),
                       helper.make_node("Where", ["big", "nan", "x_ok"], [out])])
    onnx.checker.check_model(model)
    onnx.save_model(model, str(path))
    return path


@pytest.mark.parametrize("condition", ["first", "batch"])
def test_nan_samples_are_refused_not_scored(tmp_path, condition):
    data = write_idx(tmp_path / "idx", n=60)
    model = nan_where(tmp_path / "m.onnx", condition)
    with pytest.raises(GanforgeError, match=r"produced NaN or infinite values in \d+ of 2100 samples .*nothing was "
                                            r"scored"):
        evaluate(model, data=data, n=2100, evaluator_steps=5, out_dir=tmp_path / "eval")
    assert not (tmp_path / "eval" / "eval.json").exists()


def test_an_evaluator_with_nan_weights_is_refused(tmp_path):
    data = write_idx(tmp_path / "idx", n=60)
    evaluate(GRAY, data=data, n=20, evaluator_steps=5)  # trains and caches the evaluator
    (cached,) = E.CACHE.glob("*.pt")
    state = torch.load(cached, weights_only=True)
    state["net"]["head.weight"][0, 0] = float("nan")
    torch.save(state, cached)
    with pytest.raises(GanforgeError, match=r"holds weights that are not finite; delete it"):
        evaluate(GRAY, data=data, n=20, evaluator_steps=5, out_dir=tmp_path / "eval")
    assert not (tmp_path / "eval").exists() or not any((tmp_path / "eval").iterdir())


def test_an_evaluator_whose_features_are_not_finite_is_refused(tmp_path, monkeypatch):
    data = write_idx(tmp_path / "idx", n=60)
    monkeypatch.setattr(E.Evaluator, "embed", lambda self, images, batch=512: np.full((len(images), 128), np.nan))
    with pytest.raises(GanforgeError, match=r"the evaluator's features of the real images are not finite"):
        evaluate(GRAY, data=data, n=20, evaluator_steps=5)
