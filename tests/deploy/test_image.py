"""The Dockerfile, its .dockerignore, and the health-check script the image ships.

The image is not built here (no Docker engine); what can be checked without one is: the build
stages and their order, that the build context holds what the Dockerfile copies, and that the
health-check script really speaks gRPC health and HTTP (run against live local servers).
"""

from __future__ import annotations

import asyncio
import re
import socket
import sys
import tomllib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest
import yaml
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

HEALTHCHECK_SCRIPT = "/opt/agentloom/healthcheck.py"


# ---- Dockerfile parsing -----------------------------------------------------------------------


@dataclass(frozen=True)
class Instruction:
    keyword: str
    args: str


def parse_dockerfile(text: str) -> list[Instruction]:
    """Instructions in order, continuation lines joined and comment lines dropped."""
    instructions: list[Instruction] = []
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if line.startswith("#") or (not line and not pending):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        line = (pending + line).strip()
        pending = ""
        if line:
            keyword, _, args = line.partition(" ")
            instructions.append(Instruction(keyword.upper(), " ".join(args.split())))
    return instructions


def resolve_args(instructions: list[Instruction], value: str) -> str:
    """Substitute the global ARG defaults (those before the first FROM) into `value`."""
    defaults: dict[str, str] = {}
    for instruction in instructions:
        if instruction.keyword == "FROM":
            break
        if instruction.keyword == "ARG" and "=" in instruction.args:
            key, _, default = instruction.args.partition("=")
            defaults[key] = default
    return re.sub(r"\$\{?(\w+)\}?", lambda m: defaults.get(m.group(1), m.group(0)), value)


def stages(instructions: list[Instruction]) -> list[tuple[str, str, list[Instruction]]]:
    """(image, name, instructions) for every FROM."""
    result: list[tuple[str, str, list[Instruction]]] = []
    for instruction in instructions:
        if instruction.keyword == "FROM":
            words = [w for w in instruction.args.split() if not w.startswith("--")]
            name = words[2] if len(words) == 3 and words[1].upper() == "AS" else ""
            result.append((resolve_args(instructions, words[0]), name, []))
        elif result:
            result[-1][2].append(instruction)
    return result


def copy_parts(instruction: Instruction) -> tuple[dict[str, str], list[str], str]:
    """(flags, sources, destination) of a COPY."""
    words = instruction.args.split()
    flags = dict(w[2:].partition("=")[::2] for w in words if w.startswith("--"))
    paths = [w for w in words if not w.startswith("--")]
    return flags, paths[:-1], paths[-1]


@pytest.fixture(scope="module")
def dockerfile(repo_root: Path) -> list[Instruction]:
    return parse_dockerfile((repo_root / "Dockerfile").read_text())


def workspace_members(repo_root: Path) -> list[Path]:
    pyproject = tomllib.loads((repo_root / "pyproject.toml").read_text())
    members: list[Path] = []
    for pattern in pyproject["tool"]["uv"]["workspace"]["members"]:
        members.extend(
            p for p in sorted(repo_root.glob(pattern)) if (p / "pyproject.toml").exists()
        )
    return members


# ---- .dockerignore matching (Docker's rules: last matching pattern wins, parents count) ---------


def _pattern_regex(pattern: str) -> re.Pattern[str]:
    out = ""
    i = 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out += "(?:.*/)?"
            i += 3
        elif pattern.startswith("**", i):
            out += ".*"
            i += 2
        elif pattern[i] == "*":
            out += "[^/]*"
            i += 1
        elif pattern[i] == "?":
            out += "[^/]"
            i += 1
        elif pattern[i] == "[":
            end = pattern.index("]", i)
            out += pattern[i : end + 1]
            i = end + 1
        else:
            out += re.escape(pattern[i])
            i += 1
    return re.compile(out + "$")


def dockerignore(text: str) -> list[tuple[bool, re.Pattern[str]]]:
    """(negated, regex) per pattern."""
    rules = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        negated = line.startswith("!")
        pattern = line.lstrip("!").strip().strip("/")
        rules.append((negated, _pattern_regex(pattern)))
    return rules


def in_context(rules: list[tuple[bool, re.Pattern[str]]], path: str) -> bool:
    parts = path.split("/")
    candidates = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    included = True
    for negated, regex in rules:
        if any(regex.match(candidate) for candidate in candidates):
            included = negated
    return included


