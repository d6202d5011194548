"""Write the output files of a run, each one atomically.

The files are models/<model-name>.pkl, model.json, forecast.csv, forecast.png,
residuals.png and metric.json. Each is written under a temporary name and then
renamed, so a crash leaves at most a *.tmp file, never a truncated output.
"""

import csv
import importlib.metadata
import io
import json
import math
import os
import platform

from matplotlib.figure import Figure
from statsmodels.graphics.tsaplots import plot_acf


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


def write_metric_json(path, run_id, model_name, metrics, n_train, n_test):
    record = {"run_id": run_id, "model_name": model_name}
    record.update({name: finite_or_none(value) for name, value in metrics.items()})
    record.update({"n_train": n_train, "n_test": n_test})
    write_json(path, record)
