"""Tests for harness.parity on synthetic run folders built in tmp_path."""

import copy
import hashlib
import json
import math
import os
import pickle
from datetime import date, timedelta

import pytest

from harness.errors import ParityInputError
from harness.parity import compare_runs, ulp_distance, write_report

PARAMS = {
    "const": 312.4518237741092,
    "ar.L1": 0.4312873391283764,
    "ar.L2": -0.1278341123467819,
    "ma.L1": -0.22345609331210034,
    "ma.L2": 0.08712345698120011,
    "sigma2": 41235.71239811032,
}

MANIFEST = {
    "schema": 1,
    "run_id": None,
    "target": "local",
    "started": "2026-12-04T15:30:12.123Z",
    "ended": "2026-12-04T15:30:19.456Z",
    "image": {
        "id": "sha256:" + "1" * 64,
        "fingerprint": "3f2a9c1e7b44",
        "digest": None,
        "base": {"reference": "python:3.11-slim", "digest": "sha256:" + "2" * 64},
    },
    "inputs": {
        "spec": {"path": "envs/arima-env.yml", "sha256": "a" * 64},
        "lock": {"path": "envs/arima-env.lock", "sha256": "b" * 64},
        "script": {"path": "scripts", "entry": "train.py", "sha256": "c" * 64},
        "data": {
            "path": "data/mlops_forecast_data2013.csv",
            "sha256": "d" * 64,
            "size": 4569,
        },
        "arguments": ["--order", "2,0,2"],
    },
    "determinism": {
        "enabled": True,
        "env": {"OPENBLAS_CORETYPE": "Haswell", "OMP_NUM_THREADS": "1"},
    },
    "container": {
        "cpu_model": "Intel(R) Xeon(R) Platinum 8272CL CPU @ 2.60GHz",
        "blas": [
            {
                "internal_api": "openblas",
                "version": "0.3.30",
                "architecture": "Haswell",
                "num_threads": 1,
                "filepath": "/opt/venv/lib/python3.11/site-packages/numpy.libs/"
                "libscipy_openblas64_.so",
            }
        ],
        "numpy": {
            "version": "2.4.6",
            "cpu_features": ["SSE", "SSE2", "AVX", "FMA3", "AVX2"],
        },
        "python": "3.11.2",
    },
    "packages": {"numpy": "2.4.6", "statsmodels": "0.15.0", "pandas": "2.3.3"},
    "outputs": {},
}


def forecast_rows():
    """Return 16 held-out days of (date, actual, forecast, lower, upper)."""
    rows = []
    start = date(2013, 12, 16)
    for day in range(16):
        actual = 200.0 + 50.0 * math.sin(day / 2.3) + day * 1.137
        forecast = 208.31 + 12.5 * math.cos(day / 3.1) + day * 0.731
        half_width = 1.959963984540054 * math.sqrt(PARAMS["sigma2"]) * (1 + day / 40)
        rows.append(
            [
                (start + timedelta(days=day)).isoformat(),
                actual,
                forecast,
                forecast - half_width,
                forecast + half_width,
            ]
        )
    return rows


def write_forecast(path, rows):
    lines = ["date,actual,forecast,lower,upper"]
    lines += [",".join([row[0]] + [repr(value) for value in row[1:]]) for row in rows]
    path.write_text("\n".join(lines) + "\n")


def write_json(path, document):
    path.write_text(json.dumps(document, indent=2))


def refresh_manifest(run):
    """Record the current sha256 and size of every output file, as the harness does."""
    manifest = json.loads((run / "manifest.json").read_text())
    outputs = run / "outputs"
    manifest["outputs"] = {
        path.relative_to(outputs).as_posix(): {
            "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
            "size": path.stat().st_size,
        }
        for path in sorted(outputs.rglob("*"))
        if path.is_file()
    }
    write_json(run / "manifest.json", manifest)


