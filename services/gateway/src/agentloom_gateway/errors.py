"""Every error the gateway answers, in one place: RFC 9457 problem+json with a stable `code`
and the `request_id`, never a stack trace. gRPC status codes map to HTTP in `rpc_problem`."""

from __future__ import annotations

import json
import logging
import re
import socket
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any

import grpc
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException

from agentloom_common.errors import error_info
from agentloom_common.grpc_server import is_outage
from agentloom_common.logging import request_id_var
from agentloom_common.problem import PROBLEM_CONTENT_TYPE, FieldError, Problem

log = logging.getLogger(__name__)

_CODE = re.compile(r"^[A-Z][A-Z0-9_]{0,63}$")
_MAX_DETAIL = 2_000


@dataclass(eq=False)
class ApiProblem(Exception):
    """An error answer; raise it anywhere in a request and it is rendered as problem+json."""

    status: int
    code: str
    detail: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    errors: list[FieldError] | None = None
    node_errors: dict[str, dict[str, str]] | None = None
    # RFC 9457 extension members, e.g. `balance` on 402.
    members: dict[str, Any] = field(default_factory=dict)

    def __str__(self) -> str:
        return f"{self.status} {self.code}: {self.detail}"


def not_found(detail: str = "no such resource") -> ApiProblem:
    return ApiProblem(404, "NOT_FOUND", detail)


def unavailable(retry_after_s: int, detail: str = "a backing service is unavailable") -> ApiProblem:
    return ApiProblem(503, "SERVICE_UNAVAILABLE", detail, {"Retry-After": str(retry_after_s)})


def problem_response(problem: ApiProblem) -> JSONResponse:
    body = Problem(
        title=HTTPStatus(problem.status).phrase,
        status=problem.status,
        detail=problem.detail,
        code=problem.code,
        request_id=request_id_var.get() or None,
        errors=problem.errors,
        node_errors=problem.node_errors,
    ).model_dump(mode="json", exclude_none=True)
    body.update(problem.members)
    return JSONResponse(
        body, status_code=problem.status, headers=problem.headers, media_type=PROBLEM_CONTENT_TYPE
    )


# grpc status -> (HTTP status, default problem code). Anything not listed is a 500.
RPC_STATUS_TABLE: dict[grpc.StatusCode, tuple[int, str]] = {
    grpc.StatusCode.INVALID_ARGUMENT: (400, "INVALID_ARGUMENT"),
    grpc.StatusCode.OUT_OF_RANGE: (400, "OUT_OF_RANGE"),
    grpc.StatusCode.UNAUTHENTICATED: (401, "UNAUTHENTICATED"),
    grpc.StatusCode.PERMISSION_DENIED: (403, "FORBIDDEN"),
    grpc.StatusCode.NOT_FOUND: (404, "NOT_FOUND"),
    grpc.StatusCode.ALREADY_EXISTS: (409, "ALREADY_EXISTS"),
    grpc.StatusCode.ABORTED: (409, "CONFLICT"),
    grpc.StatusCode.FAILED_PRECONDITION: (409, "FAILED_PRECONDITION"),
    grpc.StatusCode.RESOURCE_EXHAUSTED: (429, "RATE_LIMITED"),
    grpc.StatusCode.UNAVAILABLE: (503, "SERVICE_UNAVAILABLE"),
    grpc.StatusCode.DEADLINE_EXCEEDED: (503, "SERVICE_UNAVAILABLE"),
}


def rpc_problem(
    code: grpc.StatusCode,
    reason: str,
    metadata: Mapping[str, str],
    message: str,
    *,
    retry_after_s: int = 1,
) -> ApiProblem:
    """The answer to a failed downstream call, from its status code and `ErrorInfo`."""
    status, default_code = RPC_STATUS_TABLE.get(code, (500, "INTERNAL"))
    if status >= 500:
        # Downstream messages of 5xx may name hosts and ports: keep them in the log only.
        if status == 503:
            return unavailable(retry_after_s)
        return ApiProblem(500, "INTERNAL", "internal error")
    problem = ApiProblem(
        status, reason if _CODE.match(reason) else default_code, message[:_MAX_DETAIL] or None
    )
    if code == grpc.StatusCode.FAILED_PRECONDITION and reason == "INSUFFICIENT_CREDITS":
        problem.status = 402
        problem.members["balance"] = _int_or_none(metadata.get("balance"))
    elif status == 400 and reason == "GRAPH_INVALID":
        problem.node_errors = _node_errors(metadata.get("node_errors", ""))
    elif status == 400 and "errors" in metadata:
        problem.errors = _field_errors(metadata["errors"])  # e.g. INPUTS_INVALID, PRESET_INVALID
    elif status == 401:
        problem.headers["WWW-Authenticate"] = "Bearer"
    elif status == 429:
        retry = _int_or_none(metadata.get("retry_after_s"))
        problem.headers["Retry-After"] = str(retry if retry is not None else retry_after_s)
    return problem


