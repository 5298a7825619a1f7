"""The fake SMTP and web servers: real protocols, recorded traffic."""

from __future__ import annotations

from email.message import EmailMessage

import aiosmtplib
import httpx

from agentloom_devkit.fake_smtp import FakeSmtp
from agentloom_devkit.fake_web import FakeWeb


async def test_the_smtp_server_keeps_what_it_receives() -> None:
    with FakeSmtp(auth={"u": "p"}) as smtp:
        mail = EmailMessage()
        mail["From"], mail["To"], mail["Subject"] = "a@example.com", "b@example.com", "Hi"
        mail.set_content("Body")
        await aiosmtplib.send(
            mail, hostname=smtp.host, port=smtp.port, username="u", password="p", start_tls=False
        )

        (received,) = smtp.envelopes()
        assert received.rcpt_tos == ["b@example.com"]
        assert received.login == "u"
        assert smtp.messages()[0]["Subject"] == "Hi"


async def test_the_web_server_echoes_and_records() -> None:
    with FakeWeb() as web:
        async with httpx.AsyncClient(base_url=web.url) as client:
            echoed = (await client.post("/echo?x=1", json={"a": 1})).json()
            assert (await client.get("/status/418")).status_code == 418
            redirect = await client.get("/redirect?to=/json")
        assert echoed["json"] == {"a": 1} and echoed["query"] == {"x": "1"}
        assert redirect.headers["location"] == "/json"
        assert [r["path"] for r in web.requests()] == ["/echo", "/status/418", "/redirect"]
