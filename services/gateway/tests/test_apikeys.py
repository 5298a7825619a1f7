"""The API key format: shape, randomness, checksum."""

from __future__ import annotations

import re

import pytest

from agentloom_gateway import apikeys

KEY_SHAPE = re.compile(r"^agl_[0-9A-Za-z]{16}_[0-9A-Za-z]{43}_[0-9A-Za-z]{6}$")


def test_generated_key_has_the_documented_shape() -> None:
    key, parts = apikeys.generate()
    assert KEY_SHAPE.match(key)
    assert len(key) == apikeys.KEY_LENGTH
    assert key.startswith(f"agl_{parts.public_id}_{parts.secret}_")


def test_generated_keys_are_unique() -> None:
    keys = {apikeys.generate()[0] for _ in range(200)}
    public_ids = {key.split("_")[1] for key in keys}
    assert len(keys) == len(public_ids) == 200


def test_parse_returns_the_parts_of_a_valid_key() -> None:
    key, parts = apikeys.generate()
    assert apikeys.parse(key) == parts


def test_checksum_is_crc32_of_everything_before_it() -> None:
    key, _ = apikeys.generate()
    body, check = key.rsplit("_", 1)
    assert apikeys.checksum(body) == check


def _flip(char: str) -> str:
    return "B" if char == "A" else "A"


@pytest.mark.parametrize("position", [5, 25, 60, -1])
def test_parse_rejects_a_key_with_one_changed_character(position: int) -> None:
    key, _ = apikeys.generate()
    index = position % len(key)
    typo = key[:index] + _flip(key[index]) + key[index + 1 :]
    assert apikeys.parse(typo) is None


@pytest.mark.parametrize(
    "key",
    [
        "",
        "agl_",
        "not a key",
        "agl_" + "a" * 67,
        "sk_" + "a" * 68,
        "agl_" + "é" * 67,
    ],
)
def test_parse_rejects_malformed_keys(key: str) -> None:
    assert apikeys.parse(key) is None


def test_parse_rejects_a_valid_key_with_another_prefix() -> None:
    _, parts = apikeys.generate()
    body = f"xyz_{parts.public_id}_{parts.secret}"
    assert apikeys.parse(f"{body}_{apikeys.checksum(body)}") is None


def test_hash_depends_on_the_pepper() -> None:
    assert apikeys.hash_secret("s", b"one") != apikeys.hash_secret("s", b"two")
    assert len(apikeys.hash_secret("s", b"one")) == 32
