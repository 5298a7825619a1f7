"""docker-compose.yml: valid per the Compose Specification, and consistent with the repository.

No Docker engine runs here, so the file is checked, not run: against the official compose-spec
JSON Schema (vendored in schemas/), then for what a schema cannot see (dependencies that
exist, commands that name real packages, addresses that point at the right container).
Each check returns its problems; the tests at the end prove each check can fail.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jsonschema
import pytest
import yaml

HERE = Path(__file__).resolve().parent
SCHEMA_FILE = HERE / "schemas" / "compose-spec.json"

IMAGE = "agentloom:dev"
HEALTHCHECK_SCRIPT = "/opt/agentloom/healthcheck.py"
INFRA_IMAGES = {
    "postgres": "postgres:15",
    "redis": "redis:7",
    "rabbitmq": "rabbitmq:3.13-management",
}
# Which setting names which server, and the package that must serve it.
ADDRESS_SETTINGS = {
    "AGENTLOOM_GRAPHS_ADDR": ("agentloom_graphs", "serve"),
    "AGENTLOOM_BLOCKS_ADDR": ("agentloom_blocks", "serve"),
    "AGENTLOOM_BILLING_ADDR": ("agentloom_billing", "serve"),
    "AGENTLOOM_EXECUTOR_ADDR": ("agentloom_executor", "api"),
    "AGENTLOOM_NOTIFY_ADDR": ("agentloom_notify", "serve"),
}
URL_SETTINGS = {
    "AGENTLOOM_DATABASE_URL": ("postgres", {"postgresql+asyncpg"}, 5432),
    "AGENTLOOM_AMQP_URL": ("rabbitmq", {"amqp", "amqps"}, 5672),
    "AGENTLOOM_REDIS_URL": ("redis", {"redis", "rediss"}, 6379),
}

Compose = dict[str, Any]


# ---- reading ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def compose(repo_root: Path) -> Compose:
    with (repo_root / "docker-compose.yml").open() as f:
        document = yaml.safe_load(f)
    assert isinstance(document, dict)
    return document


@pytest.fixture(scope="module")
def compose_schema() -> dict[str, Any]:
    schema: dict[str, Any] = json.loads(SCHEMA_FILE.read_text())
    return schema


def command_of(service: dict[str, Any]) -> tuple[str, str] | None:
    """(package, subcommand) of `python -m <package> [<subcommand>]`, or None for another form."""
    command = service.get("command")
    if (
        not isinstance(command, list)
        or len(command) not in (3, 4)
        or command[:2] != ["python", "-m"]
    ):
        return None
    return str(command[2]), str(command[3]) if len(command) == 4 else "serve"


def agentloom_services(compose: Compose) -> dict[str, dict[str, Any]]:
    return {
        name: service
        for name, service in compose["services"].items()
        if service.get("image") == IMAGE or "build" in service
    }


def environment_of(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    return {str(key): "" if value is None else str(value) for key, value in env.items()}


def depends_on(service: dict[str, Any]) -> dict[str, str]:
    """Dependency -> condition (the short list form means service_started)."""
    deps = service.get("depends_on") or {}
    if isinstance(deps, list):
        return dict.fromkeys(deps, "service_started")
    return {name: spec.get("condition", "service_started") for name, spec in deps.items()}


def is_one_shot(service: dict[str, Any]) -> bool:
    return str(service.get("restart", "no")) == "no"


def port_of(address: str) -> int:
    return int(address.rsplit(":", 1)[1])


# ---- checks -----------------------------------------------------------------------------------


def schema_problems(compose: Compose, schema: dict[str, Any]) -> list[str]:
    validator_class = jsonschema.validators.validator_for(schema)
    validator = validator_class(schema)
    return [
        f"{'/'.join(map(str, error.absolute_path)) or '<root>'}: {error.message}"
        for error in sorted(validator.iter_errors(compose), key=lambda e: list(map(str, e.path)))
    ]


def dependency_problems(compose: Compose) -> list[str]:
    services = compose["services"]
    problems = []
    for name, service in services.items():
        for dep, condition in depends_on(service).items():
            if dep not in services:
                problems.append(f"{name} depends on {dep}, which is not a service")
            elif condition == "service_healthy" and "healthcheck" not in services[dep]:
                problems.append(f"{name} waits for {dep} to be healthy, but it has no healthcheck")
            elif condition == "service_completed_successfully" and not is_one_shot(services[dep]):
                problems.append(f"{name} waits for {dep} to complete, but {dep} restarts")
    # A cycle would keep `docker compose up` from ever starting its members.
    visiting: set[str] = set()
    done: set[str] = set()

    def visit(name: str, path: list[str]) -> None:
        if name in done or name not in services:
            return
        if name in visiting:
            problems.append(f"dependency cycle: {' -> '.join([*path, name])}")
            return
        visiting.add(name)
        for dep in depends_on(services[name]):
            visit(dep, [*path, name])
        visiting.discard(name)
        done.add(name)

    for name in services:
        visit(name, [])
    return problems


def command_problems(
    compose: Compose, packages: dict[str, Path], subcommands: dict[str, frozenset[str]]
) -> list[str]:
    problems = []
    for name, service in agentloom_services(compose).items():
        parsed = command_of(service)
        if parsed is None:
            problems.append(f"{name}: command is not ['python', '-m', 'agentloom_<svc>', ...]")
            continue
        package, subcommand = parsed
        if package not in packages:
            problems.append(f"{name}: {package} is no package under services/<svc>/src/")
        allowed = subcommands.get(package, frozenset({"serve", "migrate"}))
        if subcommand not in allowed:
            problems.append(f"{name}: {package} has no command {subcommand!r}")
        if service.get("image") != IMAGE:
            problems.append(f"{name}: runs image {service.get('image')!r}, not {IMAGE}")
    return problems


def environment_problems(compose: Compose, settings_env: frozenset[str]) -> list[str]:
    services = compose["services"]
    agentloom = agentloom_services(compose)
    problems = []
    # Which container serves which (package, subcommand), and on which port.
    servers: dict[tuple[str, str], dict[str, int]] = {}
    for name, service in agentloom.items():
        listen = environment_of(service).get("AGENTLOOM_LISTEN_ADDR")
        parsed = command_of(service)
        if listen and parsed:
            servers.setdefault(parsed, {})[name] = port_of(listen)
    for name, service in agentloom.items():
        env = environment_of(service)
        for key in sorted(set(env) - settings_env):
            problems.append(f"{name}: {key} is not an Agentloom setting")
        for key in sorted(set(env) & set(ADDRESS_SETTINGS)):
            host, _, port = env[key].rpartition(":")
            expected = servers.get(ADDRESS_SETTINGS[key], {})
            if not port.isdigit() or expected.get(host) != int(port):
                problems.append(
                    f"{name}: {key}={env[key]}, but {' '.join(ADDRESS_SETTINGS[key])} "
                    f"listens on {expected or 'no container'}"
                )
        for key, (server, schemes, port) in URL_SETTINGS.items():
            if key not in env:
                continue
            url = urlsplit(env[key])
            if url.scheme not in schemes or url.hostname not in services:
                problems.append(f"{name}: {key} does not name a {server} container")
            elif INFRA_IMAGES.get(url.hostname) != INFRA_IMAGES[server] or url.port != port:
                problems.append(f"{name}: {key} points at {url.hostname}:{url.port}, not {server}")
        parsed = command_of(service)
        if parsed and parsed[1] != "migrate" and parsed[0] != "agentloom_gateway":
            if "AGENTLOOM_LISTEN_ADDR" not in env:
                problems.append(f"{name}: a gRPC process needs AGENTLOOM_LISTEN_ADDR")
            elif not env["AGENTLOOM_LISTEN_ADDR"].startswith("0.0.0.0:"):
                problems.append(f"{name}: listens on loopback only, unreachable from others")
        if parsed and parsed[0] == "agentloom_gateway" and parsed[1] == "serve":
            for key in ("AGENTLOOM_HOST", "AGENTLOOM_PORT", "AGENTLOOM_API_KEY_PEPPER"):
                if key not in env:
                    problems.append(f"{name}: the gateway needs {key}")
        if "AGENTLOOM_API_KEY_PEPPER" in env and parsed and parsed[0] != "agentloom_gateway":
            problems.append(f"{name}: only the gateway may see the API-key pepper")
    problems.extend(credential_problems(compose))
    return problems


def credential_problems(compose: Compose) -> list[str]:
    """The URLs' users, passwords and databases are the ones the servers are created with."""
    services = compose["services"]
    pg = environment_of(services.get("postgres", {}))
    mq = environment_of(services.get("rabbitmq", {}))
    problems = []
    for name, service in agentloom_services(compose).items():
        env = environment_of(service)
        if "AGENTLOOM_DATABASE_URL" in env:
            url = urlsplit(env["AGENTLOOM_DATABASE_URL"])
            if (url.username, url.password, url.path.lstrip("/")) != (
                pg.get("POSTGRES_USER"),
                pg.get("POSTGRES_PASSWORD"),
                pg.get("POSTGRES_DB"),
            ):
                problems.append(f"{name}: AGENTLOOM_DATABASE_URL disagrees with postgres' env")
        if "AGENTLOOM_AMQP_URL" in env:
            url = urlsplit(env["AGENTLOOM_AMQP_URL"])
            if (url.username, url.password, url.path.lstrip("/")) != (
                mq.get("RABBITMQ_DEFAULT_USER"),
                mq.get("RABBITMQ_DEFAULT_PASS"),
                mq.get("RABBITMQ_DEFAULT_VHOST"),
            ):
                problems.append(f"{name}: AGENTLOOM_AMQP_URL disagrees with rabbitmq's env")
    return problems


