"""ULP distance between float64 values and the tolerance rule for two numbers.

Two numbers are identical when they are equal (``0.0 == -0.0``) or both NaN.
Otherwise they are within tolerance when both are finite and

    ulp <= max_ulp  or  |a - b| <= atol  or  |a - b| <= rtol * max(|a|, |b|)

A NaN or an infinity matches only an identical value. With the default
tolerance (all zero) only identical numbers pass.
"""

from __future__ import annotations

import math
import numbers  # the standard library's number ABCs, not parity/numbers.py
import struct
from dataclasses import dataclass
from typing import Any

from harness.errors import ParityInputError

# The rule that compare_numbers applies, in words, for the reports.
TOLERANCE_RULE = (
    "A number passes when both runs have it and it is identical (equal, or NaN in "
    "both), or both values are finite and ulp <= max_ulp, or |a - b| <= atol, or "
    "|a - b| <= rtol * max(|a|, |b|)."
)

_DOUBLE = struct.Struct("<d")
_INT64 = struct.Struct("<q")
_INT64_MIN = -(2**63)


@dataclass(frozen=True)
class Tolerance:
    """Allowed difference between two numbers. All zero means exact comparison."""

    rtol: float = 0.0
    atol: float = 0.0
    max_ulp: int = 0

    def __post_init__(self) -> None:
        for name in ("rtol", "atol"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, numbers.Real):
                raise ParityInputError(
                    f"invalid {name} {value!r}: expected a number >= 0 (0 means exact)"
                )
            if not math.isfinite(value) or value < 0:
                raise ParityInputError(
                    f"invalid {name} {value!r}: expected a finite number >= 0 "
                    "(0 means exact)"
                )
        if (
            isinstance(self.max_ulp, bool)
            or not isinstance(self.max_ulp, numbers.Integral)
            or self.max_ulp < 0
        ):
            raise ParityInputError(
                f"invalid max_ulp {self.max_ulp!r}: expected a whole number >= 0 "
                "(0 means exact)"
            )

    @property
    def exact(self) -> bool:
        return self.rtol == 0 and self.atol == 0 and self.max_ulp == 0

    def describe(self) -> str:
        """Return the tolerance as one line, for example ``max_ulp 2, atol 0.001``."""
        if self.exact:
            return "exact (max_ulp 0, atol 0, rtol 0)"
        parts = []
        if self.max_ulp:
            parts.append(f"max_ulp {self.max_ulp}")
        if self.atol:
            parts.append(f"atol {self.atol!r}")
        if self.rtol:
            parts.append(f"rtol {self.rtol!r}")
        return ", ".join(parts)


@dataclass(frozen=True)
class NumberDifference:
    """A number that is not identical in both runs, or is a number in only one.

    ``kind`` is ``value`` when both sides are numbers, else ``missing_in_a``,
    ``missing_in_b``, ``not_a_number_in_a`` or ``not_a_number_in_b``. For the
    missing kinds the absent side is None. ``abs_diff``, ``rel_diff`` and
    ``ulp`` are None where they are not defined (``ulp`` also for integers that
    differ beyond float64 precision).
    """

    name: str
    file: str
    kind: str
    a: Any
    b: Any
    abs_diff: float | int | None
    rel_diff: float | None
    ulp: int | None
    within_tolerance: bool
    message: str


def _ordered_bits(x: float) -> int:
    # IEEE-754 doubles sorted by value map onto consecutive integers once the
    # negative half (sign bit set) is mirrored: -0.0 -> 0, -5e-324 -> -1.
    (bits,) = _INT64.unpack(_DOUBLE.pack(x))
    if bits < 0:
        return _INT64_MIN - bits
    return bits


def ulp_distance(a: float, b: float) -> int | None:
    """Return how many float64 steps separate ``a`` and ``b``.

    0.0 and -0.0 are 0 apart, and so are two NaNs of any payload. A NaN and a
    number have no distance, so the result is None. An infinity is one step
    beyond the largest finite double of its sign.
    """
    a_nan = math.isnan(a)
    b_nan = math.isnan(b)
    if a_nan or b_nan:
        return 0 if a_nan and b_nan else None
    return abs(_ordered_bits(a) - _ordered_bits(b))


def to_float(value: int | float) -> float:
    """Convert to float64, mapping integers beyond its range to a signed infinity."""
    try:
        return float(value)
    except OverflowError:
        return math.copysign(math.inf, value)


def compare_numbers(
    name: str,
    file: str,
    a: int | float,
    b: int | float,
    tolerance: Tolerance,
    labels: tuple[str, str],
) -> NumberDifference:
    """Measure two numbers that are not identical and apply ``tolerance``.

    ``labels`` names runs A and B in the message, which states the first limit
    that passed, or every limit that failed.
    """
    head = f"{name}: {labels[0]} {a!r}, {labels[1]} {b!r}"
    if type(a) is int and type(b) is int:
        abs_diff: int | float = abs(a - b)
        largest = to_float(max(abs(a), abs(b)))
        rel_diff: float | None = abs_diff / max(abs(a), abs(b))
        # Distinct integers can round to the same double; their ULP
        # distance is then not defined.
        ulp = ulp_distance(to_float(a), to_float(b)) or None
    else:
        float_a = to_float(a)
        float_b = to_float(b)
        if not (math.isfinite(float_a) and math.isfinite(float_b)):
            reason = (
                "NaN in one run only"
                if math.isnan(float_a) or math.isnan(float_b)
                else "an infinity matches only an identical value"
            )
            return NumberDifference(
                name,
                file,
                "value",
                a,
                b,
                abs(float_a - float_b),
                None,
                ulp_distance(float_a, float_b),
                False,
                f"{head}, {reason}",
            )
        abs_diff = abs(float_a - float_b)
        largest = max(abs(float_a), abs(float_b))
        rel_diff = abs_diff / largest
        ulp = ulp_distance(float_a, float_b)

    checks = _tolerance_checks(tolerance, abs_diff, rel_diff, largest, ulp)
    passed = [f"{measured} <= {limit}" for ok, measured, limit in checks if ok]
    if passed:
        message = f"{head}, {passed[0]}"
    else:
        failed = ", ".join(f"{measured} > {limit}" for _ok, measured, limit in checks)
        message = f"{head}, {failed}"
    return NumberDifference(
        name, file, "value", a, b, abs_diff, rel_diff, ulp, bool(passed), message
    )


def _tolerance_checks(
    tolerance: Tolerance,
    abs_diff: int | float,
    rel_diff: float | None,
    largest: float,
    ulp: int | None,
) -> list[tuple[bool, str, str]]:
    """Return (passed, measured, limit) for each limit in use, in the rule's order.

    An exact tolerance still gets the ULP check, so that its message shows the
    distance.
    """
    checks = []
    if tolerance.max_ulp or tolerance.exact:
        ulp_text = "undefined" if ulp is None else str(ulp)
        checks.append(
            (
                ulp is not None and ulp <= tolerance.max_ulp,
                f"ULP {ulp_text}",
                f"max_ulp {tolerance.max_ulp}",
            )
        )
    if tolerance.atol:
        checks.append(
            (
                abs_diff <= tolerance.atol,
                f"|diff| {abs_diff!r}",
                f"atol {tolerance.atol!r}",
            )
        )
    if tolerance.rtol:
        checks.append(
            (
                abs_diff <= tolerance.rtol * largest,
                f"rel {rel_diff!r}",
                f"rtol {tolerance.rtol!r}",
            )
        )
    return checks
