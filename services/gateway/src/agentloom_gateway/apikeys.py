"""The API key format: `agl_<public id>_<secret>_<checksum>`, all base62 so `_` only separates.

- public id: 16 random base62 characters, stored in clear and used for the one lookup;
- secret: 32 random bytes (256 bits) as 43 base62 characters, stored only as an HMAC;
- checksum: CRC-32 of everything before it as 6 base62 characters, so typos and truncated
  keys are rejected (and secret scanners can recognise real keys) without a database hit.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import zlib
from dataclasses import dataclass

PREFIX = "agl"
ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
PUBLIC_ID_LENGTH = 16
SECRET_BYTES = 32
SECRET_LENGTH = 43  # 62**43 > 2**256
CHECKSUM_LENGTH = 6  # 62**6 > 2**32
KEY_LENGTH = len(PREFIX) + PUBLIC_ID_LENGTH + SECRET_LENGTH + CHECKSUM_LENGTH + 3
_ALPHABET_SET = frozenset(ALPHABET)


@dataclass(frozen=True)
class ParsedKey:
    public_id: str
    secret: str


def _base62(number: int, width: int) -> str:
    digits = []
    for _ in range(width):
        number, digit = divmod(number, 62)
        digits.append(ALPHABET[digit])
    if number:
        raise ValueError("number does not fit in width")
    return "".join(reversed(digits))


def checksum(body: str) -> str:
    """The checksum of `agl_<public id>_<secret>`."""
    return _base62(zlib.crc32(body.encode("ascii")), CHECKSUM_LENGTH)


def generate() -> tuple[str, ParsedKey]:
    """A new random key and its parts. The full key is shown once and never stored."""
    public_id = "".join(secrets.choice(ALPHABET) for _ in range(PUBLIC_ID_LENGTH))
    secret = _base62(int.from_bytes(secrets.token_bytes(SECRET_BYTES), "big"), SECRET_LENGTH)
    body = f"{PREFIX}_{public_id}_{secret}"
    return f"{body}_{checksum(body)}", ParsedKey(public_id, secret)


def parse(key: str) -> ParsedKey | None:
    """The parts of a well-formed key with a valid checksum, else None."""
    if len(key) != KEY_LENGTH or not key.isascii():
        return None
    parts = key.split("_")
    if len(parts) != 4:
        return None
    prefix, public_id, secret, check = parts
    if (
        prefix != PREFIX
        or len(public_id) != PUBLIC_ID_LENGTH
        or len(secret) != SECRET_LENGTH
        or not _ALPHABET_SET.issuperset(public_id + secret + check)
    ):
        return None
    if not hmac.compare_digest(check, checksum(f"{PREFIX}_{public_id}_{secret}")):
        return None
    return ParsedKey(public_id, secret)


def looks_like_key(credential: str) -> bool:
    """True for credentials meant as API keys (as opposed to JWTs)."""
    return credential.startswith(f"{PREFIX}_")


def hash_secret(secret: str, pepper: bytes) -> bytes:
    """HMAC-SHA256 of the secret under the server's pepper: what the database stores."""
    return hmac.new(pepper, secret.encode("ascii"), hashlib.sha256).digest()


def display_prefix(public_id: str) -> str:
    """The non-secret start of a key, for listing keys to their owner."""
    return f"{PREFIX}_{public_id}"