def _int_or_none(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def _field_errors(raw: str) -> list[FieldError] | None:
    """`{field: message}` from a service's ErrorInfo; None when it is not that shape."""
    try:
        decoded = json.loads(raw)
    except ValueError:
        return None
    if not isinstance(decoded, dict):
        return None
    return [FieldError(field=str(name), message=str(text)) for name, text in decoded.items()]


def _node_errors(raw: str) -> dict[str, dict[str, str]]:
    """`{node id: {field: message}}` from the graphs service; tolerant of other shapes."""
    try:
        decoded = json.loads(raw) if raw else {}
    except ValueError:
        return {}
    if not isinstance(decoded, dict):
        return {}
    result: dict[str, dict[str, str]] = {}
    for node_id, errors in decoded.items():
        if isinstance(errors, dict):
            result[str(node_id)] = {str(k): str(v) for k, v in errors.items()}
        else:
            result[str(node_id)] = {"": str(errors)}
    return result


def validation_problem(errors: Sequence[Any]) -> ApiProblem:
    """400 for unparseable JSON, 404 for a path that names nothing, else 422 per field."""
    if any(error.get("type") == "json_invalid" for error in errors):
        position = next(e["loc"][-1] for e in errors if e.get("type") == "json_invalid")
        return ApiProblem(400, "MALFORMED_JSON", f"the body is not valid JSON (at {position})")
    if any(error.get("loc", ("",))[0] == "path" for error in errors):
        return not_found()
    fields = [
        FieldError(field=".".join(str(part) for part in error.get("loc", ())), message=error["msg"])
        for error in errors
    ]
    return ApiProblem(422, "VALIDATION_ERROR", "the request is not valid", errors=fields)


_HTTP_CODES = {
    400: "BAD_REQUEST",
    401: "UNAUTHENTICATED",
    403: "FORBIDDEN",
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    406: "NOT_ACCEPTABLE",
    413: "PAYLOAD_TOO_LARGE",
    415: "UNSUPPORTED_MEDIA_TYPE",
}


def install(app: FastAPI, *, retry_after_s: int) -> None:
    """Register every exception handler of the app."""

    async def on_problem(request: Request, error: Exception) -> JSONResponse:
        assert isinstance(error, ApiProblem)
        return problem_response(error)

    async def on_validation(request: Request, error: Exception) -> JSONResponse:
        assert isinstance(error, RequestValidationError)
        return problem_response(validation_problem(error.errors()))

    async def on_http(request: Request, error: Exception) -> JSONResponse:
        assert isinstance(error, StarletteHTTPException)
        status = error.status_code
        phrase = HTTPStatus(status).phrase
        detail = error.detail if isinstance(error.detail, str) and error.detail != phrase else None
        code = _HTTP_CODES.get(status, "INTERNAL" if status >= 500 else f"HTTP_{status}")
        return problem_response(ApiProblem(status, code, detail, dict(error.headers or {})))

    async def on_rpc(request: Request, error: Exception) -> JSONResponse:
        assert isinstance(error, grpc.aio.AioRpcError)
        reason, metadata = error_info(error)
        problem = rpc_problem(
            error.code(), reason, metadata, error.details() or "", retry_after_s=retry_after_s
        )
        if problem.status >= 500:
            log.warning(
                "downstream call failed",
                extra={"fields": {"grpc_code": error.code().name, "reason": reason}},
            )
        return problem_response(problem)

    async def on_database(request: Request, error: Exception) -> JSONResponse:
        if isinstance(error, DBAPIError) and not (
            isinstance(error, OperationalError | InterfaceError) or is_outage(error)
        ):
            log.error("database error", exc_info=error)
            return problem_response(ApiProblem(500, "INTERNAL", "internal error"))
        log.warning("database unavailable: %s", type(error).__name__)
        return problem_response(unavailable(retry_after_s))

    async def on_unexpected(request: Request, error: Exception) -> JSONResponse:
        # Last resort, outside the request context middleware (which handles the rest).
        return problem_response(ApiProblem(500, "INTERNAL", "internal error"))

    app.add_exception_handler(ApiProblem, on_problem)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(StarletteHTTPException, on_http)
    app.add_exception_handler(grpc.aio.AioRpcError, on_rpc)
    for db_error in (DBAPIError, ConnectionError, TimeoutError, socket.gaierror):
        app.add_exception_handler(db_error, on_database)
    app.add_exception_handler(Exception, on_unexpected)


_RESPONSE_HEADERS = {
    401: {"WWW-Authenticate": "The scheme to authenticate with (`Bearer`)."},
    429: {"Retry-After": "Seconds to wait before retrying."},
    503: {"Retry-After": "Seconds to wait before retrying."},
}


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` entries declaring problem+json bodies for the given statuses."""
    responses: dict[int | str, dict[str, Any]] = {}
    for status in statuses:
        schema = "InsufficientCreditsProblem" if status == 402 else "Problem"
        response: dict[str, Any] = {
            "description": HTTPStatus(status).phrase,
            "content": {
                PROBLEM_CONTENT_TYPE: {"schema": {"$ref": f"#/components/schemas/{schema}"}}
            },
        }
        if status in _RESPONSE_HEADERS:
            response["headers"] = {
                name: {"description": description, "schema": {"type": "string"}}
                for name, description in _RESPONSE_HEADERS[status].items()
            }
        responses[status] = response
    return responses