def healthcheck_problems(compose: Compose) -> list[str]:
    problems = []
    for name, service in compose["services"].items():
        if is_one_shot(service):
            continue
        test = (service.get("healthcheck") or {}).get("test")
        if not test or (service.get("healthcheck") or {}).get("disable"):
            problems.append(f"{name}: a long-running service needs a healthcheck")
            continue
        if name not in agentloom_services(compose):
            continue
        env = environment_of(service)
        if test[:3] != ["CMD", "python", HEALTHCHECK_SCRIPT]:
            problems.append(f"{name}: healthcheck should run {HEALTHCHECK_SCRIPT}")
        elif test[3] == "grpc":
            listen = env.get("AGENTLOOM_LISTEN_ADDR", "")
            if not listen or port_of(test[4]) != port_of(listen):
                problems.append(f"{name}: gRPC healthcheck {test[4]} is not the listen port")
        elif test[3] == "http":
            if urlsplit(test[4]).port != int(env.get("AGENTLOOM_PORT", "0")):
                problems.append(f"{name}: HTTP healthcheck {test[4]} is not AGENTLOOM_PORT")
        else:
            problems.append(f"{name}: healthcheck kind {test[3]!r} unknown")
    return problems


def migration_problems(compose: Compose, schema_owners: frozenset[str]) -> list[str]:
    services = agentloom_services(compose)
    migrators = {
        name: parsed[0]
        for name, service in services.items()
        if (parsed := command_of(service)) and parsed[1] == "migrate"
    }
    problems = []
    for name in migrators:
        if not is_one_shot(services[name]):
            problems.append(f"{name}: a migration must run once (restart: 'no')")
    for owner in sorted(schema_owners):
        if owner not in migrators.values():
            problems.append(f"no service migrates {owner}")
    for name, service in services.items():
        parsed = command_of(service)
        if not parsed or parsed[1] == "migrate" or parsed[0] not in schema_owners:
            continue
        waits_for = {
            migrators.get(dep)
            for dep, condition in depends_on(service).items()
            if condition == "service_completed_successfully"
        }
        if parsed[0] not in waits_for:
            problems.append(f"{name}: does not wait for `{parsed[0]} migrate` to complete")
    return problems


