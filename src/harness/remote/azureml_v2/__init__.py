"""Train on Azure Machine Learning through SDK v2 (azure-ai-ml): target ``azureml-v2``.

The job is a command job that runs the pinned training image by digest: an
Environment ``harness-image`` whose version is the image fingerprint's first 16
hex digits. The data file becomes the data asset ``harness-data`` with the
file's sha256 (first 16 digits) as version, uploaded once, and reaches the job
as the ``uri_file`` input ``data``. The SDK uploads the script folder as the
job's code, leaving out what ``.amlignore`` (or ``.gitignore``) lists. Metrics
go through MLflow inside the job; the training script handles that itself with
the MLFLOW_* variables Azure ML sets.

* :mod:`.sdk`: the only import of azure-ai-ml;
* :mod:`.objects`: Environment, data asset, command job and compute;
* :mod:`.service`: :class:`AzureMLV2Service`, every call that reaches Azure, so
  tests hand the backend a fake of it;
* :mod:`.backend`: :class:`AzureMLV2Backend` and :class:`AzureMLV2Run`.
"""

from .backend import AzureMLV2Backend, AzureMLV2Run
from .objects import (
    DATA_ASSET,
    ENVIRONMENT_NAME,
    build_compute,
    build_data,
    build_environment,
    build_job,
    data_version,
    environment_version,
    job_command,
    job_environment_variables,
)
from .service import AzureMLV2Service

__all__ = [
    "DATA_ASSET",
    "ENVIRONMENT_NAME",
    "AzureMLV2Backend",
    "AzureMLV2Run",
    "AzureMLV2Service",
    "build_compute",
    "build_data",
    "build_environment",
    "build_job",
    "data_version",
    "environment_version",
    "job_command",
    "job_environment_variables",
]
