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

The modules beside this file are imported by name. arima_data reads and validates
the CSV, arima_outputs writes the files, and arima_tracking logs to Azure ML or
MLflow. Python finds them because it puts a script's folder first on sys.path
(unless -P or PYTHONSAFEPATH is set), so copy the whole folder, not train.py
alone. A caller that runs this file with runpy.run_path must add the folder to
sys.path itself, as docker/entry.py does.
"""

import argparse
import math
import re
import sys
from pathlib import Path

try:
    import numpy as np
    import pandas as pd
    from statsmodels.tsa.arima.model import ARIMA
except ImportError as exc:  # run on its own in an environment without the libraries
    sys.exit(f"error: {exc.name} is not installed; train.py needs numpy, pandas, "
             "statsmodels and matplotlib (pip install numpy pandas statsmodels matplotlib)")

from arima_data import FILL_POLICIES, InputError, build_series, read_table, show
from arima_outputs import write_metric_json, write_outputs
from arima_tracking import log_remote_metrics_or_warn, resolve_run_id

ORDER = re.compile(r"\s*(\d+)\s*,\s*(\d+)\s*,\s*(\d+)\s*", re.ASCII)

# Shown at the end of --help.
EPILOG = (
    "Row numbers in error messages count data rows from 1, so row N is on line N + 1 "
    "of the file (after the header) unless a quoted field spans several lines."
)


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
