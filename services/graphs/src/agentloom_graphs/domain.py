"""A graph as clients send it, and the rules it must meet before it is stored. No I/O here.

Validation collects every problem instead of stopping at the first, as `node_errors`:
`{node_id: {field_or_pin: message}}`, with problems of the graph itself (and of nodes or
links that cannot be named) under the key `""`, which no node id can be.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from agentloom_common.errors import InvalidArgument
from agentloom_graphs import io_schema
from agentloom_graphs.block_specs import (
    INPUT_KIND,
    OUTPUT_KIND,
    TOOLS_PIN,
    BlockSpec,
    Catalog,
)
from agentloom_graphs.errors import GraphInvalid
from agentloom_graphs.json_values import JsonValueError, check_text, parse_object

GRAPH_KEY = ""
MAX_NAME_CHARS = 200
MAX_DESCRIPTION_CHARS = 5000
MAX_NODES = 500
MAX_LINKS = 2000
MAX_ID_CHARS = 100
# User ids come from the gateway (token subjects); the bound keeps them indexable.
MAX_USER_ID_CHARS = 255
MAX_INPUT_DEFAULT_BYTES = 256 * 1024
MAX_METADATA_BYTES = 256 * 1024
PIN_PATH_MARKERS = ("_$_", "_#_", "_@_")


@dataclass(frozen=True)
class NodeDraft:
    id: str
    block_id: str
    input_default_json: str = ""
    metadata_json: str = ""


@dataclass(frozen=True)
class LinkDraft:
    source_id: str
    source_name: str
    sink_id: str
    sink_name: str
    is_static: bool = False
    id: str = ""


@dataclass(frozen=True)
class GraphDraft:
    """A graph as a client sent it: JSON values still text, nothing checked."""

    name: str
    description: str = ""
    nodes: Sequence[NodeDraft] = ()
    links: Sequence[LinkDraft] = ()


@dataclass(frozen=True)
class Node:
    id: str
    block_id: str
    input_default: dict[str, Any]
    metadata: dict[str, Any]


@dataclass(frozen=True)
class Link:
    id: str
    source_id: str
    source_name: str
    sink_id: str
    sink_name: str
    is_static: bool


@dataclass(frozen=True)
class Graph:
    """The content of one valid graph version, with the schemas derived from it."""

    name: str
    description: str
    nodes: tuple[Node, ...]
    links: tuple[Link, ...]
    input_schema: dict[str, Any]
    output_schema: dict[str, Any]


@dataclass
class _Problems:
    errors: dict[str, dict[str, str]] = field(default_factory=lambda: defaultdict(dict))

    def add(self, key: str, field_or_pin: str, message: str) -> None:
        existing = self.errors[key].get(field_or_pin)
        self.errors[key][field_or_pin] = f"{existing}; {message}" if existing else message

    def raise_if_any(self) -> None:
        if self.errors:
            raise GraphInvalid({key: dict(fields) for key, fields in self.errors.items()})


def base_pin(name: str) -> str:
    """The pin a pin path starts from: `items_$_0` -> `items`."""
    cut = min((i for i in (name.find(m) for m in PIN_PATH_MARKERS) if i >= 0), default=len(name))
    return name[:cut]


def require_user_id(user_id: str) -> str:
    """Every call acts for a user; an empty or unstorable id is the caller's bug."""
    if not user_id or "\x00" in user_id or len(user_id) > MAX_USER_ID_CHARS:
        raise InvalidArgument(
            f"user_id is required (at most {MAX_USER_ID_CHARS} characters)",
            reason="USER_ID_REQUIRED",
        )
    return user_id


def validate_graph(
    draft: GraphDraft,
    catalog: Catalog,
    *,
    new_link_id: Callable[[], str] = lambda: str(uuid.uuid4()),
) -> Graph:
    """Check `draft` against the block catalog; raise `GraphInvalid` with every problem."""
    problems = _Problems()
    _check_header(draft, problems)
    nodes = _check_nodes(draft.nodes, catalog, problems)
    links = _check_links(draft.links, nodes, catalog, problems, new_link_id)
    linked: defaultdict[str, set[str]] = defaultdict(set)
    for link in links:
        linked[link.sink_id].add(base_pin(link.sink_name))
    for node in nodes.values():
        block = catalog.get(node.block_id)
        if block is not None:
            _check_required_inputs(node, block, linked[node.id], problems)
    _check_io_names(nodes.values(), catalog, problems)
    problems.raise_if_any()
    return Graph(
        name=draft.name,
        description=draft.description,
        nodes=tuple(nodes.values()),
        links=tuple(links),
        input_schema=io_schema.input_schema(nodes.values(), catalog),
        output_schema=io_schema.output_schema(nodes.values(), catalog),
    )


