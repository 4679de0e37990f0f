"""The one training loop every variant runs on.

    from ganforge.training import train
    result = train("sine", epochs=50)

A run is one :class:`~ganforge.training.request.TrainRequest`. :func:`fit` turns it into a
:class:`~ganforge.training.trainer.Trainer` (config, data, run folder, the checkpointed state,
how this process runs it), then trains epoch after epoch: each step updates D (the critic), then G every
``n_critic`` steps. After each epoch the loop writes ``checkpoints/last.pt``; the rest a run
leaves behind (samples, scores, metrics, log lines, TensorBoard, plots) is hooks
(``hooks.py``). Under torchrun every process runs this same loop on its shard of the data
and rank 0 alone writes (``distributed.py``).
"""

from __future__ import annotations

import sys
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

import ganforge
from ganforge import progress, threads
from ganforge.errors import ConfigError, first_line, printable
from ganforge.training import checkpoint, classes, distributed, resume
from ganforge.training.accel import configure_backends, resolve_device, resolve_precision, use_channels_last
from ganforge.training.config import augment_policy, to_dict
from ganforge.training.data import Batches
from ganforge.training.distributed import Dist
from ganforge.training.hooks import Hooks, Scorer, default_hooks, running
from ganforge.training.losses import make_objective
from ganforge.training.request import TrainRequest, new_config, resumed_config
from ganforge.training.run import CHECKPOINT_COPIES, SPACE_MARGIN, RunDir, check_space, writes
from ganforge.training.runtime import Runtime, conditioned
from ganforge.training.state import TrainState, ema_decay, ema_update
from ganforge.training.stop import Interrupted, StopAfterStep, StopRequest, TrainingDiverged
from ganforge.training.sums import EpochSums
from ganforge.training.trainer import EpochEnd, Hook, Trainer
from ganforge.training.variants import check_size, get_variant

__all__ = ["Interrupted", "TrainRequest", "TrainResult", "Trainer", "TrainingDiverged", "ema_update", "fit", "train"]


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
    epochs_run: int = 0  # epochs this call trained (after a resume: fewer than ``epochs``)


def train(variant: str | None = None, *, scorer: Scorer | None = None, hooks: Sequence[Hook] = (),
          **request: Any) -> TrainResult:
    """Train a variant, or resume a run; keywords are :class:`TrainRequest` fields (``resume``,
    ``runs_dir``, ``sets``, ``device``, ``threads``, ...) or config keys (``epochs=3``, ``ema=0.999``).
    ``threads=N`` is ``--threads N``: the threads to compute on (train.log's second line says it)."""
    return fit(TrainRequest.make(variant, **request), scorer=scorer, hooks=hooks)


def fit(request: TrainRequest, *, scorer: Scorer | None = None, hooks: Sequence[Hook] = ()) -> TrainResult:
    """Carry out ``request``. ``scorer`` serves ``--eval-every``; ``hooks`` run after the
    default ones. Started by torchrun (more than one process), every process joins the job
    and returns; ``TrainResult.rank`` tells rank 0, which wrote the run."""
    dist, device = distributed.start(resolve_device(request.device))
    with warnings.catch_warnings():
        if not dist.is_main:
            warnings.simplefilter("ignore")  # rank 0 says it once
        t = _start(request, dist, device, scorer, hooks)
        result = _epochs(t)
    dist.close()  # (after an error the group goes with the process: ending it could wait on ranks that are gone)
    return result


