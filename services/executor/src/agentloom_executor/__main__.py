"""`python -m agentloom_executor {api,scheduler,runner,migrate}`."""

from __future__ import annotations

import argparse
import asyncio

from agentloom_common import process
from agentloom_common.grpc_server import wait_for_shutdown_signal
from agentloom_common.logging import setup_logging
from agentloom_common.migrations import upgrade
from agentloom_executor.server import (
    infra,
    start_api,
    start_health,
    start_runner,
    start_scheduler,
)
from agentloom_executor.settings import ExecutorSettings
from agentloom_executor.tables import SCHEMA


async def run_role(role: str, settings: ExecutorSettings) -> None:
    async with infra(settings) as shared:
        if role == "api":
            api = await start_api(settings, shared)
            process.started()
            await wait_for_shutdown_signal()
            await api.stop(settings.shutdown_grace_s)
        elif role == "scheduler":
            await start_scheduler(settings, shared)
            probe = await start_health(settings)
            process.started()
            await wait_for_shutdown_signal()
            await probe.stop()
        else:
            runner, channels = await start_runner(settings, shared)
            probe = await start_health(settings)
            process.started()
            await wait_for_shutdown_signal()
            await probe.health.enter_graceful_shutdown()
            await runner.drain(settings.shutdown_grace_s)
            await probe.stop()
            for channel in channels:
                await channel.close()


def main() -> None:
    parser = argparse.ArgumentParser(prog="agentloom_executor")
    parser.add_argument("role", choices=["api", "scheduler", "runner", "migrate"])
    args = parser.parse_args()
    settings = ExecutorSettings()
    setup_logging(f"executor-{args.role}", settings.log_level)
    if args.role == "migrate":
        upgrade(settings.database_url, "agentloom_executor", SCHEMA)
        return
    if args.role in ("scheduler", "runner"):
        process.lower_priority(settings.worker_niceness)
    asyncio.run(run_role(args.role, settings))


if __name__ == "__main__":
    main()
