"""Tests for the ``azureml`` target (SDK v1, azureml-core) and the shared Azure config.

The backend talks to a fake service (tests/fakes_azure.py); the SDK objects it
builds are real azureml-core objects. Nothing here reaches Azure: where the real
service class is exercised, the SDK call that would go out is replaced.
"""

import io
import json
import logging
import os
import shlex
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from azureml.core import Environment
from azureml.core.authentication import (
    MsiAuthentication,
    ServicePrincipalAuthentication,
    TokenAuthentication,
)

from fakes_azure import (
    FINGERPRINT,
    JOB_LOG,
    RECORD,
    USER_ARGUMENTS,
    WORKSPACE_REGISTRY,
    FakeAzureMLService,
    FakeDockerClient,
    job_files,
    make_run_inputs,
    make_submission,
    write_workspace_config,
)
from harness.errors import DownloadError, RegistryError, RemoteError, UsageError
from harness.image import ENTRY_POINT, VENV_PYTHON
from harness.remote import azureml_v1
from harness.remote.azure_common import credentials
from harness.remote.azure_common.runs import select_job_log
from harness.remote.azure_common.service import strip_query
from harness.remote.azure_common.settings import RegistryLogin, TargetSettings
from harness.remote.azure_common.workspace import WorkspaceConfig, find_workspace_config
from harness.remote.azureml_v1 import AzureMLBackend, AzureMLService
from harness.snapshot import Snapshot

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
    return FakeAzureMLService()


def make_backend(service, project, **variables):
    return AzureMLBackend(
        service=service, environ={**SERVICE_PRINCIPAL, **variables}, cwd=project
    )


def submitted(service, backend, inputs, reference=REFERENCE):
    backend.check_config()
    run = backend.submit(inputs, make_submission(inputs, reference))
    ((_experiment, script_config, _tags),) = service.calls_to("submit")
    return run, script_config


def echo_command(command: str, data_path: str) -> list[str]:
    """Return the words bash passes to the program of ``command`` (run with printf)."""
    shell = (
        f'AZUREML_DATAREFERENCE_data={shlex.quote(data_path)}; printf "%s\\n" {command}'
    )
    result = subprocess.run(
        ["/bin/bash", "-c", shell],
        capture_output=True,
        text=True,
        check=True,
        timeout=10,
    )
    return result.stdout.splitlines()


# ---------------------------------------------------------------------------
# SDK objects


def test_environment_pins_image_by_digest():
    environment = azureml_v1.build_environment(REFERENCE, FINGERPRINT)

    assert environment.name == "harness-0123456789abcdef"
    assert environment.docker.base_image == REFERENCE
    assert "@sha256:" in environment.docker.base_image
    assert environment.python.user_managed_dependencies is True
    assert environment.python.interpreter_path == "/opt/venv/bin/python"
    assert environment.docker.base_image_registry.address is None
    assert environment.docker.base_image_registry.password is None
    assert environment.environment_variables == {}


def test_environment_carries_named_registry_login():
    login = RegistryLogin("registry.example.net", "pusher", "registry-password")

    environment = azureml_v1.build_environment(
        f"registry.example.net/harness/arima-env@{DIGEST}", FINGERPRINT, login
    )

    registry = environment.docker.base_image_registry
    assert registry.address == "registry.example.net"
    assert registry.username == "pusher"
    assert registry.password == "registry-password"


def test_environment_rejects_tag_reference():
    with pytest.raises(ValueError, match="not a reference by digest"):
        azureml_v1.build_environment(
            "harnessws.azurecr.io/harness/arima-env:latest", FINGERPRINT
        )


def test_run_config_runs_entry_point(service, project, inputs):
    run, script_config = submitted(service, make_backend(service, project), inputs)
    run_config = script_config.run_config

    assert script_config.source_directory == str(inputs.snapshot.root)
    assert run_config.target == "cpu-cluster"
    assert run_config.docker.use_docker is True
    assert run_config.environment.docker.base_image == REFERENCE
    assert run_config.environment.python.interpreter_path == VENV_PYTHON
    assert script_config.command.startswith(
        f"{VENV_PYTHON} {ENTRY_POINT} train.py --input "
    )
    assert (
        '--input "$AZUREML_DATAREFERENCE_data" --output outputs'
        in script_config.command
    )


