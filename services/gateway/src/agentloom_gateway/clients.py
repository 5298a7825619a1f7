"""gRPC channels and stubs of the services behind the gateway, opened once per app."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import cast

import grpc

from agentloom.billing.v1 import billing_pb2_grpc
from agentloom.blocks.v1 import blocks_pb2_grpc
from agentloom.executor.v1 import executor_pb2_grpc, schedules_pb2_grpc
from agentloom.graphs.v1 import graphs_pb2_grpc, presets_pb2_grpc
from agentloom.notify.v1 import webhooks_pb2_grpc
from agentloom_common.grpc_client import create_channel
from agentloom_gateway.balance import BalanceGate
from agentloom_gateway.settings import GatewaySettings


@dataclass
class Services:
    """One stub per downstream service; every call carries a deadline and the request id."""

    graphs: graphs_pb2_grpc.GraphsServiceAsyncStub
    blocks: blocks_pb2_grpc.BlocksServiceAsyncStub
    billing: billing_pb2_grpc.BillingServiceAsyncStub
    executions: executor_pb2_grpc.ExecutionsServiceAsyncStub
    # Served by the graphs process, on the graphs channel.
    presets: presets_pb2_grpc.PresetServiceAsyncStub
    # Served by the executor's api process, on the executor channel.
    schedules: schedules_pb2_grpc.ScheduleServiceAsyncStub
    # Outgoing webhooks, served by the notify process.
    webhooks: webhooks_pb2_grpc.WebhookServiceAsyncStub
    channels: tuple[grpc.aio.Channel, ...]
    # Billing's "any credit left?" before a start, a yes remembered briefly (balance.py).
    balance: BalanceGate = field(init=False)
    balance_cache_s: float = 0.0
    balance_cache_min: int = 0

    def __post_init__(self) -> None:
        self.balance = BalanceGate(
            self.billing, cache_s=self.balance_cache_s, min_balance=self.balance_cache_min
        )

    async def close(self) -> None:
        for channel in self.channels:
            await channel.close()


def open_services(settings: GatewaySettings) -> Services:
    """Channels connect lazily, so the gateway starts even while a service is down."""
    deadline = settings.grpc_deadline_s
    graphs = create_channel(settings.graphs_addr, deadline_s=deadline)
    blocks = create_channel(settings.blocks_addr, deadline_s=deadline)
    billing = create_channel(settings.billing_addr, deadline_s=deadline)
    executor = create_channel(settings.executor_addr, deadline_s=deadline)
    notify = create_channel(settings.notify_addr, deadline_s=deadline)
    # grpc ships no type hints, so the stubs' overloads cannot see these are aio channels.
    return Services(
        graphs=cast(
            "graphs_pb2_grpc.GraphsServiceAsyncStub", graphs_pb2_grpc.GraphsServiceStub(graphs)
        ),
        blocks=cast(
            "blocks_pb2_grpc.BlocksServiceAsyncStub", blocks_pb2_grpc.BlocksServiceStub(blocks)
        ),
        billing=cast(
            "billing_pb2_grpc.BillingServiceAsyncStub", billing_pb2_grpc.BillingServiceStub(billing)
        ),
        executions=cast(
            "executor_pb2_grpc.ExecutionsServiceAsyncStub",
            executor_pb2_grpc.ExecutionsServiceStub(executor),
        ),
        webhooks=cast(
            "webhooks_pb2_grpc.WebhookServiceAsyncStub",
            webhooks_pb2_grpc.WebhookServiceStub(notify),
        ),
        channels=(graphs, blocks, billing, executor, notify),
        schedules=cast(
            "schedules_pb2_grpc.ScheduleServiceAsyncStub",
            schedules_pb2_grpc.ScheduleServiceStub(executor),
        ),
        presets=cast(
            "presets_pb2_grpc.PresetServiceAsyncStub", presets_pb2_grpc.PresetServiceStub(graphs)
        ),
        balance_cache_s=settings.balance_cache_s,
        balance_cache_min=settings.balance_cache_min,
    )
