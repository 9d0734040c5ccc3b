"""Cross-cutting HTTP behaviour: input checks, rate limits, compression, CORS, OpenAPI and the uniform
error body.

Every 4xx/5xx answers ``{"detail": "..."}``; validation errors name the field
in ``detail`` and list each problem in ``errors``; a 429 carries
``Retry-After``, and so does the 503 of a full disk. Most of it is Litestar's built-ins configured from
``[http]``; :class:`InputGuard` checks what Litestar would hand to a parser unchecked.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from jobpulse.collector.api.gzipjoin import PRECOMPRESSED
from jobpulse.collector.settings import HttpSettings
from jobpulse.collector.store.errors import StoreUnavailable
from jobpulse.common import validate
from litestar import Litestar, Request, Response, Router, get
from litestar.config.compression import CompressionConfig
from litestar.config.cors import CORSConfig
from litestar.datastructures import CacheControlHeader
from litestar.enums import RequestEncodingType, ScopeType
from litestar.exceptions import HTTPException
from litestar.middleware import DefineMiddleware
from litestar.middleware.rate_limit import RateLimitConfig, RateLimitMiddleware
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import SwaggerRenderPlugin
from litestar.openapi.spec import (
    Components,
    OpenAPIHeader,
    OpenAPIMediaType,
    OpenAPIResponse,
    OpenAPIType,
    Operation,
    Reference,
    Schema,
    SecurityScheme,
)
from litestar.routes import HTTPRoute
from litestar.static_files import create_static_files_router
from litestar.status_codes import (
    HTTP_400_BAD_REQUEST,
    HTTP_413_REQUEST_ENTITY_TOO_LARGE,
    HTTP_429_TOO_MANY_REQUESTS,
    HTTP_503_SERVICE_UNAVAILABLE,
)
from litestar.types import ASGIApp, Receive, ReceiveMessage, Scope, Send

API_KEY_SCHEME = "ApiKey"
# No request body of this API nests deeper than ~6 levels (job_start's free-form Data included).
MAX_JSON_DEPTH = 32
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_NOT_JSON = frozenset({"multipart/form-data", "application/x-www-form-urlencoded"})


def _bad_input(field: str, message: str) -> HTTPException:
    return HTTPException(
        status_code=HTTP_400_BAD_REQUEST,
        detail=f"{field}: {message}",
        extra=[{"key": field, "message": message}],
    )


def _check_path_ids(scope: Scope) -> None:
    """Integer path parameters as written in ASCII digits, within SQLite's 64-bit range.

    Litestar converts them with ``int()``, which reads ``/api/job/٣`` (an Arabic-Indic digit) as job 3
    and ``1_2`` as 12, and a 30-digit number overflows SQLite later (a 500).
    """
    params = scope.get("path_params") or {}
    if not any(isinstance(v, int) and not isinstance(v, bool) for v in params.values()):
        return
    template = str(scope.get("path_template", "")).split("/")
    segments = scope["path"].split("/")
    if len(template) != len(segments):
        return  # a {name:path} parameter: no integer parameters are declared beside one here
    for part, raw in zip(template, segments, strict=True):
        name = part[1:-1] if part.startswith("{") and part.endswith("}") else None
        if name is None or not isinstance(params.get(name), int):
            continue
        try:
            validate.integer(raw, name, 0, validate.INT64_MAX)
        except validate.InvalidField as exc:
            raise _bad_input(name, exc.reason) from None


def _takes_form(handler: Any) -> bool:
    """Whether a route reads its body as a form. Others read JSON whatever the Content-Type says (JobMon's
    Slurm script sends its JSON as ``application/x-www-form-urlencoded``), so JSON's checks apply."""
    field = getattr(handler, "parsed_data_field", None)
    media_type = getattr(getattr(field, "kwarg_definition", None), "media_type", None)
    return media_type in (RequestEncodingType.URL_ENCODED, RequestEncodingType.MULTI_PART)


