"""Names and descriptions are plain text: markup is removed with nh3 (ammonia) before they
are stored, so no client renders a user's tags or scripts."""

from __future__ import annotations

import html
from typing import Annotated

import nh3
from pydantic import AfterValidator


def plain_text(value: str) -> str:
    """`value` without tags, comments or script/style content. Entities nh3 escapes come back
    as characters unless that would bring a `<` back, so `a & b` stays `a & b`."""
    cleaned = nh3.clean(value, tags=set(), attributes={}, strip_comments=True)
    unescaped = html.unescape(cleaned)
    return cleaned if "<" in unescaped else unescaped


def _required_text(value: str) -> str:
    cleaned = plain_text(value).strip()
    if not cleaned and value:
        raise ValueError("must contain text, not only markup")
    return cleaned


# A name: stripped of markup and surrounding space, and not empty afterwards.
PlainName = Annotated[str, AfterValidator(_required_text)]
# A description: stripped of markup; may be empty.
PlainText = Annotated[str, AfterValidator(plain_text)]