def _check_header(draft: GraphDraft, problems: _Problems) -> None:
    """Name, description and size; an oversized graph is refused before any other check."""
    if not draft.name.strip():
        problems.add(GRAPH_KEY, "name", "a graph needs a name")
    elif len(draft.name) > MAX_NAME_CHARS:
        problems.add(GRAPH_KEY, "name", f"must be at most {MAX_NAME_CHARS} characters")
    if len(draft.description) > MAX_DESCRIPTION_CHARS:
        message = f"must be at most {MAX_DESCRIPTION_CHARS} characters"
        problems.add(GRAPH_KEY, "description", message)
    for name, text in (("name", draft.name), ("description", draft.description)):
        _check_plain_text(text, GRAPH_KEY, name, problems)
    too_big = False
    if len(draft.nodes) > MAX_NODES:
        problems.add(GRAPH_KEY, "nodes", f"a graph has at most {MAX_NODES} nodes")
        too_big = True
    if len(draft.links) > MAX_LINKS:
        problems.add(GRAPH_KEY, "links", f"a graph has at most {MAX_LINKS} links")
        too_big = True
    if too_big:
        problems.raise_if_any()


def _check_plain_text(text: str, key: str, field_name: str, problems: _Problems) -> bool:
    try:
        check_text(text)
    except JsonValueError as error:
        problems.add(key, field_name, str(error))
        return False
    return True


def _check_nodes(
    drafts: Iterable[NodeDraft], catalog: Catalog, problems: _Problems
) -> dict[str, Node]:
    nodes: dict[str, Node] = {}
    for index, draft in enumerate(drafts):
        where = f"nodes[{index}].id"
        if not draft.id:
            problems.add(GRAPH_KEY, where, "a node needs an id")
            continue
        if len(draft.id) > MAX_ID_CHARS:
            problems.add(GRAPH_KEY, where, f"must be at most {MAX_ID_CHARS} characters")
            continue
        if not _check_plain_text(draft.id, GRAPH_KEY, where, problems):
            continue
        if draft.id in nodes:
            problems.add(draft.id, "id", f"node id {draft.id!r} is used by more than one node")
            continue
        nodes[draft.id] = _check_node(draft, catalog, problems)
    return nodes


def _check_node(draft: NodeDraft, catalog: Catalog, problems: _Problems) -> Node:
    block = catalog.get(draft.block_id)
    if block is None:
        message = f"unknown block {draft.block_id!r}" if draft.block_id else "a node needs a block"
        problems.add(draft.id, "block_id", message)
    input_default = _parse(draft.input_default_json, MAX_INPUT_DEFAULT_BYTES)
    metadata = _parse(draft.metadata_json, MAX_METADATA_BYTES)
    for what, parsed in (("input_default", input_default), ("metadata", metadata)):
        if isinstance(parsed, JsonValueError):
            problems.add(draft.id, what, f"{what} {parsed}")
    if block is not None and not block.accepts_extra_inputs and isinstance(input_default, dict):
        for key in input_default:
            if base_pin(key) not in block.input_properties:
                problems.add(draft.id, key, f"block {block.name!r} has no input {base_pin(key)!r}")
    return Node(
        draft.id,
        draft.block_id,
        input_default if isinstance(input_default, dict) else {},
        metadata if isinstance(metadata, dict) else {},
    )


def _parse(text: str, max_bytes: int) -> dict[str, Any] | JsonValueError:
    try:
        return parse_object(text, max_bytes=max_bytes)
    except JsonValueError as error:
        return error


