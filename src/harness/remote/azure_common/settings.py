"""Settings the user chooses for an Azure ML run, read from environment variables.

* ``AZUREML_COMPUTE``: the compute target (default cpu-cluster);
* ``AZUREML_EXPERIMENT``: the experiment (default arima-parity);
* ``CREATE_COMPUTE=1``: create a missing CPU cluster of ``AZUREML_VM_SIZE``;
* ``AZUREML_REGISTRY`` with ``AZUREML_REGISTRY_USERNAME`` and
  ``AZUREML_REGISTRY_PASSWORD``: push there instead of the workspace's registry;
* ``ENV_MODE=conda``: Azure ML builds the environment from the spec (SDK v1 only).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Mapping

from ...errors import UsageError

DEFAULT_COMPUTE = "cpu-cluster"
DEFAULT_EXPERIMENT = "arima-parity"
# The cluster CREATE_COMPUTE=1 creates: one CPU node at most, none when idle.
DEFAULT_VM_SIZE = "STANDARD_DS3_V2"
COMPUTE_MIN_NODES = 0
COMPUTE_MAX_NODES = 1
COMPUTE_IDLE_SECONDS = 1800


@dataclass(frozen=True)
class RegistryLogin:
    """A container registry, with the username and password to push if needed."""

    address: str
    username: str | None = None
    password: str | None = None

    def auth_config(self) -> dict | None:
        """Return the Docker ``auth_config``, or None to use Docker's stored login."""
        if self.username and self.password:
            return {"username": self.username, "password": self.password}
        return None

    def __repr__(self) -> str:
        password = "<set>" if self.password else None
        return (
            f"RegistryLogin(address={self.address!r}, username={self.username!r},"
            f" password={password})"
        )


@dataclass(frozen=True)
class TargetSettings:
    """Settings the user chose for an Azure ML run."""

    compute: str = DEFAULT_COMPUTE
    experiment: str = DEFAULT_EXPERIMENT
    vm_size: str = DEFAULT_VM_SIZE
    create_compute: bool = False
    registry: RegistryLogin | None = None  # None: the workspace's own registry
    conda: bool = False  # ENV_MODE=conda: Azure ML builds from the spec

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None) -> TargetSettings:
        """Read the settings from ``environ`` (the variables in the module docs).

        Raises:
            UsageError: ENV_MODE or CREATE_COMPUTE has an unknown value, or only
                one of the registry username and password is set.
        """
        environ = os.environ if environ is None else environ
        mode = environ.get("ENV_MODE", "image").strip().lower() or "image"
        if mode not in ("image", "conda"):
            raise UsageError(
                f"ENV_MODE={mode!r} is not known; use ENV_MODE=image (the pinned "
                "image, the default) or ENV_MODE=conda"
            )
        create = environ.get("CREATE_COMPUTE", "").strip().lower()
        if create not in ("", "0", "1", "false", "true", "no", "yes"):
            raise UsageError(
                f"CREATE_COMPUTE={create!r} is not known; use CREATE_COMPUTE=1 or leave"
                " it unset"
            )

        return cls(
            compute=environ.get("AZUREML_COMPUTE", "").strip() or DEFAULT_COMPUTE,
            experiment=environ.get("AZUREML_EXPERIMENT", "").strip()
            or DEFAULT_EXPERIMENT,
            vm_size=environ.get("AZUREML_VM_SIZE", "").strip() or DEFAULT_VM_SIZE,
            create_compute=create in ("1", "true", "yes"),
            registry=_read_registry(environ),
            conda=mode == "conda",
        )

    def missing_compute_message(self, workspace: str) -> str:
        return (
            f"compute target {self.compute!r} not found in workspace {workspace}; set "
            "AZUREML_COMPUTE to an existing cluster, or rerun with CREATE_COMPUTE=1 to "
            f"create a CPU cluster {self.compute!r} ({self.vm_size}, 0 to "
            f"{COMPUTE_MAX_NODES} nodes, scales down after "
            f"{COMPUTE_IDLE_SECONDS // 60} idle minutes)"
        )


def _read_registry(environ: Mapping[str, str]) -> RegistryLogin | None:
    """Return the registry AZUREML_REGISTRY names, or None for the workspace's own.

    Raises:
        UsageError: only one of username and password is set, or a username is
            set without AZUREML_REGISTRY.
    """
    address = environ.get("AZUREML_REGISTRY", "").strip()
    username = environ.get("AZUREML_REGISTRY_USERNAME") or None
    password = environ.get("AZUREML_REGISTRY_PASSWORD") or None
    if (username is None) != (password is None):
        missing = (
            "AZUREML_REGISTRY_PASSWORD"
            if password is None
            else "AZUREML_REGISTRY_USERNAME"
        )
        raise UsageError(
            f"{missing} is missing; set both the registry username and "
            "password, or neither to use Docker's stored login"
        )
    if address:
        return RegistryLogin(address.rstrip("/"), username, password)
    if username:
        raise UsageError(
            "AZUREML_REGISTRY_USERNAME is set but AZUREML_REGISTRY is not; "
            "name the registry, or unset both to use the workspace's registry"
        )
    return None
