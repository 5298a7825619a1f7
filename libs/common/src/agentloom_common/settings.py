"""Settings shared by every service, read from `AGENTLOOM_*` environment variables."""

from __future__ import annotations

from pydantic_settings import BaseSettings, SettingsConfigDict


class ServiceSettings(BaseSettings):
    """Base settings: where the shared servers and the other services are.

    Each service subclasses this with its own fields. Nothing reads it at import time:
    `__main__` builds one and passes it down, so tests build their own.
    """

    model_config = SettingsConfigDict(env_prefix="AGENTLOOM_", extra="ignore")

    database_url: str = "postgresql+asyncpg://postgres@127.0.0.1:5432/agentloom"
    amqp_url: str = "amqp://guest:guest@127.0.0.1:5672/agentloom"
    redis_url: str = "redis://127.0.0.1:6379/0"
    log_level: str = "INFO"
    # Addresses of the gRPC services (host:port).
    graphs_addr: str = "127.0.0.1:50051"
    blocks_addr: str = "127.0.0.1:50052"
    billing_addr: str = "127.0.0.1:50053"
    executor_addr: str = "127.0.0.1:50054"
    notify_addr: str = "127.0.0.1:50055"
    # Deadline applied to every gRPC call between services.
    grpc_deadline_s: float = 5.0
    # Time a service waits for in-flight work on SIGTERM before it stops anyway.
    shutdown_grace_s: float = 10.0
