"""The emulated remote end to end: real registry, push by digest, job container, parity, faults."""

from __future__ import annotations

import dataclasses
import json
import shutil
import signal
import subprocess
import sys
import time
from argparse import Namespace
from pathlib import Path

import pytest

from conftest import DATA_2013, ROOT, SPEC
from harness.errors import (
    DownloadError, RegistryError, RemoteError, TrainingFailed, TrainingRejected,
)
from harness.local import run_local
from harness.parity import compare_runs
from harness.remote.emulated import EmulatedBackend, EmulatedRun
from harness.remote.flow import cloud_train
from harness.runfolder import new_run_id

pytestmark = pytest.mark.docker

HOST_HAS_AVX512 = "avx512f" in Path("/proc/cpuinfo").read_text()


def run_args(tmp_path, name="remote", **changes) -> Namespace:
    values = dict(env=SPEC, data=DATA_2013, script=ROOT / "scripts", out=tmp_path / name,
                  args=[], determinism="on", pass_env=[], cpu=None, run=None)
    values.update(changes)
    return Namespace(**values)


@pytest.fixture
def local_run(docker_client, run_inputs, tmp_path):
    return run_local(docker_client, run_inputs, tmp_path / "local", new_run_id())


@pytest.fixture
def backend(docker_client, monkeypatch, tmp_path):
    monkeypatch.chdir(ROOT)
    monkeypatch.setattr("harness.paths.RUNS", tmp_path / "runs")
    return EmulatedBackend(docker_client)


def test_emulated_run_matches_local(backend, local_run, tmp_path):
    folder = cloud_train(run_args(tmp_path), backend)
    result = compare_runs(local_run, folder)
    assert result.exit_code == 0
    assert result.holds


def test_emulated_manifest_names_digests(backend, tmp_path):
    folder = cloud_train(run_args(tmp_path), backend)
    manifest = json.loads((folder / "manifest.json").read_text())
    remote = manifest["remote"]
    assert manifest["target"] == "emulated"
    assert remote["emulated"] is True
    assert "@sha256:" in manifest["image"]["digest"]
    assert manifest["image"]["digest"].startswith("127.0.0.1:")
    assert remote["pushed_digest"] == manifest["image"]["digest"]
    assert remote["pushed_digest"] in remote["ran_digests"]


def test_avx2_node_keeps_parity(backend, local_run, tmp_path):
    folder = cloud_train(run_args(tmp_path, cpu="avx2"), backend)
    assert compare_runs(local_run, folder).exit_code == 0


@pytest.mark.skipif(not HOST_HAS_AVX512, reason="needs a host with AVX-512: without it the "
                    "native and AVX2 kernels are the same, so there is no difference to find")
def test_profile_off_difference_names_kernel(backend, docker_client, run_inputs, tmp_path):
    native = dataclasses.replace(run_inputs, determinism=False, environment={})
    local = run_local(docker_client, native, tmp_path / "local-off", new_run_id())
    remote = cloud_train(run_args(tmp_path, determinism="off", cpu="avx2"), backend)
    result = compare_runs(local, remote)
    assert result.exit_code == 1
    assert any("OpenBLAS kernel" in cause for cause in result.likely_causes)


def test_remote_crash_keeps_logs(backend, tmp_path, script_copy):
    (script_copy / "train.py").write_text("import sys\nprint('about to fail')\n"
                                          "sys.exit('remote boom')\n")
    with pytest.raises(RemoteError) as caught:
        cloud_train(run_args(tmp_path, script=script_copy), backend)
    assert "ended Failed" in str(caught.value)
    assert "remote boom" in str(caught.value)
    assert not (tmp_path / "remote").exists()
    assert list(tmp_path.glob("remote.failed-*/logs/stderr.log"))


def test_truncated_download_stops(backend, tmp_path, monkeypatch):
    real_download = EmulatedRun.download

    def short_download(self, outputs, logs):
        record = real_download(self, outputs, logs)
        model = outputs / "model.json"
        model.write_bytes(model.read_bytes()[:100])
        return record

    monkeypatch.setattr(EmulatedRun, "download", short_download)
    with pytest.raises(DownloadError) as caught:
        cloud_train(run_args(tmp_path), backend)
    assert "outputs/model.json" in str(caught.value)
    assert not (tmp_path / "remote").exists()


