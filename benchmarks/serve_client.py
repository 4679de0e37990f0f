"""The load client of benchmarks/serve_load.py: C concurrent clients, each sending requests of n
samples back to back on its own keep-alive connection, for a bounded time and count.

    python benchmarks/serve_client.py {gan-serve|litserve} URL N CLIENTS SECONDS LATENT VALUES

Prints one JSON line: requests, samples/s, p50 and p99 latency (ms), errors.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time

import aiohttp
import numpy as np

MAX_REQUESTS = 200_000


def gan_serve_payloads(n: int, latent: int, count: int = 32) -> list[tuple[bytes, dict]]:
    """v2 infer bodies, binary: the noise of ``count`` seeds, as a tritonclient user sends it."""
    out = []
    for seed in range(count):
        z = np.random.default_rng(seed).standard_normal((n, latent), dtype=np.float32)
        header = json.dumps({"inputs": [{"name": "z", "shape": [n, latent], "datatype": "FP32",
                                         "parameters": {"binary_data_size": z.nbytes}}],
                             "outputs": [{"name": "x", "parameters": {"binary_data": True}}]}).encode()
        out.append((header + z.tobytes(), {"Inference-Header-Content-Length": str(len(header)),
                                           "Content-Type": "application/octet-stream"}))
    return out


def litserve_payloads(n: int, count: int = 32) -> list[tuple[bytes, dict]]:
    return [(json.dumps({"n": n, "seed": seed}).encode(), {"Content-Type": "application/json"})
            for seed in range(count)]


async def client(session, url, payloads, want: int, stop: float, latencies: list, errors: list):
    i = 0
    while time.perf_counter() < stop and len(latencies) < MAX_REQUESTS:
        body, headers = payloads[i % len(payloads)]
        i += 1
        start = time.perf_counter()
        try:
            async with session.post(url, data=body, headers=headers) as response:
                data = await response.read()
                if response.status != 200 or len(data) < want:
                    errors.append(response.status)
                    continue
        except aiohttp.ClientError as exc:
            errors.append(type(exc).__name__)
            continue
        latencies.append(time.perf_counter() - start)


async def main(kind, url, n, clients, seconds, latent, values):
    payloads = gan_serve_payloads(n, latent) if kind == "gan-serve" else litserve_payloads(n)
    want = n * values * 4
    latencies, errors = [], []
    connector = aiohttp.TCPConnector(limit=clients)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=60)) as session:
        start = time.perf_counter()
        stop = start + seconds
        await asyncio.gather(*(client(session, url, payloads, want, stop, latencies, errors) for _ in range(clients)))
        wall = time.perf_counter() - start
    lat = np.asarray(latencies) * 1000
    print(json.dumps({"requests": len(latencies), "samples_per_s": len(latencies) * n / wall,
                      "p50_ms": float(np.percentile(lat, 50)) if len(lat) else None,
                      "p99_ms": float(np.percentile(lat, 99)) if len(lat) else None,
                      "errors": len(errors), "error_kinds": sorted({str(e) for e in errors})[:5]}))


if __name__ == "__main__":
    kind, url = sys.argv[1], sys.argv[2]
    n, clients, seconds, latent, values = int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5]), int(sys.argv[6]), \
        int(sys.argv[7])
    asyncio.run(main(kind, url, n, clients, seconds, latent, values))
