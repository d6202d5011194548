"""Train on Azure Machine Learning through SDK v2 (azure-ai-ml): target ``azureml-v2``.

The job is a command job that runs the pinned training image by digest: an
Environment ``harness-image`` whose version is the image fingerprint's first 16
hex digits. The data file becomes the data asset ``harness-data`` with the
file's sha256 (first 16 digits) as version, uploaded once, and reaches the job
as the ``uri_file`` input ``data``. The SDK uploads the script folder as the
job's code, leaving out what ``.amlignore`` (or ``.gitignore``) lists.

The job has two named ``uri_folder`` outputs. ``output`` is the training
script's ``--output`` folder, so it contains exactly what the script wrote.
``harness`` receives the entry point's record (``HARNESS_RECORD`` points into
it), so the record never mixes with the outputs. After download the record is
placed at ``logs/harness/record.json``, where every target keeps it.

Metrics go through MLflow inside the job; the training script handles that
itself with the MLFLOW_* variables Azure ML sets.

Every call that reaches the workspace goes through :class:`AzureMLV2Service`;
:class:`AzureMLV2Backend` only builds SDK objects and calls it, so tests hand it
a fake service. This is the only module that imports azure-ai-ml.
"""

from __future__ import annotations

import importlib.metadata
import logging
import os
import shlex
import shutil
import tempfile
from pathlib import Path
from typing import Mapping

from ..errors import RegistryError, RemoteError, UsageError
from ..manifest import RunInputs
from ..snapshot import check_limits
from . import azure_config
from .azure_config import RegistryLogin, RunFacts, TargetSettings, WorkspaceConfig
from .base import REMOTE_OUTPUT, REMOTE_RECORD, Backend, RemoteRun, Submission
from .registry import push_by_digest

try:
    from azure.ai.ml import Input, MLClient, Output, command
    from azure.ai.ml.constants import AssetTypes
    from azure.ai.ml.entities import AmlCompute, Data, Environment
    from azure.core.exceptions import ResourceNotFoundError
except ImportError as exc:  # pragma: no cover - depends on the installation
    raise RemoteError(
        f"TARGET=azureml-v2 needs azure-ai-ml ({exc.name} is missing); "
        "install it with: pip install 'aml-repro-harness[azure]'"
    ) from None

log = logging.getLogger(__name__)

ENVIRONMENT_NAME = "harness-image"
DATA_ASSET = "harness-data"
DATA_INPUT = "data"
OUTPUT_NAME = "output"
RECORD_OUTPUT = "harness"
RECORD_FILE = "record.json"
_DATA_PLACEHOLDER = "${{inputs.%s}}" % DATA_INPUT
_OUTPUT_PLACEHOLDER = "${{outputs.%s}}" % OUTPUT_NAME
_RECORD_PLACEHOLDER = "${{outputs.%s}}" % RECORD_OUTPUT


def environment_version(fingerprint: str, image_reference: str | None = None) -> str:
    """Return the Environment version for an image fingerprint.

    With ``image_reference`` the version also carries the first 12 digits of the
    image digest. That form is used only when ``<fingerprint[:16]>`` already
    names a different image (an image rebuilt from the same inputs with a new
    digest), because an Environment version cannot be changed.
    """
    version = fingerprint[:16]
    if image_reference:
        version += "-" + image_reference.rsplit("@sha256:", 1)[1][:12]
    return version


def data_version(sha256: str) -> str:
    return sha256[:16]


# ---------------------------------------------------------------------------
# SDK objects, built without touching the service


def build_environment(
    image_reference: str, fingerprint: str, version: str | None = None
) -> Environment:
    """Return the Environment that runs ``image_reference`` (``repo@sha256:...``)."""
    if "@sha256:" not in image_reference:
        raise ValueError(
            f"{image_reference}: not a reference by digest (registry/repo@sha256:...)"
        )
    return Environment(
        name=ENVIRONMENT_NAME,
        version=version or environment_version(fingerprint),
        image=image_reference,
        description=f"harness training image, fingerprint {fingerprint}",
        tags={"fingerprint": fingerprint},
    )


