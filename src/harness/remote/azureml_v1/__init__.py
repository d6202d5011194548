"""Train on Azure Machine Learning through SDK v1 (azureml-core): target ``azureml``.

The job runs the pinned training image by digest: it is pushed to the
workspace's container registry (or to ``AZUREML_REGISTRY``) and referenced from
an Environment with user-managed dependencies, so Azure ML builds nothing and
runs ``/opt/venv/bin/python`` of the image. The data file goes to the default
datastore once, by content (``harness-data/<sha256>/<name>``), and reaches the
job as a data reference. Azure ML uploads the script folder, leaving out what
``.amlignore`` (or ``.gitignore``) lists, and uploads the job's ``./outputs``
and ``./logs`` when it ends.

* :mod:`.sdk`: the only import of azureml-core;
* :mod:`.objects`: Environment, data reference, run configuration and auth;
* :mod:`.service`: :class:`AzureMLService`, every call that reaches Azure, so
  tests hand the backend a fake of it;
* :mod:`.backend`: :class:`AzureMLBackend` and :class:`AzureMLRun`.
"""

from .backend import DATA_FOLDER, AzureMLBackend, AzureMLRun
from .objects import (
    DATA_ARGUMENT,
    DATA_REFERENCE,
    build_auth,
    build_compute_config,
    build_conda_environment,
    build_data_reference,
    build_environment,
    build_run_config,
    conda_environment_name,
    environment_name,
    job_command,
)
from .service import AzureMLService

__all__ = [
    "DATA_ARGUMENT",
    "DATA_FOLDER",
    "DATA_REFERENCE",
    "AzureMLBackend",
    "AzureMLRun",
    "AzureMLService",
    "build_auth",
    "build_compute_config",
    "build_conda_environment",
    "build_data_reference",
    "build_environment",
    "build_run_config",
    "conda_environment_name",
    "environment_name",
    "job_command",
]
