"""Code the two Azure ML targets share. No module here imports an Azure SDK.

The ``azureml`` target (:mod:`..azureml_v1`, azureml-core) and the
``azureml-v2`` target (:mod:`..azureml_v2`, azure-ai-ml) use these alike:

* :mod:`.workspace`: find the workspace from config.json or variables;
* :mod:`.credentials`: choose the credential, never prompting without a terminal;
* :mod:`.settings`: compute, experiment, registry and ENV_MODE;
* :mod:`.service`: deadlines, error text and the registry login of the service seams;
* :mod:`.runs`: the facts kept as job tags, log tails and the download check;
* :mod:`.backend`: the backend steps both targets run the same way.
"""

EMULATED_HINT = "TARGET=emulated runs the same flow locally"