@pytest.fixture(scope="module")
def ignore_rules(repo_root: Path) -> list[tuple[bool, re.Pattern[str]]]:
    return dockerignore((repo_root / ".dockerignore").read_text())


# ---- the Dockerfile ---------------------------------------------------------------------------


def test_image_is_built_in_stages_on_the_projects_python(
    dockerfile: list[Instruction], repo_root: Path
) -> None:
    built = stages(dockerfile)
    assert len(built) >= 3, "uv, a builder and a runtime stage"
    names = [name for _, name, _ in built]
    requires = tomllib.loads((repo_root / "pyproject.toml").read_text())["project"][
        "requires-python"
    ]
    python_minor = re.search(r"3\.\d+", requires)
    assert python_minor
    for image, name, _ in built:
        assert ":" in image and not image.endswith(":latest"), f"stage {name}: pin {image}"
        if image.startswith("python:"):
            assert image.startswith(f"python:{python_minor.group(0)}"), image
    for _, _, body in built:
        for instruction in body:
            if instruction.keyword == "COPY":
                source_stage = copy_parts(instruction)[0].get("from")
                assert source_stage is None or source_stage in names, instruction


def test_dependencies_come_from_the_lock_without_dev_tools(dockerfile: list[Instruction]) -> None:
    syncs = [i.args for i in dockerfile if i.keyword == "RUN" and "uv sync" in i.args]
    assert syncs
    for command in syncs:
        assert "--frozen" in command and "--no-dev" in command, command


def test_every_workspace_manifest_is_copied_before_the_first_sync(
    dockerfile: list[Instruction], repo_root: Path
) -> None:
    copied: set[str] = set()
    for instruction in dockerfile:
        if instruction.keyword == "RUN" and "uv sync" in instruction.args:
            break
        if instruction.keyword == "COPY":
            flags, sources, _ = copy_parts(instruction)
            if "from" not in flags:
                copied.update(sources)
    expected = {"pyproject.toml", "uv.lock"} | {
        str((member / "pyproject.toml").relative_to(repo_root))
        for member in workspace_members(repo_root)
    }
    assert expected <= copied, f"not copied: {sorted(expected - copied)}"


def test_runtime_stage_runs_unprivileged_with_a_default_command(
    dockerfile: list[Instruction],
) -> None:
    _, _, runtime = stages(dockerfile)[-1]
    users = [i.args for i in runtime if i.keyword == "USER"]
    assert users, "the runtime stage must set USER"
    uid = users[-1].split(":")[0]
    assert uid.isdigit() and int(uid) > 0, "a numeric non-root uid, checkable by runAsNonRoot"
    cmd = [i.args for i in runtime if i.keyword == "CMD"]
    assert cmd and cmd[-1].startswith('["python", "-m", "agentloom_'), "exec form, one service"
    assert not any(i.keyword == "ENTRYPOINT" for i in runtime), "the command picks the service"


def test_healthcheck_script_lands_where_compose_calls_it(
    dockerfile: list[Instruction], repo_root: Path
) -> None:
    destinations = {
        copy_parts(i)[2]: copy_parts(i)[1] for i in stages(dockerfile)[-1][2] if i.keyword == "COPY"
    }
    assert destinations.get(HEALTHCHECK_SCRIPT) == ["deploy/docker/healthcheck.py"]
    compose = yaml.safe_load((repo_root / "docker-compose.yml").read_text())
    used = {
        str(part)
        for service in compose["services"].values()
        for part in (service.get("healthcheck") or {}).get("test", [])
        if str(part).endswith("healthcheck.py")
    }
    assert used == {HEALTHCHECK_SCRIPT}


def test_no_service_imports_the_devkit_left_out_of_the_image(
    dockerfile: list[Instruction], repo_root: Path
) -> None:
    syncs = [i.args for i in dockerfile if i.keyword == "RUN" and "uv sync" in i.args]
    if not all("--no-install-package agentloom-devkit" in command for command in syncs):
        pytest.fail("the image is expected to leave out the devkit")
    importing = re.compile(r"^\s*(from|import)\s+agentloom_devkit\b", re.MULTILINE)
    shipped = [*repo_root.glob("services/*/src/**/*.py"), *repo_root.glob("libs/*/src/**/*.py")]
    offenders = [
        str(path.relative_to(repo_root))
        for path in shipped
        if "agentloom_devkit" not in path.parts and importing.search(path.read_text())
    ]
    assert offenders == []


