"""Tests for the ``azureml-v2`` target (SDK v2, azure-ai-ml).

The backend talks to a fake service (tests/fakes_azure.py); the Environment,
data asset, compute and command job it builds are real azure-ai-ml objects.
Nothing here reaches Azure: where the real service class is exercised, MLClient
and the credential are replaced.
"""

import io
import json
import logging
import shlex
import subprocess
import sys
import threading
from types import SimpleNamespace

import pytest
from azure.ai.ml.entities import AmlCompute, Environment

from fakes_azure import (
    FINGERPRINT,
    JOB_LOG,
    RECORD,
    USER_ARGUMENTS,
    FakeAzureMLV2Service,
    FakeDockerClient,
    job_files,
    make_run_inputs,
    make_submission,
    write_workspace_config,
)
from harness.errors import DownloadError, RemoteError, UsageError
from harness.image import ENTRY_POINT, VENV_PYTHON
from harness.remote import azureml_v2
from harness.remote.azure_common import credentials
from harness.remote.azure_common.workspace import WorkspaceConfig
from harness.remote.azureml_v2 import AzureMLV2Backend, AzureMLV2Service

SERVICE_PRINCIPAL = {
    "AZURE_TENANT_ID": "tenant-1",
    "AZURE_CLIENT_ID": "client-1",
    "AZURE_CLIENT_SECRET": "sp-secret-value",
}
DIGEST = "sha256:" + "d" * 64
REFERENCE = f"harnessws.azurecr.io/harness/arima-env@{DIGEST}"


@pytest.fixture(autouse=True)
def no_terminal_no_cli(monkeypatch, tmp_path):
    """Run each test as a batch job: stdin is no terminal and no 'az' is on PATH."""
    empty = tmp_path / "empty-path"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    monkeypatch.setattr(sys, "stdin", io.StringIO())


@pytest.fixture
def inputs(tmp_path):
    return make_run_inputs(tmp_path)


@pytest.fixture
def project(tmp_path):
    folder = tmp_path / "project"
    folder.mkdir()
    write_workspace_config(folder)
    return folder


@pytest.fixture
def service():
    return FakeAzureMLV2Service()


def make_backend(service, project, **variables):
    return AzureMLV2Backend(
        service=service, environ={**SERVICE_PRINCIPAL, **variables}, cwd=project
    )


def submitted(service, backend, inputs, reference=REFERENCE):
    backend.check_config()
    run = backend.submit(inputs, make_submission(inputs, reference))
    ((job,),) = service.calls_to("submit")
    return run, job


def substitute(command: str, values: dict[str, str]) -> str:
    """Fill in ``${{...}}`` placeholders as Azure ML does before the shell runs."""
    for placeholder, value in values.items():
        command = command.replace("${{" + placeholder + "}}", value)
    return command


# ---------------------------------------------------------------------------
# SDK objects


def test_environment_pins_image_by_digest():
    environment = azureml_v2.build_environment(REFERENCE, FINGERPRINT)

    assert isinstance(environment, Environment)
    assert environment.name == "harness-image"
    assert environment.version == FINGERPRINT[:16]
    assert environment.image == REFERENCE
    assert environment.conda_file is None
    assert environment.build is None


def test_environment_rejects_tag_reference():
    with pytest.raises(ValueError, match="not a reference by digest"):
        azureml_v2.build_environment(
            "harnessws.azurecr.io/harness/arima-env:v1", FINGERPRINT
        )


def test_job_inputs_outputs_and_target(service, project, inputs):
    _run, job = submitted(service, make_backend(service, project), inputs)
    data = job.inputs["data"]

    assert job.code == str(inputs.snapshot.root)
    assert job.compute == "cpu-cluster"
    assert job.experiment_name == "arima-parity"
    assert job.environment == f"azureml:harness-image:{FINGERPRINT[:16]}"
    assert data.type == "uri_file"
    assert data.path == f"azureml:harness-data:{inputs.data_sha256()[:16]}"
    assert set(job.outputs) == {"output", "harness"}
    assert job.outputs["output"].type == "uri_folder"
    assert job.outputs["harness"].type == "uri_folder"
    assert "20260101-120000-ab12" in job.display_name
    assert job.tags["harness.run_id"] == "20260101-120000-ab12"


def test_job_command_placeholders(service, project, inputs):
    _run, job = submitted(service, make_backend(service, project), inputs)

    assert job.command.startswith("HARNESS_RECORD=${{outputs.harness}}/record.json ")
    assert "--input ${{inputs.data}} --output ${{outputs.output}}" in job.command
    assert f"{VENV_PYTHON} {ENTRY_POINT} train.py" in job.command


