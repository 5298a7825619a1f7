"""Runs the whole platform locally: every service its own process, on the local PostgreSQL,
RabbitMQ and Redis, in a database and vhost of the stack's own.

Used by `make run` (the dev stack, fixed ports) and by the end-to-end tests (fresh names
and free ports, so they never touch a running dev stack).
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import secrets
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import httpx
from grpc_health.v1 import health_pb2, health_pb2_grpc

from agentloom_common.migrations import upgrade
from agentloom_devkit import resources
from agentloom_devkit.child import PARENT_PID_ENV

# Every service that owns a schema, in the order `make run` migrates them.
MIGRATIONS = (
    ("agentloom_gateway", "identity"),
    ("agentloom_graphs", "graphs"),
    ("agentloom_billing", "billing"),
    ("agentloom_executor", "executor"),
    ("agentloom_notify", "notify"),
)


# Listening ports are drawn from here, below the kernel's ephemeral range (read at use).
LISTEN_PORTS_FROM = 10_000
_random = random.SystemRandom()


def ephemeral_ports() -> tuple[int, int]:
    """The kernel's range of local ports for outgoing connections (and for binding to 0)."""
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return 32768, 60999


def free_port(taken: set[int] | None = None) -> int:
    """A port nothing listens on now, below the ephemeral range. A port the kernel picks
    (binding to 0) comes from that range, where every outgoing connection a service makes
    before it listens (its database and bus pools) may take it as its local port: the
    service then fails to start (seen once this session: notify exited as an e2e stack
    started)."""
    low, _high = ephemeral_ports()
    for _ in range(200):
        if low <= LISTEN_PORTS_FROM:
            break
        port = _random.randrange(LISTEN_PORTS_FROM, low)
        if taken and port in taken:
            continue
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
        return port
    with socket.socket() as sock:  # no room below the range: let the kernel choose
        sock.bind(("127.0.0.1", 0))
        chosen: int = sock.getsockname()[1]
        return chosen


@dataclass
class Ports:
    gateway: int = 8000
    graphs: int = 50051
    blocks: int = 50052
    billing: int = 50053
    executor: int = 50054
    notify: int = 50055
    # The gateway's internal credentials service (gRPC), which runners call.
    credentials: int = 50056
    # Notify's WebSocket server (clients reach it through the gateway's /ws).
    notify_ws: int = 8002

    @classmethod
    def free(cls) -> Ports:
        taken: set[int] = set()
        for _ in range(8):
            taken.add(free_port(taken))
        return cls(*taken)


@dataclass
class StackConfig:
    database: str
    vhost: str
    ports: Ports = field(default_factory=Ports)
    runners: int = 2
    schedulers: int = 1
    log_dir: Path = Path(".agentloom/logs")
    # When None, the platform's LLM default comes from OPENAI_BASE_URL / OPENAI_API_KEY.
    openai_base_url: str | None = None
    openai_api_key: str | None = None
    extra_env: dict[str, str] = field(default_factory=dict)


@dataclass
class ServiceProcess:
    name: str
    args: list[str]
    process: subprocess.Popen[bytes] | None = None


