"""Fit an ARIMA model to a daily series from a CSV file and score it on held-out days.

Usage:
    python train.py --input data.csv --output outdir [--order 2,0,2] [--fill ffill]

The input needs one row per day, with a YYYY-MM-DD date column and a numeric value
column. Missing days are rejected unless --fill names a way to fill them.
The last ceil(n * --test-fraction) rows are held out as the test set, so the 154-row
2013 file with the default 0.1 trains on the first 138 days and tests on the last 16.
statsmodels' ``ARIMA(train, order=order).fit()`` is fitted to the training rows and
``get_forecast`` predicts the test days with a 95% interval.

Outputs in --output:
    models/<model-name>.pkl  fitted ARIMAResults (``results.save``, a pickle)
    model.json               order, params, aic, bic, llf, nobs, training dates and
                             versions of Python, numpy, pandas, scipy and statsmodels
    forecast.csv             date, actual, forecast, lower, upper for each test day
    forecast.png             training tail, actual test values, forecast and interval
    residuals.png            training residuals over time, their histogram and ACF
    metric.json              run_id, model_name, RMSE, R2, MAE, MAPE, n_train, n_test

metric.json is written last, and a stale one is deleted before anything else is
written, so a folder with metric.json contains a complete set from one run. MAPE is in
percent. Floats are written with repr, which round-trips exactly. A value that is
not finite, such as R2 on a constant test set, is written as null in JSON and as an
empty cell in forecast.csv.

Exit codes: 0 on success. 2 on invalid arguments or input data, with one line on
stderr that starts with "error: ", and nothing written to --output. 1 on a crash,
which Python reports with a traceback.

Inside an Azure ML run the metrics are also logged to that run. An Azure ML SDK v1
run (AZUREML_RUN_ID set, azureml-core installed) gets ``Run.log``. An MLflow-tracked
job (MLFLOW_TRACKING_URI set, mlflow installed), which is how Azure ML SDK v2 jobs
record metrics, gets ``mlflow.log_metrics``. A failure to log prints a warning and
leaves the exit code at 0.
"""

import argparse
import csv
import datetime
import importlib.metadata
import io
import json
import math
import os
import platform
import re
import sys
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from statsmodels.graphics.tsaplots import plot_acf
from statsmodels.tsa.arima.model import ARIMA

FILL_POLICIES = ("none", "interpolate", "ffill", "zero")

# YYYY-MM-DD, optionally followed by a time of day such as T00:00 or 00:00:00.000.
ISO_DATE = re.compile(
    r"""(?P<year>\d{4})-(?P<month>\d{2})-(?P<day>\d{2})
    (?:[T\ ](?P<time>\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?))?""",
    re.VERBOSE | re.ASCII,
)

# A plain decimal number: no thousands separators, no underscores, no hex.
DECIMAL = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?", re.ASCII)
ORDER = re.compile(r"\s*(\d+)\s*,\s*(\d+)\s*,\s*(\d+)\s*", re.ASCII)
MISSING_MARKERS = {"", "nan", "-nan", "na", "n/a", "#n/a", "<na>", "null", "none"}
INFINITE_MARKERS = {"inf", "+inf", "-inf", "infinity", "+infinity", "-infinity"}

# Shown at the end of --help.
EPILOG = (
    "Row numbers in error messages count data rows from 1, so row N is on line N + 1 "
    "of the file (after the header) unless a quoted field spans several lines."
)


class InputError(Exception):
    """Invalid arguments or input data. main prints it as one "error: " line."""


class ArgumentParser(argparse.ArgumentParser):
    """ArgumentParser that raises InputError in place of printing usage and exiting."""

    def error(self, message):
        raise InputError(f"{message}; run with --help for usage")