@pytest.fixture
def private_registry(tmp_path):
    """A registry of this test's own on 127.0.0.1:5099, which the test may stop."""
    from harness.remote import registry

    binary = shutil.which("docker-registry")
    assert binary, "docker-registry must be installed (.ci/run installs it)"
    config = tmp_path / "registry.yml"
    config.write_text(f"version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: "
                      f"{tmp_path / 'storage'}\nhttp:\n  addr: 127.0.0.1:5099\n")
    server = subprocess.Popen([binary, "serve", str(config)], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 20
    while not registry.registry_responds("127.0.0.1:5099") and time.monotonic() < deadline:
        time.sleep(0.2)
    yield "127.0.0.1:5099", server
    server.kill()
    server.wait()


def test_registry_stopped_mid_push(docker_client, run_inputs, monkeypatch, private_registry):
    """A registry that dies part-way through a push ends in one RegistryError."""
    from harness.remote import registry

    address, server = private_registry
    real_push = docker_client.api.push

    def push_then_kill(*args, **kwargs):
        for event in real_push(*args, **kwargs):
            if event.get("status") == "Pushing" and server.poll() is None:
                server.kill()
            yield event

    monkeypatch.setattr(docker_client.api, "push", push_then_kill)
    with pytest.raises(RegistryError) as caught:
        registry.push_by_digest(docker_client, run_inputs.image, address, "harness/mid-push")
    assert address in str(caught.value)
    assert "\n" not in str(caught.value)


# Sleeps, then runs the real script (copied beside it), so Ctrl-C can land mid-run.
SLOW_SCRIPT = """import runpy, sys, time
time.sleep(6)
runpy.run_path(__file__.replace("train.py", "arima_train.py"), run_name="__main__")
"""


def detach_slow_run(tmp_path, script_copy) -> str:
    """Start a slow emulated run in a subprocess, press Ctrl-C while it waits; return its id."""
    shutil.copy(script_copy / "train.py", script_copy / "arima_train.py")
    (script_copy / "train.py").write_text(SLOW_SCRIPT)
    out = tmp_path / "remote"
    process = subprocess.Popen(
        [sys.executable, "-m", "harness", "cloud-train", "--target", "emulated",
         "--env", str(SPEC), "--data", str(DATA_2013), "--script", str(script_copy),
         "--out", str(out)],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    lines = []
    for line in process.stdout:
        lines.append(line)
        if "[wait]" in line and "Running" in line:
            process.send_signal(signal.SIGINT)
            break
    stdout, stderr = process.communicate(timeout=60)
    stdout = "".join(lines) + stdout
    assert process.returncode == 130, stderr
    assert "re-attach with: make cloud-train TARGET=emulated RUN=" in stdout
    assert not out.exists()
    return stdout.split("RUN=")[1].split()[0]


def test_ctrl_c_detaches_then_reattaches(docker_client, tmp_path, script_copy, monkeypatch):
    from harness.cli import main

    run_id = detach_slow_run(tmp_path, script_copy)
    out = tmp_path / "remote"
    monkeypatch.chdir(tmp_path)
    assert main(["cloud-train", "--target", "emulated", "--run", run_id]) == 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["run_id"] == run_id
    assert (out / "outputs" / "metric.json").exists()


def test_remote_exit_zero_without_record_fails(backend, tmp_path, script_copy):
    (script_copy / "train.py").write_text("import os\nos._exit(0)\n")
    with pytest.raises(TrainingFailed) as caught:
        cloud_train(run_args(tmp_path, script=script_copy), backend)
    assert "record of the run is missing or incomplete" in str(caught.value)
    assert not (tmp_path / "remote").exists()


def test_remote_rejection_exits_2(backend, tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("TransactionDate,Amount\n2013-07-31,1.0\n")
    with pytest.raises(TrainingRejected) as caught:
        cloud_train(run_args(tmp_path, data=bad), backend)
    assert caught.value.exit_code == 2
    assert "PaidAmount" in str(caught.value)
    assert not (tmp_path / "remote").exists()


def test_cancel_removes_detached_run(docker_client, tmp_path, script_copy, monkeypatch, capsys):
    from harness.cli import main

    run_id = detach_slow_run(tmp_path, script_copy)
    monkeypatch.chdir(tmp_path)
    assert main(["cancel", "--target", "emulated", run_id]) == 0
    label = {"label": f"io.harness.run-id={run_id}"}
    assert not docker_client.containers.list(all=True, filters=label)
    capsys.readouterr()
    assert main(["cloud-train", "--target", "emulated", "--run", run_id]) == 2
    assert "no pending emulated run" in capsys.readouterr().err


def test_failed_pull_is_one_error(docker_client, run_inputs, monkeypatch, private_registry):
    """The registry goes away between push and pull: the pull fails with one RegistryError."""
    address, server = private_registry
    backend = EmulatedBackend(docker_client)
    backend.registry = address
    real_remove = docker_client.api.remove_image

    def remove_then_stop_registry(*args, **kwargs):
        real_remove(*args, **kwargs)
        server.kill()
        server.wait()

    # client.images is built anew on each access, so patch the API client.
    monkeypatch.setattr(docker_client.api, "remove_image", remove_then_stop_registry)
    with pytest.raises(RegistryError) as caught:
        backend.push(docker_client, run_inputs)
    assert f"pulling {address}/" in str(caught.value)
    assert "\n" not in str(caught.value)


def test_remote_symlink_output_fails(backend, tmp_path, script_copy):
    (script_copy / "train.py").write_text(
        "import os, sys\nout = sys.argv[sys.argv.index('--output') + 1]\n"
        "os.symlink('/etc/passwd', os.path.join(out, 'passwd.json'))\n")
    with pytest.raises(TrainingFailed) as caught:
        cloud_train(run_args(tmp_path, script=script_copy), backend)
    assert "outputs/passwd.json is not a regular file" in str(caught.value)
    assert not (tmp_path / "remote").exists()