def test_run_config_command_words_in_shell(service, project, inputs):
    _run, script_config = submitted(service, make_backend(service, project), inputs)
    node_path = "/mnt/azureml/cr/j/abc/cap/data-capability/wd/data/sales 2013.csv"

    words = echo_command(script_config.command, node_path)

    assert words == [
        VENV_PYTHON,
        ENTRY_POINT,
        "train.py",
        "--input",
        node_path,
        "--output",
        "outputs",
        *USER_ARGUMENTS,
    ]


def test_run_config_environment_variables(service, project, inputs):
    _run, script_config = submitted(service, make_backend(service, project), inputs)
    variables = script_config.run_config.environment_variables

    assert variables["OPENBLAS_CORETYPE"] == "Haswell"
    assert variables["OMP_NUM_THREADS"] == "1"
    assert variables["HARNESS_RECORD"] == "logs/harness/record.json"
    assert variables["HARNESS_RUN_ID"] == "20260101-120000-ab12"
    assert json.loads(variables["HARNESS_PROFILE"])["openblas_coretype"] == "Haswell"


def test_data_reference_content_addressed(service, project, inputs):
    _run, script_config = submitted(service, make_backend(service, project), inputs)
    reference = script_config.run_config.data_references["data"]
    expected = f"harness-data/{inputs.data_sha256()}/sales 2013.csv"

    assert reference.data_store_name == "workspaceblobstore"
    assert reference.path_on_data_store == expected
    assert reference.mode == "mount"
    assert service.blobs[("workspaceblobstore", expected)] == inputs.data.read_bytes()


def test_data_uploaded_once(service, project, inputs):
    backend = make_backend(service, project)
    backend.check_config()

    first = backend.upload_data(inputs.data, inputs.data_sha256())
    second = backend.upload_data(inputs.data, inputs.data_sha256())

    assert len(service.calls_to("upload_file")) == 1
    assert first.path_on_datastore == second.path_on_datastore
    assert str(second) == "$AZUREML_DATAREFERENCE_data"


def test_data_upload_checked_afterwards(service, project, inputs):
    service.lose_uploads = True
    backend = make_backend(service, project)
    backend.check_config()

    with pytest.raises(RemoteError, match="not there afterwards"):
        backend.upload_data(inputs.data, inputs.data_sha256())


def test_environment_registered_once(service, project, inputs):
    backend = make_backend(service, project)
    backend.check_config()

    first = backend.ensure_environment(REFERENCE, FINGERPRINT)
    second = backend.ensure_environment(REFERENCE, FINGERPRINT)

    assert len(service.calls_to("register_environment")) == 1
    assert first is second
    assert first.version == "1"


def test_environment_new_digest_registers_version(service, project):
    backend = make_backend(service, project)
    backend.check_config()
    rebuilt = REFERENCE.replace("d" * 64, "e" * 64)

    backend.ensure_environment(REFERENCE, FINGERPRINT)
    environment = backend.ensure_environment(rebuilt, FINGERPRINT)

    assert len(service.calls_to("register_environment")) == 2
    assert environment.version == "2"
    assert environment.docker.base_image == rebuilt


def test_snapshot_limit_checked_before_upload(service, project, inputs):
    inputs.snapshot = Snapshot(
        inputs.snapshot.root,
        {"train.py": {"sha256": "0" * 64, "size": 400 * 1024 * 1024}},
    )
    backend = make_backend(service, project)
    backend.check_config()

    with pytest.raises(UsageError, match="snapshot too large"):
        backend.submit(inputs, make_submission(inputs, REFERENCE))
    assert service.calls_to("upload_file") == []
    assert service.calls_to("submit") == []


# ---------------------------------------------------------------------------
# Workspace configuration


def test_no_config_one_line(service, tmp_path):
    backend = AzureMLBackend(service=service, environ=SERVICE_PRINCIPAL, cwd=tmp_path)

    with pytest.raises(RemoteError) as failure:
        backend.check_config()

    message = str(failure.value)
    assert "\n" not in message
    assert "config.json" in message
    assert "Download config.json" in message
    assert "TARGET=emulated" in message
    assert service.calls == []