def build_parser():
    parser = ArgumentParser(
        description="Fit an ARIMA model to a daily series and score it on held-out "
        "days.",
        epilog=EPILOG,
    )
    parser.add_argument("--input", required=True, help="CSV file with one row per day")
    parser.add_argument(
        "--output", required=True, help="folder for the outputs; created if missing"
    )
    parser.add_argument(
        "--date-column", default="TransactionDate", help="name of the date column"
    )
    parser.add_argument(
        "--value-column", default="PaidAmount", help="name of the value column"
    )
    parser.add_argument(
        "--test-fraction",
        default="0.1",
        help="fraction of rows, taken from the end, held out for testing; "
        "the test set has ceil(rows * fraction) rows (default 0.1)",
    )
    parser.add_argument(
        "--order", default="2,0,2", help="ARIMA order p,d,q (default 2,0,2)"
    )
    parser.add_argument(
        "--model-name",
        default="arima_model",
        help="file name, without .pkl, of the saved model under models/",
    )
    parser.add_argument(
        "--fill",
        default="none",
        choices=FILL_POLICIES,
        help="how to fill days that have no row: none rejects the file (default), "
        "interpolate draws a straight line between the neighbours, ffill repeats "
        "the previous value, zero inserts 0",
    )
    return parser


def parse_order(text):
    """Return the ARIMA order (p, d, q) from text such as "2,0,2"."""
    match = ORDER.fullmatch(text)
    if match is not None:
        return tuple(int(part) for part in match.groups())

    raise InputError(
        f"--order must be three non-negative integers p,d,q such as 2,0,2, "
        f"got {show(text)}"
    )


def parse_test_fraction(text):
    try:
        fraction = float(text)
    except ValueError:
        fraction = math.nan

    if not 0 < fraction < 1:
        raise InputError(
            f"--test-fraction must be a number between 0 and 1, exclusive, "
            f"got {show(text)}; 0.1 holds out the last 10% of rows"
        )
    return fraction


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


def count_test_rows(n_rows, fraction):
    """Return ceil(n_rows * fraction), but at least 1.

    The product is rounded to 9 decimals first, so that 10 * 0.3, which is
    3.0000000000000004 in floating point, gives 3 and not 4.
    """
    return max(1, math.ceil(round(n_rows * fraction, 9)))


def count_min_train_rows(order):
    """Return the minimum number of training rows accepted for an ARIMA order.

    statsmodels estimates starting parameters by least squares on the differenced
    series (SARIMAX._conditional_sum_squares in statsmodels 0.15), which
    drops max(3q, p) leading rows and fits p + q coefficients plus the constant,
    which ARIMA includes only when d = 0. This minimum leaves that regression one
    row more than it has coefficients. It is a floor, not enough for a useful fit.
    """
    p, d, q = order
    k_trend = 1 if d == 0 else 0
    return d + max(3 * q, p) + p + q + k_trend + 1


def check_length(n_rows, order, fraction, path):
    min_train = count_min_train_rows(order)
    if n_rows - count_test_rows(n_rows, fraction) >= min_train:
        return

    # n - ceil(n * fraction) <= n * (1 - fraction), so the minimum is at least this.
    needed = max(min_train + 1, math.floor(min_train / (1 - fraction)))
    while needed - count_test_rows(needed, fraction) < min_train:
        needed += 1
    order_text = ",".join(map(str, order))
    raise InputError(
        f"{path} has {n_rows} days but ARIMA({order_text}) with --test-fraction "
        f"{fraction:g} needs at least {needed} ({min_train} to train and "
        f"{count_test_rows(needed, fraction)} to test); add rows, or pass a "
        "smaller --order or --test-fraction"
    )


def fit_and_forecast(series, order, n_test):
    """Fit ARIMA to all but the last n_test days and forecast those days.

    Returns the fitted results and a frame with columns actual, forecast, lower
    and upper (the 95% interval), indexed by date.
    """
    train = series.iloc[:-n_test]
    results = ARIMA(train, order=order).fit()

    prediction = results.get_forecast(steps=n_test)
    interval = prediction.conf_int(alpha=0.05)
    forecast = pd.DataFrame(
        {
            "actual": series.iloc[-n_test:].to_numpy(),
            "forecast": prediction.predicted_mean.to_numpy(),
            "lower": interval.iloc[:, 0].to_numpy(),
            "upper": interval.iloc[:, 1].to_numpy(),
        },
        index=series.index[-n_test:],
    )
    return results, forecast


