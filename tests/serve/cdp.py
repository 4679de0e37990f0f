"""Driving the page in headless Chromium through the DevTools protocol, for what --dump-dom cannot
do (moving a slider, then reading the page again): a minimal WebSocket client of the standard
library's socket (no package needed), one method, :meth:`Page.evaluate`."""

from __future__ import annotations

import base64
import contextlib
import json
import os
import re
import signal
import socket
import struct
import subprocess
import time
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit

LISTENING = re.compile(r"DevTools listening on (ws://\S+)")


class Page:
    """One page's DevTools connection."""

    def __init__(self, ws_url: str, timeout: float = 30):
        parts = urlsplit(ws_url)
        self.sock = socket.create_connection((parts.hostname, parts.port), timeout=timeout)
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall((f"GET {parts.path} HTTP/1.1\r\nHost: {parts.netloc}\r\nUpgrade: websocket\r\n"
                           f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n")
                          .encode())
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = self.sock.recv(4096)
            assert chunk, "DevTools closed the connection during the handshake"
            head += chunk
        assert head.startswith(b"HTTP/1.1 101"), head[:200]
        self.buffer = head.split(b"\r\n\r\n", 1)[1]
        self.next_id = 0

    def _read(self, n: int) -> bytes:
        while len(self.buffer) < n:
            chunk = self.sock.recv(65536)
            assert chunk, "DevTools closed the connection"
            self.buffer += chunk
        out, self.buffer = self.buffer[:n], self.buffer[n:]
        return out

    def _message(self) -> dict:
        data = b""
        while True:  # frames until one with FIN (the browser's are unmasked)
            first, second = self._read(2)
            size = second & 0x7F
            if size == 126:
                size = struct.unpack(">H", self._read(2))[0]
            elif size == 127:
                size = struct.unpack(">Q", self._read(8))[0]
            data += self._read(size)
            if first & 0x80:
                return json.loads(data)

    def _send(self, message: dict) -> None:
        payload = json.dumps(message).encode()
        mask = os.urandom(4)
        size = len(payload)
        head = bytes([0x81]) + (bytes([0x80 | size]) if size < 126 else bytes([0x80 | 126]) + struct.pack(">H", size))
        self.sock.sendall(head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload)))

    def evaluate(self, expression: str):
        """The value of ``expression`` (a promise is awaited) in the page."""
        self.next_id += 1
        self._send({"id": self.next_id, "method": "Runtime.evaluate",
                    "params": {"expression": expression, "awaitPromise": True, "returnByValue": True}})
        for _ in range(10_000):  # events may come first: bounded
            message = self._message()
            if message.get("id") == self.next_id:
                result = message["result"]
                assert "exceptionDetails" not in result, result["exceptionDetails"]
                return result["result"].get("value")
        raise AssertionError("no answer from DevTools")

    def wait_for(self, expression: str, timeout: float = 30):
        """Poll ``expression`` until it is truthy; its value."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = self.evaluate(expression)
            if value:
                return value
            time.sleep(0.05)
        raise AssertionError(f"the page never had {expression}")


@contextlib.contextmanager
def browsing(exe: str, url: str, profile: Path):
    """Chromium on ``url`` (loaded) with DevTools on a free port of 127.0.0.1, in a session of its own
    that is ended whatever happens. Its log goes to a file in ``profile`` (a pipe would stall it, or
    outlive it in its children), read for where DevTools listens."""
    profile.mkdir(parents=True, exist_ok=True)
    log = profile / "chromium.log"
    with open(log, "w") as sink:
        proc = subprocess.Popen([exe, "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                                 "--remote-debugging-address=127.0.0.1", "--remote-debugging-port=0",
                                 f"--user-data-dir={profile / 'data'}", "--window-size=900,900", url],
                                stdout=subprocess.DEVNULL, stderr=sink, start_new_session=True)
    page = None
    try:
        ws = None
        deadline = time.monotonic() + 60
        while ws is None and time.monotonic() < deadline:
            match = LISTENING.search(log.read_text(errors="replace"))
            ws = match and match[1]
            if ws is None:
                assert proc.poll() is None, f"Chromium exited {proc.returncode}: {log.read_text()[-2000:]}"
                time.sleep(0.05)
        assert ws, "Chromium did not say where DevTools listens within 60 s"
        port = urlsplit(ws).port
        targets = []
        for _ in range(200):  # bounded: the page's target appears soon after start
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10) as answer:
                targets = [t for t in json.load(answer) if t.get("type") == "page"]
            if targets:
                break
            time.sleep(0.05)
        assert targets, "Chromium has no page"
        page = Page(targets[0]["webSocketDebuggerUrl"])
        page.wait_for(f'location.href === {json.dumps(url)} && document.readyState === "complete"')
        yield page
    finally:
        if page is not None:
            page.sock.close()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)  # the browser and its helpers: the session it leads
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
