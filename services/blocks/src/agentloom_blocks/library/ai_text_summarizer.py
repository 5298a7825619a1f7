"""Summarises text of any length: chunks, summaries of chunks, a summary of summaries."""

from __future__ import annotations

import enum
from collections.abc import AsyncIterator
from typing import Any

from pydantic import BaseModel, Field

from agentloom_blocks.library.text_tools import CHARS_PER_TOKEN
from agentloom_blocks.providers import LLM_CREDENTIALS, ChatRequest, add_usage, chat
from agentloom_blocks.sdk import Block, BlockContext, BlockCosts, BlockError, BlockExample

MAX_ROUNDS = 5


class SummaryStyle(enum.StrEnum):
    CONCISE = "concise"
    DETAILED = "detailed"
    BULLET_POINTS = "bullet points"
    NUMBERED_LIST = "numbered list"


def split_into_chunks(text: str, chunk_chars: int, overlap_chars: int) -> list[str]:
    """Pieces of at most `chunk_chars`, cut at whitespace where possible, overlapping a bit."""
    text = text.strip()
    chunks: list[str] = []
    start = 0
    while start < len(text):
        end = min(start + chunk_chars, len(text))
        if end < len(text):
            cut = text.rfind(" ", start + chunk_chars // 2, end)
            end = cut if cut > start else end
        chunks.append(text[start:end].strip())
        if end >= len(text):
            break
        start = max(end - overlap_chars, start + 1)
    return [chunk for chunk in chunks if chunk]


class AiTextSummarizerBlock(Block):
    id = "ai_text_summarizer_block"
    name = "AI text summariser"
    description = (
        "Summarises a text of any length: splits it into chunks that fit the model, "
        "summarises each, then summarises the summaries until one is left. Yields the "
        "`summary` and the tokens used on `usage`."
    )
    categories = ("ai", "text")
    cost_per_run = 1
    costs = BlockCosts(per_1k_tokens=1)
    credentials = LLM_CREDENTIALS

    class Input(BaseModel):
        text: str = Field(min_length=1, title="Text", description="The text to summarise.")
        model: str = Field(default="gpt-4o-mini", title="Model", description="The model to call.")
        focus: str = Field(
            default="the main points", title="Focus", description="What the summary is about."
        )
        style: SummaryStyle = Field(
            default=SummaryStyle.CONCISE, title="Style", description="The shape of the summary."
        )
        max_tokens: int | None = Field(
            default=None, ge=1, title="Max tokens", description="The longest summary, in tokens."
        )
        chunk_tokens: int = Field(
            default=4000,
            ge=10,
            le=100_000,
            title="Chunk size (tokens)",
            description="How much text goes into one call (estimated at 4 characters a token).",
            json_schema_extra={"advanced": True},
        )
        chunk_overlap_tokens: int = Field(
            default=100,
            ge=0,
            title="Chunk overlap (tokens)",
            description="How much consecutive chunks share, so no sentence is lost at a cut.",
            json_schema_extra={"advanced": True},
        )

    class Output(BaseModel):
        summary: str = Field(title="Summary", description="The summary.")
        usage: dict[str, int] = Field(title="Usage", description="Tokens used by every call.")

    examples = (
        BlockExample(
            input={
                "text": "Bees live in colonies. A queen lays the eggs. Workers gather nectar.",
                "style": "bullet points",
            },
            outputs=[
                (
                    "summary",
                    "summary: Summarise the following text, focusing on the main points, as "
                    "bullet points:",
                ),
                ("usage", {"prompt_tokens": 24, "completion_tokens": 13, "total_tokens": 37}),
            ],
            description="A short text is summarised in one call.",
        ),
        BlockExample(
            input={
                "text": " ".join(f"word{i}" for i in range(60)),
                "chunk_tokens": 60,
                "chunk_overlap_tokens": 5,
            },
            outputs=[
                (
                    "summary",
                    "summary: Combine these partial summaries into one summary, focusing on "
                    "the main points,",
                ),
                ("usage", {"prompt_tokens": 131, "completion_tokens": 39, "total_tokens": 170}),
            ],
            description="A long text: each chunk is summarised, then the summaries.",
        ),
    )

    async def run(self, input: Input, context: BlockContext) -> AsyncIterator[tuple[str, Any]]:
        usage: dict[str, int] = {}
        chunk_chars = input.chunk_tokens * CHARS_PER_TOKEN
        overlap_chars = min(input.chunk_overlap_tokens * CHARS_PER_TOKEN, chunk_chars // 2)

        async def summarise(text: str, instruction: str) -> str:
            nonlocal usage
            prompt = f"{instruction}, focusing on {input.focus}, as {input.style.value}:\n\n{text}"
            request = ChatRequest(
                input.model, [{"role": "user", "content": prompt}], max_tokens=input.max_tokens
            )
            result = await chat(context, request)
            usage = add_usage(usage, result.usage)
            return result.text.strip()

        chunks = split_into_chunks(input.text, chunk_chars, overlap_chars)
        if len(chunks) == 1:
            summary = await summarise(chunks[0], "Summarise the following text")
        else:
            summaries = [await summarise(c, "Summarise this part of a longer text") for c in chunks]
            for _round in range(MAX_ROUNDS):
                joined = "\n\n".join(summaries)
                groups = split_into_chunks(joined, chunk_chars, 0)
                if len(groups) == 1 or _round == MAX_ROUNDS - 1:
                    instruction = "Combine these partial summaries into one summary"
                    summary = await summarise(joined, instruction)
                    break
                summaries = [await summarise(g, "Summarise these summaries") for g in groups]
            else:  # pragma: no cover - the loop always breaks
                raise BlockError("the summary did not converge")
        yield "summary", summary
        yield "usage", usage
