"""Every block keeps the contract the catalog, the builder and the scheduler rely on."""

from __future__ import annotations

import re

import pytest
from jsonschema import Draft202012Validator

from agentloom_blocks.registry import load_blocks
from agentloom_blocks.sdk import ERROR_PIN, Block, BlockKind

BLOCKS = [pytest.param(block, id=block_id) for block_id, block in load_blocks().items()]
SNAKE_CASE_BLOCK_ID = re.compile(r"^[a-z][a-z0-9]*(_[a-z0-9]+)*_block$")
CATEGORY = re.compile(r"^[a-z][a-z0-9_]*$")


def test_the_library_has_the_first_blocks() -> None:
    expected = {
        "text_input_block",
        "number_input_block",
        "output_block",
        "text_template_block",
        "llm_call_block",
        "step_through_items_block",
        "text_split_block",
        "count_items_block",
        "pass_through_block",
        "raise_error_block",
    }
    assert expected <= set(load_blocks())


def test_block_ids_are_unique_across_classes() -> None:
    classes = list(load_blocks().values())
    assert len({block.id for block in classes}) == len(classes)


@pytest.mark.parametrize("block", BLOCKS)
def test_block_describes_itself(block: type[Block]) -> None:
    assert SNAKE_CASE_BLOCK_ID.match(block.id), block.id
    assert block.name.strip()
    assert block.description.strip()
    assert block.categories
    assert all(CATEGORY.match(category) for category in block.categories), block.categories
    assert block.cost_per_run >= 0
    assert block.examples, "every block ships at least one example"


@pytest.mark.parametrize("block", BLOCKS)
def test_block_schemas_are_valid_json_schema(block: type[Block]) -> None:
    Draft202012Validator.check_schema(block.input_schema())
    Draft202012Validator.check_schema(block.output_schema())


@pytest.mark.parametrize("block", BLOCKS)
def test_pins_are_titled_and_described(block: type[Block]) -> None:
    for model in (block.Input, block.Output):
        for name, field in model.model_fields.items():
            assert field.title, f"{model.__qualname__}.{name} has no title"
            assert field.description, f"{model.__qualname__}.{name} has no description"


@pytest.mark.parametrize("block", BLOCKS)
def test_no_pin_is_named_error(block: type[Block]) -> None:
    assert ERROR_PIN not in block.Output.model_fields
    assert ERROR_PIN not in block.Input.model_fields


@pytest.mark.parametrize("block", BLOCKS)
def test_only_blocks_accepting_extra_inputs_keep_them(block: type[Block]) -> None:
    keeps_extras = block.Input.model_config.get("extra") == "allow"
    assert keeps_extras == block.accepts_extra_inputs


@pytest.mark.parametrize("block", BLOCKS)
def test_input_and_output_blocks_name_a_graph_io(block: type[Block]) -> None:
    if block.kind in (BlockKind.INPUT, BlockKind.OUTPUT):
        assert {"name", "value"} <= block.input_pins()
    if block.kind is BlockKind.INPUT:
        assert block.graph_io_name({}) is not None, "an input block has a default name"


@pytest.mark.parametrize("block", BLOCKS)
def test_examples_are_valid(block: type[Block]) -> None:
    input_validator = Draft202012Validator(block.input_schema())
    for example in block.examples:
        block.Input.model_validate(example.input)
        input_validator.validate(example.input)
        if not block.accepts_extra_inputs:
            assert set(example.input) <= block.input_pins()
        assert {pin for pin, _ in example.outputs} <= block.output_pins()
        errors = [index for index, (pin, _) in enumerate(example.outputs) if pin == ERROR_PIN]
        assert errors in ([], [len(example.outputs) - 1]), "an error can only end a run"