def test_config_not_json(service, tmp_path):
    (tmp_path / "config.json").write_text("{'subscription_id': ")
    backend = AzureMLBackend(service=service, environ=SERVICE_PRINCIPAL, cwd=tmp_path)

    with pytest.raises(RemoteError) as failure:
        backend.check_config()

    message = str(failure.value)
    assert "\n" not in message
    assert "config.json: not valid JSON (line 1" in message


def test_config_missing_keys(tmp_path):
    (tmp_path / "config.json").write_text(
        json.dumps({"subscription_id": "s", "workspace_name": " "})
    )

    with pytest.raises(RemoteError) as failure:
        find_workspace_config({}, tmp_path)

    message = str(failure.value)
    assert "\n" not in message
    assert "missing resource_group, workspace_name" in message


def test_config_in_azureml_folder(tmp_path):
    (tmp_path / ".azureml").mkdir()
    write_workspace_config(tmp_path / ".azureml", workspace="from-dot-azureml")

    workspace = find_workspace_config({}, tmp_path)

    assert workspace.workspace_name == "from-dot-azureml"
    assert workspace.source == str(tmp_path / ".azureml" / "config.json")


def test_config_scope_form(tmp_path):
    scope = (
        "/subscriptions/sub-1/resourceGroups/rg-1/providers/"
        "Microsoft.MachineLearningServices/workspaces/ws-1"
    )
    (tmp_path / "config.json").write_text(json.dumps({"Scope": scope}))

    workspace = find_workspace_config({}, tmp_path)

    assert (
        workspace.subscription_id,
        workspace.resource_group,
        workspace.workspace_name,
    ) == ("sub-1", "rg-1", "ws-1")


def test_config_path_variable(tmp_path):
    path = write_workspace_config(tmp_path, workspace="named")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()

    workspace = find_workspace_config(
        {"AZUREML_CONFIG": str(path)}, elsewhere
    )

    assert workspace.workspace_name == "named"


def test_config_path_variable_missing_file(tmp_path):
    with pytest.raises(
        RemoteError, match="AZUREML_CONFIG=nowhere.json: file not found"
    ):
        find_workspace_config({"AZUREML_CONFIG": "nowhere.json"}, tmp_path)


def test_config_from_variables(tmp_path):
    environ = {
        "AZUREML_SUBSCRIPTION_ID": "sub-2",
        "AZUREML_RESOURCE_GROUP": "rg-2",
        "AZUREML_WORKSPACE_NAME": "ws-2",
    }
    write_workspace_config(tmp_path, workspace="file-loses")

    workspace = find_workspace_config(environ, tmp_path)

    assert workspace.workspace_name == "ws-2"
    assert workspace.source == "environment variables"


def test_config_partial_variables(tmp_path):
    environ = {"AZUREML_SUBSCRIPTION_ID": "sub-2"}

    with pytest.raises(RemoteError) as failure:
        find_workspace_config(environ, tmp_path)

    assert "AZUREML_RESOURCE_GROUP, AZUREML_WORKSPACE_NAME missing" in str(
        failure.value
    )


# ---------------------------------------------------------------------------
# Credentials


def test_no_credentials_never_prompts(service, project, monkeypatch):
    def prompt(*args, **kwargs):
        raise AssertionError("InteractiveLoginAuthentication must not be created")

    monkeypatch.setattr(azureml_v1.objects, "InteractiveLoginAuthentication", prompt)
    backend = AzureMLBackend(service=service, environ={}, cwd=project)

    with pytest.raises(RemoteError) as failure:
        backend.check_config()

    message = str(failure.value)
    assert "\n" not in message
    assert "AZURE_CLIENT_SECRET" in message
    assert "az login" in message
    assert service.calls == []


def test_interactive_only_with_terminal():
    assert (
        credentials.choose_credential({}, allow_interactive=True)
        == credentials.INTERACTIVE
    )
    with pytest.raises(RemoteError):
        credentials.choose_credential({}, allow_interactive=False)


def test_interactive_auth_rejected_without_terminal():
    with pytest.raises(RemoteError, match="no Azure credentials"):
        azureml_v1.build_auth(credentials.INTERACTIVE, {})


