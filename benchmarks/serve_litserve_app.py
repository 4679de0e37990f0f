"""The LitServe server a user would write for gan-serve's job, for benchmarks/serve_load.py:
``n`` samples from a seed, float32 bytes back, on the same ONNX file through the same
:class:`ganforge.inference.Generator`, with LitServe's own batching on.

    python benchmarks/serve_litserve_app.py MODEL.onnx PORT [MAX_BATCH_REQUESTS] [BATCH_TIMEOUT_S]

Requests: ``POST /predict`` ``{"n": 16, "seed": 3}``; health: ``GET /health``.
"""

from __future__ import annotations

import sys

import litserve as ls
import numpy as np
from fastapi import Response

from ganforge.inference import Generator


class GeneratorAPI(ls.LitAPI):
    def __init__(self, model: str, **kwargs):
        super().__init__(**kwargs)
        self.model = model

    def setup(self, device):
        self.gen = Generator(self.model, device="cpu")

    def decode_request(self, request):
        return int(request["n"]), int(request["seed"])

    def batch(self, inputs):
        return inputs

    def predict(self, batch):
        z = np.concatenate([self.gen.sample_noise(n, seed) for n, seed in batch])
        x = self.gen(z, small_job=True)
        out, start = [], 0
        for n, _ in batch:
            out.append(x[start : start + n])
            start += n
        return out

    def unbatch(self, output):
        return output

    def encode_response(self, output):
        return Response(content=np.ascontiguousarray(output, np.float32).tobytes(),
                        media_type="application/octet-stream")


if __name__ == "__main__":
    model, port = sys.argv[1], int(sys.argv[2])
    max_batch = int(sys.argv[3]) if len(sys.argv) > 3 else 64
    timeout = float(sys.argv[4]) if len(sys.argv) > 4 else 0.002
    api = GeneratorAPI(model, max_batch_size=max_batch, batch_timeout=timeout)
    server = ls.LitServer(api, accelerator="cpu", workers_per_device=1, timeout=30)
    server.run(host="127.0.0.1", port=port, num_api_servers=1, generate_client_file=False, log_level="warning")