def hardening_problems(compose: Compose) -> list[str]:
    problems = []
    for name, service in agentloom_services(compose).items():
        user = str(service.get("user", ""))
        if not user or user.split(":")[0] in ("0", "root"):
            problems.append(f"{name}: must run as a non-root user")
        if service.get("read_only") is not True:
            problems.append(f"{name}: root filesystem must be read-only")
        if "ALL" not in (service.get("cap_drop") or []):
            problems.append(f"{name}: must drop all capabilities")
        if service.get("privileged"):
            problems.append(f"{name}: must not be privileged")
    return problems


# ---- the real file ----------------------------------------------------------------------------


def test_vendored_schema_is_the_compose_specification(compose_schema: dict[str, Any]) -> None:
    assert compose_schema["$id"] == "compose_spec.json"
    assert compose_schema["title"] == "Compose Specification"
    jsonschema.validators.validator_for(compose_schema).check_schema(compose_schema)


def test_compose_file_matches_compose_spec(
    compose: Compose, compose_schema: dict[str, Any]
) -> None:
    assert schema_problems(compose, compose_schema) == []


def test_dependencies_exist_and_can_be_met(compose: Compose) -> None:
    assert dependency_problems(compose) == []


def test_agentloom_containers_run_existing_packages(
    compose: Compose, service_packages: dict[str, Path], subcommands: dict[str, frozenset[str]]
) -> None:
    assert command_problems(compose, service_packages, subcommands) == []


