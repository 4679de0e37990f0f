"""The HTTP face: plain async routes (:mod:`.routes`) around one :class:`~ganforge.serve.model.ServedModel`
and its :class:`~ganforge.serve.batcher.Batcher`; starlette, served by uvicorn (:mod:`ganforge.serve.cli`).
"""

from __future__ import annotations

import contextlib

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response

from ganforge.serve import protocol
from ganforge.serve.handlers import State, error
from ganforge.serve.routes import all_routes


def make_app(state: State) -> Starlette:
    middleware = []
    if state.config.cors_origins:
        from starlette.middleware.cors import CORSMiddleware

        middleware.append(Middleware(CORSMiddleware, allow_origins=list(state.config.cors_origins),
                                     allow_methods=["GET", "POST"],
                                     allow_headers=["Authorization", "Content-Type", protocol.HEADER_LENGTH],
                                     expose_headers=["ETag", "X-Seed", "X-Model-Sha256", protocol.HEADER_LENGTH]))

    async def not_found(request: Request, exc: HTTPException) -> Response:
        state.metrics.request("other", request.method, exc.status_code, 0.0)
        fix = "see GET /v2 and docs/serving.md" if exc.status_code == 404 else f"{request.method} is not taken here"
        return error(exc.status_code, f"{exc.detail}: {request.url.path[:80]} ({fix})")

    return Starlette(routes=all_routes(state), middleware=middleware,
                     exception_handlers={HTTPException: not_found}, lifespan=_lifespan(state))


def _lifespan(state: State):
    @contextlib.asynccontextmanager
    async def lifespan(app):
        state.start()
        try:
            yield
        finally:
            state.draining = True
            state.batcher.stop(state.config.timeout_s)

    return lifespan
