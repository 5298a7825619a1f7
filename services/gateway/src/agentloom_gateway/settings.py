"""Settings of the gateway, read from `AGENTLOOM_*` environment variables."""

from __future__ import annotations

from pydantic import SecretStr

from agentloom_common.settings import ServiceSettings

DEV_API_KEY_PEPPER = "agentloom-dev-pepper-do-not-use-in-production"


class GatewaySettings(ServiceSettings):
    """Where the gateway listens, how it verifies API keys, and the limits it enforces.

    Limits are the platform defaults from RELIABILITY.md; an operator may change them.
    """

    host: str = "127.0.0.1"
    port: int = 8000
    # HMAC key mixed into every stored API key hash: a leaked table alone verifies nothing.
    api_key_pepper: SecretStr = SecretStr(DEV_API_KEY_PEPPER)
    # `last_used_at` is written at most this often per key, so a busy key costs no writes.
    api_key_touch_interval_s: float = 60.0
    db_pool_size: int = 10
    max_body_bytes: int = 1_048_576
    max_json_depth: int = 64
    max_graph_nodes: int = 500
    max_graph_links: int = 2_000
    max_node_input_bytes: int = 262_144
    # Retry-After sent with 503 answers (a downstream service or the database is down).
    retry_after_s: int = 1
