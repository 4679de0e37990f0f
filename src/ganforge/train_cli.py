"""``gan-train``: builds one :class:`~ganforge.training.request.TrainRequest` from the command
line and hands it to :func:`ganforge.training.fit`.

It lives outside ``ganforge.training`` because it also hands training what lives elsewhere:
``--eval-every``'s scorer comes from ``ganforge.evaluation``, which training itself never
imports (the dependency points one way: evaluation -> training).
"""

from __future__ import annotations

import click

from ganforge.cli import CONTEXT_SETTINGS, version_option
from ganforge.errors import MissingExtraError, cli_errors, short_warnings
from ganforge.threads import threads_option
from ganforge.training.config import AMP_CHOICES

VARIANTS_OWN = "the variant's: gan-train --list"  # options that override a config key


def _load_training():
    try:
        import torch  # noqa: F401  (the train extra's core)

        import ganforge.training as training
    except ImportError as exc:
        raise MissingExtraError("gan-train", "train", exc) from None
    return training


@click.command(context_settings=CONTEXT_SETTINGS)
@version_option("gan-train")
@click.argument("variant", required=False)
@click.option("--config", "config_file", type=click.Path(dir_okay=False), help="JSON file of config keys (a run's config.json works).")
@click.option("--set", "sets", multiple=True, metavar="KEY=VALUE", help="Override one config key; repeatable.")
@click.option("--preset", help="A named preset of the variant (sine: 'source', the source document's hyperparameters).")
@click.option("--data", type=click.Path(), help="Data location (folder or root) for variants that read data.")
@click.option("--download", is_flag=True, help="Let torchvision download MNIST / Fashion-MNIST / CIFAR-10 into --data.")
@click.option("--epochs", type=click.IntRange(min=1), show_default=VARIANTS_OWN,
              help="Epochs to train (with --resume: the new total).")
@click.option("--eval-every", type=click.IntRange(min=1), metavar="N", show_default=VARIANTS_OWN,
              help="Score G every N epochs (series: MMD; images: Fréchet distance) and keep checkpoints/best.pt.")
@click.option("--ema", type=click.FloatRange(min=0, max=1, max_open=True), metavar="DECAY", show_default=VARIANTS_OWN,
              help="Keep an exponential moving average of G (e.g. 0.999); samples and exports use it.")
@click.option("--checkpoint-every", type=click.IntRange(min=1), metavar="STEPS", show_default=VARIANTS_OWN,
              help="Also write checkpoints/last.pt every STEPS steps inside an epoch (resume picks up there).")
@click.option("--tensorboard", is_flag=True, help="Write TensorBoard events to <run>/tensorboard (tensorboard --logdir runs).")
@click.option("--deterministic", is_flag=True, help="Deterministic algorithms: bit-reproducible on CPU (docs/training.md says what it means on CUDA).")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto",
              help="auto: CUDA when torch sees it. Under torchrun: one GPU a process (cuda:LOCAL_RANK).")
@click.option("--amp", type=click.Choice(AMP_CHOICES), show_default="auto",
              help="Mixed precision: auto (bf16 on CUDA where supported, else off), bf16, fp16 "
                   "(with a gradient scaler), off.")
@click.option("--compile", "compile_", is_flag=True, default=None,
              help="torch.compile G and D (a variant it fails for trains eagerly, with a warning).")
@click.option("--seed", type=int, show_default=VARIANTS_OWN, help="Seed for init, noise, shuffling and synthetic data.")
@click.option("--runs-dir", type=click.Path(file_okay=False), show_default="runs, or the config file's runs_dir",
              help="Where runs go (each in a folder of its own; 'latest' points at the newest).")
@click.option("--resume", is_flag=False, flag_value="latest", default=None, metavar="[RUN]",
              help="Continue a run from its last checkpoint; RUN left out: the latest run that has one.")
@click.option("--list", "list_variants", is_flag=True,
              help="List the variants and each config key (its type and default), then exit.")
@click.option("--generator", metavar="FILE.py:CLASS",
              help="Train your own generator class (or package.module:CLASS) instead of a VARIANT; needs "
                   "--discriminator and --latent-shape (docs/training.md#your-own-architecture).")
@click.option("--discriminator", metavar="FILE.py:CLASS",
              help="Your discriminator (or critic) class, trained with --generator: one score a sample.")
@click.option("--latent-shape", metavar="N[,H,W]",
              help="The noise one sample of --generator's class takes, e.g. 100 or 100,1,1 (z is reshaped to it).")
@click.option("--init-args", metavar="JSON", help="Keyword arguments of --generator's class, a JSON object.")
@click.option("--d-init-args", metavar="JSON", help="Keyword arguments of --discriminator's class, a JSON object.")
@click.option("--loss", type=click.Choice(["bce", "hinge", "wgan-gp"]),
              show_default="the variant's; bce with --generator",
              help="bce (non-saturating) or hinge for a variant with a discriminator; with --generator also "
                   "wgan-gp (Wasserstein + gradient penalty).")
