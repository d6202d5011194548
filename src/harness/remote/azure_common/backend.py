"""Steps both Azure ML backends run alike: settings, workspace, compute, push.

Each SDK package subclasses :class:`AzureBackend` with what differs: how the
workspace is opened, how a compute is created, and the upload, environment
and job objects of its SDK.
"""

from __future__ import annotations

import logging
import os
from abc import abstractmethod
from pathlib import Path
from typing import Mapping

from ...errors import RegistryError, RemoteError, UsageError
from ...manifest import RunInputs
from ..base import Backend, Submission
from ..registry import push_by_digest
from . import credentials
from .runs import TAG_PREFIX, RunFacts
from .settings import COMPUTE_MAX_NODES, COMPUTE_MIN_NODES, TargetSettings
from .workspace import WorkspaceConfig, find_workspace_config

log = logging.getLogger(__name__)


class AzureBackend(Backend):
    """Base of the two Azure ML backends."""

    service_class: type  # the real service seam, created when first needed
    interactive_login = False  # may prompt for a login when stdin is a terminal
    supports_conda = False  # accepts ENV_MODE=conda

    def __init__(
        self,
        service=None,
        environ: Mapping[str, str] | None = None,
        cwd: Path | None = None,
    ):
        """Args:
        service: the service seam; None creates ``service_class()`` when it is
            first needed.
        environ: the variables with settings and credentials (default: os.environ).
        cwd: the folder to look for config.json in (default: the current folder).
        """
        self._service = service
        self.environ = dict(os.environ if environ is None else environ)
        self.cwd = cwd
        self.workspace: WorkspaceConfig | None = None
        self._settings: TargetSettings | None = None

    @property
    def service(self):
        if self._service is None:
            self._service = self.service_class()
        return self._service

    @property
    def settings(self) -> TargetSettings:
        if self._settings is None:
            settings = TargetSettings.from_environ(self.environ)
            if settings.conda and not self.supports_conda:
                raise UsageError(
                    "ENV_MODE=conda is supported by TARGET=azureml only; "
                    f"unset ENV_MODE for TARGET={self.name}"
                )
            self._settings = settings
        return self._settings

    def check_config(self) -> None:
        """Check settings and credentials, open the workspace, find the compute target.

        Raises:
            UsageError: a setting has an invalid value.
            RemoteError: no workspace or credentials are configured, the workspace
                does not respond, or the compute target is missing (and CREATE_COMPUTE
                is not 1).
        """
        settings = self.settings
        self.connect()
        if self.service.get_compute(settings.compute) is not None:
            log.info(
                "compute target %s found", settings.compute, extra={"phase": "config"}
            )
            return
        if not settings.create_compute:
            raise RemoteError(
                settings.missing_compute_message(self.workspace.workspace_name)
            )
        log.info(
            "creating compute target %s (%s, %d to %d nodes)",
            settings.compute,
            settings.vm_size,
            COMPUTE_MIN_NODES,
            COMPUTE_MAX_NODES,
            extra={"phase": "compute"},
        )
        self._create_compute(settings)

    def connect(self) -> None:
        """Find the workspace and credentials and open the workspace, once."""
        if self.workspace is not None:
            return
        workspace = find_workspace_config(self.environ, self.cwd)
        credential = credentials.choose_credential(
            self.environ,
            allow_interactive=self.interactive_login
            and credentials.stdin_is_terminal(),
        )
        log.info(
            "opening %s with %s",
            workspace.describe(),
            credentials.describe_credential(credential, self.environ),
            extra={"phase": "config"},
        )
        self._open_workspace(workspace, credential)
        self.workspace = workspace

    def push(self, client, inputs: RunInputs) -> str:
        """Push the image and return its reference ``registry/repository@sha256:...``.

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

    def _job_facts(
        self, environment, submission: Submission
    ) -> tuple[RunFacts, dict[str, str]]:
        """Return the job's facts and its tags: the facts plus the harness run id."""
        settings = self.settings
        facts = RunFacts(
            workspace=self.workspace.workspace_name,
            experiment=settings.experiment,
            compute_target=settings.compute,
            environment_name=environment.name,
            environment_version=environment.version,
            image_reference=submission.image_reference or None,
            pinned=not settings.conda,
        )
        tags = {**facts.tags(), TAG_PREFIX + "run_id": submission.run_id}
        return facts, tags

    def _log_submission(self, inputs: RunInputs) -> None:
        log.info(
            "submitting %s (%d files, %d bytes) to experiment %s on %s",
            inputs.snapshot.root,
            len(inputs.snapshot.files),
            inputs.snapshot.size,
            self.settings.experiment,
            self.settings.compute,
            extra={"phase": "submit"},
        )

    @abstractmethod
    def _open_workspace(self, workspace: WorkspaceConfig, credential: str) -> None:
        """Open the workspace through the service with the chosen credential kind."""

    @abstractmethod
    def _create_compute(self, settings: TargetSettings) -> None:
        """Create the CPU cluster that ``settings`` name (CREATE_COMPUTE=1 is set)."""