def build_data(path: Path, sha256: str) -> Data:
    """Return the data asset for the data file; creating it uploads the file."""
    return Data(
        name=DATA_ASSET,
        version=data_version(sha256),
        type=AssetTypes.URI_FILE,
        path=str(path),
        description=f"{path.name}, sha256 {sha256}",
        tags={"sha256": sha256, "file": path.name},
    )


def job_command(submission: Submission) -> str:
    """Return the job's shell command, with the placeholders Azure ML fills in.

    Azure ML replaces ``${{...}}`` in the command before the shell runs it, so
    HARNESS_RECORD is set there, pointing into the ``harness`` output.
    """
    parts = submission.command(_DATA_PLACEHOLDER)
    for index in range(len(parts) - 1):
        if parts[index] == "--output" and parts[index + 1] == REMOTE_OUTPUT:
            parts[index + 1] = _OUTPUT_PLACEHOLDER
            break
    placeholders = (_DATA_PLACEHOLDER, _OUTPUT_PLACEHOLDER)
    words = [part if part in placeholders else shlex.quote(part) for part in parts]
    return f"HARNESS_RECORD={_RECORD_PLACEHOLDER}/{RECORD_FILE} " + " ".join(words)


def job_environment_variables(submission: Submission) -> dict[str, str]:
    """Return the job's variables; HARNESS_RECORD is set by the command line instead."""
    return {
        name: value
        for name, value in submission.job_environment.items()
        if name != "HARNESS_RECORD"
    }


def build_job(
    code: Path,
    submission: Submission,
    compute: str,
    environment: str,
    data_path: str,
    experiment: str,
    tags: Mapping[str, str] | None = None,
):
    """Return the command job.

    Args:
        code: the script folder, uploaded as the job's code.
        environment: ``azureml:<name>:<version>`` of a registered Environment.
        data_path: ``azureml:<asset>:<version>`` of the data file's asset.
    """
    return command(
        code=str(code),
        command=job_command(submission),
        environment=environment,
        inputs={DATA_INPUT: Input(type=AssetTypes.URI_FILE, path=data_path)},
        outputs={
            OUTPUT_NAME: Output(type=AssetTypes.URI_FOLDER),
            RECORD_OUTPUT: Output(type=AssetTypes.URI_FOLDER),
        },
        compute=compute,
        experiment_name=experiment,
        environment_variables=job_environment_variables(submission),
        display_name=f"harness {submission.run_id}",
        tags=dict(tags or {}),
    )


def build_compute(name: str, vm_size: str = azure_config.DEFAULT_VM_SIZE) -> AmlCompute:
    """Return the CPU cluster that CREATE_COMPUTE=1 creates."""
    return AmlCompute(
        name=name,
        size=vm_size,
        min_instances=azure_config.COMPUTE_MIN_NODES,
        max_instances=azure_config.COMPUTE_MAX_NODES,
        idle_time_before_scale_down=azure_config.COMPUTE_IDLE_SECONDS,
    )


# ---------------------------------------------------------------------------
# The service seam