def test_every_service_package_runs_somewhere(
    compose: Compose, service_packages: dict[str, Path], subcommands: dict[str, frozenset[str]]
) -> None:
    running = {
        parsed
        for service in agentloom_services(compose).values()
        if (parsed := command_of(service))
    }
    for package in service_packages:
        servers = subcommands.get(package, frozenset({"serve", "migrate"})) - {"migrate"}
        assert {(package, sub) for sub in servers} <= running, package


def test_environment_uses_known_settings_that_resolve(
    compose: Compose, settings_env: frozenset[str]
) -> None:
    assert environment_problems(compose, settings_env) == []


def test_long_running_services_have_matching_healthchecks(compose: Compose) -> None:
    assert healthcheck_problems(compose) == []


def test_services_wait_for_their_schema_migration(
    compose: Compose, schema_owners: frozenset[str]
) -> None:
    assert migration_problems(compose, schema_owners) == []


def test_agentloom_containers_are_hardened(compose: Compose) -> None:
    assert hardening_problems(compose) == []


def test_external_servers_use_the_agreed_images(compose: Compose) -> None:
    for name, image in INFRA_IMAGES.items():
        assert compose["services"][name]["image"] == image


def test_gateway_is_published_and_runners_are_replicated(compose: Compose) -> None:
    services = compose["services"]
    assert "8000:8000" in [str(port) for port in services["gateway"]["ports"]]
    published = [name for name, service in services.items() if service.get("ports")]
    assert set(published) <= {"gateway", "rabbitmq"}, "only the API (and local UIs) are published"
    assert command_of(services["executor-runner"]) == ("agentloom_executor", "runner")
    assert services["executor-runner"]["deploy"]["replicas"] == 2
    assert "container_name" not in services["executor-runner"], "replicas need generated names"


# ---- the checks can fail ----------------------------------------------------------------------

Mutation = Callable[[Compose], None]


def _set(path: str, value: Any) -> Mutation:
    def mutate(compose: Compose) -> None:
        *parents, last = path.split("/")
        node = compose
        for key in parents:
            node = node[key]
        node[last] = value

    return mutate


