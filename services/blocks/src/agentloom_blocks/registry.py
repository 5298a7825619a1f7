"""Finds every block in `agentloom_blocks.library`: adding a block is adding one module."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from functools import cache

from agentloom_blocks import library
from agentloom_blocks.sdk import Block


@cache
def load_blocks() -> dict[str, type[Block]]:
    """Every concrete block class by id; duplicate ids are a programming error."""
    blocks: dict[str, type[Block]] = {}
    for module_info in pkgutil.iter_modules(library.__path__):
        module = importlib.import_module(f"{library.__name__}.{module_info.name}")
        for _, obj in inspect.getmembers(module, inspect.isclass):
            if issubclass(obj, Block) and obj is not Block and "id" in vars(obj):
                existing = blocks.get(obj.id)
                if existing is not None and existing is not obj:
                    raise RuntimeError(f"duplicate block id {obj.id!r}")
                blocks[obj.id] = obj
    return dict(sorted(blocks.items()))
