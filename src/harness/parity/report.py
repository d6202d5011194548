"""Write a parity comparison as parity.md, parity.json and parity.png.

parity.md is for people and lists identity differences first, because a
different input explains any numeric difference. parity.json contains the same
findings as data. ``plot.py`` draws parity.png.
"""

from __future__ import annotations

import json
import logging
import math
import os
from dataclasses import asdict
from pathlib import Path
from typing import Any

from harness.errors import HarnessError
from harness.parity.compare import IGNORED_KEY
from harness.parity.identity import shown
from harness.parity.plot import write_plot
from harness.parity.result import ParityResult
from harness.parity.runs import RunInfo
from harness.parity.ulp import TOLERANCE_RULE, NumberDifference

log = logging.getLogger(__name__)

REPORT_SCHEMA = 1

# Maximum rows per table in parity.md. parity.json lists every difference.
MAX_TABLE_ROWS = 200


def write_report(
    result: ParityResult, out_dir: str | os.PathLike[str]
) -> dict[str, Path]:
    """Write parity.md, parity.json and parity.png into ``out_dir``.

    parity.png is written only when both runs have ``outputs/forecast.csv`` with
    a ``forecast`` column. Otherwise an older parity.png in ``out_dir`` is
    removed, and parity.md states why there is no plot.

    Returns:
        The written paths under the keys ``md``, ``json`` and, if written, ``png``.

    Raises:
        HarnessError: ``out_dir`` cannot be created or written.
    """
    out_dir = Path(out_dir)
    paths = {}
    try:
        out_dir.mkdir(parents=True, exist_ok=True)

        png_path = out_dir / "parity.png"
        plot_note = write_plot(result, png_path)
        if plot_note is None:
            paths["png"] = png_path
        else:
            png_path.unlink(missing_ok=True)

        json_path = out_dir / "parity.json"
        data = report_data(result, plot_file=paths.get("png"), plot_note=plot_note)
        json_path.write_text(
            json.dumps(data, indent=2, ensure_ascii=False, allow_nan=False) + "\n",
            encoding="utf-8",
        )
        paths["json"] = json_path

        md_path = out_dir / "parity.md"
        md_path.write_text(render_markdown(result, plot_note), encoding="utf-8")
        paths["md"] = md_path
    except OSError as exc:
        raise HarnessError(
            f"failed to write the parity report to {out_dir} ({exc.strerror or exc}); "
            "check that the folder is writable"
        ) from exc
    log.debug("parity report written to %s", out_dir)
    return paths


# --- parity.json -------------------------------------------------------------


