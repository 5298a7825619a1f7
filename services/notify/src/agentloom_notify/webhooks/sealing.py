"""Endpoint signing secrets at rest: AES-256-GCM under a versioned key (pure: no I/O).

The sealed bytes are `nonce | ciphertext+tag`, with the key id stored beside them and
`owner | endpoint id` bound as associated data, so a sealed secret copied onto another
row does not open. New secrets use the current key; older keys still open until `reseal`
has moved every row. Any failure to open is `SealingError`: loud, never an empty secret.
"""

from __future__ import annotations

import base64
import binascii
import os
import uuid
from collections.abc import Mapping
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

_NONCE_BYTES = 12
_KEY_BYTES = 32


class SealingError(Exception):
    """A secret cannot be sealed or opened (unknown key, tampered or misbound data)."""


@dataclass(frozen=True)
class Sealed:
    key_id: str
    data: bytes


def _aad(user_id: str, endpoint_id: uuid.UUID) -> bytes:
    return f"agentloom/webhook-secret/v1/{user_id}/{endpoint_id}".encode()


class SecretBox:
    """The keys by id, and which one seals new secrets."""

    def __init__(self, keys: Mapping[str, bytes], current: str) -> None:
        if current not in keys:
            raise SealingError(f"the current webhook secret key {current!r} is not configured")
        for key_id, key in keys.items():
            if len(key) != _KEY_BYTES:
                raise SealingError(f"webhook secret key {key_id!r} is not 32 bytes")
        self._keys = dict(keys)
        self.current = current

    @classmethod
    def from_base64(cls, keys: Mapping[str, str], current: str) -> SecretBox:
        try:
            decoded = {name: base64.b64decode(value, validate=True) for name, value in keys.items()}
        except (binascii.Error, ValueError) as error:
            raise SealingError("a webhook secret key is not valid base64") from error
        return cls(decoded, current)

    def seal(self, user_id: str, endpoint_id: uuid.UUID, secret: str) -> Sealed:
        nonce = os.urandom(_NONCE_BYTES)
        key = self._keys[self.current]
        data = nonce + AESGCM(key).encrypt(nonce, secret.encode(), _aad(user_id, endpoint_id))
        return Sealed(self.current, data)

    def open(self, user_id: str, endpoint_id: uuid.UUID, sealed: Sealed) -> str:
        key = self._keys.get(sealed.key_id)
        if key is None:
            raise SealingError(f"webhook secret key {sealed.key_id!r} is not configured")
        try:
            plaintext = AESGCM(key).decrypt(
                sealed.data[:_NONCE_BYTES], sealed.data[_NONCE_BYTES:], _aad(user_id, endpoint_id)
            )
            return plaintext.decode()
        except (InvalidTag, ValueError) as error:
            raise SealingError("the webhook secret does not open") from error

    def reseal(self, user_id: str, endpoint_id: uuid.UUID, sealed: Sealed) -> Sealed:
        """The same secret sealed under the current key (for key rotation)."""
        return self.seal(user_id, endpoint_id, self.open(user_id, endpoint_id, sealed))