def compute_metrics(actual, forecast):
    """Return RMSE, R2, MAE and MAPE (in percent) of forecast against actual.

    R2 is NaN when the actual values are constant and MAPE is NaN when any
    actual value is 0, because both are undefined there.
    """
    actual = np.asarray(actual, dtype=float)
    error = np.asarray(forecast, dtype=float) - actual

    total = float(np.sum((actual - actual.mean()) ** 2))
    r2 = 1.0 - float(np.sum(error**2)) / total if total > 0 else math.nan
    if np.any(actual == 0):
        mape = math.nan
    else:
        mape = 100.0 * float(np.mean(np.abs(error / actual)))

    return {
        "RMSE": float(np.sqrt(np.mean(error**2))),
        "R2": r2,
        "MAE": float(np.mean(np.abs(error))),
        "MAPE": mape,
    }


def finite_or_none(value):
    value = float(value)
    return value if math.isfinite(value) else None


def collect_versions():
    versions = {"python": platform.python_version()}
    for package in ("numpy", "pandas", "scipy", "statsmodels"):
        versions[package] = importlib.metadata.version(package)
    return versions


def describe_model(results, model_name, order, train_index):
    """Return the content of model.json."""
    return {
        "model_name": model_name,
        "order": list(order),
        "params": {
            str(name): finite_or_none(value) for name, value in results.params.items()
        },
        "aic": finite_or_none(results.aic),
        "bic": finite_or_none(results.bic),
        "llf": finite_or_none(results.llf),
        "nobs": int(results.nobs),
        "train_start": train_index[0].date().isoformat(),
        "train_end": train_index[-1].date().isoformat(),
        "versions": collect_versions(),
    }


def resolve_run_id():
    """Return HARNESS_RUN_ID, else the Azure ML or MLflow run id, else None.

    Azure ML SDK v1 runs set AZUREML_RUN_ID. MLflow-tracked jobs, including Azure
    ML SDK v2 jobs, set MLFLOW_RUN_ID. Empty values count as unset.

    NOTE: these variable names have not been checked inside a real Azure ML job.
    """
    for name in ("HARNESS_RUN_ID", "AZUREML_RUN_ID", "MLFLOW_RUN_ID"):
        if os.environ.get(name):
            return os.environ[name]
    return None


def write_atomically(path, write):
    """Call write(temporary_path), then rename the file to path.

    A crash inside write leaves at most a *.tmp file, never a truncated output.
    """
    temporary = path.with_name(path.name + ".tmp")
    write(temporary)
    os.replace(temporary, path)


def write_json(path, content):
    """Write content as JSON. Raises ValueError on a NaN or infinite float."""
    text = json.dumps(content, indent=2, allow_nan=False) + "\n"
    write_atomically(path, lambda temporary: temporary.write_text(text, "utf-8"))


def format_float(value):
    return repr(float(value)) if math.isfinite(value) else ""


def write_forecast_csv(path, forecast):
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["date", "actual", "forecast", "lower", "upper"])
    for date, row in forecast.iterrows():
        writer.writerow([date.date().isoformat(), *map(format_float, row)])

    text = buffer.getvalue()
    write_atomically(path, lambda temporary: temporary.write_text(text, "utf-8"))


def save_figure(figure, path):
    write_atomically(path, lambda temporary: figure.savefig(temporary, format="png"))


