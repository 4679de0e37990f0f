"""The one training loop every variant runs on.

Variants differ by data, models and objective (see ``variants/``); the epoch
loop, checkpointing, logging, samples and plots are here once.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch

import ganforge
from ganforge.errors import CheckpointError, ConfigError, DeviceError, GanforgeError, MissingExtraError
from ganforge.inference.render import render_grid, save_png
from ganforge.training import checkpoint
from ganforge.training.config import apply, read_config_file, resolve, to_dict
from ganforge.training.data import Batches, real_examples
from ganforge.training.losses import make_objective
from ganforge.training.plots import plot_losses, write_progress_gif
from ganforge.training.run import DEFAULT_RUNS_DIR, RunDir, close_log, open_log, resolve_run, run_of_checkpoint
from ganforge.training.variants import DEFAULT_VARIANT, Variant, get_variant

PLOT_SAMPLES = {"series": 5, "image": 16}  # real and generated samples shown in losses.png


class TrainingDiverged(GanforgeError):
    """A loss became NaN or infinite."""


class Interrupted(GanforgeError):
    """Ctrl-C: the run stopped after a whole step, with a checkpoint to resume from."""

    exit_code = 130  # the shell's convention for SIGINT


class _StopAfterStep(Exception):
    """Raised inside an epoch once a requested stop can be honoured between two steps."""


class _StopRequest:
    """The first Ctrl-C asks to stop after the current step; a second one stops at once."""

    def __init__(self) -> None:
        self.requested = False
        self.previous = None

    def __enter__(self) -> _StopRequest:
        import signal
        import threading

        if threading.current_thread() is threading.main_thread():
            self.previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        import signal

        if self.previous is not None:
            signal.signal(signal.SIGINT, self.previous)

    def _handle(self, signum, frame) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        print("\nstopping after this step to write a checkpoint (Ctrl-C again to stop at once)", file=sys.stderr)


@dataclass
class TrainResult:
    run_dir: Path
    checkpoint: Path
    variant: str
    epochs: int  # epochs done in total (including before a resume)
    seconds: float  # wall time of this call's epochs
    history: list[dict[str, Any]]


def resolve_device(name: str) -> torch.device:
    """``auto`` (CUDA when available), ``cpu`` or ``cuda``; ``cuda`` without CUDA is an error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cpu":
        return torch.device("cpu")
    if name == "cuda":
        if not torch.cuda.is_available():
            raise DeviceError("--device cuda was asked for, but torch sees no CUDA device here; use --device cpu or auto")
        return torch.device("cuda")
    raise DeviceError(f"unknown device {name!r}; use auto, cpu or cuda")


@dataclass
class _State:
    """What one run holds in memory between epochs (and what a checkpoint restores)."""

    variant: Variant
    cfg: Any
    run: RunDir
    G: torch.nn.Module
    D: torch.nn.Module
    opt_g: torch.optim.Optimizer
    opt_d: torch.optim.Optimizer
    fixed_noise: torch.Tensor
    epoch: int = 0
    step: int = 0
    history: list[dict[str, Any]] | None = None
    G_ema: torch.nn.Module | None = None  # exponential moving average of G (--ema), used for samples and export
    partial: dict[str, Any] | None = None  # an interrupted epoch: its perm, batches done, running sums
    stop: _StopRequest | None = None
    board: Any = None  # a TensorBoard SummaryWriter (--tensorboard)

    @property
    def G_out(self) -> torch.nn.Module:
        """The generator whose samples are shown and shipped: the EMA one when kept."""
        return self.G_ema if self.G_ema is not None else self.G


@torch.no_grad()
def ema_update(G_ema: torch.nn.Module, G: torch.nn.Module, decay: float) -> None:
    """``p_ema = decay * p_ema + (1 - decay) * p`` for parameters; buffers (BatchNorm
    statistics) are copied."""
    for p_ema, p in zip(G_ema.parameters(), G.parameters()):
        p_ema.lerp_(p, 1.0 - decay)
    for b_ema, b in zip(G_ema.buffers(), G.buffers()):
        b_ema.copy_(b)


