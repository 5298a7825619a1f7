from __future__ import annotations

from agentloom_common.settings import ServiceSettings


class GraphsSettings(ServiceSettings):
    listen_addr: str = "127.0.0.1:50051"
    db_pool_size: int = 10
    # How long a fetched block catalog is used before it is fetched again.
    catalog_ttl_s: float = 30.0
    # How long the last catalog keeps serving while the blocks service cannot be reached.
    catalog_max_stale_s: float = 600.0
    # How long a change's announcement on the bus (changes.py) may hold up the call that
    # made the change before it is given up (logged; listeners re-check within seconds).
    announce_timeout_s: float = 1.0
