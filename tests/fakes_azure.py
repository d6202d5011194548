"""In-memory fakes of the two Azure ML service seams, so that no test reaches Azure.

:class:`FakeAzureMLService` has the methods of ``azureml_v1.AzureMLService`` and
:class:`FakeAzureMLV2Service` those of ``azureml_v2.AzureMLV2Service``. Both
record every call in ``calls`` as ``(method name, arguments)`` and keep
registered environments, uploaded data, computes and jobs in memory. The SDK
objects the backends build (Environment, ScriptRunConfig, command job) are
stored as they arrive, so tests can read them back.

Running a job: ``submit`` stores a :class:`FakeJob` and calls ``run_job(job)``.
The default ``run_job`` pretends the job succeeded. A replacement, such as one
that runs the image in the local Docker engine, must set ``job.status`` to a
terminal state and fill ``job.files`` with paths as Azure ML keeps them for a
run:

* ``outputs/<path>``: what the script wrote into its ``--output`` folder;
* ``logs/harness/record.json``: the entry point's record, whose ``"outputs"``
  lists the sha256 and size of every output (see :func:`job_files`);
* ``user_logs/std_log.txt``: the job's stdout and stderr.

Downloads serve these files in each SDK's layout. For v1 they are ``outputs/``
and ``logs/`` without the prefix, plus the log files. For v2 they are
``named-outputs/output/``, ``named-outputs/harness/record.json`` and
``artifacts/<everything else>``.
"""

from __future__ import annotations

import hashlib
import itertools
import json
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace

from azureml.core import Workspace
from azureml.data.azure_storage_datastore import AzureBlobDatastore

from harness import profile
from harness.base import BaseImage
from harness.errors import RemoteError
from harness.image import Image
from harness.lock import Lock
from harness.manifest import RunInputs
from harness.remote.azure_common.settings import RegistryLogin
from harness.remote.base import Submission
from harness.runfolder import file_sha256
from harness.snapshot import take_snapshot
from harness.spec import Spec

WORKSPACE_REGISTRY = RegistryLogin(
    "harnessws.azurecr.io", "harnessws", "acr-admin-password"
)
FINGERPRINT = "0123456789abcdef" + "e" * 48
USER_ARGUMENTS = ["--order", "2,0,2", "--title", "sales & returns"]
JOB_LOG = "user_logs/std_log.txt"
RECORD = "logs/harness/record.json"

# Outputs of the default run_job: the files train.py writes, in small form.
DEFAULT_OUTPUTS = {
    "model.json": b'{"order": [2, 0, 2], "params": {"ar.L1": 0.43}}\n',
    "metric.json": b'{"RMSE": 511.0755}\n',
    "models/arima_model.pkl": b"\x80\x04fake pickle",
}
DEFAULT_LOG = "probing the container\nfitting ARIMA(2,0,2)\nRMSE 511.0755\n"


def job_files(
    outputs: dict[str, bytes] | None = None,
    log: str = DEFAULT_LOG,
    record_outputs: dict[str, bytes] | None = None,
) -> dict[str, bytes]:
    """Return a finished job's files: outputs, the entry point's record, the job log.

    ``record_outputs`` is what the record lists; it defaults to ``outputs``.
    Passing something else makes the downloaded files disagree with the record.
    """
    outputs = DEFAULT_OUTPUTS if outputs is None else outputs
    listed = outputs if record_outputs is None else record_outputs
    record = {
        "exit_code": 0,
        "container": {"python": "3.11.9", "machine": "x86_64"},
        "image": {"fingerprint": "f" * 64},
        "outputs": {
            name: {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}
            for name, data in sorted(listed.items())
        },
    }
    files = {f"outputs/{name}": data for name, data in outputs.items()}
    files[RECORD] = json.dumps(record).encode()
    files[JOB_LOG] = log.encode()
    return files