def make_run(root, name, target="local"):
    """Write a run folder with the ARIMA script's outputs and a matching manifest."""
    run = root / name
    outputs = run / "outputs"
    (outputs / "models").mkdir(parents=True)
    run_id = f"20261204-153012-{name}"
    write_json(
        outputs / "metric.json",
        {
            "run_id": run_id,
            "model_name": "arima_model",
            "RMSE": 41.23587711239044,
            "R2": 0.3127761209553121,
            "MAE": 33.01987123409871,
            "MAPE": 0.17123409871234512,
            "n_train": 138,
            "n_test": 16,
        },
    )
    write_json(
        outputs / "model.json",
        {
            "model_name": "arima_model",
            "order": [2, 0, 2],
            "params": dict(PARAMS),
            "aic": 1851.2398123409871,
            "bic": 1868.8012309874123,
            "llf": -919.6199061704935,
            "nobs": 138,
            "train_start": "2013-07-31",
            "train_end": "2013-12-15",
            "versions": {"statsmodels": "0.15.0", "numpy": "2.4.6"},
        },
    )
    write_forecast(outputs / "forecast.csv", forecast_rows())
    (outputs / "forecast.png").write_bytes(b"\x89PNG\r\n\x1a\n forecast plot")
    (outputs / "residuals.png").write_bytes(b"\x89PNG\r\n\x1a\n residuals plot")
    (outputs / "models" / "arima_model.pkl").write_bytes(
        pickle.dumps({"params": PARAMS})
    )

    manifest = copy.deepcopy(MANIFEST)
    manifest["run_id"] = run_id
    manifest["target"] = target
    write_json(run / "manifest.json", manifest)
    refresh_manifest(run)
    return run


def edit_json(run, relative, change, refresh=True):
    """Apply ``change`` to a parsed file. With refresh=False the manifest is stale."""
    path = run / relative
    document = json.loads(path.read_text())
    change(document)
    write_json(path, document)
    if refresh:
        refresh_manifest(run)


def set_param(name, value):
    def change(model):
        model["params"][name] = value

    return change


@pytest.fixture
def runs(tmp_path):
    return make_run(tmp_path, "local", "local"), make_run(
        tmp_path, "emulated", "emulated"
    )


def differences_named(result, name):
    return [item for item in result.numbers if item.name == name]


# --- ULP distance ------------------------------------------------------------


def test_ulp_adjacent_floats():
    assert ulp_distance(1.0, math.nextafter(1.0, 2.0)) == 1


def test_ulp_adjacent_floats_below_one():
    assert ulp_distance(1.0, math.nextafter(1.0, 0.0)) == 1


def test_ulp_signed_zeros():
    assert ulp_distance(0.0, -0.0) == 0


def test_ulp_sign_crossing():
    smallest = math.nextafter(0.0, 1.0)
    assert ulp_distance(smallest, -smallest) == 2


def test_ulp_negative_zero_to_smallest():
    assert ulp_distance(-0.0, math.nextafter(0.0, 1.0)) == 1


def test_ulp_is_symmetric():
    assert ulp_distance(-1.5, 2.25) == ulp_distance(2.25, -1.5)


def test_ulp_nan_equals_nan():
    assert ulp_distance(math.nan, -math.nan) == 0


def test_ulp_nan_against_number():
    assert ulp_distance(math.nan, 1.0) is None


def test_ulp_largest_float_to_infinity():
    largest = math.nextafter(math.inf, 0.0)
    assert ulp_distance(largest, math.inf) == 1


# --- Verdict and tolerances --------------------------------------------------


def test_identical_runs_hold(runs):
    result = compare_runs(*runs)
    assert result.exit_code == 0
    assert result.verdict.startswith("parity holds")
    assert result.numbers_compared > 0
    assert result.numbers == []


def test_identical_runs_ignore_run_id(runs):
    result = compare_runs(*runs)
    [metric] = [summary for summary in result.files if summary.file == "metric.json"]
    assert result.values == []
    assert metric.ignored == 1


