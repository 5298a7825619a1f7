"""Envelope encryption of integration credentials (pure: no I/O).

Each credential's secret fields are sealed with AES-256-GCM under a fresh 256-bit data key;
the data key is itself sealed with the current key-encryption key (KEK), and both seals bind
`owner id | credential id` as associated data, so a sealed row copied onto another user or
credential does not open. KEKs are versioned by id: the current one wraps new data keys,
older ones still unwrap until `rewrap` has moved every data key to the current one.
Any failure to open is `VaultError`: loud, never an empty secret."""

from __future__ import annotations

import base64
import binascii
import json
import os
import uuid
from collections.abc import Mapping
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

_NONCE_BYTES = 12
_KEY_BYTES = 32
SCHEME = 1


class VaultError(Exception):
    """A credential cannot be sealed or opened (unknown KEK, tampered or misbound data)."""


@dataclass(frozen=True)
class Sealed:
    kek_id: str
    wrapped_key: bytes  # nonce | AES-GCM(KEK, data key)
    ciphertext: bytes  # nonce | AES-GCM(data key, secret fields as JSON)


def _aad(owner_id: uuid.UUID, credential_id: uuid.UUID, part: str) -> bytes:
    return f"agentloom/credential/v{SCHEME}/{part}/{owner_id}/{credential_id}".encode()


def _seal(key: bytes, plaintext: bytes, aad: bytes) -> bytes:
    nonce = os.urandom(_NONCE_BYTES)
    return nonce + AESGCM(key).encrypt(nonce, plaintext, aad)


def _open(key: bytes, sealed: bytes, aad: bytes) -> bytes:
    return AESGCM(key).decrypt(sealed[:_NONCE_BYTES], sealed[_NONCE_BYTES:], aad)


class KeyRing:
    """The key-encryption keys by id, and which one is current."""

    def __init__(self, keks: Mapping[str, bytes], current: str) -> None:
        if current not in keks:
            raise VaultError(f"the current key-encryption key {current!r} is not configured")
        for kek_id, kek in keks.items():
            if len(kek) != _KEY_BYTES:
                raise VaultError(f"key-encryption key {kek_id!r} is not 32 bytes")
        self._keks = dict(keks)
        self.current = current

    @classmethod
    def from_base64(cls, keks: Mapping[str, str], current: str) -> KeyRing:
        try:
            decoded = {
                kek_id: base64.b64decode(value, validate=True) for kek_id, value in keks.items()
            }
        except (binascii.Error, ValueError) as error:
            raise VaultError("a key-encryption key is not valid base64") from error
        return cls(decoded, current)

    def _kek(self, kek_id: str) -> bytes:
        try:
            return self._keks[kek_id]
        except KeyError:
            raise VaultError(f"key-encryption key {kek_id!r} is not configured") from None

    def seal(
        self, owner_id: uuid.UUID, credential_id: uuid.UUID, secrets: Mapping[str, str]
    ) -> Sealed:
        data_key = AESGCM.generate_key(bit_length=256)
        plaintext = json.dumps(dict(secrets), separators=(",", ":")).encode()
        ciphertext = _seal(data_key, plaintext, _aad(owner_id, credential_id, "data"))
        wrapped = _seal(self._kek(self.current), data_key, _aad(owner_id, credential_id, "key"))
        return Sealed(self.current, wrapped, ciphertext)

    def _data_key(self, owner_id: uuid.UUID, credential_id: uuid.UUID, sealed: Sealed) -> bytes:
        try:
            return _open(
                self._kek(sealed.kek_id),
                sealed.wrapped_key,
                _aad(owner_id, credential_id, "key"),
            )
        except (InvalidTag, ValueError) as error:
            raise VaultError("the data key does not open") from error

    def open(self, owner_id: uuid.UUID, credential_id: uuid.UUID, sealed: Sealed) -> dict[str, str]:
        data_key = self._data_key(owner_id, credential_id, sealed)
        try:
            plaintext = _open(data_key, sealed.ciphertext, _aad(owner_id, credential_id, "data"))
            secrets = json.loads(plaintext)
        except (InvalidTag, ValueError) as error:
            raise VaultError("the secret does not open") from error
        if not isinstance(secrets, dict):
            raise VaultError("the secret is not a set of fields")
        return {str(name): str(value) for name, value in secrets.items()}

    def rewrap(self, owner_id: uuid.UUID, credential_id: uuid.UUID, sealed: Sealed) -> Sealed:
        """The same ciphertext with its data key wrapped by the current KEK."""
        data_key = self._data_key(owner_id, credential_id, sealed)
        wrapped = _seal(self._kek(self.current), data_key, _aad(owner_id, credential_id, "key"))
        return Sealed(self.current, wrapped, sealed.ciphertext)
