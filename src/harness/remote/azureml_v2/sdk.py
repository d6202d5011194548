"""The azure-ai-ml names of target ``azureml-v2``: its only import of azure-ai-ml."""

from ...errors import RemoteError

try:
    from azure.ai.ml import Input, MLClient, Output, command
    from azure.ai.ml.constants import AssetTypes
    from azure.ai.ml.entities import AmlCompute, Data, Environment
    from azure.core.exceptions import ResourceNotFoundError
except ImportError as exc:  # pragma: no cover - depends on the installation
    raise RemoteError(
        f"TARGET=azureml-v2 needs azure-ai-ml ({exc.name} is missing); "
        "install it with: pip install 'aml-repro-harness[azure]'"
    ) from None

__all__ = [
    "AmlCompute",
    "AssetTypes",
    "Data",
    "Environment",
    "Input",
    "MLClient",
    "Output",
    "ResourceNotFoundError",
    "command",
]