# The plots use Figure directly, not pyplot, so no GUI backend is ever loaded and
# MPLBACKEND has no effect: savefig renders PNG files with Agg.
def plot_forecast(path, train, forecast, title):
    figure = Figure(figsize=(10, 4.5), layout="constrained")
    ax = figure.subplots()
    tail = train.iloc[-max(60, 4 * len(forecast)) :]
    ax.plot(tail.index, tail.to_numpy(), color="0.4", label="training data")
    ax.plot(forecast.index, forecast["actual"], color="black", label="actual")
    ax.plot(forecast.index, forecast["forecast"], color="C0", label="forecast")
    ax.fill_between(
        forecast.index,
        forecast["lower"],
        forecast["upper"],
        color="C0",
        alpha=0.2,
        label="95% interval",
    )
    ax.set_title(title)
    ax.set_ylabel(train.name)
    ax.legend(loc="upper left")
    save_figure(figure, path)


def plot_residuals(path, residuals, title):
    figure = Figure(figsize=(10, 7), layout="constrained")
    axes = figure.subplot_mosaic([["time", "time"], ["histogram", "acf"]])
    over_time, histogram, autocorrelation = axes["time"], axes["histogram"], axes["acf"]

    over_time.plot(residuals.index, residuals.to_numpy(), color="C0")
    over_time.axhline(0.0, color="0.5", linewidth=0.8)
    over_time.set_title(title)
    histogram.hist(residuals.to_numpy(), bins="auto", color="C0")
    histogram.set_title("Histogram")

    lags = min(30, len(residuals) // 2 - 1)
    if lags >= 1:
        plot_acf(residuals.to_numpy(), ax=autocorrelation, lags=lags)
    else:
        autocorrelation.set_title("Too few residuals for an ACF")
    save_figure(figure, path)


def write_outputs(output, model_name, order, results, train, forecast, metrics):
    """Write every output file except metric.json. Return their paths.

    A metric.json left by an earlier run is deleted first, so that the folder does
    not look complete while this run writes.
    """
    output.mkdir(parents=True, exist_ok=True)
    (output / "metric.json").unlink(missing_ok=True)
    model_path = output / "models" / f"{model_name}.pkl"
    model_path.parent.mkdir(exist_ok=True)
    write_atomically(model_path, results.save)

    model = describe_model(results, model_name, order, train.index)
    write_json(output / "model.json", model)
    write_forecast_csv(output / "forecast.csv", forecast)

    label = f"ARIMA({','.join(map(str, order))})"
    title = f"{label} forecast of {train.name}, test RMSE {metrics['RMSE']:.2f}"
    plot_forecast(output / "forecast.png", train, forecast, title)

    # The first d residuals of a differenced model are the undifferenced values,
    # which would dwarf the others.
    residuals = results.resid.iloc[order[1] :]
    plot_residuals(output / "residuals.png", residuals, f"{label} training residuals")

    names = ("model.json", "forecast.csv", "forecast.png", "residuals.png")
    return [model_path, *(output / name for name in names)]


def log_remote_metrics(metrics, params):
    """Log the metrics to the enclosing Azure ML or MLflow run, if there is one.

    Returns a description of where the metrics went, or None outside such a run.
    The SDKs are imported only here, so that a local run does not load them.

    NOTE: the tests cover a fake azureml.core and a local MLflow file store only.
    """
    values = {name: value for name, value in metrics.items() if math.isfinite(value)}

    if os.environ.get("AZUREML_RUN_ID"):
        try:
            from azureml.core import Run
        except ImportError:
            pass
        else:
            run = Run.get_context()
            # Outside a submitted run, get_context returns an offline run whose
            # id starts with "OfflineRun" and whose log only prints the value.
            if not run.id.startswith("OfflineRun"):
                for name, value in values.items():
                    run.log(name, value)
                return f"Azure ML run {run.id}"

    if os.environ.get("MLFLOW_TRACKING_URI"):
        try:
            import mlflow
        except ImportError:
            return None

        # start_run attaches to the run named by MLFLOW_RUN_ID when it is set, as
        # in Azure ML jobs, and creates a run otherwise.
        with mlflow.start_run() as run:
            mlflow.log_params(params)
            mlflow.log_metrics(values)
        return f"MLflow run {run.info.run_id}"

    return None


def check_output(path):
    if path.exists() and not path.is_dir():
        raise InputError(f"--output {path} is a file; pass a folder path")


def check_model_name(name):
    if not re.fullmatch(r"[A-Za-z0-9_-][A-Za-z0-9._-]*", name):
        raise InputError(
            f"--model-name {show(name)} is not a plain file name; use letters, "
            "digits, '.', '_' and '-', for example arima_model"
        )


def load_inputs(args):
    """Validate the arguments and the input file before anything is written.

    Returns the order, the test fraction and the daily series. Raises InputError.
    """
    order = parse_order(args.order)
    fraction = parse_test_fraction(args.test_fraction)
    check_model_name(args.model_name)
    check_output(Path(args.output))

    path = Path(args.input)
    table = read_table(path, args.date_column, args.value_column)
    series, filled = build_series(table, args.date_column, args.value_column, args.fill)
    check_length(len(series), order, fraction, path)
    return order, fraction, series, filled


def format_metric(value):
    return f"{value:.6g}" if math.isfinite(value) else "undefined"


def print_summary(args, order, series, filled, forecast, metrics):
    train_end = series.index[-len(forecast) - 1].date()
    test_start = forecast.index[0].date()
    days = "day" if filled == 1 else "days"
    filled_text = f", {filled} missing {days} filled by {args.fill}" if filled else ""
    print(
        f"read {len(series)} days from {args.input}, {series.index[0].date()} to "
        f"{series.index[-1].date()}{filled_text}"
    )
    print(
        f"fitted ARIMA({','.join(map(str, order))}) on {len(series) - len(forecast)} "
        f"days to {train_end}, tested on {len(forecast)} days from {test_start}"
    )
    units = {"MAPE": "%"}
    print(
        "  ".join(
            f"{name} {format_metric(value)}{units.get(name, '')}"
            for name, value in metrics.items()
        )
    )


def write_metric_json(path, run_id, model_name, metrics, n_train, n_test):
    record = {"run_id": run_id, "model_name": model_name}
    record.update({name: finite_or_none(value) for name, value in metrics.items()})
    record.update({"n_train": n_train, "n_test": n_test})
    write_json(path, record)


def log_remote_metrics_or_warn(metrics, params, output):
    """Call log_remote_metrics. If it raises, print a warning and return normally."""
    try:
        destination = log_remote_metrics(metrics, params)
    except Exception as exc:  # the SDKs raise network, auth and service errors alike
        print(
            f"warning: logging metrics to the tracking service failed "
            f"({type(exc).__name__}: {exc}); the files in {output} are complete",
            file=sys.stderr,
        )
        return

    if destination is not None:
        print(f"logged metrics to {destination}")


def main(argv=None):
    """Run the script with argv (default sys.argv[1:]) and return the exit code."""
    # Read before mlflow.start_run, which removes MLFLOW_RUN_ID from the environment.
    run_id = resolve_run_id()
    try:
        args = build_parser().parse_args(argv)
        order, fraction, series, filled = load_inputs(args)
    except SystemExit as exc:  # raised by --help after printing the help
        return exc.code
    except InputError as exc:
        message = " ".join(str(exc).splitlines())  # a path may contain a newline
        print(f"error: {message}", file=sys.stderr)
        return 2

    n_test = count_test_rows(len(series), fraction)
    n_train = len(series) - n_test
    results, forecast = fit_and_forecast(series, order, n_test)
    metrics = compute_metrics(forecast["actual"], forecast["forecast"])

    output = Path(args.output)
    train = series.iloc[:n_train]
    paths = write_outputs(
        output, args.model_name, order, results, train, forecast, metrics
    )
    write_metric_json(
        output / "metric.json", run_id, args.model_name, metrics, n_train, n_test
    )
    print_summary(args, order, series, filled, forecast, metrics)
    print(f"wrote {len(paths) + 1} files to {output}")

    params = {"order": ",".join(map(str, order)), "model_name": args.model_name}
    params.update({"n_train": n_train, "n_test": n_test})
    log_remote_metrics_or_warn(metrics, params, output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