def test_one_ulp_coefficient_fails(runs):
    local, emulated = runs
    edit_json(
        emulated,
        "outputs/model.json",
        set_param("ar.L1", math.nextafter(PARAMS["ar.L1"], 1.0)),
    )
    result = compare_runs(local, emulated)
    assert result.exit_code == 1
    [difference] = differences_named(result, "model.json:params.ar.L1")
    assert difference.ulp == 1
    assert result.numbers_differing == 1
    assert result.verdict.startswith("parity fails: 1 of ")


def test_one_ulp_message(runs):
    local, emulated = runs
    changed = math.nextafter(PARAMS["ar.L1"], 1.0)
    edit_json(emulated, "outputs/model.json", set_param("ar.L1", changed))
    [difference] = compare_runs(local, emulated).numbers
    assert difference.message == (
        f"model.json:params.ar.L1: local {PARAMS['ar.L1']!r}, emulated {changed!r}, "
        "ULP 1 > max_ulp 0"
    )


def test_max_ulp_one_accepts_one_ulp(runs):
    local, emulated = runs
    edit_json(
        emulated,
        "outputs/model.json",
        set_param("ar.L1", math.nextafter(PARAMS["ar.L1"], 1.0)),
    )
    result = compare_runs(local, emulated, max_ulp=1)
    assert result.exit_code == 0
    assert result.numbers_within_tolerance == 1
    assert "within tolerance" in result.verdict


def test_atol_loosening(runs):
    local, emulated = runs
    edit_json(
        emulated, "outputs/model.json", set_param("ar.L1", PARAMS["ar.L1"] + 0.0086)
    )
    assert compare_runs(local, emulated, atol=0.001).exit_code == 1
    assert compare_runs(local, emulated, atol=0.01).exit_code == 0


def test_atol_message_names_the_limit(runs):
    local, emulated = runs
    edit_json(emulated, "outputs/model.json", set_param("ar.L1", 0.4398))
    [difference] = compare_runs(local, emulated, atol=0.001).numbers
    assert difference.message.startswith(
        f"model.json:params.ar.L1: local {PARAMS['ar.L1']!r}, emulated 0.4398, |diff| "
    )
    assert difference.message.endswith(" > atol 0.001")


def test_rtol_loosening(runs):
    local, emulated = runs
    edit_json(
        emulated,
        "outputs/model.json",
        set_param("sigma2", PARAMS["sigma2"] * (1 + 1e-9)),
    )
    assert compare_runs(local, emulated, rtol=1e-10).exit_code == 1
    assert compare_runs(local, emulated, rtol=1e-8).exit_code == 0


def test_infinity_never_within_rtol(runs):
    local, emulated = runs
    edit_json(emulated, "outputs/model.json", set_param("sigma2", math.inf))
    result = compare_runs(local, emulated, rtol=1.0, atol=1e300, max_ulp=10**6)
    assert result.exit_code == 1


@pytest.mark.parametrize(
    "options",
    [
        {"rtol": -1e-9},
        {"atol": -1.0},
        {"atol": math.nan},
        {"rtol": math.inf},
        {"max_ulp": -1},
        {"max_ulp": 1.5},
        {"rtol": "0.1"},
        {"ignore": "*MAPE*"},
    ],
)
def test_invalid_options_exit_2(runs, options):
    with pytest.raises(ParityInputError) as error:
        compare_runs(*runs, **options)
    assert error.value.exit_code == 2


# --- Inputs that cannot be compared ------------------------------------------


def test_missing_metric_json_exit_2(runs):
    local, emulated = runs
    (emulated / "outputs" / "metric.json").unlink()
    with pytest.raises(ParityInputError) as error:
        compare_runs(local, emulated)
    assert error.value.exit_code == 2
    assert "run B" in str(error.value)
    assert "outputs/metric.json is missing" in str(error.value)