def test_job_command_words_in_shell(service, project, inputs, tmp_path):
    _run, job = submitted(service, make_backend(service, project), inputs)
    data = "/mnt/azureml/cr/j/1/cap/data-capability/wd/INPUT_data/sales 2013.csv"
    output = "/mnt/azureml/cr/j/1/cap/data-capability/wd/output"
    record = "/mnt/azureml/cr/j/1/cap/data-capability/wd/harness"
    # Replaces the image's Python: prints HARNESS_RECORD, then its arguments.
    python = tmp_path / "python"
    python.write_text('#!/bin/sh\nprintf "%s\\n" "$HARNESS_RECORD" "$@"\n')
    python.chmod(0o755)
    command = substitute(
        job.command,
        {
            "inputs.data": shlex.quote(data),
            "outputs.output": output,
            "outputs.harness": record,
        },
    )
    assert f" {VENV_PYTHON} " in command

    result = subprocess.run(
        ["/bin/bash", "-c", command.replace(VENV_PYTHON, str(python), 1)],
        capture_output=True,
        text=True,
        check=True,
        timeout=10,
    )

    assert result.stdout.splitlines() == [
        f"{record}/record.json",
        ENTRY_POINT,
        "train.py",
        "--input",
        data,
        "--output",
        output,
        *USER_ARGUMENTS,
    ]


def test_job_environment_variables(service, project, inputs):
    _run, job = submitted(service, make_backend(service, project), inputs)
    variables = job.environment_variables

    assert variables["OPENBLAS_CORETYPE"] == "Haswell"
    assert variables["OMP_NUM_THREADS"] == "1"
    assert variables["HARNESS_RUN_ID"] == "20260101-120000-ab12"
    assert json.loads(variables["HARNESS_PROFILE"])["threads"] == 1
    # The command line sets the record path, pointing into the "harness" output.
    assert "HARNESS_RECORD" not in variables
    assert not any(name.startswith("MLFLOW_") for name in variables)


def test_job_serializes_offline(service, project, inputs):
    _run, job = submitted(service, make_backend(service, project), inputs)

    # A private azure-ai-ml 1.35 call: the REST body that create_or_update would send.
    body = job._to_job()._to_rest_object().properties

    assert body.command == job.command
    assert body.compute_id == "cpu-cluster"
    assert body.environment_variables["OPENBLAS_CORETYPE"] == "Haswell"
    assert set(body.inputs) == {"data"}
    assert set(body.outputs) == {"output", "harness"}


def test_data_uploaded_once(service, project, inputs):
    backend = make_backend(service, project)
    backend.check_config()

    first = backend.upload_data(inputs.data, inputs.data_sha256())
    second = backend.upload_data(inputs.data, inputs.data_sha256())

    ((data,),) = service.calls_to("create_data")
    assert first == second == f"azureml:harness-data:{inputs.data_sha256()[:16]}"
    assert data.type == "uri_file"
    assert data.tags["sha256"] == inputs.data_sha256()
    assert (
        service.uploads[("harness-data", inputs.data_sha256()[:16])]
        == inputs.data.read_bytes()
    )


def test_data_version_collision(service, project, inputs):
    backend = make_backend(service, project)
    backend.check_config()
    version = inputs.data_sha256()[:16]
    service.data_assets[("harness-data", version)] = SimpleNamespace(
        tags={"sha256": "0" * 64}
    )

    with pytest.raises(
        RemoteError, match=f"harness-data:{version} contains sha256 0000"
    ):
        backend.upload_data(inputs.data, inputs.data_sha256())


def test_environment_registered_once(service, project):
    backend = make_backend(service, project)
    backend.check_config()

    first = backend.ensure_environment(REFERENCE, FINGERPRINT)
    second = backend.ensure_environment(REFERENCE, FINGERPRINT)

    assert len(service.calls_to("create_environment")) == 1
    assert first is second


def test_environment_new_digest_new_version(service, project):
    backend = make_backend(service, project)
    backend.check_config()
    rebuilt = REFERENCE.replace("d" * 64, "e" * 64)

    backend.ensure_environment(REFERENCE, FINGERPRINT)
    environment = backend.ensure_environment(rebuilt, FINGERPRINT)
    again = backend.ensure_environment(rebuilt, FINGERPRINT)

    assert environment.version == f"{FINGERPRINT[:16]}-{'e' * 12}"
    assert environment.image == rebuilt
    assert again is environment
    assert len(service.calls_to("create_environment")) == 2


# ---------------------------------------------------------------------------
# Configuration, credentials and compute


