"""FastAPI's own OpenTelemetry instrumentation follows the process's OpenTelemetry setup."""

from __future__ import annotations

from agentloom_gateway.app import fastapi_telemetry


def test_fastapi_telemetry_is_off_unless_the_process_is_set_up_for_opentelemetry() -> None:
    off = fastapi_telemetry({"PATH": "/usr/bin", "AGENTLOOM_PORT": "8080"})
    assert off["tracing"] is False and off["metrics"] is False and off["logs"] is False
    for variable in (
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "OTEL_SERVICE_NAME",
        "FASTAPI_OTEL_AUTO_CONFIGURE",
    ):
        assert fastapi_telemetry({variable: "x"}) == {}  # FastAPI's own defaults
