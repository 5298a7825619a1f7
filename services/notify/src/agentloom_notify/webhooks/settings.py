"""Settings of outgoing webhooks (`AGENTLOOM_WEBHOOK_*`), mixed into the notify settings."""

from __future__ import annotations

from pydantic import Field, SecretStr

from agentloom_common.settings import ServiceSettings

# base64 of 32 bytes; a development key, logged as a warning when used.
DEV_WEBHOOK_KEY_ID = "dev"
DEV_WEBHOOK_KEY = "ZGV2LXdlYmhvb2stc2VjcmV0LWtleS0zMi1ieXRlcyE="
# Seconds after the first attempt: 5 s, 5 min, 30 min, 2 h, 5 h, 10 h (about 17.6 h in all).
DEFAULT_RETRY_SCHEDULE_S = (5.0, 300.0, 1800.0, 7200.0, 18000.0, 36000.0)


class WebhookSettings(ServiceSettings):
    # Keys that encrypt endpoint secrets at rest, by id (base64 of 32 bytes, a JSON object in
    # AGENTLOOM_WEBHOOK_SECRET_KEYS); the current one seals new secrets, older ones still open.
    webhook_secret_keys: dict[str, SecretStr] = {DEV_WEBHOOK_KEY_ID: SecretStr(DEV_WEBHOOK_KEY)}
    webhook_secret_key_current: str = DEV_WEBHOOK_KEY_ID
    # SSRF guard: private and loopback targets only when the operator allows them (self-hosting,
    # tests); link-local (metadata) addresses are refused regardless, unless listed exactly.
    webhook_allow_private_targets: bool = False
    webhook_allowed_networks: list[str] = []
    # One POST: connect + send + answer.
    webhook_timeout_s: float = Field(default=10.0, gt=0, le=60)
    # Waits before each retry; `webhook_retry_scale` multiplies them (tests shrink it). Each
    # wait gets +-`webhook_retry_jitter` of itself at random so retries of a burst spread out.
    webhook_retry_schedule_s: list[float] = list(DEFAULT_RETRY_SCHEDULE_S)
    webhook_retry_scale: float = Field(default=1.0, gt=0)
    webhook_retry_jitter: float = Field(default=0.2, ge=0, lt=1)
    # An endpoint failing every delivery for this long is disabled (a 410 disables at once).
    webhook_disable_after_s: float = Field(default=5 * 24 * 3600.0, gt=0)
    # Limits.
    webhook_max_endpoints_per_user: int = Field(default=20, ge=1)
    webhook_max_url_length: int = Field(default=2048, ge=16)
    # Delivery workers: POSTs in flight per process, and how often they look for due work
    # when nothing wakes them.
    webhook_concurrency: int = Field(default=16, ge=1)
    webhook_poll_interval_s: float = Field(default=1.0, gt=0)
    # A claimed delivery is retried if its worker died: after the timeout plus this margin.
    webhook_lease_margin_s: float = Field(default=30.0, gt=0)
    webhook_db_pool_size: int = Field(default=5, ge=1)
    # Event intake: bus messages handled at once.
    webhook_intake_prefetch: int = Field(default=32, ge=1)
