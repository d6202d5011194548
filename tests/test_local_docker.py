"""Local runs in the real image on the real data: outputs, provenance, isolation, faults."""

from __future__ import annotations

import dataclasses
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import DATA_2013, ROOT
from harness.errors import OutputError, ProfileError, TrainingFailed, TrainingRejected
from harness.local import run_local
from harness.runfolder import file_sha256, new_run_id
from harness.snapshot import take_snapshot

pytestmark = pytest.mark.docker

# ARIMA(2,0,2) on the 2013 series with statsmodels 0.15 and OpenBLAS's Haswell
# kernel (the determinism profile), as measured on this project's CI machines.
RMSE_HASWELL = 511.07517077623913
HOST_HAS_AVX512 = "avx512f" in Path("/proc/cpuinfo").read_text()


def train(client, inputs, tmp_path, name="run", **changes):
    inputs = dataclasses.replace(inputs, **changes)
    run_id = new_run_id()
    return run_local(client, inputs, tmp_path / name, run_id)


def test_default_run_writes_every_output(docker_client, run_inputs, tmp_path):
    folder = train(docker_client, run_inputs, tmp_path)
    outputs = folder / "outputs"
    names = sorted(p.relative_to(outputs).as_posix() for p in outputs.rglob("*") if p.is_file())
    assert names == ["forecast.csv", "forecast.png", "metric.json", "model.json",
                     "models/arima_model.pkl", "residuals.png"]
    assert (folder / "logs" / "stdout.log").stat().st_size > 0
    assert (folder / "logs" / "container.json").exists()


def test_default_run_metrics_exact(docker_client, run_inputs, tmp_path):
    folder = train(docker_client, run_inputs, tmp_path)
    metrics = json.loads((folder / "outputs" / "metric.json").read_text())
    model = json.loads((folder / "outputs" / "model.json").read_text())
    assert metrics["RMSE"] == RMSE_HASWELL
    assert metrics["n_train"] == 138
    assert metrics["n_test"] == 16
    assert metrics["run_id"] == json.loads((folder / "manifest.json").read_text())["run_id"]
    assert sorted(model["params"]) == ["ar.L1", "ar.L2", "const", "ma.L1", "ma.L2", "sigma2"]


def test_manifest_records_provenance(docker_client, run_inputs, tmp_path):
    folder = train(docker_client, run_inputs, tmp_path)
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["image"]["id"] == run_inputs.image.id
    assert manifest["image"]["fingerprint_seen"] == run_inputs.image.fingerprint
    assert manifest["inputs"]["data"]["sha256"] == file_sha256(DATA_2013)
    assert manifest["inputs"]["lock"]["sha256"] == run_inputs.lock.sha256
    assert manifest["packages"]["statsmodels"] == "0.15.0"
    assert manifest["container"]["cpu_model"]
    for name, entry in manifest["outputs"].items():
        assert file_sha256(folder / "outputs" / name) == entry["sha256"]


def test_profile_takes_effect_inside(docker_client, run_inputs, tmp_path):
    folder = train(docker_client, run_inputs, tmp_path)
    container = json.loads((folder / "manifest.json").read_text())["container"]
    openblas = [lib for lib in container["blas"] if lib["internal_api"] == "openblas"]
    assert openblas
    assert {lib["architecture"] for lib in openblas} == {"Haswell"}
    assert {lib["num_threads"] for lib in openblas} == {1}
    assert not [t for t in container["numpy"]["dispatch_active"] if "AVX512" in t or t == "X86_V4"]


def test_two_runs_bitwise_identical(docker_client, run_inputs, tmp_path):
    first = train(docker_client, run_inputs, tmp_path, "first")
    second = train(docker_client, run_inputs, tmp_path, "second")
    model_a = (first / "outputs" / "model.json").read_bytes()
    model_b = (second / "outputs" / "model.json").read_bytes()
    metric_a = json.loads((first / "outputs" / "metric.json").read_text())
    metric_b = json.loads((second / "outputs" / "metric.json").read_text())
    assert model_a == model_b
    assert {k: v for k, v in metric_a.items() if k != "run_id"} == \
        {k: v for k, v in metric_b.items() if k != "run_id"}
    assert (first / "outputs" / "forecast.csv").read_bytes() == \
        (second / "outputs" / "forecast.csv").read_bytes()


@pytest.mark.skipif(not HOST_HAS_AVX512, reason="host CPU has no AVX-512, so the "
                    "profile-off kernel is the same as the profile's")
def test_profile_off_uses_native_kernel(docker_client, run_inputs, tmp_path):
    folder = train(docker_client, run_inputs, tmp_path, determinism=False, environment={})
    manifest = json.loads((folder / "manifest.json").read_text())
    kernels = {lib["architecture"] for lib in manifest["container"]["blas"]}
    assert manifest["determinism"]["enabled"] is False
    assert "Haswell" not in kernels


