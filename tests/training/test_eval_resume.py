"""``--eval-every`` must not change what training does: a run scored every epoch and resumed
ends with the weights of one never interrupted, whether the evaluator's cache was cold or warm
at either start (the evaluator trains its own network; it must not draw from, or reseed, the
random stream that shuffles the data and draws the noise)."""

import shutil

import torch

from ganforge.evaluation import images, scoring
from ganforge.evaluation.scoring import make_scorer
from ganforge.training import train

SETS = ["latent_size=8", "hidden_size=16", "batch_size=8", "sample_count=4", "eval_every=1"]


def _train(tmp_path, name, data, **kw):
    return train("mnist-mlp", data=str(data), sets=SETS, runs_dir=tmp_path / name, progress=False, device="cpu",
                 scorer=make_scorer, **kw)


def _weights(result):
    state = torch.load(result.checkpoint, weights_only=True)
    return state, {**{f"G.{k}": v for k, v in state["generator"].items()},
                   **{f"D.{k}": v for k, v in state["discriminator"].items()}}


def test_resume_with_eval_every_is_exact_with_cold_and_warm_cache(tmp_path, fake_data, monkeypatch):
    monkeypatch.setattr(scoring, "EVALUATOR_STEPS", 5)
    monkeypatch.setattr(scoring, "SAMPLES", 16)
    cache = tmp_path / "cache"
    monkeypatch.setattr(images, "CACHE", cache)
    data = fake_data / "idx"

    straight = _train(tmp_path, "straight", data, epochs=3)  # the cache is cold when it starts
    assert list(cache.glob("*.pt")), "the evaluator was not cached"
    want_state, want = _weights(straight)

    warm = _train(tmp_path, "warm", data, epochs=1)  # warm cache at both starts
    warm = train(resume=warm.run_dir, epochs=3, runs_dir=tmp_path / "warm", progress=False, device="cpu",
                 scorer=make_scorer)

    shutil.rmtree(cache)
    cold = _train(tmp_path, "cold", data, epochs=2)  # cold at the first start...
    shutil.rmtree(cache)
    cold = train(resume=cold.run_dir, epochs=3, runs_dir=tmp_path / "cold", progress=False, device="cpu",
                 scorer=make_scorer)  # ...and at the resume

    for result in (warm, cold):
        state, got = _weights(result)
        assert state["step"] == want_state["step"]
        for k in want:
            assert torch.equal(got[k], want[k]), (result.run_dir.name, k)
        # the scores are the same too: the evaluator itself does not depend on who called it or when
        assert [r["eval"] for r in state["history"]] == [r["eval"] for r in want_state["history"]]
    # and the scores are real: each epoch's differs (G changed), none is missing
    scores = [r["eval"] for r in want_state["history"]]
    assert all(s is not None and s > 0 for s in scores) and len(set(scores)) == 3
