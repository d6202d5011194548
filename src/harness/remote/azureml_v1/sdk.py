"""The azureml-core names of target ``azureml``: its only import of azureml-core."""

from ...errors import RemoteError

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

__all__ = [
    "AmlCompute",
    "AuthenticationException",
    "AzureCliAuthentication",
    "ComputeTarget",
    "ComputeTargetException",
    "DataReference",
    "DockerConfiguration",
    "Environment",
    "Experiment",
    "InteractiveLoginAuthentication",
    "MsiAuthentication",
    "Run",
    "ScriptRunConfig",
    "ServicePrincipalAuthentication",
    "TokenAuthentication",
    "Workspace",
]
