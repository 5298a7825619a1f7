"""Per-node retry policy for errors a block marks retryable.

A node's config may carry {"retry": {"max_attempts", "initial_interval_s", "backoff",
"max_interval_s"}}; what it leaves out comes from the platform's defaults. Delays grow
exponentially and carry jitter (between half and all of the computed delay), so retries of
many nodes hitting the same failing provider spread out.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 3
    initial_interval_s: float = 1.0
    backoff: float = 2.0
    max_interval_s: float = 60.0

    def with_overrides(self, config: Mapping[str, Any]) -> RetryPolicy:
        raw = config.get("retry")
        if not isinstance(raw, Mapping):
            return self
        changes: dict[str, Any] = {}
        for name, kind, low in (
            ("max_attempts", int, 1),
            ("initial_interval_s", float, 0.0),
            ("backoff", float, 1.0),
            ("max_interval_s", float, 0.0),
        ):
            value = raw.get(name)
            if isinstance(value, int | float) and not isinstance(value, bool) and value >= low:
                changes[name] = kind(value)
        return replace(self, **changes)

    def delay_s(self, attempt: int, rng: random.Random | None = None) -> float:
        """Delay before the attempt after `attempt` (1-based)."""
        base = min(self.max_interval_s, self.initial_interval_s * self.backoff ** (attempt - 1))
        return base * (rng or random).uniform(0.5, 1.0)

    def allows_another(self, attempt: int) -> bool:
        return attempt < self.max_attempts
