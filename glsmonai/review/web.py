"""The web side of ``glsmonai review``: :class:`~glsmonai.review.app.Review` behind a FastAPI app, run by uvicorn.

Routes: the viewer at ``/`` (and its two files under ``/static/``), and JSON under ``/api``::

    GET  /api/scans                       the scans worst first, their states, the progress
    GET  /api/scans/{name}                a scan's state: keypoints, windows, contour, decision
    GET  /api/scans/{name}/image.png      the scan, full size
    GET  /api/scans/{name}/measures       glsmonai measure's measures of it as it is now
    POST /api/scans/{name}/keypoints      {"k": int, "row": number, "col": number}: move a keypoint
    POST /api/scans/{name}/undo           undo the last move
    POST /api/scans/{name}/accept         accept it as it is now (review.csv; corrected/ when changed)

Every request that cannot be served gets a 4xx answer ``{"error": "..."}`` and changes nothing: an unknown scan
or a path outside the folder (404), a keypoint off the scan or not the model's (422), a malformed body (422). An
error inside is a 500 with its message, and the server goes on.

This module imports FastAPI; the rest of :mod:`glsmonai.review` does not.
"""

from __future__ import annotations

import json
import logging
import math
import socket

import uvicorn
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from glsmonai.review.app import STATIC_FILES, Review, UnknownScan, static_file

logger = logging.getLogger(__name__)

__all__ = ["create_app", "parse_move", "serve"]


def parse_move(body: bytes) -> tuple[int, float, float]:
    """A move's body, ``{"k": int, "row": number, "col": number}`` and nothing else, checked.

    Raises:
        ValueError: ``malformed request: ...`` saying what is wrong.
    """
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise ValueError("malformed request: the body is not JSON (expected {\"k\": int, \"row\": number, "
                         "\"col\": number})") from None
    if not isinstance(data, dict) or set(data) != {"k", "row", "col"}:
        keys = sorted(data) if isinstance(data, dict) else type(data).__name__
        raise ValueError(f"malformed request: expected the keys k, row, col, got {keys}")
    k, row, col = data["k"], data["row"], data["col"]
    if isinstance(k, bool) or not isinstance(k, int):
        raise ValueError(f"malformed request: k must be an integer, got {k!r}")
    for key, value in (("row", row), ("col", col)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise ValueError(f"malformed request: {key} must be a finite number, got {value!r}")
    return k, float(row), float(col)


def create_app(review: Review) -> FastAPI:
    """The FastAPI app of ``review``: the viewer at ``/``, the JSON API under ``/api``."""
    app = FastAPI(title="glsmonai review", docs_url=None, redoc_url=None, openapi_url=None)

    def error(status: int, message: str) -> JSONResponse:
        return JSONResponse({"error": message}, status_code=status)

    @app.exception_handler(UnknownScan)
    async def unknown(_: Request, err: UnknownScan) -> JSONResponse:
        return error(404, str(err.args[0]))

    @app.exception_handler(ValueError)
    async def refused(_: Request, err: ValueError) -> JSONResponse:
        return error(422, str(err))

    @app.exception_handler(RequestValidationError)
    async def malformed(_: Request, err: RequestValidationError) -> JSONResponse:
        problems = "; ".join(f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg')}" for e in err.errors())
        return error(422, f"malformed request: {problems}")

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, err: StarletteHTTPException) -> JSONResponse:
        return error(err.status_code, "not found" if err.status_code == 404 else str(err.detail))

    @app.exception_handler(Exception)
    async def failed(_: Request, err: Exception) -> JSONResponse:
        logger.exception("request failed")
        return error(500, f"internal error: {type(err).__name__}: {err}")

    def page(name: str) -> Response:
        return Response(static_file(name), media_type=STATIC_FILES[name], headers={"Cache-Control": "no-cache"})

    @app.get("/", include_in_schema=False)
    def index() -> Response:
        return page("index.html")

    @app.get("/static/{name}", include_in_schema=False)
    def static(name: str) -> Response:
        if name not in STATIC_FILES:
            return error(404, f"no file {name!r}")
        return page(name)

    @app.get("/api/scans")
    def scans() -> dict:
        return review.scans()

    @app.get("/api/scans/{name}")
    def scan(name: str) -> dict:
        return review.state(name)

    @app.get("/api/scans/{name}/image.png")
    def image(name: str) -> Response:
        return Response(review.image_png(name), media_type="image/png", headers={"Cache-Control": "max-age=3600"})

    @app.get("/api/scans/{name}/measures")
    def measures(name: str) -> dict:
        return review.measures(name)

    @app.post("/api/scans/{name}/keypoints")
    async def move(name: str, request: Request) -> dict:
        k, row, col = parse_move(await request.body())
        return await run_in_threadpool(review.move, name, k, row, col)

    @app.post("/api/scans/{name}/undo")
    def undo(name: str) -> dict:
        return review.undo(name)

    @app.post("/api/scans/{name}/accept")
    def accept(name: str) -> dict:
        return review.accept(name)

    return app


def serve(review: Review, host: str = "127.0.0.1", port: int = 8765) -> None:
    """Run the app of ``review`` with uvicorn until interrupted (``port`` 0: a free port; the URL is logged).

    Raises:
        OSError: the address cannot be bound (the port is taken, say).
    """
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as err:
        sock.close()
        raise OSError(f"cannot serve on {host}:{port} ({err.strerror or err}): choose another --port") from None
    bound = sock.getsockname()[1]
    shown = f"[{host}]" if ":" in host else host
    logger.info("review of %s: open http://%s:%d/ in a browser (Ctrl+C stops)", review.folder.path, shown, bound)
    config = uvicorn.Config(create_app(review), log_level="warning", access_log=False)
    uvicorn.Server(config).run(sockets=[sock])
