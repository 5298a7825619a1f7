from __future__ import annotations

import pytest

from agentloom_billing.domain import (
    MAX_ID_LENGTH,
    ChargeRequest,
    initial_grant_key,
    is_sufficient,
    optional_id,
    require_id,
    validate_amount,
)
from agentloom_common.errors import InvalidArgument


@pytest.mark.parametrize(
    ("balance", "amount", "sufficient"),
    [(10, 10, True), (10, 11, False), (10, 0, True), (0, 0, False), (0, 1, False)],
)
def test_is_sufficient_covers_amount_and_zero_means_any_credit(
    balance: int, amount: int, sufficient: bool
) -> None:
    assert is_sufficient(balance, amount) is sufficient


def test_validate_amount_rejects_negative_naming_the_field() -> None:
    assert validate_amount(0) == 0
    with pytest.raises(InvalidArgument) as raised:
        validate_amount(-1)
    assert raised.value.metadata == {"field": "amount"}


@pytest.mark.parametrize("value", ["", "   "])
def test_require_id_rejects_blank(value: str) -> None:
    with pytest.raises(InvalidArgument) as raised:
        require_id(value, "user_id")
    assert raised.value.metadata == {"field": "user_id"}


def test_ids_longer_than_the_limit_are_rejected() -> None:
    assert require_id("u" * MAX_ID_LENGTH, "user_id") == "u" * MAX_ID_LENGTH
    with pytest.raises(InvalidArgument):
        require_id("u" * (MAX_ID_LENGTH + 1), "user_id")
    with pytest.raises(InvalidArgument):
        optional_id("g" * (MAX_ID_LENGTH + 1), "graph_id")


def test_optional_id_maps_empty_to_none() -> None:
    assert optional_id("", "graph_id") is None
    assert optional_id("g1", "graph_id") == "g1"


def test_charge_request_parse_keeps_fields_and_drops_empty_ones() -> None:
    charge = ChargeRequest.parse(
        user_id="u1", idempotency_key="ne-1", amount=5, graph_id="g1", node_id=""
    )
    assert charge == ChargeRequest(user_id="u1", idempotency_key="ne-1", amount=5, graph_id="g1")


@pytest.mark.parametrize("key", ["grant:initial:u1", "refund:x", "top_up:x", "adjustment:x"])
def test_charge_request_rejects_keys_reserved_for_other_kinds(key: str) -> None:
    with pytest.raises(InvalidArgument) as raised:
        ChargeRequest.parse(user_id="u1", idempotency_key=key, amount=1)
    assert raised.value.metadata == {"field": "idempotency_key"}


def test_charge_request_accepts_a_usage_prefixed_key() -> None:
    charge = ChargeRequest.parse(user_id="u1", idempotency_key="usage:ne-1", amount=1)
    assert charge.idempotency_key == "usage:ne-1"


def test_initial_grant_key_names_the_user() -> None:
    assert initial_grant_key("u1") == "grant:initial:u1"
