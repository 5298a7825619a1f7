from __future__ import annotations

from agentloom_common.settings import ServiceSettings


class NotifySettings(ServiceSettings):
    listen_addr: str = "127.0.0.1:50055"
