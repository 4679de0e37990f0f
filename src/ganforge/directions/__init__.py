"""gan-directions: named directions in a generator's latent space, found from the model itself
and stored beside it as ``directions.json`` (:mod:`ganforge.inference.directions`), which
``gan-infer --edit/--sweep``, gan-serve and its page read.

- :mod:`.principal`: principal directions of the model's own samples (numpy and the ONNX
  model only: any generator with a known latent, ganforge's or not);
- :mod:`.classes`: with labelled real data, a direction toward each class (gan-eval's
  evaluator labels the samples; torch).

    from ganforge.directions import find_directions
    found = find_directions("runs/latest/export/generator.onnx", k=5, data="/data/fashion-mnist")
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from ganforge.errors import GanforgeError, printable
from ganforge.inference import directions as files

MAX_K = 64


def find_directions(model: str | os.PathLike[str], *, k: int = 5, data: str | os.PathLike[str] | None = None,
                    out: str | os.PathLike[str] | None = None, samples: int = 4096, device: str = "cpu",
                    evaluator_steps: int = 1500, progress: Callable[[str], None] | None = None,
                    generator_options: dict | None = None) -> tuple[files.Directions, Path]:
    """Find ``k`` principal directions of ``model`` (and with ``data``, one a class) and write
    them to ``out`` (default: ``directions.json`` beside the model), whole. Returns them and the
    path written."""
    from ganforge.directions.principal import principal_directions
    from ganforge.fsutil import check_writable, file_sha256
    from ganforge.inference import Generator

    if not (isinstance(k, int) and 0 <= k <= MAX_K):
        raise GanforgeError(f"--k must be a whole number from 0 to {MAX_K}, got {k!r}")
    if k == 0 and data is None:
        raise GanforgeError("--k 0 and no --data find nothing: ask for principal directions (--k 5) or pass --data")
    path = Path(out) if out is not None else files.path_for(model)
    check_writable(path.parent)  # before minutes of work
    gen = Generator(model, device=device, **(generator_options or {}))
    gen.batch_option = None
    found = principal_directions(gen, k=k, n=samples) if k else []
    if data is not None:
        from ganforge.directions.classes import class_directions, evaluator_for

        ev = evaluator_for(gen, data, steps=evaluator_steps, progress=progress)
        found += class_directions(gen, ev, progress=progress)
    taken = {d.name for d in found}
    if len(taken) != len(found):
        raise GanforgeError("two directions got one name (a class named like pc0?): rename the class folder")
    try:
        sha = file_sha256(gen.path)
    except OSError as exc:
        raise GanforgeError(f"cannot read {printable(str(gen.path))}: {exc.strerror or exc}") from None
    result = files.Directions(sha, gen.info.latent_dim, tuple(found), gen.info.source_checkpoint_sha256,
                              Path(gen.path).name)
    files.save(result, path)
    return result, path
