"""schemathesis against the gateway's own OpenAPI document, on the real stack: generated
requests (valid and invalid) to every operation, as an admin holding every scope, must never
get a 5xx, and every answer must conform to the document (status, content type, headers,
body schema). Bounded: a few examples per operation, no shrinking."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from agentloom_gateway.scopes import ALL_SCOPES


@pytest.fixture(scope="session")
async def fuzz_headers(stack: Any, admin: Any) -> dict[str, str]:
    """An all-scopes API key of an admin (so admin routes are fuzzed too)."""
    async with httpx.AsyncClient(base_url=stack.gateway_url) as http:
        created = await http.post(
            f"/api/admin/users/{admin.user_id}/api-keys",
            json={"name": "fuzz", "scopes": list(ALL_SCOPES)},
            headers=admin.headers,
        )
    assert created.status_code == 201, created.text
    return {"Authorization": f"Bearer {created.json()['api_key']}"}


CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
FUZZ_SETTINGS = settings(
    max_examples=4,
    deadline=None,
    derandomize=True,
    database=None,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=list(HealthCheck),
)


def _fuzz(operation: Any, headers: dict[str, str], statuses: list[int]) -> None:
    @given(case=operation.as_strategy())
    @FUZZ_SETTINGS
    def run(case: Any) -> None:
        response = case.call_and_validate(headers=headers, checks=CHECKS, timeout=30)
        statuses.append(response.status_code)

    run()


def test_no_5xx_and_every_answer_matches_the_document(
    stack: Any, fuzz_headers: dict[str, str]
) -> None:
    schema = schemathesis.openapi.from_url(f"{stack.gateway_url}/openapi.json")
    failures: list[str] = []
    statuses: list[int] = []
    operations = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        operations += 1
        try:
            _fuzz(operation, fuzz_headers, statuses)
        except Exception as error:  # every operation is fuzzed; failures are listed at the end
            failures.append(f"{operation.method.upper()} {operation.path}: {error}"[:3000])
    assert operations >= 30
    assert len(statuses) >= 2 * operations  # it really called the API
    assert any(200 <= status < 300 for status in statuses)
    assert any(400 <= status < 500 for status in statuses)
    assert not failures, "\n\n".join(failures)
