"""Read the input CSV file and validate it into a daily series.

Every check raises InputError with a message that names the file, row or value
and the fix. Messages number data rows from 1, so row N is on line N + 1 of the
file unless a quoted field spans several lines.
"""

import datetime
import io
import math
import re

import pandas as pd

FILL_POLICIES = ("none", "interpolate", "ffill", "zero")

# YYYY-MM-DD, optionally followed by a time of day such as T00:00 or 00:00:00.000.
# An ISO date, optionally with a time (checked to be midnight) in UTC: exports
# from databases and pandas write 2013-07-31T00:00:00Z or +00:00.
ISO_DATE = re.compile(
    r"""(?P<year>\d{4})-(?P<month>\d{2})-(?P<day>\d{2})
    (?:[T\ ](?P<time>\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?)(?:Z|[+-]00:?00)?)?""",
    re.VERBOSE | re.ASCII,
)

# A plain decimal number: no thousands separators, no underscores, no hex.
DECIMAL = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?", re.ASCII)
MISSING_MARKERS = {"", "nan", "-nan", "na", "n/a", "#n/a", "<na>", "null", "none"}
INFINITE_MARKERS = {"inf", "+inf", "-inf", "infinity", "+infinity", "-infinity"}


class InputError(Exception):
    """Invalid arguments or input data. train.main prints it as one "error: " line
    and returns exit code 2.
    """


def show(value, limit=40):
    """Quote a value for an error message, on one line and in at most limit chars."""
    text = repr(value)
    if len(text) > limit:
        text = text[: limit - 4] + "...'"
    return text


def read_text(path):
    """Return the file's text after checking that it is non-empty UTF-8 text."""
    if not path.exists():
        raise InputError(f"input file {path} not found; check the --input path")
    if path.is_dir():
        raise InputError(f"--input {path} is a folder; pass the CSV file inside it")

    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InputError(
            f"cannot read input file {path}: {exc.strerror}; check its permissions"
        ) from None

    check_text_bytes(path, data)

    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise InputError(
            f"input file {path} is not UTF-8 text (byte 0x{data[exc.start]:02x} on "
            f"line {line}, offset {exc.start}); save it as CSV (UTF-8)"
        ) from None

    if not text.strip():
        raise InputError(f"input file {path} contains only blank lines")
    return text


def check_text_bytes(path, data):
    """Reject data that is empty, a ZIP archive, UTF-16 text or contains a NUL byte."""
    if not data:
        raise InputError(f"input file {path} is empty; export the data again")
    if data.startswith(b"PK\x03\x04"):
        raise InputError(
            f"input file {path} is a ZIP archive, as an Excel .xlsx workbook is; "
            "export the sheet as CSV (UTF-8)"
        )
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise InputError(f"input file {path} is UTF-16 text; save it as CSV (UTF-8)")
    if b"\x00" in data:
        offset = data.index(b"\x00")
        raise InputError(
            f"input file {path} is binary, not CSV text (NUL byte at offset "
            f"{offset}); check that --input names the CSV file"
        )


def read_table(path, date_column, value_column):
    """Read the date and value columns of the CSV file as stripped strings.

    The returned frame keeps pandas' row index, and messages call index i data
    row i + 1. Blank lines are read as rows so that this numbering matches the
    file's lines. Rows whose two cells are empty, such as a trailing blank line or
    the ",," lines some spreadsheets export, are then dropped.
    """
    text = read_text(path)
    try:
        table = pd.read_csv(
            io.StringIO(text),
            dtype=str,
            keep_default_na=False,
            skip_blank_lines=False,
            skipinitialspace=True,
        )
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise InputError(describe_parser_error(path, exc)) from None

    table.columns = [str(name).strip() for name in table.columns]
    check_columns(path, list(table.columns), date_column, value_column)

    table = table[[date_column, value_column]].apply(lambda cells: cells.str.strip())
    table = table[(table != "").any(axis=1)]
    if table.empty:
        raise InputError(
            f"input file {path} has a header but no data rows; export the data again"
        )
    return table


def describe_parser_error(path, exc):
    match = re.search(r"Expected (\d+) fields in line (\d+), saw (\d+)", str(exc))
    if match is None:
        return f"input file {path} is not valid CSV ({exc}); export it again as CSV"

    expected, line, found = match.groups()
    return (
        f"input file {path} is not valid CSV: line {line} has {found} fields but the "
        f"header has {expected}; quote fields that contain commas"
    )


def check_columns(path, columns, date_column, value_column):
    if date_column == value_column:
        raise InputError(
            f"--date-column and --value-column both name {show(date_column)}; "
            "pass two different columns"
        )

    missing = [name for name in (date_column, value_column) if name not in columns]
    if not missing:
        return

    names = " and ".join(show(name) for name in missing)
    found = ", ".join(show(name) for name in columns)
    options = {date_column: "--date-column", value_column: "--value-column"}
    remedy = "pass " + " and ".join(f"{options[name]} NAME" for name in missing)
    delimiter = next((d for d in (";", "\t", "|") if d in columns[0]), None)
    if len(columns) == 1 and delimiter is not None:
        remedy = f"save the file with ',' as the delimiter, not {show(delimiter)}"
    raise InputError(
        f"column {names} not found in {path}; the header has {found}; {remedy}"
    )


