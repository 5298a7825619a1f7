"""A local SMTP server (aiosmtpd) that keeps every message it receives, for email tests.

    with FakeSmtp() as smtp:                      # plain SMTP on a free port
        ... send to 127.0.0.1:smtp.port ...
        (message,) = smtp.messages()              # email.message.EmailMessage
        assert smtp.envelopes()[0].rcpt_tos == ["bob@example.com"]

`auth={"user": "password"}` offers AUTH (PLAIN/LOGIN) over plain TCP (`auth_require_tls=False`,
as a test server may) and checks the password; the login is recorded with each message.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import socket
import threading
from dataclasses import dataclass
from email.message import EmailMessage
from types import TracebackType
from typing import Any, Self

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session


@dataclass(frozen=True)
class Received:
    mail_from: str
    rcpt_tos: list[str]
    data: bytes
    login: str | None


class _Handler:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.received: list[Received] = []

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        login = session.auth_data.decode() if isinstance(session.auth_data, bytes) else None
        data = envelope.content if isinstance(envelope.content, bytes) else b""
        with self.lock:
            self.received.append(
                Received(str(envelope.mail_from), list(envelope.rcpt_tos), data, login)
            )
        return "250 Message accepted for delivery"


class FakeSmtp:
    """aiosmtpd in its own thread; `port` is known after `start()`."""

    def __init__(self, host: str = "127.0.0.1", auth: dict[str, str] | None = None) -> None:
        self.host = host
        self.port = 0
        self._auth = auth
        self._handler = _Handler()
        self._controller: Controller | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def start(self) -> int:
        with socket.socket() as sock:
            sock.bind((self.host, 0))
            self.port = sock.getsockname()[1]
        options: dict[str, Any] = {}
        if self._auth is not None:
            options = {
                "authenticator": self._authenticate,
                "auth_require_tls": False,
            }
        # Our own loop, closed in stop(): aiosmtpd leaves a loop it made itself unclosed.
        self._loop = asyncio.new_event_loop()
        self._controller = Controller(
            self._handler, loop=self._loop, hostname=self.host, port=self.port, **options
        )
        self._controller.start()
        return self.port

    def _authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        if isinstance(data, LoginPassword) and self._auth is not None:
            user, password = data.login.decode(), data.password.decode()
            if self._auth.get(user) == password:
                return AuthResult(success=True, auth_data=data.login)
        return AuthResult(success=False, handled=False)

    def stop(self) -> None:
        controller, self._controller = self._controller, None
        if controller is not None:
            controller.stop()
        loop, self._loop = self._loop, None
        if loop is not None:
            loop.close()

    def envelopes(self) -> list[Received]:
        with self._handler.lock:
            return list(self._handler.received)

    def messages(self) -> list[EmailMessage]:
        parsed = []
        for received in self.envelopes():
            message = email.message_from_bytes(received.data, policy=email.policy.default)
            assert isinstance(message, EmailMessage)
            parsed.append(message)
        return parsed

    def clear(self) -> None:
        with self._handler.lock:
            self._handler.received.clear()

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
