"""The command line: one error line on stderr, the right exit code, no traceback."""

from __future__ import annotations

import pytest

from harness.cli import main


def run(capsys, *argv):
    with pytest.raises(SystemExit) as caught:
        code = main(list(argv))
        raise SystemExit(code)
    captured = capsys.readouterr()
    return caught.value.code, captured.out, captured.err


def error_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("error: ")
    assert "Traceback" not in err
    return lines[0]


def test_bad_spec_is_one_line(capsys, tmp_path):
    spec = tmp_path / "env.yml"
    spec.write_text("name: x\ndependencies:\n  - numpy\n")
    code, _, err = run(capsys, "lock", "--env", str(spec))
    assert code == 1
    assert "no python pin" in error_line(err)
    assert not spec.with_suffix(".lock").exists()


def test_invalid_choice_is_one_line(capsys):
    code, _, err = run(capsys, "local-train", "--determinism", "maybe")
    assert code == 2
    assert "invalid choice: 'maybe'" in error_line(err)


def test_unknown_command_is_one_line(capsys):
    code, _, err = run(capsys, "fly")
    assert code == 2
    assert "invalid choice" in error_line(err)


def test_unbalanced_args_rejected(capsys):
    code, _, err = run(capsys, "local-train", "--args", "--order '1,1,1")
    assert code == 2
    assert "cannot be split" in error_line(err)


def test_existing_out_rejected(capsys, tmp_path):
    code, _, err = run(capsys, "local-train", "--out", str(tmp_path))
    assert code == 2
    assert "already exists" in error_line(err)


def test_unknown_target_rejected(capsys):
    code, _, err = run(capsys, "cloud-train", "--target", "nope")
    assert code == 2
    assert "TARGET='nope' is not known" in error_line(err)


def test_parity_missing_folder_exits_2(capsys, tmp_path):
    code, _, err = run(capsys, "parity", str(tmp_path / "a"), str(tmp_path / "b"))
    assert code == 2
    error_line(err)


def test_parity_negative_tolerance_exits_2(capsys, tmp_path):
    code, _, err = run(capsys, "parity", str(tmp_path), str(tmp_path), "--rtol", "-1")
    assert code == 2
    error_line(err)


def test_bad_cpu_rejected_before_lock(capsys, tmp_path):
    spec = tmp_path / "env.yml"
    spec.write_text("name: x\ndependencies:\n  - python=3.11\n  - six\n")
    code, _, err = run(capsys, "local-train", "--cpu", "bogus", "--env", str(spec),
                       "--out", str(tmp_path / "run"))
    assert code == 2
    assert "CPU='bogus' is not known" in error_line(err)
    assert not spec.with_suffix(".lock").exists()


def test_empty_spec_says_empty(capsys, tmp_path):
    spec = tmp_path / "env.yml"
    spec.write_text("")
    code, _, err = run(capsys, "lock", "--env", str(spec))
    assert code == 1
    assert "the spec is empty" in error_line(err)


@pytest.mark.parametrize("target", ["azureml", "azureml-v2"])
def test_no_workspace_is_one_line(capsys, tmp_path, monkeypatch, target):
    for name in ("AZUREML_CONFIG", "AZUREML_SUBSCRIPTION_ID", "AZUREML_RESOURCE_GROUP",
                 "AZUREML_WORKSPACE_NAME"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    code, out, err = run(capsys, "cloud-train", "--target", target)
    line = error_line(err)
    assert code == 1
    assert "config.json" in line
    assert "TARGET=emulated" in line
    assert "[build]" not in out
