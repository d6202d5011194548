"""Train on Azure Machine Learning through SDK v1 (azureml-core): target ``azureml``.

The job runs the pinned training image by digest. The image is pushed to the
workspace's container registry (or to ``AZUREML_REGISTRY``) and referenced from
an Environment with user-managed dependencies, so Azure ML builds nothing and
runs ``/opt/venv/bin/python`` of the image. The data file goes to the default
datastore once, by content (``harness-data/<sha256>/<name>``), and reaches the
job as a data reference. Azure ML uploads the script folder itself, leaving out
what ``.amlignore`` (or ``.gitignore``) lists, and uploads the job's
``./outputs`` and ``./logs`` when it ends.

Every call that reaches the workspace goes through :class:`AzureMLService`;
:class:`AzureMLBackend` only builds SDK objects and calls it, so tests hand it a
fake service. This is the only module that imports azureml-core.
"""

from __future__ import annotations

import importlib.metadata
import logging
import os
import shlex
from pathlib import Path
from typing import Mapping

from ..errors import RegistryError, RemoteError
from ..image import VENV_PYTHON
from ..manifest import RunInputs
from ..snapshot import ENTRY_SCRIPT, check_limits
from . import azure_config
from .azure_config import (
    TAG_PREFIX,
    RegistryLogin,
    RunFacts,
    TargetSettings,
    WorkspaceConfig,
)
from .base import REMOTE_OUTPUT, Backend, RemoteRun, Submission
from .registry import push_by_digest

try:
    from azureml.core import Environment, Experiment, Run, ScriptRunConfig, Workspace
    from azureml.core.authentication import (
        AzureCliAuthentication,
        InteractiveLoginAuthentication,
        MsiAuthentication,
        ServicePrincipalAuthentication,
        TokenAuthentication,
    )
    from azureml.core.compute import AmlCompute, ComputeTarget
    from azureml.core.runconfig import DockerConfiguration
    from azureml.data.data_reference import DataReference
    from azureml.exceptions import AuthenticationException, ComputeTargetException
except ImportError as exc:  # pragma: no cover - depends on the installation
    raise RemoteError(
        f"TARGET=azureml needs azureml-core ({exc.name} is missing); "
        "install it with: pip install 'aml-repro-harness[azure]'"
    ) from None

log = logging.getLogger(__name__)

DATA_REFERENCE = "data"
# Azure ML sets this variable on the node to the path of the mounted data file.
# The command line runs in a shell, which expands it.
DATA_ARGUMENT = f'"$AZUREML_DATAREFERENCE_{DATA_REFERENCE}"'
_DATA_MARK = "\0data\0"


def environment_name(fingerprint: str) -> str:
    """Return the Environment name for an image fingerprint.

    azureml-core assigns v1 Environment versions on register, so the name carries
    the fingerprint: one name per image, and reuse means this name exists with
    the same base image.
    """
    return f"harness-{fingerprint[:16]}"


def conda_environment_name(spec_sha256: str) -> str:
    return f"harness-conda-{spec_sha256[:16]}"


# ---------------------------------------------------------------------------
# SDK objects, built without touching the service


def build_environment(
    image_reference: str, fingerprint: str, registry: RegistryLogin | None = None
) -> Environment:
    """Return an Environment that runs ``image_reference`` (``registry/repo@sha256:``).

    Registry credentials go on the Environment only for a registry the user
    named; the workspace's own registry needs none.
    """
    if "@sha256:" not in image_reference:
        raise ValueError(
            f"{image_reference}: not a reference by digest (registry/repo@sha256:...)"
        )
    environment = Environment(environment_name(fingerprint))
    environment.docker.base_image = image_reference
    environment.python.user_managed_dependencies = True
    environment.python.interpreter_path = VENV_PYTHON
    # azureml-core 1.61 starts every Environment with EXAMPLE_ENV_VAR=EXAMPLE_VALUE.
    environment.environment_variables = {}
    if registry is not None:
        environment.docker.base_image_registry.address = registry.address
        environment.docker.base_image_registry.username = registry.username
        environment.docker.base_image_registry.password = registry.password
    return environment