class AzureMLV2Service:
    """Seam for every call the ``azureml-v2`` target makes to a workspace (MLClient)."""

    def __init__(self, timeout: float = azure_config.SERVICE_TIMEOUT):
        self.timeout = timeout
        self._client: MLClient | None = None
        self._workspace = None

    @property
    def client(self) -> MLClient:
        if self._client is None:
            raise RuntimeError("AzureMLV2Service.connect() was not called")
        return self._client

    def connect(self, workspace: WorkspaceConfig, credential: str) -> None:
        """Create the MLClient and look the workspace up, within ``timeout`` seconds.

        ``credential`` is only reported: DefaultAzureCredential (without its
        browser prompt) finds the same service principal, managed identity or
        Azure CLI login.

        Raises:
            RemoteError: the workspace is unreachable or not found, or the credential
                is rejected.
        """
        client = MLClient(
            azure_config.default_azure_credential(),
            subscription_id=workspace.subscription_id,
            resource_group_name=workspace.resource_group,
            workspace_name=workspace.workspace_name,
        )
        action = f"opening {workspace.describe()}"
        try:
            self._workspace = azure_config.call_with_timeout(
                lambda: client.workspaces.get(workspace.workspace_name),
                self.timeout,
                action,
            )
        except RemoteError:
            raise
        except Exception as exc:
            raise RemoteError(
                f"{action} with {credential} credentials failed: "
                f"{azure_config.summarize_error(exc)}"
            ) from None
        self._client = client

    def workspace_registry(self) -> RegistryLogin | None:
        """Return the workspace's registry, with its admin login if enabled, or None."""
        address = azure_config.registry_from_resource_id(
            getattr(self._workspace, "container_registry", None)
        )
        if address is None:
            return None
        try:
            keys = azure_config.call_with_timeout(
                lambda: self.client.workspaces.get_keys(self.client.workspace_name),
                self.timeout,
                "listing the workspace keys",
            )
        except Exception as exc:
            log.info(
                "no admin login for %s (%s); pushing with Docker's stored login",
                address,
                azure_config.summarize_error(exc),
                extra={"phase": "push"},
            )
            return RegistryLogin(address)
        credentials = getattr(keys, "container_registry_credentials", None)
        if credentials is None:
            return RegistryLogin(address)
        return RegistryLogin(
            address, credentials.username, _first_password(credentials.passwords)
        )

    def get_compute(self, name: str):
        """Return the compute ``name``, or None if the workspace has none."""
        return self._get(
            lambda: self.client.compute.get(name), f"looking up compute {name}"
        )

    def create_compute(self, compute: AmlCompute) -> None:
        """Create the compute and wait until Azure ML has provisioned it."""
        self._call(
            lambda: self.client.compute.begin_create_or_update(compute).result(),
            f"creating compute {compute.name}",
        )

    def get_environment(self, name: str, version: str) -> Environment | None:
        return self._get(
            lambda: self.client.environments.get(name, version=version),
            f"looking up environment {name}:{version}",
        )

    def create_environment(self, environment: Environment) -> Environment:
        return self._call(
            lambda: self.client.environments.create_or_update(environment),
            f"registering environment {environment.name}:{environment.version}",
        )

    def get_data(self, name: str, version: str) -> Data | None:
        return self._get(
            lambda: self.client.data.get(name, version=version),
            f"looking up data asset {name}:{version}",
        )

    def create_data(self, data: Data) -> Data:
        """Register the data asset, uploading its file to the default datastore."""
        return self._call(
            lambda: self.client.data.create_or_update(data),
            f"uploading data asset {data.name}:{data.version}",
        )

    def submit(self, job):
        """Submit the job; the SDK uploads its code folder first."""
        return self._call(
            lambda: self.client.jobs.create_or_update(job),
            f"submitting to experiment {job.experiment_name}",
        )

    def get_job(self, name: str):
        job = self._get(lambda: self.client.jobs.get(name), f"looking up job {name}")
        if job is None:
            raise RemoteError(
                f"job {name} not found in workspace {self.client.workspace_name}; "
                "check the RUN= value"
            )
        return job

    def job_status(self, name: str) -> str:
        return self._call(
            lambda: self.client.jobs.get(name).status,
            f"reading the status of job {name}",
        )

    def log_files(self, name: str) -> dict[str, str]:
        """Return ``{log file name: pre-signed URL}`` of the job's logs so far.

        NOTE: azure-ai-ml 1.35 has no public call for this. Its own ``jobs.stream``
        reads the run history's log list as done here, and for some jobs lists the
        logs from the datastore instead. For those, this returns {} and the log
        arrives with the download only.
        """
        details = self._call(
            lambda: self.client.jobs._runs_operations.get_run_details(name),
            f"reading the logs of job {name}",
        )
        return dict(details.log_files or {})

    def read_log(self, url: str) -> str:
        return self._call(lambda: azure_config.fetch_text(url), "reading a job log")

    def job_error(self, name: str) -> str | None:
        """Return the error message Azure ML recorded for the job, if any."""
        details = self._call(
            lambda: self.client.jobs._runs_operations.get_run_details(name),
            f"reading job {name}",
        )
        error = getattr(getattr(details, "error", None), "error", None)
        return getattr(error, "message", None)

    def download(self, name: str, directory: Path) -> None:
        """Download the job's named outputs and logs into ``directory``.

        azure-ai-ml 1.35 writes ``named-outputs/<output name>/`` and ``artifacts/``
        (user_logs/, system_logs/ and the job's ./outputs and ./logs).
        """
        self._call(
            lambda: self.client.jobs.download(
                name, download_path=str(directory), all=True
            ),
            f"downloading job {name}",
        )

    def cancel(self, name: str) -> None:
        self._call(lambda: self.client.jobs.begin_cancel(name), f"canceling job {name}")

    def _get(self, function, action: str):
        try:
            return function()
        except ResourceNotFoundError:
            return None
        except Exception as exc:
            raise RemoteError(
                f"{action} failed: {azure_config.summarize_error(exc)}"
            ) from None

    def _call(self, function, action: str):
        try:
            return function()
        except RemoteError:
            raise
        except Exception as exc:
            raise RemoteError(
                f"{action} failed: {azure_config.summarize_error(exc)}"
            ) from None


