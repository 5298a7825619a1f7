"""JWT authentication: HS256 by shared secret (the local default) and RS256/ES256 from an
identity provider's JWKS served by a real local HTTP server. Every bad token answers the
same 401 body; keys are never taken from the token."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from agentloom_gateway.app import create_app
from agentloom_gateway.settings import GatewaySettings

ISS, AUD = "agentloom", "agentloom-api"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _claims(**overrides: Any) -> dict[str, Any]:
    now = datetime.now(UTC)
    claims: dict[str, Any] = {
        "sub": f"subject-{uuid.uuid4().hex[:8]}",
        "iss": ISS,
        "aud": AUD,
        "iat": now,
        "exp": now + timedelta(minutes=5),
    }
    claims.update(overrides)
    return {k: v for k, v in claims.items() if v is not None}


def _forge_hs256(
    claims: dict[str, Any],
    secret: bytes,
    header: dict[str, Any] | None = None,
    digest: Any = hashlib.sha256,
) -> str:
    """An HS256 token signed with arbitrary bytes (PyJWT refuses a PEM as HMAC secret)."""
    encoded = {k: int(v.timestamp()) if isinstance(v, datetime) else v for k, v in claims.items()}
    head = _b64(json.dumps(header or {"alg": "HS256", "typ": "JWT"}).encode())
    body = _b64(json.dumps(encoded).encode())
    signature = hmac.new(secret, f"{head}.{body}".encode(), digest).digest()
    return f"{head}.{body}.{_b64(signature)}"


def _unsigned(claims: dict[str, Any]) -> str:
    encoded = {k: int(v.timestamp()) if isinstance(v, datetime) else v for k, v in claims.items()}
    head = _b64(json.dumps({"alg": "none", "typ": "JWT"}).encode())
    return f"{head}.{_b64(json.dumps(encoded).encode())}."


def _tampered(token: str) -> str:
    head, body, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    claims["sub"] = "someone-else"
    return f"{head}.{_b64(json.dumps(claims).encode())}.{signature}"


def _same_401(responses: list[httpx.Response]) -> None:
    bodies = []
    for response in responses:
        assert response.status_code == 401, response.text
        assert response.headers["www-authenticate"] == "Bearer"
        body = response.json()
        body.pop("request_id")
        bodies.append(body)
    assert all(body == bodies[0] for body in bodies), bodies


async def _get_user(client: httpx.AsyncClient, token: str) -> httpx.Response:
    return await client.get("/api/user", headers={"Authorization": f"Bearer {token}"})


# --- HS256 (the local default) ---------------------------------------------------------------


async def test_a_valid_token_creates_the_user_on_first_use(
    client: httpx.AsyncClient, settings: GatewaySettings
) -> None:
    secret = settings.jwt_secret.get_secret_value()
    claims = _claims(email="first.use@example.com")
    token = jwt.encode(claims, secret, algorithm="HS256")
    first = await _get_user(client, token)
    assert first.status_code == 200, first.text
    assert first.json()["role"] == "user"
    assert first.json()["email"] == "first.use@example.com"
    again = await _get_user(client, jwt.encode(_claims(sub=claims["sub"]), secret, "HS256"))
    assert again.json()["id"] == first.json()["id"]  # one user per subject


async def test_every_bad_hs256_token_gets_the_same_401(
    client: httpx.AsyncClient, settings: GatewaySettings
) -> None:
    secret = settings.jwt_secret.get_secret_value()
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    now = datetime.now(UTC)
    good = jwt.encode(_claims(), secret, algorithm="HS256")
    bad_tokens = {
        "alg none": _unsigned(_claims()),
        "wrong key": jwt.encode(_claims(), "another-secret-of-32-bytes-or-more!!", "HS256"),
        "RS256 where HS256 is pinned": jwt.encode(_claims(), rsa_key, algorithm="RS256"),
        "expired": jwt.encode(_claims(exp=now - timedelta(minutes=5)), secret, "HS256"),
        "wrong audience": jwt.encode(_claims(aud="someone-else"), secret, "HS256"),
        "wrong issuer": jwt.encode(_claims(iss="https://evil.example"), secret, "HS256"),
        "future nbf": jwt.encode(_claims(nbf=now + timedelta(minutes=10)), secret, "HS256"),
        "tampered payload": _tampered(good),
        "no sub": jwt.encode(_claims(sub=None), secret, "HS256"),
        "no exp": jwt.encode(_claims(exp=None), secret, "HS256"),
        "no aud": jwt.encode(_claims(aud=None), secret, "HS256"),
        "no iss": jwt.encode(_claims(iss=None), secret, "HS256"),
        "HS512 with the right secret": _forge_hs256(
            _claims(), secret.encode(), {"alg": "HS512"}, hashlib.sha512
        ),
        "not a jwt": "a.b.c",
    }
    assert (await _get_user(client, good)).status_code == 200
    _same_401([await _get_user(client, token) for token in bad_tokens.values()])


async def test_a_suspended_users_token_is_refused(
    client: httpx.AsyncClient, settings: GatewaySettings, sessions: Any
) -> None:
    from agentloom_gateway import identity

    secret = settings.jwt_secret.get_secret_value()
    claims = _claims()
    token = jwt.encode(claims, secret, algorithm="HS256")
    user_id = (await _get_user(client, token)).json()["id"]
    async with sessions.begin() as session:
        await identity.set_user_suspended(session=session, user_id=user_id, suspended=True)
    _same_401([await _get_user(client, token)])


# --- JWKS (an external identity provider) -----------------------------------------------------


class _JwksServer:
    """A real HTTP server serving a JWKS document, counting its fetches."""

    def __init__(self, document: dict[str, Any]) -> None:
        self.document = document
        self.fetches = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                outer.fetches += 1
                body = json.dumps(outer.document).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/.well-known/jwks.json"

    def __enter__(self) -> _JwksServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


def _jwk(
    public_key: Any, algorithm: type[RSAAlgorithm] | type[ECAlgorithm], kid: str
) -> dict[str, Any]:
    jwk: dict[str, Any] = json.loads(algorithm.to_jwk(public_key))
    jwk.update(kid=kid, use="sig")
    return jwk


@pytest.fixture(scope="module")
def idp_keys() -> dict[str, Any]:
    return {
        "rsa": rsa.generate_private_key(public_exponent=65537, key_size=2048),
        "ec": ec.generate_private_key(ec.SECP256R1()),
        "attacker": rsa.generate_private_key(public_exponent=65537, key_size=2048),
    }


@pytest.fixture(scope="module")
def jwks_server(idp_keys: dict[str, Any]) -> Iterator[_JwksServer]:
    document = {
        "keys": [
            _jwk(idp_keys["rsa"].public_key(), RSAAlgorithm, "rsa-1"),
            _jwk(idp_keys["ec"].public_key(), ECAlgorithm, "ec-1"),
        ]
    }
    with _JwksServer(document) as server:
        yield server


@pytest.fixture(scope="module")
async def jwks_client(
    settings: GatewaySettings, jwks_server: _JwksServer
) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(
        settings.model_copy(
            update={
                "jwt_mode": "jwks",
                "jwt_jwks_url": jwks_server.url,
                "jwt_issuer": "https://idp.example",
                "jwt_audience": "agentloom",
            }
        )
    )
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as client:
            yield client


def _idp_claims(**overrides: Any) -> dict[str, Any]:
    return _claims(iss="https://idp.example", aud="agentloom", **overrides)


async def test_rs256_and_es256_tokens_of_the_jwks_are_accepted(
    jwks_client: httpx.AsyncClient, idp_keys: dict[str, Any]
) -> None:
    rs = jwt.encode(_idp_claims(), idp_keys["rsa"], "RS256", headers={"kid": "rsa-1"})
    es = jwt.encode(_idp_claims(), idp_keys["ec"], "ES256", headers={"kid": "ec-1"})
    for token in (rs, es):
        response = await _get_user(jwks_client, token)
        assert response.status_code == 200, response.text


async def test_every_bad_jwks_token_gets_the_same_401(
    jwks_client: httpx.AsyncClient, idp_keys: dict[str, Any], jwks_server: _JwksServer
) -> None:
    public_pem = (
        idp_keys["rsa"]
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    attacker_jwk = _jwk(idp_keys["attacker"].public_key(), RSAAlgorithm, "rsa-1")
    now = datetime.now(UTC)
    rsa_key = idp_keys["rsa"]
    good = jwt.encode(_idp_claims(), rsa_key, "RS256", headers={"kid": "rsa-1"})
    bad_tokens = {
        "alg none": _unsigned(_idp_claims()),
        "HS256 keyed with the RSA public key": _forge_hs256(
            _idp_claims(), public_pem, {"alg": "HS256", "kid": "rsa-1"}
        ),
        "wrong key, known kid": jwt.encode(
            _idp_claims(), idp_keys["attacker"], "RS256", headers={"kid": "rsa-1"}
        ),
        "key from jku": jwt.encode(
            _idp_claims(),
            idp_keys["attacker"],
            "RS256",
            headers={"kid": "evil", "jku": jwks_server.url + "?evil"},
        ),
        "embedded jwk": jwt.encode(
            _idp_claims(), idp_keys["attacker"], "RS256", headers={"jwk": attacker_jwk}
        ),
        "ES256 key used as RS256": jwt.encode(
            _idp_claims(), idp_keys["ec"], "ES256", headers={"kid": "rsa-1"}
        ),
        "expired": jwt.encode(
            _idp_claims(exp=now - timedelta(minutes=5)), rsa_key, "RS256", headers={"kid": "rsa-1"}
        ),
        "wrong audience": jwt.encode(
            _claims(iss="https://idp.example", aud="other"),
            rsa_key,
            "RS256",
            headers={"kid": "rsa-1"},
        ),
        "wrong issuer": jwt.encode(
            _claims(iss="https://evil.example", aud="agentloom"),
            rsa_key,
            "RS256",
            headers={"kid": "rsa-1"},
        ),
        "future nbf": jwt.encode(
            _idp_claims(nbf=now + timedelta(minutes=10)),
            rsa_key,
            "RS256",
            headers={"kid": "rsa-1"},
        ),
        "tampered payload": _tampered(good),
    }
    assert (await _get_user(jwks_client, good)).status_code == 200
    _same_401([await _get_user(jwks_client, token) for token in bad_tokens.values()])