def test_no_config_one_line(service, tmp_path):
    backend = AzureMLV2Backend(service=service, environ=SERVICE_PRINCIPAL, cwd=tmp_path)

    with pytest.raises(RemoteError) as failure:
        backend.check_config()

    message = str(failure.value)
    assert "\n" not in message
    assert "config.json" in message
    assert "TARGET=emulated" in message
    assert service.calls == []


def test_bad_config_one_line(service, tmp_path):
    (tmp_path / ".azureml").mkdir()
    (tmp_path / ".azureml" / "config.json").write_text('{"workspace_name": "ws"}')
    backend = AzureMLV2Backend(service=service, environ=SERVICE_PRINCIPAL, cwd=tmp_path)

    with pytest.raises(RemoteError) as failure:
        backend.check_config()

    message = str(failure.value)
    assert "\n" not in message
    assert "missing subscription_id, resource_group" in message


def test_no_credentials_even_with_terminal(service, project, monkeypatch):
    monkeypatch.setattr(sys, "stdin", SimpleNamespace(isatty=lambda: True))
    backend = AzureMLV2Backend(service=service, environ={}, cwd=project)

    with pytest.raises(RemoteError, match="no Azure credentials found"):
        backend.check_config()
    assert service.calls == []


def test_connect_passes_credential_kind(service, project):
    backend = make_backend(service, project)

    backend.check_config()

    workspace, credential = service.connected
    assert workspace.workspace_name == "harness-ws"
    assert credential == credentials.SERVICE_PRINCIPAL


def test_connect_bounded_wait(monkeypatch):
    release = threading.Event()
    created = {}

    class HangingClient:
        def __init__(self, credential, **scope):
            created.update(scope, credential=credential)
            self.workspaces = SimpleNamespace(get=lambda name: release.wait(10))

    monkeypatch.setattr(azureml_v2.service, "MLClient", HangingClient)
    monkeypatch.setattr(credentials, "default_azure_credential", lambda: "credential")
    workspace = WorkspaceConfig("sub", "rg", "ws", "environment variables")

    try:
        with pytest.raises(RemoteError) as failure:
            AzureMLV2Service(timeout=0.2).connect(workspace, credentials.AZURE_CLI)
    finally:
        release.set()

    assert "timed out after 0.2 s" in str(failure.value)
    assert created == {
        "subscription_id": "sub",
        "resource_group_name": "rg",
        "workspace_name": "ws",
        "credential": "credential",
    }


def test_default_credential_never_prompts():
    credential = credentials.default_azure_credential()

    names = [type(source).__name__ for source in credential.credentials]
    assert "InteractiveBrowserCredential" not in names


def test_missing_compute_names_it(service, project):
    backend = make_backend(service, project, AZUREML_COMPUTE="gpu-box")

    with pytest.raises(RemoteError) as failure:
        backend.check_config()

    message = str(failure.value)
    assert "\n" not in message
    assert "'gpu-box' not found" in message
    assert "CREATE_COMPUTE=1" in message


def test_create_compute_on_request(service, project):
    backend = make_backend(
        service, project, AZUREML_COMPUTE="harness-cpu", CREATE_COMPUTE="1"
    )

    backend.check_config()

    ((compute,),) = service.calls_to("create_compute")
    assert isinstance(compute, AmlCompute)
    assert compute.name == "harness-cpu"
    assert compute.min_instances == 0
    assert compute.max_instances == 1
    assert compute.size == "STANDARD_DS3_V2"
    assert compute.idle_time_before_scale_down == 1800


def test_conda_mode_rejected(service, project):
    with pytest.raises(
        UsageError, match="ENV_MODE=conda is supported by TARGET=azureml only"
    ):
        make_backend(service, project, ENV_MODE="conda").check_config()


def test_secrets_never_logged(service, project, inputs, caplog):
    caplog.set_level(logging.DEBUG)
    backend = make_backend(service, project)
    backend.check_config()
    reference = backend.push(FakeDockerClient(), inputs)
    run = backend.submit(inputs, make_submission(inputs, reference))
    run.new_log_lines()

    assert "sp-secret-value" not in caplog.text
    assert "acr-admin-password" not in caplog.text
    assert "AZURE_CLIENT_SECRET=<set>" in caplog.text


# ---------------------------------------------------------------------------
# Runs


def test_push_then_submit_by_digest(service, project, inputs):
    docker = FakeDockerClient()
    backend = make_backend(service, project)
    backend.check_config()

    reference = backend.push(docker, inputs)
    run, job = submitted(service, backend, inputs, reference)

    assert reference == f"harnessws.azurecr.io/harness/arima-env@{docker.digest}"
    assert service.environments[("harness-image", FINGERPRINT[:16])].image == reference
    assert run.manifest_extra()["image_digest"] == docker.digest


