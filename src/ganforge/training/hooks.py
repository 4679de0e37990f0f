"""What happens around the epochs, as hooks the loop calls.

The loop trains and checkpoints; everything else a run leaves behind is a :class:`Hook`:
the sample grid of each epoch, ``--eval-every``'s score and ``best.pt``, ``metrics.csv``, the
log line, TensorBoard events, and the plots at the end. Adding one never edits the loop.

Hooks run in rank 0 only, the run's one writer, in the order given; :func:`running` opens
the run's log, starts them, and closes both however the run ends. What a hook is (:class:`Hook`)
and what it is handed (the :class:`Trainer`, an :class:`EpochEnd`) are in ``trainer.py``.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Protocol

import torch
from torch import nn

from ganforge.errors import ConfigError, MissingExtraError
from ganforge.inference.render import render_grid, save_png
from ganforge.training import checkpoint
from ganforge.training.data import real_examples
from ganforge.training.plots import plot_losses, write_progress_gif
from ganforge.training.run import close_log, open_log
from ganforge.training.runtime import conditioned
from ganforge.training.trainer import EpochEnd, Hook, Trainer

PLOT_SAMPLES = {"series": 5, "image": 16}  # real and generated samples shown in losses.png


class Scorer(Protocol):
    """What ``--eval-every`` is handed (gan-train hands ``ganforge.evaluation.scoring.make_scorer``):
    given the variant's kind, its training data and a seed, the metric's name and a function
    scoring a generator, lower is better."""

    def __call__(self, kind: str, data: Any, seed: int = 0) -> tuple[str, Callable[[nn.Module], float]]: ...


class Hooks:
    """The hooks of one run, called in order."""

    def __init__(self, hooks: Sequence[Hook]):
        self.hooks = list(hooks)

    def epoch_end(self, t: Trainer, end: EpochEnd) -> None:
        for hook in self.hooks:
            hook.on_epoch_end(t, end)

    def end(self, t: Trainer) -> None:
        for hook in self.hooks:
            hook.on_end(t)


@contextlib.contextmanager
def running(t: Trainer) -> Iterator[Hooks]:
    """Open the run's log (rank 0: train.log and the console; other ranks: silence) and start
    the hooks; close all of it when the run ends, however it ends."""
    with contextlib.ExitStack() as stack:
        t.log = open_log(t.run) if t.rt.dist.is_main else _silent_log(t.run.name)
        stack.callback(close_log, t.log)
        for hook in reversed(t.hooks):  # closed in reverse order of starting, started or not
            stack.callback(hook.close)
        for hook in t.hooks:
            hook.on_start(t)
        yield Hooks(t.hooks)


def _silent_log(name: str) -> logging.Logger:
    logger = logging.getLogger(f"ganforge.run.{name}.quiet")
    logger.propagate = False
    close_log(logger)
    logger.addHandler(logging.NullHandler())
    return logger


def default_hooks(cfg: Any, scorer: Scorer | None) -> list[Hook]:
    """The hooks a config asks for. Refuses, before any run folder exists, what cannot work."""
    hooks: list[Hook] = [SampleGrid()]
    if cfg.eval_every:
        if scorer is None:
            raise ConfigError("eval_every needs a scorer: gan-train hands training ganforge.evaluation's; from Python "
                              "call train(..., scorer=ganforge.evaluation.scoring.make_scorer)")
        hooks.append(Score(scorer))
    hooks += [Health(), Metrics(), LogLine()]
    if cfg.tensorboard:
        hooks.append(TensorBoard())
    hooks.append(Plots())
    return hooks


@torch.no_grad()
def fixed_samples(t: Trainer):
    """The fixed noise through the shipped generator (EMA when kept), in eval mode, as numpy:
    computed once per step however many hooks ask (the grid, the diversity figure, the plots)."""
    if t.fixed is None or t.fixed[0] != t.state.step:
        G = t.state.G_out
        was_training = G.training
        G.eval()
        out = conditioned(G, t.state.fixed_labels)(t.state.fixed_noise).float().cpu().numpy()
        G.train(was_training)
        t.fixed = (t.state.step, out)
    return t.fixed[1]


class SampleGrid(Hook):
    """samples/epoch-NNNN.png: the fixed noise's samples after each epoch (a row a class when conditional)."""

    def on_epoch_end(self, t: Trainer, end: EpochEnd) -> None:
        nrow = len(t.state.fixed_noise) // t.cfg.num_classes if t.cfg.num_classes else None
        save_png(render_grid(fixed_samples(t), t.variant.kind, nrow=nrow), t.run.sample_path(end.epoch))


