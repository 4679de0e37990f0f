"""What the routes share: the server's state, the route wrapper (token, errors, metrics), the
body reader, and the two handlers that queue work (v2 infer, a /v1 picture).

Every error is a 4xx/5xx with ``{"error": "one line: the problem and the fix"}``. A token, when
set, is asked of everything but the health probes, /metrics and the page itself.
"""

from __future__ import annotations

import hmac
import logging
import threading
import time
from importlib import resources

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ganforge import __version__
from ganforge.errors import GanforgeError, first_line
from ganforge.inference.metadata import OUTPUT_NAME
from ganforge.serve import controls, protocol, v1
from ganforge.serve.batcher import Batcher, Job, QueueFull, RunFailed, TimedOut
from ganforge.serve.metrics import Metrics
from ganforge.serve.model import VERSION, ServedModel

log = logging.getLogger("gan-serve")
EXTENSIONS = ["binary_tensor_data"]


class Unauthorized(GanforgeError):
    pass


class State:
    """The server's parts and its two flags: ``ready`` (warmed up) and ``draining`` (SIGTERM seen)."""

    def __init__(self, served: ServedModel):
        self.served, self.config = served, served.config
        self.metrics = Metrics({"name": served.name, "sha256": served.sha256, "kind": served.info.kind,
                                "variant": str(served.info.variant), "ganforge": __version__})
        self.batcher = Batcher(served.generators, max_batch=self.config.max_batch, max_queue=self.config.max_queue,
                               max_queue_delay_ms=self.config.max_queue_delay_ms, metrics=self.metrics)
        self.warm = False
        self.draining = False
        self.warm_error: str | None = None
        self._expected = None if self.config.token is None else f"Bearer {self.config.token}".encode()

    @property
    def ready(self) -> bool:
        return self.warm and not self.draining

    def start(self) -> None:
        """Warm the sessions up in the background, then start the workers and say ready."""
        def warm() -> None:
            try:
                self.served.warm_up()
            except Exception as exc:  # noqa: BLE001 - the server stays up, not ready, and says why
                self.warm_error = first_line(exc, typed=True)
                log.error("warm-up failed: %s", self.warm_error)
                return
            self.batcher.start()
            self.warm = True

        threading.Thread(target=warm, name="gan-serve-warm-up", daemon=True).start()

    def authorize(self, request: Request) -> None:
        if self._expected is None:
            return
        given = request.headers.get("authorization", "").encode()
        if not hmac.compare_digest(given, self._expected):
            raise Unauthorized("this server needs a token: send the header 'Authorization: Bearer TOKEN' (the "
                               "--token or GAN_SERVE_TOKEN it was started with)")

    def check_model(self, request: Request) -> None:
        name, version = request.path_params["name"], request.path_params.get("version")
        if name != self.served.name:
            raise protocol.ProtocolError(f"unknown model {name[:60]!r}; this server serves {self.served.name!r}", 404)
        if version not in (None, "", VERSION):
            raise protocol.ProtocolError(f"unknown version {version[:20]!r} of {name!r}; it has version {VERSION}",
                                         404)


def error(status: int, message: str, headers: dict | None = None) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=headers)


def _status(exc: Exception) -> tuple[int, dict | None]:
    if isinstance(exc, Unauthorized):
        return 401, {"WWW-Authenticate": "Bearer"}
    if isinstance(exc, QueueFull):
        return 503, {"Retry-After": "1"}
    if isinstance(exc, TimedOut):
        return 504, None
    if isinstance(exc, RunFailed):
        return 500, None
    if isinstance(exc, protocol.ProtocolError):
        return exc.status, {"Retry-After": "1"} if exc.status == 503 else None
    return 400, None  # a GanforgeError of a request's making: gan-infer's own checks


def route(state: State, path: str, handler, methods=("GET",), *, auth: bool = True) -> Route:
    """``handler(request)`` behind the token check, error answers and metrics."""
    async def endpoint(request: Request) -> Response:
        start = time.perf_counter()
        try:
            if auth:
                state.authorize(request)
            response = await handler(request)
        except GanforgeError as exc:
            status, headers = _status(exc)
            response = error(status, str(exc), headers)
        except Exception as exc:  # noqa: BLE001 - a broken request never takes the server down
            log.exception("internal error on %s", path)
            response = error(500, f"internal error ({first_line(exc, typed=True)}); the server logged it")
        state.metrics.request(path, request.method, response.status_code, time.perf_counter() - start)
        return response

    return Route(path, endpoint, methods=list(methods))


async def read_body(request: Request, limit: int) -> bytes:
    """The body, refused (413) over ``limit`` bytes before it is read whole."""
    if request.headers.get("content-encoding", "identity").lower() != "identity":
        raise protocol.ProtocolError("compressed request bodies are not taken: send it uncompressed", 415)
    declared = request.headers.get("content-length")
    too_big = protocol.ProtocolError(f"the request body is over the {limit} byte limit: send fewer samples a "
                                     "request, binary tensors rather than JSON, or start gan-serve with a larger "
                                     "--max-body", 413)
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise too_big
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise too_big
        chunks.append(chunk)
    return b"".join(chunks)


def page() -> bytes:
    return resources.files("ganforge.serve").joinpath("static/index.html").read_bytes()


def infer_response(state: State, request_json: dict, x, binary: bool) -> Response:
    head = {"model_name": state.served.name, "model_version": VERSION}
    if isinstance(request_json.get("id"), str):
        head["id"] = request_json["id"]
    body, headers = protocol.encode_response(head, OUTPUT_NAME, x, binary)
    return Response(body, headers=headers)


async def infer(state: State, request: Request) -> Response:
    """``POST /v2/models/{name}[/versions/{v}]/infer``."""
    state.check_model(request)
    if not state.ready:
        raise protocol.ProtocolError("the model is not ready (warming up, or the server is draining); retry", 503)
    served = state.served
    body = await read_body(request, state.config.max_body)
    request_json, binary = protocol.split_body(body, request.headers.get(protocol.HEADER_LENGTH.lower()))
    want_binary = protocol.binary_output(request_json, OUTPUT_NAME)
    arrays = protocol.decode_inputs(request_json, binary, served.inputs,
                                    lambda n, _: served.check_samples(n, binary=want_binary))
    z, labels = served.tensors(arrays)
    control, seed, start = controls.from_parameters(served.controls, request_json.get("parameters"))
    x = await state.batcher.run(Job(len(z), z=z, labels=labels, control=control, seed=seed, start=start),
                                state.config.timeout_s)
    return infer_response(state, request_json, x, want_binary)


async def picture(state: State, request: Request, work: v1.Work) -> Response:
    """A /v1 response: the bytes, named by seed, model and ETag (304 when the client has them)."""
    headers = {"ETag": work.etag, "X-Seed": str(work.seed), "X-Model-Sha256": state.served.sha256,
               "Cache-Control": "no-cache"}
    if request.headers.get("if-none-match") == work.etag:
        return Response(status_code=304, headers=headers)
    if not state.ready:
        raise protocol.ProtocolError("the model is not ready (warming up, or the server is draining); retry", 503)
    data = await state.batcher.run(Job(work.n, solo=work.run), state.config.timeout_s)
    return Response(data, media_type=work.media_type, headers=headers)