def _build(variant: Variant, cfg: Any, device: torch.device, run: RunDir) -> _State:
    if cfg.deterministic:
        import os

        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # cuBLAS needs it for determinism
        torch.use_deterministic_algorithms(True)
        torch.backends.cudnn.benchmark = False
    torch.manual_seed(cfg.seed)
    G = variant.generator(cfg).to(device)
    D = variant.discriminator(cfg).to(device)
    betas = (cfg.beta1, cfg.beta2)
    opt_g = torch.optim.Adam(G.parameters(), lr=cfg.learning_rate, betas=betas)
    opt_d = torch.optim.Adam(D.parameters(), lr=cfg.learning_rate, betas=betas)
    fixed = torch.randn(cfg.sample_count, G.latent_dim, generator=torch.Generator().manual_seed(cfg.seed + 1))
    G_ema = None
    if cfg.ema:
        import copy

        G_ema = copy.deepcopy(G).eval().requires_grad_(False)
    return _State(variant, cfg, run, G, D, opt_g, opt_d, fixed.to(device), history=[], G_ema=G_ema)


def _checkpoint_state(s: _State) -> dict[str, Any]:
    rng = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available() and s.fixed_noise.is_cuda:
        rng["cuda"] = torch.cuda.get_rng_state_all()
    return {
        "variant": s.variant.name,
        "config": to_dict(s.cfg),
        "generator": s.G.state_dict(),
        **({"generator_ema": s.G_ema.state_dict()} if s.G_ema is not None else {}),
        "discriminator": s.D.state_dict(),
        "opt_g": s.opt_g.state_dict(),
        "opt_d": s.opt_d.state_dict(),
        "epoch": s.epoch,
        "step": s.step,
        "rng": rng,
        "fixed_noise": s.fixed_noise.cpu(),
        "history": s.history,
        "ganforge_version": ganforge.__version__,
        **({"partial": s.partial} if s.partial is not None else {}),
    }


def _restore(s: _State, state: dict[str, Any]) -> None:
    try:
        s.G.load_state_dict(state["generator"])
        if s.G_ema is not None:
            s.G_ema.load_state_dict(state.get("generator_ema", state["generator"]))
        s.D.load_state_dict(state["discriminator"])
        s.opt_g.load_state_dict(state["opt_g"])
        s.opt_d.load_state_dict(state["opt_d"])
        s.fixed_noise = state["fixed_noise"].to(s.fixed_noise.device)
        s.epoch, s.step = int(state["epoch"]), int(state["step"])
        s.history = list(state["history"])
        s.partial = state.get("partial")
        torch.set_rng_state(state["rng"]["torch"])
        if "cuda" in state["rng"] and s.fixed_noise.is_cuda:
            torch.cuda.set_rng_state_all(state["rng"]["cuda"])
    except (KeyError, RuntimeError, ValueError) as exc:
        raise CheckpointError(f"cannot resume from {s.run.checkpoint}: {str(exc)[:200]}") from None


def _resolved_config(s: _State, device: torch.device, preset: str | None) -> dict[str, Any]:
    return {
        "variant": s.variant.name,
        "preset": preset,
        "device": device.type,
        "ganforge_version": ganforge.__version__,
        **to_dict(s.cfg),
    }


def train(
    variant: str | None = None,
    *,
    config_file: str | Path | None = None,
    sets: Iterable[str] = (),
    preset: str | None = None,
    data: str | None = None,
    download: bool = False,
    epochs: int | None = None,
    seed: int | None = None,
    device: str = "auto",
    runs_dir: str | Path | None = None,
    resume: str | Path | None = None,
    progress: bool | None = None,
) -> TrainResult:
    """Train a variant (or resume a run) and return where everything went.

    ``resume`` is a run folder, run name, checkpoint path or ``"latest"``; a
    resumed run keeps its config, and only ``epochs`` (the new total) and
    ``device`` may change. ``runs_dir`` defaults to a config file's ``runs_dir``,
    else ``runs``.
    """
    dev = resolve_device(device)
    if runs_dir is None:
        file_runs = read_config_file(config_file).get("runs_dir") if config_file is not None else None
        runs_dir = file_runs or DEFAULT_RUNS_DIR
    if resume is not None:
        s, preset = _resume_state(resume, runs_dir, dev, variant, config_file, sets, preset, data, seed, epochs)
        payload = s.variant.load_data(s.cfg)
    else:
        if variant is None and config_file is not None:
            variant = read_config_file(config_file).get("variant")
        v = get_variant(variant or DEFAULT_VARIANT)
        overrides = {"data": data, "epochs": epochs, "seed": seed, "download": download or None}
        cfg = resolve(v.config_cls, variant=v.name, presets=v.presets, preset=preset,
                      config_file=config_file, overrides=overrides, sets=sets)
        payload = v.load_data(cfg)  # before the run folder exists: bad data leaves nothing behind
        if hasattr(payload, "source"):
            print(f"data: {payload.source}", file=sys.stderr)
        if v.configure is not None:
            cfg = v.configure(cfg, payload)
        s = _build(v, cfg, dev, RunDir.create(runs_dir, v.name))
    s.run.write_config(_resolved_config(s, dev, preset))
    s.run.mark_latest()
    if progress is None:
        progress = sys.stderr.isatty()
    return _run_epochs(s, payload, dev, progress, resumed=resume is not None)