def _start(request: TrainRequest, dist: Dist, device: torch.device, scorer: Scorer | None,
           extra: Sequence[Hook]) -> Trainer:
    """Everything a run needs before its first step. A bad request, config or data stops here,
    before a new run folder exists."""
    saved = dist.from_main(lambda: resume.load_saved(request)) if request.resume is not None else None
    variant, cfg, data = _config_and_data(request, saved, dist, device)
    hooks = [*default_hooks(cfg, scorer), *extra] if dist.is_main else []
    configure_backends(device, cfg.deterministic)
    rt = Runtime(device, dist, resolve_precision(cfg.amp, device), channels_last=False,
                 augment=augment_policy(cfg.augment))
    state = TrainState.build(variant, cfg, device, rt.precision)
    params = sum(p.numel() for m in (state.G, state.D) for p in m.parameters())  # threads for this work (a resume
    threads.apply_torch(torch, params * cfg.batch_size, f"{params:,} parameters x {cfg.batch_size}",  # keeps its run's)
                        steady=cfg.deterministic, keep=threads.recorded(saved.run.config) if saved else None,
                        requested=request.threads)
    rt.channels_last = use_channels_last(device, state.G, state.D)
    batches = Batches(data, cfg.batch_size, device, shard=(dist.rank, dist.world_size), seed=cfg.seed,
                      channels_last=rt.channels_last, labels=bool(cfg.num_classes))
    if len(batches) == 0:
        raise ConfigError("the training data is empty")
    if dist.rank:
        torch.manual_seed(cfg.seed + dist.rank)  # each rank draws its own noise (and penalty interpolates)
    if dist.is_main:
        check_space(saved.run.path if saved else request.runs_folder(), _checkpoint_estimate(state))
    run = saved.run if saved else dist.from_main(lambda: RunDir.create(request.runs_folder(), variant.name))
    t = Trainer(variant, cfg, run, data, batches, state, rt, make_objective(variant.loss, cfg), hooks,
                progress=dist.is_main and (sys.stderr.isatty() if request.progress is None else request.progress))
    if saved is not None:
        t.resume_at = resume.restore(t, saved)
        t.saved = holds(state.epoch, t.resume_at, len(batches))
    if dist.is_main:
        with writes(run.path):
            run.write_config({"variant": variant.name, "preset": saved.preset if saved else request.preset,
                              "device": device.type, "precision": rt.precision.name, "world_size": dist.world_size,
                              "threads": torch.get_num_threads(),
                              "ganforge_version": ganforge.__version__, **to_dict(cfg)})
            run.mark_latest()
    rt.wrap(state, cfg, t.objective, data, variant.name)
    return t


def _config_and_data(request: TrainRequest, saved: resume.Saved | None, dist: Dist, device: torch.device):
    """(variant, config, data): a resume's saved config, or a new one resolved from the request
    and completed from the data (sizes, classes)."""
    if saved is not None:
        variant = get_variant(saved.state["variant"])
        cfg = resumed_config(variant, saved.state["config"], request, where=f" in {saved.path}")
        if saved.state["epoch"] >= cfg.epochs:
            raise ConfigError(f"run {saved.run.name} has already trained {saved.state['epoch']} of {cfg.epochs} "
                              f"epochs; pass --epochs N with N > {saved.state['epoch']} to train further")
        checkpoint.import_recorded(variant, cfg, str(saved.path), say=dist.is_main)  # the user's own modules
        return variant, cfg, variant.load_data(cfg)
    variant = get_variant(request.variant_name())
    cfg = new_config(variant, request)
    resolve_precision(cfg.amp, device)  # a GPU without bf16 stops before the data is read
    data = variant.load_data(cfg)
    if hasattr(data, "source") and dist.is_main:
        print(f"data: {printable(data.source)}", file=sys.stderr)
    if variant.configure is not None:
        cfg = variant.configure(cfg, data)
    cfg = classes.configure(cfg, data, variant.name)  # classes from the data (conditional=true)
    check_size(variant, cfg)  # with every size known, before any model is built
    return variant, cfg, data


def _checkpoint_estimate(state: TrainState) -> int:
    """Bytes of one checkpoint, about: G's and D's weights a few times over, and a margin."""
    weights = sum(t.nelement() * t.element_size() for m in (state.G, state.D) for t in (*m.parameters(), *m.buffers()))
    return CHECKPOINT_COPIES * weights + SPACE_MARGIN


