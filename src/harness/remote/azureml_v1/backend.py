"""The ``azureml`` backend and its runs: the steps of a job through azureml-core."""

from __future__ import annotations

import logging
from pathlib import Path

from ...errors import RemoteError
from ...manifest import RunInputs
from ...snapshot import check_limits
from ..azure_common.backend import AzureBackend
from ..azure_common.runs import AzureRun, RunFacts
from ..azure_common.service import strip_query
from ..azure_common.settings import RegistryLogin, TargetSettings
from ..azure_common.workspace import WorkspaceConfig
from ..base import REMOTE_OUTPUT, Submission
from .objects import (
    build_compute_config,
    build_conda_environment,
    build_data_reference,
    build_environment,
    build_run_config,
    conda_environment_name,
    environment_name,
    same_image,
)
from .sdk import DataReference, Environment, Run
from .service import AzureMLService

log = logging.getLogger(__name__)

# Folder of the data file in the workspace's default datastore, addressed by
# content: harness-data/<sha256>/<file name>.
DATA_FOLDER = "harness-data"


class AzureMLBackend(AzureBackend):
    """The ``azureml`` target: Azure ML through SDK v1 (azureml-core)."""

    name = "azureml"
    service_class = AzureMLService
    interactive_login = True
    supports_conda = True

    def push(self, client, inputs: RunInputs) -> str:
        """Push the image and return its reference ``registry/repository@sha256:...``.

        With ENV_MODE=conda nothing is pushed and the result is "", because Azure ML
        builds the environment itself.

        Raises:
            RemoteError: the workspace has no container registry and none is named.
            RegistryError: the push failed.
        """
        if self.settings.conda:
            log.info(
                "ENV_MODE=conda: Azure ML builds the environment from %s; no image is"
                " pushed",
                inputs.spec.path,
                extra={"phase": "push"},
            )
            return ""
        return super().push(client, inputs)

    def submit(self, inputs: RunInputs, submission: Submission) -> AzureMLRun:
        """Upload the data, register the environment if new, and submit the job.

        Raises:
            UsageError: the script folder is too large for a snapshot.
            RemoteError: an upload, registration or the submission failed.
        """
        check_limits(inputs.snapshot)
        self.connect()
        settings = self.settings
        data_reference = self.upload_data(inputs.data, submission.data_sha256)

        if settings.conda:
            environment = self.ensure_conda_environment(
                inputs.spec.path, inputs.spec.sha256
            )
        else:
            environment = self.ensure_environment(
                submission.image_reference, inputs.image.fingerprint, settings.registry
            )
        run_config = build_run_config(
            inputs.snapshot.root,
            submission,
            settings.compute,
            environment,
            data_reference,
            pinned=not settings.conda,
        )

        facts, tags = self._job_facts(environment, submission)
        self._log_submission(inputs)
        run = self.service.submit(settings.experiment, run_config, tags)
        return AzureMLRun(self.service, run, facts)

    def attach(self, remote_id: str) -> AzureMLRun:
        """Return the run ``remote_id`` of this workspace, as submitted earlier."""
        self.connect()
        run = self.service.get_run(remote_id)
        tags = self.service.run_tags(run) or {}
        experiment = (
            getattr(getattr(run, "experiment", None), "name", None)
            or self.settings.experiment
        )
        facts = RunFacts.from_tags(tags, self.workspace.workspace_name, experiment)
        return AzureMLRun(self.service, run, facts)

    def cancel(self, remote_id: str) -> None:
        """Cancel the run ``remote_id`` (submit, wait and download never cancel)."""
        self.connect()
        run = self.service.get_run(remote_id)
        log.info("canceling run %s", remote_id, extra={"phase": "cancel"})
        self.service.cancel(run)

    def upload_data(self, path: Path, sha256: str) -> DataReference:
        """Upload the data to ``harness-data/<sha256>/<name>`` unless it is there."""
        datastore = self.service.default_datastore()
        folder = f"{DATA_FOLDER}/{sha256}"
        target = f"{folder}/{path.name}"
        if self.service.datastore_file_exists(datastore, target):
            log.info(
                "data %s is already in datastore %s at %s",
                path.name,
                datastore.name,
                target,
                extra={"phase": "upload"},
            )
        else:
            log.info(
                "uploading %s (%d bytes) to datastore %s at %s",
                path,
                path.stat().st_size,
                datastore.name,
                target,
                extra={"phase": "upload"},
            )
            self.service.upload_file(datastore, path, folder)
            # azureml-core logs failed uploads without raising, so check the result.
            if not self.service.datastore_file_exists(datastore, target):
                raise RemoteError(
                    f"uploading {path} to datastore {datastore.name} at {target} "
                    "failed: the file is not there afterwards; retry"
                )
        return build_data_reference(datastore, target)

    def ensure_environment(
        self,
        image_reference: str,
        fingerprint: str,
        registry: RegistryLogin | None = None,
    ) -> Environment:
        """Return the registered Environment for the image, registering it if new."""
        name = environment_name(fingerprint)
        existing = self.service.get_environment(name)
        if existing is not None and same_image(existing, image_reference, registry):
            log.info(
                "reusing environment %s version %s",
                name,
                existing.version,
                extra={"phase": "environment"},
            )
            return existing
        registered = self.service.register_environment(
            build_environment(image_reference, fingerprint, registry)
        )
        log.info(
            "registered environment %s version %s for %s",
            name,
            registered.version,
            image_reference,
            extra={"phase": "environment"},
        )
        return registered

    def ensure_conda_environment(
        self, spec_path: Path, spec_sha256: str
    ) -> Environment:
        """Return the registered ENV_MODE=conda Environment, registering it if new."""
        name = conda_environment_name(spec_sha256)
        existing = self.service.get_environment(name)
        if existing is not None:
            log.info(
                "reusing environment %s version %s (built by Azure ML, not pinned)",
                name,
                existing.version,
                extra={"phase": "environment"},
            )
            return existing
        registered = self.service.register_environment(
            build_conda_environment(spec_path, spec_sha256)
        )
        log.info(
            "registered environment %s version %s from %s; Azure ML builds it on first"
            " use (not pinned)",
            name,
            registered.version,
            spec_path,
            extra={"phase": "environment"},
        )
        return registered

    def _open_workspace(self, workspace: WorkspaceConfig, credential: str) -> None:
        self.service.connect(workspace, credential, self.environ)

    def _create_compute(self, settings: TargetSettings) -> None:
        self.service.create_compute(
            settings.compute, build_compute_config(settings.vm_size)
        )


class AzureMLRun(AzureRun):
    """A job submitted through azureml-core."""

    sdk_distribution = "azureml-core"
    job_term = "run"

    def __init__(self, service: AzureMLService, run: Run, facts: RunFacts):
        super().__init__(service, facts, run.id, strip_query(service.portal_url(run)))
        self.run = run

    def status(self) -> str:
        return self.service.run_status(self.run)

    def _download_files(self, outputs: Path, logs: Path) -> None:
        self.service.download_files(self.run, REMOTE_OUTPUT, outputs)
        self.service.download_files(self.run, "logs", logs)
        self.service.download_logs(self.run, logs)

    def _log_files(self) -> dict[str, str]:
        return self.service.log_files(self.run)

    def _error_message(self) -> str | None:
        return self.service.run_error(self.run)
