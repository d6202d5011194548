"""The seam of the ``azureml-v2`` target: every azure-ai-ml call that reaches Azure."""

from __future__ import annotations

from pathlib import Path

from ...errors import RemoteError
from ..azure_common import credentials
from ..azure_common.service import (
    SERVICE_TIMEOUT,
    AzureService,
    fetch_text,
    registry_from_resource_id,
    summarize_error,
)
from ..azure_common.settings import RegistryLogin
from ..azure_common.workspace import WorkspaceConfig
from .sdk import AmlCompute, Data, Environment, MLClient, ResourceNotFoundError


class AzureMLV2Service(AzureService):
    """Seam for every call the ``azureml-v2`` target makes to a workspace (MLClient)."""

    def __init__(self, timeout: float = SERVICE_TIMEOUT):
        super().__init__(timeout)
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
            credentials.default_azure_credential(),
            subscription_id=workspace.subscription_id,
            resource_group_name=workspace.resource_group,
            workspace_name=workspace.workspace_name,
        )
        self._workspace = self._open(
            lambda: client.workspaces.get(workspace.workspace_name),
            workspace,
            credential,
        )
        self._client = client

    def workspace_registry(self) -> RegistryLogin | None:
        """Return the workspace's registry, with its admin login if enabled, or None."""
        address = registry_from_resource_id(
            getattr(self._workspace, "container_registry", None)
        )
        if address is None:
            return None
        return self._admin_login(
            address, lambda: self.client.workspaces.get_keys(self.client.workspace_name)
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
        return self._call(lambda: fetch_text(url), "reading a job log")

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

    def _registry_credentials(self, keys) -> tuple[str | None, list | None]:
        login = getattr(keys, "container_registry_credentials", None)
        if login is None:
            return None, None
        return login.username, login.passwords

    def _get(self, function, action: str):
        """Return ``function()``, or None if the resource is not found."""
        try:
            return function()
        except ResourceNotFoundError:
            return None
        except Exception as exc:
            raise RemoteError(f"{action} failed: {summarize_error(exc)}") from None
