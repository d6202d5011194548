"""Tests for scripts/train.py and its modules, run in-process through main(argv).

scripts/ is not a package. The fixtures import its modules by name with scripts/
first on sys.path, as Python does when it runs scripts/train.py.
"""

import ast
import contextlib
import csv
import datetime
import importlib
import io
import json
import pickle
import subprocess
import sys
import types
from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = ROOT / "scripts"
SCRIPT = SCRIPTS / "train.py"
DATA_2013 = ROOT / "data" / "mlops_forecast_data2013.csv"

# ARIMA(2,0,2) on the 2013 file, 138 training and 16 test days, statsmodels 0.15
# and OpenBLAS 0.3.31. The last digits depend on the OpenBLAS kernel:
# 511.0755126931052 with SkylakeX, 511.07517077623913 with OPENBLAS_CORETYPE=Haswell.
EXPECTED_RMSE = 511.0755
RMSE_ATOL = 1e-3

PARAM_NAMES = ["const", "ar.L1", "ar.L2", "ma.L1", "ma.L2", "sigma2"]
METRIC_KEYS = ["run_id", "model_name", "RMSE", "R2", "MAE", "MAPE", "n_train", "n_test"]
OUTPUT_FILES = [
    "models/arima_model.pkl",
    "model.json",
    "forecast.csv",
    "forecast.png",
    "residuals.png",
    "metric.json",
]
TRACKING_VARIABLES = [
    "HARNESS_RUN_ID",
    "AZUREML_RUN_ID",
    "MLFLOW_RUN_ID",
    "MLFLOW_TRACKING_URI",
    "MLFLOW_EXPERIMENT_ID",
    "MLFLOW_EXPERIMENT_NAME",
]

# Packages that the modules of scripts/ may import at module level, besides the
# standard library and each other. The tracking SDKs are imported only inside
# the functions that log to them.
SCRIPT_PACKAGES = {"numpy", "pandas", "statsmodels", "matplotlib"}

HEADER = "TransactionDate,PaidAmount"
ROWS_2013 = [line.split(",") for line in DATA_2013.read_text().splitlines()[1:]]


def import_script_module(name):
    """Import a module of scripts/ by name, as train.py imports its siblings."""
    sys.path.insert(0, str(SCRIPTS))
    try:
        return importlib.import_module(name)
    finally:
        sys.path.remove(str(SCRIPTS))


@pytest.fixture(scope="session")
def train():
    return import_script_module("train")


@pytest.fixture(scope="session")
def arima_data():
    return import_script_module("arima_data")


@pytest.fixture(scope="session")
def arima_outputs():
    return import_script_module("arima_outputs")


@pytest.fixture(scope="session")
def arima_tracking():
    return import_script_module("arima_tracking")


@pytest.fixture(autouse=True)
def no_tracking_environment(monkeypatch):
    """Remove run ids and tracking URIs that the calling shell may have set."""
    for name in TRACKING_VARIABLES:
        monkeypatch.delenv(name, raising=False)


def make_csv(rows, header=HEADER, newline="\n"):
    """Return CSV text with the header and rows, each row a list of cells."""
    lines = [header, *(",".join(row) for row in rows)]
    return newline.join(lines) + newline


def without_rows(*numbers):
    """Return the 2013 rows without the given 1-based data rows."""
    return [row for i, row in enumerate(ROWS_2013, start=1) if i not in numbers]


def with_cell(number, column, text):
    """Return the 2013 rows with one cell of 1-based data row `number` replaced."""
    rows = [list(row) for row in ROWS_2013]
    rows[number - 1][column] = text
    return rows


def daily_rows(values, start="2013-01-01"):
    """Return rows of consecutive dates from start with the given values."""
    first = datetime.date.fromisoformat(start)
    return [
        [(first + datetime.timedelta(days=i)).isoformat(), repr(float(value))]
        for i, value in enumerate(values)
    ]


def synthetic_values(n):
    """Return n values of a weekly pattern plus a deterministic irregular part."""
    return [
        100.0 + 3.5 * (i % 7) + 10.0 * (i * 7 % 5) + (i * 37 % 11) for i in range(n)
    ]


def write_input(tmp_path, content, name="data.csv"):
    path = tmp_path / name
    if isinstance(content, str):
        path.write_text(content, encoding="utf-8", newline="")
    else:
        path.write_bytes(content)
    return path


def run_main(train, *args):
    """Run main in-process and return (exit code, stdout, stderr)."""
    stdout, stderr = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        code = train.main([str(arg) for arg in args])
    return code, stdout.getvalue(), stderr.getvalue()


def read_json(path):
    return json.loads(Path(path).read_text(encoding="utf-8"))


# Default run on the 2013 file.


