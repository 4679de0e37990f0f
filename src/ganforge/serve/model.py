"""The model gan-serve serves, fixed at start: its sessions (one a worker), its identity (the
Triton export's name and tensors, the file's sha256) and the checks a request meets before it
is queued.

Thin around the library's :class:`~ganforge.inference.Generator`, as a LitServe LitAPI is
around its model: ``setup`` (open, warm up), ``decode_request`` (:meth:`ServedModel.tensors`),
``predict`` (the batcher's run) and ``encode_response`` (:mod:`ganforge.serve.protocol`).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from ganforge import __version__
from ganforge.errors import GanforgeError
from ganforge.fsutil import file_sha256
from ganforge.inference import Generator
from ganforge.inference.control import MAX_TRUNCATION
from ganforge.inference.metadata import INPUT_NAME, LABELS_NAME, OUTPUT_NAME
from ganforge.limits import check_memory
from ganforge.serve.config import ServeConfig
from ganforge.serve.controls import Controls
from ganforge.serve.protocol import ProtocolError, TensorSpec

VERSION = "1"  # the Triton export's one version folder
PLATFORM = "onnxruntime_onnx"
# bytes a sample value costs while answered: float32 out, and its JSON text (a Python float and list slot each)
BINARY_VALUE_BYTES = 8
JSON_VALUE_BYTES = 64


def model_name(precision: str) -> str:
    """The Triton export's model name (``ganforge.export.triton``): ``generator``, ``generator_int8``."""
    return "generator" if precision == "fp32" else f"generator_{precision}"


class ServedModel:
    """``config.workers`` sessions of ``config.model``, opened (and checked) at once. They compute side
    by side, so they split the cores: each gets its share of them (``max(1, cores // workers)``, fewer
    on a busy machine, one for a tiny model), or ``--threads N`` / ``GANFORGE_THREADS`` each."""

    def __init__(self, config: ServeConfig):
        options = dict(device=config.device, provider=config.provider, precision=config.precision,
                       sessions=config.workers, **config.generator_options)
        self.generators = [Generator(config.model, **options) for _ in range(config.workers)]
        gen = self.generators[0]
        self.threads = gen.threads  # each session's (they are chosen alike)
        self.config, self.info, self.path = config, gen.info, gen.path
        self.name = model_name(config.precision)
        self.sha256 = file_sha256(gen.path)
        self.conditional = gen.info.conditional
        self.inputs = [TensorSpec(INPUT_NAME, "FP32", ((gen.info.latent_dim,),))]
        if self.conditional:  # Triton declares labels dims [1] reshaped to []: clients send [batch, 1]
            self.inputs.append(TensorSpec(LABELS_NAME, "INT64", ((1,), ())))
        self.controls = Controls(gen)  # the directions.json beside the model, read once

    @property
    def generator(self) -> Generator:
        return self.generators[0]

    def warm_up(self) -> None:
        """Run each session once at one sample and at a full batch, so the first request does not pay
        for the runtime's first runs."""
        for gen in self.generators:
            for n in sorted({1, self.config.max_batch}):
                z = gen.sample_noise(n, 0)
                gen(z, np.zeros(n, np.int64) if self.conditional else None, small_job=True)

    # --- what a request meets before it is queued ------------------------------------------------

    def check_samples(self, n: int, request: dict | None = None, *, binary: bool = True) -> None:
        """A request of ``n`` samples: within the queue and the memory budget (gan-infer's)."""
        if n > self.config.max_queue:
            raise ProtocolError(f"a request of {n} samples is more than the queue holds ({self.config.max_queue}); "
                                "split it into smaller requests (or start gan-serve with a larger --max-queue)")
        per_value = BINARY_VALUE_BYTES if binary else JSON_VALUE_BYTES
        values = math.prod(self.info.sample_shape) + self.info.latent_dim
        try:
            check_memory(f"a request of {n} samples of shape {list(self.info.sample_shape)}", n * values * per_value,
                         "ask for fewer samples a request (binary tensors cost less than JSON)")
        except GanforgeError as exc:
            raise ProtocolError(str(exc)) from None

    def tensors(self, arrays: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray | None]:
        """The noise and labels of a decoded request, labels checked against the classes."""
        z = np.ascontiguousarray(arrays[INPUT_NAME], dtype=np.float32)
        if not self.conditional:
            return z, None
        labels = np.ascontiguousarray(arrays[LABELS_NAME], dtype=np.int64).reshape(len(z))
        bad = labels[(labels < 0) | (labels >= self.info.num_classes)]
        if bad.size:
            raise ProtocolError(f"label {bad[0]} is out of range: this model has {self.info.num_classes} classes, "
                                f"labels 0 to {self.info.num_classes - 1}")
        return z, labels

    # --- what it says of itself ---------------------------------------------------------------------

    def metadata(self) -> dict:
        """``GET /v2/models/{name}``, as Triton gives it for the export."""
        inputs = [{"name": INPUT_NAME, "datatype": "FP32", "shape": [-1, self.info.latent_dim]}]
        if self.conditional:
            inputs.append({"name": LABELS_NAME, "datatype": "INT64", "shape": [-1, 1]})
        return {"name": self.name, "versions": [VERSION], "platform": PLATFORM, "inputs": inputs,
                "outputs": [{"name": OUTPUT_NAME, "datatype": "FP32", "shape": [-1, *self.info.sample_shape]}]}

    def describe(self) -> dict:
        """What the page and ``GET /v1/model`` show: kind, shapes, classes, identity, and the named
        directions a request's edits may use (``directions_missing`` says how to make them when none)."""
        return {"name": self.name, "sha256": self.sha256, "kind": self.info.kind, "variant": self.info.variant,
                "latent_dim": self.info.latent_dim, "sample_shape": list(self.info.sample_shape),
                "class_names": list(self.info.class_names or []), "conditional": self.conditional,
                "max_batch": self.config.max_batch, "runtime": self.generator.runtime_text(),
                "sessions": len(self.generators), "threads_per_session": {
                    "intra_op": self.threads.intra, "inter_op": self.threads.inter, "reason": self.threads.reason},
                "ganforge": __version__, "directions": self.controls.describe(),
                "directions_missing": self.controls.missing, "max_truncation": MAX_TRUNCATION}

    def sessions_text(self) -> str:
        """The startup log's line on the sessions: how many, and the threads each computes on."""
        n = len(self.generators)
        return f"{n} session{'s' if n != 1 else ''} of the model, each on {self.threads}"
