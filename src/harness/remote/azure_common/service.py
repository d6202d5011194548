"""Base of the two service seams: calls with a deadline, error text, registry login.

Each SDK package has one service class, the only code that reaches Azure. Both
derive from :class:`AzureService`, whose helpers turn an SDK error into one
RemoteError line without URL query strings (where SAS tokens are).
"""

from __future__ import annotations

import logging
import re
import threading
import urllib.request
from typing import Callable, TypeVar

from ...errors import RemoteError
from . import EMULATED_HINT
from .settings import RegistryLogin
from .workspace import WorkspaceConfig

log = logging.getLogger(__name__)

# Upper bound, in seconds, for a call that only has to reach the workspace
# (look-up, key listing), so an unreachable workspace fails in one line instead
# of waiting out the SDKs' own retries.
SERVICE_TIMEOUT = 60.0
LOG_READ_TIMEOUT = 30.0

_URL_QUERY = re.compile(r"(https?://[^\s?#\"']+)[?#][^\s\"']*")

Result = TypeVar("Result")


def call_with_timeout(
    function: Callable[[], Result], timeout: float, action: str
) -> Result:
    """Return ``function()``, or raise RemoteError if it takes over ``timeout`` seconds.

    The call runs in a daemon thread, which is left behind on a timeout. The SDKs
    offer no way to stop their own retries.
    """
    outcome: dict = {}

    def run() -> None:
        try:
            outcome["value"] = function()
        except BaseException as exc:  # re-raised in the caller's thread below
            outcome["error"] = exc

    thread = threading.Thread(target=run, name=f"azure: {action}", daemon=True)
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        raise RemoteError(
            f"{action}: timed out after {timeout:g} s; check the network "
            f"connection and HTTPS_PROXY, then retry; {EMULATED_HINT}"
        )
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


def strip_query(text: str) -> str:
    """Remove URL query strings and fragments, where SAS tokens are, from ``text``."""
    return _URL_QUERY.sub(r"\1", text)


def summarize_error(exc: BaseException, limit: int = 300) -> str:
    """Return an SDK error's first line, without URL query strings, cut to ``limit``."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    text = strip_query(lines[0] if lines else type(exc).__name__)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def registry_from_resource_id(
    resource_id: str | None, suffix: str = "azurecr.io"
) -> str | None:
    """Return the login server of a container registry given by its ARM resource id.

    ``suffix`` is the public cloud's. Sovereign clouds use others (azurecr.cn, .us).
    """
    if not resource_id:
        return None
    name = resource_id.rstrip("/").rsplit("/", 1)[-1]
    return f"{name.lower()}.{suffix}" if name else None


def first_password(passwords) -> str | None:
    """Return the first non-empty registry password in the SDK's list, or None.

    azureml-core lists dicts with a ``value`` key; azure-ai-ml lists objects with
    a ``value`` attribute or plain strings.
    """
    for password in passwords or []:
        if isinstance(password, str):
            value = password
        elif isinstance(password, dict):
            value = password.get("value")
        else:
            value = getattr(password, "value", None)
        if value:
            return value
    return None


def fetch_text(url: str, timeout: float = LOG_READ_TIMEOUT) -> str:
    """Download a log file from a pre-signed URL as text."""
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return response.read().decode("utf-8", errors="replace")


class AzureService:
    """Base of the service seams: the deadline and error handling of their calls."""

    def __init__(self, timeout: float = SERVICE_TIMEOUT):
        self.timeout = timeout

    def _open(
        self,
        open_workspace: Callable[[], Result],
        workspace: WorkspaceConfig,
        credential: str,
    ) -> Result:
        """Return ``open_workspace()``, waiting at most ``timeout`` seconds.

        Raises:
            RemoteError: the workspace is unreachable or not found, or the credential
                is rejected.
        """
        action = f"opening {workspace.describe()}"
        try:
            return call_with_timeout(open_workspace, self.timeout, action)
        except RemoteError:
            raise
        except Exception as exc:
            raise RemoteError(
                f"{action} with {credential} credentials failed: "
                f"{summarize_error(exc)}"
            ) from None

    def _admin_login(
        self, address: str, list_keys: Callable[[], object]
    ) -> RegistryLogin:
        """Return the registry's admin login from the workspace keys.

        If the keys cannot be listed, the login has the address only and the push
        uses Docker's stored login.
        """
        try:
            keys = call_with_timeout(
                list_keys, self.timeout, "listing the workspace keys"
            )
        except Exception as exc:
            log.info(
                "no admin login for %s (%s); pushing with Docker's stored login",
                address,
                summarize_error(exc),
                extra={"phase": "push"},
            )
            return RegistryLogin(address)
        username, passwords = self._registry_credentials(keys)
        return RegistryLogin(address, username, first_password(passwords))

    def _registry_credentials(self, keys) -> tuple[str | None, list | None]:
        """Return the registry username and passwords in the SDK's workspace keys."""
        raise NotImplementedError

    def _call(self, function, action: str):
        try:
            return function()
        except RemoteError:
            raise
        except Exception as exc:
            raise RemoteError(f"{action} failed: {summarize_error(exc)}") from None
