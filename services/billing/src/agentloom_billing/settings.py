"""Settings of the billing service (`AGENTLOOM_*` environment variables)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from agentloom_common.settings import ServiceSettings


class BillingSettings(ServiceSettings):
    listen_addr: str = "127.0.0.1:50053"
    # Credits a new user's account opens with (recorded as a `grant` ledger row).
    starting_grant: int = Field(default=1000, ge=0)
    # Connections kept per process (as many again may overflow under load).
    database_pool_size: int = Field(default=10, ge=1)
    # Credits a user may be charged per UTC day, net of refunds (None: no cap); a user's
    # own cap (SetDailyCap) replaces it.
    daily_cap: int | None = Field(default=None, ge=0)
    # The cost table (YAML, see costs.yaml); None: the one shipped with the service.
    cost_table_path: Path | None = None