@dataclass
class FakeJob:
    """A submitted job.

    v1 reads ``id`` and ``experiment``. v2 reads ``name``, ``studio_url`` and the rest.
    """

    id: str
    experiment_name: str
    definition: object  # the ScriptRunConfig (v1) or command job (v2) as submitted
    tags: dict[str, str]
    compute: str | None = None
    status: str = "Queued"
    files: dict[str, bytes] = field(default_factory=dict)
    error: str | None = None

    @property
    def name(self) -> str:
        return self.id

    @property
    def experiment(self):
        return SimpleNamespace(name=self.experiment_name)

    @property
    def studio_url(self) -> str:
        # Azure ML appends the workspace id as a query string; the run must strip it.
        workspace = "/subscriptions/sub/workspaces/ws"
        return f"https://ml.azure.com/runs/{self.id}?wsid={workspace}&tid=t"

    def log_names(self) -> list[str]:
        return [
            name
            for name in self.files
            if name.startswith(("user_logs/", "azureml-logs/"))
        ]


class _FakeService:
    """State and call recording shared by both fakes."""

    def __init__(
        self,
        workspace_name: str = "harness-ws",
        computes=("cpu-cluster",),
        registry: RegistryLogin | None = WORKSPACE_REGISTRY,
    ):
        self.workspace_name = workspace_name
        self.registry = registry
        self.computes: dict[str, object] = {
            name: SimpleNamespace(name=name) for name in computes
        }
        self.jobs: dict[str, FakeJob] = {}
        self.calls: list[tuple[str, tuple]] = []
        self.connected = None
        self._ids = itertools.count(1)

    def calls_to(self, method: str) -> list[tuple]:
        return [arguments for name, arguments in self.calls if name == method]

    def connect(self, workspace, credential, environ=None) -> None:
        self._record("connect", workspace, credential)
        self.connected = (workspace, credential)

    def workspace_registry(self):
        self._record("workspace_registry")
        return self.registry

    def get_compute(self, name):
        self._record("get_compute", name)
        return self.computes.get(name)

    def run_job(self, job: FakeJob) -> None:
        """Pretend the job ran and succeeded (replace this to run it for real)."""
        job.files.update(job_files())
        job.status = "Completed"

    def _record(self, method: str, *arguments) -> None:
        self.calls.append((method, arguments))

    def _job(self, job_id: str) -> FakeJob:
        if job_id not in self.jobs:
            raise RemoteError(
                f"run {job_id} not found in workspace {self.workspace_name}"
            )
        return self.jobs[job_id]

    def _new_job(self, experiment: str, definition, tags, compute) -> FakeJob:
        job = FakeJob(
            f"{experiment}_{next(self._ids)}",
            experiment,
            definition,
            dict(tags),
            compute,
        )
        self.jobs[job.id] = job
        self.run_job(job)
        return job

    def _log_urls(self, job: FakeJob) -> dict[str, str]:
        return {
            name: f"https://logs.invalid/{job.id}/{name}?sig=secret"
            for name in job.log_names()
        }

    def _read_log(self, url: str) -> str:
        job_id, name = (
            url.split("?", 1)[0].removeprefix("https://logs.invalid/").split("/", 1)
        )
        return self.jobs[job_id].files[name].decode()


def fake_v1_workspace(name: str = "harness-ws") -> Workspace:
    """Return a Workspace that was never looked up.

    azureml-core builds a Workspace only by asking the service, but a datastore
    object needs one. Nothing here calls the service through it.
    """
    workspace = Workspace.__new__(Workspace)
    workspace._workspace_name = name
    workspace._subscription_id = "00000000-0000-0000-0000-000000000000"
    workspace._resource_group = "harness-rg"
    return workspace


