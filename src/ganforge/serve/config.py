"""What a gan-serve process serves and how: one frozen policy, checked where it is built.

The batching policy (``max_batch``, ``max_queue_delay_ms``), every bound (queue, body, samples,
time) and the binding are declared here, read by the batcher and the routes, never decided in
them.
"""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass, field

from ganforge.errors import GanforgeError

TOKEN_ENV = "GAN_SERVE_TOKEN"
LOOPBACK = "127.0.0.1"


@dataclass(frozen=True, kw_only=True)
class ServeConfig:
    """gan-serve's options (see ``gan-serve --help`` for each)."""

    model: str
    host: str = LOOPBACK
    port: int = 8000
    token: str | None = None  # None: no token asked for
    max_batch: int = 256  # samples a batched run
    max_queue_delay_ms: float = 0.0  # 0: take what is queued, as Triton's dynamic batcher does
    max_queue: int = 4096  # samples waiting; more: 503 with Retry-After
    max_body: int = 16 << 20  # bytes of a request body; more: 413
    timeout_s: float = 30.0  # a request not answered by then: 504
    workers: int = 1  # sessions, one worker thread each
    cors_origins: tuple[str, ...] = ()
    device: str = "auto"
    provider: str | None = None
    precision: str = "fp32"
    generator_options: dict = field(default_factory=dict)  # the foreign-model options

    def __post_init__(self) -> None:
        for name, least in (("max_batch", 1), ("max_queue", 1), ("max_body", 1024), ("workers", 1)):
            value = getattr(self, name)
            if not isinstance(value, int) or value < least:
                raise GanforgeError(f"--{name.replace('_', '-')} must be a whole number >= {least}, got {value!r}")
        if self.max_queue < self.max_batch:
            raise GanforgeError(f"--max-queue ({self.max_queue} samples) must hold at least one full batch "
                                f"(--max-batch {self.max_batch})")
        if not 0 <= self.max_queue_delay_ms <= 10_000:
            raise GanforgeError(f"--max-queue-delay-ms must be 0 to 10000, got {self.max_queue_delay_ms}")
        if not 0 < self.timeout_s <= 3600:
            raise GanforgeError(f"--timeout must be above 0 and at most 3600 seconds, got {self.timeout_s}")
        if self.token is not None and len(self.token) < 8:
            raise GanforgeError("--token must be at least 8 characters (or unset for no token)")
        if not 0 <= self.port <= 65535:
            raise GanforgeError(f"--port must be 0 to 65535, got {self.port}")

    @property
    def loopback(self) -> bool:
        """Whether it binds the loopback interface alone."""
        if self.host == "localhost":
            return True
        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return False  # a host name: whatever it resolves to


def token_from_env(token: str | None) -> str | None:
    """``--token``, else ``$GAN_SERVE_TOKEN``, else None (an empty value counts as none)."""
    token = token if token is not None else os.environ.get(TOKEN_ENV)
    return token or None