def test_kernel_mismatch_fails_run(docker_client, run_inputs, tmp_path):
    environment = {**run_inputs.environment, "OPENBLAS_CORETYPE": "Sandybridge"}
    with pytest.raises(ProfileError) as caught:
        train(docker_client, run_inputs, tmp_path, environment=environment)
    assert "expected Haswell" in str(caught.value)
    assert not (tmp_path / "run").exists()


ISOLATION_PROBE = '''
import json, os, socket, sys
out = sys.argv[sys.argv.index("--output") + 1]
data = sys.argv[sys.argv.index("--input") + 1]
def writable(path):
    try:
        with open(path, "w") as handle:
            handle.write("x")
        return True
    except OSError:
        return False
def connects():
    try:
        socket.create_connection(("127.0.0.1", 80), timeout=1)
        return True
    except OSError as exc:
        return False
found = {
    "uid": os.getuid(),
    "interfaces": sorted(os.listdir("/sys/class/net")),
    "script_writable": writable(os.path.join(os.path.dirname(__file__), "new.py")),
    "data_writable": writable(data),
    "root_writable": writable("/opt/harness/x"),
    "tmp_writable": writable("/tmp/x"),
    "home_writable": writable(os.path.expanduser("~/x")),
    "secret_seen": "HARNESS_TEST_SECRET" in os.environ,
    "passed_seen": os.environ.get("HARNESS_TEST_PASSED"),
    "run_id": os.environ.get("HARNESS_RUN_ID"),
}
with open(os.path.join(out, "probe.json"), "w") as handle:
    json.dump(found, handle)
'''


def test_container_is_isolated(docker_client, run_inputs, tmp_path, monkeypatch, script_copy):
    (script_copy / "train.py").write_text(ISOLATION_PROBE)
    monkeypatch.setenv("HARNESS_TEST_SECRET", "do-not-pass")
    monkeypatch.setenv("HARNESS_TEST_PASSED", "named")
    folder = train(docker_client, run_inputs, tmp_path, snapshot=take_snapshot(script_copy),
                   passed_env=["HARNESS_TEST_PASSED"])
    found = json.loads((folder / "outputs" / "probe.json").read_text())
    assert found["uid"] != 0
    assert found["interfaces"] == ["lo"]
    assert found["script_writable"] is False
    assert found["data_writable"] is False
    assert found["root_writable"] is False
    assert found["tmp_writable"] is True
    assert found["home_writable"] is True
    assert found["secret_seen"] is False
    assert found["passed_seen"] == "named"
    assert found["run_id"] == json.loads((folder / "manifest.json").read_text())["run_id"]