@pytest.fixture(scope="module")
def default_run(train, tmp_path_factory):
    """Run the script with default options on the 2013 file, once per module."""
    output = tmp_path_factory.mktemp("default") / "out"
    with pytest.MonkeyPatch.context() as monkeypatch:
        for name in TRACKING_VARIABLES:
            monkeypatch.delenv(name, raising=False)
        code, stdout, stderr = run_main(
            train, "--input", DATA_2013, "--output", output
        )
    return types.SimpleNamespace(
        code=code, stdout=stdout, stderr=stderr, output=output
    )


def test_default_run_succeeds_silently(default_run):
    assert default_run.code == 0
    assert default_run.stderr == ""


def test_default_run_writes_every_output(default_run):
    for name in OUTPUT_FILES:
        assert (default_run.output / name).is_file(), name
    assert list(default_run.output.rglob("*.tmp")) == []


def test_default_run_rmse(default_run):
    metrics = read_json(default_run.output / "metric.json")
    assert abs(metrics["RMSE"] - EXPECTED_RMSE) < RMSE_ATOL, metrics["RMSE"]


def test_default_run_metric_json(default_run):
    metrics = read_json(default_run.output / "metric.json")
    assert list(metrics) == METRIC_KEYS
    assert metrics["run_id"] is None
    assert metrics["model_name"] == "arima_model"
    assert metrics["n_train"] == 138
    assert metrics["n_test"] == 16
    for name in ["R2", "MAE", "MAPE"]:
        assert isinstance(metrics[name], float), name


def test_default_run_model_json(default_run):
    model = read_json(default_run.output / "model.json")
    assert model["model_name"] == "arima_model"
    assert model["order"] == [2, 0, 2]
    assert list(model["params"]) == PARAM_NAMES
    assert model["nobs"] == 138
    assert model["train_start"] == "2013-07-31"
    assert model["train_end"] == "2013-12-15"
    packages = ["python", "numpy", "pandas", "scipy", "statsmodels"]
    assert list(model["versions"]) == packages
    for name in ["aic", "bic", "llf"]:
        assert isinstance(model[name], float), name


def test_default_run_forecast_csv(default_run):
    with open(default_run.output / "forecast.csv", newline="") as file:
        rows = list(csv.DictReader(file))

    assert len(rows) == 16
    assert list(rows[0]) == ["date", "actual", "forecast", "lower", "upper"]
    assert [row["date"] for row in rows] == [date for date, _ in ROWS_2013[-16:]]
    # The input file contains repr-formatted floats, so actual must match exactly.
    assert [row["actual"] for row in rows] == [value for _, value in ROWS_2013[-16:]]
    for row in rows:
        for name in ["actual", "forecast", "lower", "upper"]:
            assert repr(float(row[name])) == row[name], (row["date"], name)
        assert float(row["lower"]) < float(row["forecast"]) < float(row["upper"])


def test_default_run_pickle_loads(default_run):
    with open(default_run.output / "models" / "arima_model.pkl", "rb") as file:
        results = pickle.load(file)

    model = read_json(default_run.output / "model.json")
    assert results.params.to_dict() == model["params"]

    with open(default_run.output / "forecast.csv", newline="") as file:
        saved = [float(row["forecast"]) for row in csv.DictReader(file)]
    assert results.get_forecast(16).predicted_mean.tolist() == saved