# ---- the build context --------------------------------------------------------------------------


def test_build_context_holds_what_the_dockerfile_copies(
    dockerfile: list[Instruction], ignore_rules: list[tuple[bool, re.Pattern[str]]], repo_root: Path
) -> None:
    for instruction in dockerfile:
        if instruction.keyword != "COPY" or "from" in copy_parts(instruction)[0]:
            continue
        for source in copy_parts(instruction)[1]:
            path = repo_root / source
            assert path.exists(), f"{source} does not exist"
            files = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]
            kept = [f for f in files if in_context(ignore_rules, str(f.relative_to(repo_root)))]
            assert kept, f"{source} is excluded from the build context"


def test_build_context_keeps_package_sources_and_drops_local_state(
    ignore_rules: list[tuple[bool, re.Pattern[str]]], repo_root: Path
) -> None:
    sources = [
        str(p.relative_to(repo_root))
        for p in [*repo_root.glob("libs/*/src/**/*.py"), *repo_root.glob("services/*/src/**/*.py")]
        if "__pycache__" not in p.parts
    ]
    assert sources
    assert [s for s in sources if not in_context(ignore_rules, s)] == []
    for local in (
        ".git/HEAD",
        ".venv/bin/python",
        "services/graphs/tests/test_x.py",
        "libs/common/src/agentloom_common/__pycache__/bus.cpython-311.pyc",
        "deploy/k8s/base/gateway.yaml",
        "docker-compose.yml",
        ".env",
    ):
        assert not in_context(ignore_rules, local), local


def test_dockerignore_matcher_follows_docker_rules() -> None:
    rules = dockerignore("*\n!keep/\nkeep/**/secret\n")
    assert not in_context(rules, "other.txt")
    assert in_context(rules, "keep/a/b.py")
    assert not in_context(rules, "keep/a/secret")
    assert not in_context(rules, "keep/secret")


# ---- the health-check script, against live servers --------------------------------------------


def free_port() -> int:
    """A port that was free a moment ago (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def run_healthcheck(repo_root: Path, *args: str) -> int:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        str(repo_root / "deploy" / "docker" / "healthcheck.py"),
        *args,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    return await asyncio.wait_for(process.wait(), timeout=30)


@dataclass
class HealthServer:
    port: int
    servicer: health.aio.HealthServicer


@pytest.fixture
async def health_server() -> AsyncIterator[HealthServer]:
    server = grpc.aio.server()
    servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        yield HealthServer(port, servicer)
    finally:
        await server.stop(None)


async def test_grpc_check_passes_only_while_serving(
    health_server: HealthServer, repo_root: Path
) -> None:
    address = f"127.0.0.1:{health_server.port}"
    await health_server.servicer.set("", health_pb2.HealthCheckResponse.SERVING)
    assert await run_healthcheck(repo_root, "grpc", address) == 0
    await health_server.servicer.set("", health_pb2.HealthCheckResponse.NOT_SERVING)
    assert await run_healthcheck(repo_root, "grpc", address) == 1
    # A named service the server does not know answers NOT_FOUND: unhealthy.
    assert await run_healthcheck(repo_root, "grpc", address, "agentloom.nope.v1.Nope") == 1


async def test_grpc_check_fails_when_nothing_listens(repo_root: Path) -> None:
    assert await run_healthcheck(repo_root, "grpc", f"127.0.0.1:{free_port()}") == 1


@pytest.mark.parametrize(("status", "code"), [(200, 0), (204, 0), (503, 1), (404, 1)])
async def test_http_check_passes_only_on_2xx(status: int, code: int, repo_root: Path) -> None:
    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(
            f"HTTP/1.1 {status} X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".encode()
        )
        await writer.drain()
        writer.close()
        await writer.wait_closed()

    server = await asyncio.start_server(answer, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        url = f"http://127.0.0.1:{port}/readyz"
        assert await run_healthcheck(repo_root, "http", url) == code


async def test_check_refuses_unknown_arguments(repo_root: Path) -> None:
    assert await run_healthcheck(repo_root, "tcp", "127.0.0.1:1") == 2
