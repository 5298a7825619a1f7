"""Envelope encryption: per-credential data keys, versioned KEKs, AAD binding, loud failures."""

from __future__ import annotations

import dataclasses
import os
import uuid

import pytest

from agentloom_gateway.vault import KeyRing, VaultError

OWNER, OTHER, CRED = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
SECRETS = {"api_key": "sk-canary-0123456789"}


def _ring(current: str = "k1", **keks: bytes) -> KeyRing:
    return KeyRing(keks or {"k1": os.urandom(32)}, current)


def test_a_sealed_credential_opens_for_its_owner_and_id_only() -> None:
    ring = _ring()
    sealed = ring.seal(OWNER, CRED, SECRETS)
    assert SECRETS["api_key"].encode() not in sealed.ciphertext + sealed.wrapped_key
    assert ring.open(OWNER, CRED, sealed) == SECRETS
    with pytest.raises(VaultError):
        ring.open(OTHER, CRED, sealed)
    with pytest.raises(VaultError):
        ring.open(OWNER, uuid.uuid4(), sealed)


def test_each_credential_gets_its_own_data_key() -> None:
    ring = _ring()
    first, second = ring.seal(OWNER, CRED, SECRETS), ring.seal(OWNER, CRED, SECRETS)
    assert first.ciphertext != second.ciphertext
    assert first.wrapped_key != second.wrapped_key


def test_tampering_is_loud() -> None:
    ring = _ring()
    sealed = ring.seal(OWNER, CRED, SECRETS)
    flipped = bytes([sealed.ciphertext[-1] ^ 1])
    with pytest.raises(VaultError):
        ring.open(
            OWNER, CRED, dataclasses.replace(sealed, ciphertext=sealed.ciphertext[:-1] + flipped)
        )
    with pytest.raises(VaultError):
        ring.open(OWNER, CRED, dataclasses.replace(sealed, wrapped_key=os.urandom(60)))
    with pytest.raises(VaultError):
        ring.open(OWNER, CRED, dataclasses.replace(sealed, kek_id="gone"))


def test_rotation_rewraps_the_data_key_and_keeps_the_ciphertext() -> None:
    old, new = os.urandom(32), os.urandom(32)
    sealed = _ring("k1", k1=old).seal(OWNER, CRED, SECRETS)
    both = _ring("k2", k1=old, k2=new)
    assert both.open(OWNER, CRED, sealed) == SECRETS  # old KEK still opens during rotation
    rewrapped = both.rewrap(OWNER, CRED, sealed)
    assert rewrapped.kek_id == "k2" and rewrapped.ciphertext == sealed.ciphertext
    assert _ring("k2", k2=new).open(OWNER, CRED, rewrapped) == SECRETS
    with pytest.raises(VaultError):
        _ring("k2", k2=new).open(OWNER, CRED, sealed)


def test_bad_key_rings_are_refused() -> None:
    with pytest.raises(VaultError):
        KeyRing({"k1": os.urandom(32)}, "k2")
    with pytest.raises(VaultError):
        KeyRing({"k1": os.urandom(16)}, "k1")
    with pytest.raises(VaultError):
        KeyRing.from_base64({"k1": "not base64!"}, "k1")
