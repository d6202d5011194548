"""Log the metrics to the enclosing Azure ML (SDK v1) or MLflow run, if any.

azureml.core and mlflow are imported only inside the functions that use them,
so neither SDK is loaded unless AZUREML_RUN_ID or MLFLOW_TRACKING_URI is set.
"""

import math
import os
import sys


def resolve_run_id():
    """Return HARNESS_RUN_ID, else the Azure ML or MLflow run id, else None.

    Azure ML SDK v1 runs set AZUREML_RUN_ID. MLflow-tracked jobs, including Azure
    ML SDK v2 jobs, set MLFLOW_RUN_ID. Empty values count as unset.

    NOTE: these variable names have not been checked inside a real Azure ML job.
    """
    for name in ("HARNESS_RUN_ID", "AZUREML_RUN_ID", "MLFLOW_RUN_ID"):
        if os.environ.get(name):
            return os.environ[name]
    return None


def log_remote_metrics(metrics, params):
    """Log the metrics to the enclosing Azure ML or MLflow run, if there is one.

    Returns a description of where the metrics went, or None outside such a run.
    Non-finite metrics are left out.

    NOTE: the tests cover a fake azureml.core and a local MLflow file store only.
    """
    values = {name: value for name, value in metrics.items() if math.isfinite(value)}

    if os.environ.get("AZUREML_RUN_ID"):
        destination = log_to_azureml(values)
        if destination is not None:
            return destination

    if os.environ.get("MLFLOW_TRACKING_URI"):
        return log_to_mlflow(values, params)

    return None


def log_to_azureml(values):
    """Log values to the current Azure ML run with Run.log.

    Returns None when azureml-core is not installed or the run is offline.
    """
    try:
        from azureml.core import Run
    except ImportError:
        return None

    run = Run.get_context()
    # Outside a submitted run, get_context returns an offline run whose
    # id starts with "OfflineRun" and whose log only prints the value.
    if run.id.startswith("OfflineRun"):
        return None

    for name, value in values.items():
        run.log(name, value)
    return f"Azure ML run {run.id}"


def log_to_mlflow(values, params):
    """Log params and values to the run that mlflow.start_run opens.

    Returns None when mlflow is not installed.
    """
    try:
        import mlflow
    except ImportError:
        return None

    # start_run attaches to the run named by MLFLOW_RUN_ID when it is set, as
    # in Azure ML jobs, and creates a run otherwise.
    with mlflow.start_run() as run:
        mlflow.log_params(params)
        mlflow.log_metrics(values)
    return f"MLflow run {run.info.run_id}"


def log_remote_metrics_or_warn(metrics, params, output):
    """Call log_remote_metrics. If it raises, print a warning and return normally."""
    try:
        destination = log_remote_metrics(metrics, params)
    except Exception as exc:  # the SDKs raise network, auth and service errors alike
        print(
            f"warning: logging metrics to the tracking service failed "
            f"({type(exc).__name__}: {exc}); the files in {output} are complete",
            file=sys.stderr,
        )
        return

    if destination is not None:
        print(f"logged metrics to {destination}")
