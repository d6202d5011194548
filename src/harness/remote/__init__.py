"""Remote targets: the emulated one and Azure ML through SDK v1 and v2.

``load_backend`` maps a TARGET name to its backend. Each Azure module is the
only importer of its SDK, so the others work without the Azure packages.
"""

from __future__ import annotations

from ..errors import UsageError

TARGETS = ("azureml", "azureml-v2", "emulated")


def load_backend(target: str):
    """Return the backend for ``target``.

    Raises:
        UsageError: the name is not a known target.
    """
    if target == "emulated":
        from .emulated import EmulatedBackend

        return EmulatedBackend()
    if target == "azureml":
        from .azureml_v1 import AzureMLBackend

        return AzureMLBackend()
    if target == "azureml-v2":
        from .azureml_v2 import AzureMLV2Backend

        return AzureMLV2Backend()
    raise UsageError(f"TARGET={target!r} is not known; use one of {', '.join(TARGETS)}")


def cloud_train(args) -> int:
    """Run ``make cloud-train``: train on the target and print the run folder."""
    from ..commands import report_run
    from .flow import cloud_train as run_flow

    folder = run_flow(args, load_backend(args.target))
    report_run(folder)
    return 0