def test_unreadable_model_json_exit_2(runs):
    local, emulated = runs
    (local / "outputs" / "model.json").write_text("{not json")
    with pytest.raises(ParityInputError) as error:
        compare_runs(local, emulated)
    assert "outputs/model.json" in str(error.value)
    assert "run A" in str(error.value)


def test_missing_folder_exit_2(runs, tmp_path):
    with pytest.raises(ParityInputError) as error:
        compare_runs(runs[0], tmp_path / "no-such-run")
    assert error.value.exit_code == 2
    assert "not found" in str(error.value)


def test_file_instead_of_folder_exit_2(runs, tmp_path):
    (tmp_path / "a-file").write_text("x")
    with pytest.raises(ParityInputError) as error:
        compare_runs(tmp_path / "a-file", runs[1])
    assert "is not a folder" in str(error.value)


def test_manifest_not_json_exit_2(runs):
    local, emulated = runs
    (emulated / "manifest.json").write_text("schema: 1\n")
    with pytest.raises(ParityInputError) as error:
        compare_runs(local, emulated)
    assert error.value.exit_code == 2
    assert "is not valid JSON" in str(error.value)


def test_manifest_missing_exit_2(runs):
    local, emulated = runs
    (local / "manifest.json").unlink()
    with pytest.raises(ParityInputError) as error:
        compare_runs(local, emulated)
    assert "manifest.json is missing" in str(error.value)


def test_error_message_is_one_line(runs):
    local, emulated = runs
    (emulated / "manifest.json").write_text("{\n\n")
    with pytest.raises(ParityInputError) as error:
        compare_runs(local, emulated)
    assert "\n" not in str(error.value)


# --- Identity and integrity --------------------------------------------------


def set_manifest(run, key_path, value):
    manifest = json.loads((run / "manifest.json").read_text())
    *parents, last = key_path.split(".")
    node = manifest
    for key in parents:
        node = node[key]
    node[last] = value
    write_json(run / "manifest.json", manifest)


def test_data_sha256_difference_is_identity(runs):
    local, emulated = runs
    set_manifest(emulated, "inputs.data.sha256", "e" * 64)
    result = compare_runs(local, emulated)
    differing = [item.name for item in result.identity if item.differs]
    assert differing == ["data sha256"]
    assert result.exit_code == 0


def test_identity_listed_before_numbers(runs, tmp_path):
    local, emulated = runs
    set_manifest(emulated, "inputs.data.sha256", "e" * 64)
    edit_json(emulated, "outputs/model.json", set_param("ar.L1", 0.5))
    result = compare_runs(local, emulated)
    markdown = (write_report(result, tmp_path / "report")["md"]).read_text()
    assert result.exit_code == 1
    assert markdown.index("## Identity") < markdown.index("### Outside tolerance")
    assert result.likely_causes[0].startswith("different data sha256")


def test_null_digest_not_compared(runs):
    local, emulated = runs
    set_manifest(
        emulated, "image.digest", "127.0.0.1:5000/arima-train@sha256:" + "f" * 64
    )
    result = compare_runs(local, emulated)
    assert not any(item.differs for item in result.identity)


def test_edited_output_reported_and_compared(runs):
    local, emulated = runs
    edit_json(emulated, "outputs/model.json", set_param("ar.L2", -0.5), refresh=False)
    result = compare_runs(local, emulated)
    [problem] = result.integrity
    assert problem.message.startswith(
        "emulated: outputs/model.json does not match its manifest checksum "
        "(edited after the run?)"
    )
    assert len(differences_named(result, "model.json:params.ar.L2")) == 1
    assert result.exit_code == 1


def test_unlisted_output_reported(runs):
    local, emulated = runs
    (emulated / "outputs" / "notes.txt").write_text("added later")
    result = compare_runs(local, emulated)
    kinds = [(problem.run, problem.file, problem.kind) for problem in result.integrity]
    assert kinds == [("emulated", "notes.txt", "unlisted")]


