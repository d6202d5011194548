"""Compare two run folders number by number: :func:`compare_runs`.

Every number in every ``.json`` and ``.csv`` file under ``outputs/`` is paired
by its path (``numbers.py`` gives the naming rules) and checked with the
tolerance rule in ``ulp.py``. Other output files are compared by sha256 only,
and a difference there is a warning.

Booleans, strings and null are not numbers. When such values differ, the
difference is reported apart from the numbers and does not change the exit
code, because these values are mostly versions, dates and names that may
legitimately differ between targets. A number on one side and anything else
(or nothing) on the other is a numeric difference. Keys and CSV columns named
``run_id`` are always ignored.
"""

from __future__ import annotations

import csv
import fnmatch
import functools
import logging
import os
import re
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from harness.errors import ParityInputError
from harness.parity.identity import (
    check_integrity,
    compare_environment,
    compare_identity,
    likely_causes,
)
from harness.parity.numbers import (
    NUMBER_TYPES,
    CsvTable,
    csv_leaves,
    csv_name,
    json_leaves,
    json_names,
    output_kind,
    read_csv,
    read_json,
    union_keys,
)
from harness.parity.result import FileSummary, OtherFile, ParityResult, ValueDifference
from harness.parity.runs import (
    RunFolder,
    assign_labels,
    check_required_outputs,
    load_run,
)
from harness.parity.ulp import NumberDifference, Tolerance, compare_numbers

log = logging.getLogger(__name__)

MANIFEST_SCHEMA = 1

# Keys (and CSV columns) that differ between any two runs by design.
IGNORED_KEY = "run_id"

FORECAST_FILE = "forecast.csv"

# Marks a leaf that is absent in one run, because None is a JSON null.
_MISSING = object()


def compare_runs(
    run_a: str | os.PathLike[str],
    run_b: str | os.PathLike[str],
    *,
    rtol: float = 0.0,
    atol: float = 0.0,
    max_ulp: int = 0,
    ignore: Iterable[str] = (),
) -> ParityResult:
    """Compare every number that two runs wrote under ``outputs/``.

    Args:
        run_a, run_b: run folders, each with ``manifest.json`` and ``outputs/``.
        rtol, atol, max_ulp: tolerance; a number passes when any one of the
            three limits is met (see ``ulp.py``). All zero means exact.
        ignore: fnmatch patterns matched, case-sensitively, against number
            names such as ``metric.json:*duration*`` and against the paths of
            other output files such as ``*.png``. A pattern equal to a name
            also matches it.

    Returns:
        The findings. ``exit_code`` is 0 when every number is within tolerance
        and 1 otherwise. Identity, integrity, environment and non-numeric
        differences are reported but do not change it.

    Raises:
        ParityInputError: a tolerance or pattern is invalid, a run folder or its
            manifest.json is missing or unreadable, or ``metric.json`` or
            ``model.json`` is in one run but missing or unreadable in either.
    """
    tolerance = Tolerance(rtol=rtol, atol=atol, max_ulp=max_ulp)
    patterns = _check_patterns(ignore)
    a = load_run(Path(run_a), "run A")
    b = load_run(Path(run_b), "run B")
    parsed = check_required_outputs((a, b))
    assign_labels(a, b)

    result = ParityResult(
        run_a=a.info(), run_b=b.info(), tolerance=tolerance, ignore=patterns
    )
    for run in (a, b):
        schema = run.manifest.get("schema")
        if schema != MANIFEST_SCHEMA:
            result.warnings.append(
                f"{run.label}: manifest schema {schema!r} is not {MANIFEST_SCHEMA}, "
                "the version this comparison reads; fields may be missing or misread"
            )
    result.identity = compare_identity(a, b)
    result.integrity = check_integrity(a) + check_integrity(b)

    comparer = _Comparer(result, a, b)
    comparer.compare_outputs(parsed)
    result.environment = compare_environment(a.manifest, b.manifest)
    if result.numbers:
        result.likely_causes = likely_causes(
            result.run_a,
            result.run_b,
            result.identity,
            result.integrity,
            result.environment,
        )

    for pattern, hits in zip(patterns, comparer.pattern_hits):
        if not hits:
            result.warnings.append(f"ignore pattern {pattern!r} matched nothing")
    if result.numbers_compared == 0:
        result.warnings.append(
            "no numbers found in the .json and .csv outputs, "
            "so parity was decided on 0 numbers"
        )
    log.debug("%s (%s vs %s)", result.verdict, a.path, b.path)
    return result


