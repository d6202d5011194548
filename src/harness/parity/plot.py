"""Draw parity.png: actual values and both runs' forecasts, and their difference.

The data is ``outputs/forecast.csv`` of each run, with the columns ``forecast``
and, where present, ``actual``, ``lower`` and ``upper``. matplotlib is imported
only here, and only when a plot is drawn.
"""

from __future__ import annotations

import logging
import math
from datetime import date, datetime
from pathlib import Path
from typing import Any

from harness.parity.numbers import CsvTable
from harness.parity.result import ParityResult

log = logging.getLogger(__name__)


def write_plot(result: ParityResult, path: Path) -> str | None:
    """Plot actual and both forecasts, and return None or the reason for no plot."""
    table_a, table_b = result.forecast_a, result.forecast_b
    la, lb = result.run_a.label, result.run_b.label
    if table_a is None and table_b is None:
        return "neither run has a readable outputs/forecast.csv"
    if table_a is None or table_b is None:
        missing_in = la if table_a is None else lb
        return f"outputs/forecast.csv is missing or unreadable in {missing_in}"
    forecast_a = table_a.column("forecast")
    if forecast_a is None or table_b.column("forecast") is None or not table_a.rows:
        return (
            "outputs/forecast.csv has no rows or no 'forecast' column "
            "in one of the runs"
        )

    try:
        import matplotlib  # noqa: F401  (only checks that matplotlib is installed)
    except ImportError as exc:
        log.warning("parity.png skipped: %s", exc)
        return f"matplotlib could not be imported ({exc})"

    try:
        _draw_plot(result, path, table_a, table_b)
    except (ValueError, TypeError, OverflowError) as exc:
        # The plot is only an aid, so parity.md and parity.json are still written.
        log.warning("parity.png skipped: plotting outputs/forecast.csv failed: %s", exc)
        return f"plotting outputs/forecast.csv failed ({exc})"
    return None


def _parse_floats(cells: list[str]) -> list[float]:
    """Parse each cell as a float, NaN where it is not a number."""
    values = []
    for cell in cells:
        try:
            values.append(float(cell))
        except ValueError:
            values.append(math.nan)
    return values


def _x_values(keys: list[str]) -> list[Any] | None:
    """Parse the row keys as ISO dates or else ISO timestamps, or return None."""
    for parse in (date.fromisoformat, datetime.fromisoformat):
        try:
            return [parse(key) for key in keys]
        except ValueError:
            continue
    return None


def _aligned(table_a: CsvTable, table_b: CsvTable, column: str) -> list[float]:
    """Return B's column in A's row order, matched by key, NaN where absent."""
    cells_b = table_b.column(column)
    if cells_b is None:
        return [math.nan] * len(table_a.rows)
    values_b = _parse_floats(cells_b)
    if table_a.has_unique_keys() and table_b.has_unique_keys():
        by_key = {row[0]: value for row, value in zip(table_b.rows, values_b)}
        return [by_key.get(row[0], math.nan) for row in table_a.rows]
    return [
        values_b[i] if i < len(values_b) else math.nan for i in range(len(table_a.rows))
    ]


def _draw_plot(
    result: ParityResult,
    path: Path,
    table_a: CsvTable,
    table_b: CsvTable,
) -> None:
    import matplotlib.dates
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    la, lb = result.run_a.label, result.run_b.label

    # Figure with its own Agg canvas: no pyplot state and no global backend
    # switch (matplotlib.use), so a caller's interactive session is untouched.
    figure = Figure(figsize=(10, 6.5), layout="constrained")
    FigureCanvasAgg(figure)
    top, bottom = figure.subplots(2, 1, sharex=True, height_ratios=[3, 1])

    keys = [row[0] if row else "" for row in table_a.rows]
    x_values: list[Any] | None = _x_values(keys)
    if x_values is None:
        x_values = list(range(len(keys)))
        bottom.set_xlabel(
            f"row of outputs/forecast.csv ({table_a.header[0]} not a date)"
        )
    else:
        locator = matplotlib.dates.AutoDateLocator()
        bottom.xaxis.set_major_locator(locator)
        bottom.xaxis.set_major_formatter(matplotlib.dates.ConciseDateFormatter(locator))

    values_a = _parse_floats(table_a.column("forecast") or [])
    values_b = _aligned(table_a, table_b, "forecast")
    _draw_actual_and_interval(top, x_values, table_a, table_b, la, lb)
    top.plot(x_values, values_a, color="C0", label=f"forecast ({la})")
    top.plot(x_values, values_b, color="C1", linestyle="--", label=f"forecast ({lb})")
    top.set_title(result.verdict)
    top.legend(loc="best")

    bottom.axhline(0.0, color="grey", linewidth=0.8)
    bottom.plot(
        x_values, [b - a for a, b in zip(values_a, values_b)], color="C3", marker="."
    )
    bottom.set_ylabel(f"forecast\n{lb} − {la}")

    figure.savefig(path, dpi=100)


def _draw_actual_and_interval(
    axes: Any,
    x_values: list[Any],
    table_a: CsvTable,
    table_b: CsvTable,
    la: str,
    lb: str,
) -> None:
    """Draw A's interval and actual values, and B's actual values where they differ."""
    lower, upper = table_a.column("lower"), table_a.column("upper")
    if lower is not None and upper is not None:
        axes.fill_between(
            x_values,
            _parse_floats(lower),
            _parse_floats(upper),
            alpha=0.15,
            label=f"interval ({la})",
        )
    actual = table_a.column("actual")
    if actual is None:
        return
    actual_a = _parse_floats(actual)
    axes.plot(
        x_values, actual_a, color="black", marker="o", markersize=3, label="actual"
    )
    actual_b = _aligned(table_a, table_b, "actual")
    if any(x != y and not (x != x and y != y) for x, y in zip(actual_a, actual_b)):
        axes.plot(x_values, actual_b, color="grey", marker="x", label=f"actual ({lb})")