def test_manifest_path_escape_rejected(runs):
    local, emulated = runs
    set_manifest(
        emulated, "outputs", {"../manifest.json": {"sha256": "0" * 64, "size": 1}}
    )
    result = compare_runs(local, emulated)
    invalid = [
        problem for problem in result.integrity if problem.kind == "invalid_entry"
    ]
    assert [problem.file for problem in invalid] == ["../manifest.json"]


# --- Numbers in CSV and JSON -------------------------------------------------


def test_csv_change_named_by_date(runs):
    local, emulated = runs
    rows = forecast_rows()
    rows[4][2] += 0.25
    write_forecast(emulated / "outputs" / "forecast.csv", rows)
    refresh_manifest(emulated)
    result = compare_runs(local, emulated)
    assert [item.name for item in result.numbers] == [
        "forecast.csv:forecast[2013-12-20]"
    ]


def test_csv_rows_by_number_when_keys_repeat(tmp_path):
    local = make_run(tmp_path, "local", "local")
    emulated = make_run(tmp_path, "emulated", "emulated")
    for run, last in ((local, 1.0), (emulated, 2.0)):
        (run / "outputs" / "steps.csv").write_text(f"step,loss\na,0.5\na,{last!r}\n")
        refresh_manifest(run)
    result = compare_runs(local, emulated)
    assert [item.name for item in result.numbers] == ["steps.csv:loss[#1]"]


def test_nan_equals_nan(runs):
    local, emulated = runs
    for run in runs:
        edit_json(
            run, "outputs/metric.json", lambda metric: metric.update(MAPE=math.nan)
        )
    assert compare_runs(local, emulated).exit_code == 0


def test_nan_against_number_fails(runs):
    local, emulated = runs
    edit_json(
        emulated, "outputs/metric.json", lambda metric: metric.update(MAPE=math.nan)
    )
    result = compare_runs(local, emulated)
    [difference] = result.numbers
    assert difference.name == "metric.json:MAPE"
    assert difference.message.endswith("NaN in one run only")


def test_number_missing_in_one_run(runs):
    local, emulated = runs
    edit_json(emulated, "outputs/metric.json", lambda metric: metric.pop("MAE"))
    [difference] = compare_runs(local, emulated).numbers
    assert difference.kind == "missing_in_b"
    assert difference.message.endswith("missing in emulated")


def test_number_replaced_by_string(runs):
    local, emulated = runs
    edit_json(emulated, "outputs/metric.json", lambda metric: metric.update(R2="0.31"))
    [difference] = compare_runs(local, emulated).numbers
    assert difference.kind == "not_a_number_in_b"


def test_boolean_is_not_a_number(runs):
    local, emulated = runs
    edit_json(
        local, "outputs/metric.json", lambda metric: metric.update(converged=True)
    )
    edit_json(
        emulated, "outputs/metric.json", lambda metric: metric.update(converged=False)
    )
    result = compare_runs(local, emulated)
    assert result.exit_code == 0
    assert [item.name for item in result.values] == ["metric.json:converged"]


def test_string_difference_reported_separately(runs):
    local, emulated = runs
    edit_json(
        emulated,
        "outputs/model.json",
        lambda model: model.update(train_end="2013-12-14"),
    )
    result = compare_runs(local, emulated)
    assert result.exit_code == 0
    assert [(item.a, item.b) for item in result.values] == [
        ("2013-12-15", "2013-12-14")
    ]


def test_ignore_pattern(runs):
    local, emulated = runs
    edit_json(emulated, "outputs/metric.json", lambda metric: metric.update(MAPE=0.2))
    assert compare_runs(local, emulated, ignore=["metric.json:MAPE"]).exit_code == 0
    assert compare_runs(local, emulated, ignore=["*MAPE*"]).exit_code == 0
    assert compare_runs(local, emulated, ignore=["*RMSE*"]).exit_code == 1


