"""Choose the Azure credential, never with a prompt unless stdin is a terminal.

In this order: a service principal (``AZURE_TENANT_ID``, ``AZURE_CLIENT_ID``,
``AZURE_CLIENT_SECRET``), a managed identity (``MSI_ENDPOINT`` or
``IDENTITY_ENDPOINT`` is set), the Azure CLI login (``az`` on PATH), then an
interactive login where the caller allows one. azure-identity is imported only
inside the functions that use it.
"""

from __future__ import annotations

import os
import shutil
import sys
from typing import Callable, Mapping

from ...errors import RemoteError
from . import EMULATED_HINT
from .service import SERVICE_TIMEOUT

SERVICE_PRINCIPAL_VARIABLES = (
    "AZURE_TENANT_ID",
    "AZURE_CLIENT_ID",
    "AZURE_CLIENT_SECRET",
)
MANAGED_IDENTITY_VARIABLES = ("MSI_ENDPOINT", "IDENTITY_ENDPOINT")

# Credential kinds, as choose_credential returns them.
SERVICE_PRINCIPAL = "service principal"
MANAGED_IDENTITY = "managed identity"
AZURE_CLI = "Azure CLI"
INTERACTIVE = "interactive login"

NO_CREDENTIALS_MESSAGE = (
    "no Azure credentials found: set AZURE_TENANT_ID, AZURE_CLIENT_ID and "
    "AZURE_CLIENT_SECRET for a service principal, run on a machine with a managed "
    f"identity, or install the Azure CLI and run 'az login'; {EMULATED_HINT}"
)


def stdin_is_terminal() -> bool:
    return sys.stdin is not None and sys.stdin.isatty()


def choose_credential(
    environ: Mapping[str, str] | None = None, allow_interactive: bool = False
) -> str:
    """Return the credential kind: service principal, managed identity, CLI or prompt.

    ``INTERACTIVE`` is returned only when ``allow_interactive`` is true (the caller
    passes :func:`stdin_is_terminal`) and nothing else is available.

    Raises:
        RemoteError: a service principal is half configured, or nothing is available.
    """
    environ = os.environ if environ is None else environ
    if environ.get("AZURE_CLIENT_SECRET"):
        missing = [
            name for name in SERVICE_PRINCIPAL_VARIABLES if not environ.get(name)
        ]
        if missing:
            raise RemoteError(
                f"AZURE_CLIENT_SECRET is set but {', '.join(missing)} missing; "
                "a service principal needs all three variables"
            )
        return SERVICE_PRINCIPAL
    if any(environ.get(name) for name in MANAGED_IDENTITY_VARIABLES):
        return MANAGED_IDENTITY
    # On a VM whose identity is reachable only through the instance metadata
    # service, 'az login --identity' makes the CLI route work without a prompt.
    if shutil.which("az"):
        return AZURE_CLI
    if allow_interactive:
        return INTERACTIVE
    raise RemoteError(NO_CREDENTIALS_MESSAGE)


def describe_credential(kind: str, environ: Mapping[str, str] | None = None) -> str:
    """Return a log line for the chosen credential, with a secret shown as ``<set>``."""
    environ = os.environ if environ is None else environ
    if kind == SERVICE_PRINCIPAL:
        return (
            f"service principal AZURE_CLIENT_ID={environ.get('AZURE_CLIENT_ID')}"
            f" AZURE_TENANT_ID={environ.get('AZURE_TENANT_ID')}"
            " AZURE_CLIENT_SECRET=<set>"
        )
    if kind == MANAGED_IDENTITY:
        client = environ.get("AZURE_CLIENT_ID")
        return "managed identity" + (
            f" AZURE_CLIENT_ID={client}" if client else " (system-assigned)"
        )
    return kind


def azure_cli_token_provider(timeout: float = SERVICE_TIMEOUT) -> Callable[[str], str]:
    """Return ``get_token(resource) -> access token`` backed by the Azure CLI login.

    azureml-core's own AzureCliAuthentication needs the azure-cli Python package
    in this interpreter; this uses the ``az`` program instead, through azure-identity.
    """
    from azure.identity import AzureCliCredential

    credential = AzureCliCredential(process_timeout=int(timeout))

    def get_token(resource: str) -> str:
        return credential.get_token(resource.rstrip("/") + "/.default").token

    return get_token


def default_azure_credential():
    """Return azure-identity's DefaultAzureCredential without its browser prompt."""
    from azure.identity import DefaultAzureCredential

    return DefaultAzureCredential(exclude_interactive_browser_credential=True)