async def _read_body(receive: Receive, limit: int) -> bytes | None:
    """The whole request body, or None when the client went away; 413 past ``limit`` bytes."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return None
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise HTTPException(
                status_code=HTTP_413_REQUEST_ENTITY_TOO_LARGE,
                detail=f"request body larger than {limit} bytes",
            )
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


class InputGuard:
    """One check of every request before a handler or msgspec sees it (issue 14, D6/D11).

    - integer path parameters: ASCII digits only, at most 2**63-1 (:func:`_check_path_ids`);
    - bodies of POST/PUT/PATCH/DELETE: read up to the route's size limit (413 beyond), then, unless the
      route reads a form and the content type is one (a JSON route's body is JSON whatever its content
      type), valid UTF-8 (JSON is UTF-8; msgspec raises a UnicodeDecodeError that would be a 500) and
      nested at most :data:`MAX_JSON_DEPTH` levels (a 2 KB ``[[[[...`` makes msgspec raise
      RecursionError), checked with :func:`jobpulse.common.validate.json_depth_ok` before parsing.

    Refusals are 400s whose ``detail`` names the field (``body``, or the path parameter). The body is
    then handed on unchanged, so every route is covered here and none repeats the checks.
    """

    def __init__(self, app: ASGIApp, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await self.app(scope, receive, send)
            return
        _check_path_ids(scope)
        if scope["method"] not in _BODY_METHODS:
            await self.app(scope, receive, send)
            return
        handler = scope.get("route_handler")
        resolve = getattr(handler, "resolve_request_max_body_size", None)
        limit = (resolve() if resolve is not None else None) or self.max_body_bytes
        headers = dict(scope["headers"])
        declared = headers.get(b"content-length", b"")
        if declared.isdigit() and int(declared) > limit:
            await self.app(scope, receive, send)  # Litestar answers 413 without reading it
            return
        body = await _read_body(receive, limit)
        if body is None:
            return  # the client went away
        media_type = headers.get(b"content-type", b"").split(b";", 1)[0].strip().lower().decode("latin-1")
        if body and (media_type not in _NOT_JSON or not _takes_form(handler)):
            try:
                body.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise _bad_input("body", f"not valid UTF-8 (byte {exc.start}); JSON must be UTF-8") from None
            if not validate.json_depth_ok(body, MAX_JSON_DEPTH):
                raise _bad_input("body", f"JSON nested deeper than {MAX_JSON_DEPTH} levels")
        replayed = False

        async def replay() -> ReceiveMessage:
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)


def input_guard(http: HttpSettings) -> DefineMiddleware:
    return DefineMiddleware(InputGuard, max_body_bytes=http.max_body_bytes)


class StrictRateLimitMiddleware(RateLimitMiddleware):
    """Its own class so its counters are kept apart from the general limit's (Litestar keys by class name)."""


def _is_strict(request: Request[Any, Any, Any]) -> bool:
    return bool(request.route_handler.opt.get("strict_rate_limit"))


def rate_limits(http: HttpSettings) -> list[DefineMiddleware]:
    """A general per-client limit, and a stricter one on routes marked ``strict_rate_limit``
    (password login, OIDC, unauthenticated role requests). 0 turns either off."""
    out = []
    if http.rate_limit_per_minute > 0:
        out.append(
            RateLimitConfig(
                rate_limit=("minute", http.rate_limit_per_minute),
                exclude=["^/docs", "^/api/openapi.json"],
                store="rate_limit",
            ).middleware
        )
    if http.login_rate_limit_per_minute > 0:
        out.append(
            RateLimitConfig(
                rate_limit=("minute", http.login_rate_limit_per_minute),
                check_throttle_handler=_is_strict,
                middleware_class=StrictRateLimitMiddleware,
                store="rate_limit_strict",
            ).middleware
        )
    return out


def compression(http: HttpSettings) -> CompressionConfig:
    """gzip at level 1: the job pages' answers are megabytes of numbers, which level 6 packs only 7-12 %
    smaller for 2-13 times the CPU (5 MB web page: 2.39 vs 2.22 MB, 78 ms vs 1061 ms; 23 MB JobMon answer:
    4.11 vs 3.66 MB, 382 vs 701 ms; load average 8), paid on every request of every view. The job pages'
    routes compress their own answers (api/gzipjoin.py: a cached page's series deflated once) and are left
    out here."""
    return CompressionConfig(
        backend="gzip",
        minimum_size=http.gzip_min_bytes,
        gzip_compress_level=1,
        exclude_opt_key=PRECOMPRESSED,
    )


def cors(http: HttpSettings) -> CORSConfig | None:
    """Off unless origins are configured: the API is then callable from exactly those browser origins."""
    if not http.cors_origins:
        return None
    return CORSConfig(
        allow_origins=list(http.cors_origins),
        allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"],
        allow_headers=["Authorization", "Content-Type", "X-API-Key"],
        allow_credentials="*" not in http.cors_origins,  # browsers refuse credentials to a wildcard
        max_age=600,
    )


DOCS_ASSETS = "/docs/assets"  # the API docs' own files, served by the collector (static/)
STATIC_DIR = Path(__file__).parent / "static"


def _swagger_ui() -> SwaggerRenderPlugin:
    """Swagger UI at /docs from the collector's own copy (static/swagger-ui, scripts/vendor-web-asset.sh):
    Litestar's default loads it from a public CDN, a blank page on a cluster's offline network."""
    base = f"{DOCS_ASSETS}/swagger-ui"
    return SwaggerRenderPlugin(
        path="/",
        js_url=f"{base}/swagger-ui-bundle.js",
        css_url=f"{base}/swagger-ui.css",
        standalone_preset_js_url=f"{base}/swagger-ui-standalone-preset.js",
        favicon=f"<link rel='icon' type='image/png' href='{base}/favicon-32x32.png'>",
    )


def docs_assets() -> Router:
    """The static files /docs loads (public, like /docs itself; cached for a day)."""
    return create_static_files_router(
        path=DOCS_ASSETS,
        directories=[STATIC_DIR],
        cache_control=CacheControlHeader(max_age=86400),
        include_in_schema=False,
    )


def openapi(version: str) -> OpenAPIConfig:
    return OpenAPIConfig(
        title="jobpulse",
        version=version,
        description=(
            "Per-job resource monitoring for Slurm clusters. Authenticate with the session cookie or "
            "bearer token from POST /api/login, or with an API key (X-API-Key header or Bearer jp_...)."
        ),
        path="/docs",
        render_plugins=[_swagger_ui()],
        components=Components(
            security_schemes={
                API_KEY_SCHEME: SecurityScheme(
                    type="apiKey",
                    name="X-API-Key",
                    security_scheme_in="header",
                    description="API key from POST /api/generateAPIKey (also accepted as Bearer jp_...)",
                )
            }
        ),
        security=[{API_KEY_SCHEME: []}],
    )


@get(
    "/api/openapi.json",
    include_in_schema=False,
    opt={"exclude_from_auth": True},
    media_type="application/vnd.oai.openapi+json",
)
async def openapi_json(request: Request[Any, Any, Any]) -> dict[str, Any]:
    """The same schema as /docs/openapi.json, at the address API clients look for."""
    schema: dict[str, Any] = request.app.openapi_schema.to_schema()
    return schema


def _field_errors(extra: Any) -> list[str]:
    if not isinstance(extra, list):
        return []
    out = []
    for item in extra:
        if isinstance(item, dict) and item.get("message"):
            key = item.get("key")
            out.append(f"{key}: {item['message']}" if key else str(item["message"]))
    return out


def http_error(request: Request[Any, Any, Any], exc: HTTPException) -> Response[dict[str, object]]:
    """Uniform error body ``{"detail": ...}``; validation problems are named in it, field by field."""
    detail = str(exc.detail)
    body: dict[str, object] = {"detail": detail}
    extra = getattr(exc, "extra", None)
    if extra:
        body["errors"] = extra
        problems = [p for p in _field_errors(extra) if p.split(":", 1)[0] not in detail.split(":", 1)[0]]
        if problems and exc.status_code < 500:
            body["detail"] = f"{detail}: {'; '.join(problems)}"
    headers = dict(getattr(exc, "headers", None) or {})
    if exc.status_code == HTTP_429_TOO_MANY_REQUESTS:
        reset = headers.get("RateLimit-Reset", "60")
        headers["Retry-After"] = str(max(1, int(reset))) if str(reset).lstrip("-").isdigit() else "60"
        body["detail"] = "too many requests; retry after the number of seconds in Retry-After"
    return Response(body, status_code=exc.status_code, headers=headers or None)


def invalid_field(request: Request[Any, Any, Any], exc: validate.InvalidField) -> Response[dict[str, object]]:
    """A value refused by :mod:`jobpulse.common.validate` in a handler: 400 naming the field."""
    return http_error(request, _bad_input(exc.field, exc.reason))


def store_unavailable(request: Request[Any, Any, Any], exc: StoreUnavailable) -> Response[dict[str, object]]:
    """503 with the reason and Retry-After; not logged here (the store logs the condition once)."""
    return Response(
        {"detail": f"{exc.reason}; retry after {exc.retry_after} seconds"},
        status_code=HTTP_503_SERVICE_UNAVAILABLE,
        headers={"Retry-After": str(exc.retry_after)},
    )


_ERROR_CODES = {
    "400": "Bad request: malformed JSON, a wrong type or value (the field is named in detail)",
    "401": "No, expired, revoked or invalid credentials",
    "403": "Authenticated, but without the role this endpoint needs",
    "404": "Not found (another user's job answers the same as a missing one)",
    "413": "Request body larger than the configured limit",
    "429": "Rate limit reached; retry after Retry-After seconds",
    "503": "The database's disk is full; retry after Retry-After seconds",
}


# Operations that also answer plain text (content negotiation), for JobMon's front end.
TEXT_ALTERNATIVES = {("/api/generateAPIKey", "post"): {"200": "text/plain"}}


def document_errors(app: Litestar) -> None:
    """Describe the uniform error body and the cross-cutting error statuses on every operation
    (replacing Litestar's own 400 description, whose body shape differs from ours; a route's own 503
    keeps its description, the full disk added), and mark routes that need no credentials as such
    (``security: [{}]``)."""
    schema = app.openapi_schema
    components = schema.components
    if isinstance(components, list):  # pragma: no cover - Litestar always builds one Components here
        return
    components.schemas = dict(components.schemas or {})
    components.schemas["ErrorBody"] = Schema(
        type=OpenAPIType.OBJECT,
        properties={
            "detail": Schema(type=OpenAPIType.STRING, description="what went wrong, naming the field"),
            "errors": Schema(type=OpenAPIType.ARRAY, description="validation problems, one per field"),
        },
        required=["detail"],
    )
    public = {
        (route.path, method)
        for route in app.routes
        if isinstance(route, HTTPRoute)
        for handler in route.route_handlers
        if handler.opt.get("exclude_from_auth")
        for method in getattr(handler, "http_methods", ())
    }
    error = Reference(ref="#/components/schemas/ErrorBody")
    for path, item in (schema.paths or {}).items():
        for method in ("get", "put", "post", "patch", "delete"):
            operation: Operation | None = getattr(item, method, None)
            if operation is None:
                continue
            responses = operation.responses = dict(operation.responses or {})
            for code, description in _ERROR_CODES.items():
                if code == "403" and (path, method.upper()) in public:
                    continue
                text, own = description, responses.get(code)
                if code == "503" and isinstance(own, OpenAPIResponse) and own.description:
                    text = f"{own.description}; or: {description[0].lower()}{description[1:]}"
                responses[code] = OpenAPIResponse(
                    description=text,
                    content={"application/json": OpenAPIMediaType(schema=error)},
                    headers={"Retry-After": OpenAPIHeader(schema=Schema(type=OpenAPIType.INTEGER))}
                    if code in ("429", "503")
                    else None,
                )
            if (path, method.upper()) in public:
                operation.security = [{}]
            for code, media in TEXT_ALTERNATIVES.get((path, method), {}).items():
                answer = responses.get(code)
                if isinstance(answer, OpenAPIResponse):
                    answer.content = {
                        **(answer.content or {}),
                        media: OpenAPIMediaType(schema=Schema(type=OpenAPIType.STRING)),
                    }