def _check_links(
    drafts: Iterable[LinkDraft],
    nodes: dict[str, Node],
    catalog: Catalog,
    problems: _Problems,
    new_link_id: Callable[[], str],
) -> list[Link]:
    links: list[Link] = []
    seen_ids: set[str] = set()
    seen_wires: set[tuple[str, str, str, str]] = set()
    for index, draft in enumerate(drafts):
        where = f"links[{index}]"
        link_id = draft.id or new_link_id()
        texts = [("id", link_id), ("source_name", draft.source_name)]
        texts += [("sink_name", draft.sink_name)]
        if not all(_check_plain_text(t, GRAPH_KEY, f"{where}.{f}", problems) for f, t in texts):
            continue
        if len(link_id) > MAX_ID_CHARS:
            problems.add(GRAPH_KEY, f"{where}.id", f"must be at most {MAX_ID_CHARS} characters")
        elif link_id in seen_ids:
            problems.add(GRAPH_KEY, f"{where}.id", f"link id {link_id!r} is used more than once")
        seen_ids.add(link_id)
        wire = (draft.source_id, draft.source_name, draft.sink_id, draft.sink_name)
        if wire in seen_wires:
            problems.add(GRAPH_KEY, where, "the same link appears more than once")
        seen_wires.add(wire)
        ends = _LinkEnds(nodes, catalog, problems, where)
        source_ok = ends.check("source", draft.source_id, draft.source_name)
        sink_ok = ends.check("sink", draft.sink_id, draft.sink_name)
        if source_ok and sink_ok:
            ends.check_tool(draft.source_id, draft.source_name, draft.sink_id)
            links.append(Link(link_id, *wire, is_static=draft.is_static))
    return links


@dataclass(frozen=True)
class _LinkEnds:
    nodes: dict[str, Node]
    catalog: Catalog
    problems: _Problems
    where: str

    def check(self, end: str, node_id: str, pin: str) -> bool:
        """Check one end of a link: its node exists and the node's block has the pin.

        False when the link cannot be kept at all (no such node, no pin name).
        """
        node = self.nodes.get(node_id)
        if node is None:
            message = f"node {node_id!r} does not exist" if node_id else "a link needs both ends"
            self.problems.add(GRAPH_KEY, f"{self.where}.{end}_id", message)
            return False
        direction = "output" if end == "source" else "input"
        if not pin:
            message = f"a link needs the {direction} pin's name"
            self.problems.add(node_id, f"{self.where}.{end}_name", message)
            return False
        block = self.catalog.get(node.block_id)
        if block is None:
            return True  # the node's unknown block is reported once, on the node
        if end == "source":
            known = block.accepts_extra_outputs or base_pin(pin) in block.output_pins
        else:
            known = block.accepts_extra_inputs or base_pin(pin) in block.input_properties
        if not known:
            message = f"block {block.name!r} has no {direction} {base_pin(pin)!r}"
            self.problems.add(node_id, pin, message)
        return True

    def check_tool(self, source_id: str, source_pin: str, sink_id: str) -> None:
        """A link from an agent's `tools` pin must reach a node that can answer a call."""
        source = self.catalog.get(self.nodes[source_id].block_id)
        sink = self.catalog.get(self.nodes[sink_id].block_id)
        if source is None or sink is None or not source.uses_tools:
            return
        if base_pin(source_pin) == TOOLS_PIN and not sink.callable_as_tool:
            self.problems.add(
                sink_id,
                f"{self.where}.sink_id",
                f"block {sink.name!r} cannot be an agent's tool (graph inputs and outputs, "
                "notes, sub-agents and agents cannot)",
            )


def _check_required_inputs(
    node: Node, block: BlockSpec, linked_pins: set[str], problems: _Problems
) -> None:
    provided = {base_pin(k) for k, v in node.input_default.items() if v is not None}
    missing = block.required_inputs - provided - linked_pins
    if block.kind == INPUT_KIND:
        missing -= {"value"}  # an input block's value comes from the execution's inputs
    for pin in sorted(missing):
        problems.add(node.id, pin, "required input: give it a default value or link a pin to it")


def _check_io_names(nodes: Iterable[Node], catalog: Catalog, problems: _Problems) -> None:
    """Input and output blocks need string names; graph input names must be unique."""
    users: dict[str, list[str]] = defaultdict(list)
    for node in nodes:
        block = catalog.get(node.block_id)
        if block is None or block.kind not in (INPUT_KIND, OUTPUT_KIND):
            continue
        name = block.io_name(node.input_default)
        if name is None:
            continue  # already reported as a missing required input
        if not isinstance(name, str) or not name.strip():
            problems.add(node.id, "name", "must be a non-empty string")
        elif block.kind == INPUT_KIND:
            users[name].append(node.id)
    for name, node_ids in users.items():
        if len(node_ids) > 1:
            for node_id in node_ids:
                others = ", ".join(repr(n) for n in node_ids if n != node_id)
                problems.add(node_id, "name", f"graph input {name!r} is also used by {others}")