def test_ignore_literal_name_with_brackets(runs):
    local, emulated = runs
    rows = forecast_rows()
    rows[4][2] += 0.25
    write_forecast(emulated / "outputs" / "forecast.csv", rows)
    refresh_manifest(emulated)
    result = compare_runs(local, emulated, ignore=["forecast.csv:forecast[2013-12-20]"])
    assert result.exit_code == 0


def test_unmatched_ignore_pattern_warns(runs):
    result = compare_runs(*runs, ignore=["*duration*"])
    assert "ignore pattern '*duration*' matched nothing" in result.warnings


def test_dotted_keys_quoted_on_collision(runs):
    local, emulated = runs
    for run, value in ((local, 1.0), (emulated, 2.0)):
        write_json(run / "outputs" / "extra.json", {"a.b": value, "a": {"b": 3.0}})
        refresh_manifest(run)
    [difference] = compare_runs(local, emulated).numbers
    assert difference.name == 'extra.json:["a.b"]'


def test_integers_compared_exactly(runs):
    local, emulated = runs
    for run, value in ((local, 2**60), (emulated, 2**60 + 1)):
        write_json(run / "outputs" / "extra.json", {"count": value})
        refresh_manifest(run)
    [difference] = compare_runs(local, emulated, max_ulp=5).numbers
    assert difference.abs_diff == 1
    assert difference.ulp is None
    assert not difference.within_tolerance


def test_generic_script_without_arima_outputs(tmp_path):
    runs = []
    for name in ("local", "emulated"):
        run = tmp_path / name
        (run / "outputs").mkdir(parents=True)
        write_json(run / "outputs" / "scores.json", {"accuracy": [0.91, 0.93]})
        manifest = copy.deepcopy(MANIFEST)
        manifest["target"] = name
        write_json(run / "manifest.json", manifest)
        refresh_manifest(run)
        runs.append(run)
    result = compare_runs(*runs)
    assert result.exit_code == 0
    assert result.numbers_compared == 2


# --- Other files and environment ---------------------------------------------


def test_pickle_difference_is_only_a_warning(runs):
    local, emulated = runs
    (emulated / "outputs" / "models" / "arima_model.pkl").write_bytes(
        pickle.dumps({"other": 1})
    )
    refresh_manifest(emulated)
    result = compare_runs(local, emulated)
    assert result.exit_code == 0
    assert any(
        warning.startswith("outputs/models/arima_model.pkl differs")
        for warning in result.warnings
    )


def test_blas_architecture_named_among_causes(runs):
    local, emulated = runs
    set_manifest(
        emulated,
        "container.blas",
        [dict(MANIFEST["container"]["blas"][0], architecture="SkylakeX")],
    )
    edit_json(
        emulated,
        "outputs/model.json",
        set_param("ar.L1", math.nextafter(PARAMS["ar.L1"], 1.0)),
    )
    result = compare_runs(local, emulated)
    assert (
        "OpenBLAS kernel Haswell (local) vs SkylakeX (emulated)" in result.likely_causes
    )
    assert [item.field for item in result.environment] == [
        "target",
        "container.blas[0].architecture",
    ]


def test_no_causes_when_numbers_identical(runs):
    local, emulated = runs
    set_manifest(
        emulated,
        "container.blas",
        [dict(MANIFEST["container"]["blas"][0], architecture="SkylakeX")],
    )
    assert compare_runs(local, emulated).likely_causes == []


def test_same_target_labels(tmp_path):
    first = make_run(tmp_path, "first", "local")
    second = make_run(tmp_path, "second", "local")
    result = compare_runs(first, second)
    assert (result.run_a.label, result.run_b.label) == ("A (local)", "B (local)")


# --- Report files ------------------------------------------------------------