def _json_safe(value: Any) -> Any:
    """Convert a value for strict JSON, writing NaN and infinities as strings."""
    if type(value) is float and not math.isfinite(value):
        return repr(value)
    if isinstance(value, dict):
        return {str(key): _json_safe(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(item) for item in value]
    if isinstance(value, Path):
        return str(value)
    return value


def _run_data(run: RunInfo) -> dict[str, Any]:
    return {
        "path": str(run.path),
        "label": run.label,
        "target": run.target,
        "run_id": run.run_id,
    }


def report_data(
    result: ParityResult, plot_file: Path | None = None, plot_note: str | None = None
) -> dict[str, Any]:
    """Return the content of parity.json.

    Each record's keys are its field names. Non-finite numbers are written as
    the strings "nan", "inf" and "-inf", so the file is strict JSON.
    """
    tolerance = result.tolerance
    data = {
        "schema": REPORT_SCHEMA,
        "verdict": result.verdict,
        "holds": result.holds,
        "exit_code": result.exit_code,
        "runs": {"a": _run_data(result.run_a), "b": _run_data(result.run_b)},
        "tolerance": {
            "rtol": tolerance.rtol,
            "atol": tolerance.atol,
            "max_ulp": tolerance.max_ulp,
            "rule": TOLERANCE_RULE,
        },
        "ignore": {"patterns": list(result.ignore), "keys": [IGNORED_KEY]},
        "counts": {
            "compared": result.numbers_compared,
            "identical": result.numbers_identical,
            "within_tolerance": result.numbers_within_tolerance,
            "differ": result.numbers_differing,
            "ignored": result.numbers_ignored,
            "value_differences": len(result.values),
        },
        "identity": [
            {
                "name": item.name,
                "key": item.key,
                "a": item.a,
                "b": item.b,
                "differs": item.differs,
                "path_a": item.detail_a,
                "path_b": item.detail_b,
            }
            for item in result.identity
        ],
        "integrity": [asdict(item) for item in result.integrity],
        "likely_causes": result.likely_causes,
        "differences": [asdict(item) for item in result.numbers],
        "value_differences": [asdict(item) for item in result.values],
        "files": [asdict(summary) for summary in result.files],
        "other_files": [
            {**asdict(item), "same": item.same} for item in result.other_files
        ],
        "environment": [asdict(item) for item in result.environment],
        "warnings": result.warnings,
        "plot": {"file": plot_file.name if plot_file else None, "note": plot_note},
    }
    return _json_safe(data)


# --- parity.md ---------------------------------------------------------------


def _cell(text: Any) -> str:
    """Escape text for a Markdown table cell."""
    return str(text).replace("|", "\\|").replace("\n", " ")


def _value(value: Any) -> str:
    return _cell(repr(value))


def _rows_left_out(total: int) -> list[str]:
    """Return the note below a table of ``total`` rows cut at MAX_TABLE_ROWS."""
    if total <= MAX_TABLE_ROWS:
        return []
    return ["", f"{total - MAX_TABLE_ROWS} more are listed in parity.json."]


def render_markdown(result: ParityResult, plot_note: str | None = None) -> str:
    """Return the content of parity.md. ``plot_note`` explains a missing parity.png."""
    sections = [
        _header_section(result),
        _identity_section(result),
        _integrity_section(result),
        _numbers_section(result),
        _environment_section(result),
        _values_section(result),
        _other_files_section(result),
        _warnings_section(result),
        _plot_section(plot_note),
    ]
    return "\n\n".join(section for section in sections if section) + "\n"


def _header_section(result: ParityResult) -> str:
    a, b = result.run_a, result.run_b
    lines = [
        f"# {result.verdict}",
        "",
        "| | A | B |",
        "|---|---|---|",
        f"| label | {_cell(a.label)} | {_cell(b.label)} |",
        f"| path | {_cell(a.path)} | {_cell(b.path)} |",
        f"| target | {_cell(a.target)} | {_cell(b.target)} |",
        f"| run id | {_cell(a.run_id)} | {_cell(b.run_id)} |",
        "",
        f"Tolerance: {result.tolerance.describe()}. {TOLERANCE_RULE}",
        "",
    ]
    ignored = f"Ignored: keys and CSV columns named `{IGNORED_KEY}` (always)"
    if result.ignore:
        ignored += ", and names matching " + ", ".join(f"`{p}`" for p in result.ignore)
    lines.append(ignored + ".")
    return "\n".join(lines)


def _identity_section(result: ParityResult) -> str:
    la, lb = result.run_a.label, result.run_b.label
    lines = ["## Identity", ""]
    differing = [item for item in result.identity if item.differs]
    if differing:
        lines.append(
            "These inputs differ, so each one is a likely cause of any numeric "
            "difference:"
        )
        lines.append("")
        for item in differing:
            detail_a = f" ({item.detail_a})" if item.detail_a else ""
            detail_b = f" ({item.detail_b})" if item.detail_b else ""
            lines.append(
                f"- **{item.name}**: {la} `{shown(item.a)}`{detail_a}, "
                f"{lb} `{shown(item.b)}`{detail_b}"
            )
    else:
        lines.append(
            "Image, lock, spec, script, data and arguments are the same in both runs."
        )
    unrecorded = [
        item.name for item in result.identity if item.a is None and item.b is None
    ]
    partly = [
        item.name
        for item in result.identity
        if not item.differs and (item.a is None) != (item.b is None)
    ]
    if unrecorded:
        lines += ["", "Not recorded in either manifest: " + ", ".join(unrecorded) + "."]
    if partly:
        lines += [
            "",
            "Recorded in one manifest only, so not compared: "
            + ", ".join(partly)
            + ".",
        ]
    return "\n".join(lines)


def _integrity_section(result: ParityResult) -> str:
    lines = ["## Integrity", ""]
    if not result.integrity:
        lines.append("Every output file matches its manifest checksum in both runs.")
        return "\n".join(lines)
    lines.append(
        "The numbers of these files were still compared, as they are on disk now."
    )
    lines.append("")
    lines += [f"- {problem.message}" for problem in result.integrity]
    return "\n".join(lines)


def _numbers_section(result: ParityResult) -> str:
    lines = ["## Numbers", ""]
    lines.append(
        f"{result.numbers_compared} compared: {result.numbers_identical} identical, "
        f"{result.numbers_within_tolerance} within tolerance, "
        f"{result.numbers_differing} differ. "
        f"Ignored (run_id keys and ignore patterns): {result.numbers_ignored}."
    )
    if result.likely_causes:
        lines += ["", "Likely causes, strongest first:", ""]
        lines += [
            f"{index}. {cause}" for index, cause in enumerate(result.likely_causes, 1)
        ]

    differing = [item for item in result.numbers if not item.within_tolerance]
    within = [item for item in result.numbers if item.within_tolerance]
    if differing:
        lines += ["", "### Outside tolerance", ""]
        lines += _difference_table(result, differing)
    if within:
        lines += ["", "### Within tolerance but not identical", ""]
        lines += _difference_table(result, within)

    if result.files:
        lines += ["", "### Per file", ""] + _per_file_table(result)
    return "\n".join(lines)


def _per_file_table(result: ParityResult) -> list[str]:
    lines = [
        "| file | numbers | identical | within tolerance | differ | ignored |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for summary in result.files:
        presence = ""
        if not summary.in_a:
            presence = f" (only in {result.run_b.label})"
        elif not summary.in_b:
            presence = f" (only in {result.run_a.label})"
        counts = (
            summary.numbers,
            summary.identical,
            summary.within_tolerance,
            summary.differ,
            summary.ignored,
        )
        row = [_cell(summary.file + presence)] + [str(count) for count in counts]
        lines.append("| " + " | ".join(row) + " |")
    return lines


def _difference_table(result: ParityResult, items: list[NumberDifference]) -> list[str]:
    lines = [
        f"| name | {_cell(result.run_a.label)} | {_cell(result.run_b.label)} "
        "| \\|diff\\| | rel | ULP |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for item in items[:MAX_TABLE_ROWS]:
        a = "missing" if item.kind == "missing_in_a" else _value(item.a)
        b = "missing" if item.kind == "missing_in_b" else _value(item.b)
        abs_diff = "" if item.abs_diff is None else _value(item.abs_diff)
        rel = "" if item.rel_diff is None else _value(item.rel_diff)
        ulp = "" if item.ulp is None else str(item.ulp)
        lines.append(f"| {_cell(item.name)} | {a} | {b} | {abs_diff} | {rel} | {ulp} |")
    return lines + _rows_left_out(len(items))


def _environment_section(result: ParityResult) -> str:
    la, lb = result.run_a.label, result.run_b.label
    lines = ["## Environment", ""]
    if not result.environment:
        lines.append(
            "Target, CPU, BLAS, NumPy, Python, packages and determinism settings "
            "are the same in both manifests."
        )
        return "\n".join(lines)
    lines += [f"- {item.describe(la, lb)}" for item in result.environment]
    return "\n".join(lines)


def _values_section(result: ParityResult) -> str:
    if not result.values:
        return ""
    la, lb = result.run_a.label, result.run_b.label
    lines = [
        "## Other values",
        "",
        "Strings, booleans and nulls that differ. They do not change the verdict.",
        "",
        f"| name | {_cell(la)} | {_cell(lb)} |",
        "|---|---|---|",
    ]
    for item in result.values[:MAX_TABLE_ROWS]:
        a = "missing" if item.missing_in == "a" else _value(item.a)
        b = "missing" if item.missing_in == "b" else _value(item.b)
        lines.append(f"| {_cell(item.name)} | {a} | {b} |")
    lines += _rows_left_out(len(result.values))
    return "\n".join(lines)


def _other_files_section(result: ParityResult) -> str:
    if not result.other_files:
        return ""
    same = sum(1 for item in result.other_files if item.same)
    lines = [
        "## Other files",
        "",
        f"Compared by sha256 only: {same} of {len(result.other_files)} are the same. "
        "A difference here is a warning, not a failure.",
        "",
        f"| file | {_cell(result.run_a.label)} | {_cell(result.run_b.label)} | same |",
        "|---|---|---|---|",
    ]
    for item in result.other_files:
        a = item.sha256_a[:12] if item.sha256_a else "missing"
        b = item.sha256_b[:12] if item.sha256_b else "missing"
        lines.append(
            f"| {_cell(item.file)} | {a} | {b} | {'yes' if item.same else 'no'} |"
        )
    return "\n".join(lines)


def _warnings_section(result: ParityResult) -> str:
    if not result.warnings:
        return ""
    return "\n".join(
        ["## Warnings", ""] + [f"- {warning}" for warning in result.warnings]
    )


def _plot_section(plot_note: str | None) -> str:
    if plot_note is None:
        return "## Plot\n\n![actual and both forecasts](parity.png)"
    return f"## Plot\n\nNo parity.png: {plot_note}."
