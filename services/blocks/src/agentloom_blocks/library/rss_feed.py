"""Reads an RSS or Atom feed."""

from __future__ import annotations

import asyncio
import calendar
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import feedparser  # type: ignore[import-untyped]
from pydantic import BaseModel, Field

from agentloom_blocks.net import fetch
from agentloom_blocks.sdk import EXAMPLE_SERVER_URL, Block, BlockContext, BlockError, BlockExample

MAX_FEED_BYTES = 5_000_000


def parse_feed(content: bytes) -> tuple[str, list[dict[str, Any]]]:
    """(feed title, entries) from RSS/Atom bytes; feedparser never fetches anything itself."""
    parsed = feedparser.parse(content)
    if parsed.get("bozo") and not parsed.get("entries"):
        raise BlockError(f"not a readable RSS or Atom feed: {parsed.get('bozo_exception')}")
    entries = []
    for entry in parsed.get("entries", []):
        published = entry.get("published_parsed") or entry.get("updated_parsed")
        entries.append(
            {
                "id": entry.get("id") or entry.get("link") or "",
                "title": entry.get("title", ""),
                "link": entry.get("link", ""),
                "summary": entry.get("summary", ""),
                "published": (
                    datetime.fromtimestamp(calendar.timegm(published), UTC).isoformat()
                    if published
                    else None
                ),
            }
        )
    return str(parsed.get("feed", {}).get("title", "")), entries


class RssFeedBlock(Block):
    id = "rss_feed_block"
    name = "Read RSS feed"
    description = (
        "Fetches an RSS or Atom feed and yields its title and its newest entries as a list "
        "(id, title, link, summary, published as ISO 8601 UTC). Link `entries` to 'Step "
        "through items' to handle each one."
    )
    categories = ("web",)
    cost_per_run = 1

    class Input(BaseModel):
        url: str = Field(title="Feed URL", description="The http(s) URL of the feed.")
        max_entries: int = Field(
            default=20, ge=1, le=500, title="Max entries", description="How many entries, at most."
        )

    class Output(BaseModel):
        title: str = Field(title="Title", description="The feed's title.")
        entries: list[dict[str, Any]] = Field(title="Entries", description="The entries.")

    examples = (
        BlockExample(
            input={"url": f"{EXAMPLE_SERVER_URL}/feed.xml", "max_entries": 1},
            outputs=[
                ("title", "Loom news"),
                (
                    "entries",
                    [
                        {
                            "id": "post-1",
                            "title": "First post",
                            "link": "https://loom.example/1",
                            "summary": "Hello <b>world</b>",
                            "published": "2025-01-06T10:00:00+00:00",
                        }
                    ],
                ),
            ],
        ),
    )

    async def run(self, input: Input, context: BlockContext) -> AsyncIterator[tuple[str, Any]]:
        response, body = await fetch(context.config, "GET", input.url, max_bytes=MAX_FEED_BYTES)
        if response.status_code >= 400:
            raise BlockError(f"the feed answered {response.status_code}")
        title, entries = await asyncio.to_thread(parse_feed, body)
        yield "title", title
        yield "entries", entries[: input.max_entries]