def build_conda_environment(spec_path: Path, spec_sha256: str) -> Environment:
    """Return an Environment that Azure ML builds from the spec (ENV_MODE=conda)."""
    environment = Environment.from_conda_specification(
        conda_environment_name(spec_sha256), str(spec_path)
    )
    environment.environment_variables = {}
    return environment


def build_data_reference(datastore, path_on_datastore: str) -> DataReference:
    """Return the reference through which the job reads the file ``path_on_datastore``.

    The mode is "mount": azureml-core 1.61's own ``DataReference.as_download()``
    returns a mount too, and a mounted file reads like a downloaded one.

    NOTE: checked offline only. The job relies on Azure ML setting
    ``AZUREML_DATAREFERENCE_data`` to the path of the file itself when
    ``path_on_datastore`` names a file, not to its folder.
    """
    return DataReference(
        datastore,
        data_reference_name=DATA_REFERENCE,
        path_on_datastore=path_on_datastore,
        mode="mount",
    )


def job_command(submission: Submission, pinned: bool = True) -> str:
    """Return the job's shell command, data at ``$AZUREML_DATAREFERENCE_data``.

    A pinned job runs the image's entry point, which writes the record. An
    ENV_MODE=conda job runs ``python train.py`` of the environment Azure ML built,
    which has no entry point, so it leaves no record.

    NOTE: the data argument works only if Azure ML runs the ``command`` string
    in a shell. That was not tried on a live workspace.
    """
    if pinned:
        parts = submission.command(_DATA_MARK)
    else:
        parts = [
            "python",
            ENTRY_SCRIPT,
            "--input",
            _DATA_MARK,
            "--output",
            REMOTE_OUTPUT,
            *submission.arguments,
        ]
    return " ".join(
        DATA_ARGUMENT if part == _DATA_MARK else shlex.quote(part) for part in parts
    )


def build_run_config(
    source_directory: Path,
    submission: Submission,
    compute_target: str,
    environment: Environment,
    data_reference: DataReference,
    pinned: bool = True,
) -> ScriptRunConfig:
    """Return the ScriptRunConfig of the training job.

    The job's variables go on the run configuration, not on the Environment, so
    one registered Environment serves every run of an image.
    """
    script_config = ScriptRunConfig(
        source_directory=str(source_directory),
        command=job_command(submission, pinned),
        compute_target=compute_target,
        environment=environment,
        docker_runtime_config=DockerConfiguration(use_docker=True),
    )
    script_config.run_config.environment_variables = dict(submission.job_environment)
    script_config.run_config.data_references = {
        DATA_REFERENCE: data_reference.to_config()
    }
    return script_config


def build_compute_config(vm_size: str = azure_config.DEFAULT_VM_SIZE):
    """Return the provisioning configuration of the cluster CREATE_COMPUTE=1 creates."""
    return AmlCompute.provisioning_configuration(
        vm_size=vm_size,
        min_nodes=azure_config.COMPUTE_MIN_NODES,
        max_nodes=azure_config.COMPUTE_MAX_NODES,
        idle_seconds_before_scaledown=azure_config.COMPUTE_IDLE_SECONDS,
    )


