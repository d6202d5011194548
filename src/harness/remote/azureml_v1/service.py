"""The seam of the ``azureml`` target: every azureml-core call that reaches Azure."""

from __future__ import annotations

from pathlib import Path
from typing import Mapping

from ...errors import RemoteError
from ..azure_common.service import (
    SERVICE_TIMEOUT,
    AzureService,
    fetch_text,
    registry_from_resource_id,
    summarize_error,
)
from ..azure_common.settings import RegistryLogin
from ..azure_common.workspace import WorkspaceConfig
from .objects import build_auth
from .sdk import (
    ComputeTarget,
    ComputeTargetException,
    Environment,
    Experiment,
    Run,
    ScriptRunConfig,
    Workspace,
)


class AzureMLService(AzureService):
    """Seam for every workspace call of the ``azureml`` target (azureml-core)."""

    def __init__(self, timeout: float = SERVICE_TIMEOUT):
        super().__init__(timeout)
        self._workspace: Workspace | None = None

    @property
    def workspace(self) -> Workspace:
        if self._workspace is None:
            raise RuntimeError("AzureMLService.connect() was not called")
        return self._workspace

    def connect(
        self,
        workspace: WorkspaceConfig,
        credential: str,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        """Open the workspace, waiting at most ``timeout`` seconds.

        Raises:
            RemoteError: the workspace is unreachable or not found, or the credential
                is rejected.
        """
        auth = build_auth(credential, environ)
        self._workspace = self._open(
            lambda: Workspace.get(
                workspace.workspace_name,
                auth=auth,
                subscription_id=workspace.subscription_id,
                resource_group=workspace.resource_group,
            ),
            workspace,
            credential,
        )

    def workspace_registry(self) -> RegistryLogin | None:
        """Return the workspace's registry, with its admin login if enabled, or None."""
        details = self._call(
            self.workspace.get_details, "reading the workspace details"
        )
        address = registry_from_resource_id(details.get("containerRegistry"))
        if address is None:
            return None
        return self._admin_login(address, self.workspace.list_keys)

    def get_compute(self, name: str):
        """Return the compute target ``name``, or None if the workspace has none."""
        try:
            return ComputeTarget(workspace=self.workspace, name=name)
        except Exception as exc:
            if isinstance(exc, ComputeTargetException) and (
                "ComputeTargetNotFound" in str(exc)
            ):
                return None
            raise RemoteError(
                f"looking up compute target {name} failed: {summarize_error(exc)}"
            ) from None

    def create_compute(self, name: str, provisioning_config) -> None:
        """Create the compute target ``name`` and wait until it is provisioned."""
        try:
            target = ComputeTarget.create(self.workspace, name, provisioning_config)
            target.wait_for_completion(show_output=False)
        except ComputeTargetException as exc:
            raise RemoteError(
                f"creating compute target {name} failed: {summarize_error(exc)}"
            ) from None

    def get_environment(self, name: str) -> Environment | None:
        """Return the latest registered version of Environment ``name``, or None."""
        try:
            return Environment.get(self.workspace, name)
        except Exception as exc:
            # azureml-core 1.61 raises a bare Exception with the HTTP status in it.
            if "Code: 404" in str(exc):
                return None
            raise RemoteError(
                f"looking up environment {name} failed: {summarize_error(exc)}"
            ) from None

    def register_environment(self, environment: Environment) -> Environment:
        return self._call(
            lambda: environment.register(self.workspace),
            f"registering environment {environment.name}",
        )

    def default_datastore(self):
        return self._call(
            self.workspace.get_default_datastore, "reading the default datastore"
        )

    def datastore_file_exists(self, datastore, path: str) -> bool:
        """Return whether the blob ``path`` exists in the (blob) datastore."""
        blob = datastore.blob_service.get_blob_client(
            container=datastore.container_name, blob=path
        )
        return self._call(blob.exists, f"checking {datastore.name}/{path}")

    def upload_file(self, datastore, local_path: Path, target_folder: str) -> None:
        """Upload a file to ``target_folder/<file name>``, keeping an existing copy."""
        self._call(
            lambda: datastore.upload_files(
                [str(local_path)],
                relative_root=str(local_path.parent),
                target_path=target_folder,
                overwrite=False,
                show_progress=False,
            ),
            f"uploading {local_path.name} to {datastore.name}/{target_folder}",
        )

    def submit(
        self, experiment: str, run_config: ScriptRunConfig, tags: dict[str, str]
    ) -> Run:
        """Submit the job. azureml-core uploads the script folder as the snapshot."""
        return self._call(
            lambda: Experiment(self.workspace, experiment).submit(
                run_config, tags=tags
            ),
            f"submitting to experiment {experiment}",
        )

    def get_run(self, run_id: str) -> Run:
        return self._call(
            lambda: Run.get(self.workspace, run_id), f"looking up run {run_id}"
        )

    def run_status(self, run: Run) -> str:
        return self._call(run.get_status, f"reading the status of run {run.id}")

    def portal_url(self, run: Run) -> str:
        return self._call(run.get_portal_url, f"reading the studio URL of run {run.id}")

    def run_tags(self, run: Run) -> dict:
        return self._call(run.get_tags, f"reading the tags of run {run.id}")

    def run_error(self, run: Run) -> str | None:
        """Return the error message Azure ML recorded for the run, if any."""
        details = self._call(run.get_details, f"reading run {run.id}")
        return (details.get("error") or {}).get("error", {}).get("message")

    def log_files(self, run: Run) -> dict[str, str]:
        """Return ``{log file name: pre-signed URL}`` of the run's logs so far."""
        details = self._call(run.get_details, f"reading run {run.id}")
        return dict(details.get("logFiles") or {})

    def read_log(self, url: str) -> str:
        return self._call(lambda: fetch_text(url), "reading a run log")

    def download_files(self, run: Run, prefix: str, directory: Path) -> None:
        """Download the run's files under ``prefix/`` into ``directory``."""
        self._call(
            lambda: run.download_files(
                prefix=prefix, output_directory=str(directory), append_prefix=False
            ),
            f"downloading {prefix}/ of run {run.id}",
        )

    def download_logs(self, run: Run, directory: Path) -> None:
        """Download the run's log files (user_logs/, system_logs/, ...)."""
        self._call(
            lambda: run.get_all_logs(destination=str(directory)),
            f"downloading the logs of run {run.id}",
        )

    def cancel(self, run: Run) -> None:
        self._call(run.cancel, f"canceling run {run.id}")

    def _registry_credentials(self, keys) -> tuple[str | None, list | None]:
        login = keys.get("containerRegistryCredentials") or {}
        return login.get("username"), login.get("passwords")
