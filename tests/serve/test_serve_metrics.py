"""/metrics: Prometheus text with requests and errors by endpoint and code, latency, queue,
batch sizes, samples and the model; labelled by route, never by the raw path."""

from __future__ import annotations

import hashlib
import re

from tests.serve.conftest import COND, serving


def test_metrics_report_the_traffic():
    with serving(COND) as server:
        assert server.get("/v1/generate.png?n=5&seed=1")[0] == 200
        assert server.get("/v1/generate.png?n=0")[0] == 400
        for i in range(3):
            assert server.get(f"/made/up/path/{i}")[0] == 404
        status, headers, body = server.get("/metrics")
    text = body.decode()
    assert status == 200 and headers["content-type"].startswith("text/plain; version=0.0.4")
    assert 'gan_serve_requests_total{endpoint="/v1/generate.{form}",method="GET",code="200"} 1' in text
    assert 'gan_serve_errors_total{endpoint="/v1/generate.{form}",code="400"} 1' in text
    assert 'gan_serve_requests_total{endpoint="other",method="GET",code="404"} 3' in text
    assert "made/up" not in text
    assert re.search(r'gan_serve_request_seconds_bucket\{endpoint="/v1/generate.\{form\}",le="\+Inf"\} 2', text)
    assert "gan_serve_samples_total " in text and "gan_serve_queue_samples 0" in text
    assert re.search(r"gan_serve_batch_samples_count [1-9]", text)  # the warm-up is not counted; the 5 are
    assert "gan_serve_queue_wait_seconds_count" in text and "gan_serve_ready 1" in text
    sha = hashlib.sha256(COND.read_bytes()).hexdigest()
    assert f'gan_serve_model_info{{ganforge="0.1.0",kind="image",name="generator",sha256="{sha}"' in text
    for line in text.splitlines():  # the exposition format: comments, or NAME{labels} VALUE
        assert line.startswith("# ") or re.fullmatch(r'[a-z_]+(\{(\w+="[^"]*",?)*\})? [0-9.e+-]+', line), line
