"""`python -m agentloom_billing [serve|migrate]`: the credit ledger service."""

from __future__ import annotations

import argparse
import asyncio

from agentloom_billing.server import serve
from agentloom_billing.settings import BillingSettings
from agentloom_billing.tables import SCHEMA
from agentloom_common.logging import setup_logging
from agentloom_common.migrations import upgrade


def main() -> None:
    parser = argparse.ArgumentParser(prog="agentloom_billing")
    parser.add_argument("command", nargs="?", default="serve", choices=["serve", "migrate"])
    args = parser.parse_args()
    settings = BillingSettings()
    setup_logging("billing", settings.log_level)
    if args.command == "migrate":
        upgrade(settings.database_url, "agentloom_billing", SCHEMA)
        return
    asyncio.run(serve(settings))


if __name__ == "__main__":
    main()
