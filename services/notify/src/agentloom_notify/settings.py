from __future__ import annotations

from agentloom_notify.webhooks.settings import WebhookSettings


class NotifySettings(WebhookSettings):  # webhook_* settings: webhooks/settings.py
    listen_addr: str = "127.0.0.1:50055"
    # The WebSocket server, reached by clients through the gateway's `/ws`.
    ws_host: str = "127.0.0.1"
    ws_port: int = 8002
    # Shared with the gateway: the WebSocket server accepts only connections it forwards.
    # Unset: every connection is refused (fail closed).
    internal_token: str | None = None
    # Redis channels of live events, one per user: "<prefix><user id>".
    events_channel_prefix: str = "agentloom:events:"
    # Per connection: messages waiting to be sent before a client is cut off as slow, and
    # how long one send may block.
    ws_send_queue: int = 1000
    ws_send_timeout_s: float = 10.0
    ws_heartbeat_s: float = 15.0
    ws_max_subscriptions: int = 100
    ws_max_message_bytes: int = 65_536
