"""Storage of graphs and their versions. Every function acts for one user and takes `session=`.

A graph that does not exist, belongs to another user, or whose id is not a UUID is the same
`GRAPH_NOT_FOUND`: nothing here tells them apart.
"""

from __future__ import annotations

import uuid
from dataclasses import asdict, dataclass
from datetime import datetime

from sqlalchemy import Row, Select, delete, func, insert, select, tuple_, update
from sqlalchemy.ext.asyncio import AsyncSession

from agentloom_graphs.domain import Graph, Link, Node
from agentloom_graphs.errors import graph_not_found, version_conflict, version_not_found
from agentloom_graphs.pagination import Cursor
from agentloom_graphs.tables import GraphRow, GraphVersionRow


@dataclass(frozen=True)
class GraphRecord:
    """One stored version of a graph."""

    id: uuid.UUID
    user_id: str
    version: int
    is_active: bool
    created_at: datetime
    content: Graph


@dataclass(frozen=True)
class GraphPage:
    records: list[GraphRecord]
    next_cursor: Cursor | None


async def create_graph(*, session: AsyncSession, user_id: str, graph: Graph) -> GraphRecord:
    """Store a new graph whose version 1 is active."""
    graph_id = uuid.uuid4()
    await session.execute(
        insert(GraphRow).values(
            id=graph_id,
            user_id=user_id,
            active_version=1,
            latest_version=1,
            # The wall clock, not the transaction's start: graphs created in one transaction
            # still list in the order they were made.
            created_at=func.clock_timestamp(),
        )
    )
    await _insert_version(session, graph_id, 1, user_id, graph)
    return await get_graph(session=session, user_id=user_id, graph_id=str(graph_id))


async def get_graph(
    *, session: AsyncSession, user_id: str, graph_id: str, version: int = 0
) -> GraphRecord:
    """The given version of a graph; version 0 is the active one."""
    key = _parse_id(graph_id)
    query = _versions(user_id).where(GraphRow.id == key)
    if version == 0:
        query = query.where(GraphVersionRow.version == GraphRow.active_version)
    else:
        query = query.where(GraphVersionRow.version == version)
    row = (await session.execute(query)).one_or_none()
    if row is None:
        await _require_graph(session, user_id, key)
        raise version_not_found(version)
    return _record(row)


async def resolve_version(
    *, session: AsyncSession, user_id: str, graph_id: str, version: int = 0
) -> int:
    """The version `get_graph` would answer with (0: the active one), in one small read;
    the same errors."""
    key = _parse_id(graph_id)
    found = (
        await session.execute(
            select(GraphRow.active_version, GraphRow.latest_version).where(
                GraphRow.id == key, GraphRow.user_id == user_id
            )
        )
    ).one_or_none()
    if found is None:
        raise graph_not_found()
    if version == 0:
        return int(found.active_version)
    if not 1 <= version <= found.latest_version:
        raise version_not_found(version)
    return version


async def list_graphs(
    *, session: AsyncSession, user_id: str, page_size: int, after: Cursor | None
) -> GraphPage:
    """The active version of each of the user's graphs, newest graph first."""
    query = _versions(user_id).where(GraphVersionRow.version == GraphRow.active_version)
    if after is not None:
        position = tuple_(GraphRow.created_at, GraphRow.id)
        query = query.where(position < tuple_(after.created_at, after.graph_id))
    query = query.order_by(GraphRow.created_at.desc(), GraphRow.id.desc()).limit(page_size + 1)
    rows = (await session.execute(query)).all()
    next_cursor = None
    if len(rows) > page_size:
        rows = rows[:page_size]
        next_cursor = Cursor(rows[-1].graph_created_at, rows[-1].GraphVersionRow.graph_id)
    return GraphPage([_record(row) for row in rows], next_cursor)


