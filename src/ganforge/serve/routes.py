"""The routes: the Open Inference Protocol's (as Triton serves the export), the /v1 conveniences,
/metrics and the page."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from ganforge import __version__
from ganforge.serve import v1
from ganforge.serve.handlers import EXTENSIONS, State, infer, page, picture, route
from ganforge.serve.protocol import ProtocolError


def all_routes(state: State) -> list:
    return [*_v2(state), *_v1(state)]


def _v2(state: State) -> list:
    served = state.served

    async def live(request: Request) -> Response:
        return Response(status_code=200)

    async def ready(request: Request) -> Response:
        return Response(status_code=200 if state.ready else 503)

    async def server_metadata(request: Request) -> Response:
        return JSONResponse({"name": "gan-serve", "version": __version__, "extensions": EXTENSIONS})

    async def model_metadata(request: Request) -> Response:
        state.check_model(request)
        return JSONResponse(served.metadata())

    async def model_ready(request: Request) -> Response:
        state.check_model(request)
        return Response(status_code=200 if state.ready else 503)

    async def run_infer(request: Request) -> Response:
        return await infer(state, request)

    model = "/v2/models/{name}"
    version = model + "/versions/{version}"
    return [
        route(state, "/v2/health/live", live, auth=False),
        route(state, "/v2/health/ready", ready, auth=False),
        route(state, "/v2", server_metadata),
        route(state, model, model_metadata),
        route(state, version, model_metadata),
        route(state, model + "/ready", model_ready),
        route(state, version + "/ready", model_ready),
        route(state, model + "/infer", run_infer, methods=("POST",)),
        route(state, version + "/infer", run_infer, methods=("POST",)),
    ]


def _v1(state: State) -> list:
    served = state.served

    async def generate(request: Request) -> Response:
        form = request.path_params["form"]
        if form not in ("png", "npy"):
            raise ProtocolError(f"no /v1/generate.{form[:20]}: ask for generate.png or generate.npy", 404)
        return await picture(state, request, v1.generation(served, form, request.query_params))

    async def walk(request: Request) -> Response:
        form = request.path_params["form"]
        if form not in ("gif", "png", "npy"):
            raise ProtocolError(f"no /v1/walk.{form[:20]}: ask for walk.gif, walk.png or walk.npy", 404)
        return await picture(state, request, v1.walk(served, form, request.query_params))

    async def model_info(request: Request) -> Response:
        return JSONResponse({**served.describe(), "ready": state.ready, "warm_error": state.warm_error})

    async def metrics(request: Request) -> Response:
        return Response(state.metrics.render(state.batcher.queued, state.ready),
                        media_type="text/plain; version=0.0.4; charset=utf-8")

    async def index(request: Request) -> Response:
        return Response(page(), media_type="text/html; charset=utf-8",
                        headers={"Content-Security-Policy": "default-src 'self'; img-src 'self' blob:; "
                                 "style-src 'self' 'unsafe-inline'; script-src 'self' 'unsafe-inline'"})

    return [
        route(state, "/v1/generate.{form}", generate),
        route(state, "/v1/walk.{form}", walk),
        route(state, "/v1/model", model_info),
        route(state, "/metrics", metrics, auth=False),
        route(state, "/", index, auth=False),
    ]

