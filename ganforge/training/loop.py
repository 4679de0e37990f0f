"""The one training loop every variant runs on.

Variants differ by data, models and objective (see ``variants/``); the epoch
loop, checkpointing, logging, samples and plots are here once, and so are the
ways a run uses its hardware: mixed precision (``--amp``), ``--compile``, and
data parallelism under torchrun (``distributed.py``), where every process runs
this same loop on its shard and rank 0 alone writes the run folder.
"""

from __future__ import annotations

import copy
import functools
import logging
import math
import sys
import time
import warnings
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch

import ganforge
from ganforge.errors import CheckpointError, ConfigError, GanforgeError, GanforgeWarning, MissingExtraError
from ganforge.inference.render import render_grid, save_png
from ganforge.training import checkpoint, conditional, distributed
from ganforge.training.accel import (Precision, compile_or_eager, configure_backends, resolve_device,
                                     resolve_precision, use_channels_last)
from ganforge.training.config import apply, read_config_file, resolve, to_dict
from ganforge.training.data import Batches, real_examples
from ganforge.training.distributed import Dist, weights_digest
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
    """The first Ctrl-C asks to stop after the current step; a second one stops at once.

    Under torchrun, torchrun passes a Ctrl-C on to every process once; they agree on the
    step to stop after (``_stop_requested``) and only rank 0 says so (``quiet`` elsewhere).
    """

    def __init__(self, quiet: bool = False) -> None:
        self.requested = False
        self.previous = None
        self.quiet = quiet

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
        if not self.quiet:
            print("\nstopping after this step to write a checkpoint (Ctrl-C again to stop at once)", file=sys.stderr)


@dataclass
class TrainResult:
    run_dir: Path
    checkpoint: Path
    variant: str
    epochs: int  # epochs done in total (including before a resume)
    seconds: float  # wall time of this call's epochs
    history: list[dict[str, Any]]
    rank: int = 0  # this process's rank under torchrun (0 otherwise); only rank 0 wrote the run
    world_size: int = 1  # processes that trained together


@dataclass
class _State:
    """What one run holds in memory between epochs (and what a checkpoint restores)."""

    variant: Variant
    cfg: Any
    run: RunDir
    G: torch.nn.Module  # the plain modules: what checkpoints, samples and EMA read
    D: torch.nn.Module
    opt_g: torch.optim.Optimizer
    opt_d: torch.optim.Optimizer
    fixed_noise: torch.Tensor
    fixed_labels: torch.Tensor | None = None  # conditional: the sample grid's labels, one row per class
    epoch: int = 0
    step: int = 0
    history: list[dict[str, Any]] | None = None
    G_ema: torch.nn.Module | None = None  # exponential moving average of G (--ema), used for samples and export
    partial: dict[str, Any] | None = None  # an interrupted epoch: its perm, batches done, running sums
    stop: _StopRequest | None = None
    board: Any = None  # a TensorBoard SummaryWriter (--tensorboard)
    dist: Dist = field(default_factory=Dist)  # this process's place in a torchrun job (size 1 without one)
    precision: Precision | None = None  # autocast dtype (--amp)
    scaler_d: Any = None  # GradScalers of the two updates (enabled for fp16 only)
    scaler_g: Any = None
    G_step: torch.nn.Module | None = None  # what a training step calls: G, compiled and/or in DDP
    D_step: torch.nn.Module | None = None  # D for the D/critic update, likewise
    D_local: torch.nn.Module | None = None  # D for G's loss: compiled maybe, never DDP (G's gradient only passes
    #                                         through it; its own D gradients are dropped, so not worth an all-reduce)
    compiled: list[str] = field(default_factory=list)  # modules torch.compile runs ("G", "D"; --compile)

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