def _epochs(t: Trainer) -> TrainResult:
    state, cfg, dist = t.state, t.cfg, t.rt.dist
    first = state.epoch + 1
    with writes(t.run.path), running(t) as hooks, StopRequest(quiet=not dist.is_main) as t.stop:
        how = t.rt.describe(cfg)
        t.log.info(f"{'resuming' if t.resume_at is not None or state.epoch else 'training'} {t.variant.name} in "
                   f"{t.run.path} on {t.rt.device.type}{' (' + ', '.join(how) + ')' if how else ''}: epochs "
                   f"{first}-{cfg.epochs}, {len(t.batches)} batches of {cfg.batch_size}"
                   f"{' per process' if dist.enabled else ''}")
        t.log.info(str(threads.current()))
        if hasattr(t.data, "source"):
            t.log.debug(f"data: {t.data.source}")  # (the console had it before the run began)
        skip = t.resume_at["pos"] if t.resume_at and t.resume_at.get("epoch") == first else 0  # (a resumed epoch)
        meter = progress.Meter((cfg.epochs - first + 1) * len(t.batches) - skip, per=len(t.batches), epochs=cfg.epochs,
                               first_epoch=first, start=skip, write=t.log.debug if t.progress else t.log.info)
        t0 = time.perf_counter()
        epoch = first
        try:
            for epoch in range(first, cfg.epochs + 1):
                row = _train_epoch(t, epoch, meter)
                state.epoch = epoch
                state.history.append(row)
                end = EpochEnd(epoch, row, resume.payload(t))  # every rank: buffers synced, RNG states gathered
                hooks.epoch_end(t, end)
                _save(t, end.checkpoint)  # after the hooks: the row they completed ("eval") is in it
                if _stop_requested(t) and epoch < cfg.epochs:
                    raise StopAfterStep()
        except StopAfterStep as stop:
            _interrupted(t, hooks, meter, stop.position)
        except KeyboardInterrupt:  # a second Ctrl-C: at once, mid-step; last.pt holds what it last got
            _interrupted(t, hooks, meter, None, at_once=epoch)
        seconds = time.perf_counter() - t0
        hooks.end(t)
        t.log.info(f"done: {cfg.epochs} epochs in {seconds:.1f}s; checkpoint {t.run.checkpoint}")
        t.log.info(f"run: {meter.final()}")
        dist.barrier()
    return TrainResult(t.run.path, t.run.checkpoint, t.variant.name, state.epoch, seconds, state.history,
                       rank=dist.rank, world_size=dist.world_size, epochs_run=cfg.epochs - first + 1)


def _interrupted(t: Trainer, hooks: Hooks, meter: progress.Meter, position: dict[str, Any] | None, *,
                 at_once: int | None = None) -> None:
    """Ctrl-C. Honoured between two steps: checkpoint exactly here, then stop. ``at_once`` (a second
    Ctrl-C, in epoch ``at_once``, mid-step): the state is half-updated, so last.pt keeps what it last
    got. Either way the run ends as a finished one does, with its whole time, then one line: the
    checkpoint and the resume."""
    if at_once is None:
        try:
            _save(t, resume.payload(t, position), position)
        except KeyboardInterrupt:  # another Ctrl-C while it was written: the one before stays whole
            at_once = position["epoch"] if position else t.state.epoch
    kept = t.saved
    if at_once is not None:
        t.log.warning(f"interrupted at once in epoch {at_once} (step {t.state.step}); "
                      + (f"{t.run.checkpoint} holds {kept}" if kept else "no checkpoint was written"))
    else:
        t.log.warning(f"interrupted: {t.run.checkpoint} holds {kept} (step {t.state.step})")
    hooks.end(t)
    t.log.info(f"run: {meter.final()}")
    spent = progress.duration(meter.ended - meter.began)
    if at_once is None:
        t.rt.dist.barrier()  # no process leaves before rank 0 has written the checkpoint
    if kept is None:
        raise Interrupted(f"interrupted in epoch {at_once or t.state.epoch + 1} after {spent}, before its first "
                          f"checkpoint: nothing to resume in {t.run.path}; train again (--checkpoint-every STEPS "
                          "checkpoints inside an epoch)")
    written = "checkpoint written" if at_once is None else "last checkpoint kept"
    raise Interrupted(f"interrupted after {spent} in all; {written}: {t.run.checkpoint} holds {kept}; "
                      f"resume with: gan-train --resume {t.run.path}")


def holds(epoch: int, position: dict[str, Any] | None, batches: int) -> str:
    """What a checkpoint of ``epoch`` whole epochs (and ``position`` inside the next) holds, in words."""
    if position:
        return f"epoch {position['epoch']}, after batch {position['pos']} of {batches}"
    return f"the end of epoch {epoch}"


