"""``GET /metrics`` in Prometheus' text format (0.0.4), without a client library: counters and
histograms kept under one lock, written out on demand.

Endpoints are labelled by their route (``/v2/models/{name}/infer``), never by the raw path, so a
stream of made-up paths cannot grow the label set.
"""

from __future__ import annotations

import bisect
import threading
from collections import defaultdict

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096)
PREFIX = "gan_serve"


class Histogram:
    def __init__(self, buckets):
        self.buckets = tuple(buckets)
        self.counts = [0] * (len(self.buckets) + 1)
        self.sum = 0.0
        self.count = 0

    def observe(self, value: float) -> None:
        self.counts[bisect.bisect_left(self.buckets, value)] += 1
        self.sum += value
        self.count += 1

    def lines(self, name: str, labels: str = "") -> list[str]:
        sep = "," if labels else ""
        out, total = [], 0
        for bound, count in zip((*self.buckets, "+Inf"), self.counts):
            total += count
            out.append(f'{name}_bucket{{{labels}{sep}le="{bound}"}} {total}')
        tail = f"{{{labels}}}" if labels else ""
        return [*out, f"{name}_sum{tail} {self.sum:.6f}", f"{name}_count{tail} {self.count}"]


def _escape(value: str) -> str:
    return str(value).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


class Metrics:
    """What /metrics reports; ``model`` labels the model_info gauge."""

    def __init__(self, model: dict[str, str] | None = None):
        self._lock = threading.Lock()
        self.model = model or {}
        self.requests: defaultdict[tuple[str, str, int], int] = defaultdict(int)
        self.latency: dict[str, Histogram] = {}
        self.wait = Histogram(LATENCY_BUCKETS)
        self.batches = Histogram(BATCH_BUCKETS)
        self.samples = 0

    def request(self, endpoint: str, method: str, code: int, seconds: float) -> None:
        with self._lock:
            self.requests[endpoint, method, code] += 1
            self.latency.setdefault(endpoint, Histogram(LATENCY_BUCKETS)).observe(seconds)

    def queue_wait(self, seconds: float) -> None:
        with self._lock:
            self.wait.observe(seconds)

    def batch(self, samples: int) -> None:
        with self._lock:
            self.batches.observe(samples)
            self.samples += samples

    def render(self, queue_samples: int, ready: bool) -> str:
        p = PREFIX
        with self._lock:
            lines = [f"# HELP {p}_requests_total Requests answered, by endpoint, method and status code.",
                     f"# TYPE {p}_requests_total counter"]
            lines += [f'{p}_requests_total{{endpoint="{e}",method="{m}",code="{c}"}} {n}'
                      for (e, m, c), n in sorted(self.requests.items())]
            lines += [f"# HELP {p}_errors_total Requests answered with a 4xx or 5xx, by endpoint and code.",
                      f"# TYPE {p}_errors_total counter"]
            lines += [f'{p}_errors_total{{endpoint="{e}",code="{c}"}} {n}'
                      for (e, c), n in sorted(self._errors().items())]
            lines += [f"# HELP {p}_request_seconds Time from request to response, by endpoint.",
                      f"# TYPE {p}_request_seconds histogram"]
            for endpoint, hist in sorted(self.latency.items()):
                lines += hist.lines(f"{p}_request_seconds", f'endpoint="{endpoint}"')
            lines += [f"# HELP {p}_queue_wait_seconds Time a job waited for a worker.",
                      f"# TYPE {p}_queue_wait_seconds histogram", *self.wait.lines(f"{p}_queue_wait_seconds"),
                      f"# HELP {p}_batch_samples Samples a run of the model.", f"# TYPE {p}_batch_samples histogram",
                      *self.batches.lines(f"{p}_batch_samples"),
                      f"# HELP {p}_samples_total Samples generated.", f"# TYPE {p}_samples_total counter",
                      f"{p}_samples_total {self.samples}"]
        labels = ",".join(f'{k}="{_escape(v)}"' for k, v in sorted(self.model.items()))
        lines += [f"# HELP {p}_queue_samples Samples waiting for a worker.", f"# TYPE {p}_queue_samples gauge",
                  f"{p}_queue_samples {queue_samples}",
                  f"# HELP {p}_ready Whether the server takes requests (warmed up, not draining).",
                  f"# TYPE {p}_ready gauge", f"{p}_ready {int(ready)}",
                  f"# HELP {p}_model_info The model served.", f"# TYPE {p}_model_info gauge",
                  f"{p}_model_info{{{labels}}} 1"]
        return "\n".join(lines) + "\n"

    def _errors(self) -> dict[tuple[str, int], int]:
        errors: defaultdict[tuple[str, int], int] = defaultdict(int)
        for (endpoint, _, code), n in self.requests.items():
            if code >= 400:
                errors[endpoint, code] += 1 * n
        return errors