def _delete(path: str) -> Mutation:
    def mutate(compose: Compose) -> None:
        *parents, last = path.split("/")
        node = compose
        for key in parents:
            node = node[key]
        del node[last]

    return mutate


BROKEN: dict[str, tuple[Mutation, str]] = {
    "unknown service key": (_set("services/graphs/imagee", "x"), "schema"),
    "bad depends_on condition": (
        _set("services/graphs/depends_on/postgres/condition", "service_ready"),
        "schema",
    ),
    "missing dependency": (
        _set("services/gateway/depends_on/graphz", {"condition": "service_healthy"}),
        "dependency",
    ),
    "waits on restarting service": (
        _set("services/migrate-graphs/restart", "always"),
        "dependency",
    ),
    "dependency cycle": (
        _set("services/postgres/depends_on", {"gateway": {"condition": "service_started"}}),
        "dependency",
    ),
    "unknown package": (
        _set("services/notify/command", ["python", "-m", "agentloom_notifier", "serve"]),
        "command",
    ),
    "unknown subcommand": (
        _set("services/executor-runner/command", ["python", "-m", "agentloom_executor", "work"]),
        "command",
    ),
    "misspelt setting": (
        _set("services/graphs/environment/AGENTLOOM_DATABSE_URL", "postgresql+asyncpg://x"),
        "environment",
    ),
    "address to wrong port": (
        _set("services/gateway/environment/AGENTLOOM_GRAPHS_ADDR", "graphs:50052"),
        "environment",
    ),
    "address to wrong container": (
        _set("services/gateway/environment/AGENTLOOM_BILLING_ADDR", "blocks:50052"),
        "environment",
    ),
    "database on localhost": (
        _set(
            "services/graphs/environment/AGENTLOOM_DATABASE_URL",
            "postgresql+asyncpg://agentloom:agentloom@127.0.0.1:5432/agentloom",
        ),
        "environment",
    ),
    "wrong database password": (
        _set(
            "services/graphs/environment/AGENTLOOM_DATABASE_URL",
            "postgresql+asyncpg://agentloom:secret@postgres:5432/agentloom",
        ),
        "environment",
    ),
    "pepper outside the gateway": (
        _set("services/notify/environment/AGENTLOOM_API_KEY_PEPPER", "x"),
        "environment",
    ),
    "no healthcheck": (_delete("services/billing/healthcheck"), "healthcheck"),
    "healthcheck on wrong port": (
        _set(
            "services/billing/healthcheck/test",
            ["CMD", "python", HEALTHCHECK_SCRIPT, "grpc", "127.0.0.1:50051"],
        ),
        "healthcheck",
    ),
    "does not wait for migration": (
        _set("services/graphs/depends_on/migrate-graphs/condition", "service_started"),
        "migration",
    ),
    "runs as root": (_set("services/graphs/user", "0:0"), "hardening"),
    "writable root fs": (_set("services/graphs/read_only", False), "hardening"),
}


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_checks_reject_a_broken_compose_file(
    case: str,
    compose: Compose,
    compose_schema: dict[str, Any],
    service_packages: dict[str, Path],
    subcommands: dict[str, frozenset[str]],
    settings_env: frozenset[str],
    schema_owners: frozenset[str],
) -> None:
    mutate, check = BROKEN[case]
    broken = copy.deepcopy(compose)
    mutate(broken)
    checks: dict[str, Callable[[Compose], list[str]]] = {
        "schema": lambda c: schema_problems(c, compose_schema),
        "dependency": dependency_problems,
        "command": lambda c: command_problems(c, service_packages, subcommands),
        "environment": lambda c: environment_problems(c, settings_env),
        "healthcheck": healthcheck_problems,
        "migration": lambda c: migration_problems(c, schema_owners),
        "hardening": hardening_problems,
    }
    assert checks[check](broken) != []
