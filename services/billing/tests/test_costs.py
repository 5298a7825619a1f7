"""The cost table: pricing from usage, model globs, rounding, validation, estimates."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from agentloom_billing.costs import CostTable, load_cost_table
from agentloom_billing.domain import TokenCount, UsageFigures

TABLE = CostTable.model_validate(
    {
        "default": {"per_run": 2, "per_1k_tokens": [{"model": "*", "prompt": 1, "completion": 1}]},
        "blocks": {
            "free": {},
            "bytes": {"per_run": 1, "per_kb_input": 4, "per_kb_output": 8},
            "timed": {"per_second": 3},
            "llm": {
                "per_run": 1,
                "per_1k_tokens": [
                    {"model": "gpt-4o-mini*", "prompt": 1, "completion": 2},
                    {"model": "gpt-4*", "prompt": 10, "completion": 30},
                ],
                "estimate": {
                    "seconds": 2,
                    "model_input": "model",
                    "default_model": "gpt-4o-mini",
                    "prompt_inputs": ["prompt"],
                    "max_tokens_input": "max_tokens",
                    "completion_tokens": 1000,
                },
            },
        },
    }
)


def test_unknown_block_costs_the_default_per_run() -> None:
    assert TABLE.price("not-in-the-table", UsageFigures()) == 2
    assert TABLE.price(None, UsageFigures()) == 2


def test_listed_block_without_rates_is_free() -> None:
    assert TABLE.price("free", UsageFigures(input_bytes=10**6, duration_ms=10**6)) == 0


def test_blocks_free_without_tokens_are_those_priced_zero_for_any_tokenless_usage() -> None:
    assert TABLE.free_without_tokens("free")
    assert not TABLE.free_without_tokens("bytes")
    assert not TABLE.free_without_tokens("timed")
    assert not TABLE.free_without_tokens("llm")
    assert not TABLE.free_without_tokens("not-in-the-table")  # the default charges per run
    usage = UsageFigures(input_bytes=10**6, output_bytes=10**6, duration_ms=10**6)
    for block_id in ("free", "bytes", "timed", "llm", "other"):
        assert TABLE.free_without_tokens(block_id) == (TABLE.price(block_id, usage) == 0)


def test_bytes_are_priced_per_kb_and_rounded_up_once() -> None:
    # 1 + 4 * 512/1024 + 8 * 256/1024 = 1 + 2 + 2
    assert TABLE.price("bytes", UsageFigures(input_bytes=512, output_bytes=256)) == 5
    # 1 + 4/1024 + 8/1024: the fractions add up before the one rounding.
    assert TABLE.price("bytes", UsageFigures(input_bytes=1, output_bytes=1)) == 2


def test_run_time_is_priced_per_second() -> None:
    assert TABLE.price("timed", UsageFigures(duration_ms=2500)) == 8  # 7.5 rounded up
    assert TABLE.price("timed", UsageFigures(duration_ms=0)) == 0


def test_tokens_take_the_first_matching_model_glob() -> None:
    mini = UsageFigures(tokens=(TokenCount("gpt-4o-mini-2024", 1000, 1000),))
    big = UsageFigures(tokens=(TokenCount("gpt-4-turbo", 1000, 1000),))
    assert TABLE.price("llm", mini) == 1 + 1 + 2
    assert TABLE.price("llm", big) == 1 + 10 + 30


def test_a_model_the_block_does_not_list_falls_back_to_the_default_rates() -> None:
    usage = UsageFigures(tokens=(TokenCount("claude-3", 2000, 0), TokenCount("gpt-4", 0, 100)))
    # default rate 1/1k for claude (2), gpt-4 completion 30 * 0.1 = 3
    assert TABLE.price("llm", usage) == 1 + 2 + 3


def test_estimate_reads_model_prompt_and_max_tokens_from_the_inputs() -> None:
    default = TABLE.estimate("llm", {"prompt": "x" * 4000})
    # 1 per run, 4 + 8 bytes/kb... no byte rates; 1000 prompt tokens at 1, 1000 completion at 2
    assert (default.credits, default.seconds) == (1 + 1 + 2, 2)
    chosen = TABLE.estimate("llm", {"prompt": "", "model": "gpt-4", "max_tokens": 100})
    assert chosen.credits == 1 + 3


def test_table_rejects_unknown_fields_and_negative_rates() -> None:
    with pytest.raises(ValidationError):
        CostTable.model_validate({"default": {"per_run": -1}})
    with pytest.raises(ValidationError):
        CostTable.model_validate({"default": {}, "blocks": {"b": {"per_rnu": 1}}})


def test_shipped_table_loads_and_prices_every_free_io_block_at_zero() -> None:
    table = load_cost_table()
    for block_id in ("text_input_block", "output_block", "number_input_block"):
        assert table.price(block_id, UsageFigures(input_bytes=100)) == 0
    assert table.price("llm_call_block", UsageFigures()) == 1


def test_operator_table_replaces_the_shipped_one(tmp_path: Path) -> None:
    path = tmp_path / "costs.yaml"
    path.write_text("default: {per_run: 7}\n")
    assert load_cost_table(path).price("llm_call_block", UsageFigures()) == 7
