import csv

import torch

from ganforge.evaluation import images, scoring
from ganforge.training import train


def _rows(run):
    return list(csv.DictReader((run.run_dir / "metrics.csv").open()))


def test_sine_keeps_the_best_checkpoint(tmp_path):
    run = train("sine", epochs=4, sets=["n_rows=96", "sample_count=4", "eval_every=2"], runs_dir=tmp_path,
                progress=False, device="cpu")
    rows = _rows(run)
    assert [r["eval"] != "" for r in rows] == [False, True, False, True]
    scores = {int(r["epoch"]): float(r["eval"]) for r in rows if r["eval"]}
    best = torch.load(run.run_dir / "checkpoints" / "best.pt", weights_only=True)
    assert best["epoch"] == min(scores, key=scores.get)
    assert "the best so far" in (run.run_dir / "train.log").read_text()


def test_image_variant_scores_with_the_feature_network(tmp_path, fake_data, monkeypatch):
    monkeypatch.setattr(images, "CACHE", tmp_path / "cache")
    monkeypatch.setattr(scoring, "EVALUATOR_STEPS", 10)
    monkeypatch.setattr(scoring, "SAMPLES", 32)
    run = train("mnist-mlp", epochs=2, data=str(fake_data / "idx"),
                sets=["latent_size=8", "hidden_size=16", "batch_size=16", "eval_every=1"],
                runs_dir=tmp_path / "runs", progress=False, device="cpu")
    rows = _rows(run)
    assert all(float(r["eval"]) > 0 for r in rows)
    assert (run.run_dir / "checkpoints" / "best.pt").exists()
