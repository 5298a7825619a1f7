"""The graphs schema: one row per graph, one row per version of it, and presets."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    CheckConstraint,
    DateTime,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    MetaData,
    Text,
    Uuid,
    func,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

SCHEMA = "graphs"

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(schema=SCHEMA, naming_convention=NAMING_CONVENTION)


class GraphRow(Base):
    """A graph: its owner and which of its versions is active and latest."""

    __tablename__ = "graphs"
    __table_args__ = (
        # Lists run newest first per user; a backward scan of this index serves them.
        Index(None, "user_id", "created_at", "id"),
        CheckConstraint("active_version BETWEEN 1 AND latest_version", name="versions"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    user_id: Mapped[str] = mapped_column(Text)
    active_version: Mapped[int] = mapped_column(Integer)
    latest_version: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class GraphVersionRow(Base):
    """One immutable version of a graph: a full copy of its nodes and links."""

    __tablename__ = "graph_versions"
    __table_args__ = (CheckConstraint("version >= 1", name="version_positive"),)

    graph_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey(GraphRow.id, ondelete="CASCADE"), primary_key=True
    )
    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[str] = mapped_column(Text)
    name: Mapped[str] = mapped_column(Text)
    description: Mapped[str] = mapped_column(Text)
    nodes: Mapped[list[dict[str, Any]]] = mapped_column(JSONB)
    links: Mapped[list[dict[str, Any]]] = mapped_column(JSONB)
    # Plain JSON keeps the properties in the order of the graph's input blocks (JSONB would
    # sort them), which is the order a form shows them in.
    input_schema: Mapped[dict[str, Any]] = mapped_column(JSON)
    output_schema: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class PresetRow(Base):
    """Saved inputs and credential choices for one version of a user's graph.

    The foreign key to the version cascades: deleting a graph deletes its presets.
    """

    __tablename__ = "presets"
    __table_args__ = (
        ForeignKeyConstraint(
            ["graph_id", "graph_version"],
            [GraphVersionRow.graph_id, GraphVersionRow.version],
            ondelete="CASCADE",
        ),
        # Lists run newest first per user (optionally per graph), like graph lists.
        Index(None, "user_id", "created_at", "id"),
        Index(None, "graph_id", "graph_version"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    user_id: Mapped[str] = mapped_column(Text)
    graph_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    graph_version: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(Text)
    description: Mapped[str] = mapped_column(Text)
    inputs: Mapped[dict[str, Any]] = mapped_column(JSONB)
    credentials_inputs: Mapped[dict[str, Any]] = mapped_column(JSONB)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


metadata = Base.metadata
