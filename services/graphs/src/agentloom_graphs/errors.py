"""Errors of the graphs service, with their stable ErrorInfo reasons."""

from __future__ import annotations

import json

from agentloom_common.errors import Conflict, InvalidArgument, NotFound

# gRPC refuses trailing metadata past about 8 KB (the status details travel there), so the
# node_errors sent are cut to fit, with a note of how many were left out.
NODE_ERRORS_BUDGET_BYTES = 4000
MAX_KEY_CHARS = 100
MAX_MESSAGE_CHARS = 300
SUMMARY_PROBLEMS = 3

NodeErrors = dict[str, dict[str, str]]


class GraphInvalid(InvalidArgument):
    """The graph breaks validation rules; `node_errors` holds every problem."""

    reason = "GRAPH_INVALID"

    def __init__(self, node_errors: NodeErrors) -> None:
        self.node_errors = node_errors
        super().__init__(
            _summary(node_errors), metadata={"node_errors": json.dumps(_fit(node_errors))}
        )


def graph_not_found() -> NotFound:
    # The same error for a missing graph and for another user's: nothing tells them apart.
    return NotFound("graph not found", reason="GRAPH_NOT_FOUND")


def version_not_found(version: int) -> NotFound:
    return NotFound(f"graph version {version} does not exist", reason="GRAPH_VERSION_NOT_FOUND")


def version_conflict(expected: int, latest: int) -> Conflict:
    return Conflict(
        f"graph was changed: expected version {expected}, latest is {latest}",
        reason="GRAPH_VERSION_CONFLICT",
        metadata={"expected_version": str(expected), "latest_version": str(latest)},
    )


def _problems(node_errors: NodeErrors) -> list[tuple[str, str, str]]:
    return [(key, f, msg) for key, fields in node_errors.items() for f, msg in fields.items()]


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _fit(node_errors: NodeErrors) -> NodeErrors:
    problems = _problems(node_errors)
    shown: NodeErrors = {}
    size = 2
    for count, (key, field_name, message) in enumerate(problems):
        entry = (_cut(key, MAX_KEY_CHARS), _cut(field_name, MAX_KEY_CHARS))
        text = _cut(message, MAX_MESSAGE_CHARS)
        size += len(json.dumps([*entry, text])) + 4
        if size > NODE_ERRORS_BUDGET_BYTES:
            left = len(problems) - count
            shown.setdefault("", {})["truncated"] = f"{left} more problems not shown"
            break
        shown.setdefault(entry[0], {})[entry[1]] = text
    return shown


def _summary(node_errors: NodeErrors) -> str:
    problems = _problems(node_errors)
    parts = [
        _cut(f"{f'node {key!r}' if key else 'graph'}: {field_name}: {message}", 200)
        for key, field_name, message in problems[:SUMMARY_PROBLEMS]
    ]
    more = len(problems) - len(parts)
    tail = f"; and {more} more" if more > 0 else ""
    return f"graph is invalid ({len(problems)} problems): {'; '.join(parts)}{tail}"


class PresetInvalid(InvalidArgument):
    """A preset breaks validation rules; `errors` holds `{field: message}` for every one."""

    reason = "PRESET_INVALID"

    def __init__(self, errors: dict[str, str]) -> None:
        self.errors = errors
        shown = dict(list(errors.items())[:SUMMARY_PROBLEMS])
        summary = "; ".join(f"{field}: {message}" for field, message in shown.items())
        more = len(errors) - len(shown)
        tail = f"; and {more} more" if more > 0 else ""
        fitted = {
            _cut(field, MAX_KEY_CHARS): _cut(message, MAX_MESSAGE_CHARS)
            for field, message in list(errors.items())[:10]
        }
        super().__init__(
            _cut(f"preset is invalid: {summary}{tail}", 1000),
            metadata={"errors": json.dumps(fitted)},
        )


def preset_not_found() -> NotFound:
    # The same error for a missing preset and for another user's.
    return NotFound("preset not found", reason="PRESET_NOT_FOUND")


def preset_graph_mismatch() -> InvalidArgument:
    return InvalidArgument(
        "a preset stays with its graph: graph_id cannot change",
        reason="PRESET_INVALID",
        metadata={"errors": json.dumps({"graph_id": "must be the preset's graph"})},
    )