def _own_rng(device: torch.device):
    """Run scoring on a copy of the random streams: whatever it draws or seeds, training's
    shuffles and noise go on as if it had never run."""
    return torch.random.fork_rng(devices=[device] if device.type == "cuda" else [])


class Score(Hook):
    """``--eval-every N``: score the shipped generator every N epochs (the ``eval`` column) and
    keep the best epoch's checkpoint in ``checkpoints/best.pt``."""

    def __init__(self, scorer: Scorer):
        self.scorer = scorer

    def on_start(self, t: Trainer) -> None:
        with _own_rng(t.rt.device):
            self.name, self.score = self.scorer(t.variant.kind, t.data, seed=t.cfg.seed)

    def on_epoch_end(self, t: Trainer, end: EpochEnd) -> None:
        if end.epoch % t.cfg.eval_every:
            return
        with _own_rng(t.rt.device):
            score = float(self.score(t.state.G_out))
        best = min((r["eval"] for r in t.state.history if r is not end.row and r.get("eval") is not None),
                   default=None)
        end.row["eval"] = score  # (the row is in end.checkpoint's history: best.pt and last.pt keep it)
        if best is None or score < best:
            checkpoint.save(t.run.best_checkpoint, end.checkpoint)
            t.log.info(f"epoch {end.epoch}: {self.name} {score:.4g}, the best so far: {t.run.best_checkpoint}")
        else:
            t.log.debug(f"epoch {end.epoch}: {self.name} {score:.4g} (best {best:.4g})")


def spread(samples: torch.Tensor) -> float:
    """Mean Euclidean distance between two different samples of ``samples`` [n, ...]."""
    flat = samples.float().flatten(1)
    n = len(flat)
    return float(torch.cdist(flat, flat).sum() / (n * (n - 1))) if n > 1 else 0.0


class Health(Hook):
    """Tells the user when training goes wrong, naming the knob to turn.

    Each epoch it measures the fixed-noise samples' **diversity**: their spread (mean distance
    between two samples) over the real data's, within each class when conditional; 1 is as
    varied as real data, near 0 is mode collapse (the ``diversity`` column of metrics.csv).
    It warns when diversity stays under :data:`COLLAPSED` for :data:`PATIENCE` epochs, when
    a discriminator wins outright (both its losses near 0) for as long, and says so plainly
    when G took no step in an epoch (fewer batches than ``n_critic``)."""

    COLLAPSED = 0.25  # diversity under this: the samples are near copies of each other
    D_WINS = 0.02  # a discriminator loss part under this: D tells real from fake almost surely
    PATIENCE = 3  # epochs in a row before a warning (early epochs are often both)

    def on_start(self, t: Trainer) -> None:
        self.real = self._real_spreads(t)
        self.collapsed = self.d_wins = 0
        self.warned: set[str] = set()

    @staticmethod
    def _real_spreads(t: Trainer) -> list[float]:
        """The real data's spread, per class when conditional (the classes the sample grid has)."""
        data = t.data
        if t.cfg.num_classes:
            images, labels = data.images, data.labels
            return [spread(real_examples(images[labels == c], 64)) for c in range(t.cfg.num_classes)]
        return [spread(real_examples(data, 256))]

    def diversity(self, t: Trainer) -> float:
        fake = torch.from_numpy(fixed_samples(t))
        groups = fake.chunk(len(self.real)) if len(self.real) > 1 else [fake]  # a grid row a class
        ratios = [spread(g) / r for g, r in zip(groups, self.real) if r > 0]
        return sum(ratios) / len(ratios) if ratios else float("nan")

    def on_epoch_end(self, t: Trainer, end: EpochEnd) -> None:
        row, n_critic = end.row, t.objective.n_critic
        if row.get("g_steps") == 0:
            t.log.warning(f"epoch {end.epoch}: G took no step: an epoch has {len(t.batches)} batch(es) and G steps "
                          f"once every n_critic={n_critic} critic steps; lower n_critic or batch_size "
                          f"(or train on more data)")
        row["diversity"] = self.diversity(t)
        self.collapsed = self.collapsed + 1 if row["diversity"] < self.COLLAPSED else 0
        if self.collapsed >= self.PATIENCE:
            self._warn(t, "collapse",
                       f"mode collapse: for {self.collapsed} epochs the fixed-noise samples have been near copies of "
                       f"each other (diversity {row['diversity']:.2f}: their spread over the real data's"
                       f"{', within each class' if t.cfg.num_classes else ''}); try --set minibatch_std=true, "
                       f"--ema 0.999, or --set r1_weight=10")
        wins = n_critic == 1 and max(row["d_real"], row["d_fake"]) < self.D_WINS
        self.d_wins = self.d_wins + 1 if wins else 0
        if self.d_wins >= self.PATIENCE:
            self._warn(t, "d_wins",
                       f"the discriminator has won outright for {self.d_wins} epochs (D(real) {row['d_real']:.4f}, "
                       f"D(fake) {row['d_fake']:.4f}): G learns little from it; try --set r1_weight=10, "
                       f"--set augment=translation,cutout (small data sets), or a lower --set learning_rate_d")

    def _warn(self, t: Trainer, kind: str, message: str) -> None:
        if kind not in self.warned:  # once a run: the figures stay in metrics.csv
            self.warned.add(kind)
            t.log.warning(f"warning: {message}")


