"""The tally of correctness checks: every execution the benchmark runs is checked, and the
run fails (exit 1) if any one did not complete with the right outputs."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Checks:
    checked: dict[str, int] = field(default_factory=dict)
    problems: dict[str, list[str]] = field(default_factory=dict)

    def record(self, workload: str, subject: str, problem: str | None) -> None:
        """Count one checked execution (or task) of a workload, and its problem if any."""
        self.checked[workload] = self.checked.get(workload, 0) + 1
        self.problems.setdefault(workload, [])
        if problem is not None:
            self.problems[workload].append(f"{subject}: {problem}")

    def failed(self, workload: str) -> int:
        return len(self.problems.get(workload, []))

    @property
    def ok(self) -> bool:
        return not any(self.problems.values())

    def label(self, workload: str) -> str:
        """`50/50 ok` or `48/50 ok` for the table."""
        checked = self.checked.get(workload, 0)
        return f"{checked - self.failed(workload)}/{checked} ok"

    def as_json(self) -> dict[str, dict[str, object]]:
        return {
            workload: {
                "checked": self.checked[workload],
                "failed": self.failed(workload),
                "problems": self.problems.get(workload, [])[:20],
            }
            for workload in self.checked
        }