def test_default_run_writes_png_files(default_run):
    for name in ["forecast.png", "residuals.png"]:
        assert (default_run.output / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_default_run_prints_summary(default_run):
    lines = default_run.stdout.splitlines()
    assert len(lines) == 4
    assert lines[0].startswith("read 154 days from ")
    assert "ARIMA(2,0,2) on 138 days to 2013-12-15" in lines[1]
    assert "tested on 16 days from 2013-12-16" in lines[1]
    assert lines[2].startswith("RMSE 511.07")
    assert lines[3] == f"wrote 6 files to {default_run.output}"


def test_second_run_gives_identical_files(train, default_run, tmp_path):
    output = tmp_path / "again"
    code, _, _ = run_main(train, "--input", DATA_2013, "--output", output)

    assert code == 0
    for name in ["model.json", "metric.json", "forecast.csv"]:
        first = (default_run.output / name).read_bytes()
        assert (output / name).read_bytes() == first, name


def test_model_json_round_trips_floats(train, default_run):
    with open(default_run.output / "models" / "arima_model.pkl", "rb") as file:
        results = pickle.load(file)

    model = read_json(default_run.output / "model.json")
    assert model["aic"] == float(results.aic)
    assert model["bic"] == float(results.bic)
    assert model["llf"] == float(results.llf)


# Files as spreadsheets and other tools export them.


def quote_every_field(text):
    quoted = []
    for line in text.splitlines():
        quoted.append(",".join(f'"{cell}"' for cell in line.split(",")))
    return "\n".join(quoted) + "\n"


def pad_with_whitespace(text):
    lines = text.splitlines()
    padded = [" TransactionDate , PaidAmount "]
    for line in lines[1:]:
        date, value = line.split(",")
        padded.append(f"  {date} ,\t{value}  ")
    return "\n".join(padded) + "\n"


def add_extra_columns(text):
    lines = text.splitlines()
    extended = [f"Store,{lines[0]},Note"]
    for i, line in enumerate(lines[1:]):
        extended.append(f'store {i % 3},{line},"note, with a comma"')
    return "\n".join(extended) + "\n"


def add_midnight_times(text):
    lines = text.splitlines()
    timed = [line.replace(",", "T00:00:00,", 1) for line in lines[1:]]
    return "\n".join([lines[0], *timed]) + "\n"


def combine_export_quirks(text):
    text = quote_every_field(pad_with_whitespace(text))
    return "\ufeff" + text.replace("\n", "\r\n") + "\r\n"


EXPORT_VARIANTS = {
    "utf8_bom": lambda text: "\ufeff" + text,
    "crlf": lambda text: text.replace("\n", "\r\n"),
    "quoted_fields": quote_every_field,
    "trailing_blank_lines": lambda text: text + "\n\n",
    "trailing_empty_rows": lambda text: text + ",\n,\n",
    "extra_columns": add_extra_columns,
    "whitespace_around_values": pad_with_whitespace,
    "midnight_datetimes": add_midnight_times,
    "midnight_utc_datetimes": lambda text: add_midnight_times(text).replace(
        "T00:00:00,", "T00:00:00Z,"),
    "all_at_once": combine_export_quirks,
}


@pytest.mark.parametrize("variant", EXPORT_VARIANTS, ids=str)
def test_export_variant_trains_like_original(train, default_run, tmp_path, variant):
    text = EXPORT_VARIANTS[variant](DATA_2013.read_text())
    path = write_input(tmp_path, text)
    output = tmp_path / "out"

    code, _, stderr = run_main(train, "--input", path, "--output", output)

    assert code == 0, stderr
    expected = read_json(default_run.output / "model.json")
    assert read_json(output / "model.json") == expected


# Rejected arguments and input data.


def assert_rejected(code, stdout, stderr, output):
    """Check the contract for bad input and return the single error line."""
    assert code == 2
    assert stdout == ""
    lines = stderr.splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith("error: ")
    assert "Traceback" not in stderr
    assert not output.exists() or list(output.iterdir()) == []
    return lines[0]


ZIP_HEADER = b"PK\x03\x04\x14\x00\x06\x00\x08\x00\x00\x00!\x00"
PNG_HEADER = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x01\x00"
RAGGED = make_csv([["2013-07-31", "1.0"], ["2013-08-01", "2.0", "3.0"]])
SEMICOLONS = "TransactionDate;PaidAmount\n2013-07-31;1346.01\n2013-08-01;175.2\n"

# (content of the input file, extra arguments, fragments of the error line)
REJECTED_INPUTS = {
    "empty_file": (b"", [], ["is empty"]),
    "blank_lines_only": ("\n \n\n", [], ["contains only blank lines"]),
    "header_only": (HEADER + "\n", [], ["has a header but no data rows"]),
    "empty_rows_only": (HEADER + "\n,\n\n", [], ["has a header but no data rows"]),
    "nul_bytes": (bytes(range(256)) * 4, [], ["is binary", "NUL byte at offset 0"]),
    "png_file": (PNG_HEADER, [], ["is binary", "NUL byte at offset 8"]),
    "png_signature_only": (
        PNG_HEADER[:8],
        [],
        ["not UTF-8", "byte 0x89 on line 1, offset 0"],
    ),
    "zip_or_xlsx": (
        ZIP_HEADER,
        [],
        ["ZIP archive", ".xlsx", "export the sheet as CSV"],
    ),
    "utf16_text": (make_csv(ROWS_2013).encode("utf-16"), [], ["UTF-16", "UTF-8"]),
    "latin1_text": (
        "TransactionDate,PaidAmount,Note\n2013-07-31,1.0,caf\u00e9\n".encode("latin-1"),
        [],
        ["not UTF-8", "byte 0xe9 on line 2, offset 50"],
    ),
    "ragged_rows": (
        RAGGED,
        [],
        ["not valid CSV", "line 3 has 3 fields", "header has 2"],
    ),
    "prose_text": (
        "This is a note, not a table.\nIt has two lines.\n",
        [],
        ["'TransactionDate' and 'PaidAmount' not found", "--date-column NAME"],
    ),
    "semicolon_delimiter": (SEMICOLONS, [], ["',' as the delimiter", "not ';'"]),
    "missing_date_column": (
        make_csv(ROWS_2013, header="Date,PaidAmount"),
        [],
        ["'TransactionDate' not found", "'Date', 'PaidAmount'", "--date-column NAME"],
    ),
    "missing_value_column": (
        make_csv(ROWS_2013, header="TransactionDate,Amount"),
        [],
        [
            "'PaidAmount' not found",
            "'TransactionDate', 'Amount'",
            "--value-column NAME",
        ],
    ),
    "same_column_twice": (
        make_csv(ROWS_2013),
        ["--value-column", "TransactionDate"],
        ["both name 'TransactionDate'"],
    ),
    "non_numeric_value": (
        make_csv(with_cell(5, 1, "abc")),
        [],
        ["row 5 (2013-08-04): PaidAmount 'abc' is not a number"],
    ),
    "thousands_separator": (
        make_csv(with_cell(5, 1, '"1,346.01"')),
        [],
        ["row 5 (2013-08-04)", "'1,346.01' is not a number", "no thousands separators"],
    ),
    "empty_value": (
        make_csv(with_cell(3, 1, "")),
        [],
        ["row 3 (2013-08-02): PaidAmount is missing ('')", "--fill interpolate"],
    ),
    "nan_value": (
        make_csv(with_cell(3, 1, "NaN")),
        [],
        ["row 3 (2013-08-02): PaidAmount is missing ('NaN')"],
    ),
    "short_row": (
        make_csv([*ROWS_2013[:2], [ROWS_2013[2][0]], *ROWS_2013[3:]]),
        [],
        ["row 3 (2013-08-02): PaidAmount is missing"],
    ),
    "infinite_value": (
        make_csv(with_cell(7, 1, "inf")),
        [],
        ["row 7 (2013-08-06): PaidAmount 'inf' is not finite"],
    ),
    "negative_infinite_value": (
        make_csv(with_cell(7, 1, "-inf")),
        [],
        ["row 7 (2013-08-06): PaidAmount '-inf' is not finite"],
    ),
    "overflowing_value": (
        make_csv(with_cell(7, 1, "1e999")),
        [],
        ["row 7 (2013-08-06): PaidAmount '1e999' is too large"],
    ),
    "unparseable_date": (
        make_csv(with_cell(4, 0, "yesterday")),
        [],
        ["row 4: TransactionDate 'yesterday' is not in the format YYYY-MM-DD"],
    ),
    "impossible_date": (
        make_csv(with_cell(4, 0, "2013-02-30")),
        [],
        ["row 4: TransactionDate '2013-02-30' is not a calendar date"],
    ),
    "mixed_date_formats": (
        make_csv(with_cell(5, 0, "08/04/2013")),
        [],
        ["row 5: TransactionDate '08/04/2013' is not in the format", "mixes formats"],
    ),
    "non_iso_first_date": (
        make_csv(with_cell(1, 0, "07/31/2013")),
        [],
        ["row 1: TransactionDate '07/31/2013' is not in the format YYYY-MM-DD"],
    ),
    "time_of_day": (
        make_csv(with_cell(5, 0, "2013-08-04 13:30")),
        [],
        ["row 5: TransactionDate '2013-08-04 13:30' has a time of day"],
    ),
    "empty_date": (
        make_csv(with_cell(5, 0, "")),
        [],
        ["row 5: TransactionDate is empty"],
    ),
    "duplicate_date": (
        make_csv(with_cell(4, 0, "2013-08-02")),
        [],
        ["date 2013-08-02 appears twice, in rows 3 and 4"],
    ),
    "unordered_dates": (
        make_csv([*ROWS_2013[:3], ROWS_2013[4], ROWS_2013[3], *ROWS_2013[5:]]),
        [],
        ["row 5 (2013-08-03) comes after row 4 (2013-08-04)", "sort the rows by date"],
    ),
    "missing_day": (
        make_csv(without_rows(4)),
        [],
        ["no row for 2013-08-03 (between rows 3 and 4)", "--fill interpolate"],
    ),
    "missing_days": (
        make_csv(without_rows(4, 5, 6)),
        [],
        ["no rows for 2013-08-03 to 2013-08-05 (3 days, between rows 3 and 4)"],
    ),
    "too_short": (
        make_csv(ROWS_2013[:13]),
        [],
        ["has 13 days", "ARIMA(2,0,2)", "at least 14 (12 to train and 2 to test)"],
    ),
    "too_short_for_order": (
        make_csv(ROWS_2013[:20]),
        ["--order", "5,1,5"],
        ["has 20 days", "ARIMA(5,1,5)", "at least 30 (27 to train and 3 to test)"],
    ),
    "too_short_for_fraction": (
        make_csv(ROWS_2013[:20]),
        ["--test-fraction", "0.5"],
        ["has 20 days", "--test-fraction 0.5 needs at least 24 (12 to train and 12"],
    ),
}


@pytest.mark.parametrize("case", REJECTED_INPUTS, ids=str)
def test_rejected_input(train, tmp_path, case):
    content, extra_args, fragments = REJECTED_INPUTS[case]
    path = write_input(tmp_path, content)
    output = tmp_path / "out"

    result = run_main(train, "--input", path, "--output", output, *extra_args)

    line = assert_rejected(*result, output)
    for fragment in fragments:
        assert fragment in line


# (extra arguments, fragments of the error line)
REJECTED_ARGUMENTS = {
    "order_two_numbers": (["--order", "2,0"], ["--order must be three", "got '2,0'"]),
    "order_four_numbers": (["--order", "2,0,2,1"], ["--order must be three"]),
    "order_negative": (["--order", "2,-1,2"], ["non-negative integers"]),
    "order_words": (["--order", "p,d,q"], ["--order must be three"]),
    "order_float": (["--order", "2,0.5,2"], ["--order must be three"]),
    "fraction_zero": (["--test-fraction", "0"], ["--test-fraction", "got '0'"]),
    "fraction_one": (["--test-fraction", "1"], ["between 0 and 1"]),
    "fraction_above_one": (["--test-fraction", "1.5"], ["between 0 and 1"]),
    "fraction_negative": (["--test-fraction", "-0.1"], ["between 0 and 1"]),
    "fraction_nan": (["--test-fraction", "nan"], ["between 0 and 1"]),
    "fraction_word": (["--test-fraction", "tenth"], ["got 'tenth'"]),
    "unknown_fill": (["--fill", "linear"], ["invalid choice: 'linear'", "--help"]),
    "unknown_option": (["--seed", "1"], ["unrecognized arguments: --seed 1"]),
    "model_name_path": (["--model-name", "../model"], ["--model-name '../model'"]),
    "model_name_hidden": (["--model-name", ".model"], ["not a plain file name"]),
}


@pytest.mark.parametrize("case", REJECTED_ARGUMENTS, ids=str)
def test_rejected_argument(train, tmp_path, case):
    extra_args, fragments = REJECTED_ARGUMENTS[case]
    output = tmp_path / "out"

    result = run_main(train, "--input", DATA_2013, "--output", output, *extra_args)

    line = assert_rejected(*result, output)
    for fragment in fragments:
        assert fragment in line


def test_missing_file_rejected(train, tmp_path):
    output = tmp_path / "out"
    result = run_main(train, "--input", tmp_path / "nope.csv", "--output", output)

    line = assert_rejected(*result, output)
    assert "nope.csv not found" in line


def test_folder_as_input_rejected(train, tmp_path):
    output = tmp_path / "out"
    result = run_main(train, "--input", tmp_path, "--output", output)

    line = assert_rejected(*result, output)
    assert "is a folder" in line


def test_missing_input_option_rejected(train, tmp_path):
    output = tmp_path / "out"
    result = run_main(train, "--output", output)

    line = assert_rejected(*result, output)
    assert "required: --input" in line


def test_file_as_output_rejected(train, tmp_path):
    output = tmp_path / "out"
    output.write_text("not a folder")
    code, stdout, stderr = run_main(train, "--input", DATA_2013, "--output", output)

    assert code == 2
    assert stderr == f"error: --output {output} is a file; pass a folder path\n"
    assert output.read_text() == "not a folder"


def test_rejection_keeps_output_folder_empty(train, tmp_path):
    output = tmp_path / "out"
    output.mkdir()
    path = write_input(tmp_path, make_csv(without_rows(4)))

    result = run_main(train, "--input", path, "--output", output)

    assert_rejected(*result, output)


def test_multiline_cell_gives_one_error_line(train, tmp_path):
    path = write_input(tmp_path, make_csv(with_cell(5, 1, '"12\n34"')))
    output = tmp_path / "out"

    result = run_main(train, "--input", path, "--output", output)

    line = assert_rejected(*result, output)
    assert "'12\\n34' is not a number" in line


def test_help_returns_zero(train, capsys):
    assert train.main(["--help"]) == 0
    assert "--fill" in capsys.readouterr().out


# Split and minimum length.


@pytest.mark.parametrize(
    ("n_rows", "fraction", "n_test"),
    [(154, 0.1, 16), (10, 0.3, 3), (10, 0.9, 9), (10, 0.1, 1), (5, 0.01, 1)],
)
def test_count_test_rows(train, n_rows, fraction, n_test):
    assert train.count_test_rows(n_rows, fraction) == n_test


@pytest.mark.parametrize(
    ("order", "minimum"),
    [((2, 0, 2), 12), ((0, 0, 0), 2), ((0, 1, 0), 2), ((1, 1, 1), 7), ((5, 1, 5), 27)],
)
def test_count_min_train_rows(train, order, minimum):
    assert train.count_min_train_rows(order) == minimum


@pytest.mark.parametrize("order", [(2, 0, 2), (1, 1, 1), (0, 0, 0), (7, 2, 0)])
@pytest.mark.parametrize("fraction", [0.1, 0.3, 0.5, 0.9])
def test_check_length_names_true_minimum(train, order, fraction):
    with pytest.raises(train.InputError) as info:
        train.check_length(1, order, fraction, "data.csv")

    needed = int(info.value.args[0].split("needs at least ")[1].split(" ")[0])
    train.check_length(needed, order, fraction, "data.csv")
    with pytest.raises(train.InputError):
        train.check_length(needed - 1, order, fraction, "data.csv")


# statsmodels warns that its starting parameters are non-stationary at this length.
@pytest.mark.filterwarnings("ignore:Non-stationary starting autoregressive")
@pytest.mark.filterwarnings("ignore:Non-invertible starting MA")
def test_minimum_length_trains(train, tmp_path):
    path = write_input(tmp_path, make_csv(ROWS_2013[:14]))
    output = tmp_path / "out"

    code, _, stderr = run_main(train, "--input", path, "--output", output)

    assert code == 0, stderr
    metrics = read_json(output / "metric.json")
    assert (metrics["n_train"], metrics["n_test"]) == (12, 2)


# Filling missing days.


@pytest.mark.parametrize(
    ("fill", "expected"),
    [
        ("interpolate", [1.0, 2.0, 3.0, 4.0, 5.0]),
        ("ffill", [1.0, 2.0, 2.0, 2.0, 5.0]),
        ("zero", [1.0, 2.0, 0.0, 0.0, 5.0]),
    ],
)
def test_build_series_fills_missing_days(arima_data, fill, expected):
    rows = [["2013-01-01", "1"], ["2013-01-02", "2"], ["2013-01-05", "5"]]
    table = pd.DataFrame(rows, columns=["TransactionDate", "PaidAmount"])

    series, filled = arima_data.build_series(
        table, "TransactionDate", "PaidAmount", fill
    )

    assert series.tolist() == expected
    assert filled == 2
    assert series.index.freqstr == "D"
    assert str(series.index[2].date()) == "2013-01-03"


def test_fill_interpolate_trains_on_every_day(train, tmp_path):
    path = write_input(tmp_path, make_csv(without_rows(4, 80)))
    output = tmp_path / "out"

    code, stdout, stderr = run_main(
        train, "--input", path, "--output", output, "--fill", "interpolate"
    )

    assert code == 0, stderr
    metrics = read_json(output / "metric.json")
    assert (metrics["n_train"], metrics["n_test"]) == (138, 16)
    assert "2 missing days filled by interpolate" in stdout.splitlines()[0]


# Metrics and JSON.


def test_compute_metrics_known_values(train):
    metrics = train.compute_metrics([1.0, 2.0, 4.0], [2.0, 2.0, 2.0])

    assert metrics["RMSE"] == pytest.approx((5 / 3) ** 0.5, rel=1e-15)
    assert metrics["MAE"] == pytest.approx(1.0, rel=1e-15)
    assert metrics["MAPE"] == pytest.approx(100 * (1.0 + 0.0 + 0.5) / 3, rel=1e-15)
    # Sum of squares about the mean 7/3 is 14/3, and the errors square to 5.
    assert metrics["R2"] == pytest.approx(1 - 5 / (14 / 3), rel=1e-15)


def test_compute_metrics_undefined_values(train):
    metrics = train.compute_metrics([0.0, 0.0], [1.0, -1.0])

    assert metrics["RMSE"] == 1.0
    assert metrics["R2"] != metrics["R2"]
    assert metrics["MAPE"] != metrics["MAPE"]


def test_metric_json_writes_null_for_undefined(train, arima_outputs, tmp_path):
    metrics = train.compute_metrics([0.0, 0.0], [1.0, -1.0])
    path = tmp_path / "metric.json"

    arima_outputs.write_metric_json(path, None, "m", metrics, 10, 2)

    saved = read_json(path)
    assert saved["R2"] is None
    assert saved["MAPE"] is None
    assert saved["RMSE"] == 1.0


def test_forecast_csv_leaves_non_finite_cells_empty(arima_outputs, tmp_path):
    forecast = pd.DataFrame(
        {
            "actual": [1.0],
            "forecast": [0.1],
            "lower": [float("-inf")],
            "upper": [float("nan")],
        },
        index=pd.DatetimeIndex(["2013-01-01"]),
    )
    path = tmp_path / "forecast.csv"

    arima_outputs.write_forecast_csv(path, forecast)

    assert path.read_text().splitlines()[1] == "2013-01-01,1.0,0.1,,"


# Partial failure.


def test_crash_leaves_no_metric_json(train, arima_outputs, tmp_path, monkeypatch):
    output = tmp_path / "out"
    output.mkdir()
    (output / "metric.json").write_text('{"RMSE": 1.0}')

    def fail(*args):
        raise RuntimeError("disk full")

    monkeypatch.setattr(arima_outputs, "plot_residuals", fail)
    with pytest.raises(RuntimeError, match="disk full"):
        run_main(train, "--input", DATA_2013, "--output", output)

    assert (output / "model.json").exists()
    assert not (output / "metric.json").exists()


# Run id and remote logging.


@pytest.mark.parametrize(
    ("environment", "run_id"),
    [
        ({}, None),
        ({"MLFLOW_RUN_ID": "mlflow-1"}, "mlflow-1"),
        ({"AZUREML_RUN_ID": "aml-1", "MLFLOW_RUN_ID": "mlflow-1"}, "aml-1"),
        ({"HARNESS_RUN_ID": "h-1", "AZUREML_RUN_ID": "aml-1"}, "h-1"),
        ({"HARNESS_RUN_ID": "", "AZUREML_RUN_ID": "aml-1"}, "aml-1"),
    ],
)
def test_resolve_run_id(arima_tracking, monkeypatch, environment, run_id):
    for name, value in environment.items():
        monkeypatch.setenv(name, value)

    assert arima_tracking.resolve_run_id() == run_id


@pytest.fixture
def small_input(tmp_path):
    """A 60-day synthetic series that fits quickly with --order 1,0,0."""
    return write_input(tmp_path, make_csv(daily_rows(synthetic_values(60))))


def run_small(train, path, output, *extra_args):
    return run_main(
        train, "--input", path, "--output", output, "--order", "1,0,0", *extra_args
    )


def test_harness_run_id_in_metric_json(train, small_input, tmp_path, monkeypatch):
    monkeypatch.setenv("HARNESS_RUN_ID", "local-0412")
    output = tmp_path / "out"

    code, stdout, stderr = run_small(train, small_input, output)

    assert code == 0, stderr
    assert read_json(output / "metric.json")["run_id"] == "local-0412"
    assert "logged metrics" not in stdout


class FakeAzureRun:
    """Stands in for azureml.core.Run and records what was logged."""

    def __init__(self, fail=False, run_id="aml-run-7"):
        self.id = run_id
        self.logged = {}
        self.fail = fail

    def log(self, name, value):
        if self.fail:
            raise ConnectionError("workspace unreachable")
        self.logged[name] = value


def install_fake_azureml(monkeypatch, run):
    package = types.ModuleType("azureml")
    core = types.ModuleType("azureml.core")
    core.Run = types.SimpleNamespace(get_context=lambda: run)
    package.core = core
    monkeypatch.setitem(sys.modules, "azureml", package)
    monkeypatch.setitem(sys.modules, "azureml.core", core)


def test_azureml_v1_run_gets_metrics(train, small_input, tmp_path, monkeypatch):
    run = FakeAzureRun()
    install_fake_azureml(monkeypatch, run)
    monkeypatch.setenv("AZUREML_RUN_ID", run.id)
    output = tmp_path / "out"

    code, stdout, stderr = run_small(train, small_input, output)

    assert code == 0, stderr
    metrics = read_json(output / "metric.json")
    assert metrics["run_id"] == run.id
    assert run.logged == {name: metrics[name] for name in ["RMSE", "R2", "MAE", "MAPE"]}
    assert f"logged metrics to Azure ML run {run.id}" in stdout


def test_azureml_offline_run_gets_nothing(train, small_input, tmp_path, monkeypatch):
    run = FakeAzureRun(run_id="OfflineRun_1234")
    install_fake_azureml(monkeypatch, run)
    monkeypatch.setenv("AZUREML_RUN_ID", "aml-run-7")
    output = tmp_path / "out"

    code, stdout, stderr = run_small(train, small_input, output)

    assert code == 0, stderr
    assert run.logged == {}
    assert "logged metrics" not in stdout


def test_real_azureml_sdk_outside_run(train, small_input, tmp_path, monkeypatch):
    pytest.importorskip("azureml.core")
    monkeypatch.setenv("AZUREML_RUN_ID", "aml-run-7")
    output = tmp_path / "out"

    code, stdout, stderr = run_small(train, small_input, output)

    assert code == 0, stderr
    assert "Attempted to log" not in stdout
    assert "logged metrics" not in stdout


def test_logging_failure_keeps_outputs(train, small_input, tmp_path, monkeypatch):
    install_fake_azureml(monkeypatch, FakeAzureRun(fail=True))
    monkeypatch.setenv("AZUREML_RUN_ID", "aml-run-7")
    output = tmp_path / "out"

    code, _, stderr = run_small(train, small_input, output)

    assert code == 0
    warnings = [line for line in stderr.splitlines() if line.startswith("warning: ")]
    assert len(warnings) == 1
    assert "ConnectionError: workspace unreachable" in warnings[0]
    for name in OUTPUT_FILES:
        assert (output / name).is_file(), name


def test_azureml_id_without_sdk_stays_local(
    train, small_input, tmp_path, monkeypatch
):
    monkeypatch.setitem(sys.modules, "azureml", None)  # import azureml raises
    monkeypatch.setenv("AZUREML_RUN_ID", "aml-run-7")
    output = tmp_path / "out"

    code, stdout, stderr = run_small(train, small_input, output)

    assert code == 0, stderr
    assert "logged metrics" not in stdout
    assert read_json(output / "metric.json")["run_id"] == "aml-run-7"


@pytest.fixture
def file_tracking_uri(tmp_path, monkeypatch):
    """Point MLflow at a file store under tmp_path and return its URI."""
    pytest.importorskip("mlflow")
    # MLflow 3.18 rejects file stores unless this is set, but they still work.
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    tracking_uri = (tmp_path / "mlruns").as_uri()
    monkeypatch.setenv("MLFLOW_TRACKING_URI", tracking_uri)
    return tracking_uri


def read_mlflow_runs(tracking_uri):
    mlflow = pytest.importorskip("mlflow")
    client = mlflow.tracking.MlflowClient(tracking_uri=tracking_uri)
    experiments = client.search_experiments()
    return client.search_runs([experiment.experiment_id for experiment in experiments])


def test_mlflow_tracking_gets_metrics(train, small_input, tmp_path, file_tracking_uri):
    output = tmp_path / "out"

    code, stdout, stderr = run_small(train, small_input, output)

    assert code == 0, stderr
    runs = read_mlflow_runs(file_tracking_uri)
    assert len(runs) == 1
    metrics = read_json(output / "metric.json")
    for name in ["RMSE", "R2", "MAE", "MAPE"]:
        assert runs[0].data.metrics[name] == metrics[name], name
    assert runs[0].data.params["order"] == "1,0,0"
    assert runs[0].data.params["n_test"] == "6"
    assert runs[0].info.status == "FINISHED"
    assert f"logged metrics to MLflow run {runs[0].info.run_id}" in stdout


def test_mlflow_run_id_attaches_to_job_run(
    train, small_input, tmp_path, monkeypatch, file_tracking_uri
):
    import mlflow

    client = mlflow.tracking.MlflowClient(tracking_uri=file_tracking_uri)
    job_run = client.create_run(client.create_experiment("job"))
    monkeypatch.setenv("MLFLOW_RUN_ID", job_run.info.run_id)
    output = tmp_path / "out"

    code, _, stderr = run_small(train, small_input, output)

    assert code == 0, stderr
    assert read_json(output / "metric.json")["run_id"] == job_run.info.run_id
    runs = read_mlflow_runs(file_tracking_uri)
    assert [run.info.run_id for run in runs] == [job_run.info.run_id]
    assert "RMSE" in runs[0].data.metrics


# The script as a program.


def test_script_rejects_input_as_program(tmp_path):
    path = write_input(tmp_path, make_csv(without_rows(4)))
    output = tmp_path / "out"

    completed = subprocess.run(
        [sys.executable, SCRIPT, "--input", path, "--output", output],
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin"},
        timeout=120,
    )

    assert completed.returncode == 2
    assert completed.stderr.startswith("error: no row for 2013-08-03")
    assert completed.stderr.count("\n") == 1
    assert not output.exists()


def test_script_modules_import_allowed_packages():
    siblings = {path.stem for path in SCRIPTS.glob("*.py")}
    allowed = SCRIPT_PACKAGES | siblings | set(sys.stdlib_module_names)
    for path in sorted(SCRIPTS.glob("*.py")):
        for node in ast.parse(path.read_text(encoding="utf-8")).body:
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                assert node.level == 0, (path.name, node.lineno, "relative import")
                names = [node.module]
            else:
                continue
            for name in names:
                assert name.split(".")[0] in allowed, (path.name, node.lineno, name)


def test_local_run_imports_no_tracking_sdk(small_input, tmp_path):
    output = tmp_path / "out"
    program = (
        "import runpy, sys\n"
        # runpy.run_path does not put the script's folder on sys.path, so the
        # program adds it, as docker/entry.py does before it runs the script.
        f"sys.path.insert(0, {str(SCRIPTS)!r})\n"
        f"sys.argv = ['train.py', '--input', {str(small_input)!r}, "
        f"'--output', {str(output)!r}, '--order', '1,0,0']\n"
        "try:\n"
        f"    runpy.run_path({str(SCRIPT)!r}, run_name='__main__')\n"
        "except SystemExit as exit:\n"
        "    sdks = ('mlflow', 'azureml')\n"
        "    loaded = [m for m in sys.modules if m.split('.')[0] in sdks]\n"
        "    print(exit.code, loaded)\n"
    )

    completed = subprocess.run(
        [sys.executable, "-c", program],
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin", "MPLBACKEND": "TkAgg"},
        timeout=120,
    )

    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.splitlines()[-1] == "0 []"
    assert (output / "metric.json").is_file()
