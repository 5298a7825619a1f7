"""Small text tools: combine, word count, token count."""

from __future__ import annotations

import math
from collections.abc import AsyncIterator
from typing import Any

import regex  # type: ignore[import-untyped]
from pydantic import BaseModel, Field

from agentloom_blocks.sdk import Block, BlockContext, BlockExample

# Scripts written without spaces, where a tokenizer spends about one token per character.
_DENSE = regex.compile(r"[\p{Han}\p{Hiragana}\p{Katakana}\p{Hangul}\p{Thai}]")
CHARS_PER_TOKEN = 4


def estimate_tokens(text: str) -> int:
    """An estimate of the tokens a GPT-style BPE tokenizer makes of `text`.

    OpenAI's documented rule of thumb: one token is about 4 characters of English text.
    Characters of CJK/Thai scripts count one token each. Exact counts need the model's own
    tokenizer data, which this platform does not download at run time.
    """
    dense = len(_DENSE.findall(text))
    other = len(text) - dense
    return dense + math.ceil(other / CHARS_PER_TOKEN)


class CombineTextsBlock(Block):
    id = "combine_texts_block"
    name = "Combine texts"
    description = "Joins texts into one, with `delimiter` between them (nothing by default)."
    categories = ("text",)
    cost_per_run = 0

    class Input(BaseModel):
        texts: list[str] = Field(title="Texts", description="The texts to join, in order.")
        delimiter: str = Field(default="", title="Delimiter", description="What goes between.")

    class Output(BaseModel):
        text: str = Field(title="Text", description="The joined text.")

    examples = (
        BlockExample(
            input={"texts": ["Hello", "world"], "delimiter": ", "},
            outputs=[("text", "Hello, world")],
        ),
    )

    async def run(self, input: Input, context: BlockContext) -> AsyncIterator[tuple[str, Any]]:
        yield "text", input.delimiter.join(input.texts)


class WordCountBlock(Block):
    id = "word_count_block"
    name = "Word count"
    description = (
        "Counts the words (runs of letters, digits, apostrophes and hyphens), the characters "
        "and the lines of a text."
    )
    categories = ("text",)
    cost_per_run = 0

    class Input(BaseModel):
        text: str = Field(title="Text", description="The text to count.")

    class Output(BaseModel):
        words: int = Field(title="Words", description="How many words.")
        characters: int = Field(title="Characters", description="How many characters.")
        lines: int = Field(title="Lines", description="How many lines (0 for an empty text).")

    examples = (
        BlockExample(
            input={"text": "It's a well-known fact.\nTwo lines!"},
            outputs=[("words", 6), ("characters", 34), ("lines", 2)],
        ),
    )

    async def run(self, input: Input, context: BlockContext) -> AsyncIterator[tuple[str, Any]]:
        words = regex.findall(r"[\p{L}\p{N}]+(?:['\u2019\-][\p{L}\p{N}]+)*", input.text)
        yield "words", len(words)
        yield "characters", len(input.text)
        yield "lines", len(input.text.splitlines())


class TokenCountBlock(Block):
    id = "token_count_block"
    name = "Token count"
    description = (
        "Estimates how many LLM tokens a text takes (about 4 characters per token for "
        "English-like text, one per character for CJK and Thai), to budget prompts. It is an "
        "estimate, not the exact count of a given model's tokenizer."
    )
    categories = ("text", "ai")
    cost_per_run = 0

    class Input(BaseModel):
        text: str = Field(title="Text", description="The text to measure.")

    class Output(BaseModel):
        tokens: int = Field(title="Tokens", description="The estimated number of tokens.")

    examples = (
        BlockExample(input={"text": "Hello there, world!"}, outputs=[("tokens", 5)]),
        BlockExample(input={"text": "你好世界"}, outputs=[("tokens", 4)]),
    )

    async def run(self, input: Input, context: BlockContext) -> AsyncIterator[tuple[str, Any]]:
        yield "tokens", estimate_tokens(input.text)
