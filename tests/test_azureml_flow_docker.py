"""The whole TARGET=azureml and azureml-v2 flows through fake services that run the job locally.

Configuration, push (to a real registry on 127.0.0.1 named as the user's
registry), environment registration, data upload, submission, waiting,
download and the manifest all run the backend's real code; only the service
seam is fake. Its ``run_job`` starts the registered environment's base image by
digest, runs the submitted shell command with the data reference resolved, and
keeps the files the way Azure ML keeps a run's files.
"""

from __future__ import annotations

import io
import json
import tarfile
from argparse import Namespace
from pathlib import Path

import pytest

from conftest import DATA_2013, ROOT, SPEC
from fakes_azure import JOB_LOG, RECORD, FakeAzureMLService, FakeAzureMLV2Service, FakeJob
from harness.local import run_local
from harness.parity import compare_runs
from harness.remote.azureml_v1 import AzureMLBackend
from harness.remote.azureml_v2 import AzureMLV2Backend
from harness.remote.emulated import _job_archive
from harness.remote.flow import cloud_train
from harness.remote.registry import ensure_local_registry
from harness.runfolder import new_run_id
from harness.snapshot import take_snapshot

pytestmark = pytest.mark.docker

WORKSPACE = {
    "AZUREML_SUBSCRIPTION_ID": "00000000-0000-0000-0000-000000000000",
    "AZUREML_RESOURCE_GROUP": "harness-rg",
    "AZUREML_WORKSPACE_NAME": "harness-ws",
    "AZURE_TENANT_ID": "tenant-1",
    "AZURE_CLIENT_ID": "client-1",
    "AZURE_CLIENT_SECRET": "sp-secret-value",
    "AZUREML_REGISTRY_USERNAME": "harness",
    "AZUREML_REGISTRY_PASSWORD": "registry-secret",
}


def run_in_engine(client, job: FakeJob, image: str, command: str, environment: dict,
                  files: dict[str, Path], collect: dict[str, str]) -> None:
    """Run ``command`` in a shell in ``image`` with ``files`` copied under /mnt/job.

    ``collect`` maps folders in the container to the prefixes under which the
    job keeps their files, as Azure ML keeps a run's files.
    """
    client.images.pull(image)  # as a compute node does: by digest, from the registry
    container = client.containers.create(
        image, entrypoint=["bash", "-c", command], environment=environment,
        working_dir="/mnt/job/snapshot", user="1000:1000", network_mode="none",
    )
    try:
        container.put_archive("/mnt", _job_archive(files))
        container.start()
        exit_code = container.wait()["StatusCode"]
        job.files[JOB_LOG] = container.logs()
        for source, prefix in collect.items():
            job.files.update(_files_of(container, source, prefix))
    finally:
        container.remove(force=True)
    job.status = "Completed" if exit_code == 0 else "Failed"


class DockerAzureMLService(FakeAzureMLService):
    """A fake v1 service whose jobs really run, in the local Docker engine."""

    def __init__(self, client, **kwargs):
        super().__init__(**kwargs)
        self.client = client

    def run_job(self, job: FakeJob) -> None:
        config = job.definition
        (_, path), data = next(iter(self.blobs.items()))
        data_file = ROOT / "data" / path.rsplit("/", 1)[-1]
        assert data_file.read_bytes() == data
        environment = {
            **config.run_config.environment_variables,
            "AZUREML_DATAREFERENCE_data": f"/mnt/job/data/{data_file.name}",
        }
        files = {**snapshot_files(config.source_directory), f"data/{data_file.name}": data_file}
        run_in_engine(self.client, job, config.run_config.environment.docker.base_image,
                      config.command, environment, files,
                      {"/mnt/job/snapshot/outputs": "outputs", "/mnt/job/snapshot/logs": "logs"})


class DockerAzureMLV2Service(FakeAzureMLV2Service):
    """A fake v2 service whose command jobs really run, in the local Docker engine."""

    def __init__(self, client, **kwargs):
        super().__init__(**kwargs)
        self.client = client

    def run_job(self, job: FakeJob) -> None:
        definition = job.definition
        _, name, version = definition.environment.split(":")
        data = next(iter(self.uploads.values()))
        data_file = next(p for p in (ROOT / "data").glob("*.csv") if p.read_bytes() == data)
        command = (definition.command
                   .replace("${{inputs.data}}", f"/mnt/job/data/{data_file.name}")
                   .replace("${{outputs.output}}", "/mnt/job/out/output")
                   .replace("${{outputs.harness}}", "/mnt/job/out/harness"))
        files = {**snapshot_files(definition.code), f"data/{data_file.name}": data_file}
        run_in_engine(self.client, job, self.environments[(name, version)].image,
                      f"mkdir -p /mnt/job/out/output /mnt/job/out/harness && {command}",
                      dict(definition.environment_variables), files,
                      {"/mnt/job/out/output": "outputs", "/mnt/job/out/harness": "harness"})
        job.files[RECORD] = job.files.pop("harness/record.json")


