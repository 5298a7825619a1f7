"""RFC 9457 problem details, the one error body every HTTP response uses."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

PROBLEM_CONTENT_TYPE = "application/problem+json"


class FieldError(BaseModel):
    field: str = Field(description="Dotted path of the offending field, e.g. `body.inputs.text`.")
    message: str


class Problem(BaseModel):
    """An error response body (`application/problem+json`)."""

    type: str = "about:blank"
    title: str
    status: int
    detail: str | None = None
    code: str = Field(description="Stable machine-readable error code, e.g. `GRAPH_INVALID`.")
    request_id: str | None = None
    errors: list[FieldError] | None = None
    node_errors: dict[str, dict[str, str]] | None = Field(
        default=None, description="For invalid graphs: {node id: {field or pin: message}}."
    )
    extra: dict[str, Any] | None = None
