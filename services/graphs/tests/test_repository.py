"""Storage of graphs and versions, against the real (migrated) PostgreSQL database."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from agentloom_common.errors import Conflict, NotFound, ServiceError
from agentloom_graphs import repository
from agentloom_graphs.domain import Graph, Link, Node
from agentloom_graphs.repository import GraphRecord
from agentloom_graphs.tables import GraphVersionRow

Sessions = async_sessionmaker[AsyncSession]


def content(name: str = "g", value: object = 1) -> Graph:
    return Graph(
        name=name,
        description="d",
        nodes=(
            Node("a", "pass_through_block", {"value": value, "z": 1, "b": 2}, {"x": 1}),
            Node("b", "pass_through_block", {}, {}),
        ),
        links=(Link("l1", "a", "value", "b", "value", is_static=True),),
        input_schema={"type": "object", "properties": {"zeta": {}, "alpha": {}}, "required": []},
        output_schema={"type": "object", "properties": {}},
    )


async def create(sessions: Sessions, user_id: str, graph: Graph | None = None) -> GraphRecord:
    async with sessions.begin() as session:
        return await repository.create_graph(
            session=session, user_id=user_id, graph=graph or content()
        )


async def update(
    sessions: Sessions, user_id: str, graph_id: uuid.UUID, name: str, expected: int = 0
) -> GraphRecord:
    async with sessions.begin() as session:
        return await repository.update_graph(
            session=session,
            user_id=user_id,
            graph_id=str(graph_id),
            graph=content(name),
            expected_version=expected,
        )


async def get(sessions: Sessions, user_id: str, graph_id: str, version: int = 0) -> GraphRecord:
    async with sessions.begin() as session:
        return await repository.get_graph(
            session=session, user_id=user_id, graph_id=graph_id, version=version
        )


async def test_created_graph_is_version_1_active_and_reads_back_whole(
    sessions: Sessions, user_id: str
) -> None:
    created = await create(sessions, user_id)

    fetched = await get(sessions, user_id, str(created.id))

    assert (fetched.version, fetched.is_active, fetched.user_id) == (1, True, user_id)
    assert fetched == created
    assert fetched.content == content()
    assert list(fetched.content.input_schema["properties"]) == ["zeta", "alpha"]
    assert fetched.created_at.tzinfo is not None


async def test_update_adds_an_active_full_copy_and_keeps_old_versions(
    sessions: Sessions, user_id: str
) -> None:
    created = await create(sessions, user_id)

    updated = await update(sessions, user_id, created.id, "renamed")

    assert (updated.version, updated.is_active, updated.content.name) == (2, True, "renamed")
    assert updated.content.nodes == content().nodes
    old = await get(sessions, user_id, str(created.id), version=1)
    assert (old.content.name, old.is_active) == ("g", False)
    assert (await get(sessions, user_id, str(created.id))).version == 2


async def test_update_from_a_stale_version_conflicts(sessions: Sessions, user_id: str) -> None:
    created = await create(sessions, user_id)
    await update(sessions, user_id, created.id, "second", expected=1)

    with pytest.raises(Conflict) as raised:
        await update(sessions, user_id, created.id, "third", expected=1)

    assert raised.value.reason == "GRAPH_VERSION_CONFLICT"
    assert raised.value.metadata["latest_version"] == "2"
    assert (await get(sessions, user_id, str(created.id))).content.name == "second"


async def test_concurrent_updates_from_one_version_let_exactly_one_win(
    sessions: Sessions, user_id: str
) -> None:
    created = await create(sessions, user_id)

    results = await asyncio.gather(
        *(update(sessions, user_id, created.id, f"writer-{i}", expected=1) for i in range(5)),
        return_exceptions=True,
    )

    winners = [r for r in results if isinstance(r, GraphRecord)]
    assert len(winners) == 1 and winners[0].version == 2
    assert all(isinstance(r, Conflict) for r in results if r not in winners)
    async with sessions.begin() as session:
        versions = await repository.list_versions(
            session=session, user_id=user_id, graph_id=str(created.id)
        )
    assert [v.version for v in versions] == [2, 1]


async def test_concurrent_unconditional_updates_each_get_their_own_version(
    sessions: Sessions, user_id: str
) -> None:
    created = await create(sessions, user_id)

    results = await asyncio.gather(
        *(update(sessions, user_id, created.id, f"writer-{i}") for i in range(4))
    )

    assert sorted(r.version for r in results) == [2, 3, 4, 5]


async def test_set_active_version_switches_what_version_0_reads(
    sessions: Sessions, user_id: str
) -> None:
    created = await create(sessions, user_id)
    await update(sessions, user_id, created.id, "second")

    async with sessions.begin() as session:
        active = await repository.set_active_version(
            session=session, user_id=user_id, graph_id=str(created.id), version=1
        )
        with pytest.raises(NotFound) as raised:
            await repository.set_active_version(
                session=session, user_id=user_id, graph_id=str(created.id), version=3
            )

    assert (active.version, active.is_active) == (1, True)
    assert raised.value.reason == "GRAPH_VERSION_NOT_FOUND"
    assert (await get(sessions, user_id, str(created.id))).version == 1
    assert (await get(sessions, user_id, str(created.id), version=2)).is_active is False


async def test_delete_removes_every_version(sessions: Sessions, user_id: str) -> None:
    created = await create(sessions, user_id)
    await update(sessions, user_id, created.id, "second")

    async with sessions.begin() as session:
        await repository.delete_graph(session=session, user_id=user_id, graph_id=str(created.id))
        left = await session.scalar(
            select(func.count()).where(GraphVersionRow.graph_id == created.id)
        )

    assert left == 0
    with pytest.raises(NotFound):
        await get(sessions, user_id, str(created.id))


@pytest.mark.parametrize("graph_id", ["foreign", "missing", "not-a-uuid", ""])
async def test_other_users_missing_and_malformed_ids_are_all_graph_not_found(
    sessions: Sessions, user_id: str, graph_id: str
) -> None:
    foreign = await create(sessions, f"other-{uuid.uuid4()}")
    target = {"foreign": str(foreign.id), "missing": str(uuid.uuid4())}.get(graph_id, graph_id)
    calls = {
        "get": lambda s: repository.get_graph(session=s, user_id=user_id, graph_id=target),
        "get v1": lambda s: repository.get_graph(
            session=s, user_id=user_id, graph_id=target, version=1
        ),
        "update": lambda s: repository.update_graph(
            session=s, user_id=user_id, graph_id=target, graph=content(), expected_version=1
        ),
        "versions": lambda s: repository.list_versions(session=s, user_id=user_id, graph_id=target),
        "activate": lambda s: repository.set_active_version(
            session=s, user_id=user_id, graph_id=target, version=1
        ),
        "delete": lambda s: repository.delete_graph(session=s, user_id=user_id, graph_id=target),
    }

    reasons = {}
    for name, call in calls.items():
        async with sessions() as session:
            try:
                await call(session)
            except ServiceError as error:
                reasons[name] = (type(error), error.reason, error.message)

    expected = (NotFound, "GRAPH_NOT_FOUND", "graph not found")
    assert reasons == dict.fromkeys(calls, expected)
    assert (await get(sessions, foreign.user_id, str(foreign.id))).content.name == "g"


async def test_list_pages_through_the_users_graphs_newest_first(
    sessions: Sessions, user_id: str
) -> None:
    async with sessions.begin() as session:  # one transaction: order still follows creation
        made = [
            await repository.create_graph(session=session, user_id=user_id, graph=content(f"g{i}"))
            for i in range(5)
        ]
    await create(sessions, f"other-{uuid.uuid4()}")
    await update(sessions, user_id, made[3].id, "g3 v2")

    pages: list[list[tuple[str, int]]] = []
    cursor = None
    while True:
        async with sessions.begin() as session:
            page = await repository.list_graphs(
                session=session, user_id=user_id, page_size=2, after=cursor
            )
        pages.append([(r.content.name, r.version) for r in page.records])
        cursor = page.next_cursor
        if cursor is None:
            break

    assert pages == [[("g4", 1), ("g3 v2", 2)], [("g2", 1), ("g1", 1)], [("g0", 1)]]
