"""``gan-infer --verify DIR``: a sharded job's folder held against its model, in seconds.

The manifest against the model (the file's sha256), every shard there and of the right shape,
then a few samples of each shard (at most :data:`MOST` in all, chosen at random from a fixed
seed, so two verifications check the same ones) made again from their index alone
(:mod:`~ganforge.inference.keyed`) and compared with the files: exactly for .npy, through the same
quantisation (and scale) for PNGs. The first difference found is named: the shard, the sample.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ganforge.errors import GanforgeError
from ganforge.fsutil import file_sha256
from ganforge.inference import keyed
from ganforge.inference.render import sample_images, scaled
from ganforge.inference.sharded import job_from_folder
from ganforge.inference.shards import Shard, ShardJob, npy_size, open_generator

PER_SHARD = 3  # samples checked a shard ...
MOST = 240  # ... and in all: beyond MOST / PER_SHARD shards, that many shards are drawn at random
VERIFY_SEED = 0x5EED  # what picks the samples checked (with the job's own seed)


class VerifyError(GanforgeError):
    """A folder that does not hold what its manifest and model say."""


@dataclass(frozen=True)
class Verified:
    """What a verification checked: ``samples`` made again, in ``shards`` of the job's ``total``."""

    folder: Path
    samples: int
    shards: int
    total: int

    def line(self) -> str:
        of = f"all {self.total} shards" if self.shards == self.total else f"{self.shards} of {self.total} shards"
        return (f"verified {self.folder}: {self.samples} samples made again in {of} match the files; the model's "
                f"sha256 matches the manifest; {'the shard is' if self.total == 1 else f'all {self.total} shards are'} "
                "there")


def _check_model(job: ShardJob) -> None:
    path = Path(job.model)
    if not path.is_file():
        raise VerifyError(f"the job's model {path} is not there: pass it with --model FILE.onnx")
    sha = file_sha256(path)
    if sha != job.model_sha256:
        raise VerifyError(f"{path} is not the model that made {job.out}: its sha256 is {sha[:16]}..., the manifest's "
                          f"{job.model_sha256[:16]}...: pass the job's own model with --model")


def _check_present(job: ShardJob) -> None:
    """Every shard there; every npy shard of its complete size (a PNG shard's files: where checked)."""
    missing = job.missing()
    if missing:
        raise VerifyError(f"{job.out}: {len(missing)} of {len(job.shards())} shards are missing ({missing[0].name} "
                          "first): rerun the job's gan-infer command to make them")
    if job.form == "npy":
        for shard in job.shards():
            path = job.out / shard.name
            size, want = path.stat().st_size, npy_size(shard.count, job.sample_shape)
            if size != want:
                raise VerifyError(f"{path} holds {size:,} bytes, a complete shard {want:,}: delete it and rerun the job")