def _resume_state(resume, runs_dir, dev, variant, config_file, sets, preset, data, seed, epochs):
    changed = [name for name, value in (("VARIANT", variant), ("--config", config_file), ("--set", list(sets)),
                                         ("--preset", preset), ("--data", data), ("--seed", seed)) if value]
    if changed:
        raise ConfigError(f"--resume keeps the run's config; drop {', '.join(changed)} (only --epochs and --device may change)")
    ckpt = resolve_run(resume, runs_dir)
    run = run_of_checkpoint(ckpt)
    if run is None:
        raise CheckpointError(f"{ckpt} is not inside a run folder (<run>/checkpoints/last.pt); resume needs its run")
    run.remove_stale_temporaries()
    state = checkpoint.load(ckpt)
    v = get_variant(state["variant"])
    cfg = apply(v.config_cls(), state["config"], where=f" in {ckpt}")
    if epochs is not None:
        cfg = replace(cfg, epochs=epochs)
        cfg.validate()
    if state["epoch"] >= cfg.epochs:
        raise ConfigError(f"run {run.name} has already trained {state['epoch']} of {cfg.epochs} epochs; "
                          f"pass --epochs N with N > {state['epoch']} to train further")
    s = _build(v, cfg, dev, run)
    _restore(s, state)
    saved_preset = None
    if run.config.exists():
        try:
            saved_preset = read_config_file(run.config).get("preset")
        except ConfigError:
            pass
    return s, saved_preset


def _run_epochs(s: _State, payload, dev: torch.device, progress: bool, resumed: bool) -> TrainResult:
    cfg, run = s.cfg, s.run
    log = open_log(run)
    objective = make_objective(s.variant.loss, cfg)
    batches = Batches(payload, cfg.batch_size, dev)
    if len(batches) == 0:
        close_log(log)
        raise ConfigError("the training data is empty")
    start_epoch = s.epoch
    if cfg.tensorboard:
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError as exc:
            close_log(log)
            raise MissingExtraError("--tensorboard", "train", exc) from None
        s.board = SummaryWriter(log_dir=str(run.path / "tensorboard"), purge_step=start_epoch + 1)
    scorer = None
    if cfg.eval_every:
        from ganforge.evaluation.scoring import make_scorer

        scorer = make_scorer(s.variant.kind, payload, seed=cfg.seed)
    log.info(
        f"{'resuming' if resumed else 'training'} {s.variant.name} in {run.path} on {dev.type}: "
        f"epochs {start_epoch + 1}-{cfg.epochs}, {len(batches)} batches of {cfg.batch_size}"
    )
    t_start = time.perf_counter()
    try:
        with _StopRequest() as s.stop:
            for epoch in range(start_epoch + 1, cfg.epochs + 1):
                _run_one_epoch(s, objective, batches, epoch, progress, scorer, log, start_epoch)
                if s.stop.requested and epoch < cfg.epochs:
                    raise _StopAfterStep
    except _StopAfterStep:
        checkpoint.save(run.checkpoint, _checkpoint_state(s))
        where = (f"epoch {s.partial['epoch']}, after batch {s.partial['pos']} of {len(batches)}"
                 if s.partial else f"the end of epoch {s.epoch}")
        log.warning(f"interrupted: {run.checkpoint} holds {where} (step {s.step})")
        _finish(s, payload, log)
        close_log(log)
        raise Interrupted(f"interrupted at {where}; checkpoint written; resume with: "
                          f"gan-train --resume {run.path}") from None
    except KeyboardInterrupt:
        log.warning(f"interrupted in epoch {s.epoch + 1}; {run.checkpoint} holds epoch {s.epoch}; "
                    f"continue with: gan-train --resume {run.path}")
        _finish(s, payload, log)
        close_log(log)
        raise Interrupted(f"training interrupted; resume with: gan-train --resume {run.path}") from None
    except GanforgeError:
        close_log(log)
        raise
    finally:
        if s.board is not None:
            s.board.close()
            s.board = None
    seconds = time.perf_counter() - t_start
    _finish(s, payload, log)
    log.info(f"done: {cfg.epochs} epochs in {seconds:.1f}s; checkpoint {run.checkpoint}")
    close_log(log)
    return TrainResult(run.path, run.checkpoint, s.variant.name, s.epoch, seconds, s.history)


