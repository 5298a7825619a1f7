"""Settings of the gateway, read from `AGENTLOOM_*` environment variables."""

from __future__ import annotations

from typing import Literal

from pydantic import SecretStr

from agentloom_common.settings import ServiceSettings

DEV_API_KEY_PEPPER = "agentloom-dev-pepper-do-not-use-in-production"
DEV_JWT_SECRET = "agentloom-dev-jwt-secret-do-not-use-in-production"
# base64 of 32 bytes; a development key-encryption key, logged as a warning when used.
DEV_KEK_ID = "dev"
DEV_KEK = "ZGV2LWtleS1lbmNyeXB0aW9uLWtleS0zMi1ieXRlcyE="


class GatewaySettings(ServiceSettings):
    """Where the gateway listens, how it verifies API keys, and the limits it enforces.

    Limits are the platform defaults from RELIABILITY.md; an operator may change them.
    """

    host: str = "127.0.0.1"
    port: int = 8000
    # How long an idle client connection is kept open. Longer than clients keep theirs
    # (httpx and many others: 5 s), so the server never closes one just as the client
    # reuses it (a request lost with a read error; seen under load with uvicorn's 5 s).
    keep_alive_s: int = 75
    # Notify's WebSocket server, to which `/ws` forwards authenticated clients, and the token
    # it requires (shared with notify; unset: notify refuses every connection).
    notify_ws_url: str = "ws://127.0.0.1:8002"
    internal_token: str | None = None
    # A `/ws` client whose next frame cannot be sent for this long is cut off (4008).
    ws_send_timeout_s: float = 10.0
    # HMAC key mixed into every stored API key hash: a leaked table alone verifies nothing.
    api_key_pepper: SecretStr = SecretStr(DEV_API_KEY_PEPPER)
    # `last_used_at` is written at most this often per key, so a busy key costs no writes.
    api_key_touch_interval_s: float = 60.0
    # A key found valid is not looked up again for this long (0: every request). Changes
    # made through this gateway apply at once; through another replica, within this.
    api_key_cache_s: float = 2.0
    # A user found to have at least `balance_cache_min` credits may start executions for
    # this long without billing being asked again (0: asked every time); a balance below
    # that is asked about every time. Charges are checked when nodes run anyway.
    balance_cache_s: float = 1.0
    balance_cache_min: int = 100
    db_pool_size: int = 10
    max_body_bytes: int = 1_048_576
    max_json_depth: int = 64
    max_graph_nodes: int = 500
    max_graph_links: int = 2_000
    max_node_input_bytes: int = 262_144
    # Retry-After sent with 503 answers (a downstream service or the database is down).
    retry_after_s: int = 1

    # JWT (RFC 8725): "hs256" verifies with `jwt_secret` (the local default, see `mint-token`);
    # "jwks" verifies RS256/ES256 tokens against the keys served at `jwt_jwks_url` (an
    # operator-chosen URL: keys are never fetched from a token's `kid`/`jku`).
    jwt_mode: Literal["hs256", "jwks"] = "hs256"
    jwt_secret: SecretStr = SecretStr(DEV_JWT_SECRET)
    jwt_jwks_url: str = ""
    jwt_jwks_refresh_s: float = 300.0
    jwt_issuer: str = "agentloom"
    jwt_audience: str = "agentloom-api"
    jwt_leeway_s: int = 30
    # Rate limits: requests per window per principal (API key, or user for JWTs) and route
    # class; counted in Redis under `rate_limit_prefix`.
    rate_limit_window_s: int = 60
    rate_limit_read: int = 600
    rate_limit_write: int = 120
    rate_limit_execute: int = 60
    rate_limit_admin: int = 120
    rate_limit_prefix: str = "agentloom:ratelimit:"
    redis_timeout_s: float = 0.5
    # Credentials vault: key-encryption keys by id (base64 of 32 bytes, as a JSON object in
    # AGENTLOOM_CREDENTIAL_KEKS), the current one wraps new data keys; older ones still unwrap.
    credential_keks: dict[str, SecretStr] = {DEV_KEK_ID: SecretStr(DEV_KEK)}
    credential_kek_current: str = DEV_KEK_ID
    # Internal gRPC CredentialsService (for the runner); empty disables it.
    credentials_grpc_addr: str = "127.0.0.1:50056"
    # Markup-free text limits enforced at the gateway.
    max_node_metadata_bytes: int = 65_536