def parse_date(text):
    """Return the date in text, an ISO date with no time of day or midnight.

    Raises ValueError with the reason for any other text.
    """
    match = ISO_DATE.fullmatch(text)
    if match is None:
        raise ValueError(
            f"{show(text)} is not in the format YYYY-MM-DD; write dates as "
            "YYYY-MM-DD, for example 2013-07-31"
        )

    time = match["time"]
    if time is not None and set(time) - set("0:."):
        raise ValueError(
            f"{show(text)} has a time of day; the input needs one row per day, "
            "dated YYYY-MM-DD or at midnight"
        )

    try:
        return datetime.date(int(match["year"]), int(match["month"]), int(match["day"]))
    except ValueError:
        raise ValueError(f"{show(text)} is not a calendar date; correct it") from None


def parse_dates(cells, column):
    """Return the dates in cells, a Series indexed by pandas row number."""
    dates = []
    for index, text in cells.items():
        if not text:
            raise InputError(
                f"row {index + 1}: {column} is empty; enter the date as YYYY-MM-DD"
            )

        try:
            dates.append(parse_date(text))
        except ValueError as exc:
            # When earlier rows parsed, the file mixes formats. Spreadsheets do
            # this when some cells hold dates and others hold text.
            mixed = " (earlier rows are YYYY-MM-DD, so the file mixes formats)"
            context = mixed if dates and ISO_DATE.fullmatch(text) is None else ""
            raise InputError(f"row {index + 1}: {column} {exc}{context}") from None
    return dates


def parse_value(text):
    """Return text as a finite float, or raise ValueError saying what is wrong."""
    if DECIMAL.fullmatch(text):
        value = float(text)
        if math.isfinite(value):
            return value
        raise ValueError(f"{show(text)} is too large for a float; correct it")

    if text.lower() in MISSING_MARKERS:
        raise ValueError(
            f"is missing ({show(text)}); enter the value, or delete the row and "
            "pass --fill interpolate"
        )
    if text.lower() in INFINITE_MARKERS:
        raise ValueError(f"{show(text)} is not finite; enter a finite number")
    raise ValueError(
        f"{show(text)} is not a number; write digits with '.' as the decimal "
        "point and no thousands separators, for example 1346.01"
    )


def parse_values(cells, dates, column):
    values = []
    for (index, text), date in zip(cells.items(), dates):
        try:
            values.append(parse_value(text))
        except ValueError as exc:
            raise InputError(f"row {index + 1} ({date}): {column} {exc}") from None
    return values


def check_date_order(dates, rows):
    """Reject duplicate and decreasing dates, naming the first offending row."""
    for i in range(1, len(dates)):
        previous, current = dates[i - 1], dates[i]
        if current == previous:
            raise InputError(
                f"date {current} appears twice, in rows {rows[i - 1]} and {rows[i]}; "
                "keep one row per day"
            )
        if current < previous:
            raise InputError(
                f"row {rows[i]} ({current}) comes after row {rows[i - 1]} "
                f"({previous}) but is earlier; sort the rows by date, oldest first"
            )


def find_first_gap(dates, rows):
    """Return a message about the first run of missing days, or None without gaps."""
    one_day = datetime.timedelta(days=1)
    for i in range(1, len(dates)):
        if dates[i] - dates[i - 1] == one_day:
            continue

        first, last = dates[i - 1] + one_day, dates[i] - one_day
        days = (last - first).days + 1
        missing = f"row for {first}" if days == 1 else f"rows for {first} to {last}"
        count = "" if days == 1 else f"{days} days, "
        return f"no {missing} ({count}between rows {rows[i - 1]} and {rows[i]})"
    return None


def build_series(table, date_column, value_column, fill):
    """Return the validated series with a daily DatetimeIndex, and the filled days."""
    rows = [index + 1 for index in table.index]
    dates = parse_dates(table[date_column], date_column)
    values = parse_values(table[value_column], dates, value_column)
    check_date_order(dates, rows)

    gap = find_first_gap(dates, rows)
    if gap is not None and fill == "none":
        raise InputError(
            f"{gap}; add the missing days, or pass --fill interpolate "
            "(or ffill or zero) to fill them"
        )

    series = pd.Series(values, index=pd.DatetimeIndex(dates), name=value_column)
    daily = series.asfreq("D")
    filled = int(daily.isna().sum())
    if fill == "interpolate":
        daily = daily.interpolate(method="time")
    elif fill == "ffill":
        daily = daily.ffill()
    elif fill == "zero":
        daily = daily.fillna(0.0)
    return daily, filled
