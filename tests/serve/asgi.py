"""Calling the ASGI app in-process, without a socket or an HTTP client library: for tests that
hold the model still (a gate) to see the queue fill and requests time out."""

from __future__ import annotations

import asyncio
import threading
from urllib.parse import urlsplit


async def call(app, method: str, url: str, body: bytes = b"", headers: dict | None = None):
    """(status, headers, body) of one request to ``app``."""
    parts = urlsplit(url)
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method,
             "scheme": "http", "path": parts.path, "raw_path": parts.path.encode(), "root_path": "",
             "query_string": parts.query.encode(), "server": ("127.0.0.1", 80), "client": ("127.0.0.1", 5000),
             "headers": [(k.lower().encode(), v.encode()) for k, v in {"host": "127.0.0.1",
                                                                       "content-length": str(len(body)),
                                                                       **(headers or {})}.items()]}
    sent = False
    status, out_headers, chunks = None, {}, []

    async def receive():
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        await asyncio.sleep(3600)

    async def send(message):
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]
            out_headers.update({k.decode(): v.decode() for k, v in message.get("headers", [])})
        elif message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))

    await app(scope, receive, send)
    return status, out_headers, b"".join(chunks)


class Gate:
    """A generator whose runs wait until the gate opens (``begun`` counts the runs begun)."""

    def __init__(self, gen):
        self.gen, self.event, self.begun = gen, threading.Event(), 0
        self.event.set()

    def __getattr__(self, name):
        return getattr(self.gen, name)

    def __call__(self, *args, **kwargs):
        self.begun += 1
        if not self.event.wait(30):
            raise RuntimeError("the gate stayed shut")
        return self.gen(*args, **kwargs)
