"""What the deployment files must agree with: the repository's packages and the settings."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO_ROOT


@pytest.fixture(scope="session")
def settings_env() -> frozenset[str]:
    """Every environment variable a deployment may set on an Agentloom container."""
    return frozenset(
        {
            "AGENTLOOM_DATABASE_URL",
            "AGENTLOOM_AMQP_URL",
            "AGENTLOOM_REDIS_URL",
            "AGENTLOOM_GRAPHS_ADDR",
            "AGENTLOOM_BLOCKS_ADDR",
            "AGENTLOOM_BILLING_ADDR",
            "AGENTLOOM_EXECUTOR_ADDR",
            "AGENTLOOM_NOTIFY_ADDR",
            "AGENTLOOM_LISTEN_ADDR",
            "AGENTLOOM_HOST",
            "AGENTLOOM_PORT",
            "OPENAI_BASE_URL",
            "OPENAI_API_KEY",
            "AGENTLOOM_API_KEY_PEPPER",
            "AGENTLOOM_NOTIFY_WS_URL",
            "AGENTLOOM_INTERNAL_TOKEN",
            "AGENTLOOM_WS_HOST",
            "AGENTLOOM_WS_PORT",
            "AGENTLOOM_WEBHOOK_SECRET_KEYS",
            "AGENTLOOM_WEBHOOK_SECRET_KEY_CURRENT",
        }
    )


@pytest.fixture(scope="session")
def service_packages(repo_root: Path) -> dict[str, Path]:
    """`agentloom_<svc>` -> its folder, for each services/<svc>/src/agentloom_<svc>."""
    return {
        path.name: path
        for path in sorted(repo_root.glob("services/*/src/agentloom_*"))
        if path.is_dir() and path.name == f"agentloom_{path.parents[1].name}"
    }


@pytest.fixture(scope="session")
def subcommands() -> dict[str, frozenset[str]]:
    """The commands `python -m <package>` accepts, by package (others: serve and migrate)."""
    return {"agentloom_executor": frozenset({"api", "scheduler", "runner", "migrate"})}


@pytest.fixture(scope="session")
def schema_owners() -> frozenset[str]:
    """Packages that own a database schema, so must migrate before they serve.

    blocks keeps its catalog in code: its `migrate` does nothing, so nothing waits for it.
    """
    return frozenset(
        {
            "agentloom_gateway",
            "agentloom_graphs",
            "agentloom_billing",
            "agentloom_executor",
            "agentloom_notify",
        }
    )
