"""The cost table: what a block run costs, declared in one file (costs.yaml) and priced here.

Prices are exact sums of the table's integer rates times the usage, rounded up once to whole
credits. Pure: no I/O beyond reading the table at start.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from fnmatch import fnmatchcase
from fractions import Fraction
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, NonNegativeInt

from agentloom_billing.domain import TokenCount, UsageFigures

# Rough size of a token in characters, for estimates only (charges use measured tokens).
CHARS_PER_TOKEN = 4


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TokenRate(_Strict):
    """Credits per 1000 tokens for the models matching the glob `model`."""

    model: str = Field(min_length=1)
    prompt: NonNegativeInt = 0
    completion: NonNegativeInt = 0


class EstimateHints(_Strict):
    """What an estimate assumes about a run before it happens."""

    seconds: float = Field(default=0, ge=0)
    input_bytes: NonNegativeInt = 0
    output_bytes: NonNegativeInt = 0
    # The input naming the model, its default, the inputs whose text is the prompt, and the
    # input capping the answer's tokens (else `completion_tokens`).
    model_input: str | None = None
    default_model: str = ""
    prompt_inputs: tuple[str, ...] = ()
    prompt_tokens: NonNegativeInt = 0
    max_tokens_input: str | None = None
    completion_tokens: NonNegativeInt = 0


class BlockCost(_Strict):
    per_run: NonNegativeInt = 0
    per_kb_input: NonNegativeInt = 0
    per_kb_output: NonNegativeInt = 0
    per_second: NonNegativeInt = 0
    per_1k_tokens: tuple[TokenRate, ...] = ()
    estimate: EstimateHints = EstimateHints()


@dataclass(frozen=True)
class NodeCost:
    credits: int
    seconds: float


class CostTable(_Strict):
    """Costs per block id; `default` prices blocks the table does not list."""

    default: BlockCost
    blocks: dict[str, BlockCost] = {}

    def for_block(self, block_id: str | None) -> BlockCost:
        return self.blocks.get(block_id or "", self.default)

    def free_without_tokens(self, block_id: str) -> bool:
        """Whether a run of the block prices 0 whenever it reports no LLM tokens."""
        cost = self.for_block(block_id)
        return not (cost.per_run or cost.per_kb_input or cost.per_kb_output or cost.per_second)

    def token_rate(self, block_id: str | None, model: str) -> TokenRate | None:
        """The first rate whose glob matches the model: the block's own, then the default's."""
        for rate in (*self.for_block(block_id).per_1k_tokens, *self.default.per_1k_tokens):
            if fnmatchcase(model, rate.model):
                return rate
        return None

    def price(self, block_id: str | None, usage: UsageFigures) -> int:
        """Whole credits for one run of the block with this usage (rounded up once)."""
        cost = self.for_block(block_id)
        exact = (
            Fraction(cost.per_run)
            + Fraction(cost.per_kb_input * usage.input_bytes, 1024)
            + Fraction(cost.per_kb_output * usage.output_bytes, 1024)
            + Fraction(cost.per_second * usage.duration_ms, 1000)
        )
        for tokens in usage.tokens:
            rate = self.token_rate(block_id, tokens.model)
            if rate is not None:
                exact += Fraction(
                    rate.prompt * tokens.prompt + rate.completion * tokens.completion, 1000
                )
        return math.ceil(exact)

    def estimate(self, block_id: str, input_default: dict[str, Any]) -> NodeCost:
        """One run of a node with these static inputs, as the table's hints expect it."""
        cost = self.for_block(block_id)
        hints = cost.estimate
        usage = UsageFigures(
            input_bytes=len(json.dumps(input_default).encode()) + hints.input_bytes,
            output_bytes=hints.output_bytes,
            duration_ms=round(hints.seconds * 1000),
            tokens=_estimated_tokens(hints, input_default),
        )
        return NodeCost(credits=self.price(block_id, usage), seconds=hints.seconds)


def _estimated_tokens(hints: EstimateHints, inputs: dict[str, Any]) -> tuple[TokenCount, ...]:
    chosen = inputs.get(hints.model_input) if hints.model_input else None
    model = chosen if isinstance(chosen, str) and chosen else hints.default_model
    if not model:
        return ()
    prompt_chars = sum(len(str(inputs.get(name) or "")) for name in hints.prompt_inputs)
    cap = inputs.get(hints.max_tokens_input) if hints.max_tokens_input else None
    completion = cap if isinstance(cap, int) and cap > 0 else hints.completion_tokens
    prompt = math.ceil(prompt_chars / CHARS_PER_TOKEN) + hints.prompt_tokens
    return (TokenCount(model=model, prompt=prompt, completion=completion),)


def load_cost_table(path: Path | None = None) -> CostTable:
    """The table at `path`, or the one shipped with the service; invalid raises at start."""
    if path is None:
        text = resources.files("agentloom_billing").joinpath("costs.yaml").read_text()
    else:
        text = path.read_text()
    return CostTable.model_validate(yaml.safe_load(text))
