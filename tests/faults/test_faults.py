"""Faults injected into a running platform; every test ends with the checks C1-C7 and an
events check (G9: numbered 1..n without gap, published, ending in the final status).

Order matters only for C6: the dead-letter count is the poison injected so far, and only
the last test injects any.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import subprocess
import time

import aio_pika
from invariants import CHAIN, Batch

from agentloom_common.bus import JOBS_EXCHANGE, JOBS_ROUTING_KEY, SCHEDULER_EXCHANGE
from agentloom_devkit import resources


def _sh(*args: str) -> None:
    subprocess.run(args, check=True, capture_output=True, timeout=120)


async def test_sigkill_runners_repeatedly_during_a_batch(batch: Batch) -> None:
    starting = asyncio.create_task(batch.start(30))
    rng = random.Random(7)
    for _ in range(5):
        await asyncio.sleep(0.8)
        victim = rng.choice(batch.stack.names("runner"))
        batch.stack.kill(victim)
        batch.stack.respawn(victim)
    await starting
    await batch.check("SIGKILL a runner x5")


async def test_sigkill_the_scheduler(batch: Batch) -> None:
    starting = asyncio.create_task(batch.start(30))
    for name in batch.stack.names("scheduler"):
        await asyncio.sleep(0.7)
        batch.stack.kill(name)
        await asyncio.sleep(0.5)
        batch.stack.respawn(name)
    await starting
    await batch.check("SIGKILL each scheduler")


async def test_sigterm_drains_a_runner(batch: Batch) -> None:
    """G10: on SIGTERM a runner stops taking jobs, finishes or hands back what it runs,
    and exits within its grace period; nothing is lost."""
    starting = asyncio.create_task(batch.start(20))
    await asyncio.sleep(1.0)
    victim = batch.stack.names("runner")[0]
    began = time.monotonic()
    batch.stack.kill(victim, signal.SIGTERM)
    took = time.monotonic() - began
    assert batch.stack.process(victim).returncode == 0
    assert took < 15, f"the runner took {took:.1f}s to drain"
    batch.stack.respawn(victim)
    await starting
    await batch.check("SIGTERM a runner (drain)")


async def test_zombie_runner_past_its_lease(batch: Batch) -> None:
    await batch.start(20)
    await asyncio.sleep(0.6)
    zombie = batch.stack.names("runner")[0]
    batch.stack.kill(zombie, signal.SIGSTOP)
    await asyncio.sleep(6)  # lease 2 s, sweep every 0.5 s: its nodes are taken over
    batch.stack.kill(zombie, signal.SIGCONT)
    await batch.check("SIGSTOP a runner past its lease, then SIGCONT")


async def test_restart_rabbitmq(batch: Batch) -> None:
    graph = (await batch.client.post("/api/graphs", json=CHAIN)).json()
    await batch.start(20)
    await asyncio.sleep(0.5)
    _sh("rabbitmqctl", "stop_app")
    try:
        for i in range(3):
            await batch.post_during_outage(graph["id"], f"outage-{i}")
        await asyncio.sleep(2)
    finally:
        _sh("rabbitmqctl", "start_app")
    await batch.check("rabbitmqctl stop_app / start_app", timeout_s=180)


async def test_restart_postgresql(batch: Batch) -> None:
    await batch.start(20)
    await asyncio.sleep(0.5)
    cluster = sorted(os.listdir("/etc/postgresql"))[0]
    _sh("pg_ctlcluster", "--skip-systemctl-redirect", cluster, "main", "restart", "-m", "fast")
    await batch.check("PostgreSQL restart", timeout_s=180)


async def test_poison_messages_are_dead_lettered_and_nothing_else(batch: Batch) -> None:
    connection = await aio_pika.connect(resources.amqp_url(batch.stack.config.vhost))
    channel = await connection.channel()
    jobs = await channel.get_exchange(JOBS_EXCHANGE)
    scheduler = await channel.get_exchange(SCHEDULER_EXCHANGE)
    await jobs.publish(aio_pika.Message(b"not json"), JOBS_ROUTING_KEY)
    await jobs.publish(aio_pika.Message(b'{"type": "node.job"}'), JOBS_ROUTING_KEY)
    await scheduler.publish(aio_pika.Message(b"[]"), "p0")
    await connection.close()
    await batch.start(10)
    await batch.check("3 poison messages among 10 executions", poison=3)
