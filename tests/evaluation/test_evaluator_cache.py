"""gan-eval's evaluator cache is untrusted input: a truncated, pickled, wrong-shaped, NaN or
linked file is one line that says to delete it (or is refused before use), never a traceback
and never a silently wrong evaluator."""

from __future__ import annotations

import pickle

import pytest
import torch

from ganforge.errors import GanforgeError
from ganforge.evaluation import images as E
from ganforge.training.datasets import ImageData


def _data():
    return ImageData(torch.randint(0, 255, (24, 1, 8, 8), dtype=torch.uint8, generator=torch.Generator().manual_seed(0)),
                     torch.arange(24) % 2, ["a", "b"], "test")


def truncated(path):
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def pickled(path):
    path.write_bytes(pickle.dumps({"net": {}, "task": "classes"}))


def wrong_shape(path):
    state = torch.load(path, weights_only=True)
    state["net"]["head.weight"] = torch.zeros(3, 128)
    torch.save(state, path)


def nan_weights(path):
    state = torch.load(path, weights_only=True)
    state["net"]["head.bias"][0] = float("nan")
    torch.save(state, path)


@pytest.mark.parametrize("damage, pattern", [
    (truncated, r"evaluator cache .* (is cut short|is damaged|not a readable)"),
    (pickled, r"(is not a torch file|legacy format|not a readable evaluator cache|evaluator cache)"),
    (wrong_shape, r"does not fit these data .*head.weight"),
    (nan_weights, r"holds weights that are not finite; delete it"),
])
def test_a_damaged_cache_is_one_line(tmp_path, monkeypatch, damage, pattern):
    monkeypatch.setattr(E, "CACHE", tmp_path / "cache")
    data = _data()
    E.train_evaluator(data, steps=2)
    (cached,) = E.CACHE.glob("*.pt")
    damage(cached)
    with pytest.raises(GanforgeError, match=pattern) as caught:
        E.train_evaluator(data, steps=2)
    assert "\n" not in str(caught.value) and "delete it" in str(caught.value)
