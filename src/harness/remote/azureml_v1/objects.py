"""The azureml-core objects of target ``azureml``, built without calling Azure."""

from __future__ import annotations

import os
import shlex
from pathlib import Path
from typing import Mapping

from ...errors import RemoteError
from ...image import VENV_PYTHON
from ...snapshot import ENTRY_SCRIPT
from ..azure_common import credentials
from ..azure_common.settings import (
    COMPUTE_IDLE_SECONDS,
    COMPUTE_MAX_NODES,
    COMPUTE_MIN_NODES,
    DEFAULT_VM_SIZE,
    RegistryLogin,
)
from ..base import REMOTE_OUTPUT, Submission
from .sdk import (
    AmlCompute,
    AuthenticationException,
    AzureCliAuthentication,
    DataReference,
    DockerConfiguration,
    Environment,
    InteractiveLoginAuthentication,
    MsiAuthentication,
    ScriptRunConfig,
    ServicePrincipalAuthentication,
    TokenAuthentication,
)

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


def same_image(
    environment: Environment, image_reference: str, registry: RegistryLogin | None
) -> bool:
    """Return whether a registered Environment runs this image from this registry."""
    docker = environment.docker
    if docker.base_image != image_reference:
        return False
    registry_address = (
        docker.base_image_registry.address if docker.base_image_registry else None
    )
    expected = registry.address if registry else None
    return registry_address == expected


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


def build_compute_config(vm_size: str = DEFAULT_VM_SIZE):
    """Return the provisioning configuration of the cluster CREATE_COMPUTE=1 creates."""
    return AmlCompute.provisioning_configuration(
        vm_size=vm_size,
        min_nodes=COMPUTE_MIN_NODES,
        max_nodes=COMPUTE_MAX_NODES,
        idle_seconds_before_scaledown=COMPUTE_IDLE_SECONDS,
    )


def build_auth(kind: str, environ: Mapping[str, str] | None = None):
    """Return the azureml-core authentication for a credential kind.

    ``kind`` is a result of :func:`credentials.choose_credential`.

    Raises:
        RemoteError: interactive login was requested while stdin is not a terminal.
    """
    environ = os.environ if environ is None else environ
    if kind == credentials.SERVICE_PRINCIPAL:
        return ServicePrincipalAuthentication(
            tenant_id=environ["AZURE_TENANT_ID"],
            service_principal_id=environ["AZURE_CLIENT_ID"],
            service_principal_password=environ["AZURE_CLIENT_SECRET"],
        )
    if kind == credentials.MANAGED_IDENTITY:
        client_id = environ.get("AZURE_CLIENT_ID")
        return MsiAuthentication(
            identity_config={"client_id": client_id} if client_id else None
        )
    if kind == credentials.AZURE_CLI:
        try:
            return AzureCliAuthentication()
        except AuthenticationException:
            # azure-cli is not importable here, so use the az program instead.
            return TokenAuthentication(credentials.azure_cli_token_provider())
    if kind == credentials.INTERACTIVE:
        if not credentials.stdin_is_terminal():
            raise RemoteError(credentials.NO_CREDENTIALS_MESSAGE)
        return InteractiveLoginAuthentication()
    raise ValueError(f"unknown credential kind {kind!r}")
