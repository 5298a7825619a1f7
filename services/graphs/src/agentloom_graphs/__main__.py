"""`python -m agentloom_graphs [serve|migrate]`: the graphs service, or its schema migration."""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Sequence

from agentloom_common.logging import setup_logging
from agentloom_common.migrations import upgrade
from agentloom_graphs.server import serve
from agentloom_graphs.settings import GraphsSettings
from agentloom_graphs.tables import SCHEMA


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="agentloom_graphs")
    parser.add_argument("command", nargs="?", default="serve", choices=["serve", "migrate"])
    args = parser.parse_args(argv)
    settings = GraphsSettings()
    setup_logging("graphs", settings.log_level)
    if args.command == "migrate":
        upgrade(settings.database_url, "agentloom_graphs", SCHEMA)
        return
    asyncio.run(serve(settings))


if __name__ == "__main__":
    main()