def _train_epoch(t: Trainer, epoch: int, meter: progress.Meter | None = None) -> dict[str, Any]:
    """One pass over the data (the rest of it, when picking up an interrupted epoch): its row of figures."""
    state, dist = t.state, t.rt.dist
    t0 = time.perf_counter()
    sums = EpochSums(t.rt.device)
    state.set_learning_rates(t.cfg, epoch)
    perm, start = resume.pick_up(t, epoch, sums)
    batches = t.batches.iterate(perm, start, epoch)
    if t.progress:
        from tqdm.auto import tqdm

        batches = tqdm(batches, total=len(t.batches), initial=start, desc=f"epoch {epoch}/{t.cfg.epochs}",
                       leave=False, dynamic_ncols=True)
    try:
        for perm, done, real, labels in batches:
            _train_step(t, real, labels, sums)
            if meter is not None:  # a line at least every 30 s when stderr is no terminal (progress.py)
                meter.step(len(real))
            if done == len(t.batches):
                continue  # the epoch's end checkpoints
            every = t.cfg.checkpoint_every
            if every and state.step % every == 0 and perm is not None:
                at = resume.position(t, epoch, perm, done, sums)
                _save(t, resume.payload(t, at), at)
            if _stop_requested(t):  # in-memory data picks up exactly here; a DataLoader epoch restarts
                raise StopAfterStep(resume.position(t, epoch, perm, done, sums) if perm is not None else None)
    except RuntimeError as exc:  # e.g. BCE refusing NaN probabilities once weights went NaN
        if all(torch.isfinite(p).all() for p in (*state.G.parameters(), *state.D.parameters())):
            raise
        raise TrainingDiverged(
            f"weights became non-finite in epoch {epoch} (step {state.step}: {first_line(exc, 120)}); "
            f"{t.run.checkpoint} still holds epoch {state.epoch}: lower learning_rate and resume or retrain"
        ) from None
    row, why = sums.figures(dist, epoch, state.step, time.perf_counter() - t0)
    if why:
        raise TrainingDiverged(f"{why}; {t.run.checkpoint} still holds epoch {state.epoch}: "
                               f"lower learning_rate and resume or retrain")
    return row


def _train_step(t: Trainer, real: torch.Tensor, labels: torch.Tensor | None, sums: EpochSums) -> None:
    state, rt = t.state, t.rt
    fp16 = state.scaler_d.is_enabled()
    D_step, D_for_G = rt.discriminators(labels)
    ############################
    # (1) Update D/critic: minimise its loss on a real batch and a generated one
    #     (of the real batch's classes when conditional)
    ############################
    with rt.precision.autocast():
        fake = conditioned(rt.G, labels)(torch.randn(len(real), state.G.latent_dim, device=real.device))
        d = t.objective.discriminator_loss(D_step, real, fake.detach(), scaler=state.scaler_d)
    state.opt_d.zero_grad(set_to_none=True)
    _optimize(state.scaler_d, state.opt_d, d.total, sums)
    t.objective.after_discriminator_step(state.D)
    sums.add("d", fp16, d_real=d.real, d_fake=d.fake)
    state.step += 1
    ############################
    # (2) Update G every n_critic steps: minimise its loss through the updated D
    ############################
    if state.step % t.objective.n_critic == 0:
        state.opt_g.zero_grad(set_to_none=True)
        with rt.precision.autocast():
            g = t.objective.generator_loss(D_for_G, fake)
        _optimize(state.scaler_g, state.opt_g, g, sums)
        sums.add("g", fp16, g=g)
        if state.G_ema is not None:
            ema_update(state.G_ema, state.G, ema_decay(t.cfg.ema, state.step // t.objective.n_critic))


def _optimize(scaler: torch.amp.GradScaler, optimizer: torch.optim.Optimizer, loss: torch.Tensor,
              sums: EpochSums) -> None:
    """backward and step, through the GradScaler (a pass-through unless fp16). Under torchrun,
    backward averages the gradients over ranks, once. Counts the steps the scaler skipped (its
    scale went down); GradScaler.step has synchronised with the device already."""
    before = scaler.get_scale() if scaler.is_enabled() else None
    scaler.scale(loss).backward()
    scaler.step(optimizer)
    scaler.update()
    if before is not None and scaler.get_scale() < before:
        sums.skipped_step()


def _stop_requested(t: Trainer) -> bool:
    """A Ctrl-C arrived (in any process of a torchrun job: all stop after the same step)."""
    return t.rt.dist.any(t.stop is not None and t.stop.requested)


def _save(t: Trainer, payload: dict[str, Any], position: dict[str, Any] | None = None) -> None:
    """last.pt, written by rank 0 alone (atomically: a crash leaves the previous one); ``t.saved``
    says what it holds once it is whole."""
    if t.rt.dist.is_main:
        checkpoint.save(t.run.checkpoint, payload)
    t.saved = holds(t.state.epoch, position, len(t.batches))