def _check_patterns(ignore: Iterable[str]) -> tuple[str, ...]:
    if isinstance(ignore, (str, bytes)):
        raise ParityInputError(
            f"invalid ignore {ignore!r}: expected a list of patterns, not one string; "
            f"pass [{ignore!r}]"
        )
    patterns = tuple(ignore)
    for pattern in patterns:
        if not isinstance(pattern, str) or not pattern:
            raise ParityInputError(
                f"invalid ignore pattern {pattern!r}: expected a non-empty fnmatch "
                "pattern such as 'metric.json:*duration*'"
            )
    return patterns


class _Comparer:
    """Comparison of the outputs of two runs, written into a ParityResult."""

    def __init__(self, result: ParityResult, a: RunFolder, b: RunFolder):
        self.result = result
        self.tolerance = result.tolerance
        self.a = a
        self.b = b
        self.labels = (a.label, b.label)
        self.patterns = result.ignore
        self._regexes = [re.compile(fnmatch.translate(p)) for p in self.patterns]
        self.pattern_hits = [0] * len(self.patterns)

    def is_ignored(self, name: str) -> bool:
        # A pattern equal to the name matches too, so that names with brackets
        # (which fnmatch reads as character sets) can be given literally.
        ignored = False
        for index, regex in enumerate(self._regexes):
            if name == self.patterns[index] or regex.match(name):
                self.pattern_hits[index] += 1
                ignored = True
        return ignored

    def compare_outputs(self, parsed: dict[tuple[int, str], Any]) -> None:
        """Compare every output file. ``parsed`` contains those already parsed."""
        for rel in sorted(self.a.file_set | self.b.file_set):
            kind = output_kind(rel)
            if kind is None:
                self.compare_other_file(rel)
                continue
            document_a, document_b = self.load_pair(rel, kind, parsed)
            if document_a is None and document_b is None:
                # Neither copy parsed (or one is absent), so only the sha256 can
                # be compared.
                self.compare_other_file(rel)
                continue
            summary = FileSummary(
                rel, kind, rel in self.a.file_set, rel in self.b.file_set
            )
            self.result.files.append(summary)
            if kind == "json":
                self.compare_json(summary, document_a, document_b)
            else:
                self.compare_csv(summary, document_a, document_b)

    def load_pair(
        self, rel: str, kind: str, parsed: dict[tuple[int, str], Any]
    ) -> tuple[Any, Any]:
        """Parse the file in both runs. None stands for absent or unparsable."""
        if (0, rel) in parsed:
            return parsed[(0, rel)], parsed[(1, rel)]
        if self.same_bytes(rel):
            document = self.load(self.a, rel, kind)
            return document, document
        return self.load(self.a, rel, kind), self.load(self.b, rel, kind)

    def same_bytes(self, rel: str) -> bool:
        if rel not in self.a.file_set or rel not in self.b.file_set:
            return False
        try:
            return self.a.sha256(rel) == self.b.sha256(rel)
        except OSError:
            return False

    def load(self, run: RunFolder, rel: str, kind: str) -> Any:
        if rel not in run.file_set:
            return None
        path = run.outputs / rel
        try:
            return read_json(path) if kind == "json" else read_csv(path)
        except (OSError, ValueError, csv.Error) as exc:
            self.result.warnings.append(
                f"{run.label}: outputs/{rel} could not be parsed as {kind.upper()} "
                f"({exc}); its numbers count as missing in this run"
            )
            return None

    def compare_json(
        self, summary: FileSummary, document_a: Any, document_b: Any
    ) -> None:
        leaves_a, leaves_b = _flatten_pair(document_a, document_b, json_leaves)
        names = json_names(union_keys(leaves_a, leaves_b))
        self.compare_leaves(summary, leaves_a, leaves_b, names, names.__getitem__)

    def compare_csv(
        self, summary: FileSummary, table_a: CsvTable | None, table_b: CsvTable | None
    ) -> None:
        tables = [table for table in (table_a, table_b) if table is not None]
        use_keys = all(table.has_unique_keys() for table in tables)
        flatten = functools.partial(csv_leaves, use_keys=use_keys)
        leaves_a, leaves_b = _flatten_pair(table_a, table_b, flatten)
        keys = union_keys(leaves_a, leaves_b)
        self.compare_leaves(summary, leaves_a, leaves_b, keys, csv_name)
        if summary.file == FORECAST_FILE:
            self.result.forecast_a = table_a
            self.result.forecast_b = table_b

    def compare_leaves(
        self,
        summary: FileSummary,
        leaves_a: dict[Any, Any],
        leaves_b: dict[Any, Any],
        keys: Iterable[Any],
        name_of: Callable[[Any], str],
    ) -> None:
        """Compare the leaves at ``keys``; ``name_of(key)`` returns a name's path part.

        Names are built only where they are needed, because this loop runs
        once per number and most numbers are identical.
        """
        file = summary.file
        for key in keys:
            # A JSON key is the tuple of keys on the path, so any level named
            # run_id is ignored. A CSV key starts with the column name.
            if IGNORED_KEY in key or (
                self.patterns and self.is_ignored(f"{file}:{name_of(key)}")
            ):
                summary.ignored += 1
                continue
            a = leaves_a.get(key, _MISSING)
            b = leaves_b.get(key, _MISSING)
            a_is_number = type(a) in NUMBER_TYPES
            b_is_number = type(b) in NUMBER_TYPES

            if a_is_number and b_is_number:
                summary.numbers += 1
                if a is b or a == b or (a != a and b != b):  # x != x only for NaN
                    summary.identical += 1
                    continue
                name = f"{file}:{name_of(key)}"
                difference = compare_numbers(
                    name, file, a, b, self.tolerance, self.labels
                )
            elif a_is_number or b_is_number:
                summary.numbers += 1
                name = f"{file}:{name_of(key)}"
                difference = _one_sided_number(name, file, a, b, self.labels)
            else:
                if a != b:
                    name = f"{file}:{name_of(key)}"
                    self.result.values.append(_value_difference(name, file, a, b))
                continue

            if difference.within_tolerance:
                summary.within_tolerance += 1
            else:
                summary.differ += 1
            self.result.numbers.append(difference)

    def compare_other_file(self, rel: str) -> None:
        """Compare a file by sha256, and warn when it differs or is in one run only."""
        if self.patterns and self.is_ignored(rel):
            return
        digests = []
        for run in (self.a, self.b):
            digest = None
            if rel in run.file_set:
                try:
                    digest = run.sha256(rel)
                except OSError as exc:
                    self.result.warnings.append(
                        f"{run.label}: outputs/{rel} could not be read ({exc.strerror})"
                    )
            digests.append(digest)
        other = OtherFile(rel, digests[0], digests[1])
        self.result.other_files.append(other)
        if other.same:
            return
        la, lb = self.labels
        if rel not in self.b.file_set:
            where = f"exists only in {la}"
        elif rel not in self.a.file_set:
            where = f"exists only in {lb}"
        else:
            where = f"differs between {la} and {lb}"
        self.result.warnings.append(
            f"outputs/{rel} {where} (compared by sha256 only, so this is not a failure)"
        )