def test_service_principal_auth():
    kind = credentials.choose_credential(SERVICE_PRINCIPAL)

    auth = azureml_v1.build_auth(kind, SERVICE_PRINCIPAL)

    assert kind == credentials.SERVICE_PRINCIPAL
    assert isinstance(auth, ServicePrincipalAuthentication)


def test_service_principal_half_configured():
    environ = {"AZURE_CLIENT_SECRET": "s", "AZURE_CLIENT_ID": "c"}

    with pytest.raises(RemoteError, match="AZURE_TENANT_ID missing"):
        credentials.choose_credential(environ)


def test_managed_identity_auth():
    environ = {
        "IDENTITY_ENDPOINT": "http://127.0.0.1:40342/metadata/identity/oauth2/token",
        "AZURE_CLIENT_ID": "user-assigned",
    }

    kind = credentials.choose_credential(environ)
    auth = azureml_v1.build_auth(kind, environ)

    assert kind == credentials.MANAGED_IDENTITY
    assert isinstance(auth, MsiAuthentication)
    assert auth._identity_config == {"client_id": "user-assigned"}


def test_cli_auth_without_azure_cli_package(tmp_path, monkeypatch):
    az = tmp_path / "bin" / "az"
    az.parent.mkdir()
    az.write_text("#!/bin/sh\nexit 1\n")
    az.chmod(0o755)
    monkeypatch.setenv("PATH", str(az.parent))

    kind = credentials.choose_credential({})
    auth = azureml_v1.build_auth(kind, {})

    assert kind == credentials.AZURE_CLI
    # azure-cli is not installed in this interpreter, so the az program is used.
    assert isinstance(auth, TokenAuthentication)


def test_connect_bounded_wait(monkeypatch):
    release = threading.Event()

    def hang(*args, **kwargs):
        release.wait(10)

    monkeypatch.setattr(azureml_v1.service.Workspace, "get", staticmethod(hang))
    service = AzureMLService(timeout=0.2)
    workspace = find_workspace_config(
        {
            "AZUREML_SUBSCRIPTION_ID": "s",
            "AZUREML_RESOURCE_GROUP": "rg",
            "AZUREML_WORKSPACE_NAME": "ws",
        }
    )

    try:
        with pytest.raises(RemoteError) as failure:
            service.connect(
                workspace, credentials.SERVICE_PRINCIPAL, SERVICE_PRINCIPAL
            )
    finally:
        release.set()

    message = str(failure.value)
    assert "\n" not in message
    assert "timed out after 0.2 s" in message
    assert "TARGET=emulated" in message


def test_connect_error_one_line(monkeypatch):
    def refuse(*args, **kwargs):
        raise Exception(
            "AuthenticationException:\n\tMessage: AADSTS7000215: Invalid client "
            "secret\n\tDetails: https://login.example.net/x?code=sensitive"
        )

    monkeypatch.setattr(azureml_v1.service.Workspace, "get", staticmethod(refuse))
    workspace = WorkspaceConfig("s", "rg", "ws", "environment variables")

    with pytest.raises(RemoteError) as failure:
        AzureMLService().connect(
            workspace, credentials.SERVICE_PRINCIPAL, SERVICE_PRINCIPAL
        )

    message = str(failure.value)
    assert "\n" not in message
    assert "opening workspace ws" in message
    assert "AuthenticationException" in message


def test_secrets_never_logged(service, project, inputs, caplog):
    caplog.set_level(logging.DEBUG)
    registry = {
        "AZUREML_REGISTRY": "registry.example.net",
        "AZUREML_REGISTRY_USERNAME": "pusher",
        "AZUREML_REGISTRY_PASSWORD": "registry-password",
    }
    backend = make_backend(service, project, **registry)
    backend.check_config()
    reference = backend.push(FakeDockerClient(), inputs)
    run = backend.submit(inputs, make_submission(inputs, reference))
    run.new_log_lines()

    assert "sp-secret-value" not in caplog.text
    assert "registry-password" not in caplog.text
    assert "AZURE_CLIENT_SECRET=<set>" in caplog.text
    assert "sig=secret" not in caplog.text


# ---------------------------------------------------------------------------
# Settings and compute


def test_missing_compute_names_it(service, project):
    backend = make_backend(service, project, AZUREML_COMPUTE="gpu-box")

    with pytest.raises(RemoteError) as failure:
        backend.check_config()

    message = str(failure.value)
    assert "\n" not in message
    assert "'gpu-box' not found in workspace harness-ws" in message
    assert "CREATE_COMPUTE=1" in message
    assert service.calls_to("create_compute") == []