def test_bad_data_relays_script_line(docker_client, run_inputs, tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("TransactionDate,Amount\n2013-07-31,1.0\n")
    with pytest.raises(TrainingRejected) as caught:
        train(docker_client, run_inputs, tmp_path, data=bad)
    assert "PaidAmount" in str(caught.value)
    assert "\n" not in str(caught.value)
    assert not (tmp_path / "run").exists()
    assert list(tmp_path.glob("run.failed-*/logs/stderr.log"))


def test_crash_shows_output_tail(docker_client, run_inputs, tmp_path, script_copy):
    (script_copy / "train.py").write_text("raise RuntimeError('boom in training')\n")
    with pytest.raises(TrainingFailed) as caught:
        train(docker_client, run_inputs, tmp_path, snapshot=take_snapshot(script_copy))
    assert "crashed (exit 1)" in str(caught.value)
    assert "boom in training" in str(caught.value)
    assert not (tmp_path / "run").exists()


def test_earlier_run_is_untouched(docker_client, run_inputs, tmp_path, script_copy):
    good = train(docker_client, run_inputs, tmp_path, "good")
    before = (good / "manifest.json").read_bytes()
    (script_copy / "train.py").write_text("import sys; sys.exit(5)\n")
    with pytest.raises(TrainingFailed):
        train(docker_client, run_inputs, tmp_path, "bad", snapshot=take_snapshot(script_copy))
    assert (good / "manifest.json").read_bytes() == before


def test_interrupt_removes_container(docker_client, tmp_path, script_copy):
    (script_copy / "train.py").write_text("import time\nprint('started', flush=True)\n"
                                          "time.sleep(120)\n")
    out = tmp_path / "run"
    process = subprocess.Popen(
        [sys.executable, "-m", "harness", "local-train", "--script", str(script_copy),
         "--out", str(out)],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    label = {"label": "io.harness.role=training"}
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not _running(docker_client, label):
        time.sleep(0.2)
    assert _running(docker_client, label), process.communicate(timeout=5)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130
    assert stderr.strip().startswith("error: interrupted")
    assert "Traceback" not in stderr
    assert not out.exists()
    assert not docker_client.containers.list(all=True, filters=label)


def _running(client, label) -> bool:
    return any(c.status == "running" for c in client.containers.list(filters=label))


FORGED_RECORD = """import json, os
with open(os.environ["HARNESS_RECORD"], "w") as handle:
    json.dump({"profile_problems": []}, handle)
os._exit(0)
"""


@pytest.mark.parametrize("script", ["import os\nos._exit(0)\n", FORGED_RECORD])
def test_unfinished_record_fails_run(docker_client, run_inputs, tmp_path, script_copy, script):
    (script_copy / "train.py").write_text(script)
    with pytest.raises(TrainingFailed) as caught:
        train(docker_client, run_inputs, tmp_path, snapshot=take_snapshot(script_copy))
    assert "record of the run is missing or incomplete" in str(caught.value)
    assert not (tmp_path / "run").exists()


ESCAPE_PROBE = """import os, sys
out = sys.argv[sys.argv.index("--output") + 1]
for target in (os.path.join(out, "..", "evil.txt"), "/mnt/evil.txt"):
    try:
        open(target, "w").write("x")
        print("wrote", target)
    except OSError:
        pass
open(os.path.join(out, "ok.txt"), "w").write("ok")
"""


def test_script_writes_only_outputs(docker_client, run_inputs, tmp_path, script_copy):
    (script_copy / "train.py").write_text(ESCAPE_PROBE)
    folder = train(docker_client, run_inputs, tmp_path, snapshot=take_snapshot(script_copy))
    assert sorted(p.name for p in folder.iterdir()) == ["logs", "manifest.json", "outputs"]
    assert "wrote" not in (folder / "logs" / "stdout.log").read_text()


IGNORED_PROBE = """import os, sys
out = sys.argv[sys.argv.index("--output") + 1]
here = os.path.dirname(os.path.abspath(__file__))
open(os.path.join(out, "seen.txt"), "w").write(" ".join(sorted(os.listdir(here))))
"""


def test_ignored_files_not_mounted(docker_client, run_inputs, tmp_path):
    scripts = tmp_path / "ignoring"
    scripts.mkdir()
    (scripts / "train.py").write_text(IGNORED_PROBE)
    (scripts / "helper.txt").write_text("left out")
    (scripts / ".amlignore").write_text("helper.txt\n")
    folder = train(docker_client, run_inputs, tmp_path, snapshot=take_snapshot(scripts))
    assert (folder / "outputs" / "seen.txt").read_text() == ".amlignore train.py"


def test_rejection_names_host_path(docker_client, run_inputs, tmp_path):
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    with pytest.raises(TrainingRejected) as caught:
        train(docker_client, run_inputs, tmp_path, data=empty)
    message = str(caught.value)
    assert str(empty) in message
    assert "/mnt/" not in message
    assert "error: error:" not in message


IRREGULAR_OUTPUTS = {
    "symlink": "os.symlink('/etc/passwd', os.path.join(out, 'passwd.json'))",
    "fifo": "os.mkfifo(os.path.join(out, 'pipe.csv'))",
    "non-utf8": "open(os.path.join(out.encode(), b'bad\\xff.json'), 'w').write('{}')",
}


@pytest.mark.parametrize("kind", sorted(IRREGULAR_OUTPUTS))
def test_irregular_output_fails_run(docker_client, run_inputs, tmp_path, script_copy, kind):
    (script_copy / "train.py").write_text(
        "import os, sys\nout = sys.argv[sys.argv.index('--output') + 1]\n"
        + IRREGULAR_OUTPUTS[kind] + "\n")
    with pytest.raises(OutputError) as caught:
        train(docker_client, run_inputs, tmp_path, snapshot=take_snapshot(script_copy))
    assert "outputs/" in str(caught.value)
    assert not (tmp_path / "run").exists()


TAMPER = """import sys
frame = sys._getframe()
while frame is not None:
    record = frame.f_locals.get("record")
    if isinstance(record, dict) and "container" in record:
        record["container"]["cpu_model"] = "FAKE CPU 9000"
    frame = frame.f_back
out = sys.argv[sys.argv.index("--output") + 1]
open(out + "/x.txt", "w").write("x")
"""


def test_tampered_record_fails_run(docker_client, run_inputs, tmp_path, script_copy):
    (script_copy / "train.py").write_text(TAMPER)
    with pytest.raises(TrainingFailed) as caught:
        train(docker_client, run_inputs, tmp_path, snapshot=take_snapshot(script_copy))
    assert "differs from what the container measured" in str(caught.value)
    assert not (tmp_path / "run").exists()


def test_escape_sequences_not_relayed(docker_client, run_inputs, tmp_path, script_copy, capsys):
    from harness.cli import setup_logging

    setup_logging(verbose=False)
    (script_copy / "train.py").write_text(
        "print('\\x1b[2Jclear \\x1b]0;TITLE\\x07done')\n"
        "import sys; print('\\x1b[31mbad\\x1b[0m', file=sys.stderr); sys.exit(2)\n")
    with pytest.raises(TrainingRejected) as caught:
        train(docker_client, run_inputs, tmp_path, snapshot=take_snapshot(script_copy))
    out = capsys.readouterr().out
    assert "\x1b" not in out
    assert "clear done" in out
    assert "\x1b" not in str(caught.value)