def _run_one_epoch(s: _State, objective, batches: Batches, epoch: int, progress: bool, scorer, log,
                   start_epoch: int) -> None:
    """Train one epoch, then samples, scores, checkpoint, metrics and the log line."""
    cfg, run = s.cfg, s.run
    row = _train_epoch(s, objective, batches, epoch, progress)
    s.epoch = epoch
    s.history.append(row)
    _save_samples(s, epoch)
    state = _checkpoint_state(s)
    if scorer is not None and epoch % cfg.eval_every == 0:
        name, score = scorer[0], scorer[1](s.G_out)
        row["eval"] = score
        best = min((r["eval"] for r in s.history[:-1] if r.get("eval") is not None), default=None)
        if best is None or score < best:
            checkpoint.save(run.best_checkpoint, state)
            log.info(f"epoch {epoch}: {name} {score:.4g}, the best so far: {run.best_checkpoint}")
        else:
            log.debug(f"epoch {epoch}: {name} {score:.4g} (best {best:.4g})")
    checkpoint.save(run.checkpoint, state)
    run.write_metrics(s.history)
    line = (f"epoch {epoch}/{cfg.epochs}  D(real) {row['d_real']:.4f}  D(fake) {row['d_fake']:.4f}  "
            f"G {row['g']:.4f}  {row['seconds']:.2f}s")
    show = epoch % cfg.log_every == 0 or epoch in (start_epoch + 1, cfg.epochs)
    log.log(20 if show else 10, line)
    if s.board is not None:
        _board(s, row, epoch)


def _board(s: _State, row: dict[str, Any], epoch: int) -> None:
    """The epoch's figures and sample grid as TensorBoard events (step = epoch)."""
    import numpy as np
    from PIL import Image

    for key in ("d_real", "d_fake", "g"):
        s.board.add_scalar(f"loss/{key}", row[key], epoch)
    s.board.add_scalar("time/epoch_seconds", row["seconds"], epoch)
    s.board.add_scalar("time/steps", row["step"], epoch)
    if row.get("eval") is not None:
        s.board.add_scalar("eval/score", row["eval"], epoch)
    grid = np.asarray(Image.open(s.run.sample_path(epoch)).convert("RGB"))
    s.board.add_image("samples", grid, epoch, dataformats="HWC")
    s.board.flush()


