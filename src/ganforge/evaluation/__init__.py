"""gan-eval: score an exported generator against real data, offline.

The generator is run through ``ganforge.inference`` (what is shipped is what is
scored). Every score is reported beside its floor: the same score between two
disjoint halves of the real data. Series models (``sine``) are compared with
fresh rows of their synthetic distribution; image models with the images under
``--data``, in the feature space of a small network trained on those images
(``evaluation.images``), cached by the data's fingerprint.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ganforge.errors import GanforgeError, ModelFileError, printable
from ganforge.evaluation.metrics import METRIC_SAMPLES
from ganforge.fsutil import atomic_write_text, check_writable, not_a_file
from ganforge.inference import default_model
from ganforge.limits import check_memory

HELD_OUT_SEED = 10_000  # real rows for evaluation are drawn apart from any training seed


def resolve_model(source: str | os.PathLike[str] | None) -> Path:
    """MODEL.onnx, a run folder (its export/generator.onnx), or None for the latest run's export
    (:func:`ganforge.inference.default_model`)."""
    if source is None:
        return default_model()
    path = Path(source)
    if path.is_dir():
        path = path / "export" / "generator.onnx"
    problem = not_a_file(path)
    if problem == "does not exist":
        raise ModelFileError(f"no exported model at {path}: run gan-export first, or pass MODEL.onnx")
    if problem is not None:
        raise ModelFileError(f"model file {path} {problem}: pass MODEL.onnx")
    return path


def finite_samples(x, what: str = "the model") -> None:
    """Samples with a NaN or infinite value are an error here as in gan-infer: scores of them
    (a Fréchet distance of nan, a precision of 0) would say nothing true."""
    import numpy as np

    flat = np.asarray(x).reshape(len(x), -1)
    bad = np.flatnonzero(~np.isfinite(flat).all(axis=1))
    if len(bad):
        raise GanforgeError(f"{what} produced NaN or infinite values in {len(bad)} of {len(x)} samples (first: "
                            f"sample {int(bad[0])}); nothing was scored: check the model (gan-export verifies "
                            "parity) or its inputs")


def finite_scores(scores: dict, where: str = "") -> None:
    """Every score of the generated samples and of the floor is finite (the evaluator's own
    features can be NaN: damaged weights)."""
    import math

    def walk(value, path):
        if isinstance(value, dict):
            for k, v in value.items():
                walk(v, f"{path}.{k}" if path else k)
        elif isinstance(value, float) and not math.isfinite(value):
            raise GanforgeError(f"gan-eval's score {path} came out {value}{where}: the evaluator's features are not "
                                "finite; delete its cache (in GANFORGE_CACHE_DIR/evaluators) and run again")

    for part in ("generated", "floor"):  # (a class the held-out images lack has a nan ceiling: said, not scored)
        walk(scores.get(part, {}), part)


def eval_bytes(n: int, sample_shape: tuple[int, ...], kind: str) -> int:
    """What scoring ``n`` samples holds at once: the generated samples and twice as many real
    ones (float32), and the pairwise float64 distance matrices of the scores (evaluation.metrics).
    Series: the MMD pools 3n rows, 9 n^2 values, with a temporary beside; images: the k-NN
    scores take at most METRIC_SAMPLES a side, up to six k x k matrices alive at once."""
    pairs = 12 * n * n if kind == "series" else 6 * min(n, METRIC_SAMPLES) ** 2
    return 3 * n * math.prod(sample_shape) * 4 + 8 * pairs


def to_unit_range(x, value_range):
    """Samples in ``value_range`` (a foreign model's [0, 1] or [0, 255]) moved to [-1, 1], where the
    real data and the evaluator are; [-1, 1] ones as they are."""
    lo, hi = value_range
    if (lo, hi) == (-1.0, 1.0):
        return x
    return ((x - lo) * (2.0 / (hi - lo)) - 1.0).astype(x.dtype, copy=False)


def real_series(variant: str | None, n: int, length: int, seed: int):
    if variant != "sine":
        raise GanforgeError(f"no real data source for series variant {variant!r}; gan-eval knows: sine")
    from ganforge.training.variants.sine import sine_rows

    return sine_rows(n, length, HELD_OUT_SEED + seed).numpy()


def load_real_images(data: str | os.PathLike[str] | None, sample_shape: tuple[int, ...]):
    """The images under ``data`` (MNIST-format, CIFAR-10 or a folder), at the model's shape."""
    from ganforge.training.datasets import (CIFAR_CLASSES, check_path, detect, fit_images, load_cifar, load_folder,
                                            load_idx)

    root = check_path(None if data is None else str(data), "gan-eval of an image model (the real images)")
    channels, h, w = sample_shape
    kind = detect(root)
    if kind == "idx":
        real = load_idx(root)
    elif kind == "cifar":
        real = load_cifar(root, classes=list(CIFAR_CLASSES))
    else:
        real = load_folder(root, image_size=(h, w), channels=channels)
    return fit_images(real, (h, w), channels)


def evaluate(source: str | os.PathLike[str] | None = None, *, data: str | os.PathLike[str] | None = None,
             n: int = 2000, seed: int = 0, out_dir: str | os.PathLike[str] | None = None,
             evaluator_steps: int = 1500, progress: Callable[[str], None] | None = None,
             overrides: dict | None = None, provider: str | None = None, precision: str = "fp32",
             truncation: float | None = None) -> dict[str, Any]:
    """Score ``n`` generated samples against real ones; write eval.json and eval.md to ``out_dir``.

    ``evaluator_steps``: training steps of the image feature network when it is not cached yet
    (minutes on a CPU for a large data set: ``progress`` gets a line as it goes). A model without
    ganforge metadata is read with ``overrides`` (Generator's ``latent_dim``, ``latent_shape``,
    ``value_range``, ``layout``, ``num_classes``); ``progress`` gets its foreign-model line first.
    Samples are scored in [-1, 1], rescaled from the model's value range. ``provider`` and
    ``precision`` run the model as gan-infer's --provider and --precision do; a reduced precision
    is also scored at fp32 on the same noise, and the report says what it costs (``reduced``: the
    largest difference of a sample value, and each score at both precisions). ``truncation``: the
    samples are made with the noise truncated there (:mod:`ganforge.inference.control`), as
    ``gan-infer --truncation`` makes them; :mod:`ganforge.evaluation.truncation` scores several.
    """
    from ganforge.inference import Control, Generator

    control = Control(truncation) if truncation is not None else None
    if n < 10:
        raise GanforgeError(f"n must be >= 10 for meaningful scores, got {n}")
    if out_dir is not None:
        check_writable(out_dir)  # before the evaluator trains for minutes
    model = resolve_model(source)
    gen = Generator(model, device="cpu", provider=provider, precision=precision, **(overrides or {}))
    # a reduced precision is scored beside fp32 on onnxruntime (exact to 1e-4 of torch), same noise
    exact = None if precision == "fp32" else Generator(model, device="cpu", provider="onnxruntime",
                                                       **(overrides or {}))
    for each in (gen, exact):
        if each is not None:
            each.batch_option = None  # gan-eval sizes its batches itself: a run over the limit says to raise it
    info = gen.info
    if gen.foreign_note and progress is not None:
        progress(gen.foreign_note)
    check_memory(f"scoring {n} samples of shape {list(info.sample_shape)}", eval_bytes(n, info.sample_shape, info.kind),
                 "pass a smaller --n (2000 gives stable scores)")
    base = {"model": str(model), "variant": info.variant, "source_checkpoint_sha256": info.source_checkpoint_sha256,
            "seed": seed, **({"foreign": gen.foreign_note} if gen.foreign_note else {}), "precision": precision,
            **({"truncation": control.truncation} if control is not None else {})}
    if info.kind == "series":
        from ganforge.evaluation.series import evaluate_series

        if data is not None:
            raise GanforgeError(f"--data does not apply to a series model ({info.variant}): its real curves are "
                                "drawn from the variant's own source; drop --data")

        real = real_series(info.variant, 2 * n, info.sample_shape[0], seed)
        fake = gen.generate(n, seed=seed, control=control)
        finite_samples(fake, str(model))
        scores = evaluate_series(real, to_unit_range(fake, info.value_range), seed=seed)
        if exact is not None:
            ref = exact.generate(n, seed=seed, control=control)
            finite_samples(ref, str(model))
            base["reduced"] = _reduced(fake, ref, scores, evaluate_series(real, to_unit_range(ref, info.value_range),
                                                                          seed=seed), gen, ("mmd", "sine_like_fraction"))
        evaluator = {"kind": "series", "real": f"sine_rows({2 * n}, {info.sample_shape[0]}, seed "
                     f"{HELD_OUT_SEED + seed})", "sine_like_r2": 0.9,
                     "metrics": "single-sinusoid fit; RBF MMD^2 (median bandwidth); random-Fourier-feature "
                                "logistic classifier |accuracy - 0.5|; 1-D Wasserstein of fitted parameters"}
    else:
        import numpy as np
        import torch

        from ganforge.evaluation.images import evaluate_images, train_evaluator

        real = load_real_images(data, info.sample_shape)
        ev = train_evaluator(real, seed=seed, steps=evaluator_steps, progress=progress)
        pick = torch.randperm(len(real), generator=torch.Generator().manual_seed(seed))[: 2 * n]
        subset = type(real)(real.images[pick], real.labels[pick], real.classes, real.source)
        labels = None
        if info.conditional:  # every class as often: n samples, class i % num_classes
            labels = np.arange(n, dtype=np.int64) % info.num_classes
        fake = gen.generate(n, seed=seed, labels=labels, control=control)
        finite_samples(fake, str(model))
        scores = evaluate_images(ev, subset, to_unit_range(fake, info.value_range), seed=seed, fake_labels=labels)
        if exact is not None:
            ref = exact.generate(n, seed=seed, labels=labels, control=control)
            finite_samples(ref, str(model))
            ref_scores = evaluate_images(ev, subset, to_unit_range(ref, info.value_range), seed=seed, fake_labels=labels)
            base["reduced"] = _reduced(fake, ref, scores, ref_scores, gen, ("frechet_distance", "precision", "recall",
                                                                          "coverage"))
        fake = to_unit_range(fake, info.value_range)
        if labels is not None:
            scores["conditional"] = _conditional_scores(ev, fake, labels, info)
        evaluator = {"kind": "image", "data": str(data), **ev.identity(),
                     "metrics": "Fréchet distance, precision/recall (k=3), density/coverage (k=5) in the 128-d "
                                "features of a CNN trained on the real images; class histogram when labelled"}
    report = {**base, "evaluator": evaluator, **scores}
    finite_scores(scores)
    if out_dir is not None:
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        atomic_write_text(out / "eval.json", json.dumps(report, indent=2) + "\n")
        atomic_write_text(out / "eval.md", markdown(report))
    return report


def _reduced(fake, ref, scores: dict, ref_scores: dict, gen, keys: tuple[str, ...]) -> dict[str, Any]:
    """What a reduced precision costs: its largest difference from fp32 on the same noise, and each
    score at both precisions (the relative change of the first)."""
    import numpy as np

    out: dict[str, Any] = {"runtime": gen.runtime_text(), "max_abs_diff": float(np.abs(fake - ref).max()),
                           "mean_abs_diff": float(np.abs(fake - ref).mean()),
                           "scores": {k: {"reduced": scores["generated"][k], "fp32": ref_scores["generated"][k]}
                                      for k in keys}}
    first = out["scores"][keys[0]]
    out["change"] = {"score": keys[0], "relative": (first["reduced"] - first["fp32"]) / abs(first["fp32"])
                     if first["fp32"] else 0.0}
    return out


def reduced_line(report: dict[str, Any]) -> str | None:
    """One line on a reduced precision's price (gan-eval's output and eval.md); None at fp32."""
    r = report.get("reduced")
    if not r:
        return None
    key = r["change"]["score"]
    s = r["scores"][key]
    return (f"{report['precision']} ({r['runtime']}): max abs diff {r['max_abs_diff']:.2g} from fp32 on the same "
            f"noise (mean {r['mean_abs_diff']:.2g}); {key.replace('_', ' ')} {s['reduced']:.4f} against "
            f"{s['fp32']:.4f} at fp32 ({100 * r['change']['relative']:+.2f}%)")


def _conditional_scores(ev, fake, labels, info) -> dict[str, Any]:
    """Label accuracy of a conditional model, when the evaluator classifies the same classes."""
    from ganforge.evaluation.images import label_accuracy

    names = list(info.class_names)
    if ev.task != "classes" or len(ev.classes) != len(names):
        return {"skipped": f"the evaluator knows {len(ev.classes) if ev.task == 'classes' else 'no'} classes of "
                           f"--data, the model {len(names)}: pass the data the model was trained on"}
    out = label_accuracy(ev, fake, labels, names)
    if list(ev.classes) != names:
        out["note"] = f"class names differ (data: {', '.join(map(printable, ev.classes))}); matched by index"
    return out


def _heading(report: dict[str, Any]) -> list[str]:
    """The title (the variant, else the file's name) and, for a foreign model, how it was read."""
    lines = [f"# gan-eval: {report['variant'] or Path(report['model']).name}", ""]
    if report.get("truncation") is not None:
        lines += [f"Samples made with the noise truncated at {report['truncation']:g}.", ""]
    return lines + ([f"Read as a {report['foreign']}.", ""] if report.get("foreign") else [])


def markdown(report: dict[str, Any]) -> str:
    text = _markdown(report)
    line = reduced_line(report)
    return text + (f"\nPrecision {line}.\n" if line else "")


def _markdown(report: dict[str, Any]) -> str:
    g, f = report["generated"], report["floor"]
    if report["evaluator"]["kind"] == "image":
        ev = report["evaluator"]
        lines = [*_heading(report),
                 f"Model: {report['model']}; {report['n_generated']} generated, {report['n_real']} real from "
                 f"{ev['data']}. Evaluator: {ev['task']} network, held-out accuracy {ev['accuracy']:.3f}, "
                 f"fingerprint {ev['fingerprint']}, trained on {ev['n_train']} images.", "",
                 "| score | generated | floor (real vs real) |", "|---|---|---|"]
        keys = ["frechet_distance", "precision", "recall", "density", "coverage", "classes_covered",
                "class_tv_distance"]
        lines += [f"| {k} | {g[k]:.4f} | {f[k]:.4f} |" for k in keys if k in g]
        if "class_histogram" in g:
            lines += ["", "Generated class histogram: " + ", ".join(f"{c} {p:.1%}" for c, p in g["class_histogram"].items())]
        cond = report.get("conditional")
        if cond and "accuracy" in cond:
            lines += ["", f"Conditional: the evaluator classifies {cond['accuracy']:.1%} of {cond['n']} generated "
                      f"samples as the class they were asked for (its accuracy on held-out real images: "
                      f"{cond['ceiling']:.1%}).", "", "| class | label accuracy | evaluator on real (ceiling) |",
                      "|---|---|---|"]
            ceiling = cond.get("ceiling_per_class", {})
            lines += [f"| {c} | {a:.1%} | {f'{ceiling[c]:.1%}' if c in ceiling else 'n/a'} |"
                      for c, a in cond["per_class"].items()]
        elif cond:
            lines += ["", f"Conditional: label accuracy skipped: {cond['skipped']}"]
        if report.get("per_class"):
            lines += ["", "Within each class (its generated samples against its real images):", "",
                      "| class | precision | recall | floor precision | floor recall |", "|---|---|---|---|---|"]
            lines += [f"| {c} | {v['precision']:.3f} | {v['recall']:.3f} | {v['floor_precision']:.3f} | "
                      f"{v['floor_recall']:.3f} |" for c, v in report["per_class"].items()]
        return "\n".join(lines) + "\n"
    rows = [("median sinusoid-fit R^2", "r2_median"), ("sine-like fraction (R^2 >= 0.9)", "sine_like_fraction"),
            ("MMD^2", "mmd"), ("classifier gap (held-out accuracy minus 0.5, absolute)", "classifier_gap")]
    lines = [*_heading(report), f"Model: {report['model']}; {report['n_generated']} generated, "
             f"{report['n_real']} real ({report['evaluator']['real']}).", "",
             "| score | generated | floor (real vs real) |", "|---|---|---|"]
    lines += [f"| {label} | {g[key]:.4f} | {f[key]:.4f} |" for label, key in rows]
    lines += [f"| W1 of fitted {k} | {g['param_w1'][k]:.4f} | {f['param_w1'][k]:.4f} |" for k in g["param_w1"]]
    return "\n".join(lines) + "\n"
