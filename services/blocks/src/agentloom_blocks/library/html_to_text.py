"""Extracts the readable text of an HTML document."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from bs4 import BeautifulSoup
from pydantic import BaseModel, Field

from agentloom_blocks.sdk import Block, BlockContext, BlockExample

_INVISIBLE = ("script", "style", "noscript", "template", "head")
_BLOCKS = (
    "address", "article", "aside", "blockquote", "dd", "div", "dl", "dt", "figcaption",
    "figure", "footer", "form", "h1", "h2", "h3", "h4", "h5", "h6", "header", "hr", "li",
    "main", "nav", "ol", "p", "pre", "section", "table", "td", "th", "tr", "ul",
)  # fmt: skip


def html_to_text(html: str) -> tuple[str, str]:
    """(title, visible text with one line per block of text)."""
    soup = BeautifulSoup(html, "html.parser")
    title = soup.title.get_text(strip=True) if soup.title else ""
    for tag in soup(_INVISIBLE):
        tag.decompose()
    for tag in soup("br"):
        tag.replace_with("\n")
    for tag in soup(_BLOCKS):
        tag.insert_before("\n")
        tag.insert_after("\n")
    lines = (" ".join(line.split()) for line in soup.get_text().splitlines())
    return title, "\n".join(line for line in lines if line)


class HtmlToTextBlock(Block):
    id = "html_to_text_block"
    name = "Extract text from HTML"
    description = (
        "Yields the visible text of an HTML page (no scripts, styles or tags), one line per "
        "piece of text, and the page's title."
    )
    categories = ("text", "web")
    cost_per_run = 0

    class Input(BaseModel):
        html: str = Field(title="HTML", description="The HTML document or fragment.")

    class Output(BaseModel):
        text: str = Field(title="Text", description="The visible text.")
        title: str = Field(title="Title", description="The <title>, or empty.")

    examples = (
        BlockExample(
            input={
                "html": "<html><head><title>Hi</title><style>b{}</style></head>"
                "<body><h1>Welcome</h1><p>Weave <b>agents</b>.</p><script>x=1</script></body>"
                "</html>"
            },
            outputs=[("text", "Welcome\nWeave agents."), ("title", "Hi")],
        ),
    )

    async def run(self, input: Input, context: BlockContext) -> AsyncIterator[tuple[str, Any]]:
        title, text = await asyncio.to_thread(html_to_text, input.html)
        yield "text", text
        yield "title", title
