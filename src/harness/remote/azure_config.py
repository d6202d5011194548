"""Workspace configuration, credentials and run helpers of both Azure ML backends.

:mod:`.azureml_v1` (azureml-core) and :mod:`.azureml_v2` (azure-ai-ml) find the
workspace and choose credentials the same way, through this module:

* Workspace: ``AZUREML_CONFIG`` (a config.json path), else the variables
  ``AZUREML_SUBSCRIPTION_ID``, ``AZUREML_RESOURCE_GROUP`` and
  ``AZUREML_WORKSPACE_NAME``, else ``./config.json``, else ``./.azureml/config.json``.
* Credentials, never with a prompt unless stdin is a terminal: a service
  principal (``AZURE_TENANT_ID``, ``AZURE_CLIENT_ID``, ``AZURE_CLIENT_SECRET``),
  a managed identity (``MSI_ENDPOINT`` or ``IDENTITY_ENDPOINT`` is set), or the
  Azure CLI login (``az`` on PATH).
* Settings: ``AZUREML_COMPUTE`` (compute target, default cpu-cluster),
  ``AZUREML_EXPERIMENT`` (default arima-parity), ``CREATE_COMPUTE=1`` (create a
  missing CPU cluster of ``AZUREML_VM_SIZE``), ``AZUREML_REGISTRY`` with
  ``AZUREML_REGISTRY_USERNAME`` and ``AZUREML_REGISTRY_PASSWORD`` (push there
  instead of the workspace's registry), ``ENV_MODE=conda`` (SDK v1 only).

The run helpers (log tailing, error tails, the download check) are here because
both backends' runs behave alike once their SDK has fetched the files.

No Azure SDK is imported at module level; azure-identity is imported inside the
functions that need it.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import sys
import threading
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Mapping, TypeVar

from ..errors import DownloadError, RemoteError, UsageError
from ..manifest import verify_outputs
from ..runfolder import list_files
from .base import REMOTE_RECORD

log = logging.getLogger(__name__)

# Upper bound, in seconds, for a call that only has to reach the workspace
# (look-up, key listing), so an unreachable workspace fails in one line instead
# of waiting out the SDKs' own retries.
SERVICE_TIMEOUT = 60.0
LOG_READ_TIMEOUT = 30.0
ERROR_TAIL_LINES = 10

DEFAULT_COMPUTE = "cpu-cluster"
DEFAULT_EXPERIMENT = "arima-parity"
# The cluster CREATE_COMPUTE=1 creates: one CPU node at most, none when idle.
DEFAULT_VM_SIZE = "STANDARD_DS3_V2"
COMPUTE_MIN_NODES = 0
COMPUTE_MAX_NODES = 1
COMPUTE_IDLE_SECONDS = 1800
# Folder of the data file in the workspace's default datastore, addressed by
# content: harness-data/<sha256>/<file name>.
DATA_FOLDER = "harness-data"
# Job tags that keep what re-attaching needs for the manifest (see RunFacts).
TAG_PREFIX = "harness."

CONFIG_VARIABLE = "AZUREML_CONFIG"
WORKSPACE_VARIABLES = (
    "AZUREML_SUBSCRIPTION_ID",
    "AZUREML_RESOURCE_GROUP",
    "AZUREML_WORKSPACE_NAME",
)
CONFIG_KEYS = ("subscription_id", "resource_group", "workspace_name")
SERVICE_PRINCIPAL_VARIABLES = (
    "AZURE_TENANT_ID",
    "AZURE_CLIENT_ID",
    "AZURE_CLIENT_SECRET",
)
MANAGED_IDENTITY_VARIABLES = ("MSI_ENDPOINT", "IDENTITY_ENDPOINT")

SERVICE_PRINCIPAL = "service principal"
MANAGED_IDENTITY = "managed identity"
AZURE_CLI = "Azure CLI"
INTERACTIVE = "interactive login"

EMULATED_HINT = "TARGET=emulated runs the same flow locally"
NO_CONFIG_MESSAGE = (
    "no Azure ML workspace configured: download config.json from Azure ML studio "
    "(open the workspace, then 'Download config.json') into this folder or .azureml/, "
    f"point {CONFIG_VARIABLE} at it, or set {', '.join(WORKSPACE_VARIABLES)}; "
    f"{EMULATED_HINT}"
)
NO_CREDENTIALS_MESSAGE = (
    "no Azure credentials found: set AZURE_TENANT_ID, AZURE_CLIENT_ID and "
    "AZURE_CLIENT_SECRET for a service principal, run on a machine with a managed "
    f"identity, or install the Azure CLI and run 'az login'; {EMULATED_HINT}"
)

# A workspace's ARM id, the legacy "Scope" form of config.json.
_SCOPE = re.compile(
    r"^/subscriptions/(?P<subscription>[^/]+)/resourceGroups/(?P<group>[^/]+)"
    r"/providers/Microsoft\.MachineLearningServices/workspaces/(?P<workspace>[^/]+)/?$",
    re.IGNORECASE,
)
_URL_QUERY = re.compile(r"(https?://[^\s?#\"']+)[?#][^\s\"']*")
# Log file names of a job's own stdout and stderr: "user_logs/std_log.txt" on
# the current Azure ML runtime (azure-ai-ml 1.35 streams the same pattern) and
# "azureml-logs/70_driver_log.txt" on the legacy one.
_JOB_LOG_PATTERNS = (
    re.compile(r"^user_logs/std_log[^\d]*0*(?:_ps)?\.txt$"),
    re.compile(r"^azureml-logs/70_driver_log.*\.txt$"),
)

Result = TypeVar("Result")


@dataclass(frozen=True)
class WorkspaceConfig:
    """The Azure ML workspace a run goes to, and where that was configured."""

    subscription_id: str
    resource_group: str
    workspace_name: str
    source: str  # a config.json path, or "environment variables"

    def describe(self) -> str:
        return (
            f"workspace {self.workspace_name} (resource group {self.resource_group}, "
            f"from {self.source})"
        )


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
    """Settings the user chose for an Azure ML run, read from environment variables."""

    compute: str = DEFAULT_COMPUTE
    experiment: str = DEFAULT_EXPERIMENT
    vm_size: str = DEFAULT_VM_SIZE
    create_compute: bool = False
    registry: RegistryLogin | None = (
        None  # None: the workspace's own container registry
    )
    conda: bool = False  # ENV_MODE=conda: Azure ML builds from the spec

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None) -> TargetSettings:
        """Read the settings from ``environ`` (variables listed in the module docs).

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

        registry = None
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
            registry = RegistryLogin(address.rstrip("/"), username, password)
        elif username:
            raise UsageError(
                "AZUREML_REGISTRY_USERNAME is set but AZUREML_REGISTRY is not; "
                "name the registry, or unset both to use the workspace's registry"
            )

        return cls(
            compute=environ.get("AZUREML_COMPUTE", "").strip() or DEFAULT_COMPUTE,
            experiment=environ.get("AZUREML_EXPERIMENT", "").strip()
            or DEFAULT_EXPERIMENT,
            vm_size=environ.get("AZUREML_VM_SIZE", "").strip() or DEFAULT_VM_SIZE,
            create_compute=create in ("1", "true", "yes"),
            registry=registry,
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


@dataclass(frozen=True)
class RunFacts:
    """Facts the manifest records about a job, kept as job tags for re-attaching."""

    workspace: str
    experiment: str
    compute_target: str
    environment_name: str
    environment_version: str | None
    image_reference: (
        str | None
    )  # registry/repository@sha256:..., None for ENV_MODE=conda
    pinned: bool

    def tags(self) -> dict[str, str]:
        return {
            TAG_PREFIX + "environment": self.environment_name,
            TAG_PREFIX + "environment_version": str(self.environment_version or ""),
            TAG_PREFIX + "image": self.image_reference or "",
            TAG_PREFIX + "compute": self.compute_target,
            TAG_PREFIX + "pinned": "true" if self.pinned else "false",
        }

    @classmethod
    def from_tags(
        cls,
        tags: Mapping[str, str],
        workspace: str,
        experiment: str,
        compute_target: str | None = None,
    ) -> RunFacts:
        def tag(name: str) -> str | None:
            return tags.get(TAG_PREFIX + name) or None

        return cls(
            workspace=workspace,
            experiment=experiment,
            compute_target=tag("compute") or compute_target or "",
            environment_name=tag("environment") or "",
            environment_version=tag("environment_version"),
            image_reference=tag("image"),
            pinned=tag("pinned") != "false",
        )

    def manifest_extra(self, run_id: str, portal_url: str | None, sdk: str) -> dict:
        """Return the manifest's ``remote`` section for the job ``run_id``."""
        digest = None
        if self.image_reference and "@" in self.image_reference:
            digest = self.image_reference.rsplit("@", 1)[1]
        return {
            "workspace": self.workspace,
            "experiment": self.experiment,
            "run_id": run_id,
            "portal_url": portal_url,
            "environment": {
                "name": self.environment_name,
                "version": self.environment_version,
            },
            "image_digest": digest,
            "compute_target": self.compute_target,
            "pinned": self.pinned,
            "sdk": sdk,
        }


# ---------------------------------------------------------------------------
# Workspace configuration


def find_workspace_config(
    environ: Mapping[str, str] | None = None, cwd: Path | None = None
) -> WorkspaceConfig:
    """Find the workspace from ``AZUREML_CONFIG``, the variables or config.json.

    The order is given in the module docs.

    Raises:
        RemoteError: nothing is configured, a variable is missing, or config.json
            is invalid.
    """
    environ = os.environ if environ is None else environ
    cwd = Path.cwd() if cwd is None else Path(cwd)

    explicit = environ.get(CONFIG_VARIABLE)
    if explicit:
        path = Path(explicit).expanduser()
        if not path.is_absolute():
            path = cwd / path
        if not path.is_file():
            raise RemoteError(
                f"{CONFIG_VARIABLE}={explicit}: file not found; download "
                "config.json from Azure ML studio or unset the variable"
            )
        return read_config_file(path)

    present = [name for name in WORKSPACE_VARIABLES if environ.get(name)]
    if present:
        missing = [name for name in WORKSPACE_VARIABLES if not environ.get(name)]
        if missing:
            raise RemoteError(
                f"{', '.join(present)} set but {', '.join(missing)} missing; "
                "set all three or use config.json"
            )
        subscription, group, workspace = (
            environ[name].strip() for name in WORKSPACE_VARIABLES
        )
        return WorkspaceConfig(subscription, group, workspace, "environment variables")

    for path in (cwd / "config.json", cwd / ".azureml" / "config.json"):
        if path.is_file():
            return read_config_file(path)
    raise RemoteError(NO_CONFIG_MESSAGE)


def read_config_file(path: Path) -> WorkspaceConfig:
    """Read a config.json as Azure ML studio writes it (or its legacy ``Scope`` form).

    Raises:
        RemoteError: the file is unreadable, not JSON, or lacks a key.
    """
    hint = (
        "download it again from Azure ML studio (open the workspace, then 'Download"
        " config.json')"
    )
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise RemoteError(
            f"{path}: cannot read the workspace config ({exc.strerror})"
        ) from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise RemoteError(
            f"{path}: not valid JSON (line {exc.lineno}: {exc.msg}); {hint}"
        ) from None
    if not isinstance(data, dict):
        raise RemoteError(
            f"{path}: expected a JSON object with {', '.join(CONFIG_KEYS)}; {hint}"
        )

    scope = data.get("Scope")
    if isinstance(scope, str) and scope:
        match = _SCOPE.match(scope.strip())
        if not match:
            raise RemoteError(
                f"{path}: 'Scope' is not a workspace resource id ({scope!r}); {hint}"
            )
        return WorkspaceConfig(
            match["subscription"], match["group"], match["workspace"], str(path)
        )

    missing = [
        key
        for key in CONFIG_KEYS
        if not isinstance(data.get(key), str) or not data[key].strip()
    ]
    if missing:
        raise RemoteError(f"{path}: missing {', '.join(missing)}; {hint}")
    return WorkspaceConfig(*(data[key].strip() for key in CONFIG_KEYS), str(path))


# ---------------------------------------------------------------------------
# Credentials


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


# ---------------------------------------------------------------------------
# Calls with a deadline, and error text


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


def fetch_text(url: str, timeout: float = LOG_READ_TIMEOUT) -> str:
    """Download a log file from a pre-signed URL as text."""
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return response.read().decode("utf-8", errors="replace")


# ---------------------------------------------------------------------------
# Run helpers


def select_job_log(names) -> str | None:
    """Return the name of the job's stdout/stderr log among ``names``, or None."""
    for pattern in _JOB_LOG_PATTERNS:
        matches = sorted(name for name in names if pattern.match(name))
        if matches:
            return matches[0]
    return None


class LogTail:
    """Tracker that turns repeated reads of whole log files into the new lines."""

    def __init__(self) -> None:
        self._seen: dict[str, int] = {}

    def new_lines(self, name: str, text: str) -> list[str]:
        lines = text.splitlines()
        # Only complete lines count, so a line still being written comes once, whole.
        if text and not text.endswith("\n"):
            lines = lines[:-1]
        start = self._seen.get(name, 0)
        self._seen[name] = max(start, len(lines))
        return lines[start:]


def tail_line(
    text: str | None, message: str | None = None, count: int = ERROR_TAIL_LINES
) -> str:
    """Join the service's error message and the last ``count`` log lines in one line."""
    parts = [strip_query(message.strip())] if message and message.strip() else []
    if text:
        lines = [line.strip() for line in text.splitlines() if line.strip()]
        parts += [strip_query(line) for line in lines[-count:]]
    return " | ".join(parts)


def read_record(logs: Path) -> dict:
    """Return the entry point's record (``logs/harness/record.json``), or {} if absent.

    Raises:
        DownloadError: the record exists but is not valid JSON.
    """
    path = Path(logs) / Path(REMOTE_RECORD).relative_to("logs")
    if not path.is_file():
        log.warning(
            "the run left no %s; its outputs cannot be checked against the container's "
            "own listing",
            REMOTE_RECORD,
            extra={"phase": "download"},
        )
        return {}
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise DownloadError(
            f"{path}: the downloaded record is unreadable ({exc}); "
            "download the run again"
        ) from None
    if not isinstance(record, dict):
        raise DownloadError(f"{path}: the downloaded record is not a JSON object")
    return record


def check_download(record: dict, outputs: Path) -> None:
    """Check the downloaded ``outputs`` folder against the record's listing of outputs.

    Raises:
        DownloadError: naming the first file that is missing, empty or different.
    """
    found = list_files(outputs)
    verify_outputs(record.get("outputs"), found)
    size = sum(entry["size"] for entry in found.values())
    log.info(
        "downloaded %d output files (%d bytes) to %s",
        len(found),
        size,
        outputs,
        extra={"phase": "download"},
    )