def build_auth(kind: str, environ: Mapping[str, str] | None = None):
    """Return the azureml-core authentication for a credential kind.

    ``kind`` is a result of :func:`azure_config.choose_credential`.

    Raises:
        RemoteError: interactive login was requested while stdin is not a terminal.
    """
    environ = os.environ if environ is None else environ
    if kind == azure_config.SERVICE_PRINCIPAL:
        return ServicePrincipalAuthentication(
            tenant_id=environ["AZURE_TENANT_ID"],
            service_principal_id=environ["AZURE_CLIENT_ID"],
            service_principal_password=environ["AZURE_CLIENT_SECRET"],
        )
    if kind == azure_config.MANAGED_IDENTITY:
        client_id = environ.get("AZURE_CLIENT_ID")
        return MsiAuthentication(
            identity_config={"client_id": client_id} if client_id else None
        )
    if kind == azure_config.AZURE_CLI:
        try:
            return AzureCliAuthentication()
        except AuthenticationException:
            # azure-cli is not importable here, so use the az program instead.
            return TokenAuthentication(azure_config.azure_cli_token_provider())
    if kind == azure_config.INTERACTIVE:
        if not azure_config.stdin_is_terminal():
            raise RemoteError(azure_config.NO_CREDENTIALS_MESSAGE)
        return InteractiveLoginAuthentication()
    raise ValueError(f"unknown credential kind {kind!r}")


# ---------------------------------------------------------------------------
# The service seam


