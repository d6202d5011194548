"""The findings of one comparison: :class:`ParityResult` and the records it contains.

The identity, integrity and environment records live in ``identity.py``, and
:class:`NumberDifference` lives in ``ulp.py`` beside the rule that makes it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from harness.parity.identity import (
    EnvironmentDifference,
    IdentityField,
    IntegrityProblem,
    short_text,
)
from harness.parity.numbers import CsvTable
from harness.parity.runs import RunInfo
from harness.parity.ulp import NumberDifference, Tolerance


@dataclass(frozen=True)
class ValueDifference:
    """A string, boolean or null that differs, or is present in only one run."""

    name: str
    file: str
    a: Any
    b: Any
    missing_in: str | None  # None, "a" or "b"


@dataclass
class FileSummary:
    """Counts of compared numbers in one ``.json`` or ``.csv`` file."""

    file: str
    kind: str
    in_a: bool
    in_b: bool
    numbers: int = 0
    identical: int = 0
    within_tolerance: int = 0
    differ: int = 0
    ignored: int = 0


@dataclass(frozen=True)
class OtherFile:
    """A file compared by sha256 only. None marks a side where it is absent."""

    file: str
    sha256_a: str | None
    sha256_b: str | None

    @property
    def same(self) -> bool:
        return self.sha256_a is not None and self.sha256_a == self.sha256_b


@dataclass
class ParityResult:
    """Everything :func:`compare_runs` found; :func:`write_report` renders it.

    ``numbers`` holds only the numbers that are not identical. The per-file
    counts in ``files`` cover all compared numbers.
    """

    run_a: RunInfo
    run_b: RunInfo
    tolerance: Tolerance
    ignore: tuple[str, ...]
    identity: list[IdentityField] = field(default_factory=list)
    integrity: list[IntegrityProblem] = field(default_factory=list)
    files: list[FileSummary] = field(default_factory=list)
    numbers: list[NumberDifference] = field(default_factory=list)
    values: list[ValueDifference] = field(default_factory=list)
    other_files: list[OtherFile] = field(default_factory=list)
    environment: list[EnvironmentDifference] = field(default_factory=list)
    likely_causes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    forecast_a: CsvTable | None = field(default=None, repr=False)
    forecast_b: CsvTable | None = field(default=None, repr=False)

    def _total(self, counter: str) -> int:
        return sum(getattr(summary, counter) for summary in self.files)

    @property
    def numbers_compared(self) -> int:
        return self._total("numbers")

    @property
    def numbers_identical(self) -> int:
        return self._total("identical")

    @property
    def numbers_within_tolerance(self) -> int:
        """Numbers that are not identical but within tolerance."""
        return self._total("within_tolerance")

    @property
    def numbers_differing(self) -> int:
        return self._total("differ")

    @property
    def numbers_ignored(self) -> int:
        return self._total("ignored")

    @property
    def holds(self) -> bool:
        return self.numbers_differing == 0

    @property
    def exit_code(self) -> int:
        """0 when every number is within tolerance, 1 when some differ."""
        return 0 if self.holds else 1

    @property
    def verdict(self) -> str:
        total = _count(self.numbers_compared, "number")
        if not self.holds:
            return f"parity fails: {self.numbers_differing} of {total} differ"
        within = self.numbers_within_tolerance
        if within:
            return f"parity holds: {total} within tolerance ({within} not identical)"
        return f"parity holds: {total} identical"

    def summary(self, max_differences: int = 10) -> str:
        """Return the verdict and the main findings as a few lines for a terminal."""
        lines = [self.verdict]
        lines += [
            f"  {item.name}: {short_text(item.a)} ({self.run_a.label}) "
            f"vs {short_text(item.b)} ({self.run_b.label})"
            for item in self.identity
            if item.differs
        ]
        lines += [f"  {problem.message}" for problem in self.integrity]
        differing = [item for item in self.numbers if not item.within_tolerance]
        lines += [f"  {item.message}" for item in differing[:max_differences]]
        if len(differing) > max_differences:
            lines.append(f"  {len(differing) - max_differences} more in parity.json")
        if differing and self.likely_causes:
            lines.append("  likely causes: " + "; ".join(self.likely_causes[:3]))
        return "\n".join(lines)


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"
