"""gan-eval: score an exported generator against real data, offline.

The generator is run through ``ganforge.inference`` (what is shipped is what is
scored). Every score is reported beside its floor: the same score between two
disjoint halves of the real data. Series models (``sine``) are scored now;
image models need the feature-space evaluator that is still to come.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from ganforge.errors import GanforgeError, ModelFileError
from ganforge.fsutil import atomic_write_text

DEFAULT_MODEL = Path("runs") / "latest" / "export" / "generator.onnx"
HELD_OUT_SEED = 10_000  # real rows for evaluation are drawn apart from any training seed


def resolve_model(source: str | os.PathLike[str] | None) -> Path:
    """MODEL.onnx, a run folder (its export/generator.onnx), or None for runs/latest."""
    path = Path(source) if source is not None else DEFAULT_MODEL
    if path.is_dir():
        path = path / "export" / "generator.onnx"
    if not path.is_file():
        raise ModelFileError(f"no exported model at {path}: run gan-export first, or pass MODEL.onnx")
    return path


def real_series(variant: str | None, n: int, length: int, seed: int):
    if variant != "sine":
        raise GanforgeError(f"no real data source for series variant {variant!r}; gan-eval knows: sine")
    from ganforge.training.variants.sine import sine_rows

    return sine_rows(n, length, HELD_OUT_SEED + seed).numpy()


def evaluate(source: str | os.PathLike[str] | None = None, *, n: int = 2000, seed: int = 0,
             out_dir: str | os.PathLike[str] | None = None) -> dict[str, Any]:
    """Score ``n`` generated samples against ``2n`` real ones; write eval.json and eval.md to ``out_dir``."""
    from ganforge.evaluation.series import evaluate_series
    from ganforge.inference import Generator

    if n < 10:
        raise GanforgeError(f"n must be >= 10 for meaningful scores, got {n}")
    model = resolve_model(source)
    gen = Generator(model, device="cpu")
    info = gen.info
    if info.kind != "series":
        raise GanforgeError(f"{model} is an image model; gan-eval scores series models (sine) so far: "
                            "the image evaluator (Fréchet distance in a classifier's feature space) is not built yet")
    real = real_series(info.variant, 2 * n, info.sample_shape[0], seed)
    fake = gen.generate(n, seed=seed)
    scores = evaluate_series(real, fake, seed=seed)
    report = {
        "model": str(model), "variant": info.variant, "source_checkpoint_sha256": info.source_checkpoint_sha256,
        "evaluator": {"kind": "series", "real": f"sine_rows({2 * n}, {info.sample_shape[0]}, seed "
                      f"{HELD_OUT_SEED + seed})", "sine_like_r2": 0.9,
                      "metrics": "single-sinusoid fit; RBF MMD^2 (median bandwidth); random-Fourier-feature "
                                 "logistic classifier |accuracy - 0.5|; 1-D Wasserstein of fitted parameters"},
        "seed": seed, **scores,
    }
    if out_dir is not None:
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        atomic_write_text(out / "eval.json", json.dumps(report, indent=2) + "\n")
        atomic_write_text(out / "eval.md", markdown(report))
    return report


def markdown(report: dict[str, Any]) -> str:
    g, f = report["generated"], report["floor"]
    rows = [("median sinusoid-fit R^2", "r2_median"), ("sine-like fraction (R^2 >= 0.9)", "sine_like_fraction"),
            ("MMD^2", "mmd"), ("classifier gap (held-out accuracy minus 0.5, absolute)", "classifier_gap")]
    lines = [f"# gan-eval: {report['variant']}", "", f"Model: {report['model']}; {report['n_generated']} generated, "
             f"{report['n_real']} real ({report['evaluator']['real']}).", "",
             "| score | generated | floor (real vs real) |", "|---|---|---|"]
    lines += [f"| {label} | {g[key]:.4f} | {f[key]:.4f} |" for label, key in rows]
    lines += [f"| W1 of fitted {k} | {g['param_w1'][k]:.4f} | {f['param_w1'][k]:.4f} |" for k in g["param_w1"]]
    return "\n".join(lines) + "\n"
