"""gan-eval --truncation T1,T2,...: the trade-off truncation makes, measured before a user
chooses a threshold. Each threshold's samples (the same seed, so the same noise before it is
cut) are scored as :func:`ganforge.evaluation.evaluate` scores them, and without truncation
besides; precision should rise and recall fall as the threshold falls. Writes
``truncation.json``, ``truncation.md`` and ``truncation.png`` (precision, recall and the
Fréchet distance against the threshold, with the real-vs-real floor) to the output folder.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from ganforge.errors import GanforgeError
from ganforge.fsutil import atomic_path, atomic_write_text, check_writable
from ganforge.inference.control import check_truncation

MAX_THRESHOLDS = 32
IMAGE_KEYS = ("frechet_distance", "precision", "recall", "coverage")
SERIES_KEYS = ("mmd", "sine_like_fraction", "classifier_gap")


def parse_thresholds(text: str) -> list[float]:
    """``"0.5,1,1.5"`` as thresholds (each checked), in the order given, at most :data:`MAX_THRESHOLDS`."""
    parts = [p.strip() for p in str(text).split(",") if p.strip()]
    if not parts:
        raise GanforgeError(f"--truncation takes thresholds such as 0.5,1,1.5; got {text!r}")
    if len(parts) > MAX_THRESHOLDS:
        raise GanforgeError(f"--truncation takes at most {MAX_THRESHOLDS} thresholds, got {len(parts)}")
    values = [check_truncation(p) for p in parts]
    if len(set(values)) != len(values):
        raise GanforgeError(f"--truncation {text}: a threshold given twice")
    return values


def truncation_curve(source, thresholds: Sequence[float], *, out_dir: str | os.PathLike[str] | None = None,
                     progress: Callable[[str], None] | None = None, **evaluate_args) -> dict[str, Any]:
    """Score the model at each of ``thresholds`` and without truncation (``evaluate_args``:
    :func:`~ganforge.evaluation.evaluate`'s); write the report and plot to ``out_dir``."""
    from ganforge.evaluation import evaluate

    thresholds = sorted(check_truncation(t) for t in thresholds)
    if out_dir is not None:
        check_writable(out_dir)
    points, floor, first = [], None, None
    for t in [*thresholds, None]:
        report = evaluate(source, truncation=t, progress=progress, **evaluate_args)
        first = first or report
        keys = IMAGE_KEYS if report["evaluator"]["kind"] == "image" else SERIES_KEYS
        g = report["generated"]
        for key in keys:
            if not math.isfinite(float(g[key])):
                raise GanforgeError(f"the {key} at truncation {t} is not finite: the model's samples are not usable")
        points.append({"truncation": t, **{k: float(g[k]) for k in keys}})
        floor = {k: float(report["floor"][k]) for k in keys}
        if progress is not None:
            progress(f"  truncation {'none' if t is None else f'{t:g}'}: " +
                     ", ".join(f"{k} {points[-1][k]:.3f}" for k in keys))
    curve = {"model": first["model"], "variant": first["variant"], "seed": first["seed"],
             "n": first["n_generated"] if "n_generated" in first else None, "kind": first["evaluator"]["kind"],
             "evaluator": first["evaluator"], "points": points, "floor": floor,
             "monotonic": _monotonic(points)}
    if out_dir is not None:
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        atomic_write_text(out / "truncation.json", json.dumps(curve, indent=2) + "\n")
        atomic_write_text(out / "truncation.md", markdown(curve))
        plot(curve, out / "truncation.png")
    return curve


def _monotonic(points: list[dict]) -> dict[str, bool]:
    """Whether precision rises and recall falls as the threshold falls (none counts as the largest)."""
    ordered = sorted(points, key=lambda p: math.inf if p["truncation"] is None else p["truncation"])
    out = {}
    for key, rising in (("precision", False), ("recall", True)):
        if key in ordered[0]:
            values = [p[key] for p in ordered]
            out[key] = all((b >= a) if rising else (b <= a) for a, b in zip(values, values[1:]))
    return out


def markdown(curve: dict) -> str:
    keys = [k for k in (*IMAGE_KEYS, *SERIES_KEYS) if k in curve["floor"]]
    lines = [f"# Truncation: {curve['variant'] or Path(curve['model']).name}", "",
             f"Model: {curve['model']}; seed {curve['seed']}: each threshold's samples come from the same noise, "
             "cut there (gan-infer --truncation). The floor is the same score between two halves of the real data.", "",
             "| truncation | " + " | ".join(keys) + " |", "|---" * (len(keys) + 1) + "|"]
    for p in curve["points"]:
        t = "none" if p["truncation"] is None else f"{p['truncation']:g}"
        lines.append(f"| {t} | " + " | ".join(f"{p[k]:.4f}" for k in keys) + " |")
    lines.append("| floor | " + " | ".join(f"{curve['floor'][k]:.4f}" for k in keys) + " |")
    mono = curve["monotonic"]
    if mono:
        said = [f"{k} {'rises' if k == 'precision' else 'falls'} as the threshold falls: "
                f"{'yes' if v else 'not everywhere'}" for k, v in mono.items()]
        lines += ["", "; ".join(said) + ".", "", "![truncation](truncation.png)"]
    return "\n".join(lines) + "\n"


def plot(curve: dict, dest: Path) -> Path:
    """Precision and recall (an image model; a series model's sine-like share) against the
    threshold, and the Fréchet distance (MMD) on the right axis; none at the right end."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    points = curve["points"]
    finite = [p["truncation"] for p in points if p["truncation"] is not None]
    right = max(finite) * 1.25 + 0.25
    xs = [right if p["truncation"] is None else p["truncation"] for p in points]
    image = curve["kind"] == "image"
    fig, ax = plt.subplots(figsize=(7, 4.8))
    for key, colour in ((("precision", "tab:blue"), ("recall", "tab:orange")) if image else
                        (("sine_like_fraction", "tab:blue"),)):
        ax.plot(xs, [p[key] for p in points], "o-", color=colour, label=key)
        ax.axhline(curve["floor"][key], color=colour, ls=":", lw=1, label=f"{key}, real vs real")
    ax.set_xlabel("truncation threshold (rightmost: none)")
    ax.set_ylabel("share")
    ax.set_ylim(0, 1.05)
    ax.set_xticks(xs, [("none" if p["truncation"] is None else f"{p['truncation']:g}") for p in points])
    ax.grid(alpha=0.3)
    distance = "frechet_distance" if image else "mmd"
    twin = ax.twinx()
    twin.plot(xs, [p[distance] for p in points], "s--", color="tab:green", label=distance.replace("_", " "))
    twin.set_ylabel(distance.replace("_", " "), color="tab:green")
    handles = ax.get_legend_handles_labels()[0] + twin.get_legend_handles_labels()[0]
    ax.legend(handles, [h.get_label() for h in handles], loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=3,
              fontsize=8, frameon=False)
    ax.set_title(f"Truncation: {curve['variant'] or Path(curve['model']).name}")
    fig.tight_layout()
    with atomic_path(dest) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)
    return dest