def test_download_returns_record(service, project, inputs, tmp_path):
    run, _job = submitted(service, make_backend(service, project), inputs)
    folder = tmp_path / "run"
    outputs, logs = folder / "outputs", folder / "logs"
    outputs.mkdir(parents=True)
    logs.mkdir()

    record = run.download(outputs, logs)

    assert run.status() == "Completed"
    assert set(record["outputs"]) == {
        "model.json",
        "metric.json",
        "models/arima_model.pkl",
    }
    assert sorted(p.name for p in outputs.iterdir()) == [
        "metric.json",
        "model.json",
        "models",
    ]
    assert (logs / "harness" / "record.json").is_file()
    assert (logs / JOB_LOG).read_text().startswith("probing the container")
    assert sorted(p.name for p in folder.iterdir()) == ["logs", "outputs"]


def test_download_missing_output(service, project, inputs, tmp_path):
    def lose_model(job):
        files = job_files()
        del files["outputs/model.json"]
        job.files.update(files)
        job.status = "Completed"

    service.run_job = lose_model
    run, _job = submitted(service, make_backend(service, project), inputs)

    with pytest.raises(DownloadError, match="outputs/model.json .*missing"):
        run.download(tmp_path / "outputs", tmp_path / "logs")


def test_download_extra_output(service, project, inputs, tmp_path):
    def unlisted(job):
        files = job_files()
        files["outputs/stray.txt"] = b"not in the record"
        job.files.update(files)
        job.status = "Completed"

    service.run_job = unlisted
    run, _job = submitted(service, make_backend(service, project), inputs)

    with pytest.raises(
        DownloadError, match="outputs/stray.txt was not written by this run"
    ):
        run.download(tmp_path / "outputs", tmp_path / "logs")


def test_download_without_record(service, project, inputs, tmp_path):
    def no_record(job):
        files = job_files()
        del files[RECORD]
        job.files.update(files)
        job.status = "Failed"

    service.run_job = no_record
    run, _job = submitted(service, make_backend(service, project), inputs)

    assert run.download(tmp_path / "outputs", tmp_path / "logs") == {}


def test_log_lines_incremental(service, project, inputs):
    def running(job):
        job.files[JOB_LOG] = b"fitting\n"
        job.status = "Running"

    service.run_job = running
    run, _job = submitted(service, make_backend(service, project), inputs)

    first = run.new_log_lines()
    service.jobs[run.run_id].files[JOB_LOG] += b"RMSE 511.0755\n"
    second = run.new_log_lines()

    assert first == ["fitting"]
    assert second == ["RMSE 511.0755"]


def test_error_tail_one_line(service, project, inputs):
    def crash(job):
        job.files[JOB_LOG] = (
            b"Traceback (most recent call last):\nKeyError: 'PaidAmount'\n"
        )
        job.error = "Execution failed. User process exited with status code 1."
        job.status = "Failed"

    service.run_job = crash
    run, _job = submitted(service, make_backend(service, project), inputs)

    tail = run.error_tail()

    assert "\n" not in tail
    assert tail.startswith("Execution failed.")
    assert tail.endswith("KeyError: 'PaidAmount'")


def test_manifest_extra(service, project, inputs):
    run, _job = submitted(service, make_backend(service, project), inputs)

    extra = run.manifest_extra()

    assert extra["workspace"] == "harness-ws"
    assert extra["experiment"] == "arima-parity"
    assert extra["run_id"] == run.run_id
    assert extra["portal_url"] == f"https://ml.azure.com/runs/{run.run_id}"
    assert extra["environment"] == {
        "name": "harness-image",
        "version": FINGERPRINT[:16],
    }
    assert extra["image_digest"] == DIGEST
    assert extra["compute_target"] == "cpu-cluster"
    assert extra["pinned"] is True
    assert extra["sdk"].startswith("azure-ai-ml 1.")


def test_attach_by_job_name(service, project, inputs):
    run, _job = submitted(service, make_backend(service, project), inputs)
    later = make_backend(service, project)

    attached = later.attach(run.run_id)

    assert attached.manifest_extra() == run.manifest_extra()
    assert (
        later.reattach_hint(run.run_id)
        == f"make cloud-train TARGET=azureml-v2 RUN={run.run_id}"
    )


def test_attach_unknown_job(service, project):
    with pytest.raises(RemoteError, match="not found"):
        make_backend(service, project).attach("nope")


def test_cancel_only_on_request(service, project, inputs, tmp_path):
    backend = make_backend(service, project)
    run, _job = submitted(service, backend, inputs)
    run.download(tmp_path / "outputs", tmp_path / "logs")
    assert service.calls_to("cancel") == []

    backend.cancel(run.run_id)

    assert service.calls_to("cancel") == [(run.run_id,)]
