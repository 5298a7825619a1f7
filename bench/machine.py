"""What the figures were measured on: cores, CPU, and the versions of everything involved."""

from __future__ import annotations

import os
import platform
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any

import asyncpg
import psutil
import redis

from agentloom_devkit.resources import ADMIN_DSN


def _command(*args: str) -> str:
    try:
        result = subprocess.run(args, capture_output=True, text=True, timeout=30, check=True)
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return result.stdout.strip() or "unknown"


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


async def machine_info() -> dict[str, Any]:
    connection = await asyncpg.connect(ADMIN_DSN)
    try:
        postgres = str(await connection.fetchval("SHOW server_version"))
    finally:
        await connection.close()
    store = redis.Redis(host="127.0.0.1", port=6379)
    try:
        redis_version = str(store.info("server").get("redis_version", "unknown"))
    finally:
        store.close()
    return {
        "cores": os.cpu_count(),
        "physical_cores": psutil.cpu_count(logical=False),
        "cpu": _cpu_model(),
        "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "os": platform.platform(),
        "python": platform.python_version(),
        "rabbitmq": _command("rabbitmqctl", "-q", "version"),
        "postgresql": postgres.split()[0],
        "redis": redis_version,
        "celery": _version("celery"),
        "commit": _command("git", "rev-parse", "--short", "HEAD"),
    }
