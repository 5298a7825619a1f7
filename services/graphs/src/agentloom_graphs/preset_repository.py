"""Storage of presets. Every function acts for one user and takes `session=`.

A preset that does not exist, belongs to another user, or whose id is not a UUID is the
same `PRESET_NOT_FOUND`. A preset's graph version must be one of the user's: the version is
looked up (and locked against deletion) in the same transaction that stores the preset.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, insert, select, tuple_, update
from sqlalchemy.ext.asyncio import AsyncSession

from agentloom_graphs.errors import graph_not_found, preset_not_found, version_not_found
from agentloom_graphs.pagination import Cursor
from agentloom_graphs.presets import PresetContent
from agentloom_graphs.tables import GraphRow, GraphVersionRow, PresetRow


@dataclass(frozen=True)
class PresetRecord:
    id: uuid.UUID
    user_id: str
    graph_id: uuid.UUID
    graph_version: int
    created_at: datetime
    updated_at: datetime
    content: PresetContent


@dataclass(frozen=True)
class PresetPage:
    records: list[PresetRecord]
    next_cursor: Cursor | None


async def graph_version_schema(
    *, session: AsyncSession, user_id: str, graph_id: str, version: int
) -> tuple[uuid.UUID, int, dict[str, Any]]:
    """(graph id, resolved version, its input schema) of the user's graph; version 0 is the
    active one. The graph row is locked FOR SHARE so it cannot be deleted meanwhile."""
    key = _parse_graph_id(graph_id)
    graph = (
        await session.execute(
            select(GraphRow.active_version)
            .where(GraphRow.id == key, GraphRow.user_id == user_id)
            .with_for_update(read=True)
        )
    ).scalar_one_or_none()
    if graph is None:
        raise graph_not_found()
    resolved = version or graph
    schema = await session.scalar(
        select(GraphVersionRow.input_schema).where(
            GraphVersionRow.graph_id == key, GraphVersionRow.version == resolved
        )
    )
    if schema is None:
        raise version_not_found(resolved)
    return key, resolved, schema


async def create_preset(
    *,
    session: AsyncSession,
    user_id: str,
    graph_id: uuid.UUID,
    graph_version: int,
    content: PresetContent,
) -> PresetRecord:
    preset_id = uuid.uuid4()
    now = func.clock_timestamp()
    await session.execute(
        insert(PresetRow).values(
            id=preset_id,
            user_id=user_id,
            graph_id=graph_id,
            graph_version=graph_version,
            name=content.name,
            description=content.description,
            inputs=content.inputs,
            credentials_inputs=content.credentials_inputs,
            created_at=now,
            updated_at=now,
        )
    )
    return await get_preset(session=session, user_id=user_id, preset_id=str(preset_id))


async def get_preset(*, session: AsyncSession, user_id: str, preset_id: str) -> PresetRecord:
    key = _parse_preset_id(preset_id)
    row = await session.scalar(
        select(PresetRow)
        .where(PresetRow.id == key, PresetRow.user_id == user_id)
        .execution_options(populate_existing=True)
    )
    if row is None:
        raise preset_not_found()
    return _record(row)


async def list_presets(
    *,
    session: AsyncSession,
    user_id: str,
    graph_id: str,
    page_size: int,
    after: Cursor | None,
) -> PresetPage:
    """The user's presets (of one graph when `graph_id` is set), newest first."""
    query = select(PresetRow).where(PresetRow.user_id == user_id)
    if graph_id:
        try:
            query = query.where(PresetRow.graph_id == uuid.UUID(graph_id))
        except ValueError:
            return PresetPage([], None)  # no preset is of a graph that cannot exist
    if after is not None:
        position = tuple_(PresetRow.created_at, PresetRow.id)
        query = query.where(position < tuple_(after.created_at, after.graph_id))
    query = query.order_by(PresetRow.created_at.desc(), PresetRow.id.desc()).limit(page_size + 1)
    rows = list((await session.scalars(query)).all())
    next_cursor = None
    if len(rows) > page_size:
        rows = rows[:page_size]
        next_cursor = Cursor(rows[-1].created_at, rows[-1].id)
    return PresetPage([_record(row) for row in rows], next_cursor)


async def update_preset(
    *,
    session: AsyncSession,
    user_id: str,
    preset_id: str,
    graph_version: int,
    content: PresetContent,
) -> PresetRecord:
    key = _parse_preset_id(preset_id)
    result = await session.execute(
        update(PresetRow)
        .where(PresetRow.id == key, PresetRow.user_id == user_id)
        .values(
            graph_version=graph_version,
            name=content.name,
            description=content.description,
            inputs=content.inputs,
            credentials_inputs=content.credentials_inputs,
            updated_at=func.clock_timestamp(),
        )
        .returning(PresetRow.id)
        .execution_options(synchronize_session=False)
    )
    if result.scalar_one_or_none() is None:
        raise preset_not_found()
    return await get_preset(session=session, user_id=user_id, preset_id=preset_id)


async def delete_preset(*, session: AsyncSession, user_id: str, preset_id: str) -> None:
    key = _parse_preset_id(preset_id)
    result = await session.execute(
        delete(PresetRow)
        .where(PresetRow.id == key, PresetRow.user_id == user_id)
        .returning(PresetRow.id)
        .execution_options(synchronize_session=False)
    )
    if result.scalar_one_or_none() is None:
        raise preset_not_found()


def _parse_preset_id(preset_id: str) -> uuid.UUID:
    try:
        return uuid.UUID(preset_id)
    except ValueError:
        raise preset_not_found() from None


def _parse_graph_id(graph_id: str) -> uuid.UUID:
    try:
        return uuid.UUID(graph_id)
    except ValueError:
        raise graph_not_found() from None


def _record(row: PresetRow) -> PresetRecord:
    return PresetRecord(
        id=row.id,
        user_id=row.user_id,
        graph_id=row.graph_id,
        graph_version=row.graph_version,
        created_at=row.created_at,
        updated_at=row.updated_at,
        content=PresetContent(
            name=row.name,
            description=row.description,
            inputs=row.inputs,
            credentials_inputs=row.credentials_inputs,
        ),
    )
