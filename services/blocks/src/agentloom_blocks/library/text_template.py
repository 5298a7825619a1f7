"""Renders a Jinja2 template in a sandbox, with values from a dict and from extra pins."""

from __future__ import annotations

import asyncio
import operator
from collections.abc import AsyncIterator, Mapping
from typing import Any

from jinja2 import ChainableUndefined
from jinja2.exceptions import SecurityError, TemplateSyntaxError
from jinja2.runtime import Context
from jinja2.sandbox import SandboxedEnvironment
from pydantic import BaseModel, ConfigDict, Field

from agentloom_blocks.sdk import Block, BlockContext, BlockError, BlockExample

# Templates come from users and run inside a runner: bound what one can make.
MAX_OUTPUT_CHARS = 1_000_000
MAX_EXPONENT = 1_000


class _BoundedSandbox(SandboxedEnvironment):
    """The Jinja sandbox, refusing `*` and `**` that would build huge values."""

    intercepted_binops = frozenset({"*", "**"})

    def call_binop(self, context: Context, op: str, left: Any, right: Any) -> Any:
        if op == "*":
            for sequence, times in ((left, right), (right, left)):
                if isinstance(sequence, str | list | tuple) and isinstance(times, int):
                    if len(sequence) * times > MAX_OUTPUT_CHARS:
                        raise SecurityError("the repeated value would be too large")
            return operator.mul(left, right)
        if op == "**":
            if isinstance(right, int | float) and abs(right) > MAX_EXPONENT:
                raise SecurityError(f"exponents beyond {MAX_EXPONENT} are not allowed")
            return operator.pow(left, right)
        return super().call_binop(context, op, left, right)


def render_template(source: str, variables: Mapping[str, Any]) -> str:
    """Render `source` with `variables`; any failure is a BlockError saying why.

    Undefined names render as empty text (also `{{ missing.attr }}`), rather than failing:
    a template is often written before every value it mentions is wired.
    """
    environment = _BoundedSandbox(undefined=ChainableUndefined, autoescape=False)
    try:
        template = environment.from_string(source)
        parts: list[str] = []
        size = 0
        for chunk in template.generate(variables):
            size += len(chunk)
            if size > MAX_OUTPUT_CHARS:
                raise BlockError(f"the rendered text exceeds {MAX_OUTPUT_CHARS} characters")
            parts.append(chunk)
    except BlockError:
        raise
    except TemplateSyntaxError as exc:
        raise BlockError(f"template syntax error at line {exc.lineno}: {exc.message}") from None
    except Exception as exc:  # syntax errors, sandbox refusals, errors inside expressions
        raise BlockError(f"template error: {type(exc).__name__}: {exc}") from None
    return "".join(parts)


class TextTemplateBlock(Block):
    id = "text_template_block"
    name = "Text template"
    description = (
        "Fills a Jinja2 template, e.g. 'Hello {{ name }}!', and yields the text. Variables come "
        "from `values` and from any extra input pin you wire (an extra pin wins over a key of "
        "`values` of the same name). Loops, conditions and filters work; undefined names render "
        "as empty text. Rendering is sandboxed."
    )
    categories = ("text",)
    cost_per_run = 1
    accepts_extra_inputs = True

    class Input(BaseModel):
        model_config = ConfigDict(extra="allow")

        template: str = Field(
            title="Template",
            description="A Jinja2 template: {{ name }} inserts a value, {% ... %} adds logic.",
        )
        values: dict[str, Any] = Field(
            default_factory=dict,
            title="Values",
            description="Variables for the template, by name.",
        )

    class Output(BaseModel):
        text: str = Field(title="Text", description="The rendered text.")

    examples = (
        BlockExample(
            input={"template": "Hello, {{ name }}!", "values": {"name": "Ada"}},
            outputs=[("text", "Hello, Ada!")],
        ),
        BlockExample(
            input={
                "template": "{% for t in topics %}- {{ t | upper }}\n{% endfor %}by {{ author }}",
                "values": {"author": "nobody"},
                "topics": ["bees", "ants"],
                "author": "Grace",
            },
            outputs=[("text", "- BEES\n- ANTS\nby Grace")],
            description="Extra pins are variables too, and win over `values`.",
        ),
        BlockExample(
            input={"template": "[{{ missing }}]"},
            outputs=[("text", "[]")],
            description="Undefined names render as empty text.",
        ),
        BlockExample(
            input={"template": "Hi\n{% endif %}"},
            outputs=[
                (
                    "error",
                    "template syntax error at line 2: Encountered unknown tag 'endif'.",
                )
            ],
        ),
    )

    async def run(self, input: Input, context: BlockContext) -> AsyncIterator[tuple[str, Any]]:
        variables = {**input.values, **(input.model_extra or {})}
        # In a thread: a heavy template must not stall the runner's event loop.
        yield "text", await asyncio.to_thread(render_template, input.template, variables)