def _first_password(passwords) -> str | None:
    for password in passwords or []:
        value = (
            password if isinstance(password, str) else getattr(password, "value", None)
        )
        if value:
            return value
    return None


# ---------------------------------------------------------------------------
# Backend and run


class AzureMLV2Backend(Backend):
    """The ``azureml-v2`` target: Azure ML through SDK v2 (azure-ai-ml)."""

    name = "azureml-v2"

    def __init__(
        self,
        service: AzureMLV2Service | None = None,
        environ: Mapping[str, str] | None = None,
        cwd: Path | None = None,
    ):
        """Args:
        service: the service seam; None creates the real :class:`AzureMLV2Service`
            when it is first needed.
        environ: the variables with settings and credentials (default: os.environ).
        cwd: the folder to look for config.json in (default: the current folder).
        """
        self._service = service
        self.environ = dict(os.environ if environ is None else environ)
        self.cwd = cwd
        self.workspace: WorkspaceConfig | None = None
        self._settings: TargetSettings | None = None

    @property
    def service(self) -> AzureMLV2Service:
        if self._service is None:
            self._service = AzureMLV2Service()
        return self._service

    @property
    def settings(self) -> TargetSettings:
        if self._settings is None:
            settings = TargetSettings.from_environ(self.environ)
            if settings.conda:
                raise UsageError(
                    "ENV_MODE=conda is supported by TARGET=azureml only; "
                    "unset ENV_MODE for TARGET=azureml-v2"
                )
            self._settings = settings
        return self._settings

    def check_config(self) -> None:
        """Check settings and credentials, open the workspace, and find the compute.

        Raises:
            UsageError: a setting has an invalid value.
            RemoteError: no workspace or credentials are configured, the workspace
                does not respond, or the compute is missing (without CREATE_COMPUTE=1).
        """
        settings = self.settings
        self.connect()
        if self.service.get_compute(settings.compute) is not None:
            log.info("compute %s found", settings.compute, extra={"phase": "config"})
            return
        if not settings.create_compute:
            raise RemoteError(
                settings.missing_compute_message(self.workspace.workspace_name)
            )
        log.info(
            "creating compute %s (%s, %d to %d nodes)",
            settings.compute,
            settings.vm_size,
            azure_config.COMPUTE_MIN_NODES,
            azure_config.COMPUTE_MAX_NODES,
            extra={"phase": "compute"},
        )
        self.service.create_compute(build_compute(settings.compute, settings.vm_size))

    def connect(self) -> None:
        """Find the workspace and credentials and open the workspace, once.

        Interactive login is never used: v2 runs without prompts.
        """
        if self.workspace is not None:
            return
        workspace = azure_config.find_workspace_config(self.environ, self.cwd)
        credential = azure_config.choose_credential(
            self.environ, allow_interactive=False
        )
        log.info(
            "opening %s with %s",
            workspace.describe(),
            azure_config.describe_credential(credential, self.environ),
            extra={"phase": "config"},
        )
        self.service.connect(workspace, credential)
        self.workspace = workspace

    def push(self, client, inputs: RunInputs) -> str:
        """Push the image and return its reference ``registry/repository@sha256:...``.

        NOTE: an Environment has no field for registry credentials in SDK v2. A
        registry named by AZUREML_REGISTRY must be pullable by the compute
        without them (public, or granted through a workspace connection).

        Raises:
            RemoteError: the workspace has no container registry and none is named.
            RegistryError: the push failed.
        """
        self.connect()
        registry = self.settings.registry or self.service.workspace_registry()
        if registry is None:
            raise RemoteError(
                f"workspace {self.workspace.workspace_name} has no container registry "
                "yet; set AZUREML_REGISTRY (and its username and password) to push "
                "elsewhere"
            )
        try:
            return push_by_digest(
                client,
                inputs.image,
                registry.address,
                inputs.image.repository,
                registry.auth_config(),
            )
        except RegistryError as exc:
            if registry.auth_config() is None and registry.address.endswith(
                ".azurecr.io"
            ):
                acr = registry.address.split(".", 1)[0]
                raise RegistryError(
                    f"{exc}; if the registry rejected the login, run "
                    f"'az acr login --name {acr}'"
                ) from None
            raise

    def submit(self, inputs: RunInputs, submission: Submission) -> AzureMLV2Run:
        """Upload the data once, register the environment if new, and submit the job.

        Raises:
            UsageError: the script folder is too large to upload.
            RemoteError: an upload, registration or the submission failed.
        """
        check_limits(inputs.snapshot)
        self.connect()
        settings = self.settings
        data_path = self.upload_data(inputs.data, submission.data_sha256)
        environment = self.ensure_environment(
            submission.image_reference, inputs.image.fingerprint
        )

        facts = RunFacts(
            workspace=self.workspace.workspace_name,
            experiment=settings.experiment,
            compute_target=settings.compute,
            environment_name=environment.name,
            environment_version=environment.version,
            image_reference=submission.image_reference,
            pinned=True,
        )
        tags = {**facts.tags(), azure_config.TAG_PREFIX + "run_id": submission.run_id}
        job = build_job(
            inputs.snapshot.root,
            submission,
            settings.compute,
            f"azureml:{environment.name}:{environment.version}",
            data_path,
            settings.experiment,
            tags,
        )
        log.info(
            "submitting %s (%d files, %d bytes) to experiment %s on %s",
            inputs.snapshot.root,
            len(inputs.snapshot.files),
            inputs.snapshot.size,
            settings.experiment,
            settings.compute,
            extra={"phase": "submit"},
        )
        created = self.service.submit(job)
        return AzureMLV2Run(self.service, created, facts)

    def attach(self, remote_id: str) -> AzureMLV2Run:
        """Return the job ``remote_id`` of this workspace, as submitted earlier."""
        self.connect()
        job = self.service.get_job(remote_id)
        facts = RunFacts.from_tags(
            job.tags or {},
            self.workspace.workspace_name,
            job.experiment_name or self.settings.experiment,
            compute_target=job.compute,
        )
        return AzureMLV2Run(self.service, job, facts)

    def cancel(self, remote_id: str) -> None:
        """Cancel the job ``remote_id`` (submit, wait and download never cancel)."""
        self.connect()
        log.info("canceling job %s", remote_id, extra={"phase": "cancel"})
        self.service.cancel(remote_id)

    def upload_data(self, path: Path, sha256: str) -> str:
        """Return ``azureml:harness-data:<version>`` for the data, uploading it if new.

        Raises:
            RemoteError: the asset of that version contains a different file, or the
                upload failed.
        """
        version = data_version(sha256)
        reference = f"azureml:{DATA_ASSET}:{version}"
        existing = self.service.get_data(DATA_ASSET, version)
        if existing is not None:
            recorded = (existing.tags or {}).get("sha256")
            if recorded != sha256:
                raise RemoteError(
                    f"data asset {DATA_ASSET}:{version} contains sha256 {recorded}, not"
                    f" {sha256} of {path}; archive that asset version and retry"
                )
            log.info(
                "data %s is already in the workspace as %s",
                path.name,
                reference,
                extra={"phase": "upload"},
            )
            return reference
        log.info(
            "uploading %s (%d bytes) as data asset %s",
            path,
            path.stat().st_size,
            reference,
            extra={"phase": "upload"},
        )
        self.service.create_data(build_data(path, sha256))
        return reference

    def ensure_environment(self, image_reference: str, fingerprint: str) -> Environment:
        """Return the registered Environment for the image, registering it if new."""
        version = environment_version(fingerprint)
        existing = self.service.get_environment(ENVIRONMENT_NAME, version)
        if existing is not None and existing.image != image_reference:
            version = environment_version(fingerprint, image_reference)
            existing = self.service.get_environment(ENVIRONMENT_NAME, version)
        if existing is not None:
            log.info(
                "reusing environment %s:%s",
                ENVIRONMENT_NAME,
                version,
                extra={"phase": "environment"},
            )
            return existing
        registered = self.service.create_environment(
            build_environment(image_reference, fingerprint, version)
        )
        log.info(
            "registered environment %s:%s for %s",
            ENVIRONMENT_NAME,
            version,
            image_reference,
            extra={"phase": "environment"},
        )
        return registered