class AzureMLService:
    """Seam for every workspace call of the ``azureml`` target (azureml-core)."""

    def __init__(self, timeout: float = azure_config.SERVICE_TIMEOUT):
        self.timeout = timeout
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
        action = f"opening {workspace.describe()}"
        try:
            self._workspace = azure_config.call_with_timeout(
                lambda: Workspace.get(
                    workspace.workspace_name,
                    auth=auth,
                    subscription_id=workspace.subscription_id,
                    resource_group=workspace.resource_group,
                ),
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

    def workspace_registry(self) -> RegistryLogin | None:
        """Return the workspace's registry, with its admin login if enabled, or None."""
        details = self._call(
            self.workspace.get_details, "reading the workspace details"
        )
        address = azure_config.registry_from_resource_id(
            details.get("containerRegistry")
        )
        if address is None:
            return None
        try:
            keys = azure_config.call_with_timeout(
                self.workspace.list_keys, self.timeout, "listing the workspace keys"
            )
        except Exception as exc:
            log.info(
                "no admin login for %s (%s); pushing with Docker's stored login",
                address,
                azure_config.summarize_error(exc),
                extra={"phase": "push"},
            )
            return RegistryLogin(address)
        credentials = keys.get("containerRegistryCredentials") or {}
        return RegistryLogin(
            address,
            credentials.get("username"),
            _first_password(credentials.get("passwords")),
        )

    def get_compute(self, name: str):
        """Return the compute target ``name``, or None if the workspace has none."""
        try:
            return ComputeTarget(workspace=self.workspace, name=name)
        except ComputeTargetException as exc:
            if "ComputeTargetNotFound" in str(exc):
                return None
            raise RemoteError(
                f"looking up compute target {name} failed: "
                f"{azure_config.summarize_error(exc)}"
            ) from None
        except Exception as exc:
            raise RemoteError(
                f"looking up compute target {name} failed: "
                f"{azure_config.summarize_error(exc)}"
            ) from None

    def create_compute(self, name: str, provisioning_config) -> None:
        """Create the compute target ``name`` and wait until it is provisioned."""
        try:
            target = ComputeTarget.create(self.workspace, name, provisioning_config)
            target.wait_for_completion(show_output=False)
        except ComputeTargetException as exc:
            raise RemoteError(
                f"creating compute target {name} failed: "
                f"{azure_config.summarize_error(exc)}"
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
                f"looking up environment {name} failed: "
                f"{azure_config.summarize_error(exc)}"
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
        return self._call(lambda: azure_config.fetch_text(url), "reading a run log")

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
            password.get("value")
            if isinstance(password, dict)
            else getattr(password, "value", None)
        )
        if value:
            return value
    return None


# ---------------------------------------------------------------------------
# Backend and run


class AzureMLBackend(Backend):
    """The ``azureml`` target: Azure ML through SDK v1 (azureml-core)."""

    name = "azureml"

    def __init__(
        self,
        service: AzureMLService | None = None,
        environ: Mapping[str, str] | None = None,
        cwd: Path | None = None,
    ):
        """Args:
        service: the service seam; None creates the real :class:`AzureMLService`
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
    def service(self) -> AzureMLService:
        if self._service is None:
            self._service = AzureMLService()
        return self._service

    @property
    def settings(self) -> TargetSettings:
        if self._settings is None:
            self._settings = TargetSettings.from_environ(self.environ)
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
            azure_config.COMPUTE_MIN_NODES,
            azure_config.COMPUTE_MAX_NODES,
            extra={"phase": "compute"},
        )
        self.service.create_compute(
            settings.compute, build_compute_config(settings.vm_size)
        )

    def connect(self) -> None:
        """Find the workspace and credentials and open the workspace, once."""
        if self.workspace is not None:
            return
        workspace = azure_config.find_workspace_config(self.environ, self.cwd)
        credential = azure_config.choose_credential(
            self.environ, allow_interactive=azure_config.stdin_is_terminal()
        )
        log.info(
            "opening %s with %s",
            workspace.describe(),
            azure_config.describe_credential(credential, self.environ),
            extra={"phase": "config"},
        )
        self.service.connect(workspace, credential, self.environ)
        self.workspace = workspace

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
        log.info(
            "submitting %s (%d files, %d bytes) to experiment %s on %s",
            inputs.snapshot.root,
            len(inputs.snapshot.files),
            inputs.snapshot.size,
            settings.experiment,
            settings.compute,
            extra={"phase": "submit"},
        )
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
        folder = f"{azure_config.DATA_FOLDER}/{sha256}"
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
        if existing is not None and _same_image(existing, image_reference, registry):
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


def _same_image(
    environment: Environment, image_reference: str, registry: RegistryLogin | None
) -> bool:
    docker = environment.docker
    if docker.base_image != image_reference:
        return False
    registry_address = (
        docker.base_image_registry.address if docker.base_image_registry else None
    )
    expected = registry.address if registry else None
    return registry_address == expected


class AzureMLRun(RemoteRun):
    """A job submitted through azureml-core."""

    def __init__(self, service: AzureMLService, run: Run, facts: RunFacts):
        self.service = service
        self.run = run
        self.facts = facts
        self.run_id = run.id
        self.portal_url = azure_config.strip_query(service.portal_url(run))
        self._tail = azure_config.LogTail()

    def status(self) -> str:
        return self.service.run_status(self.run)

    def new_log_lines(self) -> list[str]:
        """Return the new lines of the job's log, [] while there is none."""
        try:
            name, text = self._job_log()
        except RemoteError as exc:
            log.warning(
                "cannot read the log of run %s: %s",
                self.run_id,
                exc,
                extra={"phase": "wait"},
            )
            return []
        return self._tail.new_lines(name, text) if name else []

    def download(self, outputs: Path, logs: Path) -> dict:
        """Download outputs/ and logs/, check them against the record, and return it.

        Raises:
            RemoteError: a download failed.
            DownloadError: a file the run recorded is missing, empty or different.
        """
        log.info(
            "downloading run %s to %s and %s",
            self.run_id,
            outputs,
            logs,
            extra={"phase": "download"},
        )
        self.service.download_files(self.run, REMOTE_OUTPUT, outputs)
        self.service.download_files(self.run, "logs", logs)
        self.service.download_logs(self.run, logs)
        record = azure_config.read_record(logs)
        azure_config.check_download(record, outputs)
        return record

    def error_tail(self) -> str:
        message = self.service.run_error(self.run)
        try:
            _name, text = self._job_log()
        except RemoteError:
            text = None
        return azure_config.tail_line(text, message)

    def manifest_extra(self) -> dict:
        sdk = f"azureml-core {importlib.metadata.version('azureml-core')}"
        return self.facts.manifest_extra(self.run_id, self.portal_url, sdk)

    def _job_log(self) -> tuple[str | None, str | None]:
        files = self.service.log_files(self.run)
        name = azure_config.select_job_log(files)
        if name is None:
            return None, None
        return name, self.service.read_log(files[name])
