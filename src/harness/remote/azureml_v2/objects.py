"""The azure-ai-ml objects of target ``azureml-v2``, built without calling Azure."""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Mapping

from ..azure_common.settings import (
    COMPUTE_IDLE_SECONDS,
    COMPUTE_MAX_NODES,
    COMPUTE_MIN_NODES,
    DEFAULT_VM_SIZE,
)
from ..base import REMOTE_OUTPUT, Submission
from .sdk import AmlCompute, AssetTypes, Data, Environment, Input, Output, command

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


def build_environment(
    image_reference: str, fingerprint: str, version: str | None = None
) -> Environment:
    """Return the Environment that runs ``image_reference`` (``repo@sha256:...``).

    NOTE: an Environment has no field for registry credentials in SDK v2. A
    registry named by AZUREML_REGISTRY must be pullable by the compute
    without them (public, or granted through a workspace connection).
    """
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


def build_compute(name: str, vm_size: str = DEFAULT_VM_SIZE) -> AmlCompute:
    """Return the CPU cluster that CREATE_COMPUTE=1 creates."""
    return AmlCompute(
        name=name,
        size=vm_size,
        min_instances=COMPUTE_MIN_NODES,
        max_instances=COMPUTE_MAX_NODES,
        idle_time_before_scale_down=COMPUTE_IDLE_SECONDS,
    )