@threads_option
def main(variant, config_file, sets, preset, data, download, epochs, eval_every, ema, checkpoint_every, tensorboard, deterministic, device, amp, compile_, seed, runs_dir, resume, list_variants, generator, discriminator, latent_shape, init_args, d_init_args, loss):
    """Train a GAN VARIANT (default: sine, which needs no download), or your own
    modules: --generator FILE.py:G --discriminator FILE.py:D --latent-shape N --data PATH.

    Everything goes to RUNS_DIR/<variant>-<time>/ and RUNS_DIR/latest points there.
    Under torchrun (torchrun --nproc_per_node=N -m ganforge.training ...) the processes
    train together with DistributedDataParallel and rank 0 writes the run.
    """
    short_warnings()
    with cli_errors():
        training = _load_training()
        if list_variants:
            click.echo(_variant_list(training))
            return
        own = _own_modules(variant, resume, generator=generator, discriminator=discriminator,
                           latent_shape=latent_shape, init_args=init_args, d_init_args=d_init_args)
        request = training.TrainRequest.make(
            "custom" if generator and not resume else variant, config_file=config_file, preset=preset, sets=sets,
            device=device, runs_dir=runs_dir, resume=resume, data=data, download=download or None, epochs=epochs,
            seed=seed, eval_every=eval_every, ema=ema, checkpoint_every=checkpoint_every,
            tensorboard=tensorboard or None, deterministic=deterministic or None, amp=amp, compile=compile_ or None,
            loss=loss, **own)
        result = training.fit(request, scorer=_make_scorer)
    if result.rank != 0:
        return  # rank 0 reports for the job
    click.echo(f"run:        {result.run_dir}")
    click.echo(f"checkpoint: {result.checkpoint}")
    on = f" on {result.world_size} processes" if result.world_size > 1 else ""
    total = f" ({result.epochs} in all)" if result.epochs_run != result.epochs else ""
    click.echo(f"trained {result.epochs_run} epochs{total} of {result.variant}{on} ({result.seconds:.1f}s); "
               f"next: gan-export {result.run_dir}")


def _variant_list(training) -> str:
    """``--list``: every variant, and each config key it takes (``--set key=value``, a --config file)
    with its type and default."""
    from ganforge.training.config import key_table

    blocks = []
    for name, v in [*training.VARIANTS.items(), ("custom", training.get_variant("custom"))]:
        where = "training.md#your-own-architecture" if name == "custom" else f"variants.md#{name}"
        blocks.append("\n".join([f"{name} ({v.kind}): {v.source} (docs/{where})", *key_table(v.config_cls)]))
    return ("Each key takes --set key=value (a list: 32,64 or [32,64]; null where its type says 'or null') or a "
            "--config JSON file's entry.\n\n" + "\n\n".join(blocks))


def _own_modules(variant, resume, **given):
    """The config keys of --generator and its companions, checked for what goes together."""
    from ganforge.errors import ConfigError

    options = {k: v for k, v in given.items() if v is not None}
    if resume is not None or not options:
        return options  # (a resume refuses them itself: it keeps the run's modules)
    if not given["generator"]:
        raise ConfigError(f"--{next(iter(options)).replace('_', '-')} goes with --generator FILE.py:G "
                          "(your own modules); drop it, or add --generator")
    if variant:
        raise ConfigError(f"--generator trains your own modules instead of a variant: drop {variant!r} "
                          "(or drop --generator)")
    missing = [f for f, key in (("--discriminator FILE.py:D", "discriminator"), ("--latent-shape N", "latent_shape"))
               if not given[key]]
    if missing:
        raise ConfigError(f"--generator needs {' and '.join(missing)} too (docs/training.md#your-own-architecture)")
    for key in ("init_args", "d_init_args"):
        if key in options:
            options[key] = _json_object(options[key], f"--{key.replace('_', '-')}")
    options["latent_shape"] = _shape(latent_shape=options["latent_shape"])
    return options


def _shape(latent_shape: str) -> list[int]:
    """``--latent-shape`` as gan-infer and gan-export read it (:func:`ganforge.values.parse_latent_shape`);
    whether G takes that shape is CustomConfig's to check."""
    from ganforge.errors import ConfigError, GanforgeError
    from ganforge.values import parse_latent_shape

    try:
        return list(parse_latent_shape(latent_shape))
    except GanforgeError as exc:
        raise ConfigError(f"--latent-shape: {exc}") from None


def _json_object(text: str, option: str) -> dict:
    import json

    from ganforge.errors import ConfigError

    try:
        value = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise ConfigError(f"{option} is not valid JSON ({str(exc)[:80] or 'nested too deeply'}): pass an object, "
                          f"e.g. {option} '{{\"width\": 64}}'") from None
    if not isinstance(value, dict):
        raise ConfigError(f"{option} must be a JSON object of keyword arguments, e.g. {option} '{{\"width\": 64}}'; "
                          f"got {text[:60]}")
    return value


def _make_scorer(kind, data, seed=0):
    """``--eval-every``'s scorer, imported only when a run asks for it."""
    from ganforge.evaluation.scoring import make_scorer

    return make_scorer(kind, data, seed=seed)


if __name__ == "__main__":
    main()