def test_create_compute_on_request(service, project):
    backend = make_backend(
        service, project, AZUREML_COMPUTE="harness-cpu", CREATE_COMPUTE="1"
    )

    backend.check_config()

    ((name, provisioning),) = service.calls_to("create_compute")
    assert name == "harness-cpu"
    assert provisioning.scale_settings.minimum_node_count == 0
    assert provisioning.scale_settings.maximum_node_count == 1
    assert provisioning.scale_settings.idle_seconds_before_scaledown == 1800
    assert provisioning.vm_size == "STANDARD_DS3_V2"


def test_settings_defaults():
    settings = TargetSettings.from_environ({})

    assert settings.compute == "cpu-cluster"
    assert settings.experiment == "arima-parity"
    assert settings.registry is None
    assert settings.create_compute is False
    assert settings.conda is False


@pytest.mark.parametrize(
    "variables, fragment",
    [
        ({"ENV_MODE": "docker"}, "ENV_MODE='docker' is not known"),
        ({"CREATE_COMPUTE": "please"}, "CREATE_COMPUTE='please' is not known"),
        (
            {"AZUREML_REGISTRY": "r.example.net", "AZUREML_REGISTRY_USERNAME": "u"},
            "AZUREML_REGISTRY_PASSWORD is missing",
        ),
        (
            {"AZUREML_REGISTRY_USERNAME": "u", "AZUREML_REGISTRY_PASSWORD": "p"},
            "AZUREML_REGISTRY is not",
        ),
    ],
)
def test_settings_rejected(variables, fragment):
    with pytest.raises(UsageError, match=fragment):
        TargetSettings.from_environ(variables)


def test_registry_login_repr_hides_password():
    login = RegistryLogin("r.example.net", "u", "hunter2")

    assert "hunter2" not in repr(login)
    assert login.auth_config() == {"username": "u", "password": "hunter2"}


# ---------------------------------------------------------------------------
# Push


def test_push_to_workspace_registry(service, project, inputs):
    docker = FakeDockerClient()
    backend = make_backend(service, project)
    backend.check_config()

    reference = backend.push(docker, inputs)

    assert reference == f"harnessws.azurecr.io/harness/arima-env@{docker.digest}"
    assert docker.pushes[0]["repository"] == "harnessws.azurecr.io/harness/arima-env"
    assert docker.pushes[0]["auth_config"] == WORKSPACE_REGISTRY.auth_config()


def test_push_to_named_registry(service, project, inputs):
    docker = FakeDockerClient()
    backend = make_backend(
        service,
        project,
        AZUREML_REGISTRY="registry.example.net",
        AZUREML_REGISTRY_USERNAME="pusher",
        AZUREML_REGISTRY_PASSWORD="registry-password",
    )
    backend.check_config()

    reference = backend.push(docker, inputs)
    run, script_config = submitted(service, backend, inputs, reference)

    assert reference.startswith("registry.example.net/harness/arima-env@sha256:")
    assert docker.pushes[0]["auth_config"] == {
        "username": "pusher",
        "password": "registry-password",
    }
    assert service.calls_to("workspace_registry") == []
    registry = script_config.run_config.environment.docker.base_image_registry
    assert registry.address == "registry.example.net"
    assert registry.password == "registry-password"


def test_push_without_workspace_registry(project, inputs):
    service = FakeAzureMLService(registry=None)
    backend = make_backend(service, project)
    backend.check_config()

    with pytest.raises(
        RemoteError, match="has no container registry yet; set AZUREML_REGISTRY"
    ):
        backend.push(FakeDockerClient(), inputs)


def test_push_refused_suggests_acr_login(project, inputs):
    service = FakeAzureMLService(registry=RegistryLogin("harnessws.azurecr.io"))
    docker = FakeDockerClient()

    def refuse(*args, **kwargs):
        yield {"error": "unauthorized: authentication required"}

    docker.api.push = refuse
    backend = make_backend(service, project)
    backend.check_config()

    with pytest.raises(RegistryError, match="az acr login --name harnessws"):
        backend.push(docker, inputs)