class AzureMLV2Run(RemoteRun):
    """A command job submitted through azure-ai-ml."""

    def __init__(self, service: AzureMLV2Service, job, facts: RunFacts):
        self.service = service
        self.facts = facts
        self.run_id = job.name
        self.portal_url = (
            azure_config.strip_query(job.studio_url) if job.studio_url else None
        )
        self._tail = azure_config.LogTail()

    def status(self) -> str:
        return self.service.job_status(self.run_id)

    def new_log_lines(self) -> list[str]:
        """Return the new lines of the job's log, [] while there is none."""
        try:
            name, text = self._job_log()
        except RemoteError as exc:
            log.warning(
                "cannot read the log of job %s: %s",
                self.run_id,
                exc,
                extra={"phase": "wait"},
            )
            return []
        return self._tail.new_lines(name, text) if name else []

    def download(self, outputs: Path, logs: Path) -> dict:
        """Download outputs and logs, check them against the record, and return it.

        Raises:
            RemoteError: the download failed.
            DownloadError: a file the job recorded is missing, empty or different.
        """
        log.info(
            "downloading job %s to %s and %s",
            self.run_id,
            outputs,
            logs,
            extra={"phase": "download"},
        )
        logs.mkdir(parents=True, exist_ok=True)
        outputs.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".download-", dir=logs.parent))
        try:
            self.service.download(self.run_id, staging)
            _move_contents(staging / "named-outputs" / OUTPUT_NAME, outputs)
            record = staging / "named-outputs" / RECORD_OUTPUT / RECORD_FILE
            if record.is_file():
                target = logs / Path(REMOTE_RECORD).relative_to("logs")
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.move(str(record), str(target))
            _move_contents(staging / "artifacts", logs)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        record = azure_config.read_record(logs)
        azure_config.check_download(record, outputs)
        return record

    def error_tail(self) -> str:
        message = self.service.job_error(self.run_id)
        try:
            _name, text = self._job_log()
        except RemoteError:
            text = None
        return azure_config.tail_line(text, message)

    def manifest_extra(self) -> dict:
        sdk = f"azure-ai-ml {importlib.metadata.version('azure-ai-ml')}"
        return self.facts.manifest_extra(self.run_id, self.portal_url, sdk)

    def _job_log(self) -> tuple[str | None, str | None]:
        files = self.service.log_files(self.run_id)
        name = azure_config.select_job_log(files)
        if name is None:
            return None, None
        return name, self.service.read_log(files[name])


def _move_contents(source: Path, target: Path) -> None:
    """Move everything under ``source`` into ``target``, merging folders in both."""
    if not source.is_dir():
        return
    target.mkdir(parents=True, exist_ok=True)
    for entry in source.iterdir():
        destination = target / entry.name
        if entry.is_dir() and destination.is_dir():
            _move_contents(entry, destination)
        else:
            shutil.move(str(entry), str(destination))