def _train_epoch(s: _State, objective, batches: Batches, epoch: int, progress: bool) -> dict[str, Any]:
    G, D = s.G, s.D
    t0 = time.perf_counter()
    dev = s.fixed_noise.device
    part, s.partial = s.partial, None
    if part is not None and part["epoch"] == epoch:  # pick up an interrupted epoch where it stopped
        perm, start, sums = part["perm"], part["pos"], {k: v.to(dev) if torch.is_tensor(v) else v
                                                         for k, v in part["sums"].items()}
    else:
        perm, start = None, 0
        sums = {"d_real": torch.zeros((), device=dev), "d_fake": torch.zeros((), device=dev),
                "g": torch.zeros((), device=dev), "n_d": 0, "n_g": 0}
    it = batches.iterate(perm, start)
    if progress:
        from tqdm.auto import tqdm

        it = tqdm(it, total=len(batches), initial=start, desc=f"epoch {epoch}/{s.cfg.epochs}", leave=False,
                  dynamic_ncols=True)
    try:
        for perm, done, real in it:
            _train_step(s, objective, real, sums)
            if done < len(batches) and perm is not None and s.cfg.checkpoint_every \
                    and s.step % s.cfg.checkpoint_every == 0:
                s.partial = _partial(epoch, perm, done, sums)
                checkpoint.save(s.run.checkpoint, _checkpoint_state(s))
                s.partial = None
            if s.stop is not None and s.stop.requested and done < len(batches):
                if perm is not None:  # in-memory data: the epoch can be picked up exactly here
                    s.partial = _partial(epoch, perm, done, sums)
                raise _StopAfterStep  # (a DataLoader epoch restarts from its beginning on resume)
    except RuntimeError as exc:  # e.g. BCE refusing NaN probabilities once weights went NaN
        if all(torch.isfinite(p).all() for p in (*G.parameters(), *D.parameters())):
            raise
        raise TrainingDiverged(
            f"weights became non-finite in epoch {epoch} (step {s.step}: {str(exc).splitlines()[0][:120]}); "
            f"{s.run.checkpoint} still holds epoch {s.epoch}: lower learning_rate and resume or retrain"
        ) from None
    d_real, d_fake, g_sum, n_d, n_g = sums["d_real"], sums["d_fake"], sums["g"], sums["n_d"], sums["n_g"]
    row = {
        "epoch": epoch,
        "step": s.step,
        "d_real": (d_real / max(n_d, 1)).item(),
        "d_fake": (d_fake / max(n_d, 1)).item(),
        "g": (g_sum / n_g).item() if n_g else float("nan"),
        "seconds": time.perf_counter() - t0,
    }
    checked = ("d_real", "d_fake", "g") if n_g else ("d_real", "d_fake")
    bad = [k for k in checked if not math.isfinite(row[k])]
    if bad:
        raise TrainingDiverged(
            f"loss {bad[0]} became {row[bad[0]]} in epoch {epoch} (step {s.step}); "
            f"{s.run.checkpoint} still holds epoch {s.epoch}: lower learning_rate and resume or retrain"
        )
    return row


def _partial(epoch: int, perm: torch.Tensor, done: int, sums: dict) -> dict[str, Any]:
    """What a checkpoint needs to pick an epoch up after ``done`` batches."""
    return {"epoch": epoch, "perm": perm, "pos": done,
            "sums": {k: v.detach().cpu() if torch.is_tensor(v) else v for k, v in sums.items()}}


def _train_step(s: _State, objective, real: torch.Tensor, sums: dict) -> None:
    G, D = s.G, s.D
    b = real.shape[0]
    # (1) Update D/critic on a real batch and a generated one.
    fake = G(torch.randn(b, G.latent_dim, device=real.device))
    s.opt_d.zero_grad(set_to_none=True)
    d = objective.discriminator_loss(D, real, fake.detach())
    d.total.backward()
    s.opt_d.step()
    objective.after_discriminator_step(D)
    sums["d_real"] += d.real.detach()
    sums["d_fake"] += d.fake.detach()
    sums["n_d"] += 1
    s.step += 1
    # (2) Update G every n_critic discriminator steps, through the updated D.
    if s.step % objective.n_critic == 0:
        s.opt_g.zero_grad(set_to_none=True)
        g = objective.generator_loss(D, fake)
        g.backward()
        s.opt_g.step()
        sums["g"] += g.detach()
        sums["n_g"] += 1
        if s.G_ema is not None:
            ema_update(s.G_ema, G, s.cfg.ema)


@torch.no_grad()
def _generate_fixed(s: _State):
    G = s.G_out
    was_training = G.training
    G.eval()
    out = G(s.fixed_noise).float().cpu().numpy()
    G.train(was_training)
    return out


def _save_samples(s: _State, epoch: int) -> None:
    save_png(render_grid(_generate_fixed(s), s.variant.kind), s.run.sample_path(epoch))


def _finish(s: _State, payload, log) -> None:
    """losses.png and progress.gif from what the run has so far."""
    if not s.history:
        return
    k = PLOT_SAMPLES[s.variant.kind]
    real = real_examples(payload, k).float().cpu().numpy()
    fake = _generate_fixed(s)[:k]
    plot_losses(s.run.losses_plot, s.history, kind=s.variant.kind, real=real, fake=fake,
                title=f"{s.variant.name} — {s.run.name}")
    frames = sorted(s.run.samples.glob("epoch-*.png"))
    n = write_progress_gif(s.run.progress_gif, frames)
    log.debug(f"wrote {s.run.losses_plot} and {s.run.progress_gif} ({n} frames)")
