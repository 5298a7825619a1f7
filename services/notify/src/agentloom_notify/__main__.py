"""`python -m agentloom_notify [serve|migrate]`."""

from __future__ import annotations

import argparse
import asyncio

from agentloom_common.logging import setup_logging
from agentloom_common.migrations import upgrade
from agentloom_notify.server import serve
from agentloom_notify.settings import NotifySettings
from agentloom_notify.webhooks.tables import SCHEMA


def main() -> None:
    parser = argparse.ArgumentParser(prog="agentloom_notify")
    parser.add_argument("command", nargs="?", default="serve", choices=["serve", "migrate"])
    args = parser.parse_args()
    settings = NotifySettings()
    setup_logging("notify", settings.log_level)
    if args.command == "migrate":
        upgrade(settings.database_url, "agentloom_notify", SCHEMA)
        return
    asyncio.run(serve(settings))


if __name__ == "__main__":
    main()
