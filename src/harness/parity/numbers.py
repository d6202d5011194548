"""Read ``.json`` and ``.csv`` outputs into values keyed by path, and name them.

Every number gets a name of the form ``FILE:PATH``:

* JSON: object keys joined by ``.``, list indexes as ``[i]``, for example
  ``model.json:params.ar.L1`` or ``model.json:order[0]``. A key that is empty
  or contains ``[``, ``]`` or ``"`` is written as ``["key"]``. If two paths in
  one file would get the same name (``{"ar.L1": 1}`` beside
  ``{"ar": {"L1": 2}}``), every key that contains a dot is quoted in that file.
  A number at the top level of a file is named ``FILE:$``.
* CSV: ``COLUMN[ROW]``. ROW is the first column's value when that column is
  non-empty and unique in both runs, as in ``forecast.csv:forecast[2013-12-16]``,
  and the key column itself is then not compared. Otherwise ROW is ``#i``, the
  0-based data row number, as in ``forecast.csv:forecast[#3]``.

Names are for people and ignore patterns. Numbers are paired by their
structural path, so a name collision never pairs the wrong numbers.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

# Exact types, so that bool (a subclass of int) is not a number.
NUMBER_TYPES = (int, float)

JsonPath = tuple[str | int, ...]
CsvKey = tuple[str, tuple[str, Any]]


@dataclass(frozen=True)
class CsvTable:
    """A CSV file as rows of strings; the first row is the header."""

    header: list[str]
    rows: list[list[str]]

    def has_unique_keys(self) -> bool:
        if len(self.header) < 2 or not self.rows:
            return False
        keys = [row[0] if row else "" for row in self.rows]
        return all(keys) and len(set(keys)) == len(keys)

    def column(self, name: str) -> list[str] | None:
        """Return the column's cells ("" where a row is short), or None if absent."""
        if name not in self.header:
            return None
        index = self.header.index(name)
        return [row[index] if index < len(row) else "" for row in self.rows]


def output_kind(rel: str) -> str | None:
    """Return "json" or "csv" for a file whose numbers are compared, else None."""
    suffix = PurePosixPath(rel).suffix.lower()
    return {".json": "json", ".csv": "csv"}.get(suffix)


def read_json(path: Path) -> Any:
    """Parse a JSON file, or raise OSError or ValueError with the reason."""
    try:
        return json.loads(path.read_text(encoding="utf-8-sig"))
    except RecursionError:
        raise ValueError("nested too deeply to parse") from None


def read_csv(path: Path) -> CsvTable:
    """Parse a comma-separated file, or raise OSError, ValueError or csv.Error."""
    text = path.read_text(encoding="utf-8-sig")
    rows = [row for row in csv.reader(io.StringIO(text, newline="")) if row]
    if not rows:
        return CsvTable([], [])
    return CsvTable(rows[0], rows[1:])


def union_keys(first: Iterable[Any], second: Iterable[Any]) -> list[Any]:
    """Return the keys of ``first`` in order, then those only in ``second``."""
    keys = list(first)
    seen = set(keys)
    keys.extend(key for key in second if key not in seen)
    return keys


# --- JSON --------------------------------------------------------------------


def json_leaves(document: Any) -> dict[JsonPath, Any]:
    """Map the path of every scalar in a parsed JSON document to its value.

    A path is a tuple of object keys (str) and list indexes (int). Empty objects
    and lists have no leaves.
    """
    leaves = {}
    # Iterative, so that nesting as deep as json.loads accepts cannot hit the
    # recursion limit here. Children are pushed in reverse to keep file order.
    stack: list[tuple[JsonPath, Any]] = [((), document)]
    while stack:
        path, value = stack.pop()
        if type(value) is dict:
            children = [(path + (key,), child) for key, child in value.items()]
        elif type(value) is list:
            children = [(path + (index,), child) for index, child in enumerate(value)]
        else:
            leaves[path] = value
            continue
        stack.extend(reversed(children))
    return leaves


def _render_json_path(path: JsonPath, quote_dotted: bool) -> str:
    parts = []
    for part in path:
        if type(part) is int:
            parts.append(f"[{part}]")
        elif (
            not part or any(c in part for c in '[]"') or (quote_dotted and "." in part)
        ):
            parts.append("[" + json.dumps(part, ensure_ascii=False) + "]")
        elif parts:
            parts.append("." + part)
        else:
            parts.append(part)
    return "".join(parts) or "$"


def json_names(paths: Iterable[JsonPath]) -> dict[JsonPath, str]:
    """Name each path of one file, quoting dotted keys if two names would clash."""
    names = {path: _render_json_path(path, quote_dotted=False) for path in paths}
    if len(set(names.values())) < len(names):
        names = {path: _render_json_path(path, quote_dotted=True) for path in names}
    return names


# --- CSV ---------------------------------------------------------------------


def _column_names(header: list[str], width: int) -> list[str]:
    """Name every column; empty and repeated names follow pandas.read_csv."""
    names = []
    seen: dict[str, int] = {}
    for index in range(width):
        name = header[index] if index < len(header) else ""
        if not name:
            name = f"Unnamed: {index}"
        if name in seen:
            seen[name] += 1
            name = f"{name}.{seen[name]}"
        else:
            seen[name] = 0
        names.append(name)
    return names


def csv_leaves(table: CsvTable, use_keys: bool) -> dict[CsvKey, Any]:
    """Map (column, row reference) to the cell value (float, or str if not a number).

    The row reference is ``("key", first cell)`` or ``("row", index)``.
    """
    width = max([len(table.header)] + [len(row) for row in table.rows])
    columns = _column_names(table.header, width)
    first = 1 if use_keys else 0
    leaves: dict[CsvKey, Any] = {}
    for index, row in enumerate(table.rows):
        reference = ("key", row[0]) if use_keys else ("row", index)
        for position in range(first, len(row)):
            # float() also accepts "nan", "inf" and surrounding spaces. An
            # empty cell (how pandas writes NaN by default) stays a string,
            # so it is not a number.
            # NOTE: integers above 2**53 in a CSV are rounded to float64 here,
            # so two that differ by less than one ULP compare as identical.
            text = row[position]
            try:
                value: float | str = float(text)
            except ValueError:
                value = text
            leaves[(columns[position], reference)] = value
    return leaves


def csv_name(key: CsvKey) -> str:
    """Return the ``COLUMN[ROW]`` part of a CSV number's name."""
    column, (kind, value) = key
    return f"{column}[{value}]" if kind == "key" else f"{column}[#{value}]"