def snapshot_files(source_directory) -> dict[str, Path]:
    """Return the job's snapshot as Azure ML would upload it: the folder minus ignored files."""
    snapshot = take_snapshot(Path(source_directory))
    return {f"snapshot/{name}": snapshot.root / name for name in snapshot.files}


def _files_of(container, source: str, prefix: str) -> dict[str, bytes]:
    stream, _ = container.get_archive(source)
    found = {}
    with tarfile.open(fileobj=io.BytesIO(b"".join(stream))) as tar:
        for member in tar.getmembers():
            if member.isfile():
                name = member.name.split("/", 1)[1]
                found[f"{prefix}/{name}"] = tar.extractfile(member).read()
    return found


@pytest.fixture
def azure_run(docker_client, tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)
    monkeypatch.setattr("harness.paths.RUNS", tmp_path / "runs")
    registry = ensure_local_registry()
    service = DockerAzureMLService(docker_client)
    backend = AzureMLBackend(service=service,
                             environ={**WORKSPACE, "AZUREML_REGISTRY": registry}, cwd=tmp_path)
    args = Namespace(env=SPEC, data=DATA_2013, script=ROOT / "scripts", out=tmp_path / "azure",
                     args=[], determinism="on", pass_env=[], cpu=None, run=None)
    return cloud_train(args, backend), service, registry


@pytest.fixture
def azure_v2_run(docker_client, tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)
    monkeypatch.setattr("harness.paths.RUNS", tmp_path / "runs")
    registry = ensure_local_registry()
    service = DockerAzureMLV2Service(docker_client)
    backend = AzureMLV2Backend(service=service,
                               environ={**WORKSPACE, "AZUREML_REGISTRY": registry},
                               cwd=tmp_path)
    args = Namespace(env=SPEC, data=DATA_2013, script=ROOT / "scripts",
                     out=tmp_path / "azure-v2", args=[], determinism="on", pass_env=[],
                     cpu=None, run=None)
    return cloud_train(args, backend), service, registry


def test_azureml_flow_writes_run_folder(azure_run):
    folder, _, registry = azure_run
    manifest = json.loads((folder / "manifest.json").read_text())
    remote = manifest["remote"]
    assert manifest["target"] == "azureml"
    assert manifest["image"]["digest"].startswith(f"{registry}/")
    assert "@sha256:" in manifest["image"]["digest"]
    assert remote["workspace"] == "harness-ws"
    assert remote["compute_target"] == "cpu-cluster"
    assert remote["pinned"] is True
    assert (folder / "outputs" / "model.json").exists()


def test_azureml_flow_calls_service_in_order(azure_run):
    _, service, _ = azure_run
    order = [name for name, _ in service.calls]
    for earlier, later in [("connect", "get_compute"), ("register_environment", "submit"),
                           ("upload_file", "submit"), ("submit", "download_files")]:
        assert order.index(earlier) < order.index(later)


def test_azureml_flow_keeps_secrets_out(azure_run):
    folder, _, _ = azure_run
    text = (folder / "manifest.json").read_text()
    assert "registry-secret" not in text
    assert "sp-secret-value" not in text


def test_azureml_run_matches_local(azure_run, docker_client, run_inputs, tmp_path):
    folder, _, _ = azure_run
    local = run_local(docker_client, run_inputs, tmp_path / "local", new_run_id())
    assert compare_runs(local, folder).exit_code == 0


def test_azureml_v2_flow_writes_run_folder(azure_v2_run):
    folder, _, registry = azure_v2_run
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["target"] == "azureml-v2"
    assert manifest["image"]["digest"].startswith(f"{registry}/")
    assert manifest["remote"]["workspace"] == "harness-ws"
    assert sorted(manifest["outputs"]) == sorted(
        p.relative_to(folder / "outputs").as_posix()
        for p in (folder / "outputs").rglob("*") if p.is_file())


def test_azureml_v2_run_matches_local(azure_v2_run, docker_client, run_inputs, tmp_path):
    folder, _, _ = azure_v2_run
    local = run_local(docker_client, run_inputs, tmp_path / "local", new_run_id())
    assert compare_runs(local, folder).exit_code == 0