def _build(variant: Variant, cfg: Any, device: torch.device, run: RunDir, ctx: Dist) -> _State:
    configure_backends(device, cfg.deterministic)
    precision = resolve_precision(cfg.amp, device)
    torch.manual_seed(cfg.seed)  # the same initial weights on every rank (DDP also syncs them from rank 0)
    G = variant.generator(cfg).to(device)
    D = variant.discriminator(cfg).to(device)
    if use_channels_last(device, G, D):
        G, D = G.to(memory_format=torch.channels_last), D.to(memory_format=torch.channels_last)
    betas = (cfg.beta1, cfg.beta2)
    opt_g = torch.optim.Adam(G.parameters(), lr=cfg.learning_rate, betas=betas)
    opt_d = torch.optim.Adam(D.parameters(), lr=cfg.learning_rate, betas=betas)
    fixed = torch.randn(cfg.sample_count, G.latent_dim, generator=torch.Generator().manual_seed(cfg.seed + 1))
    fixed_labels = None
    if cfg.num_classes:  # one row per class; a column's noise is the same in every row
        per_class = conditional.grid_columns(cfg.sample_count, cfg.num_classes)
        fixed = torch.randn(per_class, G.latent_dim, generator=torch.Generator().manual_seed(cfg.seed + 1))
        fixed = fixed.repeat(cfg.num_classes, 1)
        fixed_labels = conditional.fixed_labels(cfg.num_classes, per_class, device)
    G_ema = None
    if cfg.ema:
        G_ema = copy.deepcopy(G).eval().requires_grad_(False)
    if ctx.rank:
        torch.manual_seed(cfg.seed + ctx.rank)  # each rank draws its own noise (and penalty interpolates)
    return _State(variant, cfg, run, G, D, opt_g, opt_d, fixed.to(device), fixed_labels, history=[], G_ema=G_ema, dist=ctx,
                  precision=precision, scaler_d=precision.grad_scaler(), scaler_g=precision.grad_scaler())


def _rng_state(s: _State) -> dict[str, Any]:
    rng = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available() and s.fixed_noise.is_cuda:
        rng["cuda"] = torch.cuda.get_rng_state_all()
    return rng