class Stack:
    def __init__(self, config: StackConfig) -> None:
        self.config = config
        self.processes: list[ServiceProcess] = []
        # Between the gateway and notify's WebSocket server: fresh for every stack.
        self.internal_token = os.environ.get("AGENTLOOM_INTERNAL_TOKEN") or secrets.token_urlsafe(
            32
        )

    @property
    def gateway_url(self) -> str:
        return f"http://127.0.0.1:{self.config.ports.gateway}"

    @property
    def database_url(self) -> str:
        return resources.database_url(self.config.database)

    def env(self) -> dict[str, str]:
        ports = self.config.ports
        env = dict(os.environ)
        env.update(
            {
                "AGENTLOOM_DATABASE_URL": self.database_url,
                "AGENTLOOM_AMQP_URL": resources.amqp_url(self.config.vhost),
                "AGENTLOOM_GRAPHS_ADDR": f"127.0.0.1:{ports.graphs}",
                "AGENTLOOM_BLOCKS_ADDR": f"127.0.0.1:{ports.blocks}",
                "AGENTLOOM_BILLING_ADDR": f"127.0.0.1:{ports.billing}",
                "AGENTLOOM_EXECUTOR_ADDR": f"127.0.0.1:{ports.executor}",
                "AGENTLOOM_NOTIFY_ADDR": f"127.0.0.1:{ports.notify}",
                "AGENTLOOM_CREDENTIALS_GRPC_ADDR": f"127.0.0.1:{ports.credentials}",
                "AGENTLOOM_WS_PORT": str(ports.notify_ws),
                "AGENTLOOM_NOTIFY_WS_URL": f"ws://127.0.0.1:{ports.notify_ws}",
                "AGENTLOOM_INTERNAL_TOKEN": self.internal_token,
                "AGENTLOOM_EVENTS_CHANNEL_PREFIX": f"agentloom:{self.config.database}:events:",
                "AGENTLOOM_HOST": "127.0.0.1",
                "AGENTLOOM_PORT": str(ports.gateway),
                "PYTHONUNBUFFERED": "1",
            }
        )
        if self.config.openai_base_url is not None:
            env["OPENAI_BASE_URL"] = self.config.openai_base_url
        if self.config.openai_api_key is not None:
            env["OPENAI_API_KEY"] = self.config.openai_api_key
        env.update(self.config.extra_env)
        return env

    def _services(self) -> list[ServiceProcess]:
        services = [
            ServiceProcess("blocks", ["agentloom_blocks", "serve"]),
            ServiceProcess("graphs", ["agentloom_graphs", "serve"]),
            ServiceProcess("billing", ["agentloom_billing", "serve"]),
            ServiceProcess("notify", ["agentloom_notify", "serve"]),
            ServiceProcess("executor-api", ["agentloom_executor", "api"]),
        ]
        services += [
            ServiceProcess(
                "scheduler" if i == 0 else f"scheduler-{i + 1}", ["agentloom_executor", "scheduler"]
            )
            for i in range(self.config.schedulers)
        ]
        services += [
            ServiceProcess(f"runner-{i + 1}", ["agentloom_executor", "runner"])
            for i in range(self.config.runners)
        ]
        services.append(ServiceProcess("gateway", ["agentloom_gateway", "serve"]))
        return services

    def _listen_env(self, name: str) -> dict[str, str]:
        ports = self.config.ports
        by_name = {
            "blocks": ports.blocks,
            "graphs": ports.graphs,
            "billing": ports.billing,
            "notify": ports.notify,
            "executor-api": ports.executor,
        }
        # The scheduler and runners serve only health checks: any free port will do.
        port = by_name.get(name, 0)
        return {"AGENTLOOM_LISTEN_ADDR": f"127.0.0.1:{port}"}

    async def prepare(self) -> None:
        """Create the database and vhost if missing, and run every service's migrations
        (the same code as each service's `migrate` command, in this process: faster)."""
        await resources.create_database(self.config.database)
        await asyncio.to_thread(resources.create_vhost, self.config.vhost)
        for package, schema in MIGRATIONS:
            await asyncio.to_thread(upgrade, self.database_url, package, schema)

    async def run_module(self, args: list[str]) -> str:
        """Run `python -m <args>` with the stack's environment; returns its stdout."""
        return await self._run_command(args, self.env())

    async def _run_command(self, args: list[str], env: dict[str, str]) -> str:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            *args,
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        stdout, stderr = await process.communicate()
        if process.returncode != 0:
            raise RuntimeError(f"`python -m {' '.join(args)}` failed:\n{stderr.decode()[-4000:]}")
        return stdout.decode()

    async def start(self, timeout_s: float = 60.0) -> None:
        """Start every service as its own process and wait until each reports healthy."""
        self.spawn()
        await self.wait_healthy(timeout_s)

    def spawn(self) -> None:
        self.config.log_dir.mkdir(parents=True, exist_ok=True)
        for service in self._services():
            self._launch(service)
            self.processes.append(service)

    def _launch(self, service: ServiceProcess) -> None:
        log = (self.config.log_dir / f"{service.name}.log").open("ab")
        service.process = subprocess.Popen(
            # The child asks to die with this process itself (agentloom_devkit.child).
            [sys.executable, "-m", "agentloom_devkit.child", *service.args],
            env={
                **self.env(),
                **self._listen_env(service.name),
                PARENT_PID_ENV: str(os.getpid()),
            },
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()

    def kill(self, name: str, sig: signal.Signals = signal.SIGKILL) -> None:
        """Send a signal to one service (SIGKILL by default) and, if it ends, reap it."""
        process = self.process(name)
        process.send_signal(sig)
        if sig in (signal.SIGKILL, signal.SIGTERM, signal.SIGINT):
            process.wait(30)

    def respawn(self, name: str) -> None:
        """Start a service again (after a kill), with the same arguments and environment."""
        for service in self.processes:
            if service.name == name:
                self._launch(service)
                return
        raise KeyError(name)

    def names(self, prefix: str) -> list[str]:
        return [s.name for s in self.processes if s.name.startswith(prefix)]

    async def wait_healthy(self, timeout_s: float) -> None:
        ports = self.config.ports
        deadline = time.monotonic() + timeout_s
        for port in (ports.blocks, ports.graphs, ports.billing, ports.notify, ports.executor):
            await self._wait_grpc(port, deadline)
        async with httpx.AsyncClient() as client:
            while True:
                self.check_alive()
                try:
                    response = await client.get(f"{self.gateway_url}/readyz", timeout=2)
                    if response.status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline:
                    raise TimeoutError("the gateway did not become ready")
                await asyncio.sleep(0.2)
        # The scheduler and runners have no port: give them a moment to attach to the bus.
        await asyncio.sleep(0.5)
        self.check_alive()

    async def _wait_grpc(self, port: int, deadline: float) -> None:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = health_pb2_grpc.HealthStub(channel)
            while True:
                self.check_alive()
                try:
                    reply = await stub.Check(health_pb2.HealthCheckRequest(), timeout=1)
                    if reply.status == health_pb2.HealthCheckResponse.SERVING:
                        return
                except grpc.aio.AioRpcError:
                    pass
                if time.monotonic() > deadline:
                    raise TimeoutError(f"the service on port {port} did not become healthy")
                await asyncio.sleep(0.2)

    def check_alive(self) -> None:
        for service in self.processes:
            if service.process is not None and service.process.poll() is not None:
                raise RuntimeError(
                    f"service {service.name} exited with {service.process.returncode}:\n"
                    + self.log_tail(service.name)
                )

    def log_tail(self, name: str, lines: int = 40) -> str:
        path = self.config.log_dir / f"{name}.log"
        if not path.exists():
            return ""
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])

    def process(self, name: str) -> subprocess.Popen[bytes]:
        for service in self.processes:
            if service.name == name and service.process is not None:
                return service.process
        raise KeyError(name)

    def stop(self, timeout_s: float = 10.0) -> None:
        """SIGTERM every service (graceful stop), SIGKILL what is left after the timeout."""
        for service in self.processes:
            if service.process is not None and service.process.poll() is None:
                service.process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout_s
        for service in self.processes:
            if service.process is None:
                continue
            try:
                service.process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                service.process.kill()
                service.process.wait()
        self.processes.clear()

    async def create_user(self, email: str, name: str) -> tuple[str, str]:
        """A user and an API key for them, through the gateway's own admin commands."""
        env = self.env()
        user = json.loads(
            await self._run_command(
                ["agentloom_gateway", "create-user", "--email", email, "--name", name], env
            )
        )
        key = json.loads(
            await self._run_command(
                [
                    "agentloom_gateway",
                    "create-api-key",
                    "--user-id",
                    user["user_id"],
                    "--name",
                    "default",
                ],
                env,
            )
        )
        return str(user["user_id"]), str(key["api_key"])