class FakeAzureMLService(_FakeService):
    """Fake of ``azureml_v1.AzureMLService``."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.environments: dict[str, list] = {}
        self.blobs: dict[tuple[str, str], bytes] = {}
        self.datastore = AzureBlobDatastore(
            fake_v1_workspace(self.workspace_name),
            "workspaceblobstore",
            "azureml-blobstore",
            "harnesssa",
        )
        self.lose_uploads = False

    def create_compute(self, name, provisioning_config) -> None:
        self._record("create_compute", name, provisioning_config)
        self.computes[name] = provisioning_config

    def get_environment(self, name):
        self._record("get_environment", name)
        versions = self.environments.get(name)
        return versions[-1] if versions else None

    def register_environment(self, environment):
        self._record("register_environment", environment)
        versions = self.environments.setdefault(environment.name, [])
        environment.version = str(len(versions) + 1)
        versions.append(environment)
        return environment

    def default_datastore(self):
        self._record("default_datastore")
        return self.datastore

    def datastore_file_exists(self, datastore, path) -> bool:
        self._record("datastore_file_exists", datastore.name, path)
        return (datastore.name, path) in self.blobs

    def upload_file(self, datastore, local_path: Path, target_folder: str) -> None:
        self._record("upload_file", datastore.name, local_path, target_folder)
        if not self.lose_uploads:
            self.blobs[(datastore.name, f"{target_folder}/{local_path.name}")] = (
                local_path.read_bytes()
            )

    def submit(self, experiment, run_config, tags):
        self._record("submit", experiment, run_config, tags)
        return self._new_job(experiment, run_config, tags, run_config.run_config.target)

    def get_run(self, run_id):
        self._record("get_run", run_id)
        return self._job(run_id)

    def run_status(self, run) -> str:
        self._record("run_status", run.id)
        return run.status

    def portal_url(self, run) -> str:
        return run.studio_url

    def run_tags(self, run) -> dict:
        return dict(run.tags)

    def run_error(self, run):
        return run.error

    def log_files(self, run) -> dict[str, str]:
        return self._log_urls(run)

    def read_log(self, url: str) -> str:
        return self._read_log(url)

    def download_files(self, run, prefix: str, directory: Path) -> None:
        self._record("download_files", run.id, prefix, directory)
        for name, data in run.files.items():
            if name.startswith(prefix + "/"):
                target = Path(directory) / name[len(prefix) + 1 :]
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(data)

    def download_logs(self, run, directory: Path) -> None:
        self._record("download_logs", run.id, directory)
        for name in run.log_names():
            target = Path(directory) / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(run.files[name])

    def cancel(self, run) -> None:
        self._record("cancel", run.id)
        run.status = "Canceled"


class FakeAzureMLV2Service(_FakeService):
    """Fake of ``azureml_v2.AzureMLV2Service``."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.environments: dict[tuple[str, str], object] = {}
        self.data_assets: dict[tuple[str, str], object] = {}
        self.uploads: dict[tuple[str, str], bytes] = {}

    def create_compute(self, compute) -> None:
        self._record("create_compute", compute)
        self.computes[compute.name] = compute

    def get_environment(self, name, version):
        self._record("get_environment", name, version)
        return self.environments.get((name, version))

    def create_environment(self, environment):
        self._record("create_environment", environment)
        self.environments[(environment.name, environment.version)] = environment
        return environment

    def get_data(self, name, version):
        self._record("get_data", name, version)
        return self.data_assets.get((name, version))

    def create_data(self, data):
        self._record("create_data", data)
        self.data_assets[(data.name, data.version)] = data
        self.uploads[(data.name, data.version)] = Path(data.path).read_bytes()
        return data

    def submit(self, job):
        self._record("submit", job)
        return self._new_job(job.experiment_name, job, job.tags, job.compute)

    def get_job(self, name):
        self._record("get_job", name)
        return self._job(name)

    def job_status(self, name) -> str:
        self._record("job_status", name)
        return self._job(name).status

    def log_files(self, name) -> dict[str, str]:
        return self._log_urls(self._job(name))

    def read_log(self, url: str) -> str:
        return self._read_log(url)

    def job_error(self, name):
        return self._job(name).error

    def download(self, name, directory: Path) -> None:
        self._record("download", name, directory)
        job = self._job(name)
        for path, data in job.files.items():
            if path.startswith("outputs/"):
                target = (
                    Path(directory)
                    / "named-outputs"
                    / "output"
                    / path[len("outputs/") :]
                )
            elif path == RECORD:
                target = Path(directory) / "named-outputs" / "harness" / "record.json"
            else:
                target = Path(directory) / "artifacts" / path
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)

    def cancel(self, name) -> None:
        self._record("cancel", name)
        self._job(name).status = "Canceled"