# ---------------------------------------------------------------------------
# Runs: download, logs, re-attach, cancel


def test_download_returns_record(service, project, inputs, tmp_path):
    run, _config = submitted(service, make_backend(service, project), inputs)
    outputs, logs = tmp_path / "run" / "outputs", tmp_path / "run" / "logs"
    outputs.mkdir(parents=True)
    logs.mkdir()

    record = run.download(outputs, logs)

    assert run.status() == "Completed"
    assert set(record["outputs"]) == {
        "model.json",
        "metric.json",
        "models/arima_model.pkl",
    }
    assert (
        outputs / "models" / "arima_model.pkl"
    ).read_bytes() == b"\x80\x04fake pickle"
    assert (logs / "harness" / "record.json").is_file()
    assert (logs / JOB_LOG).read_text().startswith("probing the container")
    assert sorted(p.name for p in outputs.iterdir()) == [
        "metric.json",
        "model.json",
        "models",
    ]


def test_download_missing_output(service, project, inputs, tmp_path):
    def lose_metric(job):
        files = job_files()
        del files["outputs/metric.json"]
        job.files.update(files)
        job.status = "Completed"

    service.run_job = lose_metric
    run, _config = submitted(service, make_backend(service, project), inputs)

    with pytest.raises(DownloadError, match="outputs/metric.json .*missing"):
        run.download(tmp_path / "outputs", tmp_path / "logs")


def test_download_empty_output(service, project, inputs, tmp_path):
    def empty_model(job):
        files = job_files()
        files["outputs/model.json"] = b""
        job.files.update(files)
        job.status = "Completed"

    service.run_job = empty_model
    run, _config = submitted(service, make_backend(service, project), inputs)

    with pytest.raises(DownloadError, match="outputs/model.json came back empty"):
        run.download(tmp_path / "outputs", tmp_path / "logs")


def test_download_without_record(service, project, inputs, tmp_path):
    def no_record(job):
        files = job_files()
        del files[RECORD]
        job.files.update(files)
        job.status = "Completed"

    service.run_job = no_record
    run, _config = submitted(service, make_backend(service, project), inputs)

    assert run.download(tmp_path / "outputs", tmp_path / "logs") == {}


def test_log_lines_incremental(service, project, inputs):
    def running(job):
        job.files[JOB_LOG] = b"line 1\nline 2\nline 3 being wri"
        job.status = "Running"

    service.run_job = running
    run, _config = submitted(service, make_backend(service, project), inputs)

    first = run.new_log_lines()
    service.jobs[run.run_id].files[JOB_LOG] += b"tten\nline 4\n"
    second = run.new_log_lines()
    third = run.new_log_lines()

    assert first == ["line 1", "line 2"]
    assert second == ["line 3 being written", "line 4"]
    assert third == []


def test_log_lines_before_log_exists(service, project, inputs):
    def queued(job):
        job.status = "Queued"

    service.run_job = queued
    run, _config = submitted(service, make_backend(service, project), inputs)

    assert run.new_log_lines() == []


def test_error_tail_one_line(service, project, inputs):
    def crash(job):
        lines = [f"step {i}" for i in range(30)] + [
            "ValueError: order must have 3 parts"
        ]
        job.files[JOB_LOG] = ("\n".join(lines) + "\n").encode()
        job.error = "UserError: Execution failed with exit code 1"
        job.status = "Failed"

    service.run_job = crash
    run, _config = submitted(service, make_backend(service, project), inputs)

    tail = run.error_tail()

    assert "\n" not in tail
    assert tail.startswith("UserError: Execution failed with exit code 1 | ")
    assert tail.endswith("ValueError: order must have 3 parts")
    assert "step 20" not in tail


def test_manifest_extra(service, project, inputs):
    run, _config = submitted(service, make_backend(service, project), inputs)

    extra = run.manifest_extra()

    assert extra["workspace"] == "harness-ws"
    assert extra["experiment"] == "arima-parity"
    assert extra["run_id"] == run.run_id
    assert extra["portal_url"] == f"https://ml.azure.com/runs/{run.run_id}"
    assert extra["environment"] == {"name": "harness-0123456789abcdef", "version": "1"}
    assert extra["image_digest"] == DIGEST
    assert extra["compute_target"] == "cpu-cluster"
    assert extra["pinned"] is True
    assert extra["sdk"].startswith("azureml-core 1.")


