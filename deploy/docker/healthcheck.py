"""Container health check for docker-compose, using only what the Agentloom image holds.

    python /opt/agentloom/healthcheck.py grpc 127.0.0.1:50051 [service]
    python /opt/agentloom/healthcheck.py http http://127.0.0.1:8000/healthz

Exits 0 when the target answers SERVING (gRPC health protocol) or 2xx (HTTP), 1 otherwise.
Kubernetes does not need this script: it probes gRPC health and HTTP natively.
"""

from __future__ import annotations

import sys
import urllib.error
import urllib.request

TIMEOUT_S = 3.0
USAGE = "usage: healthcheck.py grpc HOST:PORT [SERVICE] | healthcheck.py http URL"


def check_grpc(address: str, service: str = "") -> bool:
    """True when the server's gRPC health service reports `service` ("" = whole server) SERVING."""
    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    with grpc.insecure_channel(address) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        try:
            response = stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=TIMEOUT_S)
        except grpc.RpcError:
            return False
    return bool(response.status == health_pb2.HealthCheckResponse.SERVING)


def check_http(url: str) -> bool:
    """True when GET `url` answers with a 2xx status."""
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT_S) as response:
            return 200 <= int(response.status) < 300
    except (urllib.error.URLError, OSError):
        return False


def main(argv: list[str]) -> int:
    if len(argv) >= 2 and argv[0] == "grpc" and len(argv) <= 3:
        return 0 if check_grpc(*argv[1:]) else 1
    if len(argv) == 2 and argv[0] == "http":
        return 0 if check_http(argv[1]) else 1
    print(USAGE, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