def _flatten_pair(
    document_a: Any, document_b: Any, flatten: Callable[[Any], dict[Any, Any]]
) -> tuple[dict[Any, Any], dict[Any, Any]]:
    """Flatten both documents. None (absent or unparsable) has no leaves.

    ``load_pair`` returns one object for byte-identical files, so that object
    is flattened once.
    """
    leaves_a = {} if document_a is None else flatten(document_a)
    if document_b is document_a:
        return leaves_a, leaves_a
    leaves_b = {} if document_b is None else flatten(document_b)
    return leaves_a, leaves_b


def _one_sided_number(
    name: str, file: str, a: Any, b: Any, labels: tuple[str, str]
) -> NumberDifference:
    """Describe a number whose counterpart is missing or not a number."""
    if type(a) in NUMBER_TYPES:
        number, other, side = a, b, "b"
        number_label, other_label = labels
    else:
        number, other, side = b, a, "a"
        other_label, number_label = labels
    if other is _MISSING:
        kind = f"missing_in_{side}"
        message = f"{name}: {number_label} {number!r}, missing in {other_label}"
        other = None
    else:
        kind = f"not_a_number_in_{side}"
        message = (
            f"{name}: {number_label} {number!r}, {other_label} {other!r} (not a number)"
        )
    value_a, value_b = (number, other) if side == "b" else (other, number)
    return NumberDifference(
        name, file, kind, value_a, value_b, None, None, None, False, message
    )


def _value_difference(name: str, file: str, a: Any, b: Any) -> ValueDifference:
    missing_in = None
    if a is _MISSING:
        missing_in = "a"
    elif b is _MISSING:
        missing_in = "b"
    return ValueDifference(
        name,
        file,
        None if a is _MISSING else a,
        None if b is _MISSING else b,
        missing_in,
    )