def test_report_files_written(runs, tmp_path):
    local, emulated = runs
    edit_json(
        emulated,
        "outputs/model.json",
        set_param("ar.L1", math.nextafter(PARAMS["ar.L1"], 1.0)),
    )
    paths = write_report(compare_runs(local, emulated), tmp_path / "report")
    assert sorted(paths) == ["json", "md", "png"]
    assert paths["png"].read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    assert paths["md"].read_text().startswith("# parity fails: 1 of ")


def test_report_json_parses(runs, tmp_path):
    local, emulated = runs
    edit_json(
        emulated, "outputs/metric.json", lambda metric: metric.update(MAPE=math.nan)
    )
    paths = write_report(compare_runs(local, emulated), tmp_path / "report")
    data = json.loads(
        paths["json"].read_text(), parse_constant=lambda name: pytest.fail(name)
    )
    assert data["exit_code"] == 1
    assert data["differences"][0]["b"] == "nan"
    assert data["counts"]["differ"] == 1


def test_report_holds_title(runs, tmp_path):
    paths = write_report(compare_runs(*runs), tmp_path / "report")
    assert paths["md"].read_text().startswith("# parity holds: ")


def test_report_without_forecast_skips_png(runs, tmp_path):
    local, emulated = runs
    (emulated / "outputs" / "forecast.csv").unlink()
    refresh_manifest(emulated)
    out_dir = tmp_path / "report"
    out_dir.mkdir()
    (out_dir / "parity.png").write_bytes(b"stale")
    paths = write_report(compare_runs(local, emulated), out_dir)
    assert "png" not in paths
    assert not (out_dir / "parity.png").exists()
    assert "No parity.png: outputs/forecast.csv is missing" in paths["md"].read_text()


def test_report_table_capped(runs, tmp_path, monkeypatch):
    from harness.parity import report

    monkeypatch.setattr(report, "MAX_TABLE_ROWS", 3)
    local, emulated = runs
    rows = [[row[0]] + [value + 1.0 for value in row[1:]] for row in forecast_rows()]
    write_forecast(emulated / "outputs" / "forecast.csv", rows)
    refresh_manifest(emulated)
    markdown = write_report(compare_runs(local, emulated), tmp_path / "report")[
        "md"
    ].read_text()
    assert "61 more are listed in parity.json." in markdown


def test_report_plot_without_dates(runs, tmp_path):
    for run in runs:
        rows = [[f"step{index}"] + row[1:] for index, row in enumerate(forecast_rows())]
        write_forecast(run / "outputs" / "forecast.csv", rows)
        refresh_manifest(run)
    paths = write_report(compare_runs(*runs), tmp_path / "report")
    assert "png" in paths


def test_summary_lists_difference(runs):
    local, emulated = runs
    set_l1 = set_param("ar.L1", math.nextafter(PARAMS["ar.L1"], 1.0))
    edit_json(emulated, "outputs/model.json", set_l1)
    lines = compare_runs(local, emulated).summary().splitlines()
    assert lines[0].startswith("parity fails: 1 of ")
    assert lines[1].startswith("  model.json:params.ar.L1: local ")


def test_symlinked_output_skipped(runs):
    local, emulated = runs
    (emulated / "outputs" / "linked.json").symlink_to(local / "manifest.json")
    result = compare_runs(local, emulated)
    assert result.integrity == []


def test_fifo_in_outputs_does_not_hang(runs, tmp_path):
    run_a, run_b = runs
    os.mkfifo(run_b / "outputs" / "pipe.csv")
    result = compare_runs(run_a, run_b)
    write_report(result, tmp_path / "report")
    assert result.exit_code == 0


def test_undecodable_name_does_not_crash(runs, tmp_path):
    run_a, run_b = runs
    (run_b / "outputs").joinpath(os.fsdecode(b"bad\xff.json")).write_text("{}")
    result = compare_runs(run_a, run_b)
    written = write_report(result, tmp_path / "report")
    assert result.exit_code == 0
    assert written["md"].exists()