class FakeDockerClient:
    """Fake Docker client with the calls ``push_by_digest`` makes: tag, push, untag."""

    def __init__(self, digest: str = "sha256:" + "d" * 64):
        self.digest = digest
        self.pushes: list[dict] = []
        self.images = SimpleNamespace(
            get=lambda image_id: SimpleNamespace(tag=self._tag),
            remove=lambda name, noprune=False: self.removed.append(name),
        )
        self.api = SimpleNamespace(push=self._push)
        self.tags: list[tuple] = []
        self.removed: list[str] = []

    def _tag(self, repository, tag=None):
        self.tags.append((repository, tag))
        return True

    def _push(self, repository, tag=None, stream=False, decode=False, auth_config=None):
        self.pushes.append(
            {"repository": repository, "tag": tag, "auth_config": auth_config}
        )
        yield {"status": "Pushed", "id": "layer1"}
        yield {
            "status": f"{tag}: digest: {self.digest}",
            "aux": {"Tag": tag, "Digest": self.digest},
        }


def make_run_inputs(folder: Path) -> RunInputs:
    """Return the inputs of a run with spec, script folder and data under ``folder``.

    The image is described, not built: no test here runs it.
    """
    spec_path = folder / "arima-env.yml"
    spec_path.write_text(
        "name: arima-env\ndependencies:\n  - python=3.11\n  - pip\n"
        "  - pip:\n      - statsmodels==0.15.0\n"
    )
    script = folder / "script"
    script.mkdir()
    (script / "train.py").write_text("print('training')\n")
    (script / "helpers.py").write_text("ORDER = (2, 0, 2)\n")
    (script / "notes.tmp").write_text("left out by .amlignore\n")
    (script / ".amlignore").write_text("*.tmp\n")
    data = folder / "sales 2013.csv"
    data.write_text("TransactionDate,PaidAmount\n2013-01-01,100\n2013-01-02,120\n")

    spec = Spec(
        path=spec_path,
        name="arima-env",
        python="3.11",
        requirements=["statsmodels==0.15.0"],
        sha256=file_sha256(spec_path),
    )
    lock = Lock(
        path=folder / "arima-env.lock",
        spec_sha256=spec.sha256,
        python="3.11",
        platform="x86_64-manylinux_2_28",
        index_options=[],
        pins=[],
        sha256="a" * 64,
    )
    base = BaseImage(
        reference="python@sha256:" + "b" * 64,
        kind="slim",
        digest="sha256:" + "b" * 64,
        image_id="sha256:" + "c" * 64,
    )
    image = Image(
        id="sha256:" + "9" * 64,
        tag=f"harness/arima-env:{FINGERPRINT[:16]}",
        fingerprint=FINGERPRINT,
        base=base,
        numpy_version="2.4.6",
    )
    return RunInputs(
        spec=spec,
        lock=lock,
        image=image,
        snapshot=take_snapshot(script),
        data=data,
        arguments=list(USER_ARGUMENTS),
        determinism=True,
        environment=profile.container_env(True, "2.4.6"),
    )


def make_submission(
    inputs: RunInputs, image_reference: str, run_id: str = "20260101-120000-ab12"
) -> Submission:
    return Submission(
        run_id=run_id,
        image_reference=image_reference,
        data_path=inputs.data,
        data_sha256=inputs.data_sha256(),
        arguments=list(inputs.arguments),
        environment={"HARNESS_RUN_ID": run_id, **inputs.environment},
    )


def write_workspace_config(folder: Path, workspace: str = "harness-ws") -> Path:
    """Write a config.json as Azure ML studio's 'Download config.json' does."""
    path = folder / "config.json"
    path.write_text(
        json.dumps(
            {
                "subscription_id": "00000000-0000-0000-0000-000000000000",
                "resource_group": "harness-rg",
                "workspace_name": workspace,
            }
        )
    )
    return path
