import csv

import pytest
import torch

from ganforge.evaluation import images, scoring
from ganforge.evaluation.scoring import make_scorer
from ganforge.training import checkpoint, get_variant, train


def _rows(run):
    return list(csv.DictReader((run.run_dir / "metrics.csv").open()))


def _rescore(run, kind):
    """The last epoch's score recomputed apart, from last.pt's generator."""
    state = checkpoint.load(run.checkpoint)
    G, variant, cfg = checkpoint.build_generator(state)
    _, score = make_scorer(kind, variant.load_data(cfg), seed=cfg.seed)
    return score(G)


def test_sine_keeps_the_best_checkpoint(tmp_path):
    run = train("sine", epochs=4, sets=["n_rows=96", "sample_count=4", "eval_every=2"], runs_dir=tmp_path,
                progress=False, device="cpu", scorer=make_scorer)
    rows = _rows(run)
    assert [r["eval"] != "" for r in rows] == [False, True, False, True]
    scores = {int(r["epoch"]): float(r["eval"]) for r in rows if r["eval"]}
    best = torch.load(run.run_dir / "checkpoints" / "best.pt", weights_only=True)
    assert best["epoch"] == min(scores, key=scores.get)
    assert best["history"][-1]["eval"] == pytest.approx(scores[best["epoch"]], rel=1e-5)  # the row is in best.pt
    assert scores[4] == pytest.approx(_rescore(run, "series"), rel=1e-4)  # the MMD of epoch 4's G, not any number
    assert "the best so far" in (run.run_dir / "train.log").read_text()


def test_image_variant_scores_with_the_feature_network(tmp_path, fake_data, monkeypatch):
    monkeypatch.setattr(images, "CACHE", tmp_path / "cache")
    monkeypatch.setattr(scoring, "EVALUATOR_STEPS", 10)
    monkeypatch.setattr(scoring, "SAMPLES", 32)
    run = train("mnist-mlp", epochs=2, data=str(fake_data / "idx"),
                sets=["latent_size=8", "hidden_size=16", "batch_size=16", "eval_every=1"],
                runs_dir=tmp_path / "runs", progress=False, device="cpu", scorer=make_scorer)
    rows = _rows(run)
    assert all(float(r["eval"]) > 0 for r in rows)
    assert float(rows[-1]["eval"]) == pytest.approx(_rescore(run, "image"), rel=1e-4)  # the Fréchet distance of G
    assert (run.run_dir / "checkpoints" / "best.pt").exists()


def test_eval_every_without_a_scorer_is_refused_before_the_run_folder(tmp_path):
    from ganforge.errors import ConfigError

    with pytest.raises(ConfigError, match="eval_every needs a scorer"):
        train("sine", epochs=1, eval_every=1, runs_dir=tmp_path, progress=False, device="cpu")
    assert not list(tmp_path.iterdir())
    assert get_variant("sine").kind == "series"
