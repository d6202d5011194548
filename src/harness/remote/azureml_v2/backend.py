"""The ``azureml-v2`` backend and its runs: a command job through azure-ai-ml.

The job writes its two named ``uri_folder`` outputs: ``output``, the training
script's ``--output`` folder, and ``harness``, which receives the entry point's
record so the record never mixes with the outputs. After download the record
is placed at ``logs/harness/record.json``, where every target keeps it.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from pathlib import Path

from ...errors import RemoteError
from ...manifest import RunInputs
from ...snapshot import check_limits
from ..azure_common.backend import AzureBackend
from ..azure_common.runs import AzureRun, RunFacts
from ..azure_common.service import strip_query
from ..azure_common.settings import TargetSettings
from ..azure_common.workspace import WorkspaceConfig
from ..base import REMOTE_RECORD, Submission
from .objects import (
    DATA_ASSET,
    ENVIRONMENT_NAME,
    OUTPUT_NAME,
    RECORD_FILE,
    RECORD_OUTPUT,
    build_compute,
    build_data,
    build_environment,
    build_job,
    data_version,
    environment_version,
)
from .sdk import Environment
from .service import AzureMLV2Service

log = logging.getLogger(__name__)


class AzureMLV2Backend(AzureBackend):
    """The ``azureml-v2`` target: Azure ML through SDK v2 (azure-ai-ml).

    It never prompts for a login and rejects ENV_MODE=conda.
    """

    name = "azureml-v2"
    service_class = AzureMLV2Service

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

        facts, tags = self._job_facts(environment, submission)
        job = build_job(
            inputs.snapshot.root,
            submission,
            settings.compute,
            f"azureml:{environment.name}:{environment.version}",
            data_path,
            settings.experiment,
            tags,
        )
        self._log_submission(inputs)
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

    def _open_workspace(self, workspace: WorkspaceConfig, credential: str) -> None:
        self.service.connect(workspace, credential)

    def _create_compute(self, settings: TargetSettings) -> None:
        self.service.create_compute(build_compute(settings.compute, settings.vm_size))


class AzureMLV2Run(AzureRun):
    """A command job submitted through azure-ai-ml."""

    sdk_distribution = "azure-ai-ml"
    job_term = "job"

    def __init__(self, service: AzureMLV2Service, job, facts: RunFacts):
        portal_url = strip_query(job.studio_url) if job.studio_url else None
        super().__init__(service, facts, job.name, portal_url)

    def status(self) -> str:
        return self.service.job_status(self.run_id)

    def _download_files(self, outputs: Path, logs: Path) -> None:
        """Download into a staging folder, then sort it into outputs and logs."""
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

    def _log_files(self) -> dict[str, str]:
        return self.service.log_files(self.run_id)

    def _error_message(self) -> str | None:
        return self.service.job_error(self.run_id)


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
