"""`python -m agentloom_blocks [serve]`: the block catalog service."""

from __future__ import annotations

import argparse
import asyncio

from agentloom_blocks.server import serve
from agentloom_blocks.settings import BlocksSettings
from agentloom_common.logging import setup_logging


def main() -> None:
    parser = argparse.ArgumentParser(prog="agentloom_blocks")
    parser.add_argument("command", nargs="?", default="serve", choices=["serve", "migrate"])
    args = parser.parse_args()
    settings = BlocksSettings()
    setup_logging("blocks", settings.log_level)
    if args.command == "migrate":
        return  # the catalog lives in code: no schema to migrate
    asyncio.run(serve(settings))


if __name__ == "__main__":
    main()
