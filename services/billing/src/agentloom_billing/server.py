"""Wiring of the billing service: database, ledger servicer, health, graceful stop."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import grpc
from grpc_health.v1 import health
from sqlalchemy.ext.asyncio import AsyncEngine

from agentloom.billing.v1 import billing_pb2, billing_pb2_grpc
from agentloom_billing.costs import load_cost_table
from agentloom_billing.ledger import Ledger
from agentloom_billing.servicer import BillingServicer
from agentloom_billing.settings import BillingSettings
from agentloom_common import process
from agentloom_common.db import create_engine, create_session_factory, warm_pool
from agentloom_common.grpc_server import create_server, graceful_stop, wait_for_shutdown_signal

log = logging.getLogger(__name__)

SERVICE_NAME = billing_pb2.DESCRIPTOR.services_by_name["BillingService"].full_name


@dataclass
class RunningServer:
    server: grpc.aio.Server
    port: int
    health: health.aio.HealthServicer
    engine: AsyncEngine

    async def stop(self, grace_s: float = 1.0) -> None:
        """Finish in-flight calls within grace_s, then close the database pool."""
        await graceful_stop(self.server, self.health, grace_s)
        await self.engine.dispose()


async def start(settings: BillingSettings) -> RunningServer:
    """Start serving on `settings.listen_addr` (port 0 picks a free port).

    The schema must already be migrated (`python -m agentloom_billing migrate`).
    """
    costs = load_cost_table(settings.cost_table_path)  # a bad table fails the start
    engine = create_engine(settings.database_url, pool_size=settings.database_pool_size)
    await warm_pool(engine)
    ledger = Ledger(
        create_session_factory(engine),
        starting_grant=settings.starting_grant,
        costs=costs,
        daily_cap=settings.daily_cap,
    )
    servicer = BillingServicer(ledger)
    try:
        server, port, health_servicer = await create_server(
            [lambda s: billing_pb2_grpc.add_BillingServiceServicer_to_server(servicer, s)],
            service_names=[SERVICE_NAME],
            address=settings.listen_addr,
        )
    except BaseException:
        await engine.dispose()
        raise
    return RunningServer(server, port, health_servicer, engine)


async def serve(settings: BillingSettings) -> None:
    running = await start(settings)
    log.info("billing serving", extra={"fields": {"port": running.port}})
    process.started()
    await wait_for_shutdown_signal()
    await running.stop(settings.shutdown_grace_s)
