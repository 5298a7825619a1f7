"""Wiring of schedules into the executor's roles: the ScheduleService in the `api` process
(next to the executions API), the firing loop in every `scheduler` process."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import grpc

from agentloom.executor.v1 import schedules_pb2
from agentloom.graphs.v1 import graphs_pb2_grpc, presets_pb2_grpc
from agentloom_blocks.registry import load_blocks
from agentloom_common.grpc_client import create_channel
from agentloom_executor.schedule_firing import FiringOptions, ScheduleFirer
from agentloom_executor.schedules_servicer import ScheduleLimits, ScheduleServicer
from agentloom_executor.settings import ExecutorSettings

if TYPE_CHECKING:
    from agentloom_executor.server import Infra

SCHEDULE_SERVICE_NAME = schedules_pb2.DESCRIPTOR.services_by_name["ScheduleService"].full_name


def schedule_servicer(
    infra: Infra, settings: ExecutorSettings, graphs: grpc.aio.Channel
) -> ScheduleServicer:
    """The servicer; `graphs` is the graphs service's channel (graphs and presets)."""
    return ScheduleServicer(
        infra.sessions,
        graphs_pb2_grpc.GraphsServiceStub(graphs),
        presets_pb2_grpc.PresetServiceStub(graphs),
        load_blocks(),
        ScheduleLimits(
            min_interval_s=settings.schedule_min_interval_s,
            max_per_user=settings.max_schedules_per_user,
        ),
    )


def start_schedule_firing(settings: ExecutorSettings, infra: Infra) -> None:
    """Run the firing loop in the background of this scheduler process."""
    infra.background.append(asyncio.create_task(_fire_forever(settings, infra)))


async def _fire_forever(settings: ExecutorSettings, infra: Infra) -> None:
    channel = create_channel(settings.graphs_addr, deadline_s=settings.grpc_deadline_s)
    firer = ScheduleFirer(
        infra.sessions,
        infra.outbox,
        graphs_pb2_grpc.GraphsServiceStub(channel),
        presets_pb2_grpc.PresetServiceStub(channel),
        load_blocks(),
        infra.topology,
        FiringOptions(
            poll_interval_s=settings.schedule_poll_interval_s,
            missed_grace_s=settings.schedule_missed_grace_s,
        ),
    )
    try:
        await firer.run()
    finally:
        await channel.close()
