"""The OpenAPI document: valid, and every operation says how it authenticates and fails."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from openapi_spec_validator import validate

from agentloom_gateway.app import create_app
from agentloom_gateway.settings import GatewaySettings

DOCUMENT: dict[str, Any] = create_app(GatewaySettings()).openapi()
OPERATIONS = [
    (method, path, operation)
    for path, item in DOCUMENT["paths"].items()
    for method, operation in item.items()
]
API_OPERATIONS = [op for op in OPERATIONS if op[1].startswith("/api/")]
# Open on purpose: incoming-trigger calls are authenticated by their Standard Webhooks
# signature, made with the trigger's secret, not by an API key or JWT.
SIGNED_OPERATIONS = {("post", "/hooks/triggers/{trigger_id}")}


def test_document_is_valid_openapi() -> None:
    validate(DOCUMENT)


async def test_document_is_served(client: httpx.AsyncClient) -> None:
    response = await client.get("/openapi.json")
    assert response.status_code == 200
    validate(response.json())


def test_security_schemes_cover_bearer_and_x_api_key() -> None:
    schemes = DOCUMENT["components"]["securitySchemes"]
    assert schemes["BearerAuth"] == {**schemes["BearerAuth"], "type": "http", "scheme": "bearer"}
    assert schemes["ApiKeyAuth"]["in"] == "header"
    assert schemes["ApiKeyAuth"]["name"] == "X-API-Key"


@pytest.mark.parametrize(("method", "path", "operation"), API_OPERATIONS)
def test_api_operations_require_credentials(
    method: str, path: str, operation: dict[str, Any]
) -> None:
    if (method, path) in SIGNED_OPERATIONS:
        assert operation["security"] == []
        assert {"webhook-id", "webhook-timestamp", "webhook-signature"} <= {
            parameter["name"] for parameter in operation["parameters"]
        }
        return
    assert {"BearerAuth": []} in operation["security"]
    assert {"ApiKeyAuth": []} in operation["security"]


def test_probes_are_declared_open() -> None:
    for path in ("/healthz", "/readyz"):
        assert DOCUMENT["paths"][path]["get"]["security"] == []


def _expected_problems(method: str, path: str) -> set[str]:
    expected = {"400", "401", "413", "422", "429", "500", "503"}
    if "{" in path:
        expected.add("404")
    if "/execute" in path:
        expected |= {"402", "409"}
    if (method, path) in {("post", "/api/graphs"), ("put", "/api/graphs/{graph_id}")}:
        expected.add("409")
    return expected


@pytest.mark.parametrize(("method", "path", "operation"), API_OPERATIONS)
def test_api_operations_declare_problem_responses(
    method: str, path: str, operation: dict[str, Any]
) -> None:
    responses = operation["responses"]
    assert _expected_problems(method, path) <= set(responses)
    for status, response in responses.items():
        if status.startswith(("4", "5")):
            content = response["content"]
            assert list(content) == ["application/problem+json"], (status, content)
            assert content["application/problem+json"]["schema"]["$ref"].endswith("Problem")


@pytest.mark.parametrize(("method", "path", "operation"), OPERATIONS)
def test_operations_have_tags_and_summaries(
    method: str, path: str, operation: dict[str, Any]
) -> None:
    assert operation["tags"] and operation["summary"]


def test_problem_schemas_are_complete() -> None:
    schemas = DOCUMENT["components"]["schemas"]
    assert {"code", "request_id", "errors", "node_errors"} <= set(schemas["Problem"]["properties"])
    assert "balance" in schemas["InsufficientCreditsProblem"]["properties"]
    assert "HTTPValidationError" not in schemas


def test_retry_after_is_declared_on_503() -> None:
    for _, _, operation in API_OPERATIONS:
        assert "Retry-After" in operation["responses"]["503"]["headers"]