def _set_rng_state(rng: dict[str, Any], s: _State) -> None:
    torch.set_rng_state(rng["torch"])
    if "cuda" in rng and s.fixed_noise.is_cuda and len(rng["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(rng["cuda"])


def _checkpoint_state(s: _State) -> dict[str, Any]:
    """Everything a resume needs. Under torchrun every rank calls it at the same step (it is
    where ranks give each other their buffers, RNG states and weight digests); rank 0 writes it.
    The weights are the plain modules' (no ``module.`` or ``_orig_mod.`` prefixes), so a
    checkpoint of N processes resumes in one and the other way round."""
    s.dist.sync_buffers(s.G, s.D, s.G_ema)
    rng = _rng_state(s)
    ranks = s.dist.gather({"rng": rng, "digest": weights_digest(s.G, s.D, s.G_ema)}) if s.dist.enabled else None
    if ranks and len({r["digest"] for r in ranks}) > 1 and s.dist.is_main:
        warnings.warn(f"the {len(ranks)} processes hold different weights at step {s.step}; "
                      f"the checkpoint has rank 0's. This is a bug: please report it", GanforgeWarning)
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
        **({"scalers": {"d": s.scaler_d.state_dict(), "g": s.scaler_g.state_dict()}} if s.scaler_d.is_enabled() else {}),
        **({"world_size": s.dist.world_size, "rng_ranks": [r["rng"] for r in ranks],
            "rank_digests": [r["digest"] for r in ranks]} if ranks else {}),
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
        if s.scaler_d.is_enabled() and "scalers" in state:  # fp16: go on with the scale the run had reached
            s.scaler_d.load_state_dict(state["scalers"]["d"])
            s.scaler_g.load_state_dict(state["scalers"]["g"])
        ranks = state.get("rng_ranks")
        if s.dist.enabled and ranks and len(ranks) == s.dist.world_size:
            _set_rng_state(ranks[s.dist.rank], s)  # the same number of processes: each goes on with its stream
        elif s.dist.rank:
            torch.manual_seed(s.cfg.seed + s.dist.rank)  # another world size wrote it: a fresh stream of its own
        else:
            _set_rng_state(state["rng"], s)
    except (KeyError, RuntimeError, ValueError) as exc:
        raise CheckpointError(f"cannot resume from {s.run.checkpoint}: {str(exc)[:200]}") from None


def _resolved_config(s: _State, device: torch.device, preset: str | None) -> dict[str, Any]:
    return {
        "variant": s.variant.name,
        "preset": preset,
        "device": device.type,
        "precision": s.precision.name,
        "world_size": s.dist.world_size,
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
    amp: str | None = None,
    compile: bool | None = None,
    runs_dir: str | Path | None = None,
    resume: str | Path | None = None,
    progress: bool | None = None,
) -> TrainResult:
    """Train a variant (or resume a run) and return where everything went.

    ``resume`` is a run folder, run name, checkpoint path or ``"latest"``; a
    resumed run keeps its config, and only ``epochs`` (the new total), ``device``,
    ``amp`` and ``compile`` may change. ``runs_dir`` defaults to a config file's
    ``runs_dir``, else ``runs``.

    Started by torchrun (``RANK``/``WORLD_SIZE``/``LOCAL_RANK`` in the environment,
    more than one process), it joins the job and trains with DistributedDataParallel;
    every process returns, and ``TrainResult.rank`` tells rank 0, which wrote the run.
    """
    dev = resolve_device(device)
    ctx, dev = distributed.start(dev)
    with warnings.catch_warnings():
        if not ctx.is_main:
            warnings.simplefilter("ignore")  # rank 0 says it once
        result = _train(ctx, dev, variant, config_file, sets, preset, data, download, epochs, seed, amp, compile,
                        runs_dir, resume, progress)
    ctx.close()  # (after an error the group goes with the process: ending it could wait on ranks that are gone)
    return result


def _train(ctx: Dist, dev: torch.device, variant, config_file, sets, preset, data, download, epochs, seed, amp,
           compile, runs_dir, resume, progress) -> TrainResult:
    if runs_dir is None:
        file_runs = read_config_file(config_file).get("runs_dir") if config_file is not None else None
        runs_dir = file_runs or DEFAULT_RUNS_DIR
    if resume is not None:
        s, preset = _resume_state(ctx, resume, runs_dir, dev, variant, config_file, sets, preset, data, seed, epochs,
                                  amp, compile)
        payload = s.variant.load_data(s.cfg)
    else:
        if variant is None and config_file is not None:
            variant = read_config_file(config_file).get("variant")
        v = get_variant(variant or DEFAULT_VARIANT)
        overrides = {"data": data, "epochs": epochs, "seed": seed, "download": download or None, "amp": amp,
                     "compile": compile}
        cfg = resolve(v.config_cls, variant=v.name, presets=v.presets, preset=preset,
                      config_file=config_file, overrides=overrides, sets=sets)
        resolve_precision(cfg.amp, dev)  # like bad data below, a GPU without bf16 stops before the run folder exists
        payload = v.load_data(cfg)  # before the run folder exists: bad data leaves nothing behind
        if hasattr(payload, "source") and ctx.is_main:
            print(f"data: {payload.source}", file=sys.stderr)
        if v.configure is not None:
            cfg = v.configure(cfg, payload)
        cfg = conditional.configure(cfg, payload, v.name)  # classes from the data (conditional=true)
        run = ctx.from_main(lambda: RunDir.create(runs_dir, v.name))  # rank 0 makes it; every rank knows it
        s = _build(v, cfg, dev, run, ctx)
    if ctx.is_main:
        s.run.write_config(_resolved_config(s, dev, preset))
        s.run.mark_latest()
    if progress is None:
        progress = sys.stderr.isatty()
    return _run_epochs(s, payload, dev, progress and ctx.is_main, resumed=resume is not None)


def _resume_state(ctx, resume, runs_dir, dev, variant, config_file, sets, preset, data, seed, epochs, amp, compile):
    changed = [name for name, value in (("VARIANT", variant), ("--config", config_file), ("--set", list(sets)),
                                         ("--preset", preset), ("--data", data), ("--seed", seed)) if value]
    if changed:
        raise ConfigError(f"--resume keeps the run's config; drop {', '.join(changed)} "
                          f"(only --epochs, --device, --amp and --compile may change)")

    def load():  # on rank 0 only: other machines of a job need not see the run folder
        ckpt = resolve_run(resume, runs_dir)
        run = run_of_checkpoint(ckpt)
        if run is None:
            raise CheckpointError(f"{ckpt} is not inside a run folder (<run>/checkpoints/last.pt); resume needs its run")
        run.remove_stale_temporaries()
        state = checkpoint.load(ckpt)
        saved_preset = None
        if run.config.exists():
            try:
                saved_preset = read_config_file(run.config).get("preset")
            except ConfigError:
                pass
        return ckpt, run, state, saved_preset

    ckpt, run, state, saved_preset = ctx.from_main(load)
    v = get_variant(state["variant"])
    cfg = apply(v.config_cls(), state["config"], where=f" in {ckpt}")
    changes = {k: value for k, value in (("epochs", epochs), ("amp", amp), ("compile", compile)) if value is not None}
    if changes:
        cfg = replace(cfg, **changes)
        cfg.validate()
    if state["epoch"] >= cfg.epochs:
        raise ConfigError(f"run {run.name} has already trained {state['epoch']} of {cfg.epochs} epochs; "
                          f"pass --epochs N with N > {state['epoch']} to train further")
    s = _build(v, cfg, dev, run, ctx)
    _restore(s, state)
    return s, saved_preset


def _silent_log(run: RunDir) -> logging.Logger:
    """Ranks other than 0 keep quiet: rank 0's train.log and console speak for the job."""
    logger = logging.getLogger(f"ganforge.run.{run.name}.quiet")
    logger.propagate = False
    close_log(logger)
    logger.addHandler(logging.NullHandler())
    return logger


def _run_epochs(s: _State, payload, dev: torch.device, progress: bool, resumed: bool) -> TrainResult:
    cfg, run, main = s.cfg, s.run, s.dist.is_main
    log = open_log(run) if main else _silent_log(run)
    objective = make_objective(s.variant.loss, cfg)
    channels_last = use_channels_last(dev, s.G, s.D)
    batches = Batches(payload, cfg.batch_size, dev, shard=(s.dist.rank, s.dist.world_size), seed=cfg.seed,
                      channels_last=channels_last, labels=bool(cfg.num_classes))
    if len(batches) == 0:
        close_log(log)
        raise ConfigError("the training data is empty")
    start_epoch = s.epoch
    if cfg.tensorboard and main:
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError as exc:
            close_log(log)
            raise MissingExtraError("--tensorboard", "train", exc) from None
        s.board = SummaryWriter(log_dir=str(run.path / "tensorboard"), purge_step=start_epoch + 1)
    scorer = None
    if cfg.eval_every and main:
        from ganforge.evaluation.scoring import make_scorer

        scorer = make_scorer(s.variant.kind, payload, seed=cfg.seed)
    _step_modules(s, objective, payload, dev, channels_last)
    how = []
    if s.dist.enabled:
        how.append(f"{s.dist.world_size} processes")
    if s.precision.dtype is not None:
        how.append(f"{s.precision.name} autocast")
    if s.compiled:
        how.append(f"compiled: {' and '.join(s.compiled)}")
    if cfg.num_classes:
        how.append(f"conditional on {cfg.num_classes} classes")
    log.info(
        f"{'resuming' if resumed else 'training'} {s.variant.name} in {run.path} on {dev.type}"
        f"{' (' + ', '.join(how) + ')' if how else ''}: epochs {start_epoch + 1}-{cfg.epochs}, "
        f"{len(batches)} batches of {cfg.batch_size}{' per process' if s.dist.enabled else ''}"
    )
    t_start = time.perf_counter()
    try:
        with _StopRequest(quiet=not main) as s.stop:
            for epoch in range(start_epoch + 1, cfg.epochs + 1):
                _run_one_epoch(s, objective, batches, epoch, progress, scorer, log, start_epoch)
                if _stop_requested(s) and epoch < cfg.epochs:
                    raise _StopAfterStep
    except _StopAfterStep:
        state = _checkpoint_state(s)
        where = (f"epoch {s.partial['epoch']}, after batch {s.partial['pos']} of {len(batches)}"
                 if s.partial else f"the end of epoch {s.epoch}")
        if main:
            checkpoint.save(run.checkpoint, state)
            log.warning(f"interrupted: {run.checkpoint} holds {where} (step {s.step})")
            _finish(s, payload, log)
        s.dist.barrier()  # no process leaves before rank 0 has written the checkpoint
        close_log(log)
        raise Interrupted(f"interrupted at {where}; checkpoint written; resume with: "
                          f"gan-train --resume {run.path}") from None
    except KeyboardInterrupt:
        if main:
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
    if main:
        _finish(s, payload, log)
        log.info(f"done: {cfg.epochs} epochs in {seconds:.1f}s; checkpoint {run.checkpoint}")
    s.dist.barrier()
    close_log(log)
    return TrainResult(run.path, run.checkpoint, s.variant.name, s.epoch, seconds, s.history,
                       rank=s.dist.rank, world_size=s.dist.world_size)


def _step_modules(s: _State, objective, payload, dev: torch.device, channels_last: bool) -> None:
    """The modules training steps call: compiled when asked and it works, in DDP under torchrun."""
    G, D = s.G, s.D
    if s.cfg.compile:
        real = real_examples(payload, s.cfg.batch_size).to(dev)
        if channels_last and real.dim() == 4:
            real = real.contiguous(memory_format=torch.channels_last)
        modules, s.compiled = compile_or_eager({"G": G, "D": D}, lambda m: _probe(s, objective, m["G"], m["D"], real),
                                               s.variant.name)
        G, D = modules["G"], modules["D"]
    s.G_step, s.D_step, s.D_local = s.dist.wrap(G, dev), s.dist.wrap(D, dev), D


def _probe(s: _State, objective, G, D, real: torch.Tensor) -> None:
    """One D step's and one G step's forward and backward through ``G`` and ``D`` (where
    torch.compile really compiles), changing nothing: weights, buffers, gradients and RNG
    are put back as they were."""
    saved = copy.deepcopy((s.G.state_dict(), s.D.state_dict()))
    rng = _rng_state(s)
    try:
        labels = (torch.randint(s.cfg.num_classes, (real.shape[0],), device=real.device)
                  if s.cfg.num_classes else None)
        G, D = _conditioned(G, labels), _conditioned(D, labels)
        with s.precision.autocast():
            fake = G(torch.randn(real.shape[0], s.G.latent_dim, device=real.device))
            d = objective.discriminator_loss(D, real, fake.detach())
        d.total.backward()
        with s.precision.autocast():
            g = objective.generator_loss(D, fake)
        g.backward()
    finally:
        s.G.load_state_dict(saved[0])
        s.D.load_state_dict(saved[1])
        for p in (*s.G.parameters(), *s.D.parameters()):
            p.grad = None
        _set_rng_state(rng, s)


def _stop_requested(s: _State) -> bool:
    """A Ctrl-C arrived (in any process of a torchrun job: all stop after the same step)."""
    return s.dist.any(s.stop is not None and s.stop.requested)


def _run_one_epoch(s: _State, objective, batches: Batches, epoch: int, progress: bool, scorer, log,
                   start_epoch: int) -> None:
    """Train one epoch, then samples, scores, checkpoint, metrics and the log line (rank 0)."""
    cfg, run = s.cfg, s.run
    row = _train_epoch(s, objective, batches, epoch, progress, log)
    s.epoch = epoch
    s.history.append(row)
    state = _checkpoint_state(s)
    if not s.dist.is_main:
        return
    _save_samples(s, epoch)
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
    if row.get("skipped"):
        line += f"  ({row['skipped']} steps skipped by the fp16 gradient scaler)"
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


def _zero_sums(dev: torch.device) -> dict[str, Any]:
    """Running sums of an epoch: losses, steps, and under fp16 the losses that overflowed and
    the steps the gradient scaler skipped."""
    loss, count = torch.zeros((), device=dev), torch.zeros((), device=dev, dtype=torch.int64)
    return {"d_real": loss, "d_fake": loss.clone(), "g": loss.clone(), "n_d": 0, "n_g": 0,
            "overflowed_d": count, "overflowed_g": count.clone(), "skipped": 0}


def _train_epoch(s: _State, objective, batches: Batches, epoch: int, progress: bool, log) -> dict[str, Any]:
    G, D = s.G, s.D
    t0 = time.perf_counter()
    dev = s.fixed_noise.device
    part, s.partial = s.partial, None
    perm, start, sums = None, 0, _zero_sums(dev)
    if part is not None and part["epoch"] == epoch:  # pick up an interrupted epoch where it stopped
        if part.get("world_size", 1) != s.dist.world_size:
            log.warning(f"epoch {epoch} was interrupted in a run of {part.get('world_size', 1)} process(es); "
                        f"with {s.dist.world_size} its batches differ, so it starts again from its first")
        else:
            perm, start = part["perm"], part["pos"]  # (a shard's perm follows from the epoch: None here)
            saved = part["sums_ranks"][s.dist.rank] if s.dist.enabled else part["sums"]
            sums.update({k: v.to(dev) if torch.is_tensor(v) else v for k, v in saved.items()})
    it = batches.iterate(perm, start, epoch)
    if progress:
        from tqdm.auto import tqdm

        it = tqdm(it, total=len(batches), initial=start, desc=f"epoch {epoch}/{s.cfg.epochs}", leave=False,
                  dynamic_ncols=True)
    try:
        for perm, done, real, labels in it:
            _train_step(s, objective, real, labels, sums)
            mid_epoch = done < len(batches)
            if mid_epoch and perm is not None and s.cfg.checkpoint_every and s.step % s.cfg.checkpoint_every == 0:
                s.partial = _partial(s, epoch, perm, done, sums)
                state = _checkpoint_state(s)
                if s.dist.is_main:
                    checkpoint.save(s.run.checkpoint, state)
                s.partial = None
            if _stop_requested(s) and mid_epoch:
                if perm is not None:  # in-memory data: the epoch can be picked up exactly here
                    s.partial = _partial(s, epoch, perm, done, sums)
                raise _StopAfterStep  # (a DataLoader epoch restarts from its beginning on resume)
    except RuntimeError as exc:  # e.g. BCE refusing NaN probabilities once weights went NaN
        if all(torch.isfinite(p).all() for p in (*G.parameters(), *D.parameters())):
            raise
        raise TrainingDiverged(
            f"weights became non-finite in epoch {epoch} (step {s.step}: {str(exc).splitlines()[0][:120]}); "
            f"{s.run.checkpoint} still holds epoch {s.epoch}: lower learning_rate and resume or retrain"
        ) from None
    sums = s.dist.sum(sums)  # the whole job's epoch: the same figures on every rank
    overflowed_d, overflowed_g = int(sums["overflowed_d"]), int(sums["overflowed_g"])
    n_d, n_g = sums["n_d"] - overflowed_d, sums["n_g"] - overflowed_g
    row = {
        "epoch": epoch,
        "step": s.step,
        "d_real": (sums["d_real"] / n_d).item() if n_d else float("nan"),
        "d_fake": (sums["d_fake"] / n_d).item() if n_d else float("nan"),
        "g": (sums["g"] / n_g).item() if n_g else float("nan"),
        "seconds": time.perf_counter() - t0,
    }
    if sums["skipped"]:
        row["skipped"] = sums["skipped"] // s.dist.world_size  # every rank skips the same steps: counted W times
    checked = ("d_real", "d_fake", "g") if sums["n_g"] else ("d_real", "d_fake")
    bad = [k for k in checked if not math.isfinite(row[k])]
    if bad:
        why = (f"every fp16 {'G' if n_d else 'D'} loss of epoch {epoch} overflowed; try --amp bf16 or off"
               if not n_d or (sums["n_g"] and not n_g) else
               f"loss {bad[0]} became {row[bad[0]]} in epoch {epoch} (step {s.step})")
        raise TrainingDiverged(f"{why}; {s.run.checkpoint} still holds epoch {s.epoch}: "
                               f"lower learning_rate and resume or retrain")
    return row


def _partial(s: _State, epoch: int, perm: torch.Tensor, done: int, sums: dict) -> dict[str, Any]:
    """What a checkpoint needs to pick an epoch up after ``done`` batches: the epoch's order
    (under torchrun a shard's order follows from the epoch, so none is saved) and the running
    sums (every rank's, so that a resumed job adds them up in the same order)."""
    sums = {k: v.detach().cpu() if torch.is_tensor(v) else v for k, v in sums.items()}
    ranks = s.dist.gather(sums) if s.dist.enabled else None
    return {"epoch": epoch, "perm": None if s.dist.enabled else perm, "pos": done,
            "world_size": s.dist.world_size, "sums": sums, **({"sums_ranks": ranks} if ranks else {})}


def _count(sums: dict, fp16: bool, which: str, **losses: torch.Tensor) -> None:
    """Add one update's losses to the epoch's sums. Under fp16 a forward pass can overflow now
    and then; that step's loss is left out of the means (``overflowed_*``) and the gradient
    scaler skips the step (its gradients are not finite either), so only a real divergence,
    every loss of an epoch overflowing or NaN weights, stops the run. (A gradient penalty that
    overflows under a too-large scale is the scaler's business: it is not a forward loss.)"""
    if fp16:
        ok = torch.stack([torch.isfinite(v.detach()) for v in losses.values()]).all()
        sums[f"overflowed_{which}"] += ~ok
        losses = {k: torch.where(ok, v.detach(), 0.0) for k, v in losses.items()}
    for key, value in losses.items():
        sums[key] += value.detach()
    sums[f"n_{which}"] += 1


def _optimize(scaler, optimizer, loss: torch.Tensor, sums: dict) -> None:
    """backward and step, through the GradScaler (a pass-through unless fp16). Under torchrun,
    backward averages the gradients over ranks, once. Counts the steps the scaler skipped (its
    scale went down); GradScaler.step has synchronised with the device already."""
    before = scaler.get_scale() if scaler.is_enabled() else None
    scaler.scale(loss).backward()
    scaler.step(optimizer)
    scaler.update()
    if before is not None and scaler.get_scale() < before:
        sums["skipped"] += 1


def _conditioned(module, labels: torch.Tensor | None):
    """``module`` with ``labels`` bound (a conditional G or D), else ``module`` itself: the
    objectives call ``D(x)`` and need not know of classes."""
    return module if labels is None else functools.partial(module, labels=labels)


def _train_step(s: _State, objective, real: torch.Tensor, labels: torch.Tensor | None, sums: dict) -> None:
    b = real.shape[0]
    fp16 = s.scaler_d.is_enabled()
    # (1) Update D/critic on a real batch and a generated one (of the real batch's classes, when conditional).
    D_step = _conditioned(s.D_step, labels)
    with s.precision.autocast():
        fake = _conditioned(s.G_step, labels)(torch.randn(b, s.G.latent_dim, device=real.device))
        d = objective.discriminator_loss(D_step, real, fake.detach(), scaler=s.scaler_d)
    s.opt_d.zero_grad(set_to_none=True)
    _optimize(s.scaler_d, s.opt_d, d.total, sums)
    objective.after_discriminator_step(s.D)
    _count(sums, fp16, "d", d_real=d.real, d_fake=d.fake)
    s.step += 1
    # (2) Update G every n_critic discriminator steps, through the updated D.
    if s.step % objective.n_critic == 0:
        s.opt_g.zero_grad(set_to_none=True)
        with s.precision.autocast():
            g = objective.generator_loss(_conditioned(s.D_local, labels), fake)
        _optimize(s.scaler_g, s.opt_g, g, sums)
        _count(sums, fp16, "g", g=g)
        if s.G_ema is not None:
            ema_update(s.G_ema, s.G, s.cfg.ema)


@torch.no_grad()
def _generate_fixed(s: _State):
    G = s.G_out
    was_training = G.training
    G.eval()
    out = _conditioned(G, s.fixed_labels)(s.fixed_noise).float().cpu().numpy()
    G.train(was_training)
    return out


def _save_samples(s: _State, epoch: int) -> None:
    nrow = len(s.fixed_noise) // s.cfg.num_classes if s.cfg.num_classes else None  # conditional: a row a class
    save_png(render_grid(_generate_fixed(s), s.variant.kind, nrow=nrow), s.run.sample_path(epoch))


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
