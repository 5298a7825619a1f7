"""Regular expressions on text, with a time limit so no pattern can stall a runner."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import regex  # type: ignore[import-untyped]
from pydantic import BaseModel, Field

from agentloom_blocks.sdk import Block, BlockContext, BlockError, BlockExample

# Catastrophic backtracking ("(a+)+$" on "aaaa...b") stops here instead of running forever.
TIMEOUT_S = 1.0
MAX_MATCHES = 10_000


def _compile(pattern: str, ignore_case: bool, multiline: bool) -> Any:
    flags = regex.V0
    if ignore_case:
        flags |= regex.IGNORECASE
    if multiline:
        flags |= regex.MULTILINE | regex.DOTALL
    try:
        return regex.compile(pattern, flags)
    except regex.error as exc:
        raise BlockError(f"invalid pattern: {exc}") from None


def _timed_out() -> BlockError:
    return BlockError(f"the pattern took longer than {TIMEOUT_S:g}s on this text")


class _RegexInput(BaseModel):
    text: str = Field(title="Text", description="The text to search.")
    pattern: str = Field(
        title="Pattern", description="A regular expression (Python syntax, e.g. \\d+)."
    )
    ignore_case: bool = Field(default=False, title="Ignore case", description="Case-insensitive.")
    multiline: bool = Field(
        default=False,
        title="Multiline",
        description="^ and $ match at each line; . matches newlines too.",
    )


class RegexMatchBlock(Block):
    id = "regex_match_block"
    name = "Regex match"
    description = (
        "Finds the first match of a pattern: yields the matched text on `match` and its "
        "named groups (or numbered groups) on `groups`, or the text on `no_match`."
    )
    categories = ("text",)
    cost_per_run = 0

    class Input(_RegexInput):
        pass

    class Output(BaseModel):
        match: str = Field(title="Match", description="The text matched.")
        groups: dict[str, Any] = Field(
            title="Groups", description="Named groups, or groups by number ('1', '2'...)."
        )
        no_match: str = Field(title="No match", description="The text, when nothing matches.")

    examples = (
        BlockExample(
            input={"text": "Order #123 shipped", "pattern": r"#(?P<id>\d+)"},
            outputs=[("match", "#123"), ("groups", {"id": "123"})],
        ),
        BlockExample(
            input={"text": "no digits", "pattern": r"\d+"}, outputs=[("no_match", "no digits")]
        ),
        BlockExample(
            input={"text": "x", "pattern": "("},
            outputs=[("error", "invalid pattern: missing ) at position 1")],
        ),
    )

    async def run(self, input: Input, context: BlockContext) -> AsyncIterator[tuple[str, Any]]:
        compiled = _compile(input.pattern, input.ignore_case, input.multiline)
        try:
            found = await asyncio.to_thread(compiled.search, input.text, timeout=TIMEOUT_S)
        except TimeoutError:
            raise _timed_out() from None
        if found is None:
            yield "no_match", input.text
            return
        named = found.groupdict()
        groups = named or {str(i + 1): g for i, g in enumerate(found.groups())}
        yield "match", found.group(0)
        yield "groups", groups


class RegexExtractAllBlock(Block):
    id = "regex_extract_all_block"
    name = "Regex extract all"
    description = (
        "Finds every match of a pattern and yields them as one list on `matches`: the matched "
        "text, or the first group when the pattern has groups."
    )
    categories = ("text",)
    cost_per_run = 0

    class Input(_RegexInput):
        pass

    class Output(BaseModel):
        matches: list[str] = Field(title="Matches", description="Every match, in order.")

    examples = (
        BlockExample(
            input={"text": "a1 b22 c333", "pattern": r"[a-z](\d+)"},
            outputs=[("matches", ["1", "22", "333"])],
        ),
        BlockExample(
            input={"text": "a" * 40, "pattern": r"(a|aa)+b"},
            outputs=[("error", "the pattern took longer than 1s on this text")],
            description="Catastrophic backtracking is cut off.",
        ),
    )

    async def run(self, input: Input, context: BlockContext) -> AsyncIterator[tuple[str, Any]]:
        compiled = _compile(input.pattern, input.ignore_case, input.multiline)

        def extract() -> list[str]:
            matches: list[str] = []
            for found in compiled.finditer(input.text, timeout=TIMEOUT_S):
                matches.append(found.group(1) if compiled.groups else found.group(0))
                if len(matches) >= MAX_MATCHES:
                    break
            return matches

        try:
            matches = await asyncio.to_thread(extract)
        except TimeoutError:
            raise _timed_out() from None
        yield "matches", [m or "" for m in matches]


class TextReplaceBlock(Block):
    id = "text_replace_block"
    name = "Replace text"
    description = (
        "Replaces every occurrence of `old` with `new`, literally or (with `use_regex`) as a "
        "pattern whose groups `new` can use as \\1 or \\g<name>."
    )
    categories = ("text",)
    cost_per_run = 0

    class Input(BaseModel):
        text: str = Field(title="Text", description="The text to change.")
        old: str = Field(min_length=1, title="Old", description="What to replace.")
        new: str = Field(default="", title="New", description="The replacement.")
        use_regex: bool = Field(
            default=False, title="Use regex", description="Treat `old` as a regular expression."
        )

    class Output(BaseModel):
        text: str = Field(title="Text", description="The changed text.")

    examples = (
        BlockExample(input={"text": "a-b-c", "old": "-", "new": "+"}, outputs=[("text", "a+b+c")]),
        BlockExample(
            input={
                "text": "2025-01-06",
                "old": r"(\d+)-(\d+)-(\d+)",
                "new": r"\3/\2/\1",
                "use_regex": True,
            },
            outputs=[("text", "06/01/2025")],
        ),
    )

    async def run(self, input: Input, context: BlockContext) -> AsyncIterator[tuple[str, Any]]:
        if not input.use_regex:
            yield "text", input.text.replace(input.old, input.new)
            return
        compiled = _compile(input.old, False, False)
        try:
            text = await asyncio.to_thread(compiled.sub, input.new, input.text, timeout=TIMEOUT_S)
        except TimeoutError:
            raise _timed_out() from None
        except (regex.error, IndexError) as exc:
            raise BlockError(f"invalid replacement: {exc}") from None
        yield "text", text
