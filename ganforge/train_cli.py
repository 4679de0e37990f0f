"""``gan-train``: builds one :class:`~ganforge.training.request.TrainRequest` from the command
line and hands it to :func:`ganforge.training.fit`.

It lives outside ``ganforge.training`` because it also hands training what lives elsewhere:
``--eval-every``'s scorer comes from ``ganforge.evaluation``, which training itself never
imports (the dependency points one way: evaluation -> training).
"""

from __future__ import annotations

import click

from ganforge.errors import MissingExtraError, cli_errors, short_warnings
from ganforge.training.config import AMP_CHOICES


def _load_training():
    try:
        import torch  # noqa: F401  (the train extra's core)

        import ganforge.training as training
    except ImportError as exc:
        raise MissingExtraError("gan-train", "train", exc) from None
    return training


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("variant", required=False)
@click.option("--config", "config_file", type=click.Path(dir_okay=False), help="JSON file of config keys (a run's config.json works).")
@click.option("--set", "sets", multiple=True, metavar="KEY=VALUE", help="Override one config key; repeatable.")
@click.option("--preset", help="A named preset of the variant (sine: 'source', the source document's hyperparameters).")
@click.option("--data", type=click.Path(), help="Data location (folder or root) for variants that read data.")
@click.option("--download", is_flag=True, help="Let torchvision download MNIST / Fashion-MNIST / CIFAR-10 into --data.")
@click.option("--epochs", type=click.IntRange(min=1), help="Epochs to train (with --resume: the new total).")
@click.option("--eval-every", type=click.IntRange(min=1), metavar="N",
              help="Score G every N epochs (series: MMD; images: Fréchet distance) and keep checkpoints/best.pt.")
@click.option("--ema", type=click.FloatRange(min=0, max=1, max_open=True), metavar="DECAY",
              help="Keep an exponential moving average of G (e.g. 0.999); samples and exports use it.")
@click.option("--checkpoint-every", type=click.IntRange(min=1), metavar="STEPS",
              help="Also write checkpoints/last.pt every STEPS steps inside an epoch (resume picks up there).")
@click.option("--tensorboard", is_flag=True, help="Write TensorBoard events to <run>/tensorboard (tensorboard --logdir runs).")
@click.option("--deterministic", is_flag=True, help="Deterministic algorithms: bit-reproducible on CPU (docs/training.md says what it means on CUDA).")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True,
              help="auto: CUDA when torch sees it. Under torchrun: one GPU a process (cuda:LOCAL_RANK).")
@click.option("--amp", type=click.Choice(AMP_CHOICES),
              help="Mixed precision: auto (bf16 on CUDA where supported, else off; the default), bf16, fp16 "
                   "(with a gradient scaler), off.")
@click.option("--compile", "compile_", is_flag=True, default=None,
              help="torch.compile G and D (a variant it fails for trains eagerly, with a warning).")
@click.option("--seed", type=int, help="Seed for init, noise, shuffling and synthetic data.")
@click.option("--runs-dir", type=click.Path(file_okay=False), help="Where runs go (default: runs, or the config file's runs_dir).")
@click.option("--resume", is_flag=False, flag_value="latest", default=None, metavar="[RUN]",
              help="Continue a run (default: the latest one with a checkpoint) from its last checkpoint.")
@click.option("--list", "list_variants", is_flag=True, help="List the variants and their config keys, then exit.")
def main(variant, config_file, sets, preset, data, download, epochs, eval_every, ema, checkpoint_every, tensorboard, deterministic, device, amp, compile_, seed, runs_dir, resume, list_variants):
    """Train a GAN VARIANT (default: sine, which needs no download).

    Everything goes to RUNS_DIR/<variant>-<time>/ and RUNS_DIR/latest points there.
    Under torchrun (torchrun --nproc_per_node=N -m ganforge.training ...) the processes
    train together with DistributedDataParallel and rank 0 writes the run.
    """
    short_warnings()
    with cli_errors():
        training = _load_training()
        if list_variants:
            from ganforge.training.config import valid_keys

            for name, v in training.VARIANTS.items():
                keys = ", ".join(valid_keys(v.config_cls))
                click.echo(f"{name:10s} {v.kind:7s} {v.source} (docs/variants.md#{name})\n           keys: {keys}")
            return
        request = training.TrainRequest.make(
            variant, config_file=config_file, preset=preset, sets=sets, device=device, runs_dir=runs_dir,
            resume=resume, data=data, download=download or None, epochs=epochs, seed=seed, eval_every=eval_every,
            ema=ema, checkpoint_every=checkpoint_every, tensorboard=tensorboard or None,
            deterministic=deterministic or None, amp=amp, compile=compile_ or None)
        result = training.fit(request, scorer=_make_scorer)
    if result.rank != 0:
        return  # rank 0 reports for the job
    click.echo(f"run:        {result.run_dir}")
    click.echo(f"checkpoint: {result.checkpoint}")
    on = f" on {result.world_size} processes" if result.world_size > 1 else ""
    total = f" ({result.epochs} in all)" if result.epochs_run != result.epochs else ""
    click.echo(f"trained {result.epochs_run} epochs{total} of {result.variant}{on} ({result.seconds:.1f}s); "
               f"next: gan-export {result.run_dir}")


def _make_scorer(kind, data, seed=0):
    """``--eval-every``'s scorer, imported only when a run asks for it."""
    from ganforge.evaluation.scoring import make_scorer

    return make_scorer(kind, data, seed=seed)


if __name__ == "__main__":
    main()
