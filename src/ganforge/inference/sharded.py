"""A folder output as a sharded job: the :class:`~ganforge.inference.shards.ShardJob` of a
generation request (``gan-infer --out DIR/``) or of a folder's manifest (``--verify DIR``), and
running a request's job.

:mod:`ganforge.inference.shards` holds the job and its shards; this is how requests and folders
become jobs, so the request, the CLI and any other runner (Ray) build them the same way.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from ganforge.errors import GanforgeError
from ganforge.inference import keyed, manifest
from ganforge.inference.control import Control
from ganforge.inference.shards import ShardJob


def job_options(options: Mapping) -> dict:
    """:class:`~ganforge.inference.Generator`'s keyword arguments that make a job's samples (the
    device aside): those asked, on one runtime: ``auto`` (the default) becomes onnxruntime
    (OpenVINO for bf16), so that no shard's bytes depend on the runtime plan a machine measured,
    whichever machine makes it. Options left at None are dropped."""
    from ganforge.inference import runtimes

    options = {k: v for k, v in dict(options).items() if k != "device" and v is not None}
    precision = options.get("precision", "fp32")
    provider = runtimes.check_choice(options.get("provider"), precision)
    if provider == "auto":
        provider = runtimes.OPENVINO if precision == "bf16" else runtimes.ONNXRUNTIME
    options["provider"] = provider
    return {k: (tuple(v) if isinstance(v, list) else v) for k, v in options.items()}


def job_from_request(request, gen, model: str | os.PathLike[str], control=None) -> ShardJob:
    """The job of a folder :class:`~ganforge.inference.request.GenerationRequest`: samples
    ``request.start`` to ``request.start + request.n`` to ``request.out`` in shards of
    ``request.shard_format`` (png by default) and ``request.shard_size``, on the open ``gen`` of
    ``model`` (opened with :func:`job_options`); ``control``: its truncation and edits
    (:func:`~ganforge.inference.generation.control_of`)."""
    from ganforge.fsutil import file_sha256

    info = gen.info
    labels = None if request.labels is None else tuple(gen.parse_labels(request.labels))
    try:
        sha = file_sha256(model)
    except OSError as exc:
        raise GanforgeError(f"cannot read {model}: {exc.strerror or exc}") from None
    return ShardJob(model=os.fspath(model), model_sha256=sha, seed=request.seed, start=request.start,
                    stop=request.start + request.n, form=request.shard_format or "png", out=Path(request.out),
                    sample_shape=tuple(info.sample_shape), kind=info.kind, value_range=tuple(info.value_range),
                    shard_size=request.shard_size, labels=labels, conditional=info.conditional,
                    class_names=None if info.class_names is None else tuple(info.class_names),
                    options=job_options(request.generator_options()), device=request.device,
                    batch_size=request.batch_size, scale=request.scale, control=control)


def job_from_folder(folder: str | os.PathLike[str], model: str | os.PathLike[str] | None = None, *,
                    device: str = "auto") -> ShardJob:
    """The job a folder's manifest describes; its model ``model``, else the manifest's path."""
    folder = Path(folder)
    data = manifest.read(folder) if folder.is_dir() else None
    if data is None:
        raise GanforgeError(f"{folder} holds no {manifest.NAME}: it is not a sharded gan-infer job (--out DIR/ "
                            "writes one)")
    if data.get("scheme") != keyed.SCHEME:
        raise GanforgeError(f"{folder} was made with the sampling scheme {data.get('scheme')!r}; this ganforge "
                            f"makes {keyed.SCHEME!r}: use the ganforge that wrote it")
    try:
        sample, labels = data["sample"], data["labels"]
        start, stop = data["range"]
        job = ShardJob(model=os.fspath(model) if model is not None else data["model_path"],
                       model_sha256=data["model_sha256"], seed=data["seed"], start=start, stop=stop,
                       form=data["form"], out=folder, sample_shape=tuple(sample["shape"]), kind=sample["kind"],
                       value_range=tuple(sample["value_range"]), shard_size=data["shard_size"],
                       labels=labels.get("indices") if labels["mode"] == "given" else None,
                       conditional=labels["mode"] != "none", class_names=data.get("class_names"),
                       options=job_options(data.get("options") or {}), device=device,
                       scale=sample.get("png_scale", 1),
                       control=None if data.get("control") is None else Control.from_manifest(data["control"]))
    except (KeyError, TypeError, ValueError) as exc:
        raise GanforgeError(f"{folder / manifest.NAME} is not a complete shard manifest ({type(exc).__name__}: "
                            f"{str(exc)[:60]}): delete the folder and run the job again") from None
    refused = manifest.refusal(folder, data, job.manifest())
    if refused:  # a manifest edited by hand, or one this ganforge would not write
        raise GanforgeError(f"{folder / manifest.NAME} does not read back as the job it describes: {refused}")
    return job