async def update_graph(
    *, session: AsyncSession, user_id: str, graph_id: str, graph: Graph, expected_version: int
) -> GraphRecord:
    """Store `graph` as version latest+1 and make it active.

    With a non-zero `expected_version`, refuse unless it is still the latest version: the
    conditional UPDATE makes two concurrent updates from the same version conflict.
    """
    key = _parse_id(graph_id)
    next_version = GraphRow.latest_version + 1
    bump = (
        update(GraphRow)
        .where(GraphRow.id == key, GraphRow.user_id == user_id)
        .values(latest_version=next_version, active_version=next_version)
        .returning(GraphRow.latest_version)
        .execution_options(synchronize_session=False)
    )
    if expected_version:
        bump = bump.where(GraphRow.latest_version == expected_version)
    version = (await session.execute(bump)).scalar_one_or_none()
    if version is None:
        latest = await _require_graph(session, user_id, key)
        raise version_conflict(expected_version, latest)
    await _insert_version(session, key, version, user_id, graph)
    return await get_graph(session=session, user_id=user_id, graph_id=graph_id, version=version)


async def list_versions(*, session: AsyncSession, user_id: str, graph_id: str) -> list[GraphRecord]:
    """Every version of a graph, newest first."""
    key = _parse_id(graph_id)
    query = _versions(user_id).where(GraphRow.id == key).order_by(GraphVersionRow.version.desc())
    rows = (await session.execute(query)).all()
    if not rows:
        raise graph_not_found()
    return [_record(row) for row in rows]


async def set_active_version(
    *, session: AsyncSession, user_id: str, graph_id: str, version: int
) -> GraphRecord:
    """Make an existing version the active one."""
    key = _parse_id(graph_id)
    exists = select(GraphVersionRow.version).where(
        GraphVersionRow.graph_id == key, GraphVersionRow.version == version
    )
    result = await session.execute(
        update(GraphRow)
        .where(GraphRow.id == key, GraphRow.user_id == user_id, exists.exists())
        .values(active_version=version)
        .returning(GraphRow.id)
        .execution_options(synchronize_session=False)
    )
    if result.scalar_one_or_none() is None:
        await _require_graph(session, user_id, key)
        raise version_not_found(version)
    return await get_graph(session=session, user_id=user_id, graph_id=graph_id, version=version)


async def delete_graph(*, session: AsyncSession, user_id: str, graph_id: str) -> None:
    """Delete a graph and all its versions."""
    key = _parse_id(graph_id)
    result = await session.execute(
        delete(GraphRow)
        .where(GraphRow.id == key, GraphRow.user_id == user_id)
        .returning(GraphRow.id)
        .execution_options(synchronize_session=False)
    )
    if result.scalar_one_or_none() is None:
        raise graph_not_found()


def _parse_id(graph_id: str) -> uuid.UUID:
    try:
        return uuid.UUID(graph_id)
    except ValueError:
        raise graph_not_found() from None


async def _require_graph(session: AsyncSession, user_id: str, key: uuid.UUID) -> int:
    """The latest version of the user's graph, or GRAPH_NOT_FOUND."""
    latest = await session.scalar(
        select(GraphRow.latest_version).where(GraphRow.id == key, GraphRow.user_id == user_id)
    )
    if latest is None:
        raise graph_not_found()
    return latest


def _versions(user_id: str) -> Select[GraphVersionRow, int, datetime]:
    return (
        select(
            GraphVersionRow,
            GraphRow.active_version,
            GraphRow.created_at.label("graph_created_at"),
        )
        .join(GraphRow, GraphRow.id == GraphVersionRow.graph_id)
        .where(GraphRow.user_id == user_id)
    )


async def _insert_version(
    session: AsyncSession, graph_id: uuid.UUID, version: int, user_id: str, graph: Graph
) -> None:
    await session.execute(
        insert(GraphVersionRow).values(
            graph_id=graph_id,
            version=version,
            user_id=user_id,
            name=graph.name,
            description=graph.description,
            nodes=[asdict(node) for node in graph.nodes],
            links=[asdict(link) for link in graph.links],
            input_schema=graph.input_schema,
            output_schema=graph.output_schema,
            created_at=func.clock_timestamp(),
        )
    )


def _record(row: Row[GraphVersionRow, int, datetime]) -> GraphRecord:
    stored: GraphVersionRow = row.GraphVersionRow
    return GraphRecord(
        id=stored.graph_id,
        user_id=stored.user_id,
        version=stored.version,
        is_active=stored.version == row.active_version,
        created_at=stored.created_at,
        content=Graph(
            name=stored.name,
            description=stored.description,
            nodes=tuple(Node(**node) for node in stored.nodes),
            links=tuple(Link(**link) for link in stored.links),
            input_schema=stored.input_schema,
            output_schema=stored.output_schema,
        ),
    )
