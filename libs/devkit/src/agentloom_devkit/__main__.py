"""`python -m agentloom_devkit run`: start the whole platform locally (see dev.py)."""

from __future__ import annotations

import argparse
import asyncio

from agentloom_devkit.dev import run


def main() -> None:
    parser = argparse.ArgumentParser(prog="agentloom_devkit")
    parser.add_argument("command", choices=["run"])
    parser.parse_args()
    asyncio.run(run())


if __name__ == "__main__":
    main()
