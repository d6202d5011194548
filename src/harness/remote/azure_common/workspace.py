"""Find the Azure ML workspace a run goes to.

The first source that is set or present is used: ``AZUREML_CONFIG`` (a
config.json path), the variables ``AZUREML_SUBSCRIPTION_ID``,
``AZUREML_RESOURCE_GROUP`` and ``AZUREML_WORKSPACE_NAME``, ``./config.json``,
then ``./.azureml/config.json``.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

from ...errors import RemoteError
from . import EMULATED_HINT

CONFIG_VARIABLE = "AZUREML_CONFIG"
WORKSPACE_VARIABLES = (
    "AZUREML_SUBSCRIPTION_ID",
    "AZUREML_RESOURCE_GROUP",
    "AZUREML_WORKSPACE_NAME",
)
CONFIG_KEYS = ("subscription_id", "resource_group", "workspace_name")

NO_CONFIG_MESSAGE = (
    "no Azure ML workspace configured: download config.json from Azure ML studio "
    "(open the workspace, then 'Download config.json') into this folder or .azureml/, "
    f"point {CONFIG_VARIABLE} at it, or set {', '.join(WORKSPACE_VARIABLES)}; "
    f"{EMULATED_HINT}"
)

# A workspace's ARM id, the legacy "Scope" form of config.json.
_SCOPE = re.compile(
    r"^/subscriptions/(?P<subscription>[^/]+)/resourceGroups/(?P<group>[^/]+)"
    r"/providers/Microsoft\.MachineLearningServices/workspaces/(?P<workspace>[^/]+)/?$",
    re.IGNORECASE,
)


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


def find_workspace_config(
    environ: Mapping[str, str] | None = None, cwd: Path | None = None
) -> WorkspaceConfig:
    """Find the workspace, in the order the module docs give.

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