class Metrics(Hook):
    """metrics.csv: one row per epoch, rewritten whole (atomically) each epoch."""

    def on_epoch_end(self, t: Trainer, end: EpochEnd) -> None:
        t.run.write_metrics(t.state.history)


class LogLine(Hook):
    """The epoch's losses and time: every epoch in train.log, every ``log_every`` on the console
    (and always the first and the last of this call)."""

    def on_start(self, t: Trainer) -> None:
        self.first = t.state.epoch + 1

    def on_epoch_end(self, t: Trainer, end: EpochEnd) -> None:
        row, epochs = end.row, t.cfg.epochs
        g = f"G {row['g']:.4f}" if row.get("g_steps", 1) else "G -"
        line = (f"epoch {end.epoch}/{epochs}  D(real) {row['d_real']:.4f}  D(fake) {row['d_fake']:.4f}  {g}  "
                + (f"diversity {row['diversity']:.2f}  " if "diversity" in row else "") + f"{row['seconds']:.2f}s")
        if row.get("skipped"):
            line += f"  ({row['skipped']} steps skipped by the fp16 gradient scaler)"
        shown = end.epoch % t.cfg.log_every == 0 or end.epoch in (self.first, epochs)
        t.log.log(logging.INFO if shown else logging.DEBUG, line)


class TensorBoard(Hook):
    """``--tensorboard``: the epoch's figures and sample grid as events in <run>/tensorboard (step = epoch)."""

    def __init__(self) -> None:
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError as exc:
            raise MissingExtraError("--tensorboard", "tensorboard", exc) from None
        self.writer_cls, self.writer = SummaryWriter, None

    def on_start(self, t: Trainer) -> None:
        self.writer = self.writer_cls(log_dir=str(t.run.path / "tensorboard"), purge_step=t.state.epoch + 1)

    def on_epoch_end(self, t: Trainer, end: EpochEnd) -> None:
        import numpy as np
        from PIL import Image

        row, epoch = end.row, end.epoch
        for key in ("d_real", "d_fake", "g"):
            self.writer.add_scalar(f"loss/{key}", row[key], epoch)
        self.writer.add_scalar("time/epoch_seconds", row["seconds"], epoch)
        self.writer.add_scalar("time/steps", row["step"], epoch)
        if row.get("eval") is not None:
            self.writer.add_scalar("eval/score", row["eval"], epoch)
        grid = np.asarray(Image.open(t.run.sample_path(epoch)).convert("RGB"))  # SampleGrid wrote it
        self.writer.add_image("samples", grid, epoch, dataformats="HWC")
        self.writer.flush()

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None


class Plots(Hook):
    """losses.png (the loss curves, real beside generated samples) and progress.gif (the sample
    grids' evolution), from what the run has so far."""

    def on_end(self, t: Trainer) -> None:
        if not t.state.history:
            return
        k = PLOT_SAMPLES[t.variant.kind]
        real = real_examples(t.data, k).float().cpu().numpy()
        plot_losses(t.run.losses_plot, t.state.history, kind=t.variant.kind, real=real, fake=fixed_samples(t)[:k],
                    title=f"{t.variant.name} — {t.run.name}")
        n = write_progress_gif(t.run.progress_gif, sorted(t.run.samples.glob("epoch-*.png")))
        t.log.debug(f"wrote {t.run.losses_plot} and {t.run.progress_gif} ({n} frames)")