def _open_shard(job: ShardJob, shard: Shard):
    """The shard's samples (npy, memory-mapped) or None (png), its form checked."""
    path = job.out / shard.name
    if job.form == "npy":
        try:
            array = np.load(path, mmap_mode="r", allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise VerifyError(f"{path} is not a readable .npy file ({str(exc)[:80]}): delete it and rerun the job") \
                from None
        if array.dtype != np.float32 or array.shape != (shard.count, *job.sample_shape):
            raise VerifyError(f"{path} holds {array.dtype} {list(array.shape)}, expected float32 "
                              f"{[shard.count, *job.sample_shape]}: delete it and rerun the job")
        return array
    names = sorted(p.name for p in path.iterdir()) if path.is_dir() else []
    want = [job.png_name(i) for i in range(shard.start, shard.stop)]
    if names != want:
        extra = sorted(set(names) - set(want)) or sorted(set(want) - set(names))
        raise VerifyError(f"{path} holds {len(names)} files, expected the {len(want)} PNGs of samples {shard.start}:"
                          f"{shard.stop} ({extra[0] if extra else '?'} differs): delete it and rerun the job")
    return None


def _picked(job: ShardJob, per_shard: int, most: int) -> list[tuple[Shard, np.ndarray]]:
    """The shards and, in each, the sample indices to check: a fixed draw for the job."""
    rng = np.random.default_rng([VERIFY_SEED, job.seed, job.start, job.stop])
    shards = job.shards()
    if len(shards) * per_shard > most:
        keep = np.sort(rng.choice(len(shards), size=max(1, most // per_shard), replace=False))
        shards = [shards[i] for i in keep]
    return [(s, np.sort(rng.choice(np.arange(s.start, s.stop), size=min(per_shard, s.count), replace=False)))
            for s in shards]


def _made_again(job: ShardJob, gen, indices: np.ndarray) -> np.ndarray:
    """Samples ``indices`` of the job's seed, each made from its index alone."""
    dim = gen.info.latent_dim
    z = np.concatenate([keyed.noise(job.seed, int(i), int(i) + 1, dim) for i in indices])
    if job.control is not None:  # truncated and edited each from its own index, as the job made it
        z = np.concatenate([job.control.apply(z[j : j + 1], job.seed, int(i)) for j, i in enumerate(indices)])
    labels = None
    if job.labels is not None:
        labels = np.concatenate([job.labels_of(int(i), int(i) + 1) for i in indices])
    elif job.conditional:
        labels = np.concatenate([gen.sample_labels(1, job.seed, start=int(i)) for i in indices])
    return gen(z, labels)


def _png_pixels(job: ShardJob, sample: np.ndarray) -> np.ndarray:
    image = next(iter(sample_images(sample[None], job.kind, job.value_range)))
    return np.asarray(scaled(image, job.scale))


def _compare(job: ShardJob, shard: Shard, index: int, stored, sample: np.ndarray) -> None:
    from PIL import Image, UnidentifiedImageError

    where = job.out / shard.name
    if job.form == "npy":
        kept = np.asarray(stored[index - shard.start])
        if kept.tobytes() == sample.tobytes():
            return
        diff = np.abs(kept.astype(np.float64) - sample)
        raise VerifyError(f"{where}: sample {index} differs from what the model makes of it (largest difference "
                          f"{np.nanmax(diff) if np.isfinite(diff).any() else float('nan'):.3g}): the shard was changed "
                          "or made otherwise; delete it and rerun the job")
    path = where / job.png_name(index)
    try:
        with Image.open(path) as image:
            kept = np.asarray(image)
    except (OSError, UnidentifiedImageError) as exc:
        raise VerifyError(f"{path} is not a readable PNG ({str(exc)[:80]}): delete {where} and rerun the job") from None
    want = _png_pixels(job, sample)
    if kept.shape != want.shape or not np.array_equal(kept, want):
        raise VerifyError(f"{where}: sample {index} ({path.name}) differs from what the model makes of it: the shard "
                          "was changed or made otherwise; delete it and rerun the job")


def verify_folder(folder: str | os.PathLike[str], model: str | os.PathLike[str] | None = None, *,
                  device: str = "auto", per_shard: int = PER_SHARD, most: int = MOST) -> Verified:
    """Check the sharded job in ``folder`` against its model (``model``, else the manifest's path):
    the sha256, every shard there, and ``per_shard`` samples of each shard (at most ``most`` in
    all) made again. A :class:`VerifyError` names the first thing that differs."""
    job = job_from_folder(folder, model, device=device)
    _check_model(job)
    _check_present(job)
    picked = _picked(job, per_shard, most)
    gen = open_generator(job)
    samples = _made_again(job, gen, np.concatenate([indices for _, indices in picked]))
    at = 0
    for shard, indices in picked:
        stored = _open_shard(job, shard)
        for index in indices:
            _compare(job, shard, int(index), stored, samples[at])
            at += 1
    return Verified(job.out, at, len(picked), len(job.shards()))
