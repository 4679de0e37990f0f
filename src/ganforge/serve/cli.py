"""``gan-serve``: one exported generator behind HTTP (see :mod:`ganforge.serve`)."""

from __future__ import annotations

import re
import sys
import warnings

import click

from ganforge.cli import CONTEXT_SETTINGS, LATEST_MODEL, version_option
from ganforge.errors import GanforgeWarning, cli_errors, short_warnings
from ganforge.inference.options import foreign_options, runtime_options
from ganforge.serve.config import LOOPBACK, TOKEN_ENV, ServeConfig, token_from_env
from ganforge.threads import threads_option

_SIZE = re.compile(r"\s*(\d+)\s*([kmg]?)i?b?\s*", re.IGNORECASE)


def _size(ctx, param, value):
    if value is None or isinstance(value, int):
        return value
    match = _SIZE.fullmatch(value)
    if not match:
        raise click.BadParameter(f"expected a byte count such as 16M, 512K or 1048576; got {value!r}")
    return int(match[1]) << {"": 0, "k": 10, "m": 20, "g": 30}[match[2].lower()]


@click.command(context_settings=CONTEXT_SETTINGS)
@version_option("gan-serve")
@click.option("--model", type=click.Path(), show_default=LATEST_MODEL,
              help="Exported ONNX generator. Fixed at start: no request names a file.")
@click.option("--host", default=LOOPBACK,
              help="Interface to bind; beyond loopback, set a --token.")
@click.option("--port", type=click.IntRange(0, 65535), default=8000, help="0: any free port.")
@click.option("--token", help=f"Require 'Authorization: Bearer TOKEN' (also ${TOKEN_ENV}); health probes, "
              "/metrics and the page stay open.")
@click.option("--max-batch", type=click.IntRange(min=1), default=256,
              help="Samples a batched run of the model.")
@click.option("--max-queue-delay-ms", type=click.FloatRange(0, 10_000), default=0.0,
              help="How long a batch waits for more requests; 0: take what is queued.")
@click.option("--max-queue", type=click.IntRange(min=1), default=4096,
              help="Samples waiting at most; more: 503 with Retry-After.")
@click.option("--max-body", callback=_size, default="16M",
              help="Largest request body; more: 413.")
@click.option("--timeout", "timeout_s", type=click.FloatRange(0, 3600, min_open=True), default=30.0,
              help="Seconds a request may wait for its answer; then 504.")
@click.option("--workers", type=click.IntRange(min=1), default=1,
              help="Sessions of the model, one worker thread each (for many cores).")
@click.option("--cors-origin", "cors_origins", multiple=True, metavar="ORIGIN",
              show_default="none: no CORS",
              help="Allow this browser origin (repeat for several).")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto",
              help="Where onnxruntime runs.")
@runtime_options
@foreign_options
@click.option("--log-level", type=click.Choice(["error", "warning", "info", "debug"]), default="warning",
              help="uvicorn's log level (info logs each request).")
@threads_option
def main(model, host, port, token, max_batch, max_queue_delay_ms, max_queue, max_body, timeout_s, workers,
         cors_origins, device, runtime, foreign, log_level):
    """Serve an exported generator over HTTP: the Open Inference Protocol (KServe v2, as Triton), the
    /v1 endpoints (gan-infer's bytes), /metrics and a page at /."""
    short_warnings()
    try:
        import uvicorn  # noqa: F401
        import starlette  # noqa: F401
    except ImportError as exc:
        raise click.ClickException(f"gan-serve needs the 'serve' extra ({exc.name} is missing): "
                                   "pip install 'ganforge[serve]'") from None
    with cli_errors():
        from ganforge.inference.generation import default_model
        from ganforge.limits import memory_budget

        memory_budget()  # a bad GANFORGE_MAX_MEMORY: one line now, not on every request
        config = ServeConfig(model=str(model or default_model()), host=host, port=port,
                             token=token_from_env(token), max_batch=max_batch, max_queue_delay_ms=max_queue_delay_ms,
                             max_queue=max_queue, max_body=max_body, timeout_s=timeout_s, workers=workers,
                             cors_origins=tuple(cors_origins), device=device, generator_options=foreign, **runtime)
        from ganforge.serve.model import ServedModel

        served = ServedModel(config)
    if not config.loopback and config.token is None:
        warnings.warn(GanforgeWarning(f"binding {host} beyond loopback without a token: anyone who can reach it "
                                      f"can use it; set --token or {TOKEN_ENV}"), stacklevel=1)
    _serve(served, log_level)


def _serve(served, log_level: str) -> None:
    import uvicorn

    from ganforge.serve.app import make_app
    from ganforge.serve.handlers import State

    state = State(served)
    config = served.config
    uv = uvicorn.Config(make_app(state), host=config.host, port=config.port, log_level=log_level,
                        access_log=log_level in ("info", "debug"), timeout_graceful_shutdown=int(config.timeout_s) + 5,
                        server_header=False, lifespan="on")
    server = _Server(uv, state)
    server.run()
    sys.exit(0 if server.started else 1)


def _server_class():
    import uvicorn

    class Server(uvicorn.Server):
        """uvicorn's server, which also says not-ready the moment SIGTERM/SIGINT comes, and where it listens."""

        def __init__(self, config, state):
            super().__init__(config)
            self.state = state

        def handle_exit(self, sig, frame) -> None:
            self.state.draining = True
            super().handle_exit(sig, frame)
            # uvicorn re-raises the signal once drained (exit -15); a drained gan-serve exits 0
            getattr(self, "_captured_signals", []).clear()

        async def startup(self, sockets=None) -> None:
            await super().startup(sockets)
            if self.should_exit:
                return
            served = self.state.served
            print(f"gan-serve: {served.sessions_text()}", flush=True)
            for listener in self.servers:
                for sock in listener.sockets:
                    host, port = sock.getsockname()[:2]
                    print(f"gan-serve: {served.name} ({served.info.kind} {list(served.info.sample_shape)}, sha256 "
                          f"{served.sha256[:12]}) on http://{host}:{port}/  (POST /v2/models/{served.name}/infer, "
                          "GET /v1/generate.png, /metrics)", flush=True)

    return Server


def _Server(config, state):
    return _server_class()(config, state)


if __name__ == "__main__":
    main()