def test_attach_restores_facts(service, project, inputs):
    run, _config = submitted(service, make_backend(service, project), inputs)
    later = make_backend(service, project)

    attached = later.attach(run.run_id)

    assert attached.run_id == run.run_id
    assert attached.manifest_extra() == run.manifest_extra()
    assert (
        later.reattach_hint(run.run_id)
        == f"make cloud-train TARGET=azureml RUN={run.run_id}"
    )


def test_attach_unknown_run(service, project):
    with pytest.raises(RemoteError, match="run nope not found"):
        make_backend(service, project).attach("nope")


def test_cancel_only_on_request(service, project, inputs):
    backend = make_backend(service, project)
    run, _config = submitted(service, backend, inputs)
    run.download(project / "outputs", project / "logs")
    assert service.calls_to("cancel") == []

    backend.cancel(run.run_id)

    assert service.calls_to("cancel") == [(run.run_id,)]
    assert run.status() == "Canceled"


# ---------------------------------------------------------------------------
# ENV_MODE=conda


def test_conda_mode_builds_from_spec(service, project, inputs):
    docker = FakeDockerClient()
    backend = make_backend(service, project, ENV_MODE="conda")
    backend.check_config()

    reference = backend.push(docker, inputs)
    run = backend.submit(inputs, make_submission(inputs, reference))
    ((_experiment, script_config, _tags),) = service.calls_to("submit")
    environment = script_config.run_config.environment
    dependencies = environment.python.conda_dependencies

    assert reference == ""
    assert docker.pushes == []
    assert environment.name == f"harness-conda-{inputs.spec.sha256[:16]}"
    assert environment.python.user_managed_dependencies is False
    assert "statsmodels==0.15.0" in list(dependencies.pip_packages)
    assert script_config.command.startswith(
        'python train.py --input "$AZUREML_DATAREFERENCE_data"'
    )
    assert ENTRY_POINT not in script_config.command
    assert run.manifest_extra()["pinned"] is False
    assert run.manifest_extra()["image_digest"] is None


def test_conda_environment_reused(service, project, inputs):
    backend = make_backend(service, project, ENV_MODE="conda")
    backend.check_config()

    backend.ensure_conda_environment(inputs.spec.path, inputs.spec.sha256)
    backend.ensure_conda_environment(inputs.spec.path, inputs.spec.sha256)

    assert len(service.calls_to("register_environment")) == 1


# ---------------------------------------------------------------------------
# Shared helpers


def test_strip_query_removes_tokens():
    text = "GET https://acct.blob.core.windows.net/c/b.txt?sv=2021&sig=abc failed"

    assert (
        strip_query(text)
        == "GET https://acct.blob.core.windows.net/c/b.txt failed"
    )


@pytest.mark.parametrize(
    "names, expected",
    [
        (["system_logs/x.txt", "user_logs/std_log.txt"], "user_logs/std_log.txt"),
        (
            ["user_logs/std_log_process_0.txt", "user_logs/std_log_process_1.txt"],
            "user_logs/std_log_process_0.txt",
        ),
        (
            ["azureml-logs/55_azureml-execution.txt", "azureml-logs/70_driver_log.txt"],
            "azureml-logs/70_driver_log.txt",
        ),
        (["system_logs/lifecycler/execution-wrapper.log"], None),
    ],
)
def test_select_job_log(names, expected):
    assert select_job_log(names) == expected


def test_module_imports_no_sdk():
    code = (
        "import sys; import harness.remote.azure_common.backend, "
        "harness.remote.azure_common.credentials, harness.remote.azure_common.runs, "
        "harness.remote.azure_common.service, harness.remote.azure_common.settings, "
        "harness.remote.azure_common.workspace; "
        "print(any(m.startswith(('azureml', 'azure.ai', 'azure.identity')) "
        "for m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(Path(credentials.__file__).parents[3])},
        check=True,
        timeout=60,
    )

    assert result.stdout.strip() == "False"


def test_environment_class_is_azureml_core():
    # The backend's objects must be the SDK's own, so the service can submit them.
    assert azureml_v1.objects.Environment is Environment
